"""``harness analyze``: a run's observations into summary.json, and short tables of it."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from harness import fmt
from harness.cli.common import add_history, add_prices, add_run_dir, positive_int

if TYPE_CHECKING:
    from rich.table import Table

    from harness.summary import Comparison, Summary

__all__ = ["add_arguments", "run", "summary_tables"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dir(p)
    add_prices(p)
    p.add_argument("--seed", type=int, default=0, metavar="N", help="bootstrap seed (default 0)")
    p.add_argument(
        "--resamples",
        type=positive_int,
        default=None,
        metavar="N",
        help="bootstrap resamples (default 2000)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the summary path")
    add_history(p)


def run(args: argparse.Namespace) -> int:
    from harness.analysis.analyze import analyze_run, load_run
    from harness.analysis.stats import DEFAULT_RESAMPLES
    from harness.history import resolve_history, save_summary

    history = resolve_history(args.history, args.run_dir.parent, off=args.no_history)
    loaded = load_run(args.run_dir)
    summary = analyze_run(
        loaded,
        price_overrides=args.prices,
        seed=args.seed,
        resamples=args.resamples or DEFAULT_RESAMPLES,
    )
    path, not_recorded = save_summary(loaded, summary, history)
    for warning in [*summary.warnings, *([not_recorded] if not_recorded else [])]:
        print(f"harness: warning: {warning}", file=sys.stderr)
    print(path)
    if not args.quiet:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:  # piped or captured: one row per comparison, not 80 columns
            console = Console(width=160)
        for table in summary_tables(summary):
            console.print(table)
        if summary.replay_label is not None:
            console.print(summary.replay_label, style="bold", markup=False, soft_wrap=True)
    return 0


def summary_tables(summary: Summary) -> list[Table]:
    """Short rich tables: per scenario, each comparison's headline ratios and the claims."""
    from rich.table import Table

    tables = []
    for sc in summary.scenarios:
        t = Table(
            title=f"{sc.name} — {summary.target_label}",
            caption="ratios a/b with 95 % intervals; * = the interval excludes no change",
        )
        # one row per comparison: a run of the state arms has eleven of them
        t.add_column("a vs b", overflow="fold")
        for col in ("TTFT p50", "cold TTFT", "total p50", "cache hit Δ", "cost", "text (A/A)"):
            t.add_column(col, justify="right", overflow="fold")

        def sim(c: Comparison) -> str:
            text = c.similarity.text
            if text is None or text.mean is None:
                return "—"
            floor = f" ({fmt.num(text.noise_floor)})" if text.noise_floor is not None else ""
            return f"{fmt.num(text.mean)}{floor}"

        for c in sc.comparisons.values():
            t.add_row(
                f"{c.a} vs {c.b}",
                fmt.effect(c.ttft_p50_ratio),
                fmt.effect(c.cold_ttft_ratio),
                fmt.effect(c.total_p50_ratio),
                "contaminated"
                if c.cache_contaminated
                else fmt.effect(c.cache_hit_ratio_delta, "points"),
                "contaminated" if c.cache_contaminated else fmt.effect(c.cost_ratio),
                sim(c),
            )
        tables.append(t)
        claims = Table(title=f"{sc.name} — migration guide claims")
        claims.add_column("claim", no_wrap=True)
        for col in ("value (95 % CI)", "claimed", "verdict"):
            claims.add_column(col)
        for cl in sc.claims.values():
            claims.add_row(cl.claim, fmt.claim(cl), cl.claimed, cl.verdict)
        tables.append(claims)
    return tables
