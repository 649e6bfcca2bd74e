"""``harness report``: render report.html, summary.md and junit.xml for a run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.common import add_run_dir, positive_int, require_run_dir

if TYPE_CHECKING:
    from harness.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "report",
        help="render report.html, summary.md and junit.xml for a run",
        description="Render RUN_DIR's saved observations and summary into one self-contained "
        "report.html (verdict, arms, charts, claims, per-prompt diffs, errors), summary.md (for "
        "PR comments and $GITHUB_STEP_SUMMARY) and junit.xml (one case per scenario × "
        "comparison). Never sends a request; analyses the run first if it has no summary.json. "
        "Prints the three paths. Exit 0, or 2 for bad input.",
    )
    add_run_dir(p)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (default: reports/<run-id>/)",
    )
    p.add_argument(
        "--detail",
        type=positive_int,
        default=10,
        metavar="N",
        help="prompts shown in full per scenario, most divergent first (default 10; "
        "5 slowest are added)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from harness.report import render_report

    require_run_dir(args.run_dir)
    paths = render_report(args.run_dir, args.out, divergent=args.detail)
    print(paths.html)
    print(paths.markdown)
    print(paths.junit)
    return 0
