"""``harness report``: render report.html, summary.md and junit.xml for a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import add_history, add_run_dir, positive_int, require_run_dir

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    add_history(p, off_help="no trend chart (the history is only read, never written)")


def run(args: argparse.Namespace) -> int:
    from harness.history import resolve_history
    from harness.report import render_report

    require_run_dir(args.run_dir)
    history = resolve_history(args.history, args.run_dir.parent, off=args.no_history)
    paths = render_report(args.run_dir, args.out, divergent=args.detail, history=history)
    print(paths.html)
    print(paths.markdown)
    print(paths.junit)
    return 0
