"""``harness validate``: check scenario files, one line per problem."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "validate",
        help="check scenario files",
        description="Check scenario files (or every *.yaml/*.yml under a directory). Prints "
        "one line per problem as 'file:line: field.path: what is wrong — how to fix'. "
        "Exit 0 when all are valid, 2 otherwise.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="file or directory")
    p.set_defaults(handler=run)


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
