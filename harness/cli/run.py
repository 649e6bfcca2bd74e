"""``harness run``: send the scenarios, then analyse the run and render its report.

This is where run → analyze → report are put in sequence (:func:`finish_run`): the runner only
sends and records, so :mod:`harness.runner` never imports :mod:`harness.analysis` or
:mod:`harness.report`. The progress bar and the end-of-run table are drawn here too.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.common import add_emulator_options, add_prices, err, positive_int

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from harness.runner.execute import RunResult
    from harness.summary import Summary

__all__ = ["EXIT_STOPPED", "ProgressBar", "add_arguments", "finish_run", "run"]

#: ``harness run`` stopped at an error no retry could fix (401, 403, an unknown model, no
#: quota, a missing endpoint): not 1, which CI reads as a failed gate.
EXIT_STOPPED = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="*", type=Path, metavar="SCENARIO")
    p.add_argument(
        "--target",
        default="emulator",
        help="emulator (default), openai (needs OPENAI_API_KEY; OPENAI_BASE_URL "
        "optional), or a base URL of any compatible server (key from "
        "HARNESS_TARGET_API_KEY; OPENAI_API_KEY is only sent to OpenAI's hosts)",
    )
    add_emulator_options(p, "emulator-")
    p.add_argument(
        "--skip-unsupported",
        action="store_true",
        help="run what the target can serve: a live target is probed first (`harness probe "
        "capabilities`); without this flag an arm or prompt it cannot serve (e.g. "
        "responses_chained on llama-server, which has no previous_response_id) stops the "
        "run before anything is sent; with it, they are skipped and listed in meta.json",
    )
    p.add_argument("--out", type=Path, default=Path("runs"), help="runs directory (runs/)")
    p.add_argument(
        "--concurrency",
        type=positive_int,
        default=1,
        metavar="N",
        help="conversations in flight at once (default 1: most accurate timing)",
    )
    p.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        metavar="N",
        help="override the scenario's repeats",
    )
    p.add_argument(
        "--rps", type=float, default=None, metavar="R", help="at most R requests per second"
    )
    p.add_argument(
        "--client",
        choices=["sdk", "raw"],
        default="sdk",
        help="sdk: the official openai SDK (default); raw: lean httpx2 on asyncio's "
        "own sockets + SSE parser, for high-rate load tests",
    )
    p.add_argument(
        "--max-requests",
        type=positive_int,
        default=None,
        metavar="N",
        help="refuse to start if the plan has more requests",
    )
    p.add_argument(
        "--max-cost-usd",
        type=float,
        default=None,
        metavar="X",
        help="refuse to start a live run whose estimated cost is higher",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="complete an interrupted run (unfinished conversations restart at turn 1)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="run seed: cache nonces and arm order (default: random, recorded)",
    )
    p.add_argument(
        "--max-attempts",
        type=positive_int,
        default=4,
        metavar="N",
        help="attempts per request including retries (default 4)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--max-output-tokens",
        type=positive_int,
        default=None,
        metavar="N",
        help="cap every request's output at N tokens (lowers the scenario's limits, never "
        "raises them): a cheap smoke run of a live target; recorded in meta.json",
    )
    add_prices(p, " recorded with the run (meta.json keeps the prices of the day either way)")
    cassettes = p.add_mutually_exclusive_group()
    cassettes.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="DIR",
        help="record every interaction into DIR/<scenario name>.yaml "
        "(scrubbed of keys and cookies, with wire timing)",
    )
    cassettes.add_argument(
        "--replay",
        type=Path,
        default=None,
        metavar="DIR",
        help="replay from DIR/<scenario name>.yaml with no network and no "
        "key; seed and repeats come from the cassettes; a request with no "
        "recorded interaction fails (cassette_miss)",
    )
    p.add_argument(
        "--gate",
        action="store_true",
        help="after the run, analyse it and apply its gates like 'harness gate' "
        "(exit 1 when a gate fails)",
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="NAME|FILE|RUN_DIR",
        help="with --gate: also check for regressions against this baseline "
        "(implies --gate; checked before the run starts)",
    )


def _fix(result: RunResult) -> str:
    """What to do about the error that stopped ``result``."""
    assert result.fatal is not None
    if result.fatal.code == "model_not_found":
        return (
            "check the scenario's model name (harness validate names the known ones), "
            "then start a new run"
        )
    resume = f"harness run --resume {result.run_dir}"
    if result.fatal.code == "insufficient_quota" or result.fatal.code.startswith("billing"):
        return f"add quota or billing to the account, then finish the run with: {resume}"
    return f"check the API key and its access to the model, then finish the run with: {resume}"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.runner.execute import RunOptions
    from harness.runner.execute import run as run_scenarios
    from harness.transport.client import RetryPolicy

    options = RunOptions(
        target=args.target,
        emulator_profile=args.emulator_profile,
        emulator_seed=args.emulator_seed,
        emulator_time_scale=args.emulator_time_scale,
        truth_log=args.emulator_truth_log,
        out=args.out,
        concurrency=args.concurrency,
        repeats=args.repeats,
        rps=args.rps,
        client=args.client,
        max_requests=args.max_requests,
        max_cost_usd=args.max_cost_usd,
        resume=args.resume,
        seed=args.seed,
        progress=not args.quiet,
        retry=RetryPolicy(max_attempts=args.max_attempts),
        record=args.record,
        replay=args.replay,
        skip_unsupported=args.skip_unsupported,
        prices=args.prices,
        max_output_tokens=args.max_output_tokens,
    )
    if args.baseline is not None:
        from harness.gates.baseline import resolve_baseline

        resolve_baseline(args.baseline)  # a missing baseline fails before anything is sent
    result = run_scenarios(args.scenarios, options, ProgressBar(Console(stderr=True)))
    return finish_run(result, gates=args.gate, baseline=args.baseline)


class ProgressBar:
    """The runner's progress (:class:`harness.runner.execute.RunProgress`) as a rich bar."""

    def __init__(self, console: Console) -> None:
        self._progress = _progress(console)
        self._task: TaskID | None = None

    def start(self, label: str, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task(label, total=total, errors=0)

    def advance(self, errors: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, advance=1, errors=errors)

    def stop(self) -> None:
        self._progress.stop()


def _progress(console: Console) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("errors {task.fields[errors]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        # Not a terminal (CI logs, a pipe): a bar cannot redraw, and its final frame would land
        # after the end-of-run table.
        disable=not console.is_terminal,
    )


def finish_run(
    result: RunResult,
    console: Console | None = None,
    report_dir: Path | None = None,
    *,
    gates: bool = False,
    baseline: str | None = None,
) -> int:
    """Analyse the run and render its report (the runner does neither), apply its gates when
    asked (``gates``, ``baseline``), print where the files are and, last, the end-of-run
    summary (:func:`harness.cli.run_summary.run_summary`); return the exit status."""
    from rich.console import Console

    from harness.rundir import OBSERVATIONS_FILE

    console = console or Console()
    for what, why in result.meta.skipped.items():
        console.print(f"skipped (--skip-unsupported): {what} — {why}", soft_wrap=True)
    # soft_wrap: a path or command cut at 80 columns (output not a terminal) cannot be pasted
    console.print(f"observations: {result.run_dir / OBSERVATIONS_FILE}", soft_wrap=True)
    for (scenario, arm), stopped in result.stopped_arms.items():
        console.print(
            f"[red]stopped arm {scenario}/{arm}[/] at its first error "
            f"(the target lacks its endpoint): {stopped}",
            soft_wrap=True,
        )
    if result.fatal is not None:
        err(f"run stopped at its first fatal error ({result.fatal}) — {_fix(result)}")
        return EXIT_STOPPED
    code = EXIT_STOPPED if result.stopped_arms else 0
    summary = gate_report = None
    if result.interrupted:
        summary = _partial_summary(result.run_dir)
    elif result.recorded:
        from harness.analysis.analyze import analyze_run, saturation_warnings
        from harness.report import render_report
        from harness.rundir import write_summary

        summary = analyze_run(result.run_dir)
        # the one warning that should change how the next run is made
        for warning in saturation_warnings(summary.scenarios):
            console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        console.print(f"summary: {write_summary(result.run_dir, summary)}", soft_wrap=True)
        paths = render_report(result.run_dir, report_dir)
        console.print(f"report: {paths.html}", soft_wrap=True)
        if code == 0 and (gates or baseline is not None):
            from harness.cli.gate import gate

            gate_report = gate(result.run_dir, baseline=baseline, reports=report_dir)
            code = gate_report.exit_code
    if summary is not None:
        from harness.cli.run_summary import print_run_summary

        console.print()
        print_run_summary(console, summary, gate_report, partial=result.interrupted)
    if result.interrupted:
        console.print(
            f"interrupted after {result.recorded} request(s) — continue with: "
            f"harness run --resume {result.run_dir}",
            soft_wrap=True,
        )
        return 130
    return code


def _partial_summary(run_dir: Path) -> Summary | None:
    """An interrupted run's figures so far, for the terminal only (nothing is written); none
    when it has no observations or the user interrupts this too."""
    from harness.analysis.analyze import analyze_run, has_observations

    if not has_observations(run_dir):
        return None
    try:
        return analyze_run(run_dir)
    except KeyboardInterrupt:
        return None
