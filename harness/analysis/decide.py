"""The one decision rule: an interval and an equivalence margin → a verdict.

Cards (:mod:`harness.report.verdict`), the headline sentence, the guide's claims
(:mod:`harness.analysis.claims`) and the regression gates (:mod:`harness.gates.evaluate`) all
decide here, so no page can call one interval "cheaper" in one place and "the same" in another.

- **better / worse**: the whole 95 % interval lies beyond the margin, on one side;
- **equivalent**: the whole interval lies inside the margin (a difference too small to matter
  is ruled in; "not significant" alone never is);
- **unclear**: anything else (the interval straddles a margin edge);
- **too_few_samples**: fewer than :data:`MIN_CONVERSATIONS` conversations behind the interval.

An endpoint within rounding (:data:`ROUNDING`, relative) of an edge counts as touching it, so
float noise at a tie (cost ratios of exactly 1.0) never decides anything. See
docs/statistics.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable

    from harness.summary import SaturationStats

__all__ = [
    "DEFAULT_MARGINS",
    "LATENCY_METRICS",
    "MIN_CONVERSATIONS",
    "ROUNDING",
    "SATURATED_SHARE_BOUND",
    "Decision",
    "Margins",
    "Rule",
    "claim_verdict",
    "decide",
    "excludes",
    "latency_saturation",
    "min_repeats",
    "regression",
    "rule_for",
    "too_few_text",
]

Decision = Literal["better", "worse", "equivalent", "unclear", "too_few_samples"]
ClaimVerdict = Literal["supported", "contradicted", "inconclusive"]

#: Below this many conversations (prompt × repeat) behind a comparison, no interval and no
#: verdict: a percentile bootstrap with 2–4 pairs excludes 1 in 12–53 % of A/A runs.
MIN_CONVERSATIONS = 10
#: Relative tolerance: an endpoint this close to an edge (or to the null) touches it.
ROUNDING = 1e-9
#: Share of requests timed on a saturated client loop (harness.runner.saturation) above which
#: no latency verdict or gate is decided: it would measure the harness's queue, not the API.
SATURATED_SHARE_BOUND = 0.05


@dataclass(frozen=True)
class Margins:
    """Equivalence margins per metric family (scenario ``margins:``; docs/statistics.md)."""

    latency_pct: float = 10.0
    cost_pct: float = 2.0
    tokens_pct: float = 5.0
    cache_points: float = 2.0
    error_rate_points: float = 1.0
    similarity: float = 0.02


DEFAULT_MARGINS = Margins()


@dataclass(frozen=True)
class Rule:
    """How one metric is judged: a ratio (null 1) or a delta (null 0), its margin in the
    metric's own unit (0.10 = ±10 % of a ratio, 0.02 = ±2 points of a share), and which way
    is better."""

    scale: Literal["ratio", "delta"]
    margin: float
    lower_is_better: bool = True


#: the latency effects of a comparison (what a saturated client cannot decide)
LATENCY_METRICS = (
    "ttft_p50_ratio",
    "first_output_p50_ratio",
    "ttfb_p50_ratio",
    "total_p50_ratio",
    "sdk_ttft_p50_ratio",
    "sdk_total_p50_ratio",
    "cold_ttft_ratio",
    "warm_ttft_ratio",
    "cold_total_ratio",
)


def latency_saturation(stats: Iterable[SaturationStats | None]) -> tuple[int, str | None]:
    """How many requests of the arms' pooled ``stats`` were timed on a saturated client loop,
    and why no latency is judged (more than :data:`SATURATED_SHARE_BOUND` of the timed
    requests); None when latency can be judged."""
    known = [s for s in stats if s is not None]
    flagged = sum(s.saturated for s in known)
    timed = sum(s.timed_requests for s in known)
    if timed <= 0 or flagged <= SATURATED_SHARE_BOUND * timed:
        return flagged, None
    return flagged, (
        f"{flagged} of {timed} requests were timed on a saturated client loop: latency would "
        "measure the harness's own queue"
    )


def rule_for(metric: str, margins: Margins = DEFAULT_MARGINS) -> Rule | None:
    """The rule of a :class:`harness.summary.Comparison` effect field; None when it has none.

    ``cache_hit_improvement`` (relative) has no margin of its own: it is judged by the
    absolute difference ``cache_hit_ratio_delta`` (a +60 % improvement of a 1 % hit share is
    not a difference that matters).
    """
    if metric in LATENCY_METRICS:
        return Rule("ratio", margins.latency_pct / 100)
    if metric == "cost_ratio":
        return Rule("ratio", margins.cost_pct / 100)
    if metric == "output_tokens_ratio":
        return Rule("ratio", margins.tokens_pct / 100)
    if metric == "cache_hit_ratio_delta":
        return Rule("delta", margins.cache_points / 100, lower_is_better=False)
    if metric == "error_rate_delta":
        return Rule("delta", margins.error_rate_points / 100)
    return None


def _tol(x: float) -> float:
    return ROUNDING * max(1.0, abs(x)) if math.isfinite(x) else 0.0


def excludes(ci: tuple[float, float] | None, null: float) -> bool | None:
    """The interval lies wholly on one side of ``null``, by more than rounding."""
    if ci is None:
        return None
    tol = _tol(null)
    return bool(ci[0] > null + tol or ci[1] < null - tol)


def decide(ci: tuple[float, float] | None, n: int, rule: Rule) -> Decision:
    """The verdict on an interval of ``n`` conversations under ``rule`` (a's view of a vs b)."""
    if n < MIN_CONVERSATIONS:
        return "too_few_samples"
    if ci is None:
        return "unclear"
    lo, hi = ci
    if math.isnan(lo) or math.isnan(hi):
        return "unclear"
    null = 1.0 if rule.scale == "ratio" else 0.0
    low_edge, high_edge = null - rule.margin, null + rule.margin
    lt, ht = _tol(low_edge), _tol(high_edge)
    if hi < low_edge - lt:
        lower = True
    elif lo > high_edge + ht:
        lower = False
    elif lo >= low_edge - lt and hi <= high_edge + ht:
        return "equivalent"
    else:
        return "unclear"
    return "better" if lower == rule.lower_is_better else "worse"


def regression(
    ci: tuple[float, float], margin: float, n: int | None = None
) -> Literal["worse", "same", "unclear", "too_few_samples"]:
    """The rule one-sided, for a gate on a change where positive is worse: *worse* when the
    whole interval is beyond ``margin``, *same* when it is wholly at or within it (a change
    for the better is never a regression), else *unclear*."""
    if n is not None and n < MIN_CONVERSATIONS:
        return "too_few_samples"
    d = decide(ci, MIN_CONVERSATIONS, Rule("delta", margin))
    if d == "worse":
        return "worse"
    if d in ("better", "equivalent") or ci[1] <= margin + _tol(margin):
        return "same"
    return "unclear"


def claim_verdict(
    ci: tuple[float, float] | None,
    claimed: tuple[float, float] | None,
    decision: Decision | None,
    direction: Literal["better", "worse"],
    *,
    open_upper: bool = False,
) -> ClaimVerdict:
    """supported: the interval lies inside the claimed range *and* the metric's decision is the
    claim's direction (beyond the margin); contradicted: the interval lies wholly outside the
    range; else inconclusive (always, with too few samples)."""
    if ci is None or claimed is None or decision in (None, "too_few_samples"):
        return "inconclusive"
    lo, hi = ci
    c0, c1 = claimed
    t0, t1 = _tol(c0), _tol(c1)
    below_top = hi < c1 - t1 if open_upper else hi <= c1 + t1
    above_top = lo >= c1 - t1 if open_upper else lo > c1 + t1
    if lo >= c0 - t0 and below_top and decision == direction:
        return "supported"
    if hi < c0 - t0 or above_top:
        return "contradicted"
    return "inconclusive"


def min_repeats(conversations_per_repeat: int) -> int:
    """Repeats per prompt that reach :data:`MIN_CONVERSATIONS` conversations per arm."""
    return max(1, math.ceil(MIN_CONVERSATIONS / max(1, conversations_per_repeat)))


def too_few_text(n: int, repeats_needed: int | None = None) -> str:
    """The one spelling of the minimum-sample message."""
    need = (
        f"run ≥ {repeats_needed} repeats"
        if repeats_needed is not None
        else f"need ≥ {MIN_CONVERSATIONS} conversations"
    )
    return f"too few samples (n = {n}): {need}"
