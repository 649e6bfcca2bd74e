"""``harness emulator``: serve the OpenAI-compatible emulator (not OpenAI)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "emulator",
        help="serve the OpenAI-compatible emulator (not OpenAI)",
        description="Serve an emulator of OpenAI's Chat Completions and Responses APIs "
        "(caching rules, SSE streams, stored responses, latency and fault profiles). Every "
        "reply carries an 'x-emulator' header. Point the SDK at http://HOST:PORT/v1.",
    )
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
    p.set_defaults(handler=run)


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
