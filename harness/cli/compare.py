"""``harness compare``: two runs side by side (before/after a change, or against a baseline)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import require_run_dir

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", type=Path, metavar="RUN_A")
    p.add_argument("run_b", type=Path, metavar="RUN_B")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (default: reports/compare-<a>-vs-<b>/)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.report import render_compare

    for run_dir in (args.run_a, args.run_b):
        require_run_dir(run_dir)
    print(render_compare(args.run_a, args.run_b, args.out))
    return 0
