"""Between-run comparisons (issue 16): pairing by prompt × turn × repeat, run-level variance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.analysis.analyze import SyntheticProfile, compare_runs, synthetic_observations
from harness.analysis.between import (
    ASSUMED_RUN_SPREAD,
    conversation_weights,
    quantile_interval,
    weighted_quantile,
)
from harness.analysis.metrics import ObservationTable

RESAMPLES = 500


def _run(
    profile: SyntheticProfile, seed: int, repeats: int = 20, run_id: str = "r"
) -> ObservationTable:
    obs = synthetic_observations(profile, arms=("chat", "responses"), repeats=repeats, seed=seed)
    return ObservationTable.from_observations(
        [o.model_copy(update={"run_id": f"{run_id}{seed}"}) for o in obs]
    )


def test_identical_deterministic_cost_and_cache_pair_exactly() -> None:
    """Issue 16: unpaired resampling gave identical deterministic cost a CI of −6 % to +6 % and
    a fixed 44 % hit ratio a CI of 27–61 %. Paired by prompt × turn × repeat, both are exact."""
    a, b = _run(SyntheticProfile(), 1), _run(SyntheticProfile(), 2)
    arm = compare_runs(a, b, resamples=RESAMPLES).scenarios["synthetic"]["chat"]
    assert arm.cost_ratio is not None and arm.cost_ratio.ci95 == (1.0, 1.0)
    assert arm.cache_hit_ratio_delta is not None and arm.cache_hit_ratio_delta.ci95 == (0.0, 0.0)
    assert arm.error_rate_delta is not None and arm.error_rate_delta.value == 0.0
    # latency differs between the runs by chance: a real interval, widened by the run spread
    assert arm.ttft_p50_ratio is not None and arm.ttft_p50_ratio.ci95 is not None
    lo, hi = arm.ttft_p50_ratio.ci95
    assert lo < 1.0 < hi


def test_cost_compared_over_requests_both_runs_completed() -> None:
    """A candidate that lost its cheap (cold) turns must not look dearer: matched keys only."""
    a, b = _run(SyntheticProfile(), 1), _run(SyntheticProfile(), 2)
    keep = np.flatnonzero(~(a.cold & (np.array(a.arm) == "chat")))
    arm = compare_runs(a.take(keep), b, resamples=RESAMPLES).scenarios["synthetic"]["chat"]
    assert arm.cost_ratio is not None and arm.cost_ratio.value == pytest.approx(1.0)


def test_one_run_baseline_assumes_the_spread_several_runs_measure_it() -> None:
    cand = _run(SyntheticProfile(drift=0.0), 1)
    one = compare_runs(cand, _run(SyntheticProfile(drift=0.0), 2), resamples=RESAMPLES)
    assert one.run_spread is not None and one.run_spread.baseline_runs == 1
    assert one.run_spread.spread["ttft_p50_ratio"] == ASSUMED_RUN_SPREAD["ttft_p50_ratio"] > 0
    assert one.run_spread.source.startswith("assumed")
    # three baseline runs, each shifted as a whole by ±15 %: the estimate sees it
    runs = [
        _run(SyntheticProfile(drift=0.0, ttft_ms=300.0 * f), s)
        for f, s in ((0.85, 3), (1.0, 4), (1.15, 5))
    ]
    many = compare_runs(cand, runs, resamples=RESAMPLES)
    assert many.run_spread is not None and many.run_spread.baseline_runs == 3
    assert many.run_spread.source == "estimated from 3 baseline runs"
    assert many.run_spread.spread["ttft_p50_ratio"] > 0.08
    wide = many.scenarios["synthetic"]["chat"].ttft_p50_ratio
    narrow = one.scenarios["synthetic"]["chat"].ttft_p50_ratio
    assert wide is not None and narrow is not None and wide.ci95 and narrow.ci95
    assert wide.ci95[1] - wide.ci95[0] > narrow.ci95[1] - narrow.ci95[0]
    # an explicit spread of 0 is honoured
    zero = compare_runs(
        cand, runs[1], resamples=RESAMPLES, run_spread=dict.fromkeys(ASSUMED_RUN_SPREAD, 0.0)
    )
    assert zero.run_spread is not None and zero.run_spread.source == "given"


def test_weighted_quantile_matches_numpy_on_the_expanded_sample() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=37)
    units = rng.integers(0, 9, size=37)
    weights = conversation_weights(np.zeros(9, dtype=np.int64), 50, rng)
    for q in (0.5, 0.95):
        got = weighted_quantile(values, units, weights, q)
        for row, w in enumerate(weights):
            expanded = np.repeat(values, w[units].astype(np.int64))
            want = np.quantile(expanded, q) if expanded.size else np.nan
            assert got[row] == pytest.approx(want, nan_ok=True)


def test_stratified_weights_keep_each_prompts_count() -> None:
    strata = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    w = conversation_weights(strata, 200, np.random.default_rng(1))
    for s in (0, 1, 2):
        assert (w[:, strata == s].sum(axis=1) == (strata == s).sum()).all()
    # one conversation for a prompt: no stratification, the total is kept
    w1 = conversation_weights(np.array([0, 1, 2, 2]), 100, np.random.default_rng(1))
    assert (w1.sum(axis=1) == 4).all()


def test_p95_interval_covers_the_point_and_ratio_of_equal_arms_straddles_one() -> None:
    t = _run(SyntheticProfile(), 1, repeats=30)
    got = quantile_interval(t, "synthetic", ("responses", "chat"), "ttft_ms", 0.95, resamples=400)
    assert got is not None and got[1] is not None
    value, (lo, hi) = got
    assert lo <= value <= hi and lo < 1.0 < hi
    one = quantile_interval(t, "synthetic", ("chat",), "ttft_ms", 0.95, resamples=400)
    chat = t.ttft_ms[(np.array(t.arm) == "chat") & t.ok]
    assert one is not None and one[0] == pytest.approx(float(np.quantile(chat, 0.95)))


def test_only_within_run_intervals_say_their_cost_ratio_was_widened(tmp_path: Path) -> None:
    # the cache-miss widening is applied within a run, not between runs (whose identical
    # deterministic cost pairs to exactly 1): the recorded method must not claim otherwise
    from harness.analysis.analyze import analyze_run, write_synthetic_run

    obs = synthetic_observations(SyntheticProfile(), arms=("chat", "responses"), repeats=10)
    within = analyze_run(write_synthetic_run(tmp_path / "run", obs)).bootstrap
    between = compare_runs(_run(SyntheticProfile(), 1), _run(SyntheticProfile(), 2)).bootstrap
    assert "cache misses" in within.correction
    assert "cache misses" not in between.correction
    assert between.correction in within.correction  # the one interval rule, named the same
