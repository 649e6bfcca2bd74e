"""``harness record``: run an application with its OpenAI SDK calls recorded as Batch API input.

The work is :func:`harness.shadow.recorder.run_recorded`; this module parses the arguments and
prints what was recorded (on stderr, so the application's own output stays as it was).
"""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_out_file

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_out_file(p, "Batch API input JSONL to write (emptied first unless --append)")
    p.add_argument(
        "--append",
        action="store_true",
        help="add to FILE instead of emptying it (custom_ids stay unique)",
    )
    p.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND [ARG ...]",
        help="the application to run, e.g. -- python app.py",
    )


def run(args: argparse.Namespace) -> int:
    from harness.shadow.recorder import run_recorded

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    recorded = run_recorded(command, args.out, append=args.append)
    by_url = ", ".join(f"{n} {url}" for url, n in sorted(recorded.lines.items()))
    print(
        f"{args.out}: {recorded.total} requests recorded" + (f" ({by_url})" if by_url else ""),
        file=sys.stderr,
    )
    if recorded.total:
        print(f"next: harness import batch {args.out} --out scenarios/NAME.yaml", file=sys.stderr)
    else:
        print(
            "nothing recorded: only calls to chat.completions.create and responses.create of "
            "the openai package, in Python processes started by the command, are recorded",
            file=sys.stderr,
        )
    code = recorded.returncode
    return 128 - code if code < 0 else code
