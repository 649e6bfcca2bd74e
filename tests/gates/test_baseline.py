"""Baselines: save, load, resolve; the compact samples give the same between-run statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.analysis.analyze import (
    SyntheticProfile,
    compare_runs,
    load_table,
    synthetic_observations,
    write_synthetic_run,
)
from harness.analysis.metrics import LATENCIES
from harness.cli.app import main
from harness.errors import HarnessError
from harness.gates.baseline import (
    Baseline,
    Coded,
    load_baseline,
    resolve_baseline,
    save_baseline,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    obs = synthetic_observations(
        SyntheticProfile(error_rate=0.05), repeats=12, warmup=1, run_id="base-run", seed=3
    )
    return write_synthetic_run(
        tmp_path_factory.mktemp("base") / "base-run", obs, emulator_profile="parity"
    )


def test_save_writes_summary_and_compact_samples(run_dir: Path, tmp_path: Path) -> None:
    path = save_baseline(run_dir, "main", baselines_dir=tmp_path / "baselines")
    assert path == tmp_path / "baselines" / "main.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["kind"] == "shadow-harness-baseline" and raw["schema_version"] == 1
    assert raw["summary"]["run_id"] == "base-run"
    baseline = load_baseline(path)
    table = load_table(run_dir / "observations.jsonl")
    measured = int((~table.warmup).sum())
    assert baseline.samples.rows == measured  # warm-up requests are left out
    assert baseline.name == "main" and baseline.run_id == "base-run"
    # no reply text: the file is much smaller than the observations it came from
    assert path.stat().st_size < (run_dir / "observations.jsonl").stat().st_size / 3
    assert "output_text" not in path.read_text(encoding="utf-8")


def test_samples_round_trip_to_the_same_columns(run_dir: Path, tmp_path: Path) -> None:
    baseline = load_baseline(save_baseline(run_dir, "b", baselines_dir=tmp_path))
    original = load_table(run_dir / "observations.jsonl")
    original = original.take(np.flatnonzero(~original.warmup))
    copy = baseline.samples.table()
    assert copy.arm == original.arm and copy.prompt_id == original.prompt_id
    assert copy.error_type == original.error_type and copy.model == original.model
    assert (copy.turn == original.turn).all() and (copy.ok == original.ok).all()
    assert (copy.cached_tokens == original.cached_tokens).all()
    assert (copy.has_usage == original.has_usage).all()
    for col in LATENCIES:
        a, b = getattr(copy, col), getattr(original, col)
        assert np.array_equal(np.isnan(a), np.isnan(b))
        assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], atol=5e-4)


def test_a_baseline_saved_before_first_output_was_summarised_still_loads(
    run_dir: Path, tmp_path: Path
) -> None:
    path = save_baseline(run_dir, "old", baselines_dir=tmp_path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    del raw["samples"]["latencies_ms"]["first_output_ms"]
    path.write_text(json.dumps(raw), encoding="utf-8")
    table = load_baseline(path).samples.table()
    assert np.isnan(table.first_output_ms).all() and not np.isnan(table.ttft_ms).all()


def test_compare_against_baseline_matches_compare_against_run(
    run_dir: Path, tmp_path: Path
) -> None:
    candidate = write_synthetic_run(
        tmp_path / "cand",
        synthetic_observations(
            SyntheticProfile(responses_ttft_factor=1.3), repeats=12, run_id="cand", seed=4
        ),
    )
    baseline = load_baseline(save_baseline(run_dir, "b", baselines_dir=tmp_path))
    via_run = compare_runs(candidate, run_dir, resamples=400)
    via_file = compare_runs(
        load_table(candidate / "observations.jsonl"), baseline.samples.table(), resamples=400
    )
    for arm in ("chat", "responses"):
        a = via_run.scenarios["synthetic"][arm]
        b = via_file.scenarios["synthetic"][arm]
        assert a.ttft_p50_ratio and b.ttft_p50_ratio and a.cost_ratio and b.cost_ratio
        assert b.ttft_p50_ratio.value == pytest.approx(a.ttft_p50_ratio.value, rel=1e-5)
        assert b.ttft_p50_ratio.ci95 == pytest.approx(a.ttft_p50_ratio.ci95, rel=1e-4)
        assert b.cost_ratio.value == pytest.approx(a.cost_ratio.value, rel=1e-9)


def test_coded_column() -> None:
    coded = Coded.encode(["a", None, "a", "b"])
    assert coded.levels == ["a", None, "b"] and coded.codes == [0, 1, 0, 2]
    assert coded.decode() == ["a", None, "a", "b"]


def test_resolve_name_file_and_run_dir(run_dir: Path, tmp_path: Path) -> None:
    path = save_baseline(run_dir, "main", baselines_dir=tmp_path)
    by_name = resolve_baseline("main", baselines_dir=tmp_path)
    by_file = resolve_baseline(str(path), baselines_dir=tmp_path / "elsewhere")
    by_run = resolve_baseline(str(run_dir), baselines_dir=tmp_path)
    assert by_name.path == path and by_file.path == path
    assert by_run.baseline.run_id == "base-run" and by_run.baseline.name == "base-run"
    assert isinstance(by_name.baseline, Baseline)


def test_missing_baseline_names_what_exists(run_dir: Path, tmp_path: Path) -> None:
    save_baseline(run_dir, "main", baselines_dir=tmp_path)
    with pytest.raises(
        HarnessError,
        match=r"baseline 'nightly' not found: no .*nightly\.json "
        r"\(have: main\) — save one with `harness baseline save RUN_DIR "
        r"--name nightly`",
    ):
        resolve_baseline("nightly", baselines_dir=tmp_path)
    with pytest.raises(HarnessError, match="no such file or run directory"):
        resolve_baseline(str(tmp_path / "gone.json"), baselines_dir=tmp_path)
    # a typo of a saved name is not a baseline to save under the typo
    with pytest.raises(HarnessError) as typo:
        resolve_baseline("mian", baselines_dir=tmp_path)
    assert str(typo.value).endswith("(have: main) — did you mean main?")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{", "cannot read baseline"),
        ('{"kind": "other"}', "not a baseline file"),
        ('{"kind": "shadow-harness-baseline", "schema_version": 99}', "schema_version 99"),
        (
            '{"kind": "shadow-harness-baseline", "schema_version": 1, "name": "x"}',
            "malformed baseline",
        ),
    ],
)
def test_bad_baseline_files(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(HarnessError, match=words):
        load_baseline(path)


@pytest.mark.parametrize("name", ["", "a/b", "../x", "with space", "-lead"])
def test_bad_names(run_dir: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(HarnessError, match="is not a slug"):
        save_baseline(run_dir, name, baselines_dir=tmp_path)


def test_cli_baseline_save(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["baseline", "save", str(run_dir), "--name", "main", "--baselines", str(tmp_path / "bl")]
    )
    assert code == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "bl" / "main.json")
    assert main(["baseline", "save", str(tmp_path / "nope"), "--name", "x"]) == 2
    assert "no observations.jsonl" in capsys.readouterr().err


def test_a_baseline_of_several_runs_measures_the_run_spread(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16: `harness baseline save RUN RUN… --name N` keeps every run; the gate's
    between-run intervals then use the spread measured between them instead of assuming it."""
    runs = []
    for seed, scale in ((11, 0.8), (12, 1.0), (13, 1.25)):  # runs that differ as wholes
        obs = synthetic_observations(
            SyntheticProfile(ttft_ms=300.0 * scale), repeats=12, seed=seed, run_id=f"b{seed}"
        )
        runs.append(write_synthetic_run(tmp_path / "runs" / f"b{seed}", obs))
    bl = tmp_path / "bl"
    assert (
        main(["baseline", "save", *map(str, runs), "--name", "three", "--baselines", str(bl)]) == 0
    )
    assert capsys.readouterr().out.strip() == str(bl / "three.json")
    baseline = load_baseline(bl / "three.json")
    assert baseline.runs == 3 and [s.run_id for s in baseline.more_runs] == ["b12", "b13"]
    assert baseline.label() == "'three' (3 runs: b11, b12, b13)"
    # a one-run file (no more_runs) still reads, as before
    one = load_baseline(save_baseline(run_dir, "one", baselines_dir=bl))
    assert one.runs == 1 and one.more_runs == []
    rc = compare_runs(load_table(run_dir / "observations.jsonl"), baseline.tables(), resamples=300)
    assert rc.run_spread is not None and rc.run_spread.source == "estimated from 3 baseline runs"
    assert rc.run_spread.spread["ttft_p50_ratio"] > 0.1  # ±20 % between the runs
    # the same run twice is refused: it would measure no spread at all
    assert (
        main(
            ["baseline", "save", str(runs[0]), str(runs[0]), "--name", "x", "--baselines", str(bl)]
        )
        == 2
    )
    assert "given twice" in capsys.readouterr().err
