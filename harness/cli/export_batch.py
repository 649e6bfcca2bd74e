"""``harness export batch``: a scenario's first requests as OpenAI Batch API input JSONL.

The work is :func:`harness.importers.export.export_batch`; this module parses the arguments and
prints the files written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import add_out_file

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario_file", type=Path, metavar="SCENARIO")
    p.add_argument(
        "--api",
        choices=("chat", "responses", "both"),
        default="responses",
        help="endpoint of the requests (default responses); both writes FILE's stem + .chat "
        "and + .responses (a Batch API file holds one endpoint's requests)",
    )
    add_out_file(p, "JSONL file to write")
    p.add_argument(
        "--once",
        action="store_true",
        help="one line per prompt (default: weight lines, the traffic's mix)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.importers.export import Api, export_batch
    from harness.scenario.load import load_scenario

    scenario = load_scenario(args.scenario_file)
    apis: tuple[Api, ...] = ("chat", "responses") if args.api == "both" else (args.api,)
    written, notes = export_batch(
        scenario, apis, args.out, once=args.once, where=str(args.scenario_file)
    )
    for note in notes:
        print(note)
    for path, count in written.items():
        print(f"{path}: {count} requests")
    return 0
