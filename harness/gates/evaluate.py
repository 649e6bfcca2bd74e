"""CI gates: a run's summary (and optionally a baseline) → pass / fail, with reasons.

Two kinds of gate, both decided with the analysis' 95 % intervals so that noise alone does not
fail a build:

- **Thresholds** (``gates:`` in the scenario, or ``--config gates.yaml``), keyed per DESIGN §1:
  ``<a>_vs_<b>.<metric>_max|_min`` for a comparison of two arms, ``<arm>.<metric>_max|_min``
  for one arm (metrics: :data:`harness.scenario.models.GATE_METRICS`). A ``_max`` gate *fails*
  only when the whole interval is above the threshold (significantly worse), *passes* when the
  whole interval is at or below it, and is *inconclusive* when the interval straddles it:
  that passes, with a warning line saying more repeats would settle it. ``_min`` is the mirror.
  Metrics without an interval (p95 ratios, similarity means) are decided on the point value and
  say so.
- **Regression against a baseline** (``--baseline``): every arm's TTFT p50, total p50, cost per
  request and cache-hit ratio is compared with the same arm of the baseline run, treating the two
  runs as independent samples (:func:`harness.analysis.analyze.compare_runs`). A metric *fails* when
  the change is significant (the interval excludes no change, on the worse side) **and** the point
  estimate is worse by more than the tolerance (default 10 %, ``<arm>.regression_pct_max`` or
  ``--regression-pct``); worse by more than the tolerance but not significant is inconclusive.

A value that cannot be computed (no price → no cost, no streaming → no TTFT, an arm the run lacks)
is *unknown*: for a gate someone configured that fails the gate (it is never silently passed);
for a default regression check it is reported as *skipped*. Exit status of ``harness gate``: 0
when nothing failed, 1 when a gate failed, 2 for bad input (e.g. a missing baseline).

Gate keys and gates files: :mod:`harness.gates.config`; JUnit and GitHub Actions output:
:mod:`harness.gates.output`; the terminal text: :mod:`harness.cli.gate`; baselines:
:mod:`harness.gates.baseline`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness import fmt
from harness.analysis import decide as decide_rule
from harness.errors import HarnessError
from harness.gates.config import (
    Bound,
    GateConfig,
    GateSpec,
    load_gates_file,
    parse_gate,
    scenario_gates,
)
from harness.records import CASSETTE_MISS
from harness.summary import (
    ArmSummary,
    Comparison,
    Effect,
    Interval,
    LatencyStats,
    RunComparison,
    ScenarioSummary,
    Summary,
)

if TYPE_CHECKING:
    from harness.analysis.metrics import ObservationTable
    from harness.gates.baseline import Baseline

__all__ = [
    "DEFAULT_REGRESSION_PCT",
    "FAILING",
    "GateConfig",
    "GateReport",
    "GateResult",
    "GateSpec",
    "decide",
    "evaluate",
    "gate_run",
    "load_gates_file",
    "parse_gate",
    "scenario_gates",
    "wilson_interval",
]

GATE_REPORT_SCHEMA_VERSION = 1
DEFAULT_REGRESSION_PCT = 10.0

Status = Literal["pass", "fail", "inconclusive", "unknown", "skipped"]
Unit = Literal["ratio", "ms", "fraction", "points", "score", "pct"]
#: Statuses that fail the build.
FAILING: frozenset[str] = frozenset({"fail", "unknown"})
_Z95 = 1.959963984540054

#: Default regression checks against a baseline: (label, RunArmComparison field, worse if).
#: "up"/"down": a ratio or relative change, judged against the tolerance in per cent;
#: "points": a difference of rates, judged against :data:`ERROR_RATE_POINTS`.
REGRESSION_METRICS: tuple[tuple[str, str, Literal["up", "down", "points"]], ...] = (
    ("ttft_p50", "ttft_p50_ratio", "up"),
    ("total_p50", "total_p50_ratio", "up"),
    ("cost", "cost_ratio", "up"),
    ("cache_hit_ratio", "cache_hit_improvement", "down"),
    ("error_rate", "error_rate_delta", "points"),
)
#: Tolerance of the default error-rate check, in percentage points: a rise the whole interval
#: puts beyond it fails (an arm that fails every request fails by 100 points).
ERROR_RATE_POINTS = 2.0


# --- results -----------------------------------------------------------------------------------


class GateResult(BaseModel):
    """One gate decided on one scenario."""

    model_config = ConfigDict(extra="forbid")

    scenario: str
    name: str = Field(
        description="the gate key; regression checks add the metric: "
        "'responses.regression_pct_max (ttft_p50)'"
    )
    key: str
    source: str = Field(description="file the gate is written in, or 'default'")
    line: int | None = None
    status: Status
    bound: Bound
    threshold: float
    unit: Unit
    value: float | None
    ci95: Interval | None
    measured: str = Field(description="value and interval in words")
    rule: str = Field(description="why this status")
    context: str | None = None
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    def limit(self) -> str:
        """The threshold as written in the gates file, with the unit of the measured value."""
        op = "≤" if self.bound == "max" else "≥"
        return f"{op} {_limit(self.threshold, self.unit)}"


class GateReport(BaseModel):
    """Every gate of a run; ``exit_code`` is what ``harness gate`` returns."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = GATE_REPORT_SCHEMA_VERSION
    run_id: str
    run_dir: str
    target: str
    replay: str | None = Field(
        default=None, description="for a replay: 'replay of <cassette>, recorded <date> …'"
    )
    baseline: str | None
    baseline_path: str | None = None
    regression_pct: float
    results: list[GateResult]
    warnings: list[str]

    @property
    def failed(self) -> list[GateResult]:
        return [r for r in self.results if r.failed]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)


# --- formatting --------------------------------------------------------------------------------


#: Gate unit → fmt kind: one spelling with the report (``0.98× (0.70–1.17) *``).
_KIND: dict[Unit, str] = {
    "ratio": "ratio",
    "ms": "ms",
    "fraction": "share",
    "points": "points",
    "score": "num",
    "pct": "pct",
}


#: unit → (scale, spelling) of a threshold: fractions are written as per cent or points
_LIMITS: dict[str, tuple[float, str]] = {
    "ms": (1, "{} ms"),
    "fraction": (100, "{} %"),
    "points": (100, "{} pts"),
    "pct": (1, "+{} %"),
}


def _limit(x: float, unit: Unit) -> str:
    """A threshold as written, in the unit the measured value is printed in."""
    scale, spelling = _LIMITS.get(unit, (1, "{}"))
    return spelling.format(fmt.threshold(x * scale))


def _measured(
    value: float | None,
    ci: Interval | None,
    unit: Unit,
    *,
    significant: bool = False,
    no_interval: str | None = None,
) -> str:
    if value is None:
        return "unknown"
    text = fmt.estimate(value, ci, _KIND[unit], significant=significant)
    return text if ci is not None else f"{text} ({no_interval or 'no interval'})"


def _lat(stats: LatencyStats | None) -> str:
    return "—" if stats is None else f"{fmt.ms(stats.p50)} (n={stats.n})"


# --- threshold gates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Measure:
    value: float | None
    ci: Interval | None
    unit: Unit
    context: str | None = None
    no_interval: str | None = None
    unknown: str | None = None
    significant: bool = False
    too_few: str | None = None


def _invert(effect: Effect | None, kind: Literal["ratio", "delta"]) -> Effect | None:
    """b vs a from a vs b: 1/ratio (interval flipped) or −delta."""
    if effect is None or effect.value is None:
        return effect
    ci = effect.ci95
    if kind == "ratio":
        if effect.value == 0 or (ci is not None and min(ci) <= 0):
            return None
        return Effect(
            value=1 / effect.value,
            ci95=(1 / ci[1], 1 / ci[0]) if ci else None,
            significant=effect.significant,
            n_pairs=effect.n_pairs,
        )
    return Effect(
        value=-effect.value,
        ci95=(-ci[1], -ci[0]) if ci else None,
        significant=effect.significant,
        n_pairs=effect.n_pairs,
    )


_PAIR_EFFECTS: dict[str, tuple[str, Literal["ratio", "delta"], str | None]] = {
    # metric: (Comparison field, kind, ArmSummary latency field for context)
    "ttft_p50_ratio": ("ttft_p50_ratio", "ratio", "ttft_ms"),
    "total_p50_ratio": ("total_p50_ratio", "ratio", "total_ms"),
    "cold_ttft_ratio": ("cold_ttft_ratio", "ratio", "cold_ttft_ms"),
    "warm_ttft_ratio": ("warm_ttft_ratio", "ratio", "warm_ttft_ms"),
    "cost_ratio": ("cost_ratio", "ratio", None),
    "cache_hit_ratio_delta": ("cache_hit_ratio_delta", "delta", None),
}
_P95_RATIOS = {"ttft_p95_ratio": "ttft_ms", "total_p95_ratio": "total_ms"}
_ARM_LATENCY: dict[str, tuple[str, Literal["p50", "p95"]]] = {
    "ttft_p50_ms": ("ttft_ms", "p50"),
    "ttft_p95_ms": ("ttft_ms", "p95"),
    "total_p50_ms": ("total_ms", "p50"),
    "total_p95_ms": ("total_ms", "p95"),
    "cold_ttft_p50_ms": ("cold_ttft_ms", "p50"),
}


def wilson_interval(errors: int, n: int) -> Interval:
    """95 % Wilson score interval of a proportion (sound for 0 of n, unlike the normal one)."""
    p = errors / n
    denom = 1 + _Z95**2 / n
    centre = (p + _Z95**2 / (2 * n)) / denom
    half = _Z95 * math.sqrt(p * (1 - p) / n + _Z95**2 / (4 * n * n)) / denom
    # Exact at the edges: centre − half is ~1e-17, not 0, for 0 of n in floating point, and
    # a gate ``error_rate_max: 0`` failed a run without a single error on that residue.
    lo = 0.0 if errors == 0 else max(0.0, centre - half)
    hi = 1.0 if errors == n else min(1.0, centre + half)
    return lo, hi


def _cost(arm: ArmSummary) -> str:
    if arm.cost_usd is None or arm.cost_usd.per_request_usd.value is None:
        return "unknown"
    return f"{fmt.usd(arm.cost_usd.per_request_usd.value)}/request"


def _hit(arm: ArmSummary) -> str:
    v = arm.cache_hit_ratio.value if arm.cache_hit_ratio else None
    return "—" if v is None else fmt.pct(v, 1)


def _why_unknown(metric: str, arms: Sequence[ArmSummary]) -> str:
    # Failures first: an arm that failed every request was neither "not streamed" nor "not
    # priced", and saying so sent people to the wrong fix.
    dead = [a for a in arms if a.requests > 0 and a.errors == a.requests]
    if dead:
        return "every request of an arm failed (" + "; ".join(_errors(a) for a in dead) + ")"
    if metric.startswith("cost") and any(
        a.cost_usd is None or a.cost_usd.priced_requests == 0 for a in arms
    ):
        models = sorted({a.model or "?" for a in arms})
        return (
            f"cost unknown: no price for {', '.join(models)} — pass --prices with an "
            "override, or remove the gate"
        )
    if "ttft" in metric and any(a.ttft_ms is None for a in arms):
        return "no TTFT: an arm has no successful streamed request (stream: false?)"
    if "cache" in metric:
        return "no cache figure (no usage reported, or nothing cacheable)"
    return "the run has no value for it"


def _comparison(sc: ScenarioSummary, a: str, b: str) -> tuple[Comparison | None, bool]:
    direct = sc.comparisons.get(f"{a}_vs_{b}")
    if direct is not None:
        return direct, False
    return sc.comparisons.get(f"{b}_vs_{a}"), True


def _similarity(comp: Comparison) -> _Measure:
    kinds = [
        (kind, stats)
        for kind, stats in (
            ("text", comp.similarity.text),
            ("json", comp.similarity.json_),
            ("tool_calls", comp.similarity.tool_calls),
            ("semantic", comp.similarity.semantic),
        )
        if stats is not None and stats.mean is not None
    ]
    if not kinds:
        return _Measure(None, None, "score", unknown="no similarity was measured for this pair")
    kind, worst = min(kinds, key=lambda k: k[1].mean or 0.0)
    assert worst.mean is not None
    floor = (
        f"; A/A noise floor {fmt.num(worst.noise_floor)} ({worst.noise_floor_from})"
        if worst.noise_floor is not None
        else "; no A/A arm for a noise floor"
    )
    others = ", ".join(f"{k} {fmt.num(s.mean)}" for k, s in kinds if k != kind)
    return _Measure(
        worst.mean,
        None,
        "score",
        context=f"lowest kind: {kind} over {worst.n_pairs} pairs{floor}"
        + (f"; other kinds: {others}" if others else ""),
        no_interval="mean over pairs, no interval",
    )


def _p95(
    table: ObservationTable | None, scenario: str, arms: tuple[str, ...], col: str
) -> tuple[float, Interval | None] | None:
    """A p95 (or a ratio of two) with its conversation-bootstrap interval, from the run's
    rows; None without rows (a summary alone keeps no samples)."""
    if table is None:
        return None
    from harness.analysis.between import quantile_interval

    return quantile_interval(table, scenario, arms, col, 0.95)


def _measure_pair(
    sc: ScenarioSummary, spec: GateSpec, table: ObservationTable | None = None
) -> _Measure:
    a, b = spec.arms
    missing = [arm for arm in (a, b) if arm not in sc.arms]
    if missing:
        return _Measure(
            None,
            None,
            "ratio",
            unknown=f"arm {missing[0]} is not in the run (arms: {', '.join(sc.arms)})",
        )
    xa, xb = sc.arms[a], sc.arms[b]
    if spec.metric in _P95_RATIOS or _PAIR_EFFECTS.get(spec.metric, ("", "", None))[2]:
        saturated = _saturated(xa, xb)
        if saturated:
            return _Measure(None, None, "ratio", unknown=saturated)
    if spec.metric in _P95_RATIOS:
        p95_col = _P95_RATIOS[spec.metric]
        la, lb = getattr(xa, p95_col), getattr(xb, p95_col)
        if la is None or lb is None or lb.p95 <= 0:
            return _Measure(None, None, "ratio", unknown=_why_unknown(spec.metric, (xa, xb)))
        got = _p95(table, sc.name, (a, b), p95_col)
        return _Measure(
            got[0] if got else la.p95 / lb.p95,
            got[1] if got else None,
            "ratio",
            context=f"{a} p95 {fmt.ms(la.p95)} vs {b} {fmt.ms(lb.p95)}",
            no_interval="point estimate: no samples given for a p95 interval",
        )
    comp, flipped = _comparison(sc, a, b)
    if comp is None:
        return _Measure(
            None,
            None,
            "ratio",
            unknown=f"the run has no comparison {spec.subject} (it compares: "
            f"{', '.join(sc.comparisons) or 'nothing'})",
        )
    if spec.metric == "similarity_mean":
        return _similarity(comp)
    fld, kind, col = _PAIR_EFFECTS[spec.metric]
    eff: Effect | None = getattr(comp, fld)
    if flipped:
        eff = _invert(eff, kind)
    unit: Unit = "ratio" if kind == "ratio" else "points"
    if col is not None:
        context = f"{a} p50 {_lat(getattr(xa, col))} vs {b} {_lat(getattr(xb, col))}"
    elif spec.metric == "cost_ratio":
        context = f"{a} {_cost(xa)} vs {b} {_cost(xb)}"
    else:
        context = f"cache-hit ratio {a} {_hit(xa)} vs {b} {_hit(xb)}"
    if eff is None or eff.value is None:
        why = (
            "not assessable on shadow traffic: each mirrored call reuses the prefix its live "
            "call had just cached — gate cost and caching on a scenario run"
            if comp.cache_contaminated and spec.metric in ("cost_ratio", "cache_hit_ratio_delta")
            else _why_unknown(spec.metric, (xa, xb))
        )
        return _Measure(None, None, unit, context=context, unknown=why)
    return _Measure(
        eff.value,
        eff.ci95,
        unit,
        context=f"{context}; {eff.n_pairs} conversations",
        no_interval="no interval (too few pairs)",
        significant=bool(eff.significant),
        too_few=(
            decide_rule.too_few_text(eff.n_pairs, comp.min_repeats)
            if eff.decision == "too_few_samples"
            else None
        ),
    )


def _saturated(*arms: ArmSummary) -> str | None:
    """Why latency cannot be gated (the cards' rule: too many requests timed on a saturated
    client loop)."""
    _, reason = decide_rule.latency_saturation(a.saturation for a in arms)
    if reason is None:
        return None
    return f"not assessable: {reason} — rerun with --client raw or a lower --concurrency"


def _measure_arm(
    sc: ScenarioSummary, spec: GateSpec, table: ObservationTable | None = None
) -> _Measure:
    (name,) = spec.arms
    arm = sc.arms.get(name)
    if arm is None:
        return _Measure(
            None, None, "ms", unknown=f"arm {name} is not in the run (arms: {', '.join(sc.arms)})"
        )
    if spec.metric in _ARM_LATENCY and (saturated := _saturated(arm)):
        return _Measure(None, None, "ms", unknown=saturated)
    if spec.metric == "error_rate":
        if arm.requests == 0:
            return _Measure(None, None, "fraction", unknown="the arm has no measured request")
        types = ", ".join(f"{k} {v}" for k, v in sorted(arm.error_types.items()))
        return _Measure(
            arm.errors / arm.requests,
            wilson_interval(arm.errors, arm.requests),
            "fraction",
            context=f"{arm.errors} of {arm.requests} requests failed"
            + (f" ({types})" if types else ""),
        )
    if spec.metric == "cache_hit_ratio":
        est = arm.cache_hit_ratio
        if est is None or est.value is None:
            return _Measure(None, None, "fraction", unknown=_why_unknown("cache", (arm,)))
        return _Measure(
            est.value, est.ci95, "fraction", context="cached / input tokens over the arm's requests"
        )
    col, q = _ARM_LATENCY[spec.metric]
    stats: LatencyStats | None = getattr(arm, col)
    if stats is None:
        return _Measure(None, None, "ms", unknown=_why_unknown(spec.metric, (arm,)))
    if q == "p95":
        got = _p95(table, sc.name, (name,), col)
        return _Measure(
            got[0] if got else stats.p95,
            got[1] if got else None,
            "ms",
            context=f"n={stats.n}, p50 {fmt.ms(stats.p50)}",
            no_interval="point estimate: no samples given for a p95 interval",
        )
    return _Measure(stats.p50, stats.ci95, "ms", context=f"n={stats.n}, p95 {fmt.ms(stats.p95)}")


def decide(value: float, ci: Interval | None, bound: Bound, threshold: float) -> tuple[Status, str]:
    """The threshold rule: fail only when the interval is wholly on the wrong side."""
    op, worse = ("≤", "above") if bound == "max" else ("≥", "below")
    limit = fmt.threshold(threshold)
    if ci is None:
        bad = value > threshold if bound == "max" else value < threshold
        return (
            ("fail", f"the value is {worse} {limit} (decided on the point value)")
            if bad
            else ("pass", f"the value is {op} {limit} (point value)")
        )
    lo, hi = ci
    if (bound == "max" and lo > threshold) or (bound == "min" and hi < threshold):
        return "fail", f"the whole 95 % interval is {worse} {limit}: significantly worse"
    if (bound == "max" and hi <= threshold) or (bound == "min" and lo >= threshold):
        return "pass", f"the whole 95 % interval is {op} {limit}"
    return "inconclusive", (
        f"the 95 % interval straddles {limit}: not significantly "
        "worse (passes); more repeats would settle it"
    )


def _as_configured(scenario: str, spec: GateSpec) -> dict[str, Any]:
    """The fields of a result that are the gate as written."""
    as_written = {f: getattr(spec, f) for f in ("key", "source", "line", "bound", "threshold")}
    return dict(scenario=scenario, name=spec.key, **as_written)


def _undecided(
    configured: dict[str, Any], status: Status, measured: str, rule: str, fix: str | None = None
) -> GateResult:
    """A result without a value: the gate could not be measured, or had nothing to compare."""
    return GateResult(
        **configured, status=status, value=None, ci95=None, measured=measured, rule=rule, fix=fix
    )


def _threshold_result(
    sc: ScenarioSummary, spec: GateSpec, table: ObservationTable | None = None
) -> GateResult:
    m = _measure_pair(sc, spec, table) if len(spec.arms) == 2 else _measure_arm(sc, spec, table)
    common = dict(**_as_configured(sc.name, spec), unit=m.unit, context=m.context)
    if m.value is None:
        return _undecided(
            common,
            "unknown",
            "unknown",
            f"cannot be decided: {m.unknown}; an unknown value fails a configured gate",
            "make the value measurable, or remove the gate",
        )
    status, rule = decide(m.value, m.ci, spec.bound, spec.threshold)
    if m.too_few is not None:
        status, rule = (
            "inconclusive",
            f"{m.too_few}: no interval, so no verdict (passes, with a warning)",
        )
    fix = None
    if status == "fail":
        fix = (
            f"if this is expected, change {spec.key} in {spec.source}; otherwise compare the "
            "arms in the report"
        )
    elif status == "inconclusive":
        fix = "raise repeats (see power in summary.json) for a decisive answer"
    if m.too_few is not None:
        fix = "raise repeats: every comparison needs " + (
            f"≥ {decide_rule.MIN_CONVERSATIONS} conversations per arm"
        )
    return GateResult(
        **common,
        status=status,
        value=m.value,
        ci95=m.ci,
        measured=_measured(
            m.value, m.ci, m.unit, significant=m.significant, no_interval=m.no_interval
        ),
        rule=rule,
        fix=fix,
    )


# --- regression against a baseline -------------------------------------------------------------


def _regression(
    eff: Effect | None, worse: Literal["up", "down", "points"]
) -> tuple[float | None, Interval | None, int | None]:
    """A change as a regression: +0.25 = 25 % worse (ratio − 1, or −relative change), or a
    rise in points (delta of rates × 100); and the conversations behind it."""
    if eff is None or eff.value is None:
        return None, None, None
    ci, n = eff.ci95, eff.n_pairs
    if worse == "up":
        return eff.value - 1.0, ((ci[0] - 1.0, ci[1] - 1.0) if ci else None), n
    if worse == "points":
        return eff.value, ci, n
    return -eff.value, ((-ci[1], -ci[0]) if ci else None), n


def _errors(x: ArmSummary) -> str:
    types = ", ".join(f"{k} {v}" for k, v in sorted(x.error_types.items()))
    return f"{x.errors} of {x.requests} failed" + (f": {types}" if types else "")


def _regression_context(
    label: str, arm: str, now: ArmSummary | None, then: ArmSummary | None, baseline: str
) -> str:
    def fig(x: ArmSummary | None) -> str:
        if x is None:
            return "—"
        if label in ("ttft_p50", "total_p50"):
            return _lat(x.ttft_ms if label == "ttft_p50" else x.total_ms)
        if label == "cost":
            return _cost(x)
        if label == "error_rate":
            return _errors(x)
        return _hit(x)

    return f"{arm} {label.replace('_', ' ')}: {fig(now)} now vs {fig(then)} in baseline {baseline}"


def _baseline_has(label: str, arm: ArmSummary | None) -> bool:
    if arm is None:
        return False
    if label == "ttft_p50":
        return arm.ttft_ms is not None
    if label == "total_p50":
        return arm.total_ms is not None
    if label == "cost":
        return arm.cost_usd is not None and arm.cost_usd.per_request_usd.value is not None
    if label == "error_rate":
        return arm.requests > 0
    return bool(arm.cache_hit_ratio and arm.cache_hit_ratio.value)


def _why_missing(label: str, arm: str, now: ArmSummary | None) -> str:
    """Why the run has no value the baseline has: the arm's failures first (an arm that failed
    every request is neither "not streamed" nor "not priced")."""
    if now is None:
        return f"the run lacks arm {arm}"
    if now.requests == 0:
        return f"arm {arm} has no measured request"
    if now.errors == now.requests:
        return f"every request of {arm} failed ({_errors(now)})"
    why = _NO_VALUE.get(label, "has no successful request with a value")
    return f"{arm} {why.format(model=now.model or '?')}"


#: metric → why an arm that answered has no value for it
_NO_VALUE = {
    "ttft_p50": "has no TTFT: no successful streamed request (stream: false?)",
    "cost": "has no cost: no price for {model} (pass --prices)",
    "cache_hit_ratio": "has no cache figure (no usage reported)",
}


def _regression_results(
    sc: ScenarioSummary,
    specs: Sequence[GateSpec],
    baseline: Baseline,
    comparison: RunComparison,
    default_pct: float,
    warnings: list[str],
) -> list[GateResult]:
    base_sc = next((s for s in baseline.summary.scenarios if s.name == sc.name), None)
    label = baseline.label()
    configured = {g.arms[0]: g for g in specs if g.metric == "regression_pct"}
    out: list[GateResult] = []
    if base_sc is None:
        warnings.append(f"{sc.name}: not in baseline {label}; no regression check")
    arms = list(sc.arms) + [a for a in configured if a not in sc.arms]
    if base_sc is not None:  # an arm the baseline has and the run lost is a regression too
        arms += [a for a in base_sc.arms if a not in arms]
    for arm in arms:
        spec = configured.get(arm)
        pct = spec.threshold if spec else default_pct
        key = spec.key if spec else f"{arm}.regression_pct_max"
        now = sc.arms.get(arm)
        then = base_sc.arms.get(arm) if base_sc else None
        per_arm = comparison.scenarios.get(sc.name, {}).get(arm)
        if base_sc is not None and then is None and spec is None:
            warnings.append(f"{sc.name}: arm {arm} is not in baseline {label}; not compared")
            continue
        if base_sc is None and spec is None:
            continue
        for metric, fld, worse in REGRESSION_METRICS:
            eff = getattr(per_arm, fld) if per_arm is not None else None
            out.append(
                _regression_result(
                    _Regression(
                        scenario=sc.name,
                        arm=arm,
                        metric=metric,
                        kind=worse,
                        change=_regression(eff, worse),
                        spec=spec,
                        key=key,
                        pct=ERROR_RATE_POINTS / 100 if worse == "points" else pct,
                        intervals=comparison.intervals,
                        context=_regression_context(metric, arm, now, then, label),
                        in_baseline=_baseline_has(metric, then),
                        missing=_why_missing(metric, arm, now),
                        baseline=baseline,
                    )
                )
            )
    return out


NOTHING_TO_REGRESS_FROM = "the baseline has no value for it, so there is nothing to regress from"


@dataclass(frozen=True)
class _Regression:
    """One default or configured regression check, before it is decided."""

    scenario: str
    arm: str
    metric: str
    kind: Literal["up", "down", "points"]
    change: tuple[float | None, Interval | None, int | None]
    spec: GateSpec | None
    key: str
    pct: float
    intervals: bool
    context: str
    in_baseline: bool
    missing: str
    baseline: Baseline


def _regression_result(g: _Regression) -> GateResult:
    value, ci, n = g.change
    points = g.kind == "points"
    common = dict(
        scenario=g.scenario,
        name=f"{g.key} ({g.metric})",
        key=g.key,
        source=g.spec.source if g.spec else "default",
        line=g.spec.line if g.spec else None,
        bound="max",
        threshold=g.pct,
        unit="points" if points else "pct",
        context=g.context,
    )
    limit = f"+{fmt.threshold(g.pct * 100)} points" if points else f"+{fmt.threshold(g.pct)} %"
    accept = (
        f"if the change is intended, save a new baseline: harness baseline save RUN_DIR "
        f"--name {g.baseline.name}"
    )
    if value is None:
        if not g.in_baseline:
            return _undecided(common, "skipped", "unknown", NOTHING_TO_REGRESS_FROM)
        # The baseline had a value and the run has none: the run lost something it had.
        return _undecided(
            common,
            "fail",
            "missing",
            f"the baseline has a value and this run has none: {g.missing}",
            "check the run's errors and settings against the baseline's; " + accept,
        )
    scale = 1.0 if points else 100.0  # points: fractions, like every other rate gate
    v100 = value * scale
    ci100 = (ci[0] * scale, ci[1] * scale) if ci else None
    # points: deltas of fractions are shown in points ("+12.5 pts"), not as a percentage
    measured = (
        fmt.estimate(value, ci, "points", significant=bool(decide_rule.excludes(ci, 0.0)))
        if points
        else _measured(
            value,
            ci,
            "pct",
            significant=bool(decide_rule.excludes(ci, 0.0)),
            no_interval="compared from summaries: no interval",
        )
    )
    if points and ci is None:
        measured += " (compared from summaries: no interval)"

    def decided(
        status: Status, rule: str, fix: str | None = None, *, interval: bool = True
    ) -> GateResult:
        return GateResult(
            **common,
            status=status,
            value=v100,
            ci95=ci100 if interval else None,
            measured=measured,
            rule=rule,
            fix=fix,
        )

    if ci100 is None:
        if v100 > g.pct:
            return decided(
                "inconclusive",
                f"the estimate exceeds {limit} but there is no interval to judge it "
                "(compared from summaries); passes with a warning",
                "gate against a baseline file or run directory (samples give an interval)",
            )
        return decided("pass", f"within {limit} (point value; no interval)")
    verdict = decide_rule.regression(ci100, g.pct, n if g.intervals else None)
    if verdict == "too_few_samples":
        return decided(
            "inconclusive",
            f"{decide_rule.too_few_text(n or 0)} to judge against {limit} (passes, with a warning)",
            f"raise repeats in both runs: at least {decide_rule.MIN_CONVERSATIONS} conversations "
            "per arm",
            interval=False,
        )
    if verdict == "worse":
        return decided(
            "fail", f"worse beyond the tolerance: the whole 95 % interval is above {limit}", accept
        )
    if verdict == "unclear":
        return decided(
            "inconclusive",
            f"the 95 % interval straddles {limit}: not shown to be worse beyond it "
            "(passes, with a warning); more repeats or more baseline runs would settle it",
            "raise repeats in both runs, or save a baseline of several runs "
            "(harness baseline save RUN RUN… --name N) so the run-to-run spread is "
            "measured rather than assumed",
        )
    return decided("pass", f"the whole 95 % interval is within {limit}")


# --- evaluation --------------------------------------------------------------------------------


def evaluate(
    summary: Summary,
    config: GateConfig,
    *,
    baseline: Baseline | None = None,
    comparison: RunComparison | None = None,
    regression_pct: float | None = None,
    run_dir: str = "",
    table: ObservationTable | None = None,
) -> GateReport:
    """Decide every gate of every scenario in ``summary`` (pure; in-process, no disk).

    ``comparison`` is ``compare_runs(this run, baseline)``; it is needed with a baseline.
    ``table`` (the run's observations, e.g. ``load_table(...)`` or
    ``ObservationTable.from_observations(...)``) gives p95 gates their intervals; without it
    they are decided on the point value and say so.
    """
    pct = (
        regression_pct
        if regression_pct is not None
        else config.regression_pct
        if config.regression_pct is not None
        else DEFAULT_REGRESSION_PCT
    )
    warnings = list(config.warnings)
    results: list[GateResult] = []
    names = {sc.name for sc in summary.scenarios}
    for name in sorted(config.by_scenario.keys() - names):
        # a configured gate is never passed silently: a scenario the run lacks is unknown
        results.extend(
            _undecided(
                {
                    **_as_configured(name, spec),
                    "unit": "pct" if spec.metric == "regression_pct" else "ratio",
                },
                "unknown",
                "unknown",
                f"scenario {name!r} is not in this run (it has: {', '.join(sorted(names))})",
                "fix the scenario name in the gates file, or run that scenario",
            )
            for spec in config.by_scenario[name]
        )
    for sc in summary.scenarios:
        specs = config.for_scenario(sc.name)
        rows = _scenario_table(table, sc.name)
        arms = {s.key: s.arms for s in specs}
        results.extend(
            _blame_cassette(_threshold_result(sc, s, rows), sc, s.arms, summary)
            for s in specs
            if s.metric != "regression_pct"
        )
        if baseline is not None:
            if comparison is None:
                raise ValueError("evaluate: a baseline needs its comparison (compare_runs)")
            results.extend(
                _blame_cassette(r, sc, arms.get(r.key, ()), summary)
                for r in _regression_results(sc, specs, baseline, comparison, pct, warnings)
            )
        else:
            results.extend(
                _undecided(
                    {**_as_configured(sc.name, s), "unit": "pct"},
                    "skipped",
                    "—",
                    "no --baseline given, nothing to compare with",
                )
                for s in specs
                if s.metric == "regression_pct"
            )
    if not results:
        warnings.append(
            "no gates configured and no --baseline: nothing was checked — add "
            "gates: to the scenario, pass --config, or pass --baseline"
        )
    if comparison is not None and comparison.run_spread is not None and baseline is not None:
        rs = comparison.run_spread
        lat = rs.spread.get("ttft_p50_ratio")
        if rs.baseline_runs == 1 and lat:
            warnings.append(
                f"baseline {baseline.label()} holds one run, so the run-to-run spread is "
                f"assumed ({fmt.pct(lat)} for latency, 0 for cost and cache), not measured: "
                "save a baseline of several runs (harness baseline save RUN RUN… --name "
                f"{baseline.name}) for intervals that fit this target"
            )
    if baseline is not None:
        b = baseline.summary
        if (b.target, b.emulator_profile) != (summary.target, summary.emulator_profile):
            warnings.append(
                f"baseline {baseline.label()} was measured on {_where(b)}; this run "
                f"on {_where(summary)}"
            )
    return GateReport(
        run_id=summary.run_id,
        run_dir=run_dir,
        target=summary.target_label,
        replay=summary.replay_label,
        baseline=baseline.label() if baseline else None,
        regression_pct=pct,
        results=results,
        warnings=warnings,
    )


def _blame_cassette(
    result: GateResult, sc: ScenarioSummary, arms: Sequence[str], summary: Summary
) -> GateResult:
    """A gate that did not pass on a replay whose cassette lacked some of its requests: the
    cassette is what to fix (re-record it), not the threshold."""
    misses = sum(sc.arms[a].error_types.get(CASSETTE_MISS, 0) for a in arms if a in sc.arms)
    if result.status == "pass" or misses == 0:
        return result
    recorded = next((c for c in summary.replay if c.scenario == sc.name), None)
    how = (
        recorded.rerecord
        if recorded is not None
        else "harness run SCENARIO --record DIR (harness cassettes check lists the misses)"
    )
    return result.model_copy(
        update={
            "fix": f"{misses} request(s) had no recorded interaction ({CASSETTE_MISS}): the "
            f"cassette no longer matches the scenario — re-record it with: {how} (the "
            "threshold is not the problem)"
        }
    )


def _scenario_table(table: ObservationTable | None, name: str) -> ObservationTable | None:
    """The scenario's measured rows (warm-up and unsent requests out, as the analysis does)."""
    if table is None:
        return None
    import numpy as np

    t = table.measured()
    keep = np.array([s == name for s in t.scenario], dtype=bool) & ~t.warmup
    return t.take(np.flatnonzero(keep))


def run_spread_option(text: str) -> dict[str, float]:
    """``--run-spread 5%`` (or ``5`` or ``0.05``) → the run-level spread of every latency ratio
    (log-sd); cost, tokens, cache and errors keep 0. A bare number ≥ 1 is read as per cent."""
    from harness.analysis.between import ASSUMED_RUN_SPREAD
    from harness.analysis.metrics import MEDIAN_RATIOS

    value = text.strip()
    try:
        x = float(value.removesuffix("%"))
    except ValueError:
        raise HarnessError(
            f"--run-spread {text!r}: not a percentage — write e.g. 5% (0 for none)"
        ) from None
    if value.endswith("%") or x >= 1:
        x /= 100
    if not 0 <= x < 1:
        raise HarnessError(f"--run-spread {text!r}: must be from 0 % to below 100 % — e.g. 5%")
    latency = {name for name, _ in MEDIAN_RATIOS}
    return {k: (x if k in latency else v) for k, v in ASSUMED_RUN_SPREAD.items()}


def _where(s: Summary) -> str:
    return s.target_label + (f" profile {s.emulator_profile}" if s.emulator_profile else "")


def gate_run(
    run_dir: Path,
    *,
    baseline: str | None = None,
    config: Path | GateConfig | None = None,
    regression_pct: float | None = None,
    baselines_dir: Path | None = None,
    prices: Path | None = None,
    run_spread: Mapping[str, float] | None = None,
) -> GateReport:
    """Gate ``runs/<run-id>/``: its summary.json (analysed now if absent), the gates of its
    scenario files (or ``config``: a gates file or a :class:`GateConfig`), and optionally a
    baseline (name, file or run directory).

    Raises :class:`HarnessError` for bad input, including a baseline that cannot be found.
    """
    from harness.analysis.analyze import (
        compare_runs,
        current_summary,
        has_observations,
        load_run,
        run_price_book,
    )
    from harness.gates.baseline import DEFAULT_BASELINES_DIR, resolve_baseline

    if not run_dir.is_dir():
        raise HarnessError(f"{run_dir}: no such run directory — give runs/<run-id>/")
    # Resolve the baseline first: a missing one is a usage error, whatever the run holds.
    ref = (
        resolve_baseline(baseline, baselines_dir=baselines_dir or DEFAULT_BASELINES_DIR)
        if baseline is not None
        else None
    )
    gates = (
        config
        if isinstance(config, GateConfig)
        else load_gates_file(config)
        if config is not None
        else scenario_gates(run_dir)
    )
    # The run is read once, for the summary (if it must be re-analysed), p95s and the baseline;
    # without observations a stale summary's own one-line error comes first.
    run = load_run(run_dir) if has_observations(run_dir) else None
    summary, _ = current_summary(run_dir, run=run, price_overrides=prices, same_prices=True)
    if run is None:
        run = load_run(run_dir)  # the one-line "no observations" error
    table = run.table
    comparison = None
    if ref is not None:
        book = run_price_book(run.meta, prices)
        comparison = compare_runs(table, ref.baseline.tables(), book=book, run_spread=run_spread)
    report = evaluate(
        summary,
        gates,
        baseline=ref.baseline if ref else None,
        comparison=comparison,
        regression_pct=regression_pct,
        run_dir=str(run_dir),
        table=table,
    )
    if ref is not None:
        report.baseline_path = str(ref.path)
    return report
