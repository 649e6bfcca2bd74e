"""``harness baseline save``: keep a run as a named baseline for ``harness gate --baseline``."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import add_dir

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument("--name", required=True, help="baseline name, e.g. main")
    add_dir(p, "--baselines", "baselines", "directory of baselines")


def run(args: argparse.Namespace) -> int:
    from harness.gates.baseline import save_baseline

    print(save_baseline(args.run_dirs, args.name, baselines_dir=args.baselines))
    return 0
