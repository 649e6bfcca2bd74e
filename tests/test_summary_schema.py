"""summary.json's schema version: a file of an older schema is never re-decided as if new."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analysis.analyze import (
    SyntheticProfile,
    analyze_run,
    synthetic_observations,
    write_synthetic_run,
)
from harness.cli.app import main
from harness.errors import HarnessError, StaleSummaryError
from harness.gates.config import GateConfig, parse_gate
from harness.gates.evaluate import gate_run
from harness.report import render_report
from harness.rundir import (
    OBSERVATIONS_FILE,
    SUMMARY_FILE,
    parse_summary,
    read_summary,
    write_summary,
)
from harness.summary import SUMMARY_SCHEMA_VERSION


def _old_run(run_dir: Path) -> Path:
    """A run whose summary.json says schema 1 and holds figures a fresh analysis would not:
    every comparison's n_pairs counted turns (here: inflated), and a TTFT ratio of 9."""
    obs = synthetic_observations(
        SyntheticProfile(), arms=("chat", "responses"), repeats=5, run_id="old"
    )
    write_synthetic_run(run_dir, obs)
    data = analyze_run(run_dir, resamples=50).to_json_dict()
    data["schema_version"] = 1
    for sc in data["scenarios"]:
        for comp in sc["comparisons"].values():
            comp["ttft_p50_ratio"].update(value=9.0, ci95=[8.0, 10.0], n_pairs=40)
    (run_dir / SUMMARY_FILE).write_text(json.dumps(data), encoding="utf-8")
    return run_dir


def test_the_schema_is_past_the_one_whose_n_pairs_counted_turns() -> None:
    assert SUMMARY_SCHEMA_VERSION >= 2


def test_reading_an_old_summary_is_one_line_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    run_dir = _old_run(tmp_path / "run")
    with pytest.raises(StaleSummaryError) as info:
        read_summary(run_dir)
    message = str(info.value)
    assert "\n" not in message
    assert str(run_dir / SUMMARY_FILE) in message
    assert f"harness analyze {run_dir}" in message
    assert isinstance(info.value, HarnessError)


def test_gate_on_an_old_run_dir_reanalyses_from_the_observations(tmp_path: Path) -> None:
    run_dir = _old_run(tmp_path / "run")
    gates = GateConfig(for_all=[parse_gate("responses_vs_chat.ttft_p50_ratio_max", 5.0, "t")])
    report = gate_run(run_dir, config=gates)
    [result] = report.results
    assert result.status == "pass", result  # the fresh ratio (≈ 1), not the old file's 9
    fresh = read_summary(run_dir)  # rewritten under the current schema
    ttft = fresh.scenarios[0].comparisons["responses_vs_chat"].ttft_p50_ratio
    assert ttft is not None and ttft.value is not None and ttft.value < 2
    assert ttft.n_pairs == 15  # conversations: 3 prompts × 5 repeats


def test_report_on_an_old_run_dir_reanalyses(tmp_path: Path) -> None:
    run_dir = _old_run(tmp_path / "run")
    paths = render_report(run_dir, tmp_path / "report")
    assert paths.html.is_file()
    assert read_summary(run_dir).schema_version == SUMMARY_SCHEMA_VERSION


def test_an_old_summary_without_observations_is_exit_2_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _old_run(tmp_path / "run")
    (run_dir / OBSERVATIONS_FILE).unlink()
    assert main(["gate", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "schema_version 1" in err[0] and f"harness analyze {run_dir}" in err[0]


def test_a_current_summary_is_read_not_reanalysed(tmp_path: Path) -> None:
    run_dir = _old_run(tmp_path / "run")
    summary = analyze_run(run_dir, resamples=50)
    marked = summary.model_copy(update={"warnings": ["kept"]})
    write_summary(run_dir, marked)
    gate_run(run_dir, config=GateConfig())
    assert read_summary(run_dir).warnings == ["kept"]


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("{", HarnessError, r"cannot read summary \("),
        ("[1]", HarnessError, "not a summary file — FIX"),
        ('{"schema_version": 1}', StaleSummaryError, "written by an older harness .* — STALE"),
        (f'{{"schema_version": {SUMMARY_SCHEMA_VERSION}}}', HarnessError, r"malformed summary \("),
    ],
)
def test_summary_text_from_anywhere_names_its_source_and_fix(
    text: str, error: type[HarnessError], message: str
) -> None:
    """The history's stored summaries parse as files do: one line naming where the text is."""
    with pytest.raises(error, match=message) as info:
        parse_summary(text, source="history: run r1", fix="FIX", stale_fix="STALE")
    assert str(info.value).startswith("history: run r1: ")
    assert "\n" not in str(info.value)
