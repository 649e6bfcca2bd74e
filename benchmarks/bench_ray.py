"""Distributed runs on Ray against single-process runs, in the same session (issue 21).

Paced: the same plan (quickstart, 10 repeats: 120 streamed requests, 40 ms TTFT, 2 ms a token)
at a fixed 10 requests/s and concurrency 4, once by one process and once by 2 Ray workers (Ray
started by the run on this machine), each ``harness run`` in its own process with the emulator
in another, the emulator's truth log beside each. Goals: the Ray run holds the rate (≥ 95 % of
10/s over its sending span) and its wire TTFT error against the truth log (p50 of ours − truth,
per request) is within 1 ms of the single-process run's — asserted one-sided, |Ray's| ≤
|single's| + 1 ms: distribution costs no timing accuracy (the single process may be the worse).

Unpaced: the same plan on the ``zero`` profile at concurrency 8, to find what each can do on
this machine: the throughput ratio Ray / single process. Reported, not asserted: on 2 cores
the emulator, the driver, two workers and Ray's own daemons (GCS, raylet) share the CPUs, so
Ray cannot be faster here; it exists for load one machine cannot drive.

The driver's CPU per observation (``meta.json`` → ``distributed.driver_cpu_ms_per_observation``:
``process_time`` of the driver over the distributed part, Ray's driver threads included) is
reported beside the single process's CPU per observation (its event loop's process CPU share
over its sending span).

Run: ``python -m pytest benchmarks/bench_ray.py --benchmark-only -s`` (needs
``pip install 'shadow-harness[ray]'``; takes about 2 minutes, most of it Ray starting).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.rundir import read_meta, read_observations

pytest.importorskip("ray", reason="pip install 'shadow-harness[ray]'")

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "scenarios" / "quickstart.yaml"
RATE = 10.0
PROFILE = """
extends: zero
both:
  ttft_ms: 40
  per_token_ms: 2
content:
  reply_tokens: {min: 10, max: 30}
"""


def _run(tmp: Path, name: str, *flags: str, truth: bool = True) -> dict[str, Any]:
    """``harness run`` in its own process; the run's figures."""
    out = tmp / name
    profile = tmp / "profile.yaml"
    profile.write_text(PROFILE, encoding="utf-8")
    truth_log = tmp / f"{name}-truth.jsonl"
    cmd = [sys.executable, "-m", "harness", "run", str(QUICK), "--repeats", "10", "--seed", "5"]
    cmd += ["--quiet", "--out", str(out), *flags]
    if truth:
        cmd += ["--emulator-profile", str(profile), "--emulator-truth-log", str(truth_log)]
    else:
        cmd += ["--emulator-profile", "zero"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (run_dir,) = out.iterdir()
    obs = list(read_observations(run_dir / "observations.jsonl"))
    meta = read_meta(run_dir)
    starts = sorted(o.started_at for o in obs)
    span = starts[-1] - starts[0]
    figures: dict[str, Any] = {
        "observations": len(obs),
        "errors": sum(not o.ok for o in obs),
        "rate_per_s": round((len(obs) - 1) / span, 3),
    }
    if meta.distributed:
        figures["driver_cpu_ms_per_observation"] = meta.distributed["driver_cpu_ms_per_observation"]
        figures["workers"] = [
            {k: w[k] for k in ("id", "observations", "rps", "concurrency")}
            | {"loop_lag_p50_ms": (w["loop"] or {}).get("lag_p50_ms")}
            for w in meta.distributed["workers"]
        ]
        firsts = [min(o.started_at for o in obs if o.worker == w) for w in {o.worker for o in obs}]
        lasts = [max(o.started_at for o in obs if o.worker == w) for w in {o.worker for o in obs}]
        figures["first_send_skew_s"] = round(max(firsts) - min(firsts), 3)
        figures["last_send_skew_s"] = round(max(lasts) - min(lasts), 3)
    elif meta.loop:
        figures["loop_lag_p50_ms"] = meta.loop["lag_p50_ms"]
        cpu_s = meta.loop["process_cpu_cores"] * span
        figures["runner_cpu_ms_per_observation"] = round(cpu_s * 1000 / len(obs), 4)
    if truth:
        rows = {r["request_id"]: r for r in map(json.loads, truth_log.read_text().splitlines())}
        errs = [
            o.ttft_ms - rows[o.request_id]["first_delta_ms"]
            for o in obs
            if o.ttft_ms is not None and o.request_id in rows
        ]
        figures["ttft_minus_truth_p50_ms"] = round(statistics.median(errs), 3)
        figures["ttft_p50_ms"] = round(statistics.median(o.ttft_ms or 0 for o in obs), 3)
    return figures


def test_ray_holds_the_rate_and_the_timing(benchmark: Any, tmp_path: Path) -> None:
    rate = ["--rps", str(RATE), "--concurrency", "4"]

    def measure() -> dict[str, Any]:
        return {
            "single": _run(tmp_path, "single", *rate),
            "ray": _run(tmp_path, "ray", *rate, "--engine", "ray", "--workers", "2"),
        }

    paced = benchmark.pedantic(measure, rounds=1, iterations=1)
    unpaced = {
        "single": _run(tmp_path, "single-max", "--concurrency", "8", truth=False),
        "ray": _run(
            tmp_path,
            "ray-max",
            "--concurrency",
            "8",
            "--engine",
            "ray",
            "--workers",
            "2",
            truth=False,
        ),
    }
    info = {
        "paced": paced,
        "unpaced": unpaced,
        "throughput_ratio_ray_vs_single": round(
            unpaced["ray"]["rate_per_s"] / unpaced["single"]["rate_per_s"], 3
        ),
        "ttft_error_p50_gap_ms": round(
            paced["ray"]["ttft_minus_truth_p50_ms"] - paced["single"]["ttft_minus_truth_p50_ms"],
            3,
        ),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    benchmark.extra_info.update(info)
    print("\nray vs single process:", json.dumps(info, indent=1))
    for side in ("single", "ray"):
        assert paced[side]["observations"] == 120 and paced[side]["errors"] == 0
    assert paced["ray"]["rate_per_s"] >= 0.95 * RATE
    # "within 1 ms of a single-process run": distribution may not cost more than 1 ms of wire
    # accuracy. One-sided: on a loaded machine the single process, parsing every stream on one
    # loop, is the less accurate one (measured: 4.5 ms against Ray's 0.5 ms at load 14).
    ray_err = abs(paced["ray"]["ttft_minus_truth_p50_ms"])
    assert ray_err <= abs(paced["single"]["ttft_minus_truth_p50_ms"]) + 1.0
