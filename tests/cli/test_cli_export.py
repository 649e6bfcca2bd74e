"""harness export-benchmark: a run's latencies as pytest-benchmark JSON (the former
``python -m harness.bench_export``, now a subcommand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analysis.analyze import SyntheticProfile, synthetic_observations, write_synthetic_run
from harness.cli.app import main
from harness.gates.export import machine_id


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    obs = synthetic_observations(SyntheticProfile(), repeats=2, run_id="exp")
    return write_synthetic_run(root / "exp", obs)


def test_storage_gets_numbered_runs(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = tmp_path / ".benchmarks"
    assert main(["export-benchmark", str(run_dir), "--storage", str(storage)]) == 0
    assert main(["export-benchmark", str(run_dir), "--storage", str(storage)]) == 0
    first, second = (
        storage / machine_id() / "0001_exp.json",
        storage / machine_id() / "0002_exp.json",
    )
    assert capsys.readouterr().out == f"{first}\n{second}\n"
    doc = json.loads(first.read_text(encoding="utf-8"))
    assert {b["params"]["metric"] for b in doc["benchmarks"]} == {"ttft_ms", "total_ms"}


def test_one_file_and_a_chosen_metric(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "latency.json"
    args = ["export-benchmark", str(run_dir), "-o", str(out), "--metric", "sdk_total_ms"]
    assert main(args) == 0
    assert capsys.readouterr().out == f"{out}\n"
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert {b["params"]["metric"] for b in doc["benchmarks"]} == {"sdk_total_ms"}


def test_bad_run_dir_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["export-benchmark", str(missing), "-o", str(tmp_path / "x.json")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"harness: error: {missing}: no meta.json — is this a run directory (runs/<run-id>/)?\n"
    )


def test_needs_a_destination(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["export-benchmark", str(run_dir)])
    assert exc.value.code == 2
    assert "one of the arguments -o/--out --storage is required" in capsys.readouterr().err
