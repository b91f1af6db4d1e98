import numpy as np
import pytest

from lstmkit.data import datasets
from lstmkit.data.season import detect_season


@pytest.mark.parametrize("period", [4, 7, 12, 24])
def test_finds_the_period_of_a_trending_noisy_seasonal_series(period):
    rng = np.random.default_rng(period)
    t = np.arange(40 * period)
    y = 0.02 * t + np.sin(2 * np.pi * t / period) + 0.5 * np.cos(4 * np.pi * t / period) \
        + 0.3 * rng.normal(size=len(t))
    assert detect_season(y).season == period


def test_no_season_in_noise_or_a_random_walk_even_with_a_monthly_hint():
    rng = np.random.default_rng(0)
    assert detect_season(rng.normal(size=300), hint=12).season == 1
    found = detect_season(rng.normal(size=300).cumsum(), hint=12)
    assert found.season == 1 and "do not show it" in found.reason


def test_hourly_data_prefers_the_day_over_its_multiples():
    rng = np.random.default_rng(1)
    t = np.arange(24 * 7 * 8)
    y = np.sin(2 * np.pi * t / 24) + 0.5 * (t % 168 >= 120) + 0.2 * rng.normal(size=len(t))
    assert detect_season(y, hint=24).season == 24
    assert detect_season(y).season in (24, 168)


@pytest.mark.parametrize("name, column, hint, want", [
    ("sunspots", "sunactivity", 1, range(9, 13)),  # yearly data, the ~11-year solar cycle
    ("elec_equip", "orders", 12, [12]),
    ("co2", "co2", 52, [52]),
    ("nile", "volume", 1, [1]),
    ("macro_realgdp", "realgdp", 4, [1]),  # seasonally adjusted: the quarterly hint is rejected
])
def test_real_series_with_known_periods(name, column, hint, want):
    y = datasets.load(name)[column].to_numpy(dtype=float)
    assert detect_season(y, hint=hint).season in want
