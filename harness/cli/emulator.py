"""``harness emulator``: serve the OpenAI-compatible emulator (not OpenAI)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument(
        "--profile",
        default="parity",
        help="latency/fault profile: parity, guide-claims, regressed, zero, or a "
        "YAML file (default: parity)",
    )
    p.add_argument("--seed", type=int, default=0, help="content seed (default 0)")
    p.add_argument(
        "--truth-log",
        type=Path,
        default=None,
        help="JSONL file receiving the delays applied to each request",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every profile delay by X (0.1 = ten times faster)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.emulator.server import serve

    serve(
        host=args.host,
        port=args.port,
        profile=args.profile,
        seed=args.seed,
        truth_log=args.truth_log,
        time_scale=args.time_scale,
    )
    return 0
