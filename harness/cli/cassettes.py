"""``harness cassettes check``: unused, missing and stale interactions in recorded cassettes."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import add_sole_subcommand

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    check = add_sole_subcommand(
        p,
        "check",
        dest="cassettes_command",
        metavar="COMMAND",
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


def run(args: argparse.Namespace) -> int:
    from harness.cassettes.check import check_cassettes, format_reports

    reports = check_cassettes(args.directory, args.scenarios)
    for line in format_reports(reports):
        print(line)
    return 0 if all(r.ok for r in reports) else 1
