"""Test the migration guide's claims on one scenario's comparisons.

Verdict rule (:func:`harness.analysis.decide.claim_verdict`, the cards' rule): **supported**
when the 95 % interval lies inside the claimed range *and* the metric's card decision is the
claim's direction (beyond the equivalence margin), **contradicted** when it lies wholly outside
the range, otherwise **inconclusive** — always with too few conversations. On an emulator run
the numbers were put there by the emulator's profile, and every note says so.

The three claims, all on ``responses_vs_chat`` (or ``responses_chained_vs_chat``):

- ``first_request_slower``: cold (turn 1) TTFT ratio in [2, 3]; cold total latency when not
  every cold request was streamed (:func:`first_request_effect`).
- ``cache_utilization_better``: relative improvement of the cache hit ratio in [0.40, 0.80]; when
  Chat cached nothing the improvement is undefined and the absolute difference is reported in
  percentage points (verdict inconclusive).
- ``cost``: "better caching … means lower costs" at "the same per-token pricing": the measured
  cost-per-request ratio must lie below 1 − the cost margin (the range [0, 1 − m) is open at
  its top, so a bill the cost card calls unchanged contradicts it). The note says whether, and
  by how much, the bill changes.

On a shadow run (``contaminated_cache``) the second call of each pair found the prefix the
first one had just cached, and production prompts cannot carry a cache nonce: the caching claim
is **not assessable** (no figure, verdict inconclusive, ``contaminated``), and so is the cost
claim, whose bill rests on those cache hits (its measured ratio is still shown).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from harness import fmt
from harness.analysis import decide, stats
from harness.summary import Claim, ClaimUnit, Comparison, Effect, Interval, Verdict

FIRST_REQUEST_QUOTE = "The Responses API typically requires 2-3x longer on the first request"
CACHE_QUOTE = "improved caching (40-80% better than Chat Completions)"
COST_QUOTE = (
    "Better caching - 40-80% improvement over Chat Completions means lower costs; "
    "Model costs: Same per-token pricing as Chat Completions"
)


def _pick(comparisons: Mapping[str, Comparison]) -> tuple[str, Comparison] | None:
    for key in ("responses_vs_chat", "responses_chained_vs_chat"):
        if key in comparisons:
            return key, comparisons[key]
    return None


#: The guide's words for each claim, quoted beside the verdict.
QUOTES = {
    "first_request_slower": FIRST_REQUEST_QUOTE,
    "cache_utilization_better": CACHE_QUOTE,
    "cost": COST_QUOTE,
}

CLAIMED_TEXT = {
    "first_request_slower": "2–3× slower",
    "cache_utilization_better": "+40–80 %",
    "cost": "< 1 (cheaper)",
}


CONTAMINATED_NOTE = (
    "not assessable: the cache figures of a shadow run are contaminated — each mirrored call "
    "was sent right after the live one with the same prompt prefix, and production prompts "
    "carry no cache nonce, so the second call's cache hits are the first call's doing"
)


def _claim(
    claim: str,
    metric: str | None,
    unit: ClaimUnit,
    e: Effect | None,
    claimed: Interval | None,
    note: str,
    profile: str | None,
    *,
    scale: float = 1.0,
    force: Verdict | None = None,
    open_upper: bool = False,
    contaminated: bool = False,
    direction: Literal["better", "worse"] = "better",
    claimed_text: str | None = None,
    min_repeats: int | None = None,
    rule: decide.Rule | None = None,
) -> Claim:
    value = e.value * scale if e is not None and e.value is not None else None
    ci = (e.ci95[0] * scale, e.ci95[1] * scale) if e is not None and e.ci95 else None
    decision = e.decision if e is not None else None
    if e is not None and decision is None and rule is not None:
        decision = decide.decide(e.ci95, e.n_pairs, rule)  # a summary from before decisions
    v: Verdict = (
        "inconclusive"
        if contaminated
        else force or decide.claim_verdict(ci, claimed, decision, direction, open_upper=open_upper)
    )
    if e is not None and decision == "too_few_samples":
        note = f"{decide.too_few_text(e.n_pairs, min_repeats)}; {note}"
    elif (
        v == "inconclusive"
        and force is None
        and not contaminated
        and ci is not None
        and claimed is not None
        and claimed[0] <= ci[0]
        and ci[1] <= claimed[1]
    ):
        note += "; inside the claimed range but not beyond the equivalence margin"
    if profile is not None:
        note = f"injected by profile {profile} (emulator, not OpenAI): {note}"
    return Claim(
        claim=claim,
        quote=QUOTES[claim],
        metric=metric,
        unit=unit,
        value=value,
        ci95=ci,
        claimed_range=claimed,
        claimed=claimed_text or CLAIMED_TEXT[claim],
        verdict=v,
        note=note,
        injected_by_profile=profile,
        contaminated=contaminated,
    )


def _cache_unmeasured(note: str, profile: str | None, *, contaminated: bool = False) -> Claim:
    """The caching claim with no value: nothing to measure, or a cache others may have warmed."""
    return _claim(
        "cache_utilization_better",
        None,
        "relative",
        None,
        (0.40, 0.80),
        note,
        profile,
        contaminated=contaminated,
    )


def first_request_effect(c: Comparison) -> tuple[str, Effect | None]:
    """The first-request (cold) measure of ``c`` and its name: cold TTFT when it covers every
    cold conversation measured, else cold total latency, which every reply has.

    A run whose requests are not all streamed has TTFT on the streamed ones only: judging on
    those would ignore the rest (5 streamed pairs against 40 measured cold requests).
    """
    ttft, total = c.cold_ttft_ratio, c.cold_total_ratio
    if ttft is not None and (total is None or ttft.n_pairs >= total.n_pairs):
        return "cold_ttft_ratio", ttft
    return "cold_total_ratio", total


def _first_request(key: str, c: Comparison, profile: str | None, margins: decide.Margins) -> Claim:
    name, e = first_request_effect(c)
    if e is None:
        note = "no cold requests measured in both arms"
    else:
        what = "time to first token" if name == "cold_ttft_ratio" else "total latency"
        note = (
            f"first (cold) request {what} on {c.a} is {fmt.ratio(e.value or 0.0)} "
            f"{fmt.possessive(c.b)}"
        )
        if c.latency_not_judged:
            note += f"; not judged: {c.latency_not_judged}"
    return _claim(
        "first_request_slower",
        f"{key}.{name}",
        "ratio",
        e,
        (2.0, 3.0),
        note,
        profile,
        direction="worse",
        min_repeats=c.min_repeats,
        rule=decide.rule_for(name, margins),
        force="inconclusive" if c.latency_not_judged and e is not None else None,
    )


def cache_claim(key: str, c: Comparison, profile: str | None, margins: decide.Margins) -> Claim:
    """ "Cache utilization 40–80 % better" on comparison ``key`` (a relative improvement of the
    cache hit ratio of ``c.a`` over ``c.b``'s); not assessable on a contaminated comparison."""
    if c.cache_contaminated:
        return _cache_unmeasured(CONTAMINATED_NOTE, profile, contaminated=True)
    rel, delta = c.cache_hit_improvement, c.cache_hit_ratio_delta
    if rel is not None and rel.decision is None and delta is not None:
        # a summary from before decisions: judge the improvement by the absolute difference
        rule = decide.rule_for("cache_hit_ratio_delta", margins)
        if rule is not None:
            rel = rel.model_copy(
                update={"decision": decide.decide(delta.ci95, delta.n_pairs, rule)}
            )
    if rel is not None:
        change = fmt.pct(rel.value or 0.0, 1, sign=True)
        note = f"{c.a} cache hit ratio is {change} relative to {fmt.possessive(c.b)}"
        return _claim(
            "cache_utilization_better",
            f"{key}.cache_hit_improvement",
            "relative",
            rel,
            (0.40, 0.80),
            note,
            profile,
            min_repeats=c.min_repeats,
        )
    if delta is None:
        return _cache_unmeasured("no token usage reported by both arms", profile)
    # Chat cached nothing: a relative improvement is undefined, report absolute points.
    if (delta.value or 0.0) == 0.0:
        note = "neither arm had a cache hit (prompts under 1,024 tokens, or caching off)"
    else:
        note = (
            f"{c.b} cached nothing, so a relative improvement is undefined; {c.a} cached "
            f"{fmt.num((delta.value or 0.0) * 100, 1)} points more of its input"
        )
    return _claim(
        "cache_utilization_better",
        f"{key}.cache_hit_ratio_delta",
        "points",
        delta,
        None,
        note,
        profile,
        scale=100.0,
        force="inconclusive",
    )


def _cost(key: str, c: Comparison, profile: str | None, margins: decide.Margins) -> Claim:
    e = c.cost_ratio
    m = margins.cost_pct / 100
    rule = decide.rule_for("cost_ratio", margins)
    if e is not None and e.decision is None and rule is not None:
        e = e.model_copy(update={"decision": decide.decide(e.ci95, e.n_pairs, rule)})
    if c.cache_contaminated:  # shadow pairs: no cost ratio is computed at all
        note = f"{CONTAMINATED_NOTE}; the bill rests on those cache hits"
    elif e is None or e.value is None:
        note = "cost unknown (a model has no price: add it with --prices FILE)"
    else:
        change = {
            "better": f"changes: it falls beyond the ±{fmt.pct(m)} margin",
            "worse": f"changes: it rises beyond the ±{fmt.pct(m)} margin",
            "equivalent": f"stays within ±{fmt.pct(m)}",
            "unclear": "may or may not change (the interval straddles the margin)",
            "too_few_samples": "cannot be judged yet",
        }.get(e.decision or "unclear", "")
        ci = (e.ci95[0] - 1.0, e.ci95[1] - 1.0) if e.ci95 else None
        note = (
            f"per-token prices are the same for one model; the bill {change}: "
            f"{c.a} costs {fmt.estimate(e.value - 1.0, ci, 'pct')} per request vs {c.b}"
        )
    return _claim(
        "cost",
        f"{key}.cost_ratio",
        "ratio",
        e,
        (0.0, 1.0 - m),
        note,
        profile,
        open_upper=True,
        contaminated=c.cache_contaminated,
        claimed_text=f"< {fmt.num(1.0 - m, 2)} (cheaper beyond the ±{fmt.pct(m)} margin)",
        min_repeats=c.min_repeats,
    )


def evaluate_claims(
    comparisons: Mapping[str, Comparison],
    *,
    emulator_profile: str | None = None,
    margins: decide.Margins = decide.DEFAULT_MARGINS,
) -> dict[str, Claim]:
    """The guide's claims tested on ``responses_vs_chat`` (or the chained arm if alone)."""
    picked = _pick(comparisons)
    if picked is None:
        missing: tuple[tuple[str, ClaimUnit, Interval], ...] = (
            ("first_request_slower", "ratio", (2.0, 3.0)),
            ("cache_utilization_better", "relative", (0.40, 0.80)),
            ("cost", "ratio", (0.0, 1.0)),
        )
        return {
            name: _claim(
                name,
                None,
                unit,
                None,
                rng,
                "needs a chat arm and a responses arm",
                emulator_profile,
            )
            for name, unit, rng in missing
        }
    key, c = picked
    return {
        "first_request_slower": _first_request(key, c, emulator_profile, margins),
        "cache_utilization_better": cache_claim(key, c, emulator_profile, margins),
        "cost": _cost(key, c, emulator_profile, margins),
    }


def _strata(n: int, per_repeat: int) -> int:
    """Prompts the bootstrap stratifies by: every prompt with ≥ 2 conversations (else 1)."""
    return per_repeat if per_repeat > 1 and n >= 2 * per_repeat else 1


def repeats_to_support(
    claims: Mapping[str, Claim],
    comparisons: Mapping[str, Comparison],
    conversations_per_repeat: int,
    *,
    power: float = stats.DEFAULT_TARGET_POWER,
) -> dict[str, int | None]:
    """Repeats at which each claim, were its truth mid-range, would be supported in ``power`` of
    runs — scaled from this run's interval widths (:func:`harness.analysis.stats.samples_to_fit`;
    for "cheaper", whose range is open at 0, the run's estimate is taken as the truth). None
    where the run gives no basis: no interval, contaminated, or the estimate outside the range."""
    out: dict[str, int | None] = {}
    for name, claim in claims.items():
        out[name] = None
        if claim.ci95 is None or claim.claimed_range is None or claim.metric is None:
            continue
        if claim.contaminated or claim.unit == "points":
            continue
        key, _, metric = claim.metric.partition(".")
        effect = getattr(comparisons.get(key), metric, None)
        if not isinstance(effect, Effect) or not effect.n_pairs:
            continue
        shift = 1.0 if claim.unit == "relative" else 0.0  # +60 % → a ratio of 1.6
        need = stats.samples_to_fit(
            (claim.ci95[0] + shift, claim.ci95[1] + shift),
            effect.n_pairs,
            (claim.claimed_range[0] + shift, claim.claimed_range[1] + shift),
            None if claim.value is None else claim.value + shift,
            strata=_strata(effect.n_pairs, conversations_per_repeat),
            power=power,
        )
        if need is not None:
            per = max(1, conversations_per_repeat)
            out[name] = max(decide.min_repeats(per), -(-need // per))
    return out
