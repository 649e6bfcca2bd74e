"""``harness gate --prices``: every gate of one run uses the same prices."""

from __future__ import annotations

from pathlib import Path

from harness.analysis.analyze import (
    SyntheticProfile,
    analyze_run,
    synthetic_observations,
    write_synthetic_run,
)
from harness.gates.config import GateConfig, parse_gate
from harness.gates.evaluate import gate_run
from harness.rundir import read_summary, write_summary

#: gpt-4.1-mini with no cache discount: Responses' extra cache hits stop saving money
NO_DISCOUNT = (
    "models:\n  gpt-4.1-mini: {input_mtok: 0.4, cached_input_mtok: 0.4, cache_write_mtok: 0.4, "
    "output_mtok: 1.6}\n"
)


def test_prices_given_to_the_gate_reprice_the_threshold_gates_too(tmp_path: Path) -> None:
    profile = SyntheticProfile(responses_cache_advantage=0.8, sigma=0.05, drift=0.0)
    run_dir = write_synthetic_run(
        tmp_path / "run", synthetic_observations(profile, repeats=6, run_id="run")
    )
    summary = analyze_run(run_dir, resamples=200)
    cost = summary.scenarios[0].comparisons["responses_vs_chat"].cost_ratio
    assert cost is not None and cost.ci95 is not None and cost.ci95[1] < 0.9  # cheaper cached
    write_summary(run_dir, summary)  # the summary on disk: published prices
    prices = tmp_path / "prices.yaml"
    prices.write_text(NO_DISCOUNT, encoding="utf-8")
    gates = GateConfig(for_all=[parse_gate("responses_vs_chat.cost_ratio_max", 0.9, "t")])

    assert gate_run(run_dir, config=gates).results[0].status == "pass"
    repriced = gate_run(run_dir, config=gates, prices=prices)

    [result] = repriced.results
    assert result.status == "fail", result  # without the discount, the same tokens cost the same
    assert result.value is not None and result.value > 0.95


def test_a_summary_saved_at_other_prices_is_repriced_when_the_gate_has_none(
    tmp_path: Path,
) -> None:
    profile = SyntheticProfile(responses_cache_advantage=0.8, sigma=0.05, drift=0.0)
    run_dir = write_synthetic_run(
        tmp_path / "run", synthetic_observations(profile, repeats=6, run_id="run")
    )
    prices = tmp_path / "prices.yaml"
    prices.write_text(NO_DISCOUNT, encoding="utf-8")
    # `harness analyze --prices prices.yaml` left a summary priced without the discount
    write_summary(run_dir, analyze_run(run_dir, resamples=200, price_overrides=prices))
    gates = GateConfig(for_all=[parse_gate("responses_vs_chat.cost_ratio_max", 0.9, "t")])

    [result] = gate_run(run_dir, config=gates).results

    # the recorded prices, as the baseline comparison uses: cached input is cheaper again
    assert result.status == "pass", result
    assert read_summary(run_dir).pricing.override_file is None
