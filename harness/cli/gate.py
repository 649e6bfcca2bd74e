"""``harness gate``: pass/fail a run on its gates and against a baseline, and the text it prints.

Deciding is :func:`harness.gates.evaluate.gate_run`'s; the files CI reads (JUnit cases, GitHub
annotations, the step summary) are :func:`harness.gates.output.publish`'s. This module holds the
terminal text (:func:`format_report`, also what the pytest plugin's ``shadow.explain()`` shows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness import fmt
from harness.cli.common import add_dir, add_prices, add_run_dir, call_with_options

if TYPE_CHECKING:
    from harness.gates.evaluate import GateReport

__all__ = ["add_arguments", "format_report", "gate", "run", "status_line"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dir(p)
    p.add_argument(
        "--baseline",
        default=None,
        metavar="NAME|FILE|RUN_DIR",
        help="baselines/NAME.json, a baseline file, or another run directory",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="gates file (YAML): {version: 1, gates: {KEY: N}, scenarios: {NAME: "
        "{KEY: N}}, regression_pct: N}; replaces the scenarios' gates",
    )
    p.add_argument(
        "--regression-pct",
        type=float,
        default=None,
        metavar="PCT",
        help="tolerance for baseline regressions of arms without their own "
        "<arm>.regression_pct_max gate (default 10)",
    )
    add_dir(p, "--baselines", "baselines", "directory of baselines")
    add_prices(
        p,
        also=" (the run is re-analysed: threshold and baseline gates use the same prices)",
    )
    p.add_argument(
        "--reports",
        type=Path,
        default=None,
        metavar="DIR",
        help="reports directory; gate cases go to DIR/<run-id>/junit.xml (default: "
        "reports/ beside the runs directory, where 'harness run' put the report)",
    )
    p.add_argument(
        "--run-spread",
        default=None,
        metavar="PCT",
        help="run-to-run spread of latency medians to allow for against a baseline (e.g. 5%%); "
        "default: measured from a baseline of several runs, else assumed 3 %% (see "
        "docs/statistics.md)",
    )
    p.add_argument(
        "--json", dest="as_json", action="store_true", help="print the gate report as JSON"
    )


def gate(
    run_dir: Path,
    *,
    baseline: str | None,
    as_json: bool = False,
    config: Path | None = None,
    regression_pct: float | None = None,
    baselines: Path | None = None,
    prices: Path | None = None,
    reports: Path | None = None,
    run_spread: str | None = None,
) -> GateReport:
    """Decide, print and publish the gates of ``run_dir`` (``harness gate``, ``run --gate``);
    the report's ``exit_code`` is the command's exit status."""
    from harness.gates.evaluate import gate_run, run_spread_option
    from harness.gates.output import default_reports_dir, publish

    report = gate_run(
        run_dir,
        baseline=baseline,
        config=config,
        regression_pct=regression_pct,
        baselines_dir=baselines,
        prices=prices,
        run_spread=run_spread_option(run_spread) if run_spread is not None else None,
    )
    print(report.model_dump_json(indent=2) if as_json else format_report(report))
    # GitHub annotations go to stderr with --json, so stdout stays one JSON document
    junit = publish(
        report,
        reports_dir=reports or default_reports_dir(run_dir),
        stream=sys.stderr if as_json else None,
    )
    if junit is not None and not as_json:
        print(f"junit: {junit}")
    return report


def run(args: argparse.Namespace) -> int:
    return call_with_options(gate, args).exit_code


def format_report(report: GateReport) -> str:
    """The text ``harness gate`` prints: one line per gate, then each failure explained."""
    from harness.gates.evaluate import NOTHING_TO_REGRESS_FROM
    from harness.gates.output import LABEL as _LABEL
    from harness.gates.output import explain, warning_line

    head = f"gate {report.run_dir or report.run_id} — {report.target}"
    if report.baseline:
        head += (
            f" vs baseline {report.baseline}, tolerance +{fmt.threshold(report.regression_pct)} %"
        )
    out = [head]
    if report.replay:
        out.append(report.replay)
    if report.results:
        width = max(len(f"{r.scenario}: {r.name}") for r in report.results)
        for r in report.results:
            label = f"{r.scenario}: {r.name}"
            out.append(f"{_LABEL[r.status]:<12} {label:<{width}}  {r.measured}  {r.limit()}")
    for r in report.results:
        if r.failed:
            out.append("")
            out.extend(explain(r))
    notes = [r for r in report.results if r.status == "inconclusive"]
    if notes:
        out.append("")
        out.extend(f"warning: {warning_line(r)}" for r in notes)
    skipped = [r for r in report.results if r.status == "skipped" and r.value is None]
    if skipped:
        out.append("")
    absent: dict[str, list[str]] = {}
    for r in skipped:
        if r.rule == NOTHING_TO_REGRESS_FROM:  # one line per scenario: these are many and alike
            absent.setdefault(r.scenario, []).append(r.name.replace(".regression_pct_max", ""))
        else:
            out.append(f"warning: {r.scenario}: {r.name} skipped: {r.rule}")
    out.extend(
        f"warning: {scenario}: not compared with the baseline, which has no value for: "
        f"{', '.join(names)}"
        for scenario, names in absent.items()
    )
    out.extend(f"warning: {w}" for w in report.warnings)
    out += ["", status_line(report)]
    return "\n".join(out)


def status_line(report: GateReport) -> str:
    """The gates' outcome in one line: the last of :func:`format_report`, and the gate status
    of ``harness run``'s end-of-run summary."""
    failed = len(report.failed)
    tally = (
        f"{len(report.results)} checks: {report.count('pass')} passed, "
        f"{report.count('inconclusive')} inconclusive, {report.count('fail')} failed, "
        f"{report.count('unknown')} unknown, {report.count('skipped')} skipped"
    )
    if not report.results:  # "PASSED — 0 checks" read like a green gate
        return "NOTHING CHECKED — no gates defined (exit 0)"
    return f"FAILED: {failed} gate(s) failed — {tally}" if failed else f"PASSED — {tally}"
