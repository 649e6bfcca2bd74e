"""The loop monitor tells the client's own queue from a busy machine, with known causes."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.analyze import analyze_run, saturation_warnings
from harness.records import LAG_BOUND_MS
from harness.rundir import read_meta, read_observations
from harness.runner.execute import RunOptions, run
from harness.runner.saturation import BUSY_BOUND, LoopMonitor, Window, new_event_loop


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _measure(block: str) -> Window:
    async with LoopMonitor() as monitor:
        await asyncio.sleep(0.02)
        t0 = time.perf_counter()
        for _ in range(4):  # four 30 ms stretches in which the loop cannot run the monitor
            if block == "cpu":
                _spin(0.03)
            await asyncio.sleep(0 if block == "cpu" else 0.03)
        t1 = time.perf_counter()
        await asyncio.sleep(0.02)
    return monitor.window(t0, t1)


def _in_loop(block: str) -> Window:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(_measure(block))


def test_a_loop_held_by_its_own_cpu_work_is_saturated() -> None:
    w = _in_loop("cpu")
    assert w.lag_ms > LAG_BOUND_MS and w.busy >= BUSY_BOUND
    assert w.saturated


def test_a_loop_that_waits_on_the_network_is_not() -> None:
    """Idle in its selector (the machine may still wake it late): never saturated."""
    w = _in_loop("idle")
    assert not w.saturated
    assert w.busy < BUSY_BOUND


def test_a_concurrency_one_run_is_never_saturated(quickstart_run: Path) -> None:
    observations = list(read_observations(quickstart_run / "observations.jsonl"))
    assert observations and all(o.loop_lag_ms is not None for o in observations)
    assert not any(o.saturated for o in observations)
    meta = read_meta(quickstart_run)
    assert meta.loop is not None and meta.loop["ticks"] > 0


QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"


def _copy_marked(
    run_dir: Path, to: Path, mark: Callable[[int], tuple[bool, float]]
) -> tuple[Path, list[dict[str, Any]]]:
    """A copy of ``run_dir`` whose i-th observation has (saturated, loop_lag_ms) = mark(i)."""
    copy = Path(shutil.copytree(run_dir, to))
    path = copy / "observations.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for i, r in enumerate(rows):
        r["saturated"], r["loop_lag_ms"] = mark(i)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return copy, rows


@pytest.fixture(scope="module")
def five_repeats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The guide's profile makes the first request 2-3x slower: a clear latency verdict.

    At time scale 0.1 a cold Responses TTFT is ~100 ms against Chat's ~40 ms: still far
    beyond timing noise, at half the waiting of 0.2."""
    options = RunOptions(
        out=tmp_path_factory.mktemp("five"),
        repeats=5,
        seed=1,
        progress=False,
        emulator_profile="guide-claims",
        emulator_time_scale=0.1,
    )
    return run([QUICKSTART], options).run_dir


def test_saturated_requests_are_counted_and_warned_about(
    quickstart_run: Path, tmp_path: Path
) -> None:
    """Flags written by the runner reach the summary and one warning with the remedy."""
    # every other request timed on a saturated loop, 50 ms late
    run_dir, rows = _copy_marked(
        quickstart_run, tmp_path / "run", lambda i: (True, 50.0) if i % 2 == 0 else (False, 1.0)
    )
    summary = analyze_run(run_dir, resamples=50)
    sc = summary.scenarios[0]
    flagged = sum(a.saturation.saturated for a in sc.arms.values() if a.saturation)
    assert flagged == sum(1 for r in rows if r["saturated"] and not r["warmup"])
    warnings = saturation_warnings(summary.scenarios)
    assert len(warnings) == 1 and "--client raw" in warnings[0] and "50.0 ms" in warnings[0]


def test_late_timestamps_on_an_idle_loop_are_a_busy_machine(
    quickstart_run: Path, tmp_path: Path
) -> None:
    run_dir, _ = _copy_marked(quickstart_run, tmp_path / "run", lambda i: (False, 40.0))
    (warning,) = saturation_warnings(analyze_run(run_dir, resamples=50).scenarios)
    assert "quieter machine" in warning and "--client raw" not in warning


def test_a_pair_timed_on_a_saturated_client_gets_no_latency_verdict(
    five_repeats: Path, tmp_path: Path
) -> None:
    """Flags on most requests: every latency decision of the pair is 'unclear', the cards and
    the report say why, and the first-request claim is not judged — while cost is decided."""
    from harness.report import render_report
    from harness.report.verdict import speed_findings

    before = analyze_run(five_repeats, resamples=200).scenarios[0]
    run_dir, _ = _copy_marked(five_repeats, tmp_path / "run", lambda i: (True, 80.0))
    sc = analyze_run(run_dir, resamples=200).scenarios[0]
    c, c0 = sc.comparisons["responses_vs_chat"], before.comparisons["responses_vs_chat"]
    assert c0.latency_not_judged is None and c.latency_not_judged is not None
    assert c0.cold_ttft_ratio is not None and c0.cold_ttft_ratio.decision == "worse"
    for name in ("ttft_p50_ratio", "total_p50_ratio", "cold_ttft_ratio"):
        e = getattr(c, name)
        assert e is not None and e.decision == "unclear", name
    assert c.cost_ratio is not None and c.cost_ratio == c0.cost_ratio  # cost is not latency
    assert all(f.headline.startswith("Not judged") for f in speed_findings(c))
    first = sc.claims["first_request_slower"]
    assert first.verdict == "inconclusive" and "saturated" in first.note
    html = render_report(run_dir, tmp_path / "out").html.read_text(encoding="utf-8")
    assert 'class="note banner timing"' in html and "--client raw" in html


def test_latency_gates_on_a_saturated_client_are_not_assessable(
    five_repeats: Path, tmp_path: Path
) -> None:
    """A gate must not pass (or fail) on latency the cards refuse to judge."""
    from harness.gates.config import GateConfig, parse_gate
    from harness.gates.evaluate import evaluate

    run_dir, _ = _copy_marked(five_repeats, tmp_path / "run", lambda i: (True, 80.0))
    gates = {
        "responses_vs_chat.ttft_p50_ratio_max": 100.0,  # would pass on any latency
        "responses.ttft_p50_ms_max": 1e9,
        "responses_vs_chat.cost_ratio_max": 100.0,  # not latency: still decided
    }
    config = GateConfig(for_all=[parse_gate(k, v, "gates.yaml", 1) for k, v in gates.items()])
    report = evaluate(analyze_run(run_dir, resamples=200), config)
    status = {r.key: r.status for r in report.results}
    assert status["responses_vs_chat.ttft_p50_ratio_max"] == "unknown"
    assert status["responses.ttft_p50_ms_max"] == "unknown"
    assert status["responses_vs_chat.cost_ratio_max"] == "pass"
    assert report.exit_code == 1
    assert all("saturated client" in r.rule for r in report.results if r.status == "unknown")
