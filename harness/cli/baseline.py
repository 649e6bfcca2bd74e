"""``harness baseline save``: keep a run as a named baseline for ``harness gate --baseline``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "baseline",
        help="save a run as a named baseline for 'harness gate --baseline'",
        description="Baselines are runs that later runs are compared with: a copy of "
        "summary.json plus the latency samples a between-run bootstrap needs, in "
        "baselines/NAME.json (small enough to commit).",
    )
    commands = p.add_subparsers(dest="baseline_command", metavar="COMMAND", required=True)
    save = commands.add_parser(
        "save",
        help="write baselines/NAME.json from one run or several runs",
        description="Write baselines/NAME.json from RUN_DIR (replacing an older one of that "
        "name); prints its path. Give several runs of the same scenarios (RUN_DIR RUN_DIR…) "
        "and the gate measures the run-to-run spread from them instead of assuming it. "
        "Exit 0, or 2 for bad input.",
    )
    save.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    save.add_argument("--name", required=True, help="baseline name, e.g. main")
    save.add_argument(
        "--baselines",
        type=Path,
        default=Path("baselines"),
        metavar="DIR",
        help="directory of baselines (default baselines/)",
    )
    save.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from harness.gates.baseline import save_baseline

    print(save_baseline(args.run_dirs, args.name, baselines_dir=args.baselines))
    return 0
