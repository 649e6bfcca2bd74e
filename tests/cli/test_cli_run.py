"""`harness run`'s terminal output: the end-of-run summary, and no wrapping or progress bar when
it is not a terminal (CI logs, pipes)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from harness.cli.app import main
from harness.cli.run import ProgressBar, finish_run
from harness.records import RunMeta
from harness.rundir import read_summary
from harness.runner.execute import RunResult
from harness.summary import ArmSummary


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=80), out


def test_no_progress_bar_when_output_is_not_a_terminal() -> None:
    console, out = _console()
    bar = ProgressBar(console)
    bar.start("emulator", 3)
    for _ in range(3):
        bar.advance(0)
    bar.stop()
    assert out.getvalue() == "", "its last frame landed after the end-of-run table"


def test_the_resume_hint_is_one_line_that_can_be_pasted(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "20261207-203703-a-scenario-with-a-rather-long-name-9976"
    run_dir.mkdir(parents=True)
    meta = RunMeta.model_construct(skipped={})
    console, out = _console()
    assert finish_run(RunResult(run_dir, meta, 0, 0, interrupted=True), console) == 130
    lines = out.getvalue().splitlines()
    assert f"observations: {run_dir / 'observations.jsonl'}" in lines
    assert (
        lines[-1]
        == f"interrupted after 0 request(s) — continue with: harness run --resume {run_dir}"
    )


# --- the end-of-run summary: one shape for streamed, non-streamed and mixed runs --------------

SCENARIO = """\
version: 1
name: {name}
model: gpt-4.1-mini
defaults: {{temperature: 0, max_output_tokens: 40, stream: {stream}}}
arms: [chat, responses]
repeats: 3
prompts:
  - id: hours
    turns: ["What are your support hours?", "And on weekends?"]
  - id: refund
    params: {{stream: false}}
    turns: ["Can I get a refund for a delayed train?"]
gates:
  responses_vs_chat.similarity_mean_min: 0.5
  chat.error_rate_max: 0.5
"""

#: a table row: the arm, then every cell on the same line (nothing wrapped)
_ROW = r"│ {arm} +│ +(\d+) │ +(\d+) │(.*)│ +([\d.]+ %) │ +(\$[\d.]+) │\n"


def _printed_figures(out: str, arm: str) -> list[float]:
    """The numbers of ``arm``'s row, left to right (a "p50 / p95" cell gives two)."""
    line = next(x for x in out.splitlines() if re.match(rf"│ {re.escape(arm)} +│", x))
    cells = [c.strip() for c in line.strip("│").split("│")[1:]]
    parts = [p for c in cells for p in c.split(" / ")]
    return [float(p.replace(",", "").removeprefix("$").removesuffix(" %")) for p in parts]


def _shown_figures(a: ArmSummary, columns: tuple[str, ...]) -> list[float]:
    """What ``arm``'s row must show, from the summary: each figure in its own column."""
    figures: list[float] = [a.requests, a.errors]
    for field in columns:
        stats = getattr(a, field)
        assert stats is not None, field
        figures += [stats.p50, stats.p95]
    assert a.cache_hit_ratio is not None and a.cache_hit_ratio.value is not None
    assert a.cost_usd is not None
    return [*figures, a.cache_hit_ratio.value * 100, a.cost_usd.per_1k_requests_usd]


def _assert_row_shows(out: str, arm: str, a: ArmSummary, columns: tuple[str, ...]) -> None:
    printed, shown = _printed_figures(out, arm), _shown_figures(a, columns)
    assert len(printed) == len(shown), (printed, shown)
    # latency and cached share to one decimal; cost to (at least) 2 significant digits
    for got, want in zip(printed[:-1], shown[:-1], strict=True):
        assert got == pytest.approx(want, abs=0.051), (arm, printed, shown)
    assert printed[-1] == pytest.approx(shown[-1], rel=0.03), (arm, printed, shown)


def _run_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *, stream: bool, name: str
) -> tuple[int, str, str, Path]:
    scenario = tmp_path / f"{name}.yaml"
    scenario.write_text(SCENARIO.format(name=name, stream=str(stream).lower()), encoding="utf-8")
    out = tmp_path / "runs"
    argv = ["run", str(scenario), "--emulator-profile", "zero", "--out", str(out), "--gate"]
    code = main(argv)
    captured = capsys.readouterr()
    (run_dir,) = out.iterdir()
    return code, captured.out, captured.err, run_dir


def _headline(run_dir: Path) -> str:
    """The verdict sentence of the run's own report (summary.md)."""
    md = (run_dir.parents[1] / "reports" / run_dir.name / "summary.md").read_text("utf-8")
    (line,) = [x for x in md.splitlines() if x.startswith("**Compared with ")]
    return line.strip("*")


def test_a_run_that_does_not_stream_shows_total_latency_cost_verdict_and_gates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, run_dir = _run_cli(tmp_path, capsys, stream=False, name="nostream")
    assert code == 0, out + err
    assert err == "", "no progress bar (or anything else) leaks when stderr is not a terminal"
    header = next(line for line in out.splitlines() if line.startswith("┃ arm"))
    assert "cold total p50/p95 ms" in header and "warm total p50/p95 ms" in header
    assert "TTFT" not in header
    for arm in ("chat", "responses"):
        row = re.search(_ROW.format(arm=arm), out)
        assert row is not None, out
        assert row[1] == "9" and row[2] == "0"
        cold, warm = (c.strip() for c in row[3].split("│"))
        assert re.fullmatch(r"[\d.]+ / [\d.]+", cold) and re.fullmatch(r"[\d.]+ / [\d.]+", warm)
        assert float(row[5].removeprefix("$")) > 0
    (sc,) = read_summary(run_dir).scenarios
    for arm in ("chat", "responses"):
        _assert_row_shows(out, arm, sc.arms[arm], ("cold_total_ms", "warm_total_ms"))
    assert f"verdict: {_headline(run_dir)}\n" in out
    assert "\ngates: PASSED — 2 checks: " in out
    assert out.rstrip("\n").splitlines()[-1].startswith("gates: PASSED")
    assert f"observations: {run_dir / 'observations.jsonl'}\n" in out
    summary = json.loads((run_dir / "summary.json").read_text("utf-8"))
    claim = summary["scenarios"][0]["claims"]["first_request_slower"]
    assert claim["metric"] == "responses_vs_chat.cold_total_ratio"


def test_a_mixed_run_shows_ttft_and_total_latency_and_judges_every_cold_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, run_dir = _run_cli(tmp_path, capsys, stream=True, name="mixed")
    assert code == 0, out + err
    header = next(line for line in out.splitlines() if line.startswith("┃ arm"))
    for column in ("cold TTFT", "warm TTFT", "cold total", "warm total"):
        assert f"{column} p50/p95 ms" in header
    for arm in ("chat", "responses"):
        row = re.search(_ROW.format(arm=arm), out)
        assert row is not None, out
        cells = [c.strip() for c in row[3].split("│")]
        assert len(cells) == 4
        assert all(re.fullmatch(r"[\d.]+ / [\d.]+", c) for c in cells), cells
    columns = ("cold_ttft_ms", "warm_ttft_ms", "cold_total_ms", "warm_total_ms")
    (summary_sc,) = read_summary(run_dir).scenarios
    for arm in ("chat", "responses"):
        _assert_row_shows(out, arm, summary_sc.arms[arm], columns)
    assert f"verdict: {_headline(run_dir)}\n" in out
    summary = json.loads((run_dir / "summary.json").read_text("utf-8"))
    (sc,) = summary["scenarios"]
    comparison = sc["comparisons"]["responses_vs_chat"]
    # 3 of 6 cold conversations streamed: the claim is judged on all six
    assert comparison["cold_ttft_ratio"]["n_pairs"] == 3
    assert comparison["cold_total_ratio"]["n_pairs"] == 6
    assert sc["claims"]["first_request_slower"]["metric"] == "responses_vs_chat.cold_total_ratio"


def test_a_streamed_run_shows_ttft_only_and_gate_status_only_when_gates_ran() -> None:
    from harness.analysis.analyze import SyntheticProfile, analyze_table, synthetic_observations
    from harness.analysis.metrics import ObservationTable
    from harness.cli.run_summary import print_run_summary

    # errors, a cold penalty and a cache advantage on Responses: every column differs by arm
    truth = SyntheticProfile(
        error_rate=0.15, responses_cold_ratio=2.0, responses_cache_advantage=0.5
    )
    obs = synthetic_observations(truth, arms=("chat", "responses"), repeats=4)
    summary = analyze_table(ObservationTable.from_observations(obs), resamples=100)
    console, out = _console()
    print_run_summary(console, summary)
    printed = out.getvalue()
    header = next(line for line in printed.splitlines() if line.startswith("┃ arm"))
    assert "cold TTFT p50/p95 ms" in header and "total" not in header
    (sc,) = summary.scenarios
    assert sc.arms["chat"].errors > 0 and sc.arms["chat"].errors != sc.arms["responses"].errors
    for arm in ("chat", "responses"):
        _assert_row_shows(printed, arm, sc.arms[arm], ("cold_ttft_ms", "warm_ttft_ms"))
    assert "verdict: Compared with Chat Completions, Responses " in printed
    assert "gates:" not in printed


def test_an_interrupted_run_shows_its_requests_so_far_then_the_resume_hint(
    quickstart_run: Path,
) -> None:
    from harness.rundir import read_meta

    before = sorted(p.name for p in quickstart_run.iterdir())
    console, out = _console()
    result = RunResult(quickstart_run, read_meta(quickstart_run), 5, 0, interrupted=True)
    assert finish_run(result, console) == 130
    printed = out.getvalue()
    assert "quickstart — emulator — not OpenAI — interrupted: requests so far" in printed
    assert re.search(_ROW.format(arm="responses"), printed)
    assert printed.splitlines()[-1] == (
        f"interrupted after 5 request(s) — continue with: harness run --resume {quickstart_run}"
    )
    assert sorted(p.name for p in quickstart_run.iterdir()) == before, "nothing is written"
