"""``harness cassettes check``: unused, missing and stale interactions in recorded cassettes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(sub: Subparsers) -> None:
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
    check.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from harness.cassettes.check import check_cassettes, format_reports

    reports = check_cassettes(args.directory, args.scenarios)
    for line in format_reports(reports):
        print(line)
    return 0 if all(r.ok for r in reports) else 1
