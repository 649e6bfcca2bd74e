"""Shadow mode benchmark (issue 10): the cost on the primary path, and shadow completion.

Setup: the emulator in its own process (``parity`` profile at ``time_scale`` 0.05: ~12 ms to
the first token, ~0.6 ms per token, so the application mostly waits on the network as it does
in production), one ``openai.OpenAI`` client, requests issued back to back, **100 % sampled**.

1. **Added latency on the primary path** (goal: ≤ 1 ms at p99), measured directly: for every
   call, the time the caller spends in the wrapper — ``create`` outside the SDK's own
   ``create``, plus, for streams, each ``next()`` outside the SDK stream's own ``next()`` —
   summed per call, on the thread's CPU clock (the wrapper's own work, asserted) and on the
   wall clock (that work plus GIL waits and preemption, reported). A timing shim around the
   SDK calls is counted as wrapper time, so both err high; the *control* — the same wrapper
   and shim with nothing sampled, in alternating blocks — shows how much of it is the shim
   and the machine (on a busy 2-CPU box the wall-clock p99 is the scheduler's, not ours).
2. **End to end**, for context: the same calls without the wrapper (two separate, unwrapped
   clients: their difference is the A/A noise) and with it, in blocks of shuffled order (the
   shadow side is drained between blocks, so an unwrapped block never shares the machine
   with shadow work). This includes the shadow
   side's CPU and GIL use in the same process and the extra load on the shared server; on a
   2-CPU machine running other work it is noisy — read it with its A/A spread.
3. **Shadow completion** (goal: ≥ 95 % of mirrored calls written, none silently dropped):
   the per-process counters — sampled = pairs written + dropped + abandoned + cancelled.

Run: ``python -m pytest benchmarks/bench_shadow.py --benchmark-only -s`` (about 2 minutes), or
``python benchmarks/bench_shadow.py``. Figures land in pytest-benchmark's ``extra_info``.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai

from harness.emulator.server import EmulatorProcess
from harness.shadow import ShadowClient

TIME_SCALE = 0.05
CALLS = 600          # wrapped calls for the direct measurement (half streaming)
BLOCKS = 8           # end-to-end: alternating blocks of …
BLOCK = 40           # … this many calls each, per side
SYSTEM = "You are the support assistant of a small online shop. Answer in two sentences."
QUESTIONS = ["What are your support hours?", "How do I return an item?",
             "Do you ship to Canada?", "Can I change my delivery address?"]


def _request(i: int, stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"model": "gpt-4.1-mini", "temperature": 0,
                           "messages": [{"role": "system", "content": SYSTEM},
                                        {"role": "user", "content": QUESTIONS[i % 4]}],
                           "shadow_key": f"user-{i}"}
    if stream:
        out["stream"] = True
    return out


class _Inner:
    """Stands in for the SDK's ``chat.completions`` and times the SDK's own work, on the wall
    clock and on this thread's CPU clock."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.ns = 0
        self.cpu_ns = 0

    def create(self, **kwargs: Any) -> Any:
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        result = self.real.create(**kwargs)
        self.ns += time.perf_counter_ns() - t0
        self.cpu_ns += time.thread_time_ns() - c0
        if isinstance(result, openai.Stream):
            result._iterator = self._timed(result._iterator)
        return result

    def _timed(self, inner: Iterator[Any]) -> Iterator[Any]:
        while True:
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            try:
                item = next(inner)
            except StopIteration:
                return
            finally:
                self.ns += time.perf_counter_ns() - t0
                self.cpu_ns += time.thread_time_ns() - c0
            yield item


def _call(client: Any, request: dict[str, Any]) -> tuple[int, int, str]:
    """One call as an application makes it (create, then read the stream): wall ns, CPU ns."""
    t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
    result = client.chat.completions.create(**request)
    if request.get("stream"):
        text = "".join(c.choices[0].delta.content or "" for c in result if c.choices)
    else:
        text = result.choices[0].message.content or ""
    return time.perf_counter_ns() - t0, time.thread_time_ns() - c0, text


def _pcts(values_ms: list[float]) -> dict[str, float]:
    a = np.asarray(values_ms)
    return {"p50": round(float(np.percentile(a, 50)), 4),
            "p99": round(float(np.percentile(a, 99)), 4),
            "max": round(float(a.max()), 4), "n": int(a.size)}


def _direct(client: ShadowClient, inner: _Inner, start: int, n: int,
            wall: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    for i in range(start, start + n):
        stream = i % 2 == 0
        inner.ns = inner.cpu_ns = 0
        ns, cpu_ns, _ = _call(client, _request(i, stream))
        kind = "stream" if stream else "non-stream"
        wall[kind].append((ns - inner.ns) / 1e6)
        cpu[kind].append((cpu_ns - inner.cpu_ns) / 1e6)


def _summary(values: dict[str, list[float]]) -> dict[str, Any]:
    return {"all": _pcts(values["stream"] + values["non-stream"]),
            **{k: _pcts(v) for k, v in values.items()}}


def measure(run_dir: Path) -> dict[str, Any]:
    with EmulatorProcess(profile="parity", time_scale=TIME_SCALE) as emu:
        def sdk() -> openai.OpenAI:
            return openai.OpenAI(base_url=emu.base_url, api_key="x", max_retries=0)

        plain, plain_again = sdk(), sdk()
        client = ShadowClient(sdk(), sample_rate=1.0, run_dir=run_dir)
        # the control: the same wrapper and timing shim, nothing sampled (no tap, no shadow)
        control = ShadowClient(sdk(), sample_rate=0.0, run_dir=run_dir.with_name("control"))
        inner = _Inner(client.chat.completions._inner)
        client.chat.completions._inner = inner
        control_inner = _Inner(control.chat.completions._inner)
        control.chat.completions._inner = control_inner
        for i in range(20):  # warm every client's connection and the SDK's models
            bare = {k: v for k, v in _request(i, i % 2 == 0).items() if k != "shadow_key"}
            for c in (plain, plain_again):
                _call(c, bare)
            _call(client, _request(i, i % 2 == 0))
            _call(control, _request(i, i % 2 == 0))
        client.shadow.flush(30)

        # 1. the wrapper's own time per call, in alternating blocks with the control
        wall: dict[str, dict[str, list[float]]] = {
            side: {"stream": [], "non-stream": []} for side in ("wrapped", "control")}
        cpu: dict[str, dict[str, list[float]]] = {
            side: {"stream": [], "non-stream": []} for side in ("wrapped", "control")}
        per_block = CALLS // BLOCKS
        for b in range(BLOCKS):
            for side in (("wrapped", "control") if b % 2 == 0 else ("control", "wrapped")):
                c, i = (client, inner) if side == "wrapped" else (control, control_inner)
                _direct(c, i, b * per_block, per_block, wall[side], cpu[side])
                client.shadow.flush(60)

        # 2. end to end, blocks in shuffled order, shadow side drained in between
        e2e: dict[str, list[float]] = {"plain": [], "plain_again": [], "wrapped": []}
        clients = {"plain": plain, "plain_again": plain_again, "wrapped": client}
        rng = random.Random(0)
        for _ in range(BLOCKS):
            for side in rng.sample(sorted(e2e), 3):
                for j in range(BLOCK):
                    req = _request(rng.randrange(1_000_000), j % 2 == 0)
                    if side != "wrapped":
                        req.pop("shadow_key")
                    ns, _, _ = _call(clients[side], req)
                    e2e[side].append(ns / 1e6)
                client.shadow.flush(60)

        drained = client.shadow.flush(60)
        for c in (client, control):
            c.close()
        plain.close()
        plain_again.close()
    stats = client.shadow.stats()
    accounted = (stats.pairs_written + stats.dropped_queue_full + stats.dropped_closed
                 + stats.abandoned_streams + stats.cancelled_at_close)

    def delta(a: list[float], b: list[float], q: float) -> float:
        return round(float(np.percentile(a, q) - np.percentile(b, q)), 3)

    wall_all = {s: wall[s]["stream"] + wall[s]["non-stream"] for s in wall}
    info: dict[str, Any] = {
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "overhead_cpu_ms": _summary(cpu["wrapped"]),
        "control_cpu_ms": _summary(cpu["control"]),
        "overhead_wall_ms": _summary(wall["wrapped"]),
        "control_wall_ms": _summary(wall["control"]),
        "wall_p99_vs_control_ms": delta(wall_all["wrapped"], wall_all["control"], 99),
        "e2e_ms": {k: _pcts(v) for k, v in e2e.items()},
        "e2e_p50_delta_ms": delta(e2e["wrapped"], e2e["plain"], 50),
        "e2e_p99_delta_ms": delta(e2e["wrapped"], e2e["plain"], 99),
        "aa_p50_delta_ms": delta(e2e["plain_again"], e2e["plain"], 50),
        "aa_p99_delta_ms": delta(e2e["plain_again"], e2e["plain"], 99),
        "shadow": stats.as_dict(),
        "completed_share": stats.pairs_written / stats.sampled if stats.sampled else None,
        "all_accounted": accounted == stats.sampled,
        "drained": drained,
    }
    info["goals"] = {
        "overhead_cpu_p99_le_1ms": info["overhead_cpu_ms"]["all"]["p99"] <= 1.0,
        "completed_ge_95pct": (info["completed_share"] or 0.0) >= 0.95,
        "none_silently_dropped": info["all_accounted"],
    }
    # Not asserted: on a shared machine the wall clock measures the scheduler (see the control).
    info["wall_goal_met"] = info["wall_p99_vs_control_ms"] <= 1.0
    return info


def test_shadow_overhead_and_completion(benchmark: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        info = benchmark.pedantic(measure, args=(Path(tmp) / "run",), rounds=1, iterations=1)
    benchmark.extra_info.update(info)
    print(json.dumps(info, indent=2))
    assert all(info["goals"].values()), info["goals"]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        result = measure(Path(tmp) / "run")
    print(json.dumps(result, indent=2))
    sys.exit(0 if all(result["goals"].values()) else 1)
