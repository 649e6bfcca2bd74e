"""``harness shadow merge``: a production shadow run's shards into one observations file."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_run_dir, require_run_dir

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dir(p)
    p.add_argument("--force", action="store_true", help="rewrite even if nothing changed")


#: the ways a mirrored call ends without a pair written (harness.shadow.config.ShadowStats)
_UNWRITTEN = (
    "pairs_failed",
    "dropped_queue_full",
    "dropped_closed",
    "dropped_sidecar_down",
    "abandoned_streams",
    "cancelled_at_close",
    "lost_in_crash",
)


def run(args: argparse.Namespace) -> int:
    from harness.shadow.store import merge_shards

    require_run_dir(args.run_dir)
    result = merge_shards(args.run_dir, force=args.force)
    for problem in result.problems:
        print(f"harness: warning: {problem}", file=sys.stderr)
    state = "merged" if result.merged else "unchanged"
    print(
        f"{result.path}: {result.records} records from {result.shards} shard(s), {state}"
        + (f", {result.skipped_lines} incomplete line(s) skipped" if result.skipped_lines else "")
    )
    stats = result.stats
    if stats:
        done, sampled = stats.get("pairs_written", 0), stats.get("sampled", 0)
        share = f" ({done / sampled:.1%})" if sampled else ""
        unwritten = {name: stats.get(name, 0) for name in _UNWRITTEN}
        why = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in unwritten.items() if n)
        print(
            f"calls {stats.get('calls', 0)}, mirrored {sampled}, pairs written {done}{share}, "
            f"not written {sum(unwritten.values())}{f' ({why})' if why else ''}, "
            f"shadow errors {stats.get('shadow_errors', 0)}, canary served "
            f"{stats.get('canary_served', 0)} (fallbacks {stats.get('canary_fallbacks', 0)})"
        )
    return 0
