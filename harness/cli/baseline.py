"""``harness baseline save``: keep a run as a named baseline for ``harness gate --baseline``."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from harness.cli.common import add_dir, add_history
from harness.errors import HarnessError

__all__ = ["add_arguments", "parse_last", "run"]

_LAST = re.compile(r"^last:([1-9][0-9]*)$")


def parse_last(text: str) -> int:
    """argparse type: ``last:N`` → N."""
    found = _LAST.match(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give last:N, e.g. last:5")
    return int(found.group(1))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", type=Path, nargs="*", metavar="RUN_DIR")
    p.add_argument("--name", required=True, help="baseline name, e.g. main")
    add_dir(p, "--baselines", "baselines", "directory of baselines")
    p.add_argument(
        "--from-history",
        type=parse_last,
        default=None,
        metavar="last:N",
        help="instead of RUN_DIRs: the N most recent runs in the run history (of the newest "
        "run's target; with --scenario, runs of that scenario), summaries and observations "
        "read from the history, so the run directories need not exist any more",
    )
    p.add_argument("--scenario", metavar="S", help="with --from-history: runs of scenario S")
    add_dir(
        p, "--runs", "runs", "with --from-history: runs directory (the history/ beside it is read)"
    )
    add_history(p, opt_out=False)


def run(args: argparse.Namespace) -> int:
    from harness.gates.baseline import check_name, save_baseline

    check_name(args.name)
    if args.from_history is None:
        if not args.run_dirs:
            raise HarnessError("baseline save: give RUN_DIR [RUN_DIR…] or --from-history last:N")
        print(save_baseline(args.run_dirs, args.name, baselines_dir=args.baselines))
        return 0
    if args.run_dirs:
        raise HarnessError(
            "baseline save: give RUN_DIRs or --from-history, not both — the history "
            "already holds the runs"
        )
    from harness.gates.baseline import BaselineSource, from_sources, write_baseline
    from harness.history import resolve_history
    from harness.history.query import open_history

    root = resolve_history(args.history, args.runs)
    assert root is not None
    history = open_history(root)
    try:
        run_ids = history.last_runs(args.from_history, scenario=args.scenario)
        if not run_ids:
            which = f" of scenario {args.scenario}" if args.scenario else ""
            raise HarnessError(f"{root}: the history holds no run{which} — nothing to save")
        past = [history.past_run(r) for r in run_ids]  # newest first: reports quote its summary
    finally:
        history.close()
    if len(run_ids) < args.from_history:
        print(
            f"harness: warning: the history holds {len(run_ids)} run(s) of that target, not "
            f"{args.from_history}: the baseline has {len(run_ids)}",
            file=sys.stderr,
        )
    sources = [BaselineSource(f"history:{p.run_id}", p.summary, p.table) for p in past]
    print(write_baseline(from_sources(sources, args.name), baselines_dir=args.baselines))
    return 0
