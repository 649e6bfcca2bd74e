"""``harness probe``: measure target behaviour a run depends on."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.runner.capabilities import Capabilities

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["capabilities", "cache-sharing"])
    p.add_argument("--target", default="emulator", help="emulator (default), openai, or a URL")
    p.add_argument("--model", default="gpt-4.1-mini")
    p.add_argument("--json", action="store_true", help="capabilities: print one JSON object")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from harness.runner.target import open_target

    with open_target(args.target, emulator_profile="zero") as target:
        if args.what == "capabilities":
            from harness.runner.capabilities import probe_capabilities

            caps = probe_capabilities(
                target.base_url, target.api_key, model=args.model, target=target.label
            )
            if args.json:
                print(caps.model_dump_json())
            else:
                _print_table(caps)
            return 0
        from harness.runner.probe import probe_cache_sharing

        result = asyncio.run(probe_cache_sharing(target, args.model))
        print(f"{target.label}: prompt cache {result.explain()}")
    return 0


def _print_table(caps: Capabilities) -> None:
    from rich.console import Console
    from rich.table import Table

    from harness.runner.capabilities import FEATURES

    table = Table(title=f"{caps.target} — model {caps.model}", title_justify="left")
    table.add_column("feature")
    table.add_column("served")
    table.add_column("what was checked / what the target said", overflow="fold")
    for name, found in caps.features.items():
        mark = {True: "yes", False: "NO", None: "unknown"}[found.supported]
        table.add_row(name, mark, found.detail or FEATURES[name])
    Console(soft_wrap=False).print(table)
