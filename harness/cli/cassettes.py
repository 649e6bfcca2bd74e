"""``harness cassettes check``: unused, missing and stale interactions in recorded cassettes."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import add_dir

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=Path("cassettes"),
        metavar="DIR",
        help="cassette directory (default cassettes/)",
    )
    add_dir(p, "--scenarios", "scenarios", "scenario directory")


def run(args: argparse.Namespace) -> int:
    from harness.cassettes.check import check_cassettes, format_reports

    reports = check_cassettes(args.directory, args.scenarios)
    for line in format_reports(reports):
        print(line)
    return 0 if all(r.ok for r in reports) else 1
