"""harness gate: thresholds and baseline regressions decided with CIs; exit codes; CI output.

The first part is pure (decision rule, keys, reports on synthetic summaries). The second runs
the emulator: two independent parity runs pass against each other, a 5 % TTFT regression passes
the default 10 % tolerance, a ``regressed`` (25 %) run fails against a parity baseline, and a
missing baseline exits 2 — the five runs as concurrent subprocesses, the commands on them
in-process, asserting exit codes and output.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pytest

from harness.analysis.analyze import (
    SyntheticProfile,
    analyze_table,
    compare_runs,
    synthetic_observations,
    write_synthetic_run,
)
from harness.analysis.metrics import ObservationTable
from harness.cli.app import main
from harness.cli.gate import format_report
from harness.errors import HarnessError
from harness.gates.baseline import from_run
from harness.gates.config import GateConfig, load_gates_file, parse_gate
from harness.gates.evaluate import GateReport, decide, evaluate, gate_run, wilson_interval
from harness.gates.output import explain, github_annotations, publish, step_summary
from harness.records import Observation
from harness.summary import Summary

# --- the decision rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ci", "bound", "status"),
    [
        (1.8, (1.6, 2.0), "max", "fail"),  # whole interval above 1.5
        (1.2, (1.1, 1.3), "max", "pass"),  # whole interval below
        (1.45, (1.3, 1.6), "max", "inconclusive"),  # straddles: point below
        (1.55, (1.4, 1.7), "max", "inconclusive"),  # straddles: point above — not significant
        (1.5, (1.4, 1.5), "max", "pass"),  # at the threshold is allowed
        (1.6, None, "max", "fail"),  # no interval: the point decides
        (1.4, None, "max", "pass"),
        (1.2, (1.1, 1.3), "min", "fail"),  # mirror for _min
        (1.8, (1.6, 2.0), "min", "pass"),
        (1.55, (1.4, 1.7), "min", "inconclusive"),
        (1.4, None, "min", "fail"),
    ],
)
def test_decide(value: float, ci: tuple[float, float] | None, bound: str, status: str) -> None:
    got, rule = decide(value, ci, bound, 1.5)  # type: ignore[arg-type]
    assert got == status
    assert rule


def test_wilson_interval_is_sound_at_zero() -> None:
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.15 < hi < 0.17  # 0 of 20 does not prove a rate below 5 %
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.404, abs=1e-3) and hi == pytest.approx(0.596, abs=1e-3)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("ttft", 1.0, "is not <arm>_vs_<arm>"),
        ("responses_vs_chat.ttft_median_ratio_max", 1.0, "unknown metric 'ttft_median_ratio'"),
        ("chat.cost_ratio_max", 1.0, "written <arm>_vs_<arm>.cost_ratio_max"),
        ("responses_vs_chat.error_rate_max", 0.1, "written <arm>.error_rate_max"),
        ("responses.regression_pct_min", 5, "regression_pct_max"),
        ("responses.regression_pct_max", -1, "tolerance ≥ 0"),
        ("responses_vs_chat.ttft_p50_ratio_max", 0, "above 0"),
        ("responses_vs_chat.ttft_p50_ratio_max", "soon", "must be a number"),
    ],
)
def test_parse_gate_rejects(key: str, value: float, words: str) -> None:
    with pytest.raises(HarnessError, match=words):
        parse_gate(key, value, "gates.yaml")


def test_parse_gate() -> None:
    g = parse_gate("chat#2_vs_chat.similarity_mean_min", 0.9, "x.yaml", 7)
    assert (g.arms, g.metric, g.bound, g.threshold, g.line) == (
        ("chat#2", "chat"),
        "similarity_mean",
        "min",
        0.9,
        7,
    )


def test_gates_file(tmp_path: Path) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(
        "version: 1\nregression_pct: 5\ngates:\n  chat.error_rate_max: 0.05\n"
        "  responses_vs_chat.ttft_p50_ratio_max: 1.5\n"
        "scenarios:\n  synthetic:\n    responses_vs_chat.ttft_p50_ratio_max: 2\n",
        encoding="utf-8",
    )
    config = load_gates_file(path)
    assert config.regression_pct == 5
    got = {g.key: g.threshold for g in config.for_scenario("synthetic")}
    assert got == {"chat.error_rate_max": 0.05, "responses_vs_chat.ttft_p50_ratio_max": 2.0}
    assert {g.key: g.threshold for g in config.for_scenario("other")}[
        "responses_vs_chat.ttft_p50_ratio_max"
    ] == 1.5


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("gates: [1]", "gates: Input should be a valid dictionary"),
        ("gate: {}", "gate: Extra inputs"),
        ("gates: {ttft: 1}", "is not <arm>_vs_<arm>"),
        ("version: 2", "version"),
    ],
)
def test_bad_gates_file(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HarnessError, match=words):
        load_gates_file(path)


# --- evaluation on synthetic runs ---------------------------------------------------------------


def _summary(
    profile: SyntheticProfile, *, seed: int = 0, run_id: str = "r", repeats: int = 30
) -> tuple[Summary, ObservationTable]:
    obs = synthetic_observations(profile, repeats=repeats, seed=seed, run_id=run_id)
    table = ObservationTable.from_observations(obs)
    return analyze_table(table, resamples=500), table


def _config(**gates: float) -> GateConfig:
    return GateConfig(for_all=[parse_gate(k, v, "gates.yaml", 3) for k, v in gates.items()])


def test_cost_and_cache_gates_on_shadow_pairs_fail_as_not_assessable() -> None:
    obs = synthetic_observations(SyntheticProfile(), repeats=10)
    table = ObservationTable.from_observations(obs)
    summary = analyze_table(table, resamples=200, contaminated_cache={"synthetic"})
    gates = {
        "responses_vs_chat.cost_ratio_max": 1.0,
        "responses_vs_chat.cache_hit_ratio_delta_min": 0,
    }
    report = evaluate(summary, _config(**gates))
    assert {r.key: r.status for r in report.results} == dict.fromkeys(gates, "unknown")
    assert all("not assessable on shadow traffic" in r.rule for r in report.results)
    assert report.exit_code == 1


def test_too_few_samples_never_decide_a_gate_on_the_point_value() -> None:
    """3 prompts × 2 repeats = 6 conversations: a 2× slowdown is not failed, nor passed."""
    summary, _ = _summary(SyntheticProfile(responses_ttft_factor=2.0), repeats=2)
    report = evaluate(summary, _config(**{"responses_vs_chat.ttft_p50_ratio_max": 1.5}))
    (result,) = report.results
    assert result.status == "inconclusive" and result.ci95 is None
    assert result.rule.startswith("too few samples (n = 6): run ≥ 4 repeats")
    assert report.exit_code == 0


def test_threshold_gates_fail_pass_and_explain() -> None:
    summary, _ = _summary(
        SyntheticProfile(responses_ttft_factor=2.0, responses_cold_ratio=2.0, divergence=0.5)
    )
    report = evaluate(
        summary,
        _config(
            **{
                "responses_vs_chat.ttft_p50_ratio_max": 1.5,
                "chat.error_rate_max": 0.5,
                "responses_vs_chat.similarity_mean_min": 0.9,
                "chat_vs_responses.ttft_p50_ratio_max": 1.0,
            }
        ),
    )
    status = {r.key: r.status for r in report.results}
    assert status == {
        "responses_vs_chat.ttft_p50_ratio_max": "fail",
        "chat.error_rate_max": "pass",
        "responses_vs_chat.similarity_mean_min": "fail",
        # written the other way round: read as the inverted comparison
        "chat_vs_responses.ttft_p50_ratio_max": "pass",
    }
    assert report.exit_code == 1
    ttft = next(r for r in report.results if r.key == "responses_vs_chat.ttft_p50_ratio_max")
    lines = explain(ttft)
    assert lines[0] == "FAIL synthetic: responses_vs_chat.ttft_p50_ratio_max ≤ 1.5"
    # the report's spelling of an effect (harness.fmt), significance mark included
    assert lines[1] == "    measured: 2.02× (1.88–2.17) *"
    assert lines[2] == "    responses p50 738 ms (n=180) vs chat 365 ms (n=180); 90 conversations"
    assert "whole 95 % interval is above 1.5" in lines[3]
    assert lines[4] == "    set in: gates.yaml:3"
    assert len(lines) <= 6  # one screen per failing gate
    inverted = next(r for r in report.results if r.key.startswith("chat_vs"))
    assert inverted.value is not None and inverted.value < 0.7
    text = format_report(report)
    assert text.splitlines()[-1].startswith("FAILED: 2 gate(s) failed")
    assert text.splitlines()[2] == (
        "PASS         synthetic: chat.error_rate_max                    0.0 % (0.0–2.1 %)  ≤ 50 %"
    )
    sim = next(r for r in report.results if r.key.endswith("similarity_mean_min"))
    assert sim.measured == "0.50 (mean over pairs, no interval)" and sim.limit() == "≥ 0.9"
    assert "decided on the point value" in text  # similarity has no interval


def test_unknown_values_fail_configured_gates() -> None:
    summary, _ = _summary(SyntheticProfile(model="no-such-model-priced"))
    report = evaluate(
        summary,
        _config(
            **{"responses_vs_chat.cost_ratio_max": 1.0, "responses_chained.error_rate_max": 0.1}
        ),
    )
    by_key = {r.key: r for r in report.results}
    cost = by_key["responses_vs_chat.cost_ratio_max"]
    assert cost.status == "unknown" and cost.failed
    assert "cost unknown: no price for no-such-model-priced" in cost.rule
    assert "not in the run" in by_key["responses_chained.error_rate_max"].rule
    assert report.exit_code == 1


def test_no_gates_is_a_warning_not_a_silent_pass() -> None:
    summary, _ = _summary(SyntheticProfile())
    report = evaluate(summary, GateConfig())
    assert report.exit_code == 0 and not report.results
    text = format_report(report)
    assert "nothing was checked" in text
    assert text.endswith("\nNOTHING CHECKED — no gates defined (exit 0)")


def test_regression_rule_on_synthetic_runs(tmp_path: Path) -> None:
    base_dir = write_synthetic_run(
        tmp_path / "base",
        synthetic_observations(SyntheticProfile(), repeats=40, seed=1, run_id="base"),
    )
    baseline = from_run(base_dir, "main")

    def gate(profile: SyntheticProfile, seed: int, **config: float) -> GateReport:
        summary, table = _summary(profile, seed=seed, run_id=f"c{seed}", repeats=40)
        comparison = compare_runs(table, baseline.samples.table(), resamples=500)
        return evaluate(summary, _config(**config), baseline=baseline, comparison=comparison)

    same = gate(SyntheticProfile(), 2)
    assert same.exit_code == 0 and {r.status for r in same.results} <= {"pass", "inconclusive"}
    # chat, responses, chat#2 × ttft, total, cost, cache, error rate
    assert len(same.results) == 3 * 5
    slow = gate(SyntheticProfile(responses_ttft_factor=1.6, responses_cold_ratio=1.6), 3)
    failed = {r.name for r in slow.failed}
    assert "responses.regression_pct_max (ttft_p50)" in failed
    assert not any(n.startswith("chat") for n in failed)
    first = next(r for r in slow.failed if r.name.endswith("(ttft_p50)"))
    assert first.source == "default" and first.value is not None and first.value > 10
    assert "whole 95 % interval is above +10 %" in first.rule
    assert "harness baseline save RUN_DIR --name main" in (first.fix or "")
    # a configured tolerance wins over the default for that arm only
    tolerant = gate(
        SyntheticProfile(responses_ttft_factor=1.6, responses_cold_ratio=1.6),
        3,
        **{"responses.regression_pct_max": 200},
    )
    assert tolerant.exit_code == 0
    assert any(r.source == "gates.yaml" for r in tolerant.results)
    # cache hits: relative drop beyond the tolerance fails (direction: down is worse)
    cache = gate(SyntheticProfile(chat_cache_fraction=0.2), 4)
    assert "chat.regression_pct_max (cache_hit_ratio)" in {r.name for r in cache.failed}


def test_regression_gate_without_baseline_is_skipped_with_a_warning() -> None:
    summary, _ = _summary(SyntheticProfile())
    report = evaluate(summary, _config(**{"responses.regression_pct_max": 10}))
    (r,) = report.results
    assert r.status == "skipped" and report.exit_code == 0
    assert (
        "warning: synthetic: responses.regression_pct_max skipped: no --baseline"
        in format_report(report)
    )


def test_github_output(tmp_path: Path) -> None:
    summary, _ = _summary(SyntheticProfile(responses_ttft_factor=2.0, responses_cold_ratio=2.0))
    report = evaluate(
        summary,
        _config(**{"responses_vs_chat.ttft_p50_ratio_max": 1.5, "chat.error_rate_max": 0.01}),
    )
    (line, *rest) = github_annotations(report)
    assert line.startswith(
        "::error file=gates.yaml,line=3,title=Shadow gate fail%3A synthetic "
        "responses_vs_chat.ttft_p50_ratio_max::measured: "
    )
    assert "\n" not in line and "%0A" in line
    assert rest and rest[0].startswith("::warning ")  # 0 of n errors vs 1 %: inconclusive
    md = step_summary(report)
    assert md.startswith("### Shadow Harness gates: ❌ 1 gate(s) failed")
    assert "| FAIL | synthetic | `responses_vs_chat.ttft_p50_ratio_max` |" in md
    out = tmp_path / "out.txt"
    summary_file = tmp_path / "summary.md"
    with out.open("w", encoding="utf-8") as fh:
        junit = publish(
            report,
            reports_dir=tmp_path / "reports",
            stream=fh,
            env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary_file)},
        )
    assert out.read_text(encoding="utf-8").startswith("::error ")
    assert summary_file.read_text(encoding="utf-8") == md
    assert junit == tmp_path / "reports" / "r" / "junit.xml"
    suite = ET.parse(junit).getroot().find("testsuite[@name='harness gates']")
    assert suite is not None
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    # appending again replaces the cases rather than duplicating them
    publish(report, reports_dir=tmp_path / "reports", env={})
    suite = ET.parse(junit).getroot().find("testsuite[@name='harness gates']")
    assert suite is not None and suite.get("tests") == "2"


def test_gate_run_reads_scenario_gates_and_needs_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = write_synthetic_run(
        tmp_path / "run", synthetic_observations(SyntheticProfile(), repeats=5, run_id="run")
    )
    meta = json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))
    meta["scenarios"] = [{"name": "synthetic", "path": str(tmp_path / "gone.yaml")}]
    (run_dir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(HarnessError, match=r"gone\.yaml .*not found .*--config"):
        gate_run(run_dir)
    monkeypatch.chdir(tmp_path)
    assert main(["gate", str(run_dir), "--baseline", "nope"]) == 2  # baseline first


# --- the emulator, end to end (subprocesses) ---------------------------------------------------

SCENARIO = """\
version: 1
name: gatecheck
model: gpt-4.1-mini
defaults: {temperature: 0, max_output_tokens: 16}
arms: [chat, responses]
repeats: 1
system: You answer questions about train tickets.
prompts:
  - id: offpeak
    input: "Explain in detail: is an off-peak ticket valid at 08:15 on a weekday?"
  - id: refund
    input: "Explain in detail: can I get money back for a 47 minute delay?"
"""
# Parity with little noise, for the 5 % test: with parity's lognormal noise a 5 % change cannot
# be told from 10 % at an affordable sample size, so both runs of that pair use this profile and
# the candidate adds a 5 % slowdown; the test then checks the tolerance, not a noise accident.
CALM = """\
extends: parity
name: calm
both:
  queue_ms: 2
  ttft_ms: {median: 250, sigma: 0.03}
  cold_penalty_ms: {median: 150, sigma: 0.03}
  per_token_ms: {median: 12, sigma: 0.03}
"""
HARNESS = [sys.executable, "-m", "harness"]
# Why the scenario looks like this: independent runs need different emulator seeds (the seed
# drives the latency draws), but the seed also picks reply lengths, which would make cost and
# total time differ between runs for reasons that are not noise. "In detail" replies are cut at
# max_output_tokens (16), so every reply has the same length whatever the seed. Single-turn
# prompts make every request cold (one mode, so the median is stable); 240 requests per arm
# give the parity runs a between-run p50 ratio with a standard error of about 3 %. Seeds are
# fixed, so each test sees the same draws and only machine noise varies (about ±1 % here). That
# these seeds are not lucky was checked with a sweep at these settings: 28 pairs of parity runs
# (seeds 11–18) all passed, the largest point regression 7.3 %; 32 regressed-vs-parity pairs all
# failed, the smallest Responses regression 22.3 %.
PARITY_REPEATS, CALM_REPEATS, TIME_SCALE = 120, 30, 1.0


@dataclass
class _Done:
    returncode: int
    stdout: str
    stderr: str


_Cli: TypeAlias = Callable[..., _Done]


@pytest.fixture
def harness_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> _Cli:
    """``harness ARGS`` in this process, from ``cwd`` with ``env`` added: status and output.

    In-process saves an interpreter start per command; an exception escaping ``main`` (what
    would be a traceback) fails the test.
    """

    def call(*args: str, cwd: Path, env: dict[str, str] | None = None) -> _Done:
        with monkeypatch.context() as patch:
            patch.chdir(cwd)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            capsys.readouterr()
            code = main(list(args))
            out, err = capsys.readouterr()
        return _Done(code, out, err)

    return call


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Five runs, started together so machine load hits baseline and candidate alike."""
    root = tmp_path_factory.mktemp("gate-runs")
    (root / "gatecheck.yaml").write_text(SCENARIO, encoding="utf-8")
    (root / "calm.yaml").write_text(CALM, encoding="utf-8")
    (root / "calm5.yaml").write_text(
        CALM.replace("name: calm", "name: calm5") + "responses: {speed_factor: 1.05}\n",
        encoding="utf-8",
    )
    plan = {  # name: (profile, seed, repeats, concurrency)
        "base": ("parity", 1, PARITY_REPEATS, 16),
        "aa": ("parity", 2, PARITY_REPEATS, 16),
        "regressed": ("regressed", 3, PARITY_REPEATS, 16),
        "calm": ("calm.yaml", 4, CALM_REPEATS, 8),
        "calm5": ("calm5.yaml", 5, CALM_REPEATS, 8),
    }
    procs = {
        name: subprocess.Popen(
            [
                *HARNESS,
                "run",
                "gatecheck.yaml",
                "--quiet",
                "--client",
                "raw",
                "--out",
                f"runs/{name}",
                "--emulator-profile",
                profile,
                "--seed",
                str(seed),
                "--emulator-seed",
                str(seed),
                "--repeats",
                str(repeats),
                "--concurrency",
                str(conc),
                "--emulator-time-scale",
                str(TIME_SCALE),
            ],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (profile, seed, repeats, conc) in plan.items()
    }
    out = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}: {err}"
        (run_dir,) = (root / "runs" / name).iterdir()
        out[name] = run_dir
    return out


@pytest.mark.slow
def test_two_parity_runs_pass_against_each_other(runs: dict[str, Path], harness_cli: _Cli) -> None:
    root = runs["base"].parents[2]
    done = harness_cli("gate", str(runs["aa"]), "--baseline", str(runs["base"]), cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"gate {runs['aa']} — emulator")
    assert f"vs baseline run {runs['base'].name}" in lines[0] and "tolerance +10 %" in lines[0]
    rows = [ln.split() for ln in lines[1:11]]
    status = {f"{r[2]} {r[3]}": r[0] for r in rows}
    # 2 arms × TTFT p50, total p50, cost, cache-hit ratio (skipped: cold prompts cache nothing),
    # error rate. Latency against a one-run baseline allows for an assumed run-to-run spread,
    # so an A/A latency check may be INCONCLUSIVE (a warning, exit 0) but never FAIL; cost and
    # errors of two identical runs pair exactly.
    for arm in ("chat", "responses"):
        key = f"{arm}.regression_pct_max"
        assert status[f"{key} (ttft_p50)"] in ("PASS", "INCONCLUSIVE"), done.stdout
        assert status[f"{key} (total_p50)"] in ("PASS", "INCONCLUSIVE"), done.stdout
        assert status[f"{key} (cost)"] == "PASS", done.stdout
        assert status[f"{key} (cache_hit_ratio)"] == "SKIPPED", done.stdout
        assert status[f"{key} (error_rate)"] == "PASS", done.stdout
    assert (
        "warning: gatecheck: not compared with the baseline, which has no value for: "
        "chat (cache_hit_ratio), responses (cache_hit_ratio)"
    ) in done.stdout
    assert "holds one run, so the run-to-run spread is assumed (3 % for latency" in done.stdout
    assert lines[-2].startswith("PASSED — 10 checks: ")
    assert lines[-1].startswith("junit: ")
    # appended to the junit.xml of the run's own report (reports/ beside the runs directory)
    junit = runs["aa"].parents[1] / "reports" / runs["aa"].name / "junit.xml"
    names = {s.get("name") for s in ET.parse(junit).getroot()}
    assert names == {"harness.comparisons", "harness gates"}


@pytest.mark.slow
def test_five_percent_regression_passes_the_default_gate(
    runs: dict[str, Path], harness_cli: _Cli
) -> None:
    root = runs["base"].parents[2]
    saved = harness_cli("baseline", "save", str(runs["calm"]), "--name", "calm", cwd=root)
    assert saved.returncode == 0 and saved.stdout.strip() == "baselines/calm.json"
    done = harness_cli("gate", str(runs["calm5"]), "--baseline", "calm", "--json", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    report = GateReport.model_validate_json(done.stdout)
    assert report.baseline and report.baseline.startswith("'calm'")
    ttft = next(r for r in report.results if r.name == "responses.regression_pct_max (ttft_p50)")
    # about +5 % (measured): never a failure; against a one-run baseline (assumed run spread)
    # the interval may reach past +10 %, which is a warning, not a failure
    assert ttft.status in ("pass", "inconclusive") and ttft.value is not None
    assert 1 < ttft.value < 10
    assert all(r.status != "fail" for r in report.results)


@pytest.mark.slow
def test_regressed_run_fails_against_parity_baseline(
    runs: dict[str, Path], tmp_path: Path, harness_cli: _Cli
) -> None:
    root = runs["base"].parents[2]
    summary_file = tmp_path / "step-summary.md"
    done = harness_cli(
        "gate",
        str(runs["regressed"]),
        "--baseline",
        str(runs["base"]),
        cwd=root,
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary_file)},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    failed = [ln for ln in lines if ln.startswith("FAIL ")]
    assert failed and all("responses.regression_pct_max" in ln for ln in failed)
    assert any("(ttft_p50)" in ln for ln in failed)
    assert not any(ln.startswith("FAIL") and "chat." in ln for ln in lines)
    explanation = lines[
        lines.index(
            next(
                ln
                for ln in lines
                if ln.startswith("FAIL responses") or ln.startswith("FAIL gatecheck")
            )
        ) :
    ]
    assert explanation[1].startswith("    measured: +")
    assert "now vs" in explanation[2] and f"in baseline run {runs['base'].name}" in explanation[2]
    assert "the whole 95 % interval is above +10 %" in explanation[3]
    assert any(ln.startswith("FAILED: ") for ln in lines)
    annotations = [ln for ln in lines if ln.startswith("::error title=Shadow gate fail%3A")]
    assert annotations, done.stdout
    assert "❌" in summary_file.read_text(encoding="utf-8")
    junit = runs["regressed"].parents[1] / "reports" / runs["regressed"].name / "junit.xml"
    suite = ET.parse(junit).getroot().find("testsuite[@name='harness gates']")
    assert suite is not None and int(suite.get("failures", "0")) >= 1


@pytest.mark.slow
def test_missing_baseline_exits_2(runs: dict[str, Path], harness_cli: _Cli) -> None:
    root = runs["base"].parents[2]
    done = harness_cli("gate", str(runs["aa"]), "--baseline", "nightly", cwd=root)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().startswith(
        "harness: error: baseline 'nightly' not found: no baselines/nightly.json"
    )
    before = set((root / "runs").iterdir())
    run = harness_cli(
        "run",
        "gatecheck.yaml",
        "--gate",
        "--baseline",
        "nightly",
        "--quiet",
        "--emulator-profile",
        "zero",
        cwd=root,
    )
    assert run.returncode == 2 and "baseline 'nightly' not found" in run.stderr
    assert set((root / "runs").iterdir()) == before  # refused before anything ran


def test_run_with_gate(tmp_path: Path, harness_cli: _Cli) -> None:
    """``harness run --gate`` runs, analyses and applies the scenario's gates in one command."""
    (tmp_path / "s.yaml").write_text(
        SCENARIO.replace("repeats: 1", "repeats: 3")
        + "gates:\n  responses_vs_chat.similarity_mean_min: 0.9\n  chat.error_rate_max: 0.5\n",
        encoding="utf-8",
    )
    (tmp_path / "diverge.yaml").write_text("extends: zero\ndivergence: 0.5\n", encoding="utf-8")
    bad = harness_cli(
        "run",
        "s.yaml",
        "--gate",
        "--quiet",
        "--emulator-profile",
        "diverge.yaml",
        "--seed",
        "1",
        cwd=tmp_path,
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL gatecheck: responses_vs_chat.similarity_mean_min ≥ 0.9\n" in bad.stdout
    assert f"set in: {tmp_path / 's.yaml'}:" in bad.stdout or "set in: s.yaml:" in bad.stdout
    good = harness_cli(
        "run",
        "s.yaml",
        "--gate",
        "--quiet",
        "--emulator-profile",
        "zero",
        "--seed",
        "1",
        cwd=tmp_path,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASSED" in good.stdout
    (run_dir,) = [
        p
        for p in (tmp_path / "runs").iterdir()
        if (p / "summary.json").is_file() and p.name not in bad.stdout
    ]
    assert (tmp_path / "reports" / run_dir.name / "junit.xml").is_file()


def test_gates_for_a_scenario_the_run_lacks_are_unknown_and_fail() -> None:
    summary, _ = _summary(SyntheticProfile())
    config = GateConfig(
        by_scenario={
            "typo": [parse_gate("responses_vs_chat.ttft_p50_ratio_max", 1.5, "gates.yaml", 3)]
        }
    )
    report = evaluate(summary, config)
    (result,) = report.results
    assert result.status == "unknown" and result.scenario == "typo"
    assert "not in this run" in result.rule
    assert report.exit_code == 1


# --- issue 16: gates that catch failures ------------------------------------------------------


def _failed_responses(profile: SyntheticProfile, seed: int, run_id: str) -> list[Observation]:
    """A run whose responses arm failed every request (HTTP 500), chat untouched."""
    out = []
    for o in synthetic_observations(profile, arms=("chat", "responses"), repeats=20, seed=seed):
        o = o.model_copy(update={"run_id": run_id})
        if o.arm == "responses":
            o = Observation(
                **o.model_dump(
                    include={
                        "run_id",
                        "scenario",
                        "prompt_id",
                        "arm",
                        "api",
                        "turn",
                        "repeat",
                        "conversation",
                        "cold",
                        "warmup",
                        "model",
                        "stream",
                        "order",
                        "started_at",
                    }
                ),
                status=500,
                ok=False,
                error_type="server_error",
                finish="error",
            )
        out.append(o)
    return out


def test_an_arm_that_fails_every_request_fails_the_baseline_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16: a candidate whose responses arm failed 40/40 gave "PASSED — 4 skipped", exit 0.
    Now the error rate is a default check, and every value the baseline has and the run lacks
    fails with its reason (not "not streamed" / "no price")."""
    profile = SyntheticProfile()
    base = write_synthetic_run(
        tmp_path / "runs" / "base",
        [
            o.model_copy(update={"run_id": "base"})
            for o in synthetic_observations(profile, arms=("chat", "responses"), repeats=20)
        ],
        emulator_profile="parity",
    )
    cand = write_synthetic_run(
        tmp_path / "runs" / "cand", _failed_responses(profile, 1, "cand"), emulator_profile="parity"
    )
    code = main(["gate", str(cand), "--baseline", str(base), "--reports", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 1, out
    fails = [ln for ln in out.splitlines() if ln.startswith("FAIL ")]
    assert {ln.split()[2] + " " + ln.split()[3] for ln in fails} == {
        f"responses.regression_pct_max ({m})"
        for m in ("ttft_p50", "total_p50", "cost", "cache_hit_ratio", "error_rate")
    }, out
    assert "every request of responses failed (120 of 120 failed: server_error 120)" in out
    assert "+100.0 pts" in out  # the error rate rose by 100 points, interval and all
    assert "not streamed" not in out and "no price" not in out
    assert "stream: false" not in out
    assert not any(" chat." in ln for ln in fails)
    assert out.splitlines()[-2].startswith("FAILED: 5 gate(s) failed")


def test_wilson_interval_is_exact_at_the_edges() -> None:
    """0 of n must give a lower bound of exactly 0 (it was ~1e-17, so ``error_rate_max: 0``
    failed a run without a single error as "wholly above 0")."""
    for n in (1, 6, 40, 1000):
        assert wilson_interval(0, n)[0] == 0.0
        assert wilson_interval(n, n)[1] == 1.0
    assert decide(0.0, wilson_interval(0, 6), "max", 0.0)[0] == "inconclusive"


def test_threshold_gates_on_an_arm_that_failed_everything_say_so() -> None:
    """Issue 16: an arm where everything failed was described as "not streamed" / "no price"."""
    obs = [
        o
        if o.arm == "chat"
        else Observation(
            **o.model_dump(
                include={
                    "run_id",
                    "scenario",
                    "prompt_id",
                    "arm",
                    "api",
                    "turn",
                    "repeat",
                    "conversation",
                    "cold",
                    "warmup",
                    "model",
                    "stream",
                    "order",
                    "started_at",
                }
            ),
            status=503,
            ok=False,
            error_type="server_error",
            finish="error",
        )
        for o in synthetic_observations(SyntheticProfile(), arms=("chat", "responses"), repeats=5)
    ]
    summary = analyze_table(ObservationTable.from_observations(obs), resamples=200)
    report = evaluate(
        summary,
        _config(
            **{
                "responses_vs_chat.ttft_p50_ratio_max": 1.2,
                "responses_vs_chat.cost_ratio_max": 1.1,
                "responses.ttft_p95_ms_max": 900,
            }
        ),
    )
    assert report.exit_code == 1 and len(report.failed) == 3
    for r in report.results:
        assert "every request of an arm failed (30 of 30 failed: server_error 30)" in r.rule, r
        assert "stream" not in r.rule and "no price" not in r.rule
