"""``harness validate``: check scenario files, one line per problem."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="file or directory")


def run(args: argparse.Namespace) -> int:
    from harness.runner.plan import model_warnings, translation_notes, translation_problems
    from harness.scenario.load import Scenario, validate_paths

    notes: list[str] = []

    def check(scenario: Scenario) -> list[str]:
        found = translation_problems(scenario)
        if not found:
            # valid, but the default translation changes what is sent: say so (issue 17)
            notes.extend(translation_notes(scenario))
            notes.extend(model_warnings(scenario))
        return found

    problems, checked = validate_paths(args.paths, check=check)
    for line in problems:
        print(line)
    if problems:
        return 2
    for line in notes:
        print(line)
    print(f"{checked} scenario file(s) valid")
    return 0
