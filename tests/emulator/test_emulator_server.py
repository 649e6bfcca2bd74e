"""Running the emulator: its own process, the CLI, the truth log against the wire clock."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from harness.emulator.profiles import load_profile
from harness.emulator.server import EmulatorProcess
from harness.emulator.testing import nonce
from harness.emulator.truth import read_truth
from harness.errors import HarnessError

MODEL = "gpt-4.1-mini"


def _stream_ttft_ms(client: httpx2.Client, url: str, prompt: str) -> tuple[str, float, float]:
    """(request id, TTFT, total) read by a bare httpx2 client: first content delta bytes."""
    body = {
        "model": MODEL,
        "stream": True,
        "temperature": 0,
        "messages": [{"role": "user", "content": prompt}],
    }
    headers = {"authorization": "Bearer sk-test"}
    start = time.perf_counter()
    first: float | None = None
    with client.stream("POST", f"{url}/chat/completions", json=body, headers=headers) as r:
        for chunk in r.iter_raw():
            if first is None and b'"content":"' in chunk and b'"content":""' not in chunk:
                first = time.perf_counter()
        end = time.perf_counter()
        request_id = r.headers["x-request-id"]
    assert first is not None
    return request_id, (first - start) * 1000, (end - start) * 1000


@pytest.mark.timing
def test_process_truth_log_matches_the_wire(tmp_path: Path, emulators: Any) -> None:
    truth = tmp_path / "truth.jsonl"
    profile = load_profile("zero").derive({"both": {"ttft_ms": 25, "per_token_ms": 0.5}})
    with (
        emulators.running(profile, mode="process", truth_log=truth) as emu,
        httpx2.Client() as client,
    ):
        assert emu.base_url.startswith("http://127.0.0.1:")
        client.get(f"{emu.base_url}/models", headers={"authorization": "Bearer k"})
        seen = [_stream_ttft_ms(client, emu.base_url, f"{nonce()} hi") for _ in range(12)]
    records = {r["request_id"]: r for r in read_truth(truth) if r["api"] == "chat"}
    gaps = [ttft - records[rid]["first_delta_ms"] for rid, ttft, _ in seen]
    totals = [total - records[rid]["total_ms"] for rid, _, total in seen]
    # The server keeps its schedule; the client sees the bytes a little later (loopback, two
    # processes). The 1 ms criterion is checked by benchmarks/bench_emulator.py on a quiet
    # machine; here the bound is loose enough for a busy CI runner.
    assert statistics.median(abs(records[rid]["first_delta_ms"] - 25) for rid, _, _ in seen) < 2
    assert 0 <= statistics.median(gaps) < 8.0
    assert 0 <= statistics.median(totals) < 8.0


def test_process_stops_cleanly_and_on_errors() -> None:
    emu = EmulatorProcess(profile="zero")
    with pytest.raises(RuntimeError, match="boom"), emu:
        proc = emu._proc
        assert proc is not None and proc.poll() is None
        raise RuntimeError("boom")
    assert proc.poll() is not None
    with (
        pytest.raises(HarnessError, match=r"no such profile — did you mean zero\?"),
        EmulatorProcess(profile="zer"),
    ):
        pass


def test_a_child_that_cannot_start_exits_cleanly_while_its_parent_holds_stdin() -> None:
    # The parent keeps the child's stdin open (its lifeline); an early exit used to abort the
    # child's interpreter on the stdin lock its watcher thread held (exit status -6).
    with subprocess.Popen(
        [sys.executable, "-m", "harness.emulator", "--profile", "regresed", "--exit-with-stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        assert proc.wait(60) == 2
        stderr = proc.stderr.read()
    assert stderr == (
        "harness: error: profile 'regresed': no such profile — did you mean regressed? use one "
        "of parity, guide-claims, regressed, zero or a YAML file path\n"
    )


def test_cli_prints_the_address_and_serves(tmp_path: Path) -> None:
    truth = tmp_path / "t.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "emulator",
            "--port",
            "0",
            "--profile",
            "zero",
            "--truth-log",
            str(truth),
            "--time-scale",
            "0.5",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("emulator (not OpenAI) listening on http://127.0.0.1:")
        assert line.endswith("/v1 — profile zero")
        url = line.split()[5]
        with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
            assert client.responses.create(model=MODEL, input="hi").status == "completed"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    (record,) = read_truth(truth)
    assert record["time_scale"] == 0.5 and record["api"] == "responses"


def test_cli_reports_a_bad_profile_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("chat:\n  ttft: 1\n")
    done = subprocess.run(
        [sys.executable, "-m", "harness", "emulator", "--port", "0", "--profile", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"harness: error: profile {bad}: chat.ttft: unknown key"


def test_cli_reports_a_busy_port_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "harness", "emulator", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.startswith(f"harness: error: cannot listen on 127.0.0.1:{port}: ")
    assert done.stderr.count("\n") == 1


def test_truth_log_records_every_request(tmp_path: Path, emulators: Any) -> None:
    truth = tmp_path / "t.jsonl"
    with (
        emulators.running("parity", truth_log=truth, time_scale=0.01) as emu,
        emulators.client(emu) as c,
    ):
        raw = c.responses.with_raw_response.create(model=MODEL, input="hello", stream=True)
        for _ in raw.parse():
            pass
        with pytest.raises(openai.BadRequestError):
            c.responses.create(model=MODEL, input="x", max_output_tokens=3)
    ok, bad = read_truth(truth)
    assert ok["request_id"] == raw.request_id
    assert ok["stream"] is True and ok["status"] == 200 and ok["fault"] is None
    for key in (
        "cold_prefix",
        "input_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "output_tokens",
        "delays_ms",
        "headers_ms",
        "first_delta_ms",
        "total_ms",
        "response_id",
        "model",
    ):
        assert key in ok, key
    assert ok["headers_ms"] <= ok["first_delta_ms"] <= ok["total_ms"]
    assert bad["status"] == 400 and bad["error_code"] == "integer_below_min_value"
    assert json.dumps(ok)  # plain JSON, one line each
    assert truth.read_text().count("\n") == 2


def test_client_disconnect_stops_the_stream(tmp_path: Path, emulators: Any) -> None:
    truth = tmp_path / "t.jsonl"
    profile = load_profile("zero").derive({"both": {"per_token_ms": 10}})
    with (
        emulators.running(profile, truth_log=truth) as emu,
        emulators.client(emu) as c,
    ):
        stream = c.chat.completions.create(
            model=MODEL,
            stream=True,
            messages=[{"role": "user", "content": "Write a detailed essay on tides."}],
        )
        next(iter(stream))
        stream.close()
    (record,) = read_truth(truth)
    assert record["client_disconnected"] is True
    assert record["total_ms"] < record["planned_total_ms"] / 10


@pytest.mark.timing
def test_concurrent_streams_keep_their_schedule(tmp_path: Path, emulators: Any) -> None:
    """Two streams on one emulator process do not delay each other's events.

    The emulator once finished each wait with a blocking sleep on its loop, so a second stream
    stood still meanwhile: each stream's events left up to ~1 ms late.
    """
    import threading

    profile = load_profile("zero").derive({"both": {"ttft_ms": 5, "per_token_ms": 0.7}})
    # A busy machine delays a whole measurement: one re-measurement is allowed, never a looser
    # bound (the blocking design failed every one).
    failures = []
    for attempt in range(2):
        truth = tmp_path / f"truth-{attempt}.jsonl"
        with emulators.running(profile, mode="process", truth_log=truth) as emu:

            def streams(n: int, url: str = emu.base_url) -> None:
                with httpx2.Client() as client:
                    for i in range(n):
                        _stream_ttft_ms(client, url, f"{nonce()} tell me a story {i}")

            workers = [threading.Thread(target=streams, args=(10,)) for _ in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        records = [r for r in read_truth(truth) if r["api"] == "chat"]
        assert len(records) == 20
        late = sorted(r["total_ms"] - r["planned_total_ms"] for r in records)
        assert late[0] >= 0
        # ~0.2 ms (timer slack) on a free loop; the blocking design gave tails of 13-35 ms;
        # two hiccups of a busy machine are tolerated
        if statistics.median(late) < 0.5 and late[-3] < 5:
            return
        failures.append(late)
    pytest.fail(f"lateness of each stream's end (ms), two measurements: {failures}")


@pytest.mark.timing
def test_a_request_arriving_mid_stream_is_served_at_once(tmp_path: Path, emulators: Any) -> None:
    """A stream whose token waits are short must not keep its loop from reading new requests.

    The emulator once finished such waits with a blocking sleep and never returned to its loop
    for the whole stream, so a request arriving meanwhile was read only after the stream ended.
    """
    import threading

    truth = tmp_path / "truth.jsonl"
    profile = load_profile("zero").derive(
        {
            "both": {"ttft_ms": 2, "per_token_ms": 0.5},
            "content": {"reply_tokens": {"min": 300, "max": 300}},
        }
    )
    with (
        emulators.running(profile, mode="process", truth_log=truth) as emu,
        httpx2.Client() as client,
    ):
        client.get(f"{emu.base_url}/models", headers={"authorization": "Bearer k"})

        def stream_long() -> None:
            with httpx2.Client() as other:
                _stream_ttft_ms(other, emu.base_url, f"{nonce()} long")

        long_stream = threading.Thread(target=stream_long)
        long_stream.start()
        time.sleep(0.05)  # the long stream is ~150 ms of tokens; we are in the middle of it
        started = time.perf_counter()
        r = client.post(
            f"{emu.base_url}/chat/completions",
            headers={"authorization": "Bearer k"},
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": "hi"}],
                "max_completion_tokens": 1,
            },
        )
        short_ms = (time.perf_counter() - started) * 1000
        long_stream.join()
    assert r.status_code == 200
    records = {rec["request_id"]: rec for rec in read_truth(truth)}
    short = records[r.headers["x-request-id"]]
    long = next(rec for rec in records.values() if rec["stream"])
    assert long["total_ms"] > 100  # it was still streaming when the short request came
    # served in about its own planned time, not after the long stream's end (~100 ms later)
    assert short_ms < short["planned_total_ms"] + 30, (short_ms, short["planned_total_ms"])
