"""Plain-word findings from a comparison: is ``a`` faster, cheaper, equivalent to ``b``?

Every finding is the decision of :mod:`harness.analysis.decide` (recorded on each
:class:`harness.summary.Effect`), the rule the claims and gates use too:

- **same** — the 95 % interval lies wholly within the equivalence margin (±10 % latency, ±2 %
  cost, ±2 points cache, ±1 point errors by default; the scenario's ``margins:``);
- **better / worse** — the whole interval lies beyond the margin;
- **unclear** — anything else, and too few conversations (no interval); "not significant" is
  never "no real difference";
- **unknown** — nothing to judge (no streaming, no price, no A/A arm…).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from harness.analysis import decide
from harness.analysis.claims import first_request_effect
from harness.arms import Arm
from harness.fmt import arm_name, effect, estimate, interval, num, pct, possessive, ratio
from harness.summary import ArmSummary, Comparison, Effect, ScenarioSummary, SimilarityStats

Kind = Literal["better", "worse", "same", "unclear", "unknown"]

LATENCY_MARGIN = decide.DEFAULT_MARGINS.latency_pct / 100
COST_MARGIN = decide.DEFAULT_MARGINS.cost_pct / 100
_KIND: dict[decide.Decision, Kind] = {
    "better": "better",
    "worse": "worse",
    "equivalent": "same",
    "unclear": "unclear",
    "too_few_samples": "unclear",
}


@dataclass(frozen=True)
class Finding:
    """One judged aspect of a comparison, in words."""

    topic: str
    kind: Kind
    headline: str
    detail: str
    short: str = ""  # the number behind it, for the at-a-glance table


def headline_comparisons(sc: ScenarioSummary) -> list[tuple[str, Comparison]]:
    """Comparisons that answer the migration question: a Responses arm against Chat.

    A/A replicates (``chat#2``) are the noise floor, not a verdict. When a scenario has no
    Chat arm, every non-replicate comparison of base arms is a headline.
    """
    base = [
        (k, c)
        for k, c in sc.comparisons.items()
        if not c.replicate and not Arm.of(c.a).is_replicate and not Arm.of(c.b).is_replicate
    ]
    vs_chat = [(k, c) for k, c in base if c.b == "chat"]
    return vs_chat or base


def _size(v: float, lower: str, higher: str) -> str:
    digits = 1 if abs(v - 1) < 0.01 else 0
    if v < 1:
        return f"{pct(1 - v, digits)} {lower}"
    if v >= 2:
        return f"{num(v, 1)}× {higher}"
    return f"{pct(v - 1, digits)} {higher}"


def _short(e: Effect | None, kind: str = "ratio") -> str:
    return effect(e, kind).removesuffix(" *")


def decision_of(e: Effect, rule: decide.Rule) -> decide.Decision:
    """The effect's recorded decision, or the rule's on its interval (older summaries, and
    between-run effects)."""
    return e.decision or decide.decide(e.ci95, e.n_pairs, rule)


def judge(e: Effect | None, rule: decide.Rule) -> Kind:
    """better, worse, same, unclear or unknown from a's side under ``rule`` (its margin and
    direction; :func:`harness.analysis.decide.decide`)."""
    if e is None or e.value is None:
        return "unknown"
    return _KIND[decision_of(e, rule)]


def judge_ratio(e: Effect | None, margin: float) -> Kind:
    """:func:`judge` for a lower-is-better ratio a/b."""
    return judge(e, decide.Rule("ratio", margin))


def _too_few(c: Comparison, e: Effect) -> str:
    return decide.too_few_text(e.n_pairs, c.min_repeats)


def _ratio_finding(
    topic: str,
    what: str,
    c: Comparison,
    e: Effect | None,
    margin: float,
    lower: str,
    higher: str,
    *,
    power_hint: str = "",
    not_judged: str | None = None,
) -> Finding:
    a, b = arm_name(c.a), arm_name(c.b)
    if e is None or e.value is None:
        return Finding(topic, "unknown", f"{what}: not measured", f"no {what} in both arms")
    margin = e.margin if e.margin is not None else margin
    decision = decision_of(e, decide.Rule("ratio", margin))
    kind = _KIND[decision]
    ci = f"95 % CI {interval(e.ci95, 'ratio')}" if e.ci95 else "no interval"
    detail = f"{what}: {a} {ratio(e.value)} {possessive(b)} ({ci}, {e.n_pairs} conversations)"
    if decision == "too_few_samples":
        headline = _too_few(c, e).capitalize()
    elif kind in ("better", "worse"):
        headline = f"{a} is {_size(e.value, lower, higher)}"
    elif kind == "same":
        headline = f"No meaningful difference (within ±{pct(margin)})"
        if e.significant:
            detail += "; significant, but smaller than the margin"
    elif not_judged:
        headline = "Not judged: the client was saturated"
        detail += f"; {not_judged} — rerun with --client raw or a lower --concurrency"
    else:
        headline = "Too close to call"
        detail += f"; the interval straddles the ±{pct(margin)} margin" + power_hint
    return Finding(topic, kind, headline, detail, _short(e))


def _power_hint(c: Comparison, metric: str) -> str:
    p = c.power
    if p is None or p.metric != metric or p.repeats_needed is None:
        return ""
    return (
        f"; about {p.repeats_needed:,} repeats per prompt would detect a "
        f"{pct(p.effect)} difference (this run: {p.repeats})"
    )


def speed_findings(c: Comparison) -> list[Finding]:
    def latency(topic: str, what: str, e: Effect | None, metric: str = "") -> Finding:
        # every latency is judged the same way: a ratio against the latency margin
        hint = _power_hint(c, metric) if metric else ""
        return _ratio_finding(
            topic,
            what,
            c,
            e,
            LATENCY_MARGIN,
            "faster",
            "slower",
            power_hint=hint,
            not_judged=c.latency_not_judged,
        )

    out = []
    if c.ttft_p50_ratio is not None:
        out.append(
            latency("Time to first token", "median TTFT", c.ttft_p50_ratio, "ttft_p50_ratio")
        )
    else:
        out.append(
            Finding(
                "Time to first token",
                "unknown",
                "Not streamed",
                "no time to first token without streaming (see total time)",
            )
        )
    out.append(latency("Total time", "median total latency", c.total_p50_ratio, "total_p50_ratio"))
    # the guide's first-request claim is judged on the same measure (one rule)
    name, cold = first_request_effect(c)
    what = "cold TTFT" if name == "cold_ttft_ratio" else "cold total latency"
    out.append(latency("First request (cold)", what, cold))
    return out


#: Where per-arm figures and comparisons both appear: they are over different requests.
MATCHED_NOTE = (
    "Per-arm cost and cache figures are over all requests of the arm, as billed; the "
    "comparisons (cost ratio, cache hit difference, output tokens) are over matched requests "
    "only — the prompt × repeat × turn both arms answered with usage, cache-nonce tokens left "
    "out — so a ratio of the per-arm figures can differ from the comparison when the arms "
    "lost different requests."
)

#: Why shadow pairs give no cache or cost verdict (the card's headline).
SHADOW_CACHE = (
    "Not assessable on shadow traffic: each mirrored call reuses the prefix its live call had "
    "just cached"
)


#: Said wherever weighted figures show: what prompt weights change and what they leave alone.
TRAFFIC_NOTE = (
    "Only cost is weighted: latency, caching, the verdicts, claims and gates weigh every "
    "conversation equally"
)


def traffic_mix(sc: ScenarioSummary) -> str | None:
    """The scenario's cost under its traffic mix (prompt ``weight``), every figure beside the
    interval of the same weighted quantity; None when every prompt weighs 1 (the one wording
    of the terminal, Markdown and HTML)."""
    arms = [
        (arm, a.cost_usd.weighted)
        for arm, a in sc.arms.items()
        if a.cost_usd is not None and a.cost_usd.weighted is not None
    ]
    if not arms:
        return None
    parts = []
    for arm, w in arms:
        # per 1k and 1M, as the arms tables: a per-request cent fraction prints as two digits
        text = (
            f"{arm} {estimate(w.per_1k_requests_usd, w.per_1k_requests_usd_ci95, 'usd')} per "
            f"1k requests, {estimate(w.per_1m_requests_usd, w.per_1m_requests_usd_ci95, 'usd')} "
            "per 1M"
        )
        if w.per_request_usd_ci95 is None and w.effective_conversations is not None:
            text += (
                f" (no interval: {w.effective_conversations} effective conversations, fewer "
                f"than {decide.MIN_CONVERSATIONS})"
                if w.effective_conversations < decide.MIN_CONVERSATIONS
                # weighted_design: a prompt left with one priced conversation cannot be resampled
                else " (no interval: a prompt has a single conversation with usage on this arm, "
                "too few to resample)"
            )
        parts.append(text)
    out = (
        "Under the traffic mix (each request counted as often as its prompt occurs, prompt "
        f"weight): {'; '.join(parts)}."
    )
    ratios = [
        f"{c.a}/{c.b} {effect(c.weighted_cost_ratio)}"
        for c in sc.comparisons.values()
        if not c.replicate and c.weighted_cost_ratio is not None
    ]
    if ratios:
        out += f" Cost ratio {', '.join(ratios)}."
    return f"{out} {TRAFFIC_NOTE}."


def cost_finding(c: Comparison) -> Finding:
    e = c.cost_ratio
    if c.cache_contaminated:
        return Finding(
            "Cost",
            "unknown",
            SHADOW_CACHE,
            f"{possessive(arm_name(c.a))} cost is priced from cache hits that are not its own; "
            "measure cost with a scenario run (each conversation gets its own cache nonce)",
        )
    if e is None or e.value is None:
        return Finding(
            "Cost",
            "unknown",
            "Cost unknown",
            "a model has no price — add it with `harness analyze --prices FILE`",
        )
    f = _ratio_finding(
        "Cost", "mean cost per request", c, e, COST_MARGIN, "cheaper", "more expensive"
    )
    if f.kind == "same":
        margin = e.margin if e.margin is not None else COST_MARGIN
        f = replace(f, headline=f"Costs the same (within ±{pct(margin)})")
    return f


def cache_finding(c: Comparison, arms: dict[str, ArmSummary]) -> Finding:
    f = _cache_finding(c, arms)
    return replace(f, short=_short(c.cache_hit_ratio_delta, "points")) if f.kind != "unknown" else f


def _cache_finding(c: Comparison, arms: dict[str, ArmSummary]) -> Finding:
    d = c.cache_hit_ratio_delta
    a, b = arm_name(c.a), arm_name(c.b)
    ra, rb = (arms[x].cache_hit_ratio if x in arms else None for x in (c.a, c.b))
    share = (
        f"{a} {pct(ra.value if ra else None, 1)} of input tokens cached, "
        f"{b} {pct(rb.value if rb else None, 1)}"
    )
    if c.cache_contaminated:
        return Finding(
            "Caching",
            "unknown",
            SHADOW_CACHE,
            f"the shares cached here describe the pairing, not {a}; measure caching with a "
            "scenario run (each conversation gets its own cache nonce)",
        )
    if d is None or d.value is None:
        return Finding("Caching", "unknown", "No token usage reported", share)
    if (ra is None or not ra.value) and (rb is None or not rb.value):
        return Finding(
            "Caching",
            "same",
            "No cache hits in either arm",
            "prompts under 1,024 tokens, or caching off — " + share,
        )
    detail = f"{share}; difference {effect(d, 'points')}"
    if c.cache_hit_improvement is not None and c.cache_hit_improvement.value is not None:
        detail += f"; relative {effect(c.cache_hit_improvement, 'pct')}"
    margin = d.margin if d.margin is not None else decide.DEFAULT_MARGINS.cache_points / 100
    decision = decision_of(d, decide.Rule("delta", margin, lower_is_better=False))
    points = num(margin * 100, 0)
    if decision == "too_few_samples":
        return Finding("Caching", "unclear", _too_few(c, d).capitalize(), detail)
    if decision == "equivalent":
        return Finding(
            "Caching", "same", f"Caches the same share of input (within ±{points} points)", detail
        )
    if decision == "better":
        return Finding(
            "Caching", "better", f"{a} caches {num(d.value * 100, 1)} points more", detail
        )
    if decision == "worse":
        return Finding(
            "Caching", "worse", f"{a} caches {num(-d.value * 100, 1)} points less", detail
        )
    return Finding(
        "Caching", "unclear", "Too close to call", f"{detail}; the interval straddles ±{points}"
    )


def _kinds(c: Comparison) -> list[tuple[str, SimilarityStats]]:
    s = c.similarity
    return [
        (name, st)
        for name, st in (
            ("text", s.text),
            ("JSON field", s.json_),
            ("tool-call", s.tool_calls),
            ("semantic", s.semantic),
        )
        if st is not None and st.mean is not None and st.n_pairs
    ]


def output_finding(c: Comparison) -> Finding:
    """Worst of every kind of similarity measured: answers are alike only if all kinds are."""
    kinds = _kinds(c)
    if not kinds:
        return Finding(
            "Answers", "unknown", "No answers to compare", "no pair of successful replies"
        )
    parts = []
    below = []
    unsure = []
    for name, st in kinds:
        floor = f", A/A floor {num(st.noise_floor)}" if st.noise_floor is not None else ""
        parts.append(
            f"{name} similarity {num(st.mean or 0.0)} (lowest {num(st.min or 0.0)}{floor})"
        )
        gap = st.below_noise_floor
        if gap is None or gap.value is None:
            continue
        margin = gap.margin if gap.margin is not None else decide.DEFAULT_MARGINS.similarity
        # gap = floor − mean: above the margin, answers differ more than a rerun's
        decision = decision_of(gap, decide.Rule("delta", margin))
        if decision == "worse":
            below.append(f"{name} {effect(gap, 'num')} below the floor")
        elif decision in ("unclear", "too_few_samples"):
            why = (
                decide.too_few_text(gap.n_pairs, c.min_repeats)
                if decision == "too_few_samples"
                else f"the interval straddles the ±{num(margin)} margin"
            )
            unsure.append(f"{name}: {why}")
    detail = "; ".join(parts)
    name, low = min(kinds, key=lambda k: k[1].mean or 0.0)
    short = f"{name} {num(low.mean or 0.0)}" + (
        f" (floor {num(low.noise_floor)})" if low.noise_floor is not None else ""
    )
    floors = {st.noise_floor_from for _, st in kinds if st.noise_floor_from}
    if floors:
        detail += f" — floor from {', '.join(sorted(floors))}"
    if below:
        return Finding(
            "Answers",
            "worse",
            "Answers differ more than the noise floor",
            f"{detail}; {'; '.join(below)}",
            short,
        )
    identical = all(st.min == 1.0 for _, st in kinds)
    if not floors:
        return Finding(
            "Answers",
            "same" if identical else "unclear",
            "Identical answers" if identical else "Answers differ; no noise floor",
            detail + " — no A/A replicate arm (add e.g. chat#2) to say how much "
            "answers vary on their own",
            short,
        )
    if identical:
        return Finding("Answers", "same", "Identical answers", detail, short)
    if unsure:
        return Finding(
            "Answers",
            "unclear",
            "Not shown to be as alike as a rerun",
            f"{detail}; {'; '.join(unsure)}",
            short,
        )
    return Finding("Answers", "same", "As alike as a rerun of the same API", detail, short)


def error_finding(
    c: Comparison, arms: dict[str, ArmSummary], not_sent: Mapping[str, int] | None = None
) -> Finding:
    """Error rates; ``not_sent`` counts per arm the tool-result follow-ups that were recorded
    as skipped because no tool was called (not failures, but inside the summary's errors)."""
    a, b = arm_name(c.a), arm_name(c.b)
    xa, xb = arms.get(c.a), arms.get(c.b)
    ns = not_sent or {}
    counts = (
        f"{a} {xa.errors if xa else 0} of {xa.requests if xa else 0} failed, "
        f"{b} {xb.errors if xb else 0} of {xb.requests if xb else 0}"
    )
    if ns.get(c.a) or ns.get(c.b):
        counts += (
            f" (including {ns.get(c.a, 0)} and {ns.get(c.b, 0)} tool-result follow-ups "
            "not sent because no tool was called)"
        )
    d = c.error_rate_delta
    if d is None or d.value is None:
        return Finding("Errors", "unknown", "No requests", counts)
    detail = f"{counts}; error rate difference {effect(d, 'points')}"
    short = f"{pct(xa.error_rate if xa else None, 1)} vs {pct(xb.error_rate if xb else None, 1)}"
    if (xa is None or xa.errors == 0) and (xb is None or xb.errors == 0):
        return Finding("Errors", "same", "No errors", detail, short)
    margin = d.margin if d.margin is not None else decide.DEFAULT_MARGINS.error_rate_points / 100
    decision = decision_of(d, decide.Rule("delta", margin))
    if decision == "worse":
        return Finding("Errors", "worse", f"{a} fails more often", detail, short)
    if decision == "better":
        return Finding("Errors", "better", f"{a} fails less often", detail, short)
    if decision == "equivalent":
        return Finding(
            "Errors",
            "same",
            f"Fails as often (within ±{num(margin * 100, 0)} points)",
            detail,
            short,
        )
    if decision == "too_few_samples":
        return Finding("Errors", "unclear", _too_few(c, d).capitalize(), detail, short)
    # "not significant" is not "no difference": 3 of 20 against 0 of 20 is unresolved
    return Finding(
        "Errors",
        "unclear",
        f"Too close to call: {a} failed {xa.errors if xa else 0}, {b} {xb.errors if xb else 0}",
        detail,
        short,
    )


def findings(
    c: Comparison, arms: dict[str, ArmSummary], not_sent: Mapping[str, int] | None = None
) -> list[Finding]:
    """Every finding of one comparison, in reading order."""
    return [
        *speed_findings(c),
        cost_finding(c),
        cache_finding(c, arms),
        output_finding(c),
        error_finding(c, arms, not_sent),
    ]


def sentence(c: Comparison, found: list[Finding]) -> str:
    """One plain sentence for the top of the report."""
    a, b = arm_name(c.a), arm_name(c.b)
    by = {f.topic: f for f in found}
    speed = by["Time to first token"]
    if speed.kind == "unknown":
        speed = by["Total time"]

    def part(f: Finding, same: str, unclear: str, unknown: str) -> str:
        # better and worse read alike: the headline says which, and by how much
        if f.kind in ("better", "worse"):
            return "is " + f.headline.removeprefix(f"{a} is ")
        return {"same": same, "unclear": unclear, "unknown": unknown}[f.kind]

    speed_part = part(
        speed,
        "is as fast",
        "has too few samples to compare speed"
        if speed.headline.startswith("Too few")
        else "is not measurably faster or slower",
        "has no latency to compare",
    )
    cost_part = part(
        by["Cost"],
        "costs the same",
        "has an unclear cost",
        "cannot be judged on cost here (shadow traffic)"
        if c.cache_contaminated
        else "has no known price",
    )
    out = by["Answers"]
    answer_part = {
        "worse": "answers differently (beyond the A/A noise floor)",
        "same": "answers alike",
        "better": "answers alike",
        "unclear": (
            "answers with unknown natural variation"
            if out.headline.startswith("Answers differ")
            else "may answer differently (not shown to be as alike as a rerun)"
        ),
        "unknown": "gave no answers to compare",
    }[out.kind]
    return f"Compared with {b}, {a} {speed_part}, {cost_part} and {answer_part}."
