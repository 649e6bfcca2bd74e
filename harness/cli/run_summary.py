"""``harness run``'s end-of-run summary, one shape for every kind of run.

Per scenario a rich table of its arms — TTFT when requests were streamed, total latency when
some were not (both in a mixed run), cached share, cost per 1,000 requests — then the headline
verdict (the report's sentence, :func:`harness.report.verdict.sentence`: one rule, never a
second) and, when gates ran, their status (:func:`harness.cli.gate.status_line`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import fmt

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

    from harness.gates.evaluate import GateReport
    from harness.summary import ArmSummary, LatencyStats, ScenarioSummary, Summary

__all__ = ["latency_columns", "print_run_summary", "run_summary", "scenario_table"]

#: (header, ArmSummary field) of each latency column, by what the requests were
_TTFT = (("cold TTFT p50/p95 ms", "cold_ttft_ms"), ("warm TTFT p50/p95 ms", "warm_ttft_ms"))
_TOTAL = (("cold total p50/p95 ms", "cold_total_ms"), ("warm total p50/p95 ms", "warm_total_ms"))


def latency_columns(arms: list[ArmSummary]) -> tuple[tuple[str, str], ...]:
    """TTFT columns when requests were streamed, total latency when some were not."""
    streamed = any(a.ttft_ms is not None for a in arms)
    # a reply without TTFT was not streamed; without any reply, total latency is what exists
    unstreamed = any(
        a.total_ms is not None and (a.ttft_ms is None or a.total_ms.n > a.ttft_ms.n) for a in arms
    )
    return (*(_TTFT if streamed else ()), *(_TOTAL if unstreamed or not streamed else ()))


def _p50_p95(stats: LatencyStats | None) -> str:
    if stats is None:
        return fmt.DASH
    return f"{fmt.num(stats.p50, 1)} / {fmt.num(stats.p95, 1)}"


def scenario_table(sc: ScenarioSummary, target_label: str, *, partial: bool = False) -> Table:
    """One scenario's arms: requests, errors, latency, cached share, cost per 1k requests."""
    from rich.table import Table

    title = f"{sc.name} — {target_label}" + (" — interrupted: requests so far" if partial else "")
    table = Table(title=title)
    columns = latency_columns(list(sc.arms.values()))
    table.add_column("arm", no_wrap=True)
    for header in ("requests", "errors", *(h for h, _ in columns), "cached share", "cost / 1k req"):
        table.add_column(header, justify="right")
    for arm, a in sc.arms.items():
        table.add_row(
            arm,
            f"{a.requests:,}",
            f"{a.errors:,}",
            *(_p50_p95(getattr(a, field)) for _, field in columns),
            fmt.pct(a.cache_hit_ratio.value, 1) if a.cache_hit_ratio else fmt.DASH,
            fmt.usd(a.cost_usd.per_1k_requests_usd) if a.cost_usd else fmt.DASH,
        )
    return table


def run_summary(
    summary: Summary, gates: GateReport | None = None, *, partial: bool = False
) -> list[RenderableType]:
    """What ``harness run`` prints last: each scenario's table and verdict, then the gates."""
    from rich.text import Text

    from harness.cli.gate import status_line
    from harness.report.verdict import findings, headline_comparisons, sentence, traffic_mix

    out: list[RenderableType] = []
    for sc in summary.scenarios:
        out.append(scenario_table(sc, summary.target_label, partial=partial))
        mix = traffic_mix(sc)
        if mix is not None:
            out.append(Text(mix))
        for _, c in headline_comparisons(sc):
            out.append(Text(f"verdict: {sentence(c, findings(c, sc.arms))}"))
    if gates is not None:
        style = "red" if gates.failed else "green" if gates.results else "yellow"
        out.append(Text(f"gates: {status_line(gates)}", style=style))
    return out


def print_run_summary(
    console: Console, summary: Summary, gates: GateReport | None = None, *, partial: bool = False
) -> None:
    """Print :func:`run_summary`; when ``console`` is not a terminal (a CI log, a pipe), at its
    natural width: no figure or sentence broken over two lines."""
    from rich.measure import Measurement
    from rich.table import Table

    for part in run_summary(summary, gates, partial=partial):
        if not isinstance(part, Table):
            console.print(part, soft_wrap=True)
        elif console.is_terminal:
            console.print(part)
        else:  # Console.print(width=) only narrows; a log has no screen width to keep to
            wide = console.options.update_width(10_000)
            width, console.width = console.width, Measurement.get(console, wide, part).maximum
            try:
                console.print(part)
            finally:
                console.width = width
