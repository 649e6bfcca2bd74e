"""What every command module shares: argument types and the run-directory check.

Light on purpose: the parser imports every command module, so nothing here (or at the top of a
command module) may load the SDK, numpy, rich or pydantic; a command imports its work in ``run``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from harness.errors import HarnessError

__all__ = [
    "PROFILE_ENV",
    "add_dir",
    "add_emulator_options",
    "add_history",
    "add_prices",
    "add_run_dir",
    "call_with_options",
    "default_emulator_profile",
    "err",
    "positive_int",
    "require_run_dir",
]

T = TypeVar("T")

#: what the parser itself adds to every command's namespace
_PARSER_KEYS = frozenset({"command", "handler"})


def call_with_options(fn: Callable[..., T], args: argparse.Namespace) -> T:
    """``fn`` called with the command's options by name (as click passes them), so an option
    and the parameter it sets are spelt once; an option ``fn`` does not take is a bug."""
    options = {k: v for k, v in vars(args).items() if k not in _PARSER_KEYS}
    unused = options.keys() - inspect.signature(fn).parameters.keys()
    if unused:
        raise TypeError(f"{fn.__name__} takes no {', '.join(sorted(unused))}")
    return fn(**options)


def add_dir(parser: argparse.ArgumentParser, flag: str, default: str, what: str) -> None:
    """A ``DIR`` option that defaults to ``default/`` in the working directory."""
    help_ = f"{what} (default {default}/)"
    parser.add_argument(flag, type=Path, default=Path(default), metavar="DIR", help=help_)


def add_prices(parser: argparse.ArgumentParser, also: str = "") -> None:
    """``--prices FILE``: price overrides, spelt the same for every command that prices."""
    parser.add_argument(
        "--prices",
        type=Path,
        metavar="FILE",
        help=f"YAML/JSON price overrides{also}: {{models: {{NAME: {{input_mtok, "
        "cached_input_mtok, cache_write_mtok, output_mtok}}} (USD per 1M tokens)",
    )


#: The emulator profile used when none is given (``harness emulator``, ``harness run``, the
#: pytest plugin): e.g. ``zero`` to run documented commands fast in CI.
PROFILE_ENV = "HARNESS_EMULATOR_PROFILE"


def default_emulator_profile() -> str:
    """``$HARNESS_EMULATOR_PROFILE``, else ``parity``."""
    return os.environ.get(PROFILE_ENV) or "parity"


def add_emulator_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The built-in emulator's settings: ``--profile`` … for ``harness emulator``, and
    ``--emulator-profile`` … (``prefix="emulator-"``) for the one ``harness run`` starts."""
    parser.add_argument(
        f"--{prefix}profile",
        default=default_emulator_profile(),
        metavar="NAME|FILE",
        help="latency/fault profile: parity, guide-claims, regressed, zero, or a YAML file "
        f"(default ${PROFILE_ENV}, else parity)",
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


def add_history(
    parser: argparse.ArgumentParser,
    *,
    opt_out: bool = True,
    off_help: str = "do not record the run in the history",
) -> None:
    """``--history PATH`` (and ``--no-history``, doing ``off_help``): where the run history
    lives (docs/history.md)."""
    group = parser.add_mutually_exclusive_group() if opt_out else parser
    group.add_argument(
        "--history",
        default=None,
        metavar="PATH",
        help="run history directory: per-run Parquet files that DuckDB queries (default: "
        "$HARNESS_HISTORY, else history/ beside the runs directory, as reports/); a path or "
        "file:// URL, "
        "e.g. shared storage for a team (docs/history.md)",
    )
    if opt_out:
        group.add_argument(
            "--no-history",
            action="store_true",
            help=off_help,
        )


def add_out_file(parser: argparse.ArgumentParser, what: str) -> None:
    """The required ``--out FILE``, spelt once for every command that writes one file."""
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help=what)


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
