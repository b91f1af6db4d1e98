"""jobs: one module per job (DESIGN.md section 6).

Each job module holds a ``@dataclass`` config (every CLI flag is a field with the same name and
default) and plain functions ``train(config) -> Result``, ``evaluate``, ``predict`` that return
results and write the job's artefacts into ``config.out``. ``cli/`` maps flags to these configs.
"""
