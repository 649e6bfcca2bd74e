"""The report's trend chart: a scenario's metrics over the last runs of the same target, read
from the run history (:mod:`harness.history`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness import fmt
from harness.errors import HistoryError
from harness.history import AUTO, HistoryOption, resolve_history
from harness.report import charts

if TYPE_CHECKING:
    from harness.history.query import Trend
    from harness.summary import Summary

__all__ = ["TREND_METRICS", "TREND_RUNS", "load_trend", "trend_chart"]

#: runs a trend chart shows (the newest, up to the reported run)
TREND_RUNS = 10
#: panel per metric: label, "no change" line, shown as %, the smallest span of its axis (about
#: twice the default equivalence margin: ±10 % latency, ±2 % cost, a few points of share)
TREND_METRICS: dict[str, tuple[str, float | None, bool, float]] = {
    "ttft_ratio": ("TTFT p50 ratio", 1.0, False, 0.2),
    "cost_ratio": ("cost ratio", 1.0, False, 0.05),
    "cache_share": ("cache share", None, True, 0.05),
    "error_rate": ("error rate", None, True, 0.05),
}


def load_trend(
    run_dir: Path, started_at: float, summary: Summary, history: HistoryOption = AUTO
) -> tuple[Trend | None, str | None]:
    """The last :data:`TREND_RUNS` runs of the reported run's target up to it, or None when
    there is no history; a history that cannot be read is a note, never a failed report."""
    from harness.history.store import target_key

    try:
        root = resolve_history(None, run_dir.parent) if history == AUTO else history
        if root is None or not root.is_dir():
            return None, None
        from harness.history.query import open_history

        h = open_history(root)
        try:
            trend = h.trend(
                target=target_key(summary.target_label, summary.emulator_profile),
                until=started_at,
                metrics=tuple(TREND_METRICS),
                last=TREND_RUNS,
            )
        finally:
            h.close()
    except HistoryError as exc:
        return None, f"no trend chart: {exc}"
    return trend, None


def trend_chart(trend: Trend, scenario: str, salt: str, this_run: str | None = None) -> str | None:
    """The trend chart of ``scenario``, when the history has at least two of its runs; runs
    are labelled by their start (UTC), the reported run ``this_run`` as "this run"."""
    points = [p for p in trend.points if p.scenario == scenario]
    runs = sorted({(p.started_at, p.run_id) for p in points})
    if len(runs) < 2:
        return None
    x_of = {run_id: float(i) for i, (_, run_id) in enumerate(runs)}
    panels = []
    for metric, (label, reference, percent, min_span) in TREND_METRICS.items():
        series = []
        subjects = sorted({p.subject for p in points if p.metric == metric})
        for subject in subjects:
            mine = [p for p in points if p.metric == metric and p.subject == subject]
            cols = np.full((4, len(runs)), np.nan)
            cols[0] = np.arange(len(runs))
            for p in mine:
                i = int(x_of[p.run_id])
                cols[1:, i] = [np.nan if v is None else v for v in (p.value, p.ci_low, p.ci_high)]
            series.append(charts.TrendSeries(subject, cols[0], cols[1], cols[2], cols[3]))
        panels.append(charts.TrendPanel(label, reference, percent, series, min_span))
    return charts.trend_chart(
        [
            "this run" if run_id == this_run else fmt.when(t).removesuffix(" UTC")[5:19]
            for t, run_id in runs
        ],
        panels,
        f"Trend over the last {len(runs)} runs (same scenario and target)",
        salt,
    )
