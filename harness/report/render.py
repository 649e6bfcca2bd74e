"""``render_report``: a run directory → ``report.html``, ``summary.md`` and ``junit.xml``.

The HTML is one offline file: jinja2 templates from this package (autoescaped — model output is
untrusted), charts as inline SVG, a small inline script for sorting tables (the page works
without it), and a Content-Security-Policy that allows nothing else: no network, no other
script. Re-rendering reads only the run directory and never sends a request.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from harness import NOT_OPENAI_LABEL, __version__, fmt
from harness.analysis.analyze import saturation_warnings
from harness.arms import Arm
from harness.history import AUTO, HistoryOption
from harness.report import charts
from harness.report.data import RowExtra, RunData, load_run
from harness.report.detail import MAX_REPLY_CHARS, NOT_SENT_LABEL, ScenarioDetail, scenario_detail
from harness.report.trend import load_trend, trend_chart
from harness.report.verdict import (
    MATCHED_NOTE,
    Finding,
    findings,
    headline_comparisons,
    sentence,
    traffic_mix,
)
from harness.summary import ArmSummary, Claim, Comparison, ScenarioSummary

REPORTS_DIR = Path("reports")
#: Failed requests listed one by one per scenario (the rest are counted).
MAX_FAILURES = 100


@dataclass(frozen=True)
class ReportPaths:
    """Where ``render_report`` wrote its files."""

    out_dir: Path
    html: Path
    markdown: Path
    junit: Path


@dataclass(frozen=True)
class Headline:
    key: str
    comparison: Comparison
    findings: list[Finding]
    sentence: str


@dataclass(frozen=True)
class FailureRow:
    prompt_id: str
    arm: str
    turn: int
    repeat: int
    error_type: str | None
    status: int | None
    message: str | None
    attempts: list[str]


@dataclass
class ArmErrors:
    arm: str
    requests: int
    errors: int
    error_types: dict[str, int]
    finish: dict[str, int]
    not_sent: int = 0
    retried: int = 0
    recovered: int = 0
    waited_ms: float = 0.0


@dataclass
class ErrorsView:
    arms: list[ArmErrors]
    failures: list[FailureRow]
    hidden_failures: int
    skipped: int
    any: bool
    not_sent: int


@dataclass
class ScenarioView:
    s: ScenarioSummary
    anchor: str
    headlines: list[Headline]
    comparisons: list[tuple[str, Comparison]]
    claims: list[Claim]
    charts: dict[str, Markup | None]
    detail: ScenarioDetail
    errors: ErrorsView
    sdk_overhead: dict[str, float | None] = field(default_factory=dict)
    #: why the SDK overhead column is empty (the arms used different clients), else None
    sdk_note: str | None = None
    has_reasoning: bool = False
    #: the client saturated or the machine busy while timing (the summary's warnings)
    timing_warnings: list[str] = field(default_factory=list)
    #: the cost under the traffic mix (:func:`harness.report.verdict.traffic_mix`)
    traffic_mix: str | None = None


# --- jinja ------------------------------------------------------------------------------------


@cache
def environment() -> Environment:
    """The package's template environment (autoescaped, undefined names are errors)."""
    env = Environment(
        loader=PackageLoader("harness.report", "templates"),
        autoescape=select_autoescape(["html", "html.j2", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        points=fmt.points,
        ms=fmt.ms,
        ratio=fmt.ratio,
        pct=fmt.pct,
        usd=fmt.usd,
        num=fmt.num,
        interval=fmt.interval,
        effect=fmt.effect,
        claim=fmt.claim,
        arm_name=fmt.arm_name,
        when=fmt.when,
        duration=fmt.duration_s,
        basename=lambda p: str(p).replace("\\", "/").rsplit("/", 1)[-1],
    )
    # ``{% if arm is replicate %}``: the template asks the arm type, never parses ids itself.
    env.tests["replicate"] = lambda arm: Arm.of(arm).is_replicate
    return env


@cache
def _script() -> tuple[Markup, str]:
    """The inline script and its CSP hash (the only script the page may run)."""
    text = files("harness.report").joinpath("templates/report.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return Markup(text), f"'sha256-{digest}'"


@cache
def _style() -> Markup:
    return Markup(
        files("harness.report").joinpath("templates/report.css").read_text(encoding="utf-8")
    )


def page_globals() -> dict[str, Any]:
    script, script_hash = _script()
    return {
        "script": script,
        "script_hash": script_hash,
        "style": _style(),
        "harness_version": __version__,
        "not_openai": NOT_OPENAI_LABEL,
    }


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**page_globals(), **context)


# --- building the view ------------------------------------------------------------------------


def _anchor(name: str, used: set[str]) -> str:
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-") or "s"
    out, k = f"sc-{slug}", 2
    while out in used:
        out, k = f"sc-{slug}-{k}", k + 1
    used.add(out)
    return out


def _latency_series(
    data: RunData, rows: np.ndarray[Any, np.dtype[np.int64]], col: str, arms: list[str]
) -> list[charts.LatencySeries]:
    t = data.table
    values = getattr(t, col)
    arm_col = np.array(t.arm, dtype=object)[rows]
    out = []
    for arm in arms:
        sel = rows[(arm_col == arm) & t.ok[rows]]
        v = values[sel]
        keep = ~np.isnan(v)
        cold = t.cold[sel][keep]
        out.append(charts.LatencySeries(arm, v[keep][cold], v[keep][~cold]))
    return out


def _attempt_text(extra: RowExtra) -> list[str]:
    out = []
    for a in extra.attempts:
        part = f"{a.status if a.status is not None else 'no status'} {a.error_type or 'ok'}"
        if a.retry_after_ms is not None:
            part += f" (retry-after {fmt.ms(a.retry_after_ms)})"
        if a.waited_ms:
            part += f", waited {fmt.ms(a.waited_ms)}"
        out.append(part)
    return out


def _errors(data: RunData, s: ScenarioSummary) -> ErrorsView:
    arms = {
        arm: ArmErrors(arm, a.requests, a.errors, dict(a.error_types), dict(a.finish))
        for arm, a in s.arms.items()
    }
    failures: list[FailureRow] = []
    hidden = skipped = 0
    for (scenario, prompt, arm, repeat, turn, warmup), extra in sorted(
        data.extras.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][3], kv[0][4])
    ):
        if scenario != s.name or warmup:
            continue
        e = arms.setdefault(arm, ArmErrors(arm, 0, 0, {}, {}))
        if len(extra.attempts) > 1:
            e.retried += 1
            e.recovered += extra.ok
            e.waited_ms += sum(a.waited_ms for a in extra.attempts)
        if extra.ok:
            continue
        if extra.error_type == "skipped":
            if (scenario, prompt, arm, repeat, turn, warmup) in data.not_sent:
                e.not_sent += 1
            else:
                skipped += 1
            continue
        if len(failures) >= MAX_FAILURES:
            hidden += 1
            continue
        message = extra.error_message
        if message and len(message) > 300:
            message = message[:300] + "…"
        failures.append(
            FailureRow(
                prompt,
                arm,
                turn,
                repeat,
                extra.error_type,
                extra.status,
                message,
                _attempt_text(extra),
            )
        )
    views = list(arms.values())
    return ErrorsView(
        views,
        failures,
        hidden,
        skipped,
        any(a.errors or a.retried for a in views),
        sum(a.not_sent for a in views),
    )


def _sdk_overhead(a: ArmSummary) -> float | None:
    if a.sdk_total_ms is None or a.total_ms is None:
        return None
    return a.sdk_total_ms.p50 - a.total_ms.p50


def _sdk_overheads(
    data: RunData, rows: np.ndarray, s: ScenarioSummary
) -> tuple[dict[str, float | None], str | None]:
    """Each arm's SDK overhead, shown only when every arm used the same client: the SDK adds
    more client time than the raw client, so side by side the gap would pose as the API's."""
    t = data.table
    clients: dict[str, set[str]] = {}
    for i in rows.tolist():
        clients.setdefault(t.arm[i], set()).add(t.client[i])
    if len({c for cs in clients.values() for c in cs}) > 1:
        used = ", ".join(f"{arm}: {'/'.join(sorted(cs))}" for arm, cs in clients.items())
        return {}, f"SDK overhead not compared: the arms used different clients ({used})"
    return {arm: _sdk_overhead(a) for arm, a in s.arms.items()}, None


def scenario_view(
    data: RunData,
    s: ScenarioSummary,
    anchor: str,
    *,
    divergent: int = 10,
    slowest: int = 5,
    max_rows: int = 300,
) -> ScenarioView:
    t = data.table
    names = np.array(t.scenario, dtype=object)
    rows = np.flatnonzero((names == s.name) & ~t.warmup).astype(np.int64)
    not_sent = Counter(k[2] for k in data.not_sent if k[0] == s.name and not k[5])
    heads = []
    for key, c in headline_comparisons(s):
        found = findings(c, s.arms, not_sent)
        heads.append(Headline(key, c, found, sentence(c, found)))
    arms = list(s.arms)
    salt = anchor
    chart_set = {
        "ttft": charts.latency_chart(
            _latency_series(data, rows, "ttft_ms", arms),
            "Time to first token per arm (wire clock)",
            f"{salt}-ttft",
        ),
        "total": charts.latency_chart(
            _latency_series(data, rows, "total_ms", arms),
            "Total latency per arm (wire clock)",
            f"{salt}-total",
        ),
        "cache": charts.cache_chart(s.arms, "Cached input tokens per turn", f"{salt}-cache"),
        "cost": charts.cost_chart(s.arms, "Cost per arm", f"{salt}-cost"),
        "similarity": charts.similarity_chart(
            s.comparisons, "Answer similarity against the A/A noise floor", f"{salt}-sim"
        ),
        "state": charts.state_cache_chart(
            s.conversation_state, "Cached share of the input by turn", f"{salt}-state"
        )
        if s.conversation_state is not None
        else None,
        "trend": None
        if data.trend is None
        else trend_chart(data.trend, s.name, f"{salt}-trend", data.summary.run_id),
    }
    detail = scenario_detail(
        t,
        rows,
        s.name,
        [(h.key, h.comparison.a, h.comparison.b) for h in heads],
        data.prompts,
        data.not_sent,
        divergent=divergent,
        slowest=slowest,
        max_rows=max_rows,
    )
    sdk_overhead, sdk_note = _sdk_overheads(data, rows, s)
    return ScenarioView(
        s=s,
        anchor=anchor,
        headlines=heads,
        comparisons=list(s.comparisons.items()),
        claims=list(s.claims.values()),
        charts={k: Markup(v) if v else None for k, v in chart_set.items()},
        detail=detail,
        errors=_errors(data, s),
        sdk_overhead=sdk_overhead,
        sdk_note=sdk_note,
        has_reasoning=any(a.reasoning_tokens and a.reasoning_tokens.total for a in s.arms.values()),
        timing_warnings=saturation_warnings([s]),
        traffic_mix=traffic_mix(s),
    )


def default_report_dir(run_dir: Path, run_id: str) -> Path:
    """``reports/<run-id>/`` beside the runs directory: ``runs/<id>`` → ``reports/<id>``
    (DESIGN §1). ``harness run``, ``report`` and ``gate`` all use this one rule."""
    return Path(run_dir).resolve().parent.parent / REPORTS_DIR / run_id


def render_html(
    data: RunData, *, divergent: int = 10, slowest: int = 5, max_rows: int = 300
) -> str:
    """The report page of a loaded run."""
    used: set[str] = set()
    views = [
        scenario_view(
            data, s, _anchor(s.name, used), divergent=divergent, slowest=slowest, max_rows=max_rows
        )
        for s in data.summary.scenarios
    ]
    counts = Counter(a for a in data.table.arm)
    return render_template(
        "report.html.j2",
        summary=data.summary,
        meta=data.meta,
        scenarios=views,
        notes=data.notes,
        summary_computed=data.summary_computed,
        arm_counts=dict(counts),
        run_dir=str(data.run_dir),
        max_points=charts.MAX_POINTS,
        max_reply_chars=MAX_REPLY_CHARS,
        not_sent_label=NOT_SENT_LABEL,
        matched_note=MATCHED_NOTE,
    )


def render_report(
    run_dir: Path,
    out_dir: Path | None = None,
    *,
    divergent: int = 10,
    slowest: int = 5,
    max_rows: int = 300,
    history: HistoryOption = AUTO,
) -> ReportPaths:
    """Write ``report.html``, ``summary.md`` and ``junit.xml`` for ``run_dir``.

    ``out_dir`` defaults to ``reports/<run-id>/`` beside the runs directory. When the
    run has no ``summary.json`` it is analysed first (and the summary saved). Per-prompt detail
    is kept for the ``divergent`` most divergent and ``slowest`` slowest prompts of each
    scenario; ``max_rows`` more are summarised in a table. With ``history`` (a directory,
    or by default the one beside the runs directory) holding at least two runs of a scenario
    and target, each scenario gets a trend chart.
    """
    from harness.report.junit import write_junit
    from harness.report.markdown import summary_markdown

    data = load_run(Path(run_dir))
    data.trend, note = load_trend(data.run_dir, data.meta.created_at, data.summary, history)
    if note is not None:
        data.notes.append(note)
    out = (
        Path(out_dir)
        if out_dir is not None
        else default_report_dir(Path(run_dir), data.summary.run_id)
    )
    out.mkdir(parents=True, exist_ok=True)
    html = out / "report.html"
    _write(html, render_html(data, divergent=divergent, slowest=slowest, max_rows=max_rows))
    md = out / "summary.md"
    _write(md, summary_markdown(data.summary, meta=data.meta))
    junit = out / "junit.xml"
    write_junit(junit, data.summary)
    return ReportPaths(out_dir=out, html=html, markdown=md, junit=junit)


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


__all__ = ["ReportPaths", "render_html", "render_report", "scenario_view"]
