"""``--config FILE``: a job's config from its flags over a file of config fields.

The file is TOML, or a run's saved ``config.json`` (which reproduces that run). A flag left at the
config's default (or not given: None) takes the file's value; a flag given on the command line
wins. A field the config does not have is an error that names it.

>>> import os, tempfile
>>> from dataclasses import dataclass
>>> @dataclass
... class C:
...     lr: float = 0.1
...     epochs: int = 10
>>> path = os.path.join(tempfile.mkdtemp(), "c.toml")
>>> _ = open(path, "w").write("lr = 0.5\\nepochs = 3\\n")
>>> merge_config_file(C, {"lr": 0.1, "epochs": 7}, path)  # lr left at its default, epochs given
{'lr': 0.5, 'epochs': 7}
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields


def read_config_file(path: str, names: list[str]) -> dict:
    """The fields of a TOML or JSON file, each one of ``names``."""
    import tomllib

    try:
        with open(path, "rb") as f:
            data = json.load(f) if str(path).endswith(".json") else tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"--config: {path} not found") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"--config: {path} is not valid TOML/JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"--config: expected a table of fields, got {type(data).__name__}")
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"--config: unknown field(s) {unknown}; expected some of {sorted(names)}")
    return data


def merge_config_file(cls, flags: dict, path: str | None) -> dict:
    """The keyword arguments of dataclass ``cls``: ``flags`` (field -> value; other keys dropped)
    over the fields of the file at ``path`` (none: the flags alone)."""
    defaults = {f.name: f.default if f.default is not MISSING else
                (f.default_factory() if f.default_factory is not MISSING else MISSING)
                for f in fields(cls)}
    kw = {k: v for k, v in flags.items() if k in defaults}
    if path:
        for k, v in read_config_file(path, list(defaults)).items():
            if kw.get(k) is None or kw[k] == defaults[k]:
                kw[k] = v
    return kw


def config_from(cls, flags: dict, path: str | None = None):
    """Dataclass ``cls`` from ``flags`` over the file at ``path`` (:func:`merge_config_file`);
    an ``out`` given by neither keeps the dataclass's default folder."""
    kw = merge_config_file(cls, flags, path)
    if kw.get("out") is None:
        kw.pop("out", None)
    return cls(**kw)
