"""Per-arm metrics and comparisons over columns, on small hand-made observation sets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from harness.analysis.analyze import scenario_summary
from harness.analysis.metrics import ObservationTable, comparison_pairs
from harness.analysis.pricing import PriceBook
from harness.records import Observation, ToolCallRecord, Usage

BOOK_DATE = datetime(2026, 11, 1, tzinfo=UTC)


def obs(
    arm: str = "chat", *, prompt: str = "p", repeat: int = 0, turn: int = 1, **kw: Any
) -> Observation:
    api = "chat" if arm.startswith("chat") else "responses"
    base: dict[str, Any] = dict(
        run_id="r",
        scenario="s",
        prompt_id=prompt,
        arm=arm,
        api=api,
        turn=turn,
        repeat=repeat,
        conversation=f"{prompt}/{arm}/{repeat}",
        cold=turn == 1,
        model="gpt-4.1-mini",
        stream=True,
        order=0,
        started_at=0.0,
        ok=True,
        status=200,
        ttft_ms=100.0,
        ttfb_ms=50.0,
        total_ms=300.0,
        usage=Usage(input_tokens=2000, cached_tokens=0, output_tokens=10),
    )
    base.update(kw)
    return Observation(**base)


def summarise(observations: list[Observation], **kw: Any) -> Any:
    table = ObservationTable.from_observations(observations)
    return scenario_summary(table, "s", book=PriceBook(when=BOOK_DATE), resamples=200, **kw)


def test_table_from_observations_and_from_dicts_agree() -> None:
    records = [obs(repeat=r, ttft_ms=None if r == 1 else 10.0 * r) for r in range(3)]
    records[2] = records[2].model_copy(
        update={"usage": None, "tool_calls": [ToolCallRecord(id="c1", name="f", arguments="{}")]}
    )
    a = ObservationTable.from_observations(records)
    b = ObservationTable.from_dicts([r.model_dump(mode="json") for r in records])
    np.testing.assert_array_equal(a.ttft_ms, [0.0, np.nan, 20.0])
    np.testing.assert_array_equal(a.has_usage, [True, True, False])
    np.testing.assert_array_equal(a.input_tokens, [2000, 2000, 0])
    assert a.tool_calls[2][0].name == "f" and a.tool_calls[0] == ()
    for name in ("ttft_ms", "input_tokens", "has_usage", "cold"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.arm == b.arm and a.output_text == b.output_text


def test_from_dicts_fills_defaults_for_sparse_records() -> None:
    t = ObservationTable.from_dicts(
        [
            {
                "run_id": "r",
                "scenario": "s",
                "prompt_id": "p",
                "arm": "chat",
                "api": "chat",
                "model": "m",
                "turn": 1,
                "repeat": 0,
                "cold": True,
                "usage": {"input_tokens": 5},
            }
        ]
    )
    assert not t.ok[0] and np.isnan(t.total_ms[0]) and t.input_tokens[0] == 5
    assert t.cached_tokens[0] == 0


def test_malformed_records_raise_a_harness_error() -> None:
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="malformed"):
        ObservationTable.from_dicts([{"scenario": "s"}])


def test_a_resumed_key_keeps_its_last_record() -> None:
    t = ObservationTable.from_observations(
        [
            obs(repeat=0, ttft_ms=1.0),
            obs(repeat=1, ttft_ms=2.0),
            obs(repeat=0, ttft_ms=3.0),
            obs("responses", repeat=0, ttft_ms=4.0),
        ]
    )
    latest = t.latest_per_key()
    assert latest.ttft_ms.tolist() == [2.0, 3.0, 4.0]
    assert t.take(np.array([0, 1])).latest_per_key().ttft_ms.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("arms", "expected"),
    [
        (["chat", "responses"], ["responses_vs_chat"]),
        (
            ["responses", "chat#2", "chat", "responses_chained"],
            [
                "chat#2_vs_chat",
                "responses_vs_chat",
                "responses_chained_vs_chat",
                "responses_chained_vs_responses",
            ],
        ),
        (
            ["chat", "responses", "responses#2"],
            ["responses_vs_chat", "responses#2_vs_chat", "responses#2_vs_responses"],
        ),
        (["responses", "responses_chained"], ["responses_chained_vs_responses"]),
        (["chat"], []),
        (
            [
                "responses_conversation",
                "responses+no_reasoning",
                "responses_chained",
                "responses",
                "responses+store#2",
                "responses+store",
            ],
            [
                "responses+no_reasoning_vs_responses",
                "responses+store_vs_responses",
                "responses+store#2_vs_responses+store",
                "responses_chained_vs_responses",
                "responses_conversation_vs_responses_chained",
            ],
        ),
        (
            ["chat", "responses_conversation", "responses_conversation+store"],
            [
                "responses_conversation_vs_chat",
                "responses_conversation+store_vs_chat",
                "responses_conversation+store_vs_responses_conversation",
            ],
        ),
    ],
)
def test_comparison_pairs(arms: list[str], expected: list[str]) -> None:
    assert [f"{a}_vs_{b}" for a, b in comparison_pairs(arms)] == expected


def test_latency_percentiles_cold_warm_and_errors() -> None:
    records = []
    for r in range(20):
        records.append(obs(repeat=r, turn=1, ttft_ms=200.0 + r))  # cold
        records.append(obs(repeat=r, turn=2, ttft_ms=100.0 + r))  # warm
    records.append(
        obs(
            repeat=99,
            ok=False,
            status=500,
            ttft_ms=None,
            total_ms=None,
            usage=None,
            error_type="server_error",
        )
    )
    arm = summarise(records).arms["chat"]
    assert arm.requests == 41 and arm.errors == 1 and arm.error_rate == pytest.approx(1 / 41)
    assert arm.error_types == {"server_error": 1}
    assert arm.cold_ttft_ms.p50 == pytest.approx(209.5)
    assert arm.warm_ttft_ms.p50 == pytest.approx(109.5)
    assert arm.ttft_ms.n == 40
    assert arm.ttft_ms.ci95[0] <= arm.ttft_ms.p50 <= arm.ttft_ms.ci95[1]
    assert [t.turn for t in arm.per_turn] == [1, 2]
    assert arm.per_turn[0].requests == 21 and arm.per_turn[0].errors == 1


def test_nulls_where_values_cannot_exist() -> None:
    records = [obs(repeat=r, stream=False, ttft_ms=None, model="acme-unknown") for r in range(5)]
    s = summarise(records)
    arm = s.arms["chat"]
    assert arm.ttft_ms is None and arm.cold_ttft_ms is None  # no streaming → no TTFT
    assert arm.total_ms is not None
    assert arm.cost_usd is None  # unknown price → no cost
    assert arm.per_turn[0].cost_usd_mean is None


def test_no_usage_means_null_tokens_not_zero() -> None:
    arm = summarise([obs(repeat=r, usage=None) for r in range(3)]).arms["chat"]
    assert arm.input_tokens is None and arm.cache_hit_ratio is None and arm.cache is None
    assert arm.cost_usd is None


def test_cache_metrics_per_arm_and_turn_growth() -> None:
    records = []
    for r in range(10):
        records += [
            obs(
                repeat=r, turn=1, usage=Usage(input_tokens=1500, cached_tokens=0, output_tokens=10)
            ),
            obs(
                repeat=r,
                turn=2,
                usage=Usage(input_tokens=1800, cached_tokens=1408, output_tokens=10),
            ),
            obs(
                repeat=r,
                turn=3,
                usage=Usage(input_tokens=2100, cached_tokens=1792, output_tokens=10),
            ),
            obs(
                repeat=r,
                turn=4,
                usage=Usage(
                    input_tokens=900, cached_tokens=0, cache_write_tokens=0, output_tokens=10
                ),
            ),
        ]
    arm = summarise(records).arms["chat"]
    assert arm.cache_hit_ratio.value == pytest.approx((1408 + 1792) / (1500 + 1800 + 2100 + 900))
    assert arm.cache.eligible_requests == 30  # the 900-token turn is too short
    assert arm.cache.eligible_hit_ratio == pytest.approx(3200 / 5400)
    assert arm.cache.hit_requests == 20
    assert [t.cache_hit_ratio for t in arm.per_turn] == pytest.approx(
        [0.0, 1408 / 1800, 1792 / 2100, 0.0]
    )
    assert arm.cached_tokens.total == 32_000


def test_cost_per_arm_with_projection() -> None:
    records = [
        obs(repeat=r, usage=Usage(input_tokens=2000, cached_tokens=1920, output_tokens=100))
        for r in range(4)
    ]
    cost = summarise(records).arms["chat"].cost_usd
    per_request = (80 * 0.40 + 1920 * 0.10 + 100 * 1.60) / 1e6
    assert cost.per_request_usd.value == pytest.approx(per_request)
    assert cost.total_usd == pytest.approx(4 * per_request)
    assert cost.per_1k_requests_usd == pytest.approx(1_000 * per_request)
    assert cost.per_1m_requests_usd == pytest.approx(1_000_000 * per_request)
    assert cost.priced_requests == 4


def _paired(ratio: float, n: int = 40, noise: float = 0.0, **kw: Any) -> list[Observation]:
    rng = np.random.default_rng(0)
    out = []
    for r in range(n):
        base = float(rng.lognormal(5.0, 0.1))
        jitter = float(rng.lognormal(0.0, noise)) if noise else 1.0
        out.append(obs("chat", repeat=r, ttft_ms=base, total_ms=3 * base, **kw))
        out.append(
            obs("responses", repeat=r, ttft_ms=base * ratio * jitter, total_ms=3 * base, **kw)
        )
    return out


def test_paired_ratio_of_medians_and_significance() -> None:
    c = summarise(_paired(1.2)).comparisons["responses_vs_chat"]
    assert c.ttft_p50_ratio.value == pytest.approx(1.2)
    assert c.ttft_p50_ratio.significant is True and c.ttft_p50_ratio.n_pairs == 40
    lo, hi = c.ttft_p50_ratio.ci95
    assert lo <= 1.2 <= hi
    assert c.total_p50_ratio.value == pytest.approx(1.0)
    assert c.total_p50_ratio.significant is False
    assert c.cost_ratio.value == pytest.approx(1.0)
    assert c.error_rate_delta.value == 0.0


def test_cache_improvement_is_null_when_the_baseline_cached_nothing() -> None:
    records = []
    for r in range(10):
        records.append(obs("chat", repeat=r, usage=Usage(input_tokens=2000, output_tokens=5)))
        records.append(
            obs(
                "responses",
                repeat=r,
                usage=Usage(input_tokens=2000, cached_tokens=1024, output_tokens=5),
            )
        )
    c = summarise(records).comparisons["responses_vs_chat"]
    assert c.cache_hit_improvement is None
    assert c.cache_hit_ratio_delta.value == pytest.approx(0.512)


def test_power_section_reports_repeats_needed() -> None:
    noisy = summarise(_paired(1.0, noise=0.3)).comparisons["responses_vs_chat"].power
    assert noisy is not None and noisy.metric == "ttft_p50_ratio"
    assert noisy.repeats == 40 and noisy.effect == 0.25 and noisy.n_pairs == 40
    assert noisy.margin == 0.10 and noisy.power == 0.80
    # the observed spread needs more repeats than 40 for +25 % to clear the ±10 % margin at 80 %
    assert noisy.repeats_needed is not None and noisy.repeats_needed > 40
    quiet = summarise(_paired(1.0, noise=0.01)).comparisons["responses_vs_chat"].power
    assert quiet is not None and quiet.repeats_needed is not None
    assert quiet.repeats_needed < noisy.repeats_needed


def test_warmup_rows_are_the_callers_to_exclude() -> None:
    # scenario_summary gets measured rows only; analyze_table drops warm-ups (test_analyze)
    s = summarise([obs(repeat=r) for r in range(3)], warmups={"chat": 2})
    assert s.arms["chat"].warmup_excluded == 2


@pytest.mark.parametrize("mirror_client", ["sdk", "raw"])
def test_sdk_clock_ratios_only_between_arms_with_the_same_client(mirror_client: str) -> None:
    records = [
        obs(
            arm,
            repeat=r,
            client="sdk" if arm == "chat" else mirror_client,
            sdk_ttft_ms=(130.0 if arm == "chat" else 104.0) + r,
            sdk_total_ms=(330.0 if arm == "chat" else 304.0) + r,
        )
        for arm in ("chat", "responses")
        for r in range(12)
    ]
    c = summarise(records).comparisons["responses_vs_chat"]
    if mirror_client == "sdk":
        assert c.sdk_ttft_p50_ratio is not None and c.sdk_ttft_p50_ratio.value < 0.9
        assert c.sdk_total_p50_ratio is not None
    else:  # the raw client's lower overhead would pose as a faster API
        assert c.sdk_ttft_p50_ratio is None and c.sdk_total_p50_ratio is None
    assert c.ttft_p50_ratio is not None and c.ttft_p50_ratio.value == 1.0  # the wire clock


def test_contaminated_cache_leaves_no_cost_ratio() -> None:
    records = [
        obs(
            arm,
            repeat=r,
            usage=Usage(input_tokens=2000, cached_tokens=1500 if arm == "responses" else 0),
        )
        for arm in ("chat", "responses")
        for r in range(12)
    ]
    clean = summarise(records).comparisons["responses_vs_chat"]
    assert clean.cost_ratio is not None and clean.cost_ratio.value < 0.6
    shadow = summarise(records, contaminated_cache=True).comparisons["responses_vs_chat"]
    assert shadow.cache_contaminated and shadow.cost_ratio is None
