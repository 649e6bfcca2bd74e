"""The migration guide's claims: the verdict rule, and runs mimicking emulator profiles."""

from __future__ import annotations

from typing import Any

import pytest

from harness.analysis import decide
from harness.analysis.analyze import SyntheticProfile, analyze_table, synthetic_observations
from harness.analysis.claims import evaluate_claims
from harness.analysis.metrics import ObservationTable
from harness.records import RunMeta
from harness.summary import Claim, Comparison, Effect, Similarity


@pytest.mark.parametrize(
    ("ci", "claimed", "open_upper", "expected"),
    [
        ((2.2, 2.8), (2.0, 3.0), False, "supported"),
        ((2.0, 3.0), (2.0, 3.0), False, "supported"),  # touching the bounds is inside
        ((3.1, 3.5), (2.0, 3.0), False, "contradicted"),
        ((0.9, 1.1), (2.0, 3.0), False, "contradicted"),
        ((1.8, 2.4), (2.0, 3.0), False, "inconclusive"),  # straddles a bound
        ((1.5, 3.5), (2.0, 3.0), False, "inconclusive"),  # contains the whole range
        (None, (2.0, 3.0), False, "inconclusive"),
        ((0.8, 0.9), (0.0, 1.0), True, "supported"),
        ((1.0, 1.0), (0.0, 1.0), True, "contradicted"),  # an unchanged bill is not "lower"
        ((0.95, 1.02), (0.0, 1.0), True, "inconclusive"),
    ],
)
def test_verdict_rule(
    ci: tuple[float, float] | None, claimed: tuple[float, float], open_upper: bool, expected: str
) -> None:
    """The interval against the range, when the card's decision is the claim's direction."""
    assert decide.claim_verdict(ci, claimed, "better", "better", open_upper=open_upper) == expected


@pytest.mark.parametrize("decision", ["equivalent", "unclear", "worse", "too_few_samples", None])
def test_a_claim_inside_its_range_is_not_supported_unless_the_card_agrees(
    decision: decide.Decision | None,
) -> None:
    # inside [0, 1): a range claim alone would be "supported"; the margin rule says it is not
    assert decide.claim_verdict((0.985, 0.995), (0.0, 1.0), decision, "better") == "inconclusive"


def _effect(value: float, lo: float, hi: float) -> Effect:
    return Effect(value=value, ci95=(lo, hi), significant=not lo <= 1.0 <= hi, n_pairs=30)


def _comparison(**metrics: Effect | None) -> Comparison:
    fields: dict[str, Any] = {
        name: None
        for name in (
            "ttft_p50_ratio",
            "ttfb_p50_ratio",
            "total_p50_ratio",
            "sdk_ttft_p50_ratio",
            "sdk_total_p50_ratio",
            "cold_ttft_ratio",
            "warm_ttft_ratio",
            "cold_total_ratio",
            "cache_hit_ratio_delta",
            "cache_hit_improvement",
            "cost_ratio",
            "output_tokens_ratio",
            "error_rate_delta",
        )
    }
    fields.update(metrics)
    return Comparison(
        a="responses",
        b="chat",
        replicate=False,
        n_pairs=30,
        **fields,
        similarity=Similarity(text=None, json_=None, tool_calls=None, semantic=None),
        power=None,
    )


def test_claims_from_a_crafted_comparison() -> None:
    c = _comparison(
        cold_ttft_ratio=_effect(2.5, 2.3, 2.7),
        cache_hit_improvement=_effect(0.6, 0.5, 0.7),
        cache_hit_ratio_delta=_effect(0.2, 0.15, 0.25),
        cost_ratio=_effect(0.9, 0.85, 0.95),
    )
    claims = evaluate_claims({"responses_vs_chat": c})
    assert {k: v.verdict for k, v in claims.items()} == {
        "first_request_slower": "supported",
        "cache_utilization_better": "supported",
        "cost": "supported",
    }
    assert claims["first_request_slower"].metric == "responses_vs_chat.cold_ttft_ratio"
    assert claims["cost"].note.startswith("per-token prices are the same")
    assert claims["cost"].note == (
        "per-token prices are the same for one model; the bill changes: it falls beyond the "
        "±2 % margin: responses costs -10.0 % (-15.0 % to -5.0 %) per request vs chat"
    )
    assert all(cl.injected_by_profile is None for cl in claims.values())


def test_contaminated_cache_makes_the_caching_and_cost_claims_not_assessable() -> None:
    metrics = {
        "cache_hit_improvement": _effect(0.6, 0.5, 0.7),
        "cache_hit_ratio_delta": _effect(0.2, 0.15, 0.25),
        "cost_ratio": _effect(0.9, 0.85, 0.95),
    }
    clean = evaluate_claims({"responses_vs_chat": _comparison(**metrics)})
    assert clean["cache_utilization_better"].verdict == clean["cost"].verdict == "supported"
    shadow = _comparison(**metrics).model_copy(update={"cache_contaminated": True})
    claims = evaluate_claims({"responses_vs_chat": shadow}, emulator_profile="parity")
    cache, cost = claims["cache_utilization_better"], claims["cost"]
    assert (
        cache.verdict == cost.verdict == "inconclusive" and cache.contaminated and cost.contaminated
    )
    assert cache.value is None and cache.metric is None
    assert cost.value == pytest.approx(0.9)  # the bill is still shown
    for claim in (cache, cost):
        assert "not assessable: the cache figures of a shadow run are contaminated" in claim.note
    assert not claims["first_request_slower"].contaminated


def test_non_streaming_falls_back_to_cold_total_latency() -> None:
    c = _comparison(cold_total_ratio=_effect(4.0, 3.5, 4.5))
    claim = evaluate_claims({"responses_vs_chat": c})["first_request_slower"]
    assert claim.metric == "responses_vs_chat.cold_total_ratio"
    assert claim.verdict == "contradicted" and "total latency" in claim.note


@pytest.mark.parametrize(
    ("delta", "note"), [(0.35, "chat cached nothing"), (0.0, "neither arm had a cache hit")]
)
def test_zero_baseline_cache_is_reported_in_points(delta: float, note: str) -> None:
    c = _comparison(cache_hit_ratio_delta=_effect(delta, delta - 0.05, delta + 0.05))
    claim = evaluate_claims({"responses_vs_chat": c})["cache_utilization_better"]
    assert claim.unit == "points" and claim.value == pytest.approx(delta * 100)
    assert claim.claimed_range is None and claim.verdict == "inconclusive"
    assert note in claim.note


def test_emulator_profile_is_named_in_every_verdict() -> None:
    claims = evaluate_claims({"responses_vs_chat": _comparison()}, emulator_profile="parity")
    for cl in claims.values():
        assert cl.injected_by_profile == "parity"
        assert cl.note.startswith("injected by profile parity (emulator, not OpenAI)")
        assert cl.verdict == "inconclusive"  # nothing measured


def test_claims_need_both_apis() -> None:
    claims = evaluate_claims({"chat#2_vs_chat": _comparison()})
    assert all(cl.verdict == "inconclusive" and cl.value is None for cl in claims.values())
    assert "needs a chat arm and a responses arm" in claims["cost"].note


def test_chained_arm_stands_in_when_responses_is_absent() -> None:
    c = _comparison(cold_ttft_ratio=_effect(2.5, 2.3, 2.7))
    claim = evaluate_claims({"responses_chained_vs_chat": c})["first_request_slower"]
    assert claim.metric == "responses_chained_vs_chat.cold_ttft_ratio"


# --- runs mimicking the emulator's profiles ---------------------------------------------------

# Lognormal jitter σ = 0.2 with 40 repeats × 3 prompts = 120 cold pairs: the log ratio of
# medians has a standard error of ~0.04, so "within 10 %" is a 2.4-sigma band.
GUIDE_CLAIMS = SyntheticProfile(responses_cold_ratio=2.5, responses_cache_advantage=0.6, sigma=0.2)
ABOVE = SyntheticProfile(responses_cold_ratio=4.0, responses_cache_advantage=1.2, sigma=0.2)
BELOW = SyntheticProfile(responses_cold_ratio=1.3, responses_cache_advantage=0.1, sigma=0.2)
PARITY = SyntheticProfile(sigma=0.2)


def _claims(profile: SyntheticProfile, name: str, seed: int = 0) -> dict[str, Claim]:
    table = ObservationTable.from_observations(
        synthetic_observations(profile, repeats=40, prompts=3, turns=2, seed=seed)
    )
    meta = RunMeta(
        run_id="synthetic",
        created_at=1.78e9,
        seed=seed,
        target="emulator",
        is_emulator=True,
        emulator_profile=name,
    )
    summary = analyze_table(table, meta, resamples=1000, seed=seed)
    return summary.scenarios[0].claims


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_guide_claims_profile_is_recovered_and_supported(seed: int) -> None:
    claims = _claims(GUIDE_CLAIMS, "guide-claims", seed)
    first, cache = claims["first_request_slower"], claims["cache_utilization_better"]
    assert first.value == pytest.approx(2.5, rel=0.10)
    assert cache.value == pytest.approx(0.6, rel=0.10)
    assert first.verdict == "supported" and cache.verdict == "supported"
    assert "injected by profile guide-claims" in first.note
    assert claims["cost"].verdict == "supported"  # more cached tokens → a lower bill


@pytest.mark.parametrize(("profile", "name"), [(ABOVE, "above"), (BELOW, "below")])
def test_values_outside_the_claimed_ranges_are_contradicted(
    profile: SyntheticProfile, name: str
) -> None:
    claims = _claims(profile, name)
    assert claims["first_request_slower"].verdict == "contradicted"
    assert claims["cache_utilization_better"].verdict == "contradicted"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_parity_never_supports_a_claim(seed: int) -> None:
    claims = _claims(PARITY, "parity", seed)
    assert all(cl.verdict != "supported" for cl in claims.values()), {
        k: (v.value, v.ci95, v.verdict) for k, v in claims.items()
    }


def test_a_mixed_run_judges_the_first_request_on_every_cold_request() -> None:
    """Symptom 4 of issue 19: one prompt streamed, two not — the claim and the report's cold
    card use cold total latency over all cold conversations, not TTFT of the streamed third."""
    from harness.report.verdict import speed_findings

    repeats = 12
    obs = [
        o
        if o.prompt_id == "p0"
        else o.model_copy(
            update={"stream": False, "ttft_ms": None, "sdk_ttft_ms": None, "first_output_ms": None}
        )
        for o in synthetic_observations(
            SyntheticProfile(responses_cold_ratio=2.5, sigma=0.05, drift=0.0),
            arms=("chat", "responses"),
            repeats=repeats,
        )
    ]
    sc = analyze_table(ObservationTable.from_observations(obs), resamples=200).scenarios[0]
    c = sc.comparisons["responses_vs_chat"]
    assert c.cold_ttft_ratio is not None and c.cold_ttft_ratio.n_pairs == repeats
    assert c.cold_total_ratio is not None and c.cold_total_ratio.n_pairs == 3 * repeats
    claim = sc.claims["first_request_slower"]
    assert claim.metric == "responses_vs_chat.cold_total_ratio"
    assert claim.value == c.cold_total_ratio.value and "total latency" in claim.note
    (card,) = [f for f in speed_findings(c) if f.topic == "First request (cold)"]
    assert card.detail.startswith("cold total latency: ")
    assert "36 conversations" in card.detail


def test_a_fully_streamed_run_judges_the_first_request_on_ttft() -> None:
    obs = synthetic_observations(
        SyntheticProfile(responses_cold_ratio=2.5), arms=("chat", "responses"), repeats=10
    )
    sc = analyze_table(ObservationTable.from_observations(obs), resamples=200).scenarios[0]
    assert sc.claims["first_request_slower"].metric == "responses_vs_chat.cold_ttft_ratio"
