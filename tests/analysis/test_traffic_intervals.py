"""Weighted cost intervals (prompt ``weight``), proven by simulation with known truth.

A population of prompts with known weights and known per-prompt cost distributions: the
weighted mean cost per request of the traffic mix is known exactly, so the share of simulated
runs whose 95 % interval holds it is the interval's real coverage.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis import decide, stats
from harness.analysis.analyze import SyntheticProfile, analyze_table, synthetic_observations
from harness.analysis.metrics import ObservationTable, costs_per_row
from harness.analysis.pricing import PriceBook
from harness.analysis.traffic import PromptTraffic, apply_traffic, traffic_costs
from harness.records import Observation, Usage
from harness.report.verdict import TRAFFIC_NOTE, traffic_mix

#: The frequent prompt is cheap, the rare ones dear: an unweighted mean is far from the mix's.
WEIGHTS = (40, 4, 1, 1)
BASE_USD = np.array([1.0, 5.0, 3.0, 8.0]) * 1e-4
#: Responses' cost relative to chat's, per prompt (the mix's ratio is not any prompt's).
RESPONSES_FACTOR = np.array([0.6, 1.0, 1.2, 1.4])
#: Gamma shape of a request's cost around its prompt's mean (coefficient of variation 0.35).
SHAPE = 8.0
REPEATS = 10
SIMS = 1000
ARMS = ("chat", "responses")
RESAMPLES = 1000


def _table(prompts: int, repeats: int) -> ObservationTable:
    """One cold request per prompt × repeat × arm, with usage (the costs are drawn apart)."""
    obs = [
        Observation(
            run_id="sim",
            scenario="mix",
            prompt_id=f"p{p}",
            arm=arm,
            api=arm,
            turn=1,
            repeat=r,
            conversation=f"p{p}/{arm}/{r}",
            cold=True,
            warmup=False,
            model="gpt-4.1-mini",
            stream=True,
            order=k,
            started_at=1.78e9 + k,
            status=200,
            ok=True,
            finish="completed",
            usage=Usage(input_tokens=100, cached_tokens=0, output_tokens=50),
        )
        for k, (r, p, arm) in enumerate(
            (r, p, arm)
            for r in range(repeats)
            for p in range(prompts)
            for arm in ("chat", "responses")
        )
    ]
    return ObservationTable.from_observations(obs)


def _draw(t: ObservationTable, rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    prompt = np.array([int(p[1:]) for p in t.prompt_id])
    responses = np.array([a == "responses" for a in t.arm])
    factor = np.resize(RESPONSES_FACTOR, base.size)
    mean = base[prompt] * np.where(responses, factor[prompt], 1.0)
    return np.asarray(mean * rng.gamma(SHAPE, 1.0 / SHAPE, size=mean.size))


@pytest.fixture(scope="module")
def coverage() -> dict[str, float]:
    """Coverage of the true weighted figures over ``SIMS`` simulated runs (shared by tests)."""
    t = _table(len(WEIGHTS), REPEATS)
    w = np.array(WEIGHTS, dtype=np.float64)
    truth = {
        "chat": float((w * BASE_USD).sum() / w.sum()),
        "responses": float((w * BASE_USD * RESPONSES_FACTOR).sum() / w.sum()),
    }
    truth["ratio"] = truth["responses"] / truth["chat"]
    weights = {f"p{p}": v for p, v in enumerate(WEIGHTS)}
    rng = np.random.default_rng(20261208)
    hits = dict.fromkeys(("chat", "responses", "ratio", "old_chat", "old_ratio"), 0)
    outside = 0
    for sim in range(SIMS):
        cost = _draw(t, rng, BASE_USD)
        new = traffic_costs(t, cost, weights, name="mix", seed=sim, resamples=RESAMPLES)
        old = traffic_costs(t, cost, {}, name="mix", seed=sim, resamples=RESAMPLES)
        for arm in ("chat", "responses"):
            got = new.arms[arm]
            assert got is not None and got.per_request_usd_ci95 is not None
            lo, hi = got.per_request_usd_ci95
            hits[arm] += lo <= truth[arm] <= hi
            outside += not lo <= got.per_request_usd <= hi
        ratio = new.ratios["responses_vs_chat"]
        assert ratio is not None and ratio.ci95 is not None and ratio.value is not None
        hits["ratio"] += ratio.ci95[0] <= truth["ratio"] <= ratio.ci95[1]
        outside += not ratio.ci95[0] <= ratio.value <= ratio.ci95[1]
        # the interval the report showed before: every conversation weighing the same
        plain, plain_ratio = old.arms["chat"], old.ratios["responses_vs_chat"]
        assert plain is not None and plain.per_request_usd_ci95 is not None
        assert plain_ratio is not None and plain_ratio.ci95 is not None
        hits["old_chat"] += (
            plain.per_request_usd_ci95[0] <= truth["chat"] <= plain.per_request_usd_ci95[1]
        )
        hits["old_ratio"] += plain_ratio.ci95[0] <= truth["ratio"] <= plain_ratio.ci95[1]
    out = {k: v / SIMS for k, v in hits.items()}
    out["point_outside"] = outside
    return out


@pytest.mark.parametrize("figure", ["chat", "responses", "ratio"])
def test_weighted_interval_covers_the_true_weighted_figure_95_percent(
    coverage: dict[str, float], figure: str
) -> None:
    # 1,000 runs: a binomial standard error of 0.7 points, so ±2.5 is over 3.5 of them
    assert 0.925 <= coverage[figure] <= 0.975, coverage


def test_the_unweighted_interval_misses_the_traffic_mix(coverage: dict[str, float]) -> None:
    assert coverage["old_chat"] < 0.05, coverage
    assert coverage["old_ratio"] < 0.10, coverage


def test_every_weighted_point_lies_inside_its_interval(coverage: dict[str, float]) -> None:
    assert coverage["point_outside"] == 0


def test_a_mix_resting_on_few_conversations_has_no_interval() -> None:
    """15 conversations, but the prompt carrying the traffic ran 3 times: 3 samples, not 15."""
    t = _table(5, 3)
    cost = _draw(t, np.random.default_rng(1), np.array([1.0, 5.0, 3.0, 8.0, 2.0]) * 1e-4)
    weights = {"p0": 100, "p1": 1, "p2": 1, "p3": 1, "p4": 1}
    got = traffic_costs(t, cost, weights, name="mix", resamples=200)
    chat = got.arms["chat"]
    assert chat is not None and chat.per_request_usd_ci95 is None
    assert chat.effective_conversations is not None and chat.effective_conversations <= 4
    ratio = got.ratios["responses_vs_chat"]
    assert ratio is not None and ratio.ci95 is None and ratio.decision == "too_few_samples"
    assert ratio.n_pairs < decide.MIN_CONVERSATIONS
    # every conversation weighing the same, the minimum is met
    plain = traffic_costs(t, cost, {}, name="mix", resamples=200).arms["chat"]
    assert plain is not None and plain.per_request_usd_ci95 is not None


@pytest.mark.parametrize(
    ("prompts", "repeats", "expected"),
    [(4, 10, (40, 4)), (2, 5, (10, 2)), (3, 20, (60, 3)), (12, 1, (12, 1))],
)
def test_equal_weights_give_the_unweighted_design(
    prompts: int, repeats: int, expected: tuple[int, int]
) -> None:
    t = _table(prompts, repeats)
    from harness.analysis.metrics import unit_ids

    _, n_units, clusters, strata = unit_ids(t, np.arange(len(t), dtype=np.int64))
    boot = stats.Bootstrap(n_units, clusters=clusters, strata=strata)
    n, s = boot.weighted_design(np.full(prompts * repeats, 3.0))
    assert (n, s) == pytest.approx(expected, rel=1e-12)
    assert boot.effective_conversations(np.ones(prompts * repeats)) == expected[0]


def test_skewed_weights_count_the_heavy_prompts_conversations() -> None:
    t = _table(4, 10)
    from harness.analysis.metrics import unit_ids

    _, n_units, clusters, strata = unit_ids(t, np.arange(len(t), dtype=np.int64))
    boot = stats.Bootstrap(n_units, clusters=clusters, strata=strata)
    shares = np.array([WEIGHTS[p] for p in strata.tolist()], dtype=np.float64)
    n, s = boot.weighted_design(shares)
    assert 10 <= n < 12 and 1 <= s < 1.3  # one prompt of 10 conversations carries 87 %


# --- weights of 1: today's figures, unchanged ------------------------------------------------


@pytest.fixture(scope="module")
def plain_run() -> tuple[ObservationTable, PriceBook]:
    profile = SyntheticProfile(chat_cache_fraction=0.6, responses_cache_advantage=0.2)
    obs = synthetic_observations(profile, prompts=3, turns=2, repeats=8, seed=3, scenario="plain")
    return ObservationTable.from_observations(obs), PriceBook()


def test_weights_of_one_reproduce_the_unweighted_intervals(
    plain_run: tuple[ObservationTable, PriceBook],
) -> None:
    """The weighted machinery is the unweighted one: same resamples, same design, same room
    for cache misses — with every weight 1 it gives the per-arm and ratio intervals of the
    analysis."""
    t, book = plain_run
    summary = analyze_table(t, book=book, seed=4, resamples=400).scenarios[0]
    got = traffic_costs(
        t,
        costs_per_row(t, book),
        {},
        billed=costs_per_row(t, book, without_nonce=True),
        missed=costs_per_row(t, book, without_nonce=True, missed=True),
        name="plain",
        seed=4,
        resamples=400,
    )
    for arm, a in summary.arms.items():
        mine = got.arms[arm]
        assert a.cost_usd is not None and mine is not None
        assert mine.per_request_usd == pytest.approx(a.cost_usd.per_request_usd.value, rel=1e-12)
        assert mine.per_request_usd_ci95 == pytest.approx(
            a.cost_usd.per_request_usd.ci95, rel=1e-12
        )
        assert mine.effective_conversations == 24
    for key, c in summary.comparisons.items():
        mine_ratio = got.ratios[key]
        assert c.cost_ratio is not None and mine_ratio is not None
        assert c.cost_ratio.ci95 is not None and mine_ratio.ci95 is not None
        assert mine_ratio.value == pytest.approx(c.cost_ratio.value, rel=1e-12)
        assert mine_ratio.ci95 == pytest.approx(c.cost_ratio.ci95, rel=1e-12)
        assert (mine_ratio.decision, mine_ratio.n_pairs) == (
            c.cost_ratio.decision,
            c.cost_ratio.n_pairs,
        )
    # the room for cache misses was at work (weighed alike), or the test proves less
    bare = traffic_costs(
        t,
        costs_per_row(t, book),
        {},
        billed=costs_per_row(t, book, without_nonce=True),
        name="plain",
        seed=4,
        resamples=400,
    ).ratios["responses_vs_chat"]
    widened = got.ratios["responses_vs_chat"]
    assert bare is not None and bare.ci95 is not None and widened is not None and widened.ci95
    assert widened.ci95[1] - widened.ci95[0] > 1.5 * (bare.ci95[1] - bare.ci95[0])


def test_weights_of_one_leave_the_summary_bit_identical(
    plain_run: tuple[ObservationTable, PriceBook],
) -> None:
    t, book = plain_run
    summary = analyze_table(t, book=book, seed=4, resamples=400)
    cost = costs_per_row(t, book)
    ones = {("plain", f"p{p}"): PromptTraffic(weight=1) for p in range(3)}
    assert apply_traffic(summary, t, cost, ones, seed=4, resamples=400) == summary
    referenced = {**ones, ("plain", "p0"): PromptTraffic(weight=1, reference="w1 w2")}
    after = apply_traffic(summary, t, cost, referenced, seed=4, resamples=400).scenarios[0]
    before = summary.scenarios[0]
    assert after.arms == before.arms and after.comparisons == before.comparisons
    assert after.prompts["p0"].reference  # only the reference similarity is added
    weighted = apply_traffic(
        summary, t, cost, {**ones, ("plain", "p0"): PromptTraffic(weight=5)}, seed=4
    ).scenarios[0]
    assert all(a.cost_usd and a.cost_usd.weighted for a in weighted.arms.values())


def test_the_report_says_why_a_thin_mix_has_no_interval() -> None:
    t = _table(5, 3)
    book = PriceBook()
    summary = analyze_table(t, book=book, resamples=200)
    traffic = {("mix", f"p{p}"): PromptTraffic(weight=100 if p == 0 else 1) for p in range(5)}
    sc = apply_traffic(summary, t, costs_per_row(t, book), traffic, resamples=200).scenarios[0]
    chat = sc.arms["chat"].cost_usd
    assert chat is not None and chat.weighted is not None
    n = chat.weighted.effective_conversations
    assert n is not None and n < decide.MIN_CONVERSATIONS
    text = traffic_mix(sc)
    assert text is not None
    assert f"(no interval: {n} effective conversations, fewer than 10)" in text
    assert "responses/chat" in text and f"(too few samples, n = {n})" in text
    assert TRAFFIC_NOTE in text
