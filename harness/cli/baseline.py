"""``harness baseline save``: keep a run as a named baseline for ``harness gate --baseline``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.common import add_run_dir

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
        help="write baselines/NAME.json from a run",
        description="Write baselines/NAME.json from RUN_DIR (replacing an older one of that "
        "name); prints its path. Exit 0, or 2 for bad input.",
    )
    add_run_dir(save)
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

    print(save_baseline(args.run_dir, args.name, baselines_dir=args.baselines))
    return 0
