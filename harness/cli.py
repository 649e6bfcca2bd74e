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
    from harness.scenario import validate_paths

    problems, checked = validate_paths(args.paths)
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
        "placeholders such as \"<response of turn 1>\". Nothing is sent.",
    )
    p.add_argument("scenario", type=Path, metavar="SCENARIO")
    p.add_argument("--repeats", type=int, default=None, help="override the scenario's repeats")
    p.add_argument("--seed", type=int, default=0, help="run seed (cache nonces, arm order)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per request (JSON Lines) instead of a table")
    p.set_defaults(handler=_cmd_plan)


def _cmd_plan(args: argparse.Namespace) -> int:
    from harness.plan import print_plan

    print_plan(args.scenario, repeats=args.repeats, seed=args.seed, as_json=args.json)
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
    p.add_argument("--profile", default="parity",
                   help="latency/fault profile: parity, guide-claims, regressed, zero, or a "
                   "YAML file (default: parity)")
    p.add_argument("--seed", type=int, default=0, help="content seed (default 0)")
    p.add_argument("--truth-log", type=Path, default=None,
                   help="JSONL file receiving the delays applied to each request")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="multiply every profile delay by X (0.1 = ten times faster)")
    p.set_defaults(handler=_cmd_emulator)


def _cmd_emulator(args: argparse.Namespace) -> int:
    from harness.emulator.server import serve

    serve(host=args.host, port=args.port, profile=args.profile, seed=args.seed,
          truth_log=args.truth_log, time_scale=args.time_scale)
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
    p.add_argument("--target", default="emulator",
                   help="emulator (default), openai (needs OPENAI_API_KEY; OPENAI_BASE_URL "
                   "optional), or a base URL of any compatible server")
    p.add_argument("--emulator-profile", default="parity", metavar="NAME|FILE",
                   help="latency/fault profile of the built-in emulator (default parity)")
    p.add_argument("--emulator-seed", type=int, default=0, metavar="N")
    p.add_argument("--emulator-time-scale", type=float, default=1.0, metavar="X",
                   help="scale the emulator's delays (0.1 = ten times faster; for demos/tests)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="runs directory (runs/)")
    p.add_argument("--concurrency", type=_positive_int, default=1, metavar="N",
                   help="conversations in flight at once (default 1: most accurate timing)")
    p.add_argument("--repeats", type=_positive_int, default=None, metavar="N",
                   help="override the scenario's repeats")
    p.add_argument("--rps", type=float, default=None, metavar="R",
                   help="at most R requests per second")
    p.add_argument("--client", choices=["sdk", "raw"], default="sdk",
                   help="sdk: the official openai SDK (default); raw: lean httpx2 + SSE "
                   "parser for high-rate load tests")
    p.add_argument("--max-requests", type=_positive_int, default=None, metavar="N",
                   help="refuse to start if the plan has more requests")
    p.add_argument("--max-cost-usd", type=float, default=None, metavar="X",
                   help="refuse to start a live run whose estimated cost is higher")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="complete an interrupted run (unfinished conversations restart at "
                   "turn 1)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="run seed: cache nonces and arm order (default: random, recorded)")
    p.add_argument("--max-attempts", type=_positive_int, default=4, metavar="N",
                   help="attempts per request including retries (default 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.client import RetryPolicy
    from harness.runner import RunOptions, finish_run, run

    options = RunOptions(
        target=args.target, emulator_profile=args.emulator_profile,
        emulator_seed=args.emulator_seed, emulator_time_scale=args.emulator_time_scale,
        out=args.out, concurrency=args.concurrency, repeats=args.repeats, rps=args.rps,
        client=args.client, max_requests=args.max_requests, max_cost_usd=args.max_cost_usd,
        resume=args.resume, seed=args.seed, progress=not args.quiet,
        retry=RetryPolicy(max_attempts=args.max_attempts),
    )
    result = run(args.scenarios, options)
    return finish_run(result)


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
    p.add_argument("--prices", type=Path, default=None, metavar="FILE",
                   help="YAML/JSON price overrides: {models: {NAME: {input_mtok, "
                   "cached_input_mtok, cache_write_mtok, output_mtok}}} (USD per 1M tokens)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="bootstrap seed (default 0)")
    p.add_argument("--resamples", type=_positive_int, default=None, metavar="N",
                   help="bootstrap resamples (default 2000)")
    p.add_argument("--quiet", action="store_true", help="print only the summary path")
    p.set_defaults(handler=_cmd_analyze)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from harness.analyze import analyze_run, write_summary
    from harness.stats import DEFAULT_RESAMPLES

    summary = analyze_run(args.run_dir, price_overrides=args.prices, seed=args.seed,
                          resamples=args.resamples or DEFAULT_RESAMPLES)
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

    from harness.probe import probe_cache_sharing
    from harness.target import open_target

    with open_target(args.target, emulator_profile="zero") as target:
        result = asyncio.run(probe_cache_sharing(target, args.model))
        print(f"{target.label}: prompt cache {result.explain()}")
    return 0


# --- main --------------------------------------------------------------------------------------

_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_validate,
    _add_plan,
    _add_emulator,
    _add_run,
    _add_probe,
    _add_analyze,
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
