"""Forecasting series for the catalogue (data/datasets.py)."""

from __future__ import annotations

from .datasets import register


@register("co2", task="forecast", licence="public domain (NOAA), via statsmodels (BSD-3)",
          provenance="statsmodels.datasets.co2: weekly Mauna Loa CO2, 1958-2001, 2284 weeks, 59 missing")
def co2():
    """A DataFrame with columns ``date`` and ``co2``."""
    from .timeseries import co2_frame

    return co2_frame()
