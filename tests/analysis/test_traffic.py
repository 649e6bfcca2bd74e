"""Prompt ``weight`` in costs and projections; ``reference`` similarity in summary and report."""

from __future__ import annotations

import json
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from harness import fmt
from harness.analysis.analyze import analyze_run, load_run, run_price_book
from harness.analysis.metrics import costs_per_row
from harness.analysis.similarity import text_similarity
from harness.cli.app import main
from harness.cli.run_summary import print_run_summary
from harness.report.verdict import TRAFFIC_NOTE, traffic_mix
from harness.runner.execute import RunOptions, run
from harness.summary import Summary

SCENARIO = """\
version: 1
name: mix
model: gpt-4.1-mini
repeats: 10
prompts:
  - id: frequent
    input: Say hello in one short sentence.
    weight: 9
    reference: Hello there, nice to meet you.
  - id: rare
    input: Write a long paragraph about the history of the bicycle, with many details.
"""


@pytest.fixture(scope="module")
def mix_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("traffic")
    path = root / "mix.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    result = run(
        [path], RunOptions(out=root / "runs", seed=5, progress=False, emulator_profile="zero")
    )
    assert main(["report", str(result.run_dir), "--out", str(root / "report")]) == 0
    return result.run_dir


def test_weighted_cost_counts_each_prompt_as_often_as_it_occurs(mix_run: Path) -> None:
    summary = json.loads((mix_run / "summary.json").read_text(encoding="utf-8"))
    loaded = load_run(mix_run)
    t = loaded.table.measured()
    cost = costs_per_row(t, run_price_book(loaded.meta))
    for arm, stats in summary["scenarios"][0]["arms"].items():
        rows = np.array([i for i, a in enumerate(t.arm) if a == arm])
        mean = {
            p: float(np.mean(cost[[i for i in rows if t.prompt_id[i] == p]]))
            for p in ("frequent", "rare")
        }
        assert mean["rare"] != pytest.approx(mean["frequent"])  # the weights must matter
        expected = (9 * mean["frequent"] + 1 * mean["rare"]) / 10
        weighted = stats["cost_usd"]["weighted"]
        assert weighted["per_request_usd"] == pytest.approx(expected, rel=1e-9)
        assert weighted["per_1k_requests_usd"] == pytest.approx(expected * 1000, rel=1e-9)
        assert weighted["requests_represented"] == 10 * 9 + 10 * 1
        # the unweighted mean gives both prompts the same say
        plain = stats["cost_usd"]["per_request_usd"]["value"]
        assert plain == pytest.approx((mean["frequent"] + mean["rare"]) / 2, rel=1e-9)


def test_reference_similarity_beside_arm_similarity(mix_run: Path) -> None:
    summary = json.loads((mix_run / "summary.json").read_text(encoding="utf-8"))
    prompts = summary["scenarios"][0]["prompts"]
    assert prompts["rare"]["weight"] == 1 and prompts["rare"]["reference"] is False
    assert prompts["rare"]["reference_similarity"] == {}
    frequent = prompts["frequent"]
    assert frequent["weight"] == 9 and frequent["reference"] is True
    t = load_run(mix_run).table.measured()
    for arm in ("chat", "responses"):
        replies = [
            t.output_text[i]
            for i in range(len(t))
            if t.arm[i] == arm and t.prompt_id[i] == "frequent" and t.ok[i]
        ]
        scores = [text_similarity(r or "", "Hello there, nice to meet you.") for r in replies]
        got = frequent["reference_similarity"][arm]
        assert got["n"] == 10
        assert got["mean"] == pytest.approx(np.mean(scores))
        assert got["min"] == pytest.approx(min(scores))
    assert set(frequent["arm_similarity"]) == {"responses_vs_chat"}
    assert 0 <= frequent["arm_similarity"]["responses_vs_chat"] <= 1


def test_weighted_figures_carry_intervals_of_the_weighted_quantity(mix_run: Path) -> None:
    sc = json.loads((mix_run / "summary.json").read_text(encoding="utf-8"))["scenarios"][0]
    for arm in sc["arms"].values():
        w = arm["cost_usd"]["weighted"]
        lo, hi = w["per_request_usd_ci95"]
        assert lo <= w["per_request_usd"] <= hi
        assert w["per_1k_requests_usd_ci95"] == pytest.approx([lo * 1e3, hi * 1e3], rel=1e-12)
        assert w["per_1m_requests_usd_ci95"] == pytest.approx([lo * 1e6, hi * 1e6], rel=1e-12)
        # 9:1 over 10 repeats each rests on about 10 conversations, not 20
        assert 10 <= w["effective_conversations"] < 15
    c = sc["comparisons"]["responses_vs_chat"]
    weighted = c["weighted_cost_ratio"]
    lo, hi = weighted["ci95"]
    assert lo <= weighted["value"] <= hi
    assert weighted["decision"] is not None and weighted["margin"] == c["cost_ratio"]["margin"]


def test_report_shows_weight_reference_and_weighted_cost(mix_run: Path) -> None:
    html = (mix_run.parent.parent / "report" / "report.html").read_text(encoding="utf-8")
    assert "weight 9 · similarity to the reference:" in html
    assert "Hello there, nice to meet you." in html
    summary = Summary.model_validate_json((mix_run / "summary.json").read_text(encoding="utf-8"))
    mix = traffic_mix(summary.scenarios[0])
    assert mix is not None and html_escape(mix) in html
    w = summary.scenarios[0].arms["chat"].cost_usd
    assert w is not None and w.weighted is not None
    chat = fmt.estimate(w.weighted.per_1k_requests_usd, w.weighted.per_1k_requests_usd_ci95, "usd")
    assert f"chat {chat} per 1k requests" in mix and "(" in chat  # the point beside its interval
    ratio = summary.scenarios[0].comparisons["responses_vs_chat"].weighted_cost_ratio
    assert f"responses/chat {fmt.effect(ratio)}" in mix
    assert TRAFFIC_NOTE in mix
    md = (mix_run.parent.parent / "report" / "summary.md").read_text(encoding="utf-8")
    assert mix in md


def test_run_summary_prints_the_traffic_mix(mix_run: Path) -> None:
    summary = Summary.model_validate_json((mix_run / "summary.json").read_text(encoding="utf-8"))
    console = Console(record=True, width=100, force_terminal=False)
    print_run_summary(console, summary)
    mix = traffic_mix(summary.scenarios[0])
    assert mix is not None and mix in console.export_text()


def test_unweighted_scenarios_keep_the_summary_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(
        SCENARIO.replace("    weight: 9\n", "").replace(
            "    reference: Hello there, nice to meet you.\n", ""
        ),
        encoding="utf-8",
    )
    result = run(
        [path],
        RunOptions(out=tmp_path, repeats=1, seed=5, progress=False, emulator_profile="zero"),
    )
    sc = analyze_run(result.run_dir).to_json_dict()["scenarios"][0]
    assert sc["prompts"] == {}
    assert all(a["cost_usd"]["weighted"] is None for a in sc["arms"].values())
    assert all(c["weighted_cost_ratio"] is None for c in sc["comparisons"].values())
