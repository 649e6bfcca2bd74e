"""No page can show a card, a headline and a claim that disagree (property test).

Summaries are generated the way the analysis builds them — an interval and a number of
conversations per effect, decided by :mod:`harness.analysis.decide` — and also without recorded
decisions (a summary.json from before them), then rendered into cards, the headline sentence
and the guide's claims.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.analysis import decide
from harness.analysis.claims import evaluate_claims
from harness.report.verdict import findings, sentence
from harness.summary import ArmSummary, Comparison, Effect, Similarity

_RATIO_FIELDS = (
    "ttft_p50_ratio",
    "total_p50_ratio",
    "cold_ttft_ratio",
    "cost_ratio",
    "output_tokens_ratio",
)


@st.composite
def _interval(draw: st.DrawFn, lo: float, hi: float) -> tuple[float, float]:
    a = draw(st.floats(lo, hi, allow_nan=False))
    b = draw(st.floats(lo, hi, allow_nan=False))
    if draw(st.booleans()):  # edges of the margins and ties, where rounding bites
        a = draw(st.sampled_from([a, 1.0, 0.98, 0.9, 1.1, 1.02, 2.0, 3.0]))
    return (min(a, b), max(a, b))


@st.composite
def _effect(draw: st.DrawFn, name: str, lo: float, hi: float, recorded: bool) -> Effect | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    ci = draw(_interval(lo, hi))
    n = draw(st.sampled_from([4, 9, 10, 11, 20, 60]))
    rule = decide.rule_for(name)
    assert rule is not None
    shown = ci if n >= decide.MIN_CONVERSATIONS else None
    value = (ci[0] + ci[1]) / 2
    return Effect(
        value=value,
        ci95=shown,
        significant=decide.excludes(shown, 1.0 if rule.scale == "ratio" else 0.0),
        n_pairs=n,
        decision=decide.decide(shown, n, rule) if recorded else None,
        margin=rule.margin if recorded else None,
    )


@st.composite
def _comparison(draw: st.DrawFn) -> Comparison:
    recorded = draw(st.booleans())
    fields: dict[str, Any] = {
        name: None
        for name in (
            "ttfb_p50_ratio",
            "sdk_ttft_p50_ratio",
            "sdk_total_p50_ratio",
            "warm_ttft_ratio",
            "cold_total_ratio",
        )
    }
    for name in _RATIO_FIELDS:
        fields[name] = draw(_effect(name, 0.5, 3.5, recorded))
    delta = draw(_effect("cache_hit_ratio_delta", -0.3, 0.3, recorded))
    fields["cache_hit_ratio_delta"] = delta
    fields["error_rate_delta"] = draw(_effect("error_rate_delta", -0.2, 0.2, recorded))
    improvement = None
    if delta is not None and draw(st.booleans()):
        ci = draw(_interval(-0.5, 1.2))
        improvement = Effect(
            value=(ci[0] + ci[1]) / 2,
            ci95=ci if delta.ci95 is not None else None,
            significant=None,
            n_pairs=delta.n_pairs,
            decision=delta.decision,
            margin=delta.margin,
        )
    fields["cache_hit_improvement"] = improvement
    return Comparison(
        a="responses",
        b="chat",
        replicate=False,
        n_pairs=60,
        **fields,
        similarity=Similarity(text=None, json_=None, tool_calls=None, semantic=None),
        power=None,
        min_repeats=5,
    )


def _arm(errors: int) -> ArmSummary:
    empty: dict[str, Any] = {
        k: None
        for k in (
            "ttft_ms",
            "ttfb_ms",
            "total_ms",
            "sdk_ttft_ms",
            "sdk_ttfb_ms",
            "sdk_total_ms",
            "cold_ttft_ms",
            "warm_ttft_ms",
            "cold_total_ms",
            "warm_total_ms",
            "input_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cache_hit_ratio",
            "cache",
            "cost_usd",
        )
    }
    return ArmSummary(
        api="chat",
        model="m",
        requests=20,
        errors=errors,
        error_rate=errors / 20,
        warmup_excluded=0,
        per_turn=[],
        finish={},
        error_types={},
        **empty,
    )


@settings(max_examples=250, deadline=None)
@given(_comparison(), st.integers(0, 5), st.integers(0, 5))
def test_cards_headline_and_claims_never_disagree(c: Comparison, ea: int, eb: int) -> None:
    arms = {"responses": _arm(ea), "chat": _arm(eb)}
    cards = {f.topic: f for f in findings(c, arms)}
    head = sentence(c, list(cards.values()))
    claims = evaluate_claims({"responses_vs_chat": c})

    cost, cold, cache = cards["Cost"], cards["First request (cold)"], cards["Caching"]
    # a claim is supported only where its card says the same thing beyond the margin
    if claims["cost"].verdict == "supported":
        assert cost.kind == "better", (cost, claims["cost"])
    if claims["cost"].verdict == "contradicted":
        assert cost.kind != "better", (cost, claims["cost"])
    if claims["first_request_slower"].verdict == "supported":
        assert cold.kind == "worse", (cold, claims["first_request_slower"])
    if claims["cache_utilization_better"].verdict == "supported":
        assert cache.kind == "better", (cache, claims["cache_utilization_better"])
    # too few samples: no verdict anywhere
    for e, claim in ((c.cost_ratio, "cost"), (c.cold_ttft_ratio, "first_request_slower")):
        if e is not None and e.n_pairs < decide.MIN_CONVERSATIONS:
            assert claims[claim].verdict == "inconclusive"
            assert "too few samples" in claims[claim].note
    if c.cost_ratio is not None and c.cost_ratio.n_pairs < decide.MIN_CONVERSATIONS:
        assert cost.kind == "unclear" and cost.headline.startswith("Too few samples")
    # the headline says what the cards say
    assert ("cheaper" in head) == (cost.kind == "better"), (head, cost)
    assert ("more expensive" in head) == (cost.kind == "worse"), (head, cost)
    assert ("costs the same" in head) == (cost.kind == "same"), (head, cost)
    speed = cards["Time to first token"]
    if speed.kind == "unknown":
        speed = cards["Total time"]
    assert ("is as fast" in head) == (speed.kind == "same"), (head, speed)
    sized = re.search(r" is [0-9.,]+(×| %) (faster|slower)", head) is not None
    assert sized == (speed.kind in ("better", "worse")), (head, speed)
    # "not significant" is never "no real difference"
    for card in cards.values():
        if card.kind == "same" and card.topic in ("Cost", "Time to first token", "Total time"):
            assert "within ±" in card.headline
    errors = cards["Errors"]
    if errors.kind == "same" and (ea or eb):
        d = c.error_rate_delta
        assert d is not None and d.ci95 is not None
        assert d.ci95[0] >= -0.01 - 1e-9 and d.ci95[1] <= 0.01 + 1e-9
