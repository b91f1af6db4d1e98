"""``python -m lstmkit ...``: the ``lstmkit`` command, the same entry point as the console script
(pyproject's ``[project.scripts] lstmkit = "lstmkit.cli:main"``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
