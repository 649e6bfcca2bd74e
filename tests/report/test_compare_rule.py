"""The run-to-run page judges each metric by the one rule: its scenario's margin and the
metric's own direction (:func:`harness.analysis.decide.rule_for`)."""

from __future__ import annotations

from harness.analysis.decide import Margins
from harness.report.compare import METRICS, compare_view
from harness.summary import (
    BootstrapInfo,
    Effect,
    PricingInfo,
    RunArmComparison,
    RunComparison,
    Summary,
)


def _effect(lo: float, hi: float) -> Effect:
    return Effect(value=(lo + hi) / 2, ci95=(lo, hi), significant=None, n_pairs=30)


def _summary(run_id: str) -> Summary:
    return Summary(
        harness_version="t",
        run_id=run_id,
        target="synthetic",
        target_label="synthetic",
        is_emulator=False,
        emulator_profile=None,
        observations=0,
        warmup_excluded=0,
        bootstrap=BootstrapInfo(seed=0, resamples=10, confidence=0.95, unit="u", method="m"),
        pricing=PricingInfo(source="s", genai_prices_version="0", override_file=None, models=[]),
        warnings=[],
        scenarios=[],
    )


def _kinds(arm: RunArmComparison, margins: dict[str, Margins] | None = None) -> dict[str, str]:
    rc = RunComparison(
        a_run_id="a",
        b_run_id="b",
        intervals=True,
        bootstrap=None,
        scenarios={"s": {"responses": arm}},
    )
    [view] = compare_view(rc, _summary("a"), _summary("b"), margins)
    [row] = view.arms
    return {fld: c.kind for (_, fld), c in zip(METRICS, row.cells, strict=True)}


def test_more_cache_hits_are_better_and_fewer_worse() -> None:
    up = _kinds(RunArmComparison(cache_hit_ratio_delta=_effect(0.05, 0.09)))
    down = _kinds(RunArmComparison(cache_hit_ratio_delta=_effect(-0.09, -0.05)))
    assert up["cache_hit_ratio_delta"] == "better"
    assert down["cache_hit_ratio_delta"] == "worse"


def test_output_tokens_use_the_token_margin_not_the_latency_one() -> None:
    kinds = _kinds(RunArmComparison(output_tokens_ratio=_effect(1.06, 1.08)))
    assert kinds["output_tokens_ratio"] == "worse"  # beyond ±5 %, inside ±10 %


def test_the_scenarios_margins_decide() -> None:
    arm = RunArmComparison(
        ttft_p50_ratio=_effect(1.12, 1.18),
        cost_ratio=_effect(0.95, 0.97),
        cache_hit_ratio_delta=_effect(0.03, 0.04),
    )
    default = _kinds(arm)
    assert (default["ttft_p50_ratio"], default["cost_ratio"]) == ("worse", "better")
    assert default["cache_hit_ratio_delta"] == "better"
    loose = {"s": Margins(latency_pct=20, cost_pct=5, cache_points=5)}
    wide = _kinds(arm, loose)
    assert wide["ttft_p50_ratio"] == wide["cost_ratio"] == "same"
    assert wide["cache_hit_ratio_delta"] == "same"
    assert _kinds(arm, {"other": Margins(latency_pct=20)})["ttft_p50_ratio"] == "worse"
