"""Per-arm background statistics from known observation records."""

from __future__ import annotations

from typing import Any

import pytest

from harness.analysis.background import background_stats
from harness.records import BackgroundTiming


def _polled(wait: float, polls: int, lag: float, status: str = "completed") -> dict[str, Any]:
    return BackgroundTiming(
        time_to_queued_ms=5.0,
        queue_wait_ms=wait,
        polls=polls,
        poll_interval_ms=100.0,
        poll_lag_max_ms=lag,
        final_status=status,
        total_ms=5.0 + wait + 50.0,
    ).model_dump()


def _streamed(wait: float, resumes: int, in_order: bool) -> dict[str, Any]:
    return BackgroundTiming(
        time_to_queued_ms=8.0,
        queue_wait_ms=wait,
        resumes=resumes,
        resumed_after=[10] * resumes,
        events_in_order=in_order,
        final_status="completed",
        total_ms=200.0,
    ).model_dump()


def test_an_arm_without_background_requests_has_none() -> None:
    assert background_stats([None, None]) is None
    assert background_stats([]) is None


def test_polled_and_streamed_requests_are_summarised_apart() -> None:
    rows = [
        _polled(100.0, 2, 40.0),
        _polled(300.0, 4, 80.0),
        _streamed(200.0, 0, True),
        _streamed(400.0, 2, False),
        None,  # a foreground request of the same arm (none here in practice) is ignored
    ]
    stats = background_stats(rows)
    assert stats is not None
    assert stats.requests == 4
    assert stats.polled_requests == 2 and stats.streamed_requests == 2
    assert stats.polls_mean == pytest.approx(3.0)
    assert stats.poll_interval_ms == 100.0
    assert stats.poll_lag_max_ms is not None and stats.poll_lag_max_ms.p50 == pytest.approx(60.0)
    assert stats.queue_wait_ms is not None and stats.queue_wait_ms.p50 == pytest.approx(250.0)
    assert stats.queue_wait_ms.n == 4 and stats.queue_wait_ms.ci95 is None
    assert stats.resumed_requests == 1 and stats.resumes == 2
    assert stats.events_out_of_order == 1
    assert stats.final_status == {"completed": 4}


def test_unfinished_requests_count_but_do_not_time() -> None:
    failed = BackgroundTiming(
        time_to_queued_ms=5.0, queue_wait_ms=None, final_status=None, total_ms=900.0
    ).model_dump()
    stats = background_stats([_polled(100.0, 2, 40.0, "cancelled"), failed])
    assert stats is not None
    assert stats.requests == 2 and stats.final_status == {"cancelled": 1, "unfinished": 1}
    # the unfinished request's total is not a latency of background mode
    assert stats.total_ms is not None and stats.total_ms.n == 1
    assert stats.time_to_queued_ms is not None and stats.time_to_queued_ms.n == 2
