"""`harness analyze`: run directory → summary.json, similarity vs divergence, between runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.analysis.analyze import (
    SyntheticProfile,
    analyze_run,
    analyze_table,
    compare_runs,
    load_table,
    read_summary,
    synthetic_observations,
    write_summary,
    write_synthetic_run,
)
from harness.analysis.metrics import ObservationTable
from harness.cli.app import main
from harness.errors import HarnessError
from harness.records import Observation, ToolCallRecord, Usage
from harness.rundir import read_observations
from harness.summary import SUMMARY_SCHEMA_VERSION

ARMS = ("chat", "responses", "responses_chained", "chat#2")
RESAMPLES = 300


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    obs = synthetic_observations(
        SyntheticProfile(responses_cold_ratio=2.5, divergence=0.2),
        arms=ARMS,
        repeats=12,
        warmup=1,
        seed=4,
    )
    return write_synthetic_run(
        tmp_path_factory.mktemp("run") / "r1", obs, emulator_profile="guide-claims"
    )


@pytest.fixture(scope="module")
def summary_json(run_dir: Path) -> dict[str, Any]:
    path = write_summary(run_dir, analyze_run(run_dir, resamples=RESAMPLES))
    assert path == run_dir / "summary.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_summary_has_the_documented_shape(summary_json: dict[str, Any]) -> None:
    s = summary_json
    assert s["schema_version"] == SUMMARY_SCHEMA_VERSION
    assert (
        s["run_id"] == "synthetic" and s["is_emulator"] and s["emulator_profile"] == "guide-claims"
    )
    assert "not OpenAI" in s["target_label"]
    assert s["bootstrap"]["seed"] == 0 and s["bootstrap"]["resamples"] == RESAMPLES
    assert s["pricing"]["source"].startswith("genai-prices")
    assert s["pricing"]["models"][0]["model"] == "gpt-4.1-mini"
    (scenario,) = s["scenarios"]
    assert scenario["name"] == "synthetic"
    assert list(scenario["arms"]) == ["chat", "chat#2", "responses", "responses_chained"]
    arm = scenario["arms"]["chat"]
    for key in (
        "requests",
        "errors",
        "ttft_ms",
        "ttfb_ms",
        "total_ms",
        "sdk_ttft_ms",
        "sdk_ttfb_ms",
        "sdk_total_ms",
        "cold_ttft_ms",
        "warm_ttft_ms",
        "input_tokens",
        "cached_tokens",
        "cache_hit_ratio",
        "output_tokens",
        "cost_usd",
        "per_turn",
    ):
        assert key in arm, key
    assert set(arm["ttft_ms"]) == {"n", "p50", "p95", "p99", "mean", "ci95"}
    assert set(scenario["comparisons"]) == {
        "responses_vs_chat",
        "responses_chained_vs_chat",
        "chat#2_vs_chat",
        "responses_chained_vs_responses",
    }
    c = scenario["comparisons"]["responses_vs_chat"]
    for key in (
        "ttft_p50_ratio",
        "cold_ttft_ratio",
        "total_p50_ratio",
        "cache_hit_ratio_delta",
        "cost_ratio",
    ):
        assert set(c[key]) == {
            "value",
            "ci95",
            "significant",
            "n_pairs",
            "decision",
            "margin",
        }, key
    assert set(c["similarity"]) == {"text", "json", "tool_calls", "semantic"}
    assert set(scenario["claims"]) == {"first_request_slower", "cache_utilization_better", "cost"}


def test_warmup_requests_are_excluded(summary_json: dict[str, Any]) -> None:
    assert summary_json["warmup_excluded"] == 6 * len(ARMS)  # 1 warm-up × 3 prompts × 2 turns
    arm = summary_json["scenarios"][0]["arms"]["chat"]
    assert arm["requests"] == 12 * 6 and arm["warmup_excluded"] == 6


def test_summary_round_trips(run_dir: Path, summary_json: dict[str, Any]) -> None:
    again = read_summary(run_dir)
    assert again.to_json_dict() == summary_json


def test_analysis_is_reproducible_for_a_seed(run_dir: Path, summary_json: dict[str, Any]) -> None:
    assert analyze_run(run_dir, resamples=RESAMPLES).to_json_dict() == summary_json
    other = analyze_run(run_dir, resamples=RESAMPLES, seed=1).to_json_dict()
    a = summary_json["scenarios"][0]["comparisons"]["responses_vs_chat"]["ttft_p50_ratio"]
    b = other["scenarios"][0]["comparisons"]["responses_vs_chat"]["ttft_p50_ratio"]
    assert a["value"] == b["value"] and a["ci95"] != b["ci95"]


@pytest.mark.parametrize("divergence", [0.0, 0.1, 0.25, 0.5])
def test_text_similarity_matches_injected_divergence(divergence: float) -> None:
    obs = synthetic_observations(
        SyntheticProfile(divergence=divergence), arms=ARMS, repeats=8, seed=int(divergence * 100)
    )
    s = analyze_table(ObservationTable.from_observations(obs), resamples=RESAMPLES)
    comps = s.scenarios[0].comparisons
    text = comps["responses_vs_chat"].similarity.text
    assert text is not None and text.mean is not None
    assert abs(text.mean - (1.0 - divergence)) <= 0.05
    assert text.noise_floor == 1.0 and text.noise_floor_from == "chat#2_vs_chat"
    below = text.below_noise_floor
    assert below is not None and below.value == pytest.approx(divergence, abs=0.05)
    assert below.significant is (divergence > 0)
    aa = comps["chat#2_vs_chat"].similarity.text
    assert aa is not None and aa.mean == 1.0 and aa.below_noise_floor is None


def _structured(
    arm: str,
    repeat: int,
    text: str | None = None,
    calls: list[tuple[str, str]] | None = None,
    **kw: Any,
) -> Observation:
    return Observation(
        run_id="r",
        scenario="s",
        prompt_id="weather" if calls else "extract",
        arm=arm,
        api="chat" if arm.startswith("chat") else "responses",
        turn=1,
        repeat=repeat,
        conversation=f"{arm}/{repeat}",
        cold=True,
        model="gpt-4.1-mini",
        stream=True,
        order=0,
        started_at=0.0,
        ok=True,
        ttft_ms=100.0,
        total_ms=200.0,
        output_text=text,
        usage=Usage(input_tokens=100, output_tokens=10),
        tool_calls=[
            ToolCallRecord(id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(calls or [])
        ],
        **kw,
    )


def test_json_and_tool_call_agreement_through_the_analysis() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    obs = []
    for r in range(4):
        obs.append(_structured("chat", r, '{"name": "John", "age": 30}'))
        obs.append(_structured("chat#2", r, '{"name": "John", "age": 30}'))
        # responses disagrees on age in half the repeats, and once returns a string age
        age = "30" if r == 0 else (31 if r == 1 else 30)
        obs.append(_structured("responses", r, json.dumps({"name": "John", "age": age})))
    for r in range(4, 8):
        call = [("get_weather", '{"city": "Paris"}')]
        obs.append(_structured("chat", r, "", call))
        obs.append(_structured("chat#2", r, "", call))
        other = '{"city": "Lyon"}' if r == 4 else '{ "city":"Paris" }'
        obs.append(_structured("responses", r, "", [("get_weather", other)]))
    s = analyze_table(
        ObservationTable.from_observations(obs),
        resamples=RESAMPLES,
        schemas={("s", "extract"): schema},
    )
    sim = s.scenarios[0].comparisons["responses_vs_chat"].similarity
    assert sim.json_ is not None and sim.json_.n_pairs == 4
    assert sim.json_.mean == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)
    assert sim.json_.a_schema_valid_rate == 0.75 and sim.json_.b_schema_valid_rate == 1.0
    assert sim.json_.noise_floor == 1.0
    assert sim.tool_calls is not None and sim.tool_calls.n_pairs == 4
    assert sim.tool_calls.mean == 0.75 and sim.tool_calls.name_agreement == 1.0
    assert sim.tool_calls.min == 0.0 and sim.tool_calls.noise_floor == 1.0
    assert sim.text is not None and sim.text.n_pairs == 4  # tool-call replies had no text
    assert sim.semantic is None  # no embedder given


def test_semantic_kind_appears_with_an_embedder() -> None:
    obs = synthetic_observations(
        SyntheticProfile(divergence=0.3), arms=("chat", "responses"), repeats=3
    )

    def embed(texts: Any) -> np.ndarray:
        return np.array([[len(t), t.count("x")] for t in texts], dtype=float)

    s = analyze_table(ObservationTable.from_observations(obs), resamples=100, embedder=embed)
    sem = s.scenarios[0].comparisons["responses_vs_chat"].similarity.semantic
    assert sem is not None and sem.n_pairs == 18 and sem.mean is not None


def test_no_streaming_means_null_ttft_and_claims_use_total(tmp_path: Path) -> None:
    obs = [
        o.model_copy(update={"stream": False, "ttft_ms": None, "sdk_ttft_ms": None})
        for o in synthetic_observations(SyntheticProfile(), arms=("chat", "responses"), repeats=6)
    ]
    s = analyze_table(ObservationTable.from_observations(obs), resamples=RESAMPLES)
    sc = s.scenarios[0]
    assert sc.arms["chat"].ttft_ms is None and sc.arms["chat"].cold_ttft_ms is None
    comp = sc.comparisons["responses_vs_chat"]
    assert comp.ttft_p50_ratio is None and comp.cold_total_ratio is not None
    assert comp.power is not None and comp.power.metric == "total_p50_ratio"
    assert sc.claims["first_request_slower"].metric == "responses_vs_chat.cold_total_ratio"
    assert json.loads(s.model_dump_json())["scenarios"][0]["arms"]["chat"]["ttft_ms"] is None


def test_first_output_is_summarised_and_compared_beside_ttft() -> None:
    # responses streams a reasoning summary first: its first output comes at 40 % of its TTFT
    share = {"chat": 1.0, "responses": 0.4}
    obs = [
        o.model_copy(update={"first_output_ms": o.ttft_ms * share[o.arm]}) if o.ttft_ms else o
        for o in synthetic_observations(
            SyntheticProfile(sigma=0.2), arms=("chat", "responses"), repeats=12, seed=3
        )
    ]
    s = analyze_table(ObservationTable.from_observations(obs), resamples=RESAMPLES)
    sc = s.scenarios[0]
    for arm in ("chat", "responses"):
        first = [o.first_output_ms for o in obs if o.arm == arm and o.ok and not o.warmup]
        stats_ = sc.arms[arm].first_output_ms
        assert stats_ is not None and stats_.n == len(first)
        assert stats_.p50 == pytest.approx(float(np.percentile(first, 50)))
        assert stats_.p95 == pytest.approx(float(np.percentile(first, 95)))
        assert stats_.ci95 is not None
    ttft = sc.arms["responses"].ttft_ms
    assert ttft is not None and stats_.p50 < 0.5 * ttft.p50
    comp = sc.comparisons["responses_vs_chat"]
    assert comp.ttft_p50_ratio is not None and comp.first_output_p50_ratio is not None
    assert comp.first_output_p50_ratio.value == pytest.approx(
        0.4 * (comp.ttft_p50_ratio.value or 0.0), rel=0.1
    )
    # a latency metric: decided by the latency margin
    assert comp.first_output_p50_ratio.decision == "better"
    assert comp.first_output_p50_ratio.margin == comp.ttft_p50_ratio.margin


# --- reading observations ---------------------------------------------------------------------


def test_fast_loader_agrees_with_the_typed_reader(run_dir: Path) -> None:
    path = run_dir / "observations.jsonl"
    fast = load_table(path)
    typed = ObservationTable.from_observations(read_observations(path))
    for name in ("ttft_ms", "total_ms", "input_tokens", "cached_tokens", "warmup", "cold"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(typed, name))
    assert fast.arm == typed.arm and fast.output_text == typed.output_text


def _jsonl(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "observations.jsonl"
    path.write_text(text)
    return path


def _line(**kw: Any) -> str:
    return (
        synthetic_observations(SyntheticProfile(), arms=("chat",), repeats=1, prompts=1, turns=1)[0]
        .model_copy(update=kw)
        .model_dump_json()
    )


def test_torn_final_line_is_skipped(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, _line() + "\n" + _line(repeat=1)[:40])
    assert len(load_table(path)) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"broken": \n{}\n', r"observations.jsonl:1: not valid JSON"),
        ("[1, 2]\n", r":1: not an observation"),
        ('{"schema_version": 99}\n', r":1: schema_version 99 is not supported"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        load_table(_jsonl(tmp_path, text))


def test_missing_files_are_harness_errors(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"no meta\.json"):
        analyze_run(tmp_path)
    with pytest.raises(HarnessError, match="cannot read summary"):
        read_summary(tmp_path)


# --- between runs -----------------------------------------------------------------------------


def _run(profile: SyntheticProfile, seed: int) -> ObservationTable:
    return ObservationTable.from_observations(
        synthetic_observations(profile, arms=("chat", "responses"), repeats=40, seed=seed)
    )


def test_compare_runs_flags_a_regression_between_independent_runs() -> None:
    base = _run(SyntheticProfile(sigma=0.2), seed=1)
    slower = _run(SyntheticProfile(sigma=0.2, ttft_ms=390.0), seed=2)  # +30 %
    same = _run(SyntheticProfile(sigma=0.2), seed=3)
    regressed = compare_runs(slower, base, resamples=RESAMPLES)
    assert regressed.intervals and regressed.bootstrap is not None
    for arm in ("chat", "responses"):
        ratio = regressed.scenarios["synthetic"][arm].ttft_p50_ratio
        assert ratio is not None and ratio.significant and (ratio.value or 0.0) > 1.15
    steady = compare_runs(same, base, resamples=RESAMPLES).scenarios["synthetic"]["chat"]
    assert steady.ttft_p50_ratio is not None and steady.ttft_p50_ratio.significant is False
    # pairs are conversations (3 prompts × 40 repeats) matched across runs, no longer the
    # smaller run's request count
    assert steady.ttft_p50_ratio.n_pairs == 120


def test_compare_runs_from_run_dirs_and_from_summaries(run_dir: Path) -> None:
    same = compare_runs(run_dir, run_dir, resamples=100).scenarios["synthetic"]["chat"]
    assert same.total_p50_ratio is not None and same.total_p50_ratio.value == 1.0
    summary = analyze_run(run_dir, resamples=100)
    points = compare_runs(summary, summary)
    assert not points.intervals
    chat = points.scenarios["synthetic"]["chat"]
    assert chat.ttft_p50_ratio is not None and chat.ttft_p50_ratio.value == 1.0
    assert chat.ttft_p50_ratio.ci95 is None and chat.ttft_p50_ratio.significant is None
    with pytest.raises(HarnessError):
        compare_runs(summary, run_dir)


# --- CLI --------------------------------------------------------------------------------------


def test_cli_analyze_writes_summary_and_prints_its_path(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(run_dir), "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == str(run_dir / "summary.json")
    assert "cold TTFT" in out and "first_request_slower" in out and "verdict" in out
    assert "not OpenAI" in out


def test_cli_analyze_quiet_and_price_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    obs = synthetic_observations(
        SyntheticProfile(model="acme-llm-9"), arms=("chat", "responses"), repeats=3
    )
    run = write_synthetic_run(tmp_path / "run", obs)
    assert main(["analyze", str(run), "--resamples", "50", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{run / 'summary.json'}\n"
    assert "no price known for model 'acme-llm-9'" in captured.err
    arm = json.loads((run / "summary.json").read_text())["scenarios"][0]["arms"]["chat"]
    assert arm["cost_usd"] is None
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  acme-llm-9: {input_mtok: 1.0, output_mtok: 2.0}\n")
    assert main(["analyze", str(run), "--resamples", "50", "--quiet", "--prices", str(prices)]) == 0
    data = json.loads((run / "summary.json").read_text())
    assert data["pricing"]["override_file"] == str(prices)
    # issue 16: an override without a cached price no longer means "no discount" silently
    (warning,) = data["warnings"]
    assert "has no cached_input_mtok" in warning and "no cache discount" in warning
    cost = data["scenarios"][0]["arms"]["chat"]["cost_usd"]
    assert cost["per_request_usd"]["value"] > 0


def test_cli_analyze_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and len(err.splitlines()) == 1


def test_an_empty_run_has_no_scenarios(tmp_path: Path) -> None:
    assert len(load_table(_jsonl(tmp_path, ""))) == 0
    assert analyze_table(ObservationTable.from_dicts([])).scenarios == []


def test_single_arm_run_has_no_comparisons_and_inconclusive_claims() -> None:
    obs = synthetic_observations(SyntheticProfile(), arms=("chat",), repeats=3)
    sc = analyze_table(ObservationTable.from_observations(obs), resamples=50).scenarios[0]
    assert sc.comparisons == {}
    assert {c.verdict for c in sc.claims.values()} == {"inconclusive"}


@pytest.mark.parametrize(("seed", "resamples"), [(-1, 100), (0, 0)])
def test_bad_bootstrap_settings_are_harness_errors(seed: int, resamples: int) -> None:
    with pytest.raises(HarnessError, match="bootstrap seed"):
        analyze_table(ObservationTable.from_dicts([]), seed=seed, resamples=resamples)


def test_redacted_shadow_pairs_use_the_similarity_stored_before_redaction() -> None:
    """Shadow runs drop reply text by default; the pair's score was computed before that."""
    obs = []
    for r, score in enumerate([0.6, 0.8, 0.7, 0.9]):
        for arm in ("chat", "responses"):
            obs.append(
                _structured(
                    arm,
                    r,
                    None,
                    origin="shadow",
                    similarity=score,
                    output_sha256="0" * 64,
                    output_chars=40,
                )
            )
    s = analyze_table(ObservationTable.from_observations(obs), resamples=RESAMPLES)
    text = s.scenarios[0].comparisons["responses_vs_chat"].similarity.text
    assert text is not None and text.n_pairs == 4
    assert text.mean == pytest.approx(0.75) and text.min == pytest.approx(0.6)


def test_schema_validity_comes_from_the_runs_own_scenario(tmp_path: Path) -> None:
    """analyze_run finds each prompt's output schema in the scenario file the run used."""
    from harness.runner.execute import RunOptions, run

    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "structured_extraction.yaml"
    result = run(
        [scenario],
        RunOptions(out=tmp_path, repeats=1, seed=3, progress=False, emulator_profile="zero"),
    )
    (s,) = analyze_run(result.run_dir, resamples=RESAMPLES).scenarios
    sim = s.comparisons["responses_vs_chat"].similarity.json_
    assert sim is not None and sim.n_pairs > 0
    # the emulator writes schema-valid JSON for strict schemas on both APIs
    assert sim.a_schema_valid_rate == 1.0 and sim.b_schema_valid_rate == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", "not a summary"),
        (f'{{"schema_version": {SUMMARY_SCHEMA_VERSION}}}', "re-run `harness analyze`"),
    ],
)
def test_bad_summary_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "summary.json").write_text(text, encoding="utf-8")
    with pytest.raises(HarnessError, match=message) as info:
        read_summary(tmp_path)
    assert "\n" not in str(info.value)


def test_not_sent_turns_are_not_errors_between_runs_either() -> None:
    """compare_runs (baselines, harness compare) drops not_sent rows like analyze does."""
    base = synthetic_observations(SyntheticProfile(), arms=("chat", "responses"), repeats=10)
    extra = [
        o.model_copy(
            update={
                "turn": o.turn + 10,
                "ok": False,
                "error_type": "not_sent",
                "attempts": [],
                "ttft_ms": None,
                "total_ms": None,
            }
        )
        for o in base
        if o.arm == "responses" and not o.warmup
    ]
    with_not_sent = ObservationTable.from_observations([*base, *extra])
    without = ObservationTable.from_observations(base)
    (scenario,) = analyze_table(with_not_sent, resamples=RESAMPLES).scenarios
    assert scenario.arms["responses"].errors == 0
    comparison = compare_runs(with_not_sent, without, resamples=RESAMPLES)
    (arms,) = comparison.scenarios.values()
    delta = arms["responses"].error_rate_delta
    assert delta is not None and delta.value == 0


@pytest.mark.parametrize("change", ["edited", "deleted"])
def test_a_scenario_file_changed_since_the_run_is_a_summary_warning(
    tmp_path: Path, change: str
) -> None:
    """Its schemas and margins cannot be trusted for this run: skipped, and the summary says so."""
    from harness.runner.execute import RunOptions, run

    source = Path(__file__).resolve().parents[2] / "scenarios" / "structured_extraction.yaml"
    shutil.copytree(source.parent / "schemas", tmp_path / "schemas")
    scenario = tmp_path / "structured_extraction.yaml"
    scenario.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    result = run(
        [scenario],
        RunOptions(
            out=tmp_path / "runs", repeats=1, seed=3, progress=False, emulator_profile="zero"
        ),
    )
    text = scenario.read_text(encoding="utf-8")
    edited = text.replace("You extract data from invoices.", "You extract invoice data.", 1)
    assert edited != text
    if change == "edited":
        scenario.write_text(edited, encoding="utf-8")
    else:
        scenario.unlink()

    summary = analyze_run(result.run_dir, resamples=RESAMPLES)

    (s,) = summary.scenarios
    said = "changed since the run" if change == "edited" else "no longer loads"
    [warning] = [w for w in summary.warnings if said in w]
    assert warning.startswith(f"scenario {s.name}:") and "margins" in warning
    sim = s.comparisons["responses_vs_chat"].similarity.json_
    assert sim is None or sim.a_schema_valid_rate is None  # the edited file's schemas: unused
