"""``render_compare``: two runs of the same scenarios → ``compare.html`` and ``compare.md``.

Run A is the candidate (after a prompt change, a new model…), run B the baseline; ratios are
A / B from :func:`harness.analysis.analyze.compare_runs`, paired by prompt × turn × repeat and
widened by the run-to-run spread (:mod:`harness.analysis.between`). When either run has no
observations only point ratios of the summaries'
medians are available, and the page says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from harness.analysis import decide
from harness.analysis.analyze import compare_runs, current_summary, scenario_margins
from harness.fmt import DASH, arm_name, effect, num
from harness.records import RunMeta
from harness.report import charts
from harness.report.markdown import cell
from harness.report.render import REPORTS_DIR, _write, render_template
from harness.report.verdict import Kind, headline_comparisons, judge
from harness.rundir import OBSERVATIONS_FILE, read_meta
from harness.summary import Effect, RunArmComparison, RunComparison, Summary

#: (label, field) of the run-to-run metrics shown; each is judged by its own rule
#: (:func:`harness.analysis.decide.rule_for`: the scenario's margin, the metric's direction).
METRICS: tuple[tuple[str, str], ...] = (
    ("TTFT p50", "ttft_p50_ratio"),
    ("cold TTFT", "cold_ttft_ratio"),
    ("warm TTFT", "warm_ttft_ratio"),
    ("total p50", "total_p50_ratio"),
    ("SDK total", "sdk_total_p50_ratio"),
    ("cost", "cost_ratio"),
    ("output tokens", "output_tokens_ratio"),
    ("cache hit Δ", "cache_hit_ratio_delta"),
    ("error rate Δ", "error_rate_delta"),
)


@dataclass(frozen=True)
class MetricCell:
    effect: Effect | None
    kind: Kind
    delta: bool


@dataclass(frozen=True)
class ArmRow:
    arm: str
    cells: list[MetricCell]
    headline: str


@dataclass(frozen=True)
class HeadlinePair:
    """A headline comparison (e.g. responses vs chat) as measured in each run."""

    key: str
    rows: list[tuple[str, str, str]]  # label, in A, in B


@dataclass(frozen=True)
class ScenarioCompare:
    name: str
    anchor: str
    arms: list[ArmRow]
    chart: Markup | None
    headlines: list[HeadlinePair]
    claims: list[tuple[str, str, str]]  # claim, verdict in A, verdict in B


def _arm_row(arm: str, c: RunArmComparison, margins: decide.Margins) -> ArmRow:
    cells = []
    for _, fld in METRICS:
        e: Effect | None = getattr(c, fld)
        rule = decide.rule_for(fld, margins)
        assert rule is not None, fld  # every field shown has a rule
        cells.append(MetricCell(e, judge(e, rule), rule.scale == "delta"))
    changed = [
        (label, cellv)
        for (label, _), cellv in zip(METRICS, cells, strict=True)
        if cellv.kind in ("better", "worse")
    ]
    if not changed:
        headline = "no significant change"
    else:
        headline = "; ".join(
            f"{label} {effect(c.effect, 'points' if c.delta else 'ratio').removesuffix(' *')}"
            f" — {'better' if c.kind == 'better' else 'worse'}"
            for label, c in changed
        )
    return ArmRow(arm, cells, headline)


def _sim(s: Summary, scenario: str, key: str) -> str:
    for sc in s.scenarios:
        if sc.name == scenario and key in sc.comparisons:
            t = sc.comparisons[key].similarity.text
            if t is not None and t.mean is not None:
                return num(t.mean) + (
                    f" (floor {num(t.noise_floor)})" if t.noise_floor is not None else ""
                )
    return DASH


def _headlines(a: Summary, b: Summary, name: str) -> list[HeadlinePair]:
    sa = next((s for s in a.scenarios if s.name == name), None)
    sb = next((s for s in b.scenarios if s.name == name), None)
    if sa is None or sb is None:
        return []
    out = []
    for key, ca in headline_comparisons(sa):
        cb = sb.comparisons.get(key)
        rows = [
            (label, effect(getattr(ca, fld)), effect(getattr(cb, fld)) if cb else DASH)
            for label, fld in (
                ("TTFT p50 ratio", "ttft_p50_ratio"),
                ("cold TTFT ratio", "cold_ttft_ratio"),
                ("total p50 ratio", "total_p50_ratio"),
                ("cost ratio", "cost_ratio"),
            )
        ]
        rows.append(("text similarity", _sim(a, name, key), _sim(b, name, key)))
        out.append(HeadlinePair(f"{arm_name(ca.a)} vs {arm_name(ca.b)}", rows))
    return out


def _claims(a: Summary, b: Summary, name: str) -> list[tuple[str, str, str]]:
    sa = next((s for s in a.scenarios if s.name == name), None)
    sb = next((s for s in b.scenarios if s.name == name), None)
    if sa is None:
        return []
    return [
        (
            c.claimed + f" ({k.replace('_', ' ')})",
            c.verdict,
            sb.claims[k].verdict if sb is not None and k in sb.claims else DASH,
        )
        for k, c in sa.claims.items()
    ]


def _load(run_dir: Path) -> tuple[RunMeta, Summary]:
    return read_meta(run_dir), current_summary(run_dir)[0]


def build_comparison(
    run_a: Path, run_b: Path
) -> tuple[RunComparison, Summary, Summary, RunMeta, RunMeta]:
    """The between-run statistics (with intervals when both runs have observations)."""
    ma, sa = _load(run_a)
    mb, sb = _load(run_b)
    if (run_a / OBSERVATIONS_FILE).is_file() and (run_b / OBSERVATIONS_FILE).is_file():
        rc = compare_runs(run_a, run_b)
    else:
        rc = compare_runs(sa, sb)
    return rc, sa, sb, ma, mb


def _warnings(sa: Summary, sb: Summary) -> list[str]:
    out = []
    if sa.target_label != sb.target_label:
        out.append(
            f"The runs used different targets ({sa.target_label} vs {sb.target_label}):"
            " differences may come from the target, not your change."
        )
    elif sa.emulator_profile != sb.emulator_profile:
        out.append(
            f"The runs used different emulator profiles ({sa.emulator_profile} vs "
            f"{sb.emulator_profile}): the emulator put the differences there."
        )
    only_a = {s.name for s in sa.scenarios} - {s.name for s in sb.scenarios}
    only_b = {s.name for s in sb.scenarios} - {s.name for s in sa.scenarios}
    if only_a:
        out.append(f"Only in run A (not compared): {', '.join(sorted(only_a))}.")
    if only_b:
        out.append(f"Only in run B (not compared): {', '.join(sorted(only_b))}.")
    return out


def compare_view(
    rc: RunComparison,
    sa: Summary,
    sb: Summary,
    margins: Mapping[str, decide.Margins] | None = None,
) -> list[ScenarioCompare]:
    """The compare page per scenario; ``margins``: the scenarios' own (run A's files),
    defaults for the others."""
    out = []
    for k, (name, arms) in enumerate(sorted(rc.scenarios.items())):
        anchor = f"cmp-{k}"
        own = (margins or {}).get(name, decide.DEFAULT_MARGINS)
        rows = [_arm_row(arm, c, own) for arm, c in arms.items()]
        forest = [
            charts.RatioRow(f"{arm} · {label}", e.value, e.ci95)
            for arm, c in arms.items()
            for label, fld in (
                ("TTFT p50", "ttft_p50_ratio"),
                ("total p50", "total_p50_ratio"),
                ("cost", "cost_ratio"),
            )
            if (e := getattr(c, fld)) is not None and e.value is not None
        ]
        chart = charts.ratio_chart(
            forest, f"{name}: run A / run B (95 % CI)", anchor, "ratio A / B (below 1: A is lower)"
        )
        out.append(
            ScenarioCompare(
                name,
                anchor,
                rows,
                Markup(chart) if chart else None,
                _headlines(sa, sb, name),
                _claims(sa, sb, name),
            )
        )
    return out


def compare_markdown(
    rc: RunComparison, sa: Summary, sb: Summary, views: list[ScenarioCompare]
) -> str:
    lines = [f"## Shadow Harness: run `{cell(sa.run_id)}` (A) vs `{cell(sb.run_id)}` (B)", ""]
    if sa.is_emulator or sb.is_emulator:
        lines += ["> [!WARNING]", "> At least one run used the emulator — not OpenAI.", ""]
    lines += [f"- {cell(w)}" for w in _warnings(sa, sb)]
    if not rc.intervals:
        lines.append("- No observations for one run: point ratios of medians only, no intervals.")
    lines.append("")
    for v in views:
        lines += [
            f"### {cell(v.name)}",
            "",
            "| arm | " + " | ".join(m[0] for m in METRICS) + " |",
            "|---|" + "--:|" * len(METRICS),
        ]
        for r in v.arms:
            lines.append(
                "| "
                + " | ".join(
                    [f"`{cell(r.arm)}`"]
                    + [cell(effect(c.effect, "points" if c.delta else "ratio")) for c in r.cells]
                )
                + " |"
            )
        lines.append("")
    lines.append("_Ratios are A / B; * = the 95 % interval excludes no change._")
    return "\n".join(lines) + "\n"


def render_compare(run_a: Path, run_b: Path, out_dir: Path | None = None) -> Path:
    """Write ``compare.html`` and ``compare.md`` comparing run A with run B; returns the HTML."""
    run_a, run_b = Path(run_a), Path(run_b)
    rc, sa, sb, ma, mb = build_comparison(run_a, run_b)
    out = (
        Path(out_dir)
        if out_dir is not None
        else (REPORTS_DIR / f"compare-{sa.run_id}-vs-{sb.run_id}")
    )
    out.mkdir(parents=True, exist_ok=True)
    views = compare_view(rc, sa, sb, scenario_margins(ma))
    html = out / "compare.html"
    _write(
        html,
        render_template(
            "compare.html.j2",
            rc=rc,
            a=sa,
            b=sb,
            meta_a=ma,
            meta_b=mb,
            scenarios=views,
            warnings=_warnings(sa, sb),
            metrics=METRICS,
        ),
    )
    _write(out / "compare.md", compare_markdown(rc, sa, sb, views))
    return html
