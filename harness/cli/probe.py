"""``harness probe``: measure target behaviour a shadow run depends on."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["cache-sharing"])
    p.add_argument("--target", default="emulator", help="emulator (default), openai, or a URL")
    p.add_argument("--model", default="gpt-4.1-mini")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from harness.runner.probe import probe_cache_sharing
    from harness.runner.target import open_target

    with open_target(args.target, emulator_profile="zero") as target:
        result = asyncio.run(probe_cache_sharing(target, args.model))
        print(f"{target.label}: prompt cache {result.explain()}")
    return 0
