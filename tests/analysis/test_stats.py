"""Statistics: percentiles, the vectorized bootstrap, the significance decision and power."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis import decide, stats
from harness.analysis.stats import Bootstrap, _multinomial_counts


def _reference_medians(
    units: np.ndarray, values: np.ndarray, n_units: int, resamples: int, seed: int
) -> list[float]:
    """numpy.median of each resample, expanded by the same weights the bootstrap drew."""
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, stats._BLOCK_CELLS // n_units))
    keep = np.isfinite(values)
    out = []
    for start in range(0, resamples, block):
        for w in _multinomial_counts(rng, min(block, resamples - start), n_units):
            expanded = np.repeat(values[keep], w[units[keep]].astype(int))
            out.append(float(np.median(expanded)) if expanded.size else math.nan)
    return out


@pytest.mark.parametrize(
    ("n_units", "per_unit", "nan_share"),
    [
        (1, 1, 0.0),
        (2, 1, 0.0),
        (7, 1, 0.0),
        (30, 1, 0.1),
        (200, 3, 0.2),
        (3000, 1, 0.05),
    ],
)
def test_bootstrap_median_equals_numpy_median_of_each_resample(
    n_units: int, per_unit: int, nan_share: float
) -> None:
    rng = np.random.default_rng(n_units)
    units = np.repeat(np.arange(n_units), per_unit)
    values = rng.lognormal(5.0, 0.5, units.size)
    values[rng.random(units.size) < nan_share] = np.nan
    boot = Bootstrap(n_units, resamples=200, seed=3)
    h = boot.median(units, values)
    got = boot.run()[h]
    np.testing.assert_allclose(got, _reference_medians(units, values, n_units, 200, 3))


def test_bootstrap_median_falls_back_when_the_band_is_too_narrow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stats, "_BAND_SDS", 0.05)  # band of ~2 ranks: most rows fall outside
    rng = np.random.default_rng(1)
    units = np.arange(400)
    values = rng.normal(100.0, 10.0, 400)
    boot = Bootstrap(400, resamples=100, seed=9)
    h = boot.median(units, values)
    np.testing.assert_allclose(boot.run()[h], _reference_medians(units, values, 400, 100, 9))


def test_bootstrap_totals_are_weighted_sums_and_share_resamples() -> None:
    rng = np.random.default_rng(2)
    units = np.arange(50)
    x = rng.random(50)
    boot = Bootstrap(50, resamples=300, seed=4)
    hx, hx2 = boot.total(units, x), boot.total(units, 2 * x)
    reps = boot.run()
    np.testing.assert_allclose(reps[hx2], 2 * reps[hx], rtol=1e-6)  # same resamples, paired
    weights = _multinomial_counts(np.random.default_rng(4), 300, 50)
    np.testing.assert_allclose(reps[hx], weights @ x, rtol=1e-5)


def test_bootstrap_is_seeded() -> None:
    def run(seed: int) -> np.ndarray:
        boot = Bootstrap(40, resamples=50, seed=seed)
        h = boot.median(np.arange(40), np.arange(40.0))
        return boot.run()[h]

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_empty_statistics_are_nan_not_zero() -> None:
    boot = Bootstrap(5, resamples=10, seed=0)
    h = boot.median(np.arange(5), np.full(5, np.nan))
    assert np.isnan(boot.run()[h]).all()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([np.nan, np.nan], None),
        ([1.0, 2.0, 3.0, 4.0, np.nan], (4, 2.5, 3.85, 3.97, 2.5)),
        ([10.0], (1, 10.0, 10.0, 10.0, 10.0)),
    ],
)
def test_quantiles(values: list[float], expected: tuple[float, ...] | None) -> None:
    q = stats.quantiles(np.array(values, dtype=float))
    if expected is None:
        assert q is None
    else:
        assert q is not None
        assert (q.n, q.p50, q.p95, q.p99, q.mean) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ci", "null", "expected"),
    [
        ((1.1, 1.3), 1.0, True),
        ((0.7, 0.9), 1.0, True),
        ((0.9, 1.1), 1.0, False),
        ((1.0, 1.2), 1.0, False),
        ((-0.2, -0.1), 0.0, True),
        (None, 1.0, None),
    ],
)
def test_significance_decision(
    ci: tuple[float, float] | None, null: float, expected: bool | None
) -> None:
    assert decide.excludes(ci, null) is expected


def test_interval_refuses_mostly_undefined_replicates() -> None:
    reps = np.array([1.0, np.nan, np.nan, np.nan])
    assert stats.interval(reps) is None
    lo, hi = stats.interval(np.linspace(0.0, 1.0, 1001)) or (None, None)
    assert lo == pytest.approx(0.025) and hi == pytest.approx(0.975)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (2.0, 4.0, 0.5),
        (1.0, 0.0, None),
        (None, 1.0, None),
        (1.0, math.nan, None),
    ],
)
def test_safe_ratio(a: float | None, b: float | None, expected: float | None) -> None:
    assert stats.safe_ratio(a, b) == expected


@pytest.mark.parametrize(
    ("effect", "sigma", "expected"),
    [
        # n = (1.959964 + 1.644854)² · π σ² / ln(1 + effect)²
        (0.10, 0.3, 405),
        (0.20, 0.3, 111),
        (0.10, 0.15, 102),
        (-0.10, 0.3, 331),
    ],
)
def test_required_samples(effect: float, sigma: float, expected: int) -> None:
    assert stats.required_samples(effect, sigma, power=0.95) == expected


def test_repeats_for_power_divides_by_samples_per_repeat() -> None:
    assert stats.repeats_for_power(0.10, 0.3, samples_per_repeat=6, power=0.95) == math.ceil(
        405 / 6
    )
    with pytest.raises(ValueError):
        stats.required_samples(0.0, 0.3)


def test_required_samples_against_the_margin_and_run_variance() -> None:
    """Issue 16: detecting +25 % means the interval's lower bound clears the +10 % margin:
    n = π σ² (z.975 + z_power)² / (ln 1.25 − ln 1.10)²; run-level variance no sample removes
    can make a target unreachable."""
    gap = math.log(1.25) - math.log(1.10)
    want = math.ceil(math.pi * 0.09 * (stats._z(0.975) + stats._z(0.9)) ** 2 / gap**2)
    assert stats.required_samples(0.25, 0.3, power=0.9, margin=0.10) == want
    assert stats.required_samples(0.25, 0.3, margin=0.10) < want  # default target power 80 %
    with pytest.raises(ValueError, match="margin"):
        stats.required_samples(0.10, 0.3, margin=0.10)
    assert stats.required_samples(0.25, 0.3, power=0.9, margin=0.10, run_var=0.01) is None
    more = stats.required_samples(0.25, 0.3, power=0.8, margin=0.10, run_var=0.0005)
    assert more is not None and more > stats.required_samples(0.25, 0.3, margin=0.10)


def test_scale_for_power_from_observed_standard_error() -> None:
    target_se = math.log(1.1) / (stats._z(0.975) + stats._z(0.95))
    assert stats.scale_for_power(target_se, 100, 0.10, power=0.95) == 100
    assert stats.scale_for_power(2 * target_se, 100, 0.10, power=0.95) == 400
    assert stats.scale_for_power(math.nan, 100, 0.10) is None
    assert stats.scale_for_power(0.05, 100, 0.10, margin=0.10) is None  # within the margin


def test_robust_sigma_log_recovers_lognormal_sigma() -> None:
    values = np.random.default_rng(0).lognormal(5.0, 0.3, 20_000)
    assert stats.robust_sigma_log(values) == pytest.approx(0.3, rel=0.03)


# --- statistical validity (issue 7): power and false positives --------------------------------

RUNS = 200
RESAMPLES = 1000


def _flagged(effect: float, seed: int, n: int) -> bool:
    """One simulated run: lognormal (σ = 0.3) TTFT plus slow drift, arms interleaved ABAB;
    returns whether the decision code flags a regression of b over a."""
    rng = np.random.default_rng(seed)
    order = np.arange(2 * n)
    drift = 0.15 * np.sin(
        2 * np.pi * order / (2 * n) + rng.uniform(0, 2 * np.pi)
    ) + 0.10 * order / (2 * n)
    a = np.exp(np.log(250.0) + drift[0::2] + rng.normal(0.0, 0.3, n))
    b = np.exp(np.log(250.0) + math.log1p(effect) + drift[1::2] + rng.normal(0.0, 0.3, n))
    boot = Bootstrap(n, resamples=RESAMPLES, seed=seed)
    units = np.arange(n)
    ha, hb = boot.median(units, a), boot.median(units, b)
    reps = boot.run()
    ci = stats.interval(stats.ratio_replicates(reps[hb], reps[ha]))
    value = stats.safe_ratio(float(np.median(b)), float(np.median(a)))
    return bool(decide.excludes(ci, 1.0)) and value is not None and value > 1.0


def test_power_calculation_delivers_detection_and_aa_stays_quiet() -> None:
    n = stats.required_samples(0.10, 0.3, power=0.95)  # repeats the power calculation asks for
    assert n is not None
    detected = sum(_flagged(0.10, seed, n) for seed in range(RUNS)) / RUNS
    false_alarms = sum(_flagged(0.0, 10_000 + seed, n) for seed in range(RUNS)) / RUNS
    assert detected >= 0.90, f"10 % regression flagged in only {detected:.1%} of runs"
    assert false_alarms <= 0.08, f"A/A flagged in {false_alarms:.1%} of runs"


@pytest.mark.parametrize("sizes", [[5, 5, 5, 1], [6, 1, 1, 4]])
def test_a_prompt_with_one_conversation_does_not_remove_every_interval(sizes: list[int]) -> None:
    """A run cut short leaves one prompt with a single conversation: it is pooled, the design
    stays stratified and 16 conversations still get an interval."""
    strata = np.repeat(np.arange(len(sizes)), sizes)
    boot = Bootstrap(n_units=strata.size, strata=strata)
    assert boot.mode == "stratified"
    samples = np.random.default_rng(0).normal(1.0, 0.1, 2000)
    assert boot.interval(samples, n=int(strata.size)) is not None
