"""What every command module shares: argument types and the run-directory check.

Light on purpose: the parser imports every command module, so nothing here (or at the top of a
command module) may load the SDK, numpy, rich or pydantic; a command imports its work in ``run``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import HarnessError

__all__ = ["add_emulator_options", "add_run_dir", "err", "positive_int", "require_run_dir"]


def add_emulator_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The built-in emulator's settings: ``--profile`` … for ``harness emulator``, and
    ``--emulator-profile`` … (``prefix="emulator-"``) for the one ``harness run`` starts."""
    parser.add_argument(
        f"--{prefix}profile",
        default="parity",
        metavar="NAME|FILE",
        help="latency/fault profile: parity, guide-claims, regressed, zero, or a YAML file "
        "(default parity)",
    )
    parser.add_argument(
        f"--{prefix}seed", type=int, default=0, metavar="N", help="content seed (default 0)"
    )
    parser.add_argument(
        f"--{prefix}truth-log",
        type=Path,
        metavar="FILE",
        help="the emulator writes the delays it applied and when it sent each byte here "
        "(JSONL), to check the harness's timing; never read by it",
    )
    parser.add_argument(
        f"--{prefix}time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply every profile delay by X (0.1 = ten times faster; for demos and tests)",
    )


def add_run_dir(parser: argparse.ArgumentParser) -> None:
    """The ``RUN_DIR`` positional, spelt once for every command that works on one run."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")


def err(message: str) -> None:
    """Print ``harness: error: message`` on stderr (the one-line form of every user error)."""
    print(f"harness: error: {message}", file=sys.stderr)


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def require_run_dir(run_dir: Path) -> None:
    """Fail in one line (exit 2) when ``run_dir`` is not a directory, before any work."""
    if not run_dir.is_dir():
        raise HarnessError(f"{run_dir}: no such run directory — give runs/<run-id>/")
