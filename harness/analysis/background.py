"""An arm's background requests (scenario ``background: true``) → :class:`BackgroundStats`.

Pure: reads the ``background`` mapping each observation carries
(:class:`harness.records.BackgroundTiming` as written to JSONL).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from harness.analysis import stats
from harness.summary import BackgroundStats, LatencyStats

__all__ = ["background_stats"]


def _latency(values: list[float | None]) -> LatencyStats | None:
    q = stats.quantiles(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
    if q is None:
        return None
    return LatencyStats(n=q.n, p50=q.p50, p95=q.p95, p99=q.p99, mean=q.mean, ci95=None)


def background_stats(records: Iterable[Mapping[str, Any] | None]) -> BackgroundStats | None:
    """Statistics of an arm's background records (None for an arm that sent none)."""
    rows = [r for r in records if r is not None]
    if not rows:
        return None
    done = [r for r in rows if r.get("final_status") is not None]
    polled = [r for r in rows if r.get("poll_interval_ms") is not None]
    streamed = [r for r in rows if r.get("poll_interval_ms") is None]
    intervals = {r["poll_interval_ms"] for r in polled}
    statuses = Counter(str(r.get("final_status") or "unfinished") for r in rows)
    return BackgroundStats(
        requests=len(rows),
        time_to_queued_ms=_latency([r.get("time_to_queued_ms") for r in rows]),
        queue_wait_ms=_latency([r.get("queue_wait_ms") for r in done]),
        total_ms=_latency([r.get("total_ms") for r in done]),
        polled_requests=len(polled),
        polls_mean=float(np.mean([r.get("polls", 0) for r in polled])) if polled else None,
        poll_interval_ms=intervals.pop() if len(intervals) == 1 else None,
        poll_lag_max_ms=_latency([r.get("poll_lag_max_ms") for r in polled]),
        streamed_requests=len(streamed),
        resumed_requests=sum(1 for r in streamed if r.get("resumes", 0) > 0),
        resumes=sum(int(r.get("resumes", 0)) for r in streamed),
        events_out_of_order=sum(1 for r in streamed if r.get("events_in_order") is False),
        final_status=dict(sorted(statuses.items())),
    )
