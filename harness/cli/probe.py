"""``harness probe``: measure target behaviour a shadow run depends on."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "probe",
        help="measure target behaviour a shadow run depends on",
        description="cache-sharing: send a fresh 1,024+-token prompt to one API, then the same "
        "prompt to the other (both orders), and report whether the second API found it cached "
        "— i.e. whether the target keeps one prompt cache for both APIs.",
    )
    p.add_argument("what", choices=["cache-sharing"])
    p.add_argument("--target", default="emulator", help="emulator (default), openai, or a URL")
    p.add_argument("--model", default="gpt-4.1-mini")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from harness.runner.probe import probe_cache_sharing
    from harness.runner.target import open_target

    with open_target(args.target, emulator_profile="zero") as target:
        result = asyncio.run(probe_cache_sharing(target, args.model))
        print(f"{target.label}: prompt cache {result.explain()}")
    return 0
