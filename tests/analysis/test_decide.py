"""The one decision rule, and the resampling it rests on, proven by simulation with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis import decide, stats
from harness.analysis.decide import Rule, claim_verdict
from harness.analysis.stats import Bootstrap
from harness.summary import SaturationStats

LATENCY = Rule("ratio", 0.10)
CACHE = Rule("delta", 0.02, lower_is_better=False)


@pytest.mark.parametrize(
    ("ci", "n", "rule", "expected"),
    [
        ((0.70, 0.85), 30, LATENCY, "better"),
        ((1.15, 1.40), 30, LATENCY, "worse"),
        ((0.95, 1.08), 30, LATENCY, "equivalent"),
        ((0.97, 0.99), 30, LATENCY, "equivalent"),  # significant, but inside the margin
        ((0.85, 1.05), 30, LATENCY, "unclear"),  # "not significant" is not "no difference"
        ((1.05, 1.30), 30, LATENCY, "unclear"),  # significant, not beyond the margin
        ((0.70, 0.85), 9, LATENCY, "too_few_samples"),
        (None, 30, LATENCY, "unclear"),
        ((1.0, 1.0), 30, Rule("ratio", 0.02), "equivalent"),  # a tie at 1.0
        ((0.9, 1.1 + 1e-12), 30, LATENCY, "equivalent"),  # an edge within rounding
        ((1.1 + 1e-12, 1.3), 30, LATENCY, "unclear"),  # not beyond the edge by more than it
        ((0.05, 0.10), 30, CACHE, "better"),  # more cache hits
        ((-0.10, -0.05), 30, CACHE, "worse"),
        ((0.0, 0.15), 20, Rule("delta", 0.01), "unclear"),  # errors 3/20 vs 0/20
    ],
)
def test_decide(
    ci: tuple[float, float] | None, n: int, rule: Rule, expected: decide.Decision
) -> None:
    assert decide.decide(ci, n, rule) == expected


def test_ties_at_one_are_not_significant() -> None:
    # float32 once put this lower bound at 1.00000010 and called it significant
    assert decide.excludes((1.0000000000000002, 1.0000000000000004), 1.0) is False
    assert decide.excludes((1.0 + 1e-6, 1.1), 1.0) is True
    reps = np.ones(2000)
    ci = stats.interval(reps, n=30)
    assert ci == (1.0, 1.0) and decide.excludes(ci, 1.0) is False


@pytest.mark.parametrize(
    ("ci", "claimed", "decision", "direction", "open_upper", "expected"),
    [
        ((2.2, 2.8), (2.0, 3.0), "worse", "worse", False, "supported"),
        ((3.2, 3.8), (2.0, 3.0), "worse", "worse", False, "contradicted"),
        ((1.8, 2.5), (2.0, 3.0), "worse", "worse", False, "inconclusive"),
        ((2.2, 2.8), (2.0, 3.0), "too_few_samples", "worse", False, "inconclusive"),
        # cheaper: upper bound below 1 − margin; a bill the card calls unchanged contradicts it
        ((0.90, 0.95), (0.0, 0.98), "better", "better", True, "supported"),
        ((0.99, 1.01), (0.0, 0.98), "equivalent", "better", True, "contradicted"),
        ((0.97, 0.99), (0.0, 0.98), "equivalent", "better", True, "inconclusive"),
        ((1.0, 1.0), (0.0, 0.98), "equivalent", "better", True, "contradicted"),
        # +60 % relative on a tiny hit share: inside the range, not beyond the points margin
        ((0.5, 0.7), (0.4, 0.8), "equivalent", "better", False, "inconclusive"),
    ],
)
def test_claim_verdict(
    ci: tuple[float, float],
    claimed: tuple[float, float],
    decision: decide.Decision,
    direction: str,
    open_upper: bool,
    expected: str,
) -> None:
    assert (
        claim_verdict(ci, claimed, decision, direction, open_upper=open_upper)  # type: ignore[arg-type]
        == expected
    )


def test_min_repeats_and_message() -> None:
    assert decide.min_repeats(2) == 5 and decide.min_repeats(3) == 4 and decide.min_repeats(20) == 1
    assert decide.too_few_text(4, 5) == "too few samples (n = 4): run ≥ 5 repeats"


# --- intervals ------------------------------------------------------------------------------------


def test_no_interval_below_the_minimum() -> None:
    reps = np.linspace(0.8, 1.2, 2000)
    assert stats.interval(reps, n=decide.MIN_CONVERSATIONS - 1) is None
    assert stats.interval(reps, n=decide.MIN_CONVERSATIONS) is not None


def test_expanded_interval_is_wider_at_small_n_and_converges() -> None:
    reps = np.random.default_rng(0).normal(0.0, 1.0, 20_000)
    plain = stats.interval(reps)
    small = stats.interval(reps, n=10)
    large = stats.interval(reps, n=5000)
    assert plain is not None and small is not None and large is not None
    assert small[1] - small[0] > 1.15 * (plain[1] - plain[0])
    assert large[1] - large[0] == pytest.approx(plain[1] - plain[0], rel=0.01)


def test_infinite_replicates_are_kept_and_only_zero_over_zero_dropped() -> None:
    num = np.array([1.0, 2.0, 0.0, 3.0] * 250)
    den = np.array([1.0, 0.0, 0.0, 2.0] * 250)
    reps = stats.ratio_replicates(num, den)
    assert np.isinf(reps).sum() == 250 and np.isnan(reps).sum() == 250
    ci = stats.interval(reps)
    assert ci is not None and ci[0] == 1.0 and math.isinf(ci[1])


def test_stratified_weights_keep_every_prompts_share() -> None:
    strata = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    clusters = np.arange(9)
    boot = Bootstrap(9, resamples=50, clusters=clusters, strata=strata)
    assert boot.mode == "stratified"
    w = boot.weights(np.random.default_rng(1), 200)
    for s in range(3):
        assert (w[:, strata == s].sum(axis=1) == (strata == s).sum()).all()


def test_one_conversation_per_prompt_resamples_prompts() -> None:
    boot = Bootstrap(6, clusters=np.array([0, 0, 1, 1, 2, 2]), strata=np.array([0, 1, 2]))
    assert boot.mode == "prompts"
    w = boot.weights(np.random.default_rng(2), 100)
    assert (w[:, 0] == w[:, 1]).all() and (w.sum(axis=1) == 6).all()  # turns move together


# --- A/A with clustered turns ------------------------------------------------------------------


RESAMPLES = 500


def _aa_excludes(seed: int, prompts: int, repeats: int, turns: int, *, by_turn: bool) -> bool:
    """One A/A run where turns share a per-conversation effect: does the TTFT ratio's interval
    exclude 1? ``by_turn`` resamples turns as if they were independent (the old unit)."""
    rng = np.random.default_rng(seed)
    p = np.repeat(np.arange(prompts), repeats * turns)
    r = np.tile(np.repeat(np.arange(repeats), turns), prompts)
    conv = p * repeats + r
    key = np.arange(prompts * repeats * turns)
    prompt_effect = rng.normal(0.0, 0.3, prompts)[p]  # shared by both arms
    ttft = [
        np.exp(
            np.log(300.0)
            + prompt_effect
            + rng.normal(0.0, 0.3, prompts * repeats)[conv]  # this arm's conversation
            + rng.normal(0.0, 0.1, key.size)
        )
        for _ in range(2)
    ]
    if by_turn:
        boot = Bootstrap(key.size, resamples=RESAMPLES, seed=seed)
    else:
        strata = np.repeat(np.arange(prompts), repeats)
        boot = Bootstrap(key.size, resamples=RESAMPLES, seed=seed, clusters=conv, strata=strata)
    ha, hb = boot.median(key, ttft[0]), boot.median(key, ttft[1])
    reps = boot.run()
    ratio = stats.ratio_replicates(reps[hb], reps[ha])
    n = prompts * repeats
    ci = stats.interval(ratio) if by_turn else boot.interval(ratio, n)
    return bool(decide.excludes(ci, 1.0))


SIMS = 400


def _binomial_band(p: float, n: int, sds: float = 3.0) -> tuple[float, float]:
    sd = math.sqrt(p * (1 - p) / n)
    return p - sds * sd, p + sds * sd


def test_aa_exclusion_is_five_percent_with_clustered_turns() -> None:
    """3 prompts × 20 repeats × 4 turns (the issue's reproduction)."""
    rate = sum(_aa_excludes(s, 3, 20, 4, by_turn=False) for s in range(SIMS)) / SIMS
    lo, hi = _binomial_band(0.05, SIMS)
    assert lo <= rate <= hi, f"A/A intervals exclude 1 in {rate:.1%} of {SIMS} runs"


def test_resampling_turns_as_independent_is_what_fails() -> None:
    """The same runs with the turn as unit: the rule above is not true of any bootstrap."""
    sims = SIMS // 4
    rate = sum(_aa_excludes(s, 3, 20, 4, by_turn=True) for s in range(sims)) / sims
    assert rate > _binomial_band(0.05, sims)[1], f"turn-unit A/A rate {rate:.1%}"


def test_aa_at_the_quickstart_minimum_is_not_anticonservative() -> None:
    """2 prompts × 5 repeats × 2 turns: exactly the minimum, with the small-sample correction."""
    rate = sum(_aa_excludes(50_000 + s, 2, 5, 2, by_turn=False) for s in range(SIMS)) / SIMS
    assert rate <= _binomial_band(0.05, SIMS)[1], f"A/A rate {rate:.1%} at 10 conversations"


def _sat(timed: int, saturated: int) -> SaturationStats:
    return SaturationStats(
        timed_requests=timed, saturated=saturated, late=saturated, lag_p50_ms=1.0, lag_max_ms=50.0
    )


@pytest.mark.parametrize(
    ("arms", "flagged", "judged"),
    [
        ((None, None), 0, True),  # nothing timed: nothing to hold latency against
        ((_sat(100, 5), None), 5, True),  # at the bound
        ((_sat(100, 6),), 6, False),  # beyond it
        ((_sat(100, 10), _sat(100, 0)), 10, True),  # pooled over the pair: 5 %
        ((_sat(50, 4), _sat(50, 4)), 8, False),
    ],
)
def test_latency_is_judged_unless_too_many_requests_were_timed_on_a_saturated_loop(
    arms: tuple[SaturationStats | None, ...], flagged: int, judged: bool
) -> None:
    got, reason = decide.latency_saturation(arms)
    assert got == flagged
    assert (reason is None) == judged
    if reason is not None:
        assert reason.startswith(f"{flagged} of ")
