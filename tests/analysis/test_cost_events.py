"""Cost intervals keep room for cache misses a run did not show (stats.cache_event_var)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis import stats
from harness.analysis.analyze import SyntheticProfile, analyze_table, synthetic_observations
from harness.analysis.metrics import ObservationTable


@pytest.mark.parametrize(
    ("extra", "hit", "n", "expected"),
    [
        ([], [], 20, 0.0),  # nothing could hit
        ([0.0, 0.0], [0, 0], 20, 0.0),  # never hit: no sign the arm caches
        # 10 of 10 hit, each saving 3: p = 11/12, var = 3² · 10 · p(1 − p) / 20²
        ([3.0] * 10, [1] * 10, 20, 9 * 10 * (11 / 12) * (1 / 12) / 400),
        # 9 of 10: the miss's own "extra" (0) does not lower the per-hit saving
        ([3.0] * 9 + [0.0], [1] * 9 + [0], 20, 9 * 10 * (10 / 12) * (2 / 12) / 400),
    ],
)
def test_cache_event_var(extra: list[float], hit: list[int], n: int, expected: float) -> None:
    got = stats.cache_event_var(np.array(extra), np.array(hit, dtype=np.float64), n)
    assert got == pytest.approx(expected, rel=1e-12)


def _cost(repeats: int) -> tuple[tuple[float, float] | None, str | None]:
    obs = synthetic_observations(
        SyntheticProfile(sigma=0.05),
        arms=("chat", "responses"),
        prompts=2,
        turns=2,
        repeats=repeats,
    )
    s = analyze_table(ObservationTable.from_observations(obs), resamples=200)
    c = s.scenarios[0].comparisons["responses_vs_chat"].cost_ratio
    assert c is not None and c.value == pytest.approx(1.0)
    return c.ci95, c.decision


def test_ten_warm_turns_that_all_hit_do_not_prove_equal_costs() -> None:
    # identical bills, every warm turn a hit: the resamples show no spread at all, yet a
    # 1-in-10 miss rate (each miss ~1.5× dearer here) is plausible from 10 hits
    ci, decision = _cost(5)
    assert ci is not None and ci[0] < 0.98 and ci[1] > 1.02
    assert decision == "unclear"


def test_the_room_for_misses_shrinks_with_the_sample() -> None:
    ci, decision = _cost(200)
    assert ci is not None and 0.985 < ci[0] <= 1.0 <= ci[1] < 1.015
    assert decision == "equivalent"
