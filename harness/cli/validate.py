"""``harness validate``: check scenario files, one line per problem."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="file or directory")


def run(args: argparse.Namespace) -> int:
    from harness.runner.plan import translation_problems
    from harness.scenario.load import validate_paths

    problems, checked = validate_paths(args.paths, check=translation_problems)
    for line in problems:
        print(line)
    if problems:
        return 2
    print(f"{checked} scenario file(s) valid")
    return 0
