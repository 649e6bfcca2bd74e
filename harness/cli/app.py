"""The ``harness`` command: the parser, built from one module per command, and error handling.

Each command module (``harness.cli.<command>``) has ``add_parser(sub)`` and ``run(args) -> int``
and holds all of that command's terminal output. The modules are light: building the parser
loads no SDK, numpy, rich or pydantic; a command imports its work when it runs, so ``harness
analyze``, ``report``, ``gate`` and ``compare`` never load ``openai`` or ``httpx2``. Anything a
user can get wrong raises :class:`harness.errors.HarnessError`, printed as one line with exit
status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from harness import __version__
from harness.cli import (
    analyze,
    baseline,
    cassettes,
    compare,
    emulator,
    export,
    gate,
    plan,
    probe,
    report,
    run,
    shadow,
    validate,
)
from harness.cli.common import err
from harness.errors import HarnessError, ScenarioError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]

#: the commands in the order ``harness --help`` lists them
COMMANDS = (
    validate,
    plan,
    emulator,
    run,
    probe,
    analyze,
    report,
    compare,
    cassettes,
    gate,
    baseline,
    shadow,
    export,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``harness`` argument parser (every command's options and help)."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Shadow Harness: run the same prompts against OpenAI's Chat Completions "
        "and Responses APIs and compare latency (cold and warm), caching, cost and output "
        "similarity. Offline by default: the built-in emulator (not OpenAI) or recorded "
        "cassettes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command; a user error is one line on stderr and its exit status."""
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
        err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err("interrupted")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
