"""``harness history``: trend tables of past runs, read from the run history (DuckDB)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from harness.cli.common import add_dir, add_history, positive_int
from harness.errors import HarnessError

if TYPE_CHECKING:
    from rich.table import Table

    from harness.history.query import Trend, TrendPoint

__all__ = ["add_arguments", "parse_since", "run", "trend_tables"]


def parse_since(text: str) -> float:
    """argparse type: ``YYYY-MM-DD`` or an ISO time (UTC unless it says otherwise) → unix."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date — give YYYY-MM-DD or an ISO time, e.g. 2026-12-01T08:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_dir(
        p,
        "--runs",
        "runs",
        "runs directory, as `harness run --out`: the history/ beside it is read unless "
        "--history or $HARNESS_HISTORY names another",
    )
    add_history(p, opt_out=False)
    p.add_argument("--scenario", metavar="S", help="only scenario S")
    p.add_argument(
        "--arm",
        metavar="A",
        help="only the comparisons involving arm A (responses → responses_vs_chat) and arm A's "
        "own figures",
    )
    p.add_argument(
        "--target",
        metavar="T",
        help="only target T, as the table titles name it (e.g. 'emulator — not OpenAI, parity')",
    )
    p.add_argument(
        "--since",
        type=parse_since,
        metavar="DATE",
        help="only runs started on or after DATE (YYYY-MM-DD or ISO time; UTC by default)",
    )
    p.add_argument(
        "--metric",
        action="append",
        metavar="M",
        help="a metric to show (repeat, or comma-separate): ttft_ratio, total_ratio, "
        "cost_ratio, cache_delta (comparisons); cache_share, error_rate, ttft_p50_ms (arms). "
        "Default: ttft_ratio, cost_ratio, cache_share, error_rate",
    )
    p.add_argument(
        "--last",
        type=positive_int,
        default=20,
        metavar="N",
        help="the last N runs of each scenario and target (default 20)",
    )


def _metrics(given: list[str] | None) -> tuple[str, ...]:
    from harness.errors import closest
    from harness.history.query import DEFAULT_METRICS, METRICS

    if not given:
        return DEFAULT_METRICS
    names = [m.strip() for each in given for m in each.split(",") if m.strip()]
    for name in names:
        if name not in METRICS:
            near = closest(name, METRICS)
            hint = f"did you mean {near[0]}?" if near else f"known: {', '.join(METRICS)}"
            raise HarnessError(f"--metric {name}: no such metric — {hint}")
    return tuple(dict.fromkeys(names))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.history import resolve_history
    from harness.history.query import open_history

    metrics = _metrics(args.metric)
    root = resolve_history(args.history, args.runs)
    assert root is not None
    history = open_history(root)
    try:
        trend = history.trend(
            scenario=args.scenario,
            target=args.target,
            arm=args.arm,
            since=args.since,
            metrics=metrics,
            last=args.last,
        )
        total = history.run_count()
    finally:
        history.close()
    console = Console()
    if not console.is_terminal:
        # CI logs and pipes: rich would fold each table to 80 columns
        console = Console(width=160)
    tables = trend_tables(trend, metrics)
    if not tables:
        asked = [
            f"{flag} {value}"
            for flag, value in (
                ("--scenario", args.scenario),
                ("--arm", args.arm),
                ("--target", args.target),
            )
            if value is not None
        ]
        if args.since is not None:
            asked.append("--since " + datetime.fromtimestamp(args.since, UTC).isoformat())
        which = f" for {' '.join(asked)}" if asked else ""
        console.print(f"history {root}: {total} run(s); none{which}", soft_wrap=True)
        return 0
    for table in tables:
        console.print(table)
    return 0


def _cell(p: TrendPoint | None, kind: str) -> str:
    from harness import fmt

    if p is None:
        return fmt.DASH
    text = fmt.estimate(p.value, None, kind)
    if p.ci_low is not None and p.ci_high is not None and text != fmt.DASH:
        text += f"\n({fmt.interval((p.ci_low, p.ci_high), kind)})"
    return text


def trend_tables(trend: Trend, metrics: tuple[str, ...]) -> list[Table]:
    """One table per scenario, target and comparison (an arm alone when it has none): a row
    per run, oldest first, with each metric and its 95 % interval."""
    from rich.table import Table

    from harness import fmt
    from harness.history.query import METRICS
    from harness.history.store import ARM_METRICS

    tables = []
    for (scenario, target), points in trend.groups().items():
        by = {(p.run_id, p.subject, p.metric): p for p in points}
        runs = sorted({(p.started_at, p.run_id) for p in points})
        subjects = sorted({p.subject for p in points})
        comparisons = [s for s in subjects if "_vs_" in s]
        alone = [
            s
            for s in subjects
            if "_vs_" not in s and not any(s in c.split("_vs_") for c in comparisons)
        ]
        for subject in [*comparisons, *alone]:
            arms = subject.split("_vs_")
            columns: list[tuple[str, str, str]] = []  # header, subject, metric
            for metric in metrics:
                label, _ = METRICS[metric]
                if metric in ARM_METRICS:
                    columns += [(f"{label} {arm}", arm, metric) for arm in arms]
                elif "_vs_" in subject:
                    columns.append((label, subject, metric))
            t = Table(
                title=f"{scenario} — {target} — {subject}",
                caption="oldest first; values with their 95 % intervals; requests: measured "
                "requests the history holds for these arms",
            )
            t.add_column("run / started (UTC)", no_wrap=True)
            t.add_column("requests", justify="right")
            for header, _, _ in columns:
                t.add_column(header, justify="right")
            for started, run_id in runs:
                requests = sum(trend.requests.get((run_id, scenario, a), (0, 0))[0] for a in arms)
                cells = [_cell(by.get((run_id, s, m)), METRICS[m][1]) for _, s, m in columns]
                if all(c == fmt.DASH for c in cells):
                    continue
                when = fmt.when(started).removesuffix(" UTC")
                t.add_row(f"{run_id}\n{when}", str(requests), *cells)
            tables.append(t)
    return tables
