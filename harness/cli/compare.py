"""``harness compare``: two runs side by side (before/after a change, or against a baseline)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.common import require_run_dir

if TYPE_CHECKING:
    from harness.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(sub: Subparsers) -> None:
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
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from harness.report import render_compare

    for run_dir in (args.run_a, args.run_b):
        require_run_dir(run_dir)
    print(render_compare(args.run_a, args.run_b, args.out))
    return 0
