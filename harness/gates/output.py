"""What gates write for CI: JUnit cases, GitHub Actions annotations and the step summary, and
:func:`publish`, which writes them. The terminal text is the CLI's (:mod:`harness.cli.gate`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from harness.gates.evaluate import GateReport, GateResult

if TYPE_CHECKING:
    from harness.report.junit import JUnitCase

JUNIT_SUITE = "harness gates"


def default_reports_dir(run_dir: Path) -> Path:
    """Where ``harness run`` put the run's report: ``reports/`` beside the runs directory
    (``runs/<run-id>`` → ``reports/<run-id>``), so the gate appends to that ``junit.xml``."""
    return run_dir.parent.parent / "reports"


LABEL = {
    "pass": "PASS",
    "fail": "FAIL",
    "inconclusive": "INCONCLUSIVE",
    "unknown": "UNKNOWN",
    "skipped": "SKIPPED",
}


def explain(r: GateResult) -> list[str]:
    """A few lines on one gate: what was measured, the rule, where it is set, what to do."""
    where = r.source if r.line is None else f"{r.source}:{r.line}"
    lines = [
        f"{LABEL[r.status]} {r.scenario}: {r.name} {r.limit()}",
        f"    measured: {r.measured}",
    ]
    if r.context:
        lines.append(f"    {r.context}")
    lines.append(f"    rule: {r.rule}")
    lines.append(
        f"    set in: {where}"
        if r.source != "default"
        else "    set in: default regression check (no <arm>.regression_pct_max gate)"
    )
    if r.fix:
        lines.append(f"    next: {r.fix}")
    return lines


def warning_line(r: GateResult) -> str:
    """The one line an inconclusive gate gets wherever gates are shown (terminal, pytest's
    summary, JUnit): it passed, but nothing showed it is within its limit."""
    return (
        f"{r.scenario}: {r.name} is inconclusive ({r.measured} vs limit {r.limit()}) — "
        "passes; more repeats would decide it"
    )


def junit_cases(report: GateReport) -> list[JUnitCase]:
    """One JUnit test case per gate (failing statuses carry a failure message)."""
    from harness.report.junit import JUnitCase

    return [
        JUnitCase(
            name=f"{r.name} {r.limit()}",
            classname=f"harness.gates.evaluate.{r.scenario}",
            failure_message=f"{r.status}: {r.measured}; {r.rule}" if r.failed else None,
            details="\n".join(explain(r)),
            warning=warning_line(r) if r.status == "inconclusive" else None,
        )
        for r in report.results
    ]


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(report: GateReport) -> list[str]:
    """``::error``/``::warning`` workflow commands (file and line when the gate is in a file)."""
    lines = []
    for r in report.results:
        if r.failed:
            level = "error"
        elif r.status == "inconclusive" or (r.status == "skipped" and r.value is None):
            level = "warning"
        else:
            continue
        props = [f"title={_escape_property(f'Shadow gate {r.status}: {r.scenario} {r.name}')}"]
        if r.line is not None and r.source != "default":
            props.insert(0, f"file={_escape_property(r.source)},line={r.line}")
        message = "\n".join(explain(r)[1:]).replace("    ", "")
        lines.append(f"::{level} {','.join(props)}::{_escape_data(message)}")
    return lines


def step_summary(report: GateReport) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``."""
    verdict = "✅ passed" if report.passed else f"❌ {len(report.failed)} gate(s) failed"
    out = [
        f"### Shadow Harness gates: {verdict}",
        "",
        f"Run `{report.run_id}` on {report.target}"
        + (f", baseline {report.baseline}" if report.baseline else "")
        + (f" — {report.replay}" if report.replay else ""),
        "",
        "| status | scenario | gate | measured | limit |",
        "|---|---|---|---|---|",
    ]
    for r in report.results:
        cells = [LABEL[r.status], r.scenario, f"`{r.name}`", r.measured, r.limit()]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    for r in report.failed:
        out += [
            "",
            "<details><summary>" + f"{r.scenario}: {r.name}" + "</summary>",
            "",
            "```",
            *explain(r),
            "```",
            "</details>",
        ]
    out += [f"- warning: {w}" for w in report.warnings]
    return "\n".join(out) + "\n"


def publish(
    report: GateReport,
    *,
    reports_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> Path | None:
    """Append gate cases to ``reports_dir/<run-id>/junit.xml`` and, under GitHub Actions, write
    annotations to ``stream`` and the step summary. Returns the JUnit path (if written)."""
    env = os.environ if env is None else env
    stream = stream or sys.stdout
    junit = None
    if reports_dir is not None and report.results:
        from harness.report.junit import append_cases

        junit = reports_dir / report.run_id / "junit.xml"
        junit.parent.mkdir(parents=True, exist_ok=True)
        append_cases(junit, JUNIT_SUITE, junit_cases(report))
    if env.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(report):
            print(line, file=stream)
        summary_path = env.get("GITHUB_STEP_SUMMARY")
        if summary_path:
            with open(summary_path, "a", encoding="utf-8") as fh:
                fh.write(step_summary(report))
    return junit
