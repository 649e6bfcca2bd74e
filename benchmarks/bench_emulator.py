"""Emulator benchmarks, as ratios measured in the same run (issue 4).

1. Throughput: the emulator (own process, ``zero`` profile, non-streaming chat completions)
   against a minimal JSON endpoint on the same stack (Starlette + uvicorn + httptools, same
   uvicorn settings and socket options), driven by the same raw keep-alive HTTP/1.1 load
   generator, in alternating rounds. Goal: ratio ≥ 0.5, checked on server CPU per request
   where ``/proc`` gives it (Linux), else on requests per second. The servers are
   single-threaded and CPU-bound, so CPU per request is the inverse of their capacity; the
   wall-clock rates share the cores with the load generator and anything else running, so
   they measure the machine as much as the server (both are reported).
2. Timing accuracy: a 50 ms TTFT profile, emulator in its own process, a bare httpx2 client at
   concurrency 1 reads the first delta; its TTFT p50 on the wire clock (from the request
   leaving, httpcore2 trace) is within 1 ms of the truth log's. The call clock (from before
   ``client.stream()``, so including httpx2's request building) is reported beside it.

Run: ``python -m pytest benchmarks/bench_emulator.py --benchmark-only -s``. Figures land in
pytest-benchmark's ``extra_info`` (``--benchmark-json``) and are printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from harness.emulator.profiles import load_profile
from harness.emulator.server import EmulatorProcess
from harness.emulator.truth import read_truth

CHAT_BODY = json.dumps(
    {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "Hello there, what are your support hours?"}],
    }
).encode()
CONCURRENCY = 16
ROUND_S = 2.0
ROUNDS = 4


# --- the baseline server: run as ``python bench_emulator.py --minimal`` ---------------------------


def _serve_minimal() -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from harness.emulator.server import bind_socket, uvicorn_config

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"id": "x", "object": "chat.completion", "model": body.get("model")})

    app = Starlette(routes=[Route("/v1/chat/completions", endpoint, methods=["POST"])])
    sock = bind_socket("127.0.0.1", 0)
    print(f"minimal listening on http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


class _Minimal:
    def __enter__(self) -> _Minimal:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--minimal"], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.base_url = line.split()[-1]
        self._drain = threading.Thread(target=self.proc.stdout.read, daemon=True)
        self._drain.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._drain.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def minimal() -> Iterator[_Minimal]:
    with _Minimal() as server:
        yield server


# --- load generator -----------------------------------------------------------------------------


async def _load(url: str, seconds: float, concurrency: int) -> int:
    """Requests completed by ``concurrency`` keep-alive connections in ``seconds``."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\n"
        b"authorization: Bearer sk-test\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(CHAT_BODY)).encode() + b"\r\n\r\n" + CHAT_BODY
    )
    stop = time.perf_counter() + seconds

    async def worker() -> int:
        reader, writer = await asyncio.open_connection(host, int(port))
        done = 0
        while time.perf_counter() < stop:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            body = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                raise AssertionError(body[:200])
            done += 1
        writer.close()
        await writer.wait_closed()
        return done

    return sum(await asyncio.gather(*[worker() for _ in range(concurrency)]))


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _round(url: str, pid: int | None) -> tuple[float, float | None]:
    """(requests/s, server CPU µs per request) for one timed round."""
    cpu0 = _cpu_s(pid) if pid else None
    n = asyncio.run(_load(url, ROUND_S, CONCURRENCY))
    cpu1 = _cpu_s(pid) if pid else None
    per_req = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / n * 1e6
    return n / ROUND_S, per_req


def test_throughput_zero_profile_vs_minimal_endpoint(benchmark: Any, minimal: _Minimal) -> None:
    with EmulatorProcess(profile="zero") as emu:
        assert emu.pid is not None
        targets = {
            "minimal": (minimal.base_url, minimal.proc.pid),
            "emulator": (emu.base_url, emu.pid),
        }
        for url, _ in targets.values():  # warm up both (imports, caches, connections)
            asyncio.run(_load(url, 0.5, CONCURRENCY))

        def measure() -> dict[str, list[tuple[float, float | None]]]:
            out: dict[str, list[tuple[float, float | None]]] = {k: [] for k in targets}
            for _ in range(ROUNDS):  # alternate, so drift hits both alike
                for name, (url, pid) in targets.items():
                    out[name].append(_round(url, pid))
            return out

        results = benchmark.pedantic(measure, rounds=1, iterations=1)
    # Other load on the machine only ever slows a round down, so compare each server's best
    # round (medians are reported too). CPU per request (each server's least) is the gate:
    # that load moves both servers' figures alike, while a busy moment can sink one server's
    # best round alone.
    best = {k: max(r for r, _ in v) for k, v in results.items()}
    median = {k: statistics.median(r for r, _ in v) for k, v in results.items()}
    cpu = {
        k: min(c for _, c in v if c is not None) if all(c is not None for _, c in v) else None
        for k, v in results.items()
    }
    ratio = best["emulator"] / best["minimal"]
    info = {
        "minimal_rps": round(best["minimal"]),
        "emulator_rps": round(best["emulator"]),
        "throughput_ratio": round(ratio, 3),
        "median_round_ratio": round(median["emulator"] / median["minimal"], 3),
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        "round_s": ROUND_S,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if cpu["minimal"] and cpu["emulator"]:
        info |= {
            "minimal_cpu_us_per_req": round(cpu["minimal"]),
            "emulator_cpu_us_per_req": round(cpu["emulator"]),
            "cpu_ratio": round(cpu["minimal"] / cpu["emulator"], 3),
        }
    benchmark.extra_info.update(info)
    print("\nthroughput:", json.dumps(info))
    assert info.get("cpu_ratio", ratio) >= 0.5, info


# --- timing accuracy ----------------------------------------------------------------------------


def _ttft(client: httpx2.Client, url: str, api: str, i: int) -> tuple[str, float, float]:
    """(x-request-id, wire TTFT ms, call TTFT ms) for one streamed request.

    Wire clock (DESIGN §4): from httpcore2's ``send_request_headers.started`` trace event —
    the request's bytes leaving — to the first bytes holding a text delta. Call clock: from
    just before ``client.stream()``, so it also counts httpx2 building the request.
    """
    if api == "chat":
        body: dict[str, Any] = {
            "model": "gpt-4.1-mini",
            "stream": True,
            "temperature": 0,
            "messages": [{"role": "user", "content": f"q{i} hello"}],
        }
        marker, path = b'"content":"', "/chat/completions"
    else:
        body = {
            "model": "gpt-4.1-mini",
            "stream": True,
            "temperature": 0,
            "store": False,
            "input": f"q{i} hello",
        }
        marker, path = b"response.output_text.delta", "/responses"
    sent: list[float] = []

    def trace(name: str, info: dict[str, Any]) -> None:
        if name == "http11.send_request_headers.started":
            sent.append(time.perf_counter())

    start = time.perf_counter()
    first = None
    with client.stream(
        "POST",
        url + path,
        json=body,
        extensions={"trace": trace},
        headers={"authorization": "Bearer sk-test"},
    ) as r:
        for chunk in r.iter_raw():
            if first is None and marker in chunk.replace(b'"content":""', b""):
                first = time.perf_counter()
        rid = r.headers["x-request-id"]
    assert first is not None and sent
    return rid, (first - sent[0]) * 1000, (first - start) * 1000


def test_ttft_accuracy_50ms(benchmark: Any, tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    profile = load_profile("zero").derive(
        {"both": {"ttft_ms": {"median": 50}, "per_token_ms": {"median": 0.2}}}
    )
    n = 40
    with EmulatorProcess(profile=profile, truth_log=truth) as emu, httpx2.Client() as client:
        for i in range(3):  # connection + first-request warm-up, not measured
            _ttft(client, emu.base_url, "chat", -i)

        def measure() -> dict[str, list[tuple[str, float]]]:
            return {
                api: [_ttft(client, emu.base_url, api, i) for i in range(n)]
                for api in ("chat", "responses")
            }

        seen = benchmark.pedantic(measure, rounds=1, iterations=1)
    records = {r["request_id"]: r for r in read_truth(truth)}
    info: dict[str, Any] = {
        "requests_per_api": n,
        "configured_ttft_ms": 50,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    for api, seen_api in seen.items():
        wire = [w for _, w, _ in seen_api]
        call = [c for _, _, c in seen_api]
        truth_ms = [records[rid]["first_delta_ms"] for rid, _, _ in seen_api]
        gaps = sorted(w - t for w, t in zip(wire, truth_ms, strict=True))
        info[api] = {
            "truth_ttft_p50_ms": round(statistics.median(truth_ms), 3),
            "wire_ttft_p50_ms": round(statistics.median(wire), 3),
            "wire_minus_truth_p50_ms": round(
                statistics.median(wire) - statistics.median(truth_ms), 3
            ),
            "wire_gap_per_request_p95_ms": round(gaps[int(0.95 * len(gaps)) - 1], 3),
            "call_ttft_p50_ms": round(statistics.median(call), 3),
            "call_minus_truth_p50_ms": round(
                statistics.median(call) - statistics.median(truth_ms), 3
            ),
        }
    benchmark.extra_info.update(info)
    print("\nttft accuracy:", json.dumps(info))
    for api in ("chat", "responses"):
        assert abs(info[api]["wire_minus_truth_p50_ms"]) <= 1.0, api
        assert abs(info[api]["truth_ttft_p50_ms"] - 50) <= 1.0, api


if __name__ == "__main__" and "--minimal" in sys.argv:
    _serve_minimal()
