"""``harness emulator``: serve the OpenAI-compatible emulator (not OpenAI).

``python -m harness.emulator`` (what :class:`harness.emulator.server.EmulatorProcess` starts)
is this command too.
"""

from __future__ import annotations

import argparse

from harness.cli.common import add_emulator_options

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787)
    add_emulator_options(p)
    # EmulatorProcess's child: exit when the parent goes, even if it was killed
    p.add_argument("--exit-with-stdin", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from harness.emulator.server import exit_when_stdin_closes, serve

    if args.exit_with_stdin:
        exit_when_stdin_closes()
    serve(args.host, args.port, args.profile, args.seed, args.truth_log, args.time_scale)
    return 0
