"""``harness export-benchmark``: a run's latencies as pytest-benchmark JSON.

The export itself is :func:`harness.gates.export.export_benchmark`; this module parses the
arguments and prints the path written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import add_run_dir

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from harness.gates.export import EXPORTABLE

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


def run(args: argparse.Namespace) -> int:
    from harness.gates.export import DEFAULT_METRICS, export_benchmark

    path = export_benchmark(
        args.run_dir, out=args.out, storage=args.storage, metrics=args.metric or DEFAULT_METRICS
    )
    print(path)
    return 0
