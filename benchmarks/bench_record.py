"""``harness record`` overhead (issue 18, item 4): what recording adds to an application's call.

1. **The recorder's own time per call** (the goal): ``create`` wrapped by the recorder vs the
   same ``create`` unwrapped, where ``create`` returns at once, so the difference is the
   recording alone (building the body, ``json.dumps``, the locked append). Three bodies: a
   one-message request, a 10-turn conversation with a 2 kB system prompt and earlier replies
   passed back as SDK objects (~8 kB), and a ~64 kB conversation. Blocks of wrapped and
   unwrapped calls alternate; per-call times are taken on the wall clock. Goal: ≤ 100 µs at
   p50 for the ~8 kB body (a network call is milliseconds).
2. **End to end** (reported): SDK calls to the ``zero``-profile emulator in its own process,
   half streamed and read to the end, through a plain client, a second plain client (the A/A
   spread: the machine's noise) and a ``record()``-ed client, in alternating blocks; and the
   recorder's own time inside the recorded calls (all that recording adds to a call, by
   construction: on a loaded machine the whole-call difference is mostly noise).
3. **Start-up** (reported): a bare ``python -c pass``, ``import openai``, and ``import
   openai`` with a client's chat resource loaded, each with and without ``harness record``'s
   environment (its ``sitecustomize``, and the patching when the chat module loads), best of
   several interleaved rounds.

Run: ``python -m pytest benchmarks/bench_record.py --benchmark-only -s`` (about a minute).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessage

from harness.emulator.server import EmulatorProcess
from harness.shadow.recorder import CHAT_URL, BatchRecorder, _recording, record, recording_env

MODEL = "gpt-4.1-mini"
SYSTEM = "You are the support assistant of Acme. " + "Answer briefly and cite the help page. " * 50
MAX_P50_US = 100.0
CALLS = 2_000
BLOCK = 200
E2E_CALLS = 300


def _conversation(turns: int, words: int) -> list[Any]:
    messages: list[Any] = [{"role": "system", "content": SYSTEM}]
    for n in range(turns):
        messages.append({"role": "user", "content": f"Question {n}: " + "why " * words})
        messages.append(ChatCompletionMessage(role="assistant", content="because " * words))
    messages.append({"role": "user", "content": "And now?"})
    return messages


BODIES: dict[str, dict[str, Any]] = {
    "small": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "temperature": 0},
    "medium": {"model": MODEL, "messages": _conversation(10, 25), "stream": True},
    "large": {"model": MODEL, "messages": _conversation(40, 180), "stream": True},
}


def _per_call_us(fn: Callable[..., Any], kwargs: dict[str, Any], n: int) -> list[float]:
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        fn(**kwargs)
        out.append((clock() - t0) / 1000)
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def direct_overhead(tmp: Path) -> dict[str, float]:
    """Recorded − plain per-call time of a no-op ``create``, by body size (µs)."""

    def create(**kwargs: Any) -> object:
        return kwargs

    recorder = BatchRecorder(tmp / "direct.jsonl")
    wrapped = _recording(create, CHAT_URL, recorder)
    info: dict[str, float] = {}
    for name, body in BODIES.items():
        plain: list[float] = []
        recorded: list[float] = []
        for _ in range(CALLS // BLOCK):
            plain += _per_call_us(create, body, BLOCK)
            recorded += _per_call_us(wrapped, body, BLOCK)
        info[f"{name}_body_bytes"] = len((tmp / "direct.jsonl").read_bytes().splitlines()[-1])
        info[f"{name}_p50_us"] = _p(recorded, 0.5) - _p(plain, 0.5)
        info[f"{name}_p99_us"] = _p(recorded, 0.99) - _p(plain, 0.99)
    recorder.close()
    return info


class _TimedRecorder(BatchRecorder):
    """A recorder noting how long each of its writes took (ms): all it adds to a call."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.ms: list[float] = []

    def write(self, url: Any, kwargs: Any) -> None:
        t0 = time.perf_counter()
        super().write(url, kwargs)
        self.ms.append((time.perf_counter() - t0) * 1000)


def end_to_end(tmp: Path) -> dict[str, float]:
    """p50 of whole calls (ms) through plain, plain again and recorded clients, and of the
    recorder's own time inside the recorded calls."""
    times: dict[str, list[float]] = {"plain": [], "plain_again": [], "recorded": []}
    recorder = _TimedRecorder(tmp / "e2e.jsonl")
    with EmulatorProcess(profile="zero") as emu:
        clients = {
            name: openai.OpenAI(base_url=emu.base_url, api_key="sk-bench", max_retries=0)
            for name in times
        }
        record(clients["recorded"], recorder)
        messages = _conversation(3, 20)
        for block in range(E2E_CALLS // 20):
            order = list(times) if block % 2 else list(reversed(times))
            for name in order:
                client = clients[name]
                for i in range(20):
                    t0 = time.perf_counter()
                    if i % 2:
                        stream = client.chat.completions.create(
                            model=MODEL, messages=messages, stream=True
                        )
                        for _ in stream:
                            pass
                    else:
                        client.chat.completions.create(model=MODEL, messages=messages)
                    times[name].append((time.perf_counter() - t0) * 1000)
        for client in clients.values():
            client.close()
    p50 = {name: statistics.median(values) for name, values in times.items()}
    return {
        "e2e_plain_p50_ms": p50["plain"],
        "e2e_aa_spread_ms": abs(p50["plain_again"] - p50["plain"]),
        "e2e_recorded_minus_plain_p50_ms": p50["recorded"] - p50["plain"],
        "e2e_recorder_p50_ms": statistics.median(recorder.ms),
        "e2e_recorder_p99_ms": _p(recorder.ms, 0.99),
    }


#: what each start-up case runs: nothing, the SDK imported, the SDK's chat resource loaded
STARTS = {
    "bare": "pass",
    "openai": "import openai",
    "chat": "import openai; openai.OpenAI(api_key='k').chat.completions",
}


def startup(tmp: Path) -> dict[str, float]:
    """Best-of wall time (ms) of a Python start, with and without recording switched on."""
    env = recording_env(tmp / "startup.jsonl")
    best: dict[str, float] = {}
    for _ in range(7):
        for case, code in STARTS.items():
            for label, run_env in (("plain", None), ("recording", env)):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], env=run_env, check=True)
                key = f"start_{case}_{label}_ms"
                best[key] = min(best.get(key, float("inf")), (time.perf_counter() - t0) * 1000)
    return best


def test_recording_overhead(benchmark: Any, tmp_path: Path) -> None:
    info: dict[str, float] = {}

    def one_round() -> None:
        info.update(direct_overhead(tmp_path))

    benchmark.pedantic(one_round, rounds=1, iterations=1)
    info.update(end_to_end(tmp_path))
    info.update(startup(tmp_path))
    benchmark.extra_info.update(info)
    print()
    for name in BODIES:
        print(
            f"recorder, {name} body ({info[f'{name}_body_bytes']:,.0f} B): "
            f"+{info[f'{name}_p50_us']:.1f} µs p50, +{info[f'{name}_p99_us']:.1f} µs p99"
        )
    print(
        f"end to end: plain p50 {info['e2e_plain_p50_ms']:.2f} ms, recorded − plain "
        f"{info['e2e_recorded_minus_plain_p50_ms']:+.3f} ms (A/A spread "
        f"{info['e2e_aa_spread_ms']:.3f} ms); the recorder's own time in those calls "
        f"{info['e2e_recorder_p50_ms']:.3f} ms p50, {info['e2e_recorder_p99_ms']:.3f} ms p99"
    )
    print(
        "start-up (best of 7): "
        + ", ".join(
            f"{case} {info[f'start_{case}_plain_ms']:.0f} → "
            f"{info[f'start_{case}_recording_ms']:.0f} ms"
            for case in STARTS
        )
    )
    assert info["medium_p50_us"] <= MAX_P50_US


if __name__ == "__main__":
    pytest.main([__file__, "--benchmark-only", "-s", "-p", "no:randomly"])
