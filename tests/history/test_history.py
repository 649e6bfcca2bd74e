"""The run history: recording (idempotent, concurrent), trends, the report's chart, baselines
from history, and bad input (damaged files, a newer schema, an unusable path)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.analysis.analyze import (
    SyntheticProfile,
    load_run,
    synthetic_observations,
    write_synthetic_run,
)
from harness.cli.app import main
from harness.errors import HistoryError
from harness.gates.baseline import Samples, load_baseline, run_source
from harness.history.query import open_history
from harness.history.store import MANIFEST, check_manifest, record_run, table_files
from harness.rundir import read_observations, read_summary

REPO = Path(__file__).resolve().parents[2]
#: TTFT of responses relative to chat in each synthetic run: a trend the tables must show
FACTORS = (1.0, 1.5, 2.2)


def _make_run(runs: Path, i: int, factor: float) -> Path:
    obs = synthetic_observations(
        SyntheticProfile(responses_ttft_factor=factor, sigma=0.1),
        repeats=12,
        seed=i,
        run_id=f"run-{i}",
        scenario="support",
        warmup=1,  # warm-up requests the history must leave out, as analysis does
    )
    # a day apart, so "oldest first" and --since have something to sort
    obs = [o.model_copy(update={"started_at": o.started_at + 86_400 * i}) for o in obs]
    return write_synthetic_run(runs / f"run-{i}", obs, emulator_profile="parity")


def _analyze(run_dir: Path, *extra: str) -> int:
    return main(["analyze", str(run_dir), "--quiet", "--resamples", "300", *extra])


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs directory with three analysed (so recorded) runs of scenario ``support``."""
    runs = tmp_path_factory.mktemp("history") / "runs"
    for i, factor in enumerate(FACTORS):
        assert _analyze(_make_run(runs, i, factor)) == 0
    return runs


@pytest.fixture
def runs(three_runs: Path, tmp_path: Path) -> Path:
    """A copy of :func:`three_runs` (and the history beside it) a test may change."""
    shutil.copytree(three_runs.parent, tmp_path, dirs_exist_ok=True)
    return tmp_path / "runs"


def _counts(root: Path) -> tuple[int, int, int]:
    h = open_history(root)
    try:
        return tuple(  # type: ignore[return-value]
            int(h.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in ("runs", "metrics", "observations")
        )
    finally:
        h.close()


# --- recording --------------------------------------------------------------------------------


def test_reanalysing_a_run_replaces_its_record_never_duplicates_it(runs: Path) -> None:
    root = runs.parent / "history"
    before = _counts(root)
    assert before[0] == 3
    assert _analyze(runs / "run-1") == 0
    assert _analyze(runs / "run-1", "--seed", "5") == 0
    assert _counts(root) == before
    # the record is the latest analysis: its summary is the one in the run directory
    h = open_history(root)
    try:
        past = h.past_run("run-1")
    finally:
        h.close()
    assert past.summary == read_summary(runs / "run-1")
    assert past.summary.bootstrap.seed == 5


def test_the_history_holds_the_runs_measured_observations(runs: Path) -> None:
    h = open_history(runs.parent / "history")
    try:
        past = h.past_run("run-2")
    finally:
        h.close()
    direct = run_source(runs / "run-2")
    # what a baseline keeps of a run is the same whether read from the run or the history
    assert Samples.from_table(past.table) == Samples.from_table(direct.table)
    # one record per request: a key a resumed run recorded again is held once (the latest),
    # warm-up requests are held with their flag (the trend's queries leave them out)
    path = runs / "run-2" / "observations.jsonl"
    first = path.read_text("utf-8").splitlines()[0]
    with path.open("a", encoding="utf-8") as fh:
        fh.write(first + "\n")
    assert _analyze(runs / "run-2") == 0
    records = list(read_observations(path))
    warmups = len({o.key for o in records if o.warmup})
    assert len({(o.key, o.warmup) for o in records}) == len(records) - 1 and warmups > 0
    h = open_history(runs.parent / "history")
    try:
        held = h.con.execute(
            "SELECT count(*), count(*) FILTER (WHERE warmup) FROM observations "
            "WHERE run_id = 'run-2'"
        ).fetchone()
    finally:
        h.close()
    assert held == (len(records) - 1, warmups)


@pytest.mark.slow  # two fresh interpreters importing the analysis: ~10 s on 2 busy cores
def test_two_processes_finishing_at_once_both_land(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    dirs = [_make_run(runs, i, 1.0) for i in range(2)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "harness", "analyze", str(d), "--quiet", "--resamples", "200"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in dirs
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert all("warning" not in err for _, err in results), results
    h = open_history(tmp_path / "history")
    try:
        rows = h.con.execute("SELECT run_id, observations FROM runs ORDER BY run_id").fetchall()
        obs = h.con.execute("SELECT run_id, count(*) FROM observations GROUP BY 1 ORDER BY 1")
        per_run = obs.fetchall()
    finally:
        h.close()
    assert [r[0] for r in rows] == ["run-0", "run-1"]
    assert per_run == [(r[0], r[1]) for r in rows]


def test_a_manifest_another_writer_lands_meanwhile_is_theirs_not_foreign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the threads below hit now and then, made certain: our read finds no manifest,
    another writer's lands before we list the directory — a history, not someone's folder."""
    root = tmp_path / "history"
    check_manifest(tmp_path / "theirs", create=True)
    manifest = (tmp_path / "theirs" / MANIFEST).read_bytes()
    listing = Path.iterdir

    def late_manifest(self: Path):  # type: ignore[no-untyped-def]
        if self == root and not (root / MANIFEST).exists():
            (root / MANIFEST).write_bytes(manifest)
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", late_manifest)
    check_manifest(root, create=True)
    assert (root / MANIFEST).read_bytes() == manifest


def test_threads_writing_at_once_leave_every_run_once_and_readable(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    loaded = [load_run(_make_run(runs, i, 1.0)) for i in range(2)]
    from harness.analysis.analyze import analyze_run

    summaries = [analyze_run(r, resamples=100) for r in loaded]
    root = tmp_path / "shared-history"
    # two writers per run id (a re-analysis racing the run's own) and two run ids, all at once
    jobs = [(r, s) for r, s in zip(loaded, summaries, strict=True) for _ in range(2)]
    start = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def write(run: object, summary: object) -> None:
        start.wait()
        try:
            record_run(root, run.meta, run.table, summary)  # type: ignore[attr-defined]
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _counts(root)[0] == 2
    assert [p.name for p in table_files(root, "runs")] == ["run-0.parquet", "run-1.parquet"]
    # no temporary file left behind
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_harness_run_records_the_run_and_a_history_failure_only_warns(
    quickstart_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from rich.console import Console

    from harness.cli.run import finish_run
    from harness.rundir import OBSERVATIONS_FILE, read_meta
    from harness.runner.execute import RunResult

    run_dir = Path(shutil.copytree(quickstart_run, tmp_path / "runs" / quickstart_run.name))
    recorded = len((run_dir / OBSERVATIONS_FILE).read_text("utf-8").splitlines())
    result = RunResult(run_dir, read_meta(run_dir), recorded, 0)
    console = Console(file=io.StringIO(), width=120)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # as `harness run --resume RUN_DIR` from another directory
    assert finish_run(result, console, tmp_path / "report") == 0
    root = tmp_path / "history"  # beside the run's own runs directory, not the cwd's
    assert _counts(root)[0] == 1
    assert _counts(root)[2] == recorded
    assert list(elsewhere.iterdir()) == []
    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    (run_dir / "summary.json").unlink()
    capsys.readouterr()
    assert finish_run(result, console, tmp_path / "report", history=blocked / "h") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"harness: warning: run not recorded in the history: {blocked / 'h'}: cannot "
        "write the history there (Not a directory)"
    ]
    assert (run_dir / "summary.json").is_file()
    assert (tmp_path / "report" / "report.html").is_file()


# --- harness history ----------------------------------------------------------------------------


def test_harness_history_lists_three_runs_with_their_trend(
    three_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "--runs", str(three_runs), "--scenario", "support"]) == 0
    out = capsys.readouterr().out
    table = out.split("support — ")[1]  # the responses_vs_chat table comes first
    assert "responses_vs_chat" in table.splitlines()[0]
    lines = [line for line in table.splitlines() if line.startswith("│ run-")]
    assert [line.split()[1] for line in lines] == ["run-0", "run-1", "run-2"]
    # requests: the measured ones of both arms, 12 repeats × 3 prompts × 2 turns each (the
    # warm-up repeat left out)
    assert all(line.split("│")[2].strip() == str(2 * 12 * 3 * 2) for line in lines), lines
    ratios = []
    for i in range(3):
        c = read_summary(three_runs / f"run-{i}").scenarios[0].comparisons["responses_vs_chat"]
        assert c.ttft_p50_ratio is not None and c.ttft_p50_ratio.value is not None
        ratios.append(c.ttft_p50_ratio.value)
        assert f"{ratios[-1]:.2f}×" in lines[i]
    assert ratios == sorted(ratios)  # the trend the table shows is the one the runs have
    assert ratios[-1] / ratios[0] > 1.3


def test_harness_history_filters_by_date_metric_and_count(
    three_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["history", "--runs", str(three_runs), "--arm", "responses"]
    assert main([*base, "--last", "2", "--metric", "ttft_ratio"]) == 0
    out = capsys.readouterr().out
    assert "run-0" not in out and "run-1" in out and "run-2" in out
    assert "cost ratio" not in out and "TTFT p50 ratio" in out
    # --arm: only what involves responses; the A/A replicate chat#2 has its own table
    assert main([*base, "--last", "2"]) == 0
    out = capsys.readouterr().out
    assert "responses_vs_chat" in out and "chat#2" not in out
    assert main(["history", "--runs", str(three_runs), "--last", "2"]) == 0
    assert "cache share chat#2" in capsys.readouterr().out  # what --arm responses left out
    assert main([*base, "--since", "2099-01-01"]) == 0
    assert "3 run(s); none for --arm responses --since 2099-01-01" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--metric", "ttft"], "--metric ttft: no such metric — known: ttft_ratio"),
        (
            ["--metric", "cost_ratoi"],
            "--metric cost_ratoi: no such metric — did you mean cost_ratio?",
        ),
    ],
)
def test_harness_history_bad_metric_is_one_line(
    three_runs: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert main(["history", "--runs", str(three_runs), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"harness: error: {expected}")


# --- report -----------------------------------------------------------------------------------


def test_the_report_shows_the_trend_chart_once_two_runs_exist(
    tmp_path: Path, three_runs: Path
) -> None:
    from harness.report import render_report
    from harness.report.trend import load_trend, trend_chart

    html = render_report(three_runs / "run-2", tmp_path / "r2").html.read_text("utf-8")
    assert "Trend over the last 3 runs (same scenario and target)" in html
    assert "Trend from the run history" in html
    # an older run's chart stops at that run; a single run has no trend
    for i, shown in ((1, 2), (0, None)):
        run = load_run(three_runs / f"run-{i}")
        trend, note = load_trend(run.run_dir, run.meta.created_at, read_summary(run.run_dir))
        assert trend is not None and note is None
        assert {p.run_id for p in trend.points} == {f"run-{k}" for k in range(i + 1)}
        svg = trend_chart(trend, "support", "t", f"run-{i}")
        assert (svg is None) if shown is None else (svg is not None and "this run" in svg)


def test_a_damaged_history_costs_the_report_its_chart_not_the_report(
    runs: Path, tmp_path: Path
) -> None:
    from harness.report import render_report

    (runs.parent / "history" / "runs" / "run-0.parquet").write_bytes(b"not parquet at all")
    html = render_report(runs / "run-2", tmp_path / "out").html.read_text("utf-8")
    assert "Trend over the last" not in html
    assert "no trend chart:" in html and "run-0.parquet: damaged history file" in html


# --- baselines ----------------------------------------------------------------------------------


def test_baseline_from_history_is_the_multi_run_baseline_even_without_run_dirs(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {f"run-{i}": Samples.from_table(run_source(runs / f"run-{i}").table) for i in (1, 2)}
    for i in range(3):
        shutil.rmtree(runs / f"run-{i}")  # history is enough once the run dirs are gone
    argv = ["baseline", "save", "--name", "main", "--from-history", "last:2"]
    assert main([*argv, "--runs", str(runs), "--baselines", str(tmp_path / "b")]) == 0
    path = Path(capsys.readouterr().out.strip())
    baseline = load_baseline(path)
    assert baseline.runs == 2
    assert baseline.run_id == "run-2"  # the newest run's summary is the one quoted
    assert baseline.source_run_dir == "history:run-2"
    assert baseline.more_run_dirs == ["history:run-1"]
    assert baseline.samples == expected["run-2"]
    assert baseline.more_runs == [expected["run-1"]]


def test_baseline_from_history_needs_runs_or_history_not_both(
    three_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["baseline", "save", str(three_runs / "run-0"), "--name", "x"]
    assert main([*argv, "--from-history", "last:2", "--runs", str(three_runs)]) == 2
    assert "not both" in capsys.readouterr().err


# --- bad input ----------------------------------------------------------------------------------


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("harness: error: ")
    assert "Traceback" not in err[0]
    return err[0]


def test_a_corrupted_history_file_is_one_line_naming_it(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = runs.parent / "history" / "observations" / "run-1.parquet"
    damaged.write_bytes(damaged.read_bytes()[:200])
    assert main(["history", "--runs", str(runs)]) == 2
    line = _one_error(capsys)
    assert f"{damaged}: damaged history file" in line
    assert "harness analyze" in line
    # a new run still records: a writer never reads the other runs' files
    assert _analyze(_make_run(runs, 3, 1.0)) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_corrupted_manifest_is_one_line_and_a_warning_for_a_run(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (runs.parent / "history" / MANIFEST).write_text("{ nope", encoding="utf-8")
    assert main(["history", "--runs", str(runs)]) == 2
    assert "not a shadow-harness history manifest" in _one_error(capsys)
    assert _analyze(runs / "run-0") == 0
    err = capsys.readouterr().err
    assert "harness: warning: run not recorded in the history:" in err
    assert (runs / "run-0" / "summary.json").is_file()


def test_a_history_from_a_newer_schema_is_refused_in_one_line(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = runs.parent / "history" / MANIFEST
    data = json.loads(manifest.read_text("utf-8"))
    manifest.write_text(json.dumps({**data, "schema_version": 99}), encoding="utf-8")
    assert main(["history", "--runs", str(runs)]) == 2
    line = _one_error(capsys)
    assert "history schema_version 99 was written by a newer harness" in line
    # the run's own files are never lost: summary written, warning printed, exit 0
    (runs / "run-0" / "summary.json").unlink()
    assert _analyze(runs / "run-0") == 0
    assert "was written by a newer harness" in capsys.readouterr().err
    assert (runs / "run-0" / "summary.json").is_file()
    assert (runs / "run-0" / "observations.jsonl").is_file()


def test_a_run_file_from_a_newer_schema_is_refused(runs: Path) -> None:
    import duckdb

    path = runs.parent / "history" / "runs" / "run-1.parquet"
    con = duckdb.connect()
    q = f"SELECT * REPLACE (99 AS schema_version) FROM read_parquet('{path}')"
    con.execute(f"COPY ({q}) TO '{path}.new' (FORMAT parquet)")
    con.close()
    os.replace(f"{path}.new", path)
    with pytest.raises(HistoryError, match=r"run-1\.parquet: history schema_version 99"):
        open_history(runs.parent / "history")


def test_an_unusable_history_path_warns_the_run_and_fails_harness_history(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    target = blocker / "history"
    assert _analyze(runs / "run-0", "--history", str(target)) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"harness: warning: run not recorded in the history: {target}: cannot write the history"
    )
    assert main(["history", "--history", str(target)]) == 2
    assert f"{target}: no run history here" in _one_error(capsys)
    assert main(["history", "--history", "s3://bucket/history"]) == 2
    assert "s3:// is not supported" in _one_error(capsys)


def test_a_directory_that_is_not_a_history_is_never_written_into(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "history"
    mine.mkdir()
    (mine / "notes.md").write_text("the project's own history/ folder", encoding="utf-8")
    assert _analyze(_make_run(tmp_path / "runs", 0, 1.0)) == 0
    assert "exists and is not a run history (no history.json; holds notes.md)" in (
        capsys.readouterr().err
    )
    assert [p.name for p in mine.iterdir()] == ["notes.md"]


def test_no_history_records_nothing(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "runs", 0, 1.0)
    assert _analyze(run_dir, "--no-history") == 0
    assert not (tmp_path / "history").exists()
    assert _analyze(run_dir) == 0  # the default: history/ beside runs/, which keeps only runs
    assert [p.name for p in table_files(tmp_path / "history", "runs")] == ["run-0.parquet"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["run-0"]


def test_harness_history_env_var_points_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("HARNESS_HISTORY", f"file://{shared}")
    assert _analyze(_make_run(tmp_path / "runs", 0, 1.0)) == 0
    assert not (tmp_path / "history").exists()
    assert [p.name for p in table_files(shared, "runs")] == ["run-0.parquet"]
    capsys.readouterr()
    assert main(["history", "--runs", str(tmp_path / "elsewhere")]) == 0
    assert "run-0" in capsys.readouterr().out
