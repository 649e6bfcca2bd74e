"""The ``harness`` command: a thin argparse layer over library calls.

Each subcommand parses its arguments and calls one library function. Anything a user can get
wrong raises :class:`harness.errors.HarnessError`, printed as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from harness import __version__
from harness.errors import HarnessError, ScenarioError

Handler = Callable[[argparse.Namespace], int]


def _err(message: str) -> None:
    print(f"harness: error: {message}", file=sys.stderr)


# --- validate ----------------------------------------------------------------------------------


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "validate",
        help="check scenario files",
        description="Check scenario files (or every *.yaml/*.yml under a directory). Prints "
        "one line per problem as 'file:line: field.path: what is wrong — how to fix'. "
        "Exit 0 when all are valid, 2 otherwise.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="file or directory")
    p.set_defaults(handler=_cmd_validate)


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.runner.plan import translation_problems
    from harness.scenario.load import validate_paths

    problems, checked = validate_paths(args.paths, check=translation_problems)
    for line in problems:
        print(line)
    if problems:
        return 2
    print(f"{checked} scenario file(s) valid")
    return 0


# --- plan --------------------------------------------------------------------------------------


def _add_plan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan",
        help="show the requests a run would send (dry run)",
        description="Dry run: list every request a run of SCENARIO would send, in send order. "
        "Run-time values (assistant replies, tool call ids, previous_response_id) are shown as "
        'placeholders such as "<response of turn 1>". Nothing is sent.',
    )
    p.add_argument("scenario", type=Path, metavar="SCENARIO")
    p.add_argument("--repeats", type=int, default=None, help="override the scenario's repeats")
    p.add_argument("--seed", type=int, default=0, help="run seed (cache nonces, arm order)")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per request (JSON Lines) instead of a table",
    )
    p.add_argument(
        "--power",
        default=None,
        metavar="EFFECT",
        help="also say how many repeats detect a change of EFFECT (e.g. 10%%) in a "
        "p50 ratio at 95 %% power",
    )
    p.add_argument(
        "--sigma",
        type=float,
        default=0.3,
        metavar="S",
        help="log-spread of latencies for --power (default 0.3; a previous "
        "summary.json reports the observed one as power.sigma_log)",
    )
    p.set_defaults(handler=_cmd_plan)


def _cmd_plan(args: argparse.Namespace) -> int:
    from harness.runner.plan import print_plan

    print_plan(
        args.scenario,
        repeats=args.repeats,
        seed=args.seed,
        as_json=args.json,
        power=args.power,
        sigma_log=args.sigma,
    )
    return 0


# --- emulator ----------------------------------------------------------------------------------


def _add_emulator(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "emulator",
        help="serve the OpenAI-compatible emulator (not OpenAI)",
        description="Serve an emulator of OpenAI's Chat Completions and Responses APIs "
        "(caching rules, SSE streams, stored responses, latency and fault profiles). Every "
        "reply carries an 'x-emulator' header. Point the SDK at http://HOST:PORT/v1.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument(
        "--profile",
        default="parity",
        help="latency/fault profile: parity, guide-claims, regressed, zero, or a "
        "YAML file (default: parity)",
    )
    p.add_argument("--seed", type=int, default=0, help="content seed (default 0)")
    p.add_argument(
        "--truth-log",
        type=Path,
        default=None,
        help="JSONL file receiving the delays applied to each request",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every profile delay by X (0.1 = ten times faster)",
    )
    p.set_defaults(handler=_cmd_emulator)


def _cmd_emulator(args: argparse.Namespace) -> int:
    from harness.emulator.server import serve

    serve(
        host=args.host,
        port=args.port,
        profile=args.profile,
        seed=args.seed,
        truth_log=args.truth_log,
        time_scale=args.time_scale,
    )
    return 0


# --- run ---------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run scenarios against both APIs and record observations",
        description="Send every planned request of SCENARIO(s) to the target and record one "
        "observation per request in runs/<run-id>/observations.jsonl. Default target: the "
        "built-in emulator (not OpenAI) with the 'parity' profile, in its own process. "
        "Exit 0 when the run completed (failed requests are data), 2 for bad input, "
        "130 when interrupted (what was recorded is kept; continue with --resume).",
    )
    p.add_argument("scenarios", nargs="*", type=Path, metavar="SCENARIO")
    p.add_argument(
        "--target",
        default="emulator",
        help="emulator (default), openai (needs OPENAI_API_KEY; OPENAI_BASE_URL "
        "optional), or a base URL of any compatible server (key from "
        "HARNESS_TARGET_API_KEY; OPENAI_API_KEY is only sent to OpenAI's hosts)",
    )
    p.add_argument(
        "--emulator-profile",
        default="parity",
        metavar="NAME|FILE",
        help="latency/fault profile of the built-in emulator (default parity)",
    )
    p.add_argument("--emulator-seed", type=int, default=0, metavar="N")
    p.add_argument(
        "--emulator-truth-log",
        type=Path,
        default=None,
        metavar="FILE",
        help="the built-in emulator writes the delays it applied and when it sent "
        "each byte here (JSONL), to check the harness's timing; never read by it",
    )
    p.add_argument(
        "--emulator-time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="scale the emulator's delays (0.1 = ten times faster; for demos/tests)",
    )
    p.add_argument("--out", type=Path, default=Path("runs"), help="runs directory (runs/)")
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        default=1,
        metavar="N",
        help="conversations in flight at once (default 1: most accurate timing)",
    )
    p.add_argument(
        "--repeats",
        type=_positive_int,
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
        type=_positive_int,
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
        type=_positive_int,
        default=4,
        metavar="N",
        help="attempts per request including retries (default 4)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
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
    p.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.runner.execute import RunOptions, finish_run, run
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
    )
    if args.baseline is not None:
        from harness.gates.baseline import resolve_baseline

        resolve_baseline(args.baseline)  # a missing baseline fails before anything is sent
    result = run(args.scenarios, options)
    code = finish_run(result)
    if code != 0 or not (args.gate or args.baseline is not None):
        return code
    return _gate(result.run_dir, baseline=args.baseline, as_json=False)


# --- analyze -----------------------------------------------------------------------------------


def _add_analyze(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "analyze",
        help="turn a run's observations into summary.json",
        description="Analyse RUN_DIR (meta.json + observations.jsonl): latency percentiles with "
        "bootstrap CIs, cold vs warm, caching, cost, output similarity against the A/A noise "
        "floor, and the migration guide's claims. Writes RUN_DIR/summary.json, prints its path "
        "and a short table. Exit 0, or 2 for bad input.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument(
        "--prices",
        type=Path,
        default=None,
        metavar="FILE",
        help="YAML/JSON price overrides: {models: {NAME: {input_mtok, "
        "cached_input_mtok, cache_write_mtok, output_mtok}}} (USD per 1M tokens)",
    )
    p.add_argument("--seed", type=int, default=0, metavar="N", help="bootstrap seed (default 0)")
    p.add_argument(
        "--resamples",
        type=_positive_int,
        default=None,
        metavar="N",
        help="bootstrap resamples (default 2000)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the summary path")
    p.set_defaults(handler=_cmd_analyze)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from harness.analysis.analyze import analyze_run, write_summary
    from harness.analysis.stats import DEFAULT_RESAMPLES

    summary = analyze_run(
        args.run_dir,
        price_overrides=args.prices,
        seed=args.seed,
        resamples=args.resamples or DEFAULT_RESAMPLES,
    )
    path = write_summary(args.run_dir, summary)
    for warning in summary.warnings:
        print(f"harness: warning: {warning}", file=sys.stderr)
    print(path)
    if not args.quiet:
        from rich.console import Console

        from harness.summary import summary_tables

        console = Console()
        for table in summary_tables(summary):
            console.print(table)
    return 0


# --- probe -------------------------------------------------------------------------------------


def _add_probe(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "probe",
        help="measure target behaviour a shadow run depends on",
        description="cache-sharing: send a fresh 1,024+-token prompt to one API, then the same "
        "prompt to the other (both orders), and report whether the second API found it cached "
        "— i.e. whether the target keeps one prompt cache for both APIs.",
    )
    p.add_argument("what", choices=["cache-sharing"])
    p.add_argument("--target", default="emulator", help="emulator (default), openai, or a URL")
    p.add_argument("--model", default="gpt-4.1-mini")
    p.set_defaults(handler=_cmd_probe)


def _cmd_probe(args: argparse.Namespace) -> int:
    import asyncio

    from harness.runner.probe import probe_cache_sharing
    from harness.runner.target import open_target

    with open_target(args.target, emulator_profile="zero") as target:
        result = asyncio.run(probe_cache_sharing(target, args.model))
        print(f"{target.label}: prompt cache {result.explain()}")
    return 0


# --- cassettes ---------------------------------------------------------------------------------


def _add_cassettes(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cassettes",
        help="inspect recorded cassettes",
        description="Commands on cassettes recorded with 'harness run --record DIR'.",
    )
    commands = p.add_subparsers(dest="cassettes_command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check",
        help="list unused, missing and stale interactions",
        description="Replay every scenario of --scenarios offline against its cassette in DIR "
        "and list, per cassette: missing interactions (requests with no recording, or no "
        "cassette), unused ones (recorded, never asked for) and staleness (the scenario "
        "changed since recording). Exit 0 when all are clean, 1 if anything is listed, 2 for "
        "bad input.",
    )
    check.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=Path("cassettes"),
        metavar="DIR",
        help="cassette directory (default cassettes/)",
    )
    check.add_argument(
        "--scenarios",
        type=Path,
        default=Path("scenarios"),
        metavar="DIR",
        help="scenario directory (default scenarios/)",
    )
    check.set_defaults(handler=_cmd_cassettes_check)


def _cmd_cassettes_check(args: argparse.Namespace) -> int:
    from harness.cassettes.check import check_cassettes, format_reports

    reports = check_cassettes(args.directory, args.scenarios)
    for line in format_reports(reports):
        print(line)
    return 0 if all(r.ok for r in reports) else 1


# --- gate --------------------------------------------------------------------------------------


def _add_gate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gate",
        help="pass/fail a run on its gates and against a baseline (for CI)",
        description="Decide RUN_DIR's gates (the scenario files' gates:, or --config) and, with "
        "--baseline, its regressions against a baseline run, using the analysis' 95 % "
        "intervals: a gate fails only when the interval is wholly on the wrong side of its "
        "threshold; straddling is 'inconclusive' (passes, with a warning). Against a baseline, "
        "an arm's TTFT/total p50, cost or cache-hit ratio fails when it is significantly worse "
        "and worse by more than the tolerance (default 10 %). Appends gate cases to "
        "reports/<run-id>/junit.xml; under GitHub Actions also prints ::error annotations and "
        "writes the step summary. Exit 0 pass, 1 a gate failed, 2 bad input (e.g. no such "
        "baseline). See docs/ci.md.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
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
    p.add_argument(
        "--baselines",
        type=Path,
        default=None,
        metavar="DIR",
        help="where baseline names are looked up (default baselines/)",
    )
    p.add_argument(
        "--prices",
        type=Path,
        default=None,
        metavar="FILE",
        help="price overrides, as for 'harness analyze'",
    )
    p.add_argument(
        "--reports",
        type=Path,
        default=None,
        metavar="DIR",
        help="reports directory; gate cases go to DIR/<run-id>/junit.xml (default: "
        "reports/ beside the runs directory, where 'harness run' put the report)",
    )
    p.add_argument("--json", action="store_true", help="print the gate report as JSON")
    p.set_defaults(handler=_cmd_gate)


def _gate(
    run_dir: Path,
    *,
    baseline: str | None,
    as_json: bool,
    config: Path | None = None,
    regression_pct: float | None = None,
    baselines: Path | None = None,
    prices: Path | None = None,
    reports: Path | None = None,
) -> int:
    from harness.gates.evaluate import gate_run
    from harness.gates.output import default_reports_dir, format_report, publish

    report = gate_run(
        run_dir,
        baseline=baseline,
        config=config,
        regression_pct=regression_pct,
        baselines_dir=baselines,
        prices=prices,
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
    return report.exit_code


def _cmd_gate(args: argparse.Namespace) -> int:
    return _gate(
        args.run_dir,
        baseline=args.baseline,
        as_json=args.json,
        config=args.config,
        regression_pct=args.regression_pct,
        baselines=args.baselines,
        prices=args.prices,
        reports=args.reports,
    )


# --- baseline ----------------------------------------------------------------------------------


def _add_baseline(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "baseline",
        help="save a run as a named baseline for 'harness gate --baseline'",
        description="Baselines are runs that later runs are compared with: a copy of "
        "summary.json plus the latency samples a between-run bootstrap needs, in "
        "baselines/NAME.json (small enough to commit).",
    )
    commands = p.add_subparsers(dest="baseline_command", metavar="COMMAND", required=True)
    save = commands.add_parser(
        "save",
        help="write baselines/NAME.json from a run",
        description="Write baselines/NAME.json from RUN_DIR (replacing an older one of that "
        "name); prints its path. Exit 0, or 2 for bad input.",
    )
    save.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    save.add_argument("--name", required=True, help="baseline name, e.g. main")
    save.add_argument(
        "--baselines",
        type=Path,
        default=Path("baselines"),
        metavar="DIR",
        help="directory of baselines (default baselines/)",
    )
    save.set_defaults(handler=_cmd_baseline_save)


def _cmd_baseline_save(args: argparse.Namespace) -> int:
    from harness.gates.baseline import save_baseline

    print(save_baseline(args.run_dir, args.name, baselines_dir=args.baselines))
    return 0


# --- shadow ------------------------------------------------------------------------------------


def _add_shadow(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "shadow",
        help="production shadow runs (harness.shadow.client.ShadowClient)",
        description="Work with the run directory of a production shadow run: live processes "
        "write one shard each (observations-<host>-<pid>-<n>.jsonl). 'merge' concatenates them "
        "into observations.jsonl (atomically; only when they changed) and sums the per-process "
        "counters into shadow_stats.json. 'harness analyze' merges by itself. Exit 0, or 2.",
    )
    actions = p.add_subparsers(dest="shadow_command", metavar="ACTION", required=True)
    merge = actions.add_parser("merge", help="merge shard files into observations.jsonl")
    merge.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    merge.add_argument("--force", action="store_true", help="rewrite even if nothing changed")
    merge.set_defaults(handler=_cmd_shadow_merge)


#: the ways a mirrored call ends without a pair written (harness.shadow.config.ShadowStats)
_UNWRITTEN = (
    "pairs_failed",
    "dropped_queue_full",
    "dropped_closed",
    "dropped_sidecar_down",
    "abandoned_streams",
    "cancelled_at_close",
    "lost_in_crash",
)


def _cmd_shadow_merge(args: argparse.Namespace) -> int:
    from harness.shadow.store import merge_shards

    if not args.run_dir.is_dir():
        raise HarnessError(f"{args.run_dir}: no such run directory — give runs/<run-id>/")
    result = merge_shards(args.run_dir, force=args.force)
    for problem in result.problems:
        print(f"harness: warning: {problem}", file=sys.stderr)
    state = "merged" if result.merged else "unchanged"
    print(
        f"{result.path}: {result.records} records from {result.shards} shard(s), {state}"
        + (f", {result.skipped_lines} incomplete line(s) skipped" if result.skipped_lines else "")
    )
    stats = result.stats
    if stats:
        done, sampled = stats.get("pairs_written", 0), stats.get("sampled", 0)
        share = f" ({done / sampled:.1%})" if sampled else ""
        unwritten = {name: stats.get(name, 0) for name in _UNWRITTEN}
        why = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in unwritten.items() if n)
        print(
            f"calls {stats.get('calls', 0)}, mirrored {sampled}, pairs written {done}{share}, "
            f"not written {sum(unwritten.values())}{f' ({why})' if why else ''}, "
            f"shadow errors {stats.get('shadow_errors', 0)}, canary served "
            f"{stats.get('canary_served', 0)} (fallbacks {stats.get('canary_fallbacks', 0)})"
        )
    return 0


# --- report / compare -------------------------------------------------------------------------


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="render report.html, summary.md and junit.xml for a run",
        description="Render RUN_DIR's saved observations and summary into one self-contained "
        "report.html (verdict, arms, charts, claims, per-prompt diffs, errors), summary.md (for "
        "PR comments and $GITHUB_STEP_SUMMARY) and junit.xml (one case per scenario × "
        "comparison). Never sends a request; analyses the run first if it has no summary.json. "
        "Prints the three paths. Exit 0, or 2 for bad input.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (default: reports/<run-id>/)",
    )
    p.add_argument(
        "--detail",
        type=_positive_int,
        default=10,
        metavar="N",
        help="prompts shown in full per scenario, most divergent first (default 10; "
        "5 slowest are added)",
    )
    p.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.report import render_report

    if not args.run_dir.is_dir():
        raise HarnessError(f"{args.run_dir}: no such run directory — give runs/<run-id>/")
    paths = render_report(args.run_dir, args.out, divergent=args.detail)
    print(paths.html)
    print(paths.markdown)
    print(paths.junit)
    return 0


def _add_compare(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two runs (before/after a change, or against a baseline run)",
        description="Compare RUN_A (candidate) with RUN_B (baseline), arm by arm: latency, "
        "cost, caching and error ratios A/B with 95 % intervals (each run resampled on its "
        "own). Writes compare.html and compare.md and prints the HTML path. Exit 0, or 2.",
    )
    p.add_argument("run_a", type=Path, metavar="RUN_A")
    p.add_argument("run_b", type=Path, metavar="RUN_B")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (default: reports/compare-<a>-vs-<b>/)",
    )
    p.set_defaults(handler=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.report import render_compare

    for run_dir in (args.run_a, args.run_b):
        if not run_dir.is_dir():
            raise HarnessError(f"{run_dir}: no such run directory — give runs/<run-id>/")
    print(render_compare(args.run_a, args.run_b, args.out))
    return 0


# --- main --------------------------------------------------------------------------------------

_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_validate,
    _add_plan,
    _add_emulator,
    _add_run,
    _add_probe,
    _add_analyze,
    _add_report,
    _add_compare,
    _add_cassettes,
    _add_gate,
    _add_baseline,
    _add_shadow,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Shadow Harness: run the same prompts against OpenAI's Chat Completions "
        "and Responses APIs and compare latency (cold and warm), caching, cost and output "
        "similarity. Offline by default: the built-in emulator (not OpenAI) or recorded "
        "cassettes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ScenarioError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return exc.exit_code
    except HarnessError as exc:
        _err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
