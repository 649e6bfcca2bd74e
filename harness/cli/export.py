"""``harness export-benchmark``: a run's latencies as pytest-benchmark JSON.

The export itself is :func:`harness.gates.export.export_benchmark`; this module parses the
arguments and prints the path written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.common import add_run_dir

if TYPE_CHECKING:
    from harness.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(sub: Subparsers) -> None:
    from harness.gates.export import EXPORTABLE

    p = sub.add_parser(
        "export-benchmark",
        help="export a run's latencies as pytest-benchmark JSON",
        description="Export a run's latencies as pytest-benchmark JSON (one benchmark per "
        "scenario × arm × latency, rounds = requests, seconds), for 'pytest-benchmark "
        "compare'. Exit 0, or 2 for bad input.",
    )
    add_run_dir(p)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--out", type=Path, metavar="FILE", help="write this file")
    where.add_argument(
        "--storage",
        type=Path,
        metavar="DIR",
        help="pytest-benchmark storage (e.g. .benchmarks): next numbered run",
    )
    p.add_argument(
        "--metric",
        action="append",
        choices=EXPORTABLE,
        default=None,
        help="latency to export (repeatable; default ttft_ms and total_ms)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from harness.gates.export import DEFAULT_METRICS, export_benchmark

    path = export_benchmark(
        args.run_dir, out=args.out, storage=args.storage, metrics=args.metric or DEFAULT_METRICS
    )
    print(path)
    return 0
