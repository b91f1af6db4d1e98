"""Every docstring example of ``lstmkit.functional`` and ``lstmkit.kernels`` runs (pytest's
``--doctest-modules`` collects only the paths in pyproject's testpaths, which leave these out):
an example that does not run is a failing test."""

import doctest
import importlib
import pkgutil

import pytest

import lstmkit.functional
import lstmkit.kernels

MODULES = sorted(
    name for pkg in (lstmkit.functional, lstmkit.kernels)
    for name in [pkg.__name__] + [f"{pkg.__name__}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
