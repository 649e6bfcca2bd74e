"""Shadow mode benchmark (issue 10): the cost on the primary path, and shadow completion.

Setup: the emulator in its own process, with ``parity``'s delays made steady (no lognormal
jitter, every reply 40 tokens) at ``time_scale`` 0.05: ~12.5 ms to the first token, 0.6 ms per
token, so the application mostly waits on the network as it does in production and the spread
of the figures is the machine's, not the profile's. ``openai.OpenAI`` clients, requests issued
back to back, **100 % sampled**.

1. **Added latency on the primary path, end to end** (the headline; goal: ≤ 1 ms at p99): the
   same calls — ``create`` and reading the whole reply, half of them streamed — through
   unwrapped clients and through ``ShadowClient``s, in blocks of shuffled order (every side
   sends the same requests in a round, so the figures pair up call by call). Two separate
   unwrapped clients give the A/A spread (their difference is the machine's noise), beside
   which the wrapped − unwrapped delta is read. Each wrapped block runs with its shadow side
   working (mirroring every call of the block), and the shadow side is drained after it, so
   an unwrapped block never shares the machine with shadow work. Wrapped clients:

   - ``process``: the default, shadow side in a sidecar process (nice +10);
   - ``thread``: the shadow side on threads of the application's process (for comparison);
   - ``process_own_server`` / ``thread_own_server``: the same, mirroring to a second emulator
     process, which separates the shadow side's own cost from the doubled load on the one
     (single-threaded) emulator process both sides share otherwise — a real provider is a
     fleet, not one event loop, so these are the figures to hold against the goal;
   - ``process_idle`` / ``process_own_server_idle``: with ``sidecar_priority="idle"`` (Linux
     ``SCHED_IDLE``: the sidecar runs only on CPUs nothing else wants);
   - ``process_no_mirror``: the sidecar mirroring to a port nobody listens on, so it does
     little (translate, a refused connection, the records): what is left is the application
     process's own share (capturing, pickling, the pipe) plus a lighter machine.

   CPU time of every process is recorded per side, and the load average before and after.
2. **The wrapper's own time per call** (process mode), measured directly: the time the caller
   spends in the wrapper outside the SDK's own ``create``/``next()``, on the thread's CPU clock
   and on the wall clock, against a *control* (the same wrapper and timing shim, nothing
   sampled) in alternating blocks.
3. **Shadow completion** (goal: ≥ 95 % of mirrored calls written, none silently dropped): the
   counters — sampled = written + failed + dropped + abandoned + cancelled + lost, i.e.
   ``unsettled == 0`` after the drain — for every wrapped client.
4. **The mirror's own timing error** (``mirror_timing``): both sides get the same steady
   server delays, so mirrored − primary wire TTFT and total, pair by pair, show what the shadow
   side's client and scheduling add to the figures it records (reported, not asserted).

Run: ``python -m pytest benchmarks/bench_shadow.py --benchmark-only -s`` (about 3 minutes), or
``python benchmarks/bench_shadow.py``. Figures land in pytest-benchmark's ``extra_info``. On a
2-CPU machine shared with other work the figures move from run to run: run it 2–3 times and
read each delta beside its A/A spread and load average.
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
from harness.records import Observation
from harness.rundir import read_observations
from harness.shadow.client import ShadowClient
from harness.shadow.store import shard_paths

TIME_SCALE = 0.05
CALLS = 400  # direct measurement: wrapped calls (half streaming), as many for the control
BLOCKS = 16  # end to end: shuffled rounds of …
BLOCK = 30  # … this many calls per side
WRAPPED = (
    "process",
    "process_idle",
    "thread",
    "process_own_server",
    "thread_own_server",
    "process_own_server_idle",
    "process_no_mirror",
)
#: a port nothing listens on: the mirror fails at once (connection refused)
NOWHERE = "http://127.0.0.1:9/v1"
STEADY = """\
extends: parity
name: steady
description: parity's delays without jitter, 40-token replies (benchmarks)
both:
  queue_ms: {median: 5, sigma: 0}
  ttft_ms: {median: 250, sigma: 0}
  cold_penalty_ms: 0
  per_token_ms: {median: 12, sigma: 0}
content:
  reply_tokens: {min: 40, max: 40}
"""
SYSTEM = "You are the support assistant of a small online shop. Answer in two sentences."
QUESTIONS = [
    "What are your support hours?",
    "How do I return an item?",
    "Do you ship to Canada?",
    "Can I change my delivery address?",
]


def _request(i: int, stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": "gpt-4.1-mini",
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTIONS[i % 4]},
        ],
        "shadow_key": f"user-{i}",
    }
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
    return {
        "p50": round(float(np.percentile(a, 50)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "max": round(float(a.max()), 3),
        "n": int(a.size),
    }


def _delta(a: list[float], b: list[float], q: float) -> float:
    return round(float(np.percentile(a, q) - np.percentile(b, q)), 3)


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a process used so far; 0 when unknown (not Linux)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _direct(
    client: ShadowClient,
    inner: _Inner,
    start: int,
    n: int,
    wall: dict[str, list[float]],
    cpu: dict[str, list[float]],
) -> None:
    for i in range(start, start + n):
        stream = i % 2 == 0
        inner.ns = inner.cpu_ns = 0
        ns, cpu_ns, _ = _call(client, _request(i, stream))
        kind = "stream" if stream else "non-stream"
        wall[kind].append((ns - inner.ns) / 1e6)
        cpu[kind].append((cpu_ns - inner.cpu_ns) / 1e6)


def _summary(values: dict[str, list[float]]) -> dict[str, Any]:
    return {
        "all": _pcts(values["stream"] + values["non-stream"]),
        **{k: _pcts(v) for k, v in values.items()},
    }


def _completion(client: ShadowClient) -> dict[str, Any]:
    stats = client.shadow.stats()
    return {
        "counters": stats.as_dict(),
        "completed_share": stats.pairs_written / stats.sampled if stats.sampled else None,
        "all_accounted": stats.unsettled == 0,
    }


def _end_to_end(
    clients: dict[str, Any], wrapped: dict[str, ShadowClient], pids: dict[str, int | None]
) -> dict[str, Any]:
    """Blocks of calls per side in shuffled order; each wrapped block's shadow side drained."""
    e2e: dict[str, list[float]] = {side: [] for side in clients}
    cpu_ms: dict[str, dict[str, float]] = {side: {} for side in clients}
    rng = random.Random(0)
    for _ in range(BLOCKS):
        requests = [(rng.randrange(1_000_000), j % 2 == 0) for j in range(BLOCK)]
        for side in rng.sample(sorted(clients), len(clients)):
            before = {name: _cpu_s(pid) for name, pid in pids.items()}
            own = time.process_time()
            for i, stream in requests:
                req = _request(i, stream)
                if side not in wrapped:
                    req.pop("shadow_key")
                ns, _, _ = _call(clients[side], req)
                e2e[side].append(ns / 1e6)
            if side in wrapped:
                wrapped[side].shadow.flush(60)  # its mirrored calls count towards its block
            used = cpu_ms[side]
            used["app"] = used.get("app", 0.0) + (time.process_time() - own) * 1e3
            for name, pid in pids.items():
                used[name] = used.get(name, 0.0) + (_cpu_s(pid) - before[name]) * 1e3
    calls = BLOCKS * BLOCK
    per_call = {
        side: {k: round(v / calls, 2) for k, v in used.items()} for side, used in cpu_ms.items()
    }

    def paired(side: str) -> float:
        # median of call-by-call differences (the same request, the same round)
        return round(float(np.median(np.subtract(e2e[side], e2e["plain"]))), 3)

    def deltas(side: str) -> dict[str, float]:
        return {
            **{f"p{q}_delta_ms": _delta(e2e[side], e2e["plain"], q) for q in (50, 90, 99)},
            "paired_p50_delta_ms": paired(side),
        }

    out: dict[str, Any] = {
        "ms": {k: _pcts(v) for k, v in e2e.items()},
        "aa": deltas("plain_again"),
        "cpu_ms_per_call": per_call,
    }
    for mode in wrapped:
        out[mode] = deltas(mode)
    return out


def _fidelity(run_dir: Path) -> dict[str, Any]:
    """How the mirror's own timings compare with the primary's, pair by pair.

    With the steady profile both sides get the same server-side delays, so the mirrored
    (Responses) call's wire TTFT and total minus the primary (Chat) call's are the shadow
    side's own timing error (its client, its scheduling) plus the two APIs' small differences
    in framing, with the primary's own noise beside it.
    """
    by_pair: dict[str, dict[str, Observation]] = {}
    for path in shard_paths(run_dir):
        for obs in read_observations(path):
            if obs.ok:
                by_pair.setdefault(obs.prompt_id, {})[obs.api] = obs
    diffs: dict[str, list[float]] = {"ttft_ms": [], "total_ms": []}
    for pair in by_pair.values():
        chat, resp = pair.get("chat"), pair.get("responses")
        if chat is None or resp is None:
            continue
        for name in diffs:
            a, b = getattr(resp, name), getattr(chat, name)
            if a is not None and b is not None:
                diffs[name].append(a - b)
    return {
        f"mirror_minus_primary_{name}": _pcts(values) if values else None
        for name, values in diffs.items()
    }


def measure(run_root: Path) -> dict[str, Any]:
    load_before = os.getloadavg()
    profile = run_root / "steady.yaml"
    profile.write_text(STEADY, encoding="utf-8")
    with (
        EmulatorProcess(profile=str(profile), time_scale=TIME_SCALE) as emu,
        EmulatorProcess(profile=str(profile), time_scale=TIME_SCALE) as other,
    ):

        def sdk() -> openai.OpenAI:
            return openai.OpenAI(base_url=emu.base_url, api_key="x", max_retries=0)

        wrapped = {
            "process": ShadowClient(sdk(), sample_rate=1.0, run_dir=run_root / "process"),
            "thread": ShadowClient(
                sdk(), sample_rate=1.0, mode="thread", run_dir=run_root / "thread"
            ),
            **{
                f"{mode}_own_server": ShadowClient(
                    sdk(),
                    sample_rate=1.0,
                    mode=mode,
                    shadow_base_url=other.base_url,
                    shadow_api_key="x",
                    run_dir=run_root / f"{mode}_own_server",
                )
                for mode in ("process", "thread")
            },
            "process_idle": ShadowClient(
                sdk(), sample_rate=1.0, sidecar_priority="idle", run_dir=run_root / "process_idle"
            ),
            "process_own_server_idle": ShadowClient(
                sdk(),
                sample_rate=1.0,
                sidecar_priority="idle",
                shadow_base_url=other.base_url,
                shadow_api_key="x",
                run_dir=run_root / "process_own_server_idle",
            ),
            "process_no_mirror": ShadowClient(
                sdk(),
                sample_rate=1.0,
                shadow_base_url=NOWHERE,
                shadow_api_key="x",
                run_dir=run_root / "process_no_mirror",
            ),
        }
        clients: dict[str, Any] = {"plain": sdk(), "plain_again": sdk(), **wrapped}
        # the direct measurement: the same wrapper and timing shim, nothing sampled
        control = ShadowClient(sdk(), sample_rate=0.0, run_dir=run_root / "control")
        direct = ShadowClient(sdk(), sample_rate=1.0, run_dir=run_root / "direct")
        for i in range(20):  # warm every client's connection and the SDK's models
            for name, c in [*clients.items(), ("control", control), ("direct", direct)]:
                req = _request(i, i % 2 == 0)
                if name.startswith("plain"):
                    req.pop("shadow_key")
                _call(c, req)
        for c in (*wrapped.values(), direct):
            c.shadow.flush(60)
        pids: dict[str, int | None] = {
            "emulator": emu.pid,
            "other_emulator": other.pid,
            **{
                f"sidecar_{m}": wrapped[m].shadow.engine.pid  # type: ignore[union-attr]
                for m in WRAPPED
                if m.startswith("process")
            },
        }

        # 1. end to end (the headline)
        e2e = _end_to_end(clients, wrapped, pids)

        # 2. the wrapper's own time per call, in alternating blocks with the control
        inner = _Inner(direct.chat.completions._inner)
        direct.chat.completions._inner = inner
        control_inner = _Inner(control.chat.completions._inner)
        control.chat.completions._inner = control_inner
        wall: dict[str, dict[str, list[float]]] = {
            side: {"stream": [], "non-stream": []} for side in ("wrapped", "control")
        }
        cpu: dict[str, dict[str, list[float]]] = {
            side: {"stream": [], "non-stream": []} for side in ("wrapped", "control")
        }
        per_block = CALLS // 8
        for b in range(8):
            for side in ("wrapped", "control") if b % 2 == 0 else ("control", "wrapped"):
                c, i = (direct, inner) if side == "wrapped" else (control, control_inner)
                _direct(c, i, b * per_block, per_block, wall[side], cpu[side])
                direct.shadow.flush(60)

        drained = all(c.shadow.flush(60) for c in (*wrapped.values(), direct))
        for c in (*clients.values(), control, direct):
            c.close()
    load_after = os.getloadavg()
    wall_all = {s: wall[s]["stream"] + wall[s]["non-stream"] for s in wall}
    completion = {name: _completion(c) for name, c in [*wrapped.items(), ("direct", direct)]}
    fidelity = {name: _fidelity(run_root / name) for name in WRAPPED if name != "process_no_mirror"}
    info: dict[str, Any] = {
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "e2e": e2e,
        "overhead_cpu_ms": _summary(cpu["wrapped"]),
        "control_cpu_ms": _summary(cpu["control"]),
        "overhead_wall_ms": _summary(wall["wrapped"]),
        "control_wall_ms": _summary(wall["control"]),
        "wall_p99_vs_control_ms": _delta(wall_all["wrapped"], wall_all["control"], 99),
        "completion": completion,
        "mirror_timing": fidelity,
        "drained": drained,
    }
    info["goals"] = {
        "completed_ge_95pct": all(
            (c["completed_share"] or 0.0) >= 0.95 for c in completion.values()
        ),
        "none_silently_dropped": all(c["all_accounted"] for c in completion.values()),
        "overhead_cpu_p99_le_1ms": info["overhead_cpu_ms"]["all"]["p99"] <= 1.0,
    }
    # Reported, not asserted: on a shared 2-CPU machine the end-to-end p99 is the
    # scheduler's as much as ours (read it beside the A/A spread and the load average).
    info["e2e_goal_met"] = {m: e2e[m]["p99_delta_ms"] <= 1.0 for m in WRAPPED}
    return info


def test_shadow_overhead_and_completion(benchmark: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        info = benchmark.pedantic(measure, args=(Path(tmp),), rounds=1, iterations=1)
    benchmark.extra_info.update(info)
    print(json.dumps(info, indent=2))
    assert all(info["goals"].values()), info["goals"]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        result = measure(Path(tmp))
    print(json.dumps(result, indent=2))
    sys.exit(0 if all(result["goals"].values()) else 1)
