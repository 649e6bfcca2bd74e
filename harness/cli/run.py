"""``harness run``: send the scenarios, then analyse the run and render its report.

This is where run → analyze → report are put in sequence (:func:`finish_run`): the runner only
sends and records, so :mod:`harness.runner` never imports :mod:`harness.analysis` or
:mod:`harness.report`. The progress bar and the end-of-run table are drawn here too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness import fmt
from harness.cli.common import add_emulator_options, add_history, add_prices, err, positive_int
from harness.errors import HarnessError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from harness.history import HistoryOption
    from harness.runner.execute import RunResult
    from harness.summary import LatencyStats, Summary

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
    p.add_argument(
        "--keep-stored",
        action="store_true",
        help="leave what the run stored at the provider (store: true responses and chat "
        "completions, conversations); by default the run deletes them when it ends",
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
        "key; seed and repeats come from the cassettes; they are checked against the "
        "plan first: a request with no recorded interaction stops the run (exit 2) with the "
        "command that re-records; a stale cassette that holds every request is a warning",
    )
    p.add_argument(
        "--allow-stale",
        action="store_true",
        help="with --replay: replay cassettes that lack requests of the plan anyway (a "
        "warning instead of exit 2; those requests fail as cassette_miss)",
    )
    dist = p.add_argument_group("distributed runs (docs/distributed.md)")
    dist.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: send from this process (default); ray: shard the conversations over "
        "Ray workers (pip install 'shadow-harness[ray]'), each with its share of --rps and "
        "--concurrency",
    )
    dist.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="with --engine ray: the cluster to join (auto, HOST:6379 or ray://HOST:10001); "
        "default: start Ray on this machine",
    )
    dist.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --engine ray: Ray workers sharing the plan (default 2)",
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
    add_history(p)


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

    run_scenarios = _on_engine(args, run_scenarios)
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
        keep_stored=args.keep_stored,
    )
    from harness.history import option_history

    # checked before anything is sent; the default is resolved beside the run directory when
    # it exists (with --resume that is not --out)
    history = option_history(args.history, off=args.no_history)
    if args.baseline is not None:
        from harness.gates.baseline import resolve_baseline

        resolve_baseline(args.baseline)  # a missing baseline fails before anything is sent
    if args.allow_stale and args.replay is None:
        raise HarnessError("--allow-stale is for --replay DIR — add --replay or drop it")
    if args.replay is not None and args.resume is None:
        from harness.cassettes.check import require_fresh_cassettes

        for warning in require_fresh_cassettes(
            args.scenarios, options, allow_stale=args.allow_stale
        ):
            print(f"harness: warning: {warning}", file=sys.stderr)
    result = run_scenarios(args.scenarios, options, ProgressBar(Console(stderr=True)))
    return finish_run(result, gates=args.gate, baseline=args.baseline, history=history)


if TYPE_CHECKING:
    from collections.abc import Callable

    #: harness.runner.execute.run
    Send = Callable[..., "RunResult"]


def _on_engine(args: argparse.Namespace, send: Send) -> Send:
    """``send`` on the engine ``--engine`` names: ``ray`` runs it through a
    :class:`harness.runner.distributed.RayEngine`, connected for the run only."""
    if args.engine != "ray":
        if args.ray_address is not None or args.workers is not None:
            from harness.errors import HarnessError

            raise HarnessError("--ray-address and --workers need --engine ray — add it")
        return send

    def on_ray(*send_args: object) -> RunResult:
        from harness.runner.distributed import RayEngine

        with RayEngine(args.ray_address, args.workers or 2) as ray:
            result: RunResult = send(*send_args, engine=ray)
            return result

    return on_ray


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


def background_table(summary: Summary) -> Table | None:
    """Background-mode arms (scenario ``background: true``): queue, polling and resumes, p50 ms;
    None when no arm sent any."""
    from rich.table import Table

    rows = [
        (s.name, arm, a.background)
        for s in summary.scenarios
        for arm, a in s.arms.items()
        if a.background is not None
    ]
    if not rows:
        return None
    table = Table(title="background mode (p50 ms; without a stream, wait and lag are bounds)")
    for col in ("scenario", "arm", "n", "queued", "wait", "total", "polls", "lag ≤"):
        table.add_column(col, justify="left" if col in ("scenario", "arm") else "right")
    table.add_column("resumed", justify="right")

    def p50(stat: LatencyStats | None) -> str:
        return fmt.num(stat.p50, 1) if stat is not None else "—"

    for scenario, arm, b in rows:
        table.add_row(
            scenario,
            arm,
            str(b.requests),
            p50(b.time_to_queued_ms),
            p50(b.queue_wait_ms),
            p50(b.total_ms),
            fmt.num(b.polls_mean, 1) if b.polls_mean is not None else "—",
            p50(b.poll_lag_max_ms),
            f"{b.resumed_requests}/{b.streamed_requests}",
        )
    return table


def finish_run(
    result: RunResult,
    console: Console | None = None,
    report_dir: Path | None = None,
    *,
    gates: bool = False,
    baseline: str | None = None,
    history: HistoryOption = "auto",
) -> int:
    """Analyse the run, record it in the history and render its report (the runner does none
    of these), apply its gates when asked (``gates``, ``baseline``), print where the files are
    and, last, the end-of-run summary (:func:`harness.cli.run_summary.print_run_summary`); return
    the exit status."""
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
        from harness.analysis.analyze import analyze_run, load_run, saturation_warnings
        from harness.history import save_summary
        from harness.report import render_report

        loaded = load_run(result.run_dir)
        summary = analyze_run(loaded)
        # the one warning that should change how the next run is made
        for warning in saturation_warnings(summary.scenarios):
            console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        background = background_table(summary)
        if background is not None:
            console.print(background)
        path, not_recorded = save_summary(loaded, summary, history)
        console.print(f"summary: {path}", soft_wrap=True)
        if not_recorded is not None:
            print(f"harness: warning: {not_recorded}", file=sys.stderr)
        paths = render_report(result.run_dir, report_dir, history=history)
        console.print(f"report: {paths.html}", soft_wrap=True)
        if code == 0 and (gates or baseline is not None):
            from harness.cli.gate import gate

            gate_report = gate(result.run_dir, baseline=baseline, reports=report_dir)
            code = gate_report.exit_code
    if summary is not None:
        from harness.cli.run_summary import print_run_summary

        console.print()
        print_run_summary(console, summary, gate_report, partial=result.interrupted)
    if result.meta.replay_label is not None:
        console.print(result.meta.replay_label, style="bold", markup=False, soft_wrap=True)
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
