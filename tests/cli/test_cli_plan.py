"""harness plan: the dry-run table, JSON Lines, the power estimate and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.app import main
from harness.cli.plan import parse_effect, print_plan
from harness.errors import HarnessError

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"
HEAD = "version: 1\nname: t\nmodel: gpt-4.1-mini\n"

#: expected output, byte for byte (regenerate by running the command it is named after)
EXPECTED = Path(__file__).parent / "expected"


def test_plan_table_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(SCENARIOS / "quickstart.yaml"), "--repeats", "1"]) == 0
    # piped (not a terminal): the table is 120 columns wide, whatever the terminal's width
    expected = (EXPECTED / "plan_quickstart.txt").read_text(encoding="utf-8")
    assert capsys.readouterr().out == expected


def test_plan_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["plan", str(SCENARIOS / "quickstart.yaml"), "--repeats", "2", "--json", "--seed", "9"]
    )
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert len(records) == 2 * 2 * 3 * 2  # repeats × prompts × arms × turns
    required = {
        "scenario",
        "prompt_id",
        "arm",
        "api",
        "chained",
        "turn",
        "repeat",
        "conversation",
        "cold",
        "warmup",
        "kwargs",
    }
    assert all(required <= set(r) for r in records)
    assert {r["api"] for r in records} == {"chat", "responses"}
    chat = next(r for r in records if r["api"] == "chat")
    assert chat["kwargs"]["messages"][0]["content"].startswith(f"[run {chat['nonce']}] ")
    responses = next(r for r in records if r["api"] == "responses" and r["turn"] == 2)
    assert responses["kwargs"]["input"][1] == {
        "type": "message",
        "role": "assistant",
        "content": "<assistant reply of turn 1>",
    }
    assert [r["cold"] for r in records] == [r["turn"] == 1 for r in records]


def test_plan_table(capsys: pytest.CaptureFixture[str]) -> None:
    print_plan(SCENARIOS / "function_calling.yaml", repeats=2)
    out = capsys.readouterr().out
    assert "cacheable (≥1024)" in out and "Requests per arm" in out
    assert "tool results*" in out
    assert "responses_chained" in out
    assert "requests in total" in out


def test_plan_table_says_cacheable(capsys: pytest.CaptureFixture[str]) -> None:
    print_plan(SCENARIOS / "support_bot.yaml", repeats=1)
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "refund-annual" in line]
    assert len(rows) == 4 * 3 and all(line.rstrip(" │").endswith("yes") for line in rows)


def test_plan_of_invalid_scenario_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", str(REPO / "tests/fixtures/bad_scenarios/repeats_zero.yaml")])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.splitlines()) == 1 and ":4: repeats:" in captured.err


def test_plan_bad_repeats_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", str(SCENARIOS / "quickstart.yaml"), "--repeats", "0"])
    assert code == 2
    assert capsys.readouterr().err == "harness: error: repeats must be at least 1, got 0\n"


def test_plan_refuses_what_the_translator_rejects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import harness.translate.convert as translate
    from harness.errors import TranslationError

    def reject(*args: object, **kwargs: object) -> dict[str, object]:
        raise TranslationError("responses: x: cannot map; fix it")

    monkeypatch.setattr(translate, "to_responses_kwargs", reject)
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + "prompts:\n  - id: p\n    input: Hi\n")
    assert main(["plan", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"{path.as_posix()}:5: prompts[0]: responses: x: cannot map — fix it\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10%", 0.10), ("0.25", 0.25), (" 5% ", 0.05), ("10", 0.10), ("25", 0.25)],
)
def test_parse_effect(text: str, expected: float) -> None:

    assert parse_effect(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["abc", "0", "-5%", "2000%"])
def test_parse_effect_rejects(text: str) -> None:
    with pytest.raises(HarnessError, match="--power"):
        parse_effect(text)


def test_plan_power_matches_the_power_formula(capsys: pytest.CaptureFixture[str]) -> None:
    """quickstart: 2 prompts × 2 turns = 4 samples per arm per repeat; σ 0.4 (what parity runs
    of the emulator report, cold and warm pooled); +25 % against the ±10 % margin at the target
    power (issue 16: --target-power, default 80 %)."""
    from harness.analysis.stats import required_samples

    for flags, power in (([], 0.80), (["--target-power", "90%"], 0.90)):
        assert main(["plan", str(SCENARIOS / "quickstart.yaml"), "--power", "25%", *flags]) == 0
        need = required_samples(0.25, 0.4, power=power, margin=0.10)
        assert need is not None
        lines = capsys.readouterr().out.splitlines()[-5:]
        assert lines[0] == (
            "power: for a true 25 % slowdown of a p50 ratio to fail the gate (95 % interval "
            f"wholly above the +10 % margin) in {power * 100:.0f} % of runs (target power; "
            "α 0.05), assuming log-spread σ = 0.4 (the emulator's parity profile, measured):"
        )
        assert lines[1] == (
            "  TTFT/total p50 over all turns (4 samples per arm per repeat): "
            f"repeats ≥ {-(-need // 4)} (scenario has 5)"
        )
        assert lines[2] == f"  cold (turn 1) TTFT (2 per arm per repeat): repeats ≥ {-(-need // 2)}"
        assert lines[3].startswith("  against a one-run baseline (run-to-run spread 3 % assumed): ")


def test_plan_power_ten_means_ten_percent_and_says_why_it_cannot_be_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 16: `--power 10` said "must be above 0 % and below 1,000 %". 10 is 10 %, which the
    ±10 % margin can never show: one clear line saying so (exit 2)."""
    assert main(["plan", str(SCENARIOS / "quickstart.yaml"), "--power", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: --power 10 %: a true change of 10 % never puts")
    assert "±10 % latency margin" in err and "1,000" not in err
    assert main(["plan", str(SCENARIOS / "quickstart.yaml"), "--target-power", "90%"]) == 2
    assert "--target-power needs --power" in capsys.readouterr().err


def test_plan_says_what_the_translation_changed_and_sends_what_the_api_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # issue 17: "JSON" only in the system prompt, and metadata on a chat arm that does not store
    path = tmp_path / "s.yaml"
    path.write_text(
        HEAD + 'system: "Reply in JSON."\ndefaults: {metadata: {team: a}}\n'
        "prompts:\n  - id: p\n    input: Who won?\n    output: json_object\n"
    )
    assert main(["plan", str(path), "--json", "--repeats", "1"]) == 0
    captured = capsys.readouterr()
    kwargs = {r["api"]: r["kwargs"] for r in map(json.loads, captured.out.splitlines())}
    assert "instructions" not in kwargs["responses"]
    assert kwargs["responses"]["input"][0]["role"] == "system"
    assert "json" in kwargs["responses"]["input"][0]["content"].lower()
    assert "metadata" not in kwargs["chat"] and kwargs["chat"]["store"] is False
    assert kwargs["responses"]["metadata"] == {"team": "a"}
    notes = captured.err.splitlines()
    assert len(notes) == 2
    assert notes[0].startswith(f"{path.as_posix()}:7: prompts[0]: note: chat: metadata:")
    assert notes[1].startswith(f"{path.as_posix()}:7: prompts[0]: note: responses: text.format:")


def test_plan_sigma_from_a_previous_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--sigma-from RUN_DIR: the spread the run's summary reports, not the default."""
    from harness.analysis.analyze import (
        SyntheticProfile,
        analyze_run,
        synthetic_observations,
        write_synthetic_run,
    )

    obs = synthetic_observations(SyntheticProfile(sigma=0.6), repeats=10, run_id="prior")
    run_dir = write_synthetic_run(tmp_path / "prior", obs)
    sigmas = [
        c.power.sigma_log
        for c in analyze_run(run_dir).scenarios[0].comparisons.values()
        if c.power is not None and c.power.sigma_log is not None
    ]
    quickstart = str(SCENARIOS / "quickstart.yaml")
    assert main(["plan", quickstart, "--power", "25%", "--sigma-from", str(run_dir)]) == 0
    line = capsys.readouterr().out.splitlines()[-5]
    assert f"σ = {max(sigmas):g} (from run prior):" in line
    assert max(sigmas) > 0.5  # the run's own, far from the default 0.4


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--sigma", "0.3", "--sigma-from", "."], "--sigma and --sigma-from: give one"),
        (["--sigma-from", "no-such-run"], "no-such-run: no such run directory"),
        (["--sigma", "0"], "--sigma 0: must be above 0"),
    ],
)
def test_plan_sigma_errors_are_one_line(
    extra: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(SCENARIOS / "quickstart.yaml"), "--power", "25%", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err


def test_plan_claims_from_a_pilot_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--claims-from RUN_DIR: per claim, the repeats at which it would be supported were it true
    mid-range, scaled from the pilot's intervals; a higher target power asks for more."""
    from harness.analysis.analyze import (
        SyntheticProfile,
        analyze_run,
        synthetic_observations,
        write_synthetic_run,
    )
    from harness.analysis.decide import MIN_CONVERSATIONS
    from harness.analysis.stats import samples_to_fit

    truth = SyntheticProfile(responses_cold_ratio=2.45, responses_cache_advantage=0.6)
    obs = synthetic_observations(truth, prompts=2, repeats=5, run_id="pilot", scenario="quickstart")
    run_dir = write_synthetic_run(tmp_path / "pilot", obs)
    sc = analyze_run(run_dir).scenarios[0]
    comparison = sc.comparisons["responses_vs_chat"]
    quickstart = str(SCENARIOS / "quickstart.yaml")
    printed = {}
    for power in (0.8, 0.9):
        argv = ["plan", quickstart, "--claims-from", str(run_dir), "--target-power", f"{power:%}"]
        assert main(argv) == 0
        lines = capsys.readouterr().out.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("claims: "))
        assert f"supported in {power * 100:.0f} % of runs" in lines[start]
        # the plan worked out here from each claim's own interval and pilot size: ratios as
        # they are, a relative change as 1 + change, "cheaper" (open at 0) at its estimate; the
        # pilot's 10 conversations stratified by its 2 prompts; 2 conversations per repeat, and
        # never fewer repeats than a verdict needs
        need = {}
        for name, effect, shift in (
            ("first_request_slower", comparison.cold_ttft_ratio, 0.0),
            ("cache_utilization_better", comparison.cache_hit_improvement, 1.0),
            ("cost", comparison.cost_ratio, 0.0),
        ):
            claim = sc.claims[name]
            assert claim.ci95 is not None and claim.claimed_range is not None
            assert claim.value is not None and effect is not None and effect.n_pairs == 10
            samples = samples_to_fit(
                (claim.ci95[0] + shift, claim.ci95[1] + shift),
                effect.n_pairs,
                (claim.claimed_range[0] + shift, claim.claimed_range[1] + shift),
                claim.value + shift,
                strata=2,
                power=power,
            )
            assert samples is not None, name
            need[name] = max(-(-MIN_CONVERSATIONS // 2), -(-samples // 2))
        assert need["first_request_slower"] > 5  # 2–3× needs far more than 10 conversations
        assert lines[start + 1] == (
            f"  first_request_slower (2–3× slower): repeats ≥ {need['first_request_slower']} "
            "(scenario has 5)"
        )
        assert lines[start + 2] == (
            "  cache_utilization_better (+40–80 %): repeats ≥ "
            f"{need['cache_utilization_better']} (scenario has 5)"
        )
        assert lines[start + 3].startswith("  cost (< 0.98 ")
        assert lines[start + 3].endswith(
            f"repeats ≥ {need['cost']} (scenario has 5); taking this run's estimate as the truth"
        )
        assert lines[-1] == f"  all claims at once: repeats ≥ {max(need.values())}"
        printed[power] = need["first_request_slower"]
    assert printed[0.9] > printed[0.8]


def test_plan_claims_from_a_run_of_another_scenario_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.analysis.analyze import (
        SyntheticProfile,
        synthetic_observations,
        write_synthetic_run,
    )

    obs = synthetic_observations(SyntheticProfile(), prompts=2, repeats=5, scenario="other")
    run_dir = write_synthetic_run(tmp_path / "other", obs)
    assert main(["plan", str(SCENARIOS / "quickstart.yaml"), "--claims-from", str(run_dir)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # the error comes before the table
    assert captured.err.count("\n") == 1
    assert "holds no scenario 'quickstart' (it has other)" in captured.err


def test_a_claim_the_pilot_nearly_settles_still_plans_the_verdict_minimum(tmp_path: Path) -> None:
    """A claim whose interval is already narrow needs a handful of samples; the plan still asks
    for the repeats any verdict needs (10 conversations per arm: 5 repeats of 2 prompts)."""
    from harness.analysis.analyze import (
        SyntheticProfile,
        analyze_run,
        synthetic_observations,
        write_synthetic_run,
    )
    from harness.analysis.claims import repeats_to_support
    from harness.analysis.decide import MIN_CONVERSATIONS
    from harness.analysis.stats import samples_to_fit

    obs = synthetic_observations(SyntheticProfile(), prompts=2, repeats=5, scenario="quickstart")
    sc = analyze_run(write_synthetic_run(tmp_path / "pilot", obs)).scenarios[0]
    narrow = sc.claims["cost"].model_copy(update={"value": 0.805, "ci95": (0.80, 0.81)})
    samples = samples_to_fit((0.80, 0.81), 10, (0.0, 0.98), 0.805, strata=2)
    assert samples is not None and samples < MIN_CONVERSATIONS
    need = repeats_to_support({"cost": narrow}, sc.comparisons, 2)
    assert need == {"cost": MIN_CONVERSATIONS // 2}
