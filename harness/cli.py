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


# --- main --------------------------------------------------------------------------------------

_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_validate,
    _add_plan,
    _add_emulator,
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
