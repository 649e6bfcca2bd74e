"""Run history (DuckDB over per-run Parquet files): trend queries over 1M stored observations,
and the cost of recording a run (issue 21).

A history of 1,000,000 observations is built once: 50 runs × 20,000 measured observations
(3 arms, 4 scenarios of 5,000 each), each recorded by :func:`harness.history.store.record_run`
with a summary of its scenarios. Observation columns are generated with numpy (no JSONL, no
analysis): what is measured is the history, not the runner.

Goals, measured in the same run with interleaved rounds:

- a ``harness history`` trend query for one scenario (open the history, check its schema,
  :meth:`~harness.history.query.History.trend`: the metrics of the last 20 runs and the
  observation counts behind them) answers in ≤ ``MAX_TREND_S`` s; reported beside it is its
  ratio to the baseline, a plain DuckDB scan of the same Parquet files (``count(*)`` and the
  median TTFT of the scenario per run and arm, no harness code);
- recording one run of 100,000 observations costs ≤ ``MAX_APPEND_RATIO``× a bare DuckDB
  ``COPY`` of the same columns to one Parquet file (the harness adds the summary, metrics,
  three atomic files and fsyncs), and its peak RSS is ≤ ``MAX_RSS_RATIO``× that of the same
  process that only built the columns (each measured in its own child process:
  ``ru_maxrss``).

Run: ``python -m pytest benchmarks/bench_history.py --benchmark-only -s``.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _child import run_child  # benchmarks/ is on sys.path (pytest, or run as a script)

RUNS = 50
PER_RUN = 20_000
SCENARIOS = ("support", "extract", "weather", "chart")
ARMS = ("chat", "responses", "chat#2")
APPEND_ROWS = 100_000
ROUNDS = 5
APPEND_ROUNDS = 2
MAX_TREND_S = 2.0
MAX_APPEND_RATIO = 4.0
MAX_RSS_RATIO = 1.5


def make_table(run_id: str, rows: int, seed: int) -> Any:
    """A measured run of ``rows`` observations as columns, every key distinct."""
    from harness.analysis.metrics import LATENCIES, TOKENS, ObservationTable

    rng = np.random.default_rng(seed)
    i = np.arange(rows)
    arm = np.array(ARMS, dtype=object)[i % len(ARMS)]
    turn = (i // len(ARMS)) % 2 + 1
    scenario = np.array(SCENARIOS, dtype=object)[(i // (len(ARMS) * 2)) % len(SCENARIOS)]
    prompt = (i // (len(ARMS) * 2 * len(SCENARIOS))) % 25
    repeat = i // (len(ARMS) * 2 * len(SCENARIOS) * 25)
    ttft = rng.lognormal(np.log(300.0), 0.3, rows)
    cols: dict[str, Any] = {
        "run_id": [run_id] * rows,
        "scenario": scenario.tolist(),
        "prompt_id": [f"p{k}" for k in prompt],
        "arm": arm.tolist(),
        "api": ["chat" if a.startswith("chat") else "responses" for a in arm],
        "model": ["gpt-4.1-mini"] * rows,
        "service_tier": ["default"] * rows,
        "finish": ["stop"] * rows,
        "error_type": [None] * rows,
        "output_text": [None] * rows,
        "output_format": ["text"] * rows,
        "client": ["sdk"] * rows,
        "outcome": [None] * rows,
        "tool_calls": [()] * rows,
        "conversation": [None] * rows,
        "turn": turn.astype(np.int64),
        "repeat": repeat.astype(np.int64),
        "order": i.astype(np.int64),
        "cold": turn == 1,
        "warmup": np.zeros(rows, dtype=np.bool_),
        "ok": rng.random(rows) > 0.01,
        "has_usage": np.ones(rows, dtype=np.bool_),
        "similarity": np.full(rows, np.nan),
        "saturated": np.zeros(rows, dtype=np.bool_),
        "loop_lag_ms": rng.random(rows),
        "nonce_tokens": np.zeros(rows, dtype=np.int64),
    }
    for k in LATENCIES:
        cols[k] = ttft * (1.0 if k.endswith("ttft_ms") else 2.5)
    for k in TOKENS:
        cols[k] = rng.integers(0, 2000, rows).astype(np.int64)
    return ObservationTable(**cols)


def template_summary() -> Any:
    """A real summary (a small synthetic run analysed), its scenario renamed per run."""
    from harness.analysis.analyze import (
        SyntheticProfile,
        analyze_run,
        synthetic_observations,
        write_synthetic_run,
    )

    obs = synthetic_observations(SyntheticProfile(), repeats=12, run_id="template")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = write_synthetic_run(Path(tmp) / "template", obs, emulator_profile="parity")
        return analyze_run(run_dir, resamples=200)


def summary_for(template: Any, run_id: str) -> Any:
    (sc,) = template.scenarios
    return template.model_copy(
        update={
            "run_id": run_id,
            "scenarios": [sc.model_copy(update={"name": name}) for name in SCENARIOS],
        }
    )


def meta_for(run_id: str, k: int) -> Any:
    from harness.records import RunMeta

    return RunMeta(
        run_id=run_id,
        created_at=1_780_000_000.0 + 3600 * k,
        seed=k,
        target="emulator",
        is_emulator=True,
        emulator_profile="parity",
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from harness.history.store import record_run

    root = tmp_path_factory.mktemp("bench-history") / "history"
    template = template_summary()
    seconds = []
    for k in range(RUNS):
        run_id = f"run-{k:03d}"
        table = make_table(run_id, PER_RUN, k)
        start = time.perf_counter()
        record_run(root, meta_for(run_id, k), table, summary_for(template, run_id))
        seconds.append(time.perf_counter() - start)
    return {"root": root, "record_s": seconds}


def trend_query(root: Path) -> int:
    """What ``harness history --scenario support`` asks of the history."""
    from harness.history.query import open_history

    h = open_history(root)
    try:
        trend = h.trend(scenario="support", last=20)
    finally:
        h.close()
    return len(trend.points) + sum(n for n, _ in trend.requests.values())


def plain_scan(root: Path) -> int:
    """The baseline: DuckDB straight over the observation files, no harness code."""
    import duckdb

    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT run_id, arm, count(*), median(ttft_ms) "
            f"FROM read_parquet('{root}/observations/*.parquet') "
            "WHERE scenario = 'support' AND NOT warmup GROUP BY ALL"
        ).fetchall()
    return len(rows)


def test_trend_query_over_a_million_observations(benchmark: Any, history: dict[str, Any]) -> None:
    import duckdb

    root: Path = history["root"]
    with duckdb.connect() as con:
        stored = con.execute(
            f"SELECT count(*) FROM read_parquet('{root}/observations/*.parquet')"
        ).fetchone()
    assert stored is not None and stored[0] == RUNS * PER_RUN == 1_000_000
    trend_s: list[float] = []
    scan_s: list[float] = []

    def one_round() -> None:
        for fn, out in ((plain_scan, scan_s), (trend_query, trend_s)):  # interleaved
            start = time.perf_counter()
            assert fn(root) > 0
            out.append(time.perf_counter() - start)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    best, base = min(trend_s), min(scan_s)
    info = {
        "stored_observations": RUNS * PER_RUN,
        "runs": RUNS,
        "trend_query_s": best,
        "trend_query_median_s": float(np.median(trend_s)),
        "plain_scan_s": base,
        "trend_vs_scan_ratio": best / base,
        "record_20k_run_median_s": float(np.median(history["record_s"])),
    }
    benchmark.extra_info.update(info)
    print()
    print(
        f"trend query, one scenario over {RUNS * PER_RUN:,} stored observations: {best:.3f} s "
        f"(median {info['trend_query_median_s']:.3f} s; goal ≤ {MAX_TREND_S} s); plain DuckDB "
        f"scan {base:.3f} s; ratio {best / base:.1f}×; recording a 20k-observation run: "
        f"{info['record_20k_run_median_s']:.3f} s (median of {RUNS})"
    )
    assert best <= MAX_TREND_S


def _child(args: list[str]) -> dict[str, Any]:
    return run_child(__file__, args)


def test_recording_a_run_time_and_peak_rss(benchmark: Any, tmp_path: Path) -> None:
    runs: dict[str, list[dict[str, Any]]] = {"record": [], "copy": [], "build": []}

    def one_round() -> None:
        for mode in runs:  # interleaved
            runs[mode].append(_child([mode, str(tmp_path / f"{mode}-{len(runs[mode])}")]))

    benchmark.pedantic(one_round, rounds=APPEND_ROUNDS, iterations=1)
    record = min(r["seconds"] for r in runs["record"])
    copy = min(r["seconds"] for r in runs["copy"])
    rss = {m: max(r["maxrss_kb"] for r in v) / 1024 for m, v in runs.items()}
    info = {
        "record_100k_s": record,
        "bare_copy_100k_s": copy,
        "record_vs_copy_ratio": record / copy,
        "record_peak_rss_mb": rss["record"],
        "build_only_peak_rss_mb": rss["build"],
        "rss_ratio": rss["record"] / rss["build"],
    }
    benchmark.extra_info.update(info)
    print()
    print(
        f"recording a {APPEND_ROWS:,}-observation run: {record:.2f} s vs a bare DuckDB COPY "
        f"{copy:.2f} s ({info['record_vs_copy_ratio']:.1f}×, goal ≤ {MAX_APPEND_RATIO}×); "
        f"peak RSS {rss['record']:.0f} MB vs {rss['build']:.0f} MB building the columns only "
        f"({info['rss_ratio']:.2f}×, goal ≤ {MAX_RSS_RATIO}×)"
    )
    assert info["record_vs_copy_ratio"] <= MAX_APPEND_RATIO
    assert info["rss_ratio"] <= MAX_RSS_RATIO


def _main(argv: list[str]) -> int:
    import duckdb

    from harness.history.store import OBSERVATION_TYPES, observation_columns, record_run

    mode, out = argv[0], Path(argv[1])
    template = template_summary()  # every mode: only the append differs between them
    table = make_table("run-x", APPEND_ROWS, 0)
    start = time.perf_counter()
    if mode == "record":
        record_run(out, meta_for("run-x", 0), table, summary_for(template, "run-x"))
    elif mode == "copy":
        cols = observation_columns(table)
        out.mkdir(parents=True)
        with duckdb.connect(config={"threads": 1}) as con:  # as record_run writes
            con.register("t", cols)
            select = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in OBSERVATION_TYPES.items())
            con.execute(f"COPY (SELECT {select} FROM t) TO '{out}/x.parquet' (FORMAT parquet)")
    else:
        import harness.history.store  # noqa: F401 - same imports as the other modes

    seconds = time.perf_counter() - start
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "maxrss_kb": maxrss}))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
