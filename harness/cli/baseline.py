"""``harness baseline save``: keep a run as a named baseline for ``harness gate --baseline``."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import add_run_dir, add_sole_subcommand

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    save = add_sole_subcommand(
        p,
        "save",
        dest="baseline_command",
        metavar="COMMAND",
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


def run(args: argparse.Namespace) -> int:
    from harness.gates.baseline import save_baseline

    print(save_baseline(args.run_dir, args.name, baselines_dir=args.baselines))
    return 0
