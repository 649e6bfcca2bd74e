"""harness.shadow.sidecar: the shadow side in its own process — pickling what the primary path
captured, crashes and restarts, what the mirror sends, and what a sidecar refuses.

Behaviour both modes share (sampling, faults, redaction, flush/close) is tested in both modes
in ``test_shadow.py``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx2
import openai
import pytest
from openai._models import construct_type
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import harness.shadow.sidecar as sidecar
from harness.emulator.server import EmulatorThread
from harness.rundir import read_observations
from harness.shadow import ShadowClient, ShadowConfig, merge_shards, shadow_target
from harness.shadow.capture import Capture, CapturedError, compact, read_capture
from harness.transport.wire import WireRecorder

MODEL = "gpt-4.1-mini"
HELLO = [{"role": "user", "content": "What are your support hours?"}]


@pytest.fixture(scope="module")
def slow_emulator(
    tmp_path_factory: pytest.TempPathFactory, module_emulators: Any
) -> EmulatorThread:
    path = tmp_path_factory.mktemp("profiles") / "slow.yaml"
    path.write_text(
        "extends: zero\nname: slow\nresponses:\n  faults: {slow_headers: 1.0, "
        "slow_headers_ms: {median: 2000}}\n",
        encoding="utf-8",
    )
    return module_emulators.start(str(path))


def _client(url: str, run_dir: Path, **options: Any) -> ShadowClient:
    return ShadowClient(
        openai.OpenAI(base_url=url, api_key="test", max_retries=0), run_dir=run_dir, **options
    )


def _until(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _settled(stats: Any) -> None:
    assert stats.unsettled == 0, stats


# --- what crosses the pipe ---------------------------------------------------------------------


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> Any:
    return construct_type(
        type_=ChatCompletionChunk,
        value={
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": MODEL,
            "service_tier": "default",
            "usage": usage,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
            if usage is None
            else [],
        },
    )


def _capture(**fields: Any) -> Capture:
    base: dict[str, Any] = {
        "api": "chat",
        "stream": True,
        "started_at": 1.0,
        "t0_ns": 0,
        "kwargs": {"model": MODEL, "messages": HELLO},
        "recorder": None,
        "ttfb_ns": 2_000_000,
        "end_ns": 9_000_000,
    }
    return Capture(**{**base, **fields})


def _result(capture: Capture) -> dict[str, Any]:
    return dataclasses.asdict(read_capture(capture))


def _round_trip(capture: Capture) -> Capture:
    copy = pickle.loads(pickle.dumps(compact(capture), protocol=5))
    assert isinstance(copy, Capture)
    return copy


def test_compact_stream_with_tool_calls_reads_like_the_original() -> None:
    chunks = [
        _chunk({"role": "assistant", "content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":'},
                    }
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        _chunk({}, "tool_calls"),
        _chunk(
            {},
            usage={
                "prompt_tokens": 9,
                "completion_tokens": 4,
                "total_tokens": 13,
                "prompt_tokens_details": {"cached_tokens": 2},
            },
        ),
    ]
    rec = WireRecorder(
        first_write_ns=100, reads=[(1_500_000, b"HTTP/1.1 200 OK\r\nx-request-id: req_9\r\n\r\n")]
    )
    capture = _capture(
        items=[(3_000_000 + i, c) for i, c in enumerate(chunks)],
        recorder=rec,
        kwargs={
            "model": MODEL,
            "messages": HELLO,
            "extra_headers": {"x": "y"},
            "timeout": 3,
            "top_p": openai.NOT_GIVEN,
        },
    )
    copy = _round_trip(capture)
    assert "extra_headers" not in copy.kwargs and "timeout" not in copy.kwargs
    assert copy.kwargs["top_p"] is not None  # a NOT_GIVEN stays "not given"
    assert all(isinstance(item, dict) for _, item in copy.items)
    original, read = _result(capture), _result(copy)
    assert read == original
    assert read["output_text"] == "Hello" and read["tool_calls"][0].arguments == '{"a":1}'
    assert read["usage"].cached_tokens == 2 and read["headers"]["x-request-id"] == "req_9"


def test_compact_pauses_between_slices_of_a_long_stream() -> None:
    from harness.shadow.capture import PAUSE_EVERY

    chunks = [_chunk({"content": f"w{i} "}) for i in range(3 * PAUSE_EVERY + 2)]
    capture = _capture(items=[(3_000_000 + i, c) for i, c in enumerate(chunks)])
    pauses: list[int] = []
    copy = compact(capture, pause=lambda: pauses.append(1))
    assert len(pauses) == 3  # the sender thread lets the application have the GIL there
    assert _result(copy) == _result(compact(capture)) == _result(capture)


def test_compact_completion_and_error_read_like_the_original() -> None:
    completion = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-2",
            "object": "chat.completion",
            "created": 1,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Fine."},
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    )
    completion._request_id = "req_2"
    done = _capture(stream=False, final=completion, items=[])
    assert _result(_round_trip(done)) == _result(done)
    assert _result(_round_trip(done))["headers"]["x-request-id"] == "req_2"

    request = httpx2.Request("POST", "http://x/v1/chat/completions")
    response = httpx2.Response(
        429, request=request, headers={"retry-after-ms": "5", "x-request-id": "req_3"}
    )
    error = openai.RateLimitError(
        "slow down", response=response, body={"message": "slow down", "code": "rate_limit"}
    )
    failed = _capture(stream=False, items=[], ttfb_ns=None, error=error)
    copy = _round_trip(failed)
    assert isinstance(copy.error, CapturedError) and str(copy.error) == str(error)
    read = _result(copy)
    assert read == _result(failed)
    assert (read["status"], read["error_type"], read["retry_after_ms"]) == (429, "rate_limit", 5)


# --- crashes -------------------------------------------------------------------------------------


def _shared(client: ShadowClient) -> Any:
    engine = client.shadow.engine
    assert isinstance(engine, sidecar.Sidecar) and engine._gen is not None
    return engine._gen.shared


def test_a_crash_is_counted_logged_and_the_sidecar_restarted(
    emulator: EmulatorThread,
    slow_emulator: EmulatorThread,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sidecar, "MAX_RESTARTS", 1)
    run_dir = tmp_path / "run"
    client = _client(
        emulator.base_url,
        run_dir,
        sample_rate=1.0,
        shadow_base_url=slow_emulator.base_url,
        shadow_api_key="test",
    )
    expected = client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0)
    shared = _shared(client)
    _until(lambda: shared[sidecar._RECEIVED] == 1)  # in flight: its mirror takes 2 s
    first = client.shadow.engine.pid  # type: ignore[union-attr]
    assert first is not None and first != os.getpid()
    with caplog.at_level(logging.ERROR, logger="harness.shadow"):
        os.kill(first, signal.SIGKILL)
        for _ in range(3):  # the application's calls go on, unchanged
            got = client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0)
            assert got.choices[0].message.content == expected.choices[0].message.content
        _until(lambda: client.shadow.stats().sidecar_crashes == 1)
        assert client.shadow.flush(30)
        stats = client.shadow.stats()
        assert stats.lost_in_crash >= 1 and stats.pairs_written == 4 - stats.lost_in_crash
        _settled(stats)
        client.chat.completions.create(model=MODEL, messages=HELLO)  # the new sidecar mirrors
        assert client.shadow.flush(30)
        assert client.shadow.stats().pairs_written == stats.pairs_written + 1
        second = client.shadow.engine.pid  # type: ignore[union-attr]
        assert second not in (None, first)
        _until(lambda: _shared(client)[sidecar._READY] == 1)
        os.kill(second, signal.SIGKILL)  # once more: the restart limit (1 here) is reached
        _until(lambda: client.shadow.engine.pid is None)  # type: ignore[union-attr]
        assert client.chat.completions.create(model=MODEL, messages=HELLO).choices
    stats = client.shadow.stats()
    assert stats.sidecar_crashes == 2 and stats.dropped_sidecar_down == 1
    _settled(stats)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2  # one line per crash, none per call
    assert "restarted (1 of 1)" in errors[0] and "mirroring is off" in errors[1]
    assert "lost" in errors[0] and "not affected" in errors[0]
    assert client.shadow.flush(1)  # nothing left to wait for
    client.close()
    merged = merge_shards(run_dir)
    assert merged.stats["sidecar_crashes"] == 2
    assert merged.records == 2 * merged.stats["pairs_written"]


def test_a_sidecar_that_cannot_start_turns_mirroring_off(
    emulator: EmulatorThread,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a redact hook this process can pickle and the sidecar cannot import (as one defined in
    # the __main__ of a `python -c` script would be)
    module = types.ModuleType("harness_test_only_here")
    module.redact = lambda obs: obs  # type: ignore[attr-defined]
    module.redact.__module__, module.redact.__qualname__ = module.__name__, "redact"
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with caplog.at_level(logging.ERROR, logger="harness.shadow"):
        client = _client(emulator.base_url, tmp_path / "run", sample_rate=1.0, redact=module.redact)
        for _ in range(3):
            assert client.chat.completions.create(model=MODEL, messages=HELLO).choices
        _until(lambda: client.shadow.stats().sidecar_crashes == 1)
        assert client.chat.completions.create(model=MODEL, messages=HELLO).choices
        client.close()
    stats = client.shadow.stats()
    assert stats.lost_in_crash + stats.dropped_sidecar_down == 4 and stats.pairs_written == 0
    _settled(stats)
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "did not start" in error


# --- what the sidecar refuses, and what cannot be sent ------------------------------------------


def test_settings_that_do_not_pickle_are_refused_with_the_fix(
    emulator: EmulatorThread, tmp_path: Path
) -> None:
    def local(obs: Any) -> Any:
        return obs

    with pytest.raises(ValueError, match="mode='thread'"):
        _client(emulator.base_url, tmp_path / "run", sample_rate=1.0, redact=local)
    _client(
        emulator.base_url, tmp_path / "run", sample_rate=1.0, redact=local, mode="thread"
    ).close()


def test_no_client_while_the_sidecar_imports_the_main_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(multiprocessing.current_process(), "name", sidecar.SIDECAR_NAME)
    with pytest.raises(RuntimeError, match='__name__ == "__main__"'):
        _client("http://127.0.0.1:9/v1", tmp_path / "run", mode="thread")


def test_a_request_that_does_not_pickle_is_counted(
    emulator: EmulatorThread, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class LocalStr(str):  # the SDK sends it as a string; pickle cannot find the class
        pass

    with (
        caplog.at_level(logging.ERROR, logger="harness.shadow"),
        _client(emulator.base_url, tmp_path / "run", sample_rate=1.0) as client,
    ):
        odd = [{"role": "user", "content": LocalStr("What are your support hours?")}]
        for messages in (odd, HELLO, odd):
            assert client.chat.completions.create(model=MODEL, messages=messages).choices
        assert client.shadow.flush(20)
        stats = client.shadow.stats()
    assert (stats.pairs_failed, stats.internal_errors, stats.pairs_written) == (2, 2, 1)
    _settled(stats)
    assert len([r for r in caplog.records if "cannot be sent" in r.getMessage()]) == 1


# --- what the mirror sends ---------------------------------------------------------------------


_COMPLETION = {
    "id": "chatcmpl-r",
    "object": "chat.completion",
    "created": 1,
    "model": MODEL,
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi."}}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


class _Recorder(BaseHTTPRequestHandler):
    """Answers chat completions, refuses /responses (500), remembers what each path got."""

    seen: ClassVar[dict[str, list[dict[str, str]]]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.seen.setdefault(self.path, []).append({k.lower(): v for k, v in self.headers.items()})
        ok = self.path.endswith("/chat/completions")
        body = json.dumps(
            _COMPLETION
            if ok
            else {"error": {"message": "no", "type": "server_error", "code": "server_error"}}
        ).encode()
        self.send_response(200 if ok else 500)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, dict[str, list[dict[str, str]]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", _Recorder.seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("mode", "kind"), [("process", "raw"), ("thread", "sdk")])
def test_the_mirror_sends_the_wrapped_clients_headers_and_never_stores_the_key(
    recorder: tuple[str, dict[str, list[dict[str, str]]]], tmp_path: Path, mode: str, kind: str
) -> None:
    url, seen = recorder
    app = openai.OpenAI(
        base_url=url,
        api_key="sk-secret-123",
        organization="org-1",
        project="proj-1",
        default_headers={"X-Gateway": "gw-1"},
        max_retries=0,
    )
    with ShadowClient(
        app, sample_rate=1.0, run_dir=tmp_path / "run", mode=mode, shadow_client=kind
    ) as client:
        assert client.chat.completions.create(model=MODEL, messages=HELLO).choices
        assert client.shadow.flush(20)
        assert "sk-secret" not in repr(client.shadow.engine.target)  # type: ignore[union-attr]
    (mirror,) = seen["/v1/responses"]
    assert mirror["authorization"] == "Bearer sk-secret-123"
    assert (mirror["openai-organization"], mirror["openai-project"]) == ("org-1", "proj-1")
    assert mirror["x-gateway"] == "gw-1"
    (pair_chat, pair_resp) = sorted(read_observations_from(tmp_path / "run"), key=lambda o: o.arm)
    assert pair_chat.ok and pair_resp.error_type == "server_error"
    for path in (tmp_path / "run").iterdir():
        assert b"sk-secret" not in path.read_bytes(), path.name


def read_observations_from(run_dir: Path) -> list[Any]:
    merge_shards(run_dir)
    return list(read_observations(run_dir / "observations.jsonl"))


def test_headers_stay_with_their_own_target() -> None:
    app = openai.OpenAI(
        base_url="http://a.test/v1",
        api_key="k",
        organization="org-1",
        default_headers={"X-Gateway": "gw-1"},
        timeout=5.0,
    )
    same = shadow_target(app, ShadowConfig())
    assert same.headers == {"OpenAI-Organization": "org-1", "X-Gateway": "gw-1"}
    assert same.timeout_s == 5.0 and same.base_url == "http://a.test/v1"
    other = shadow_target(
        app, ShadowConfig(shadow_base_url="http://b.test/v1", shadow_api_key="k2")
    )
    assert other.headers == {} and other.api_key == "k2" and other.timeout_s == 5.0
    assert (
        shadow_target(
            openai.OpenAI(base_url="http://a.test/v1", api_key="k"), ShadowConfig(timeout_s=7)
        ).timeout_s
        == 7
    )  # SDK default: 600 s
