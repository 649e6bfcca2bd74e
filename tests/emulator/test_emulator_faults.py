"""Injected faults and OpenAI-shaped errors, as the SDK sees them."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from harness.emulator.profiles import load_profile
from harness.emulator.testing import sse_data, sse_events
from harness.emulator.truth import read_truth

MODEL = "gpt-4.1-mini"
USER = [{"role": "user", "content": "Tell me about shipping."}]


def _faulty(fault: str, **extra: Any) -> Any:
    return load_profile("zero").derive({"both": {"faults": {fault: 1.0, **extra}}})


@pytest.fixture
def client(emulator_client: openai.OpenAI) -> openai.OpenAI:
    return emulator_client


def test_rate_limit_429_with_retry_headers(tmp_path: Path, emulators: Any) -> None:
    truth = tmp_path / "t.jsonl"
    profile = _faulty("rate_limit", retry_after_ms={"median": 1500})
    with (
        emulators.running(profile, truth_log=truth) as emu,
        emulators.client(emu) as c,
        pytest.raises(openai.RateLimitError) as info,
    ):
        c.chat.completions.create(model=MODEL, messages=USER)
    err = info.value
    assert err.status_code == 429 and err.code == "rate_limit_exceeded"
    headers = err.response.headers
    assert headers["retry-after"] == "2" and headers["retry-after-ms"] == "1500"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "1.5s"
    assert "Please try again in 1500ms" in err.message
    (record,) = read_truth(truth)
    assert record["fault"] == "rate_limit" and record["request_id"] == err.request_id


@pytest.mark.parametrize(
    "fault,status,exc",
    [
        ("server_error", 500, openai.InternalServerError),
        ("overloaded", 503, openai.InternalServerError),
    ],
)
def test_server_errors(fault: str, status: int, exc: type[Exception], emulators: Any) -> None:
    with (
        emulators.running(_faulty(fault)) as emu,
        emulators.client(emu) as c,
        pytest.raises(exc) as info,
    ):
        c.responses.create(model=MODEL, input="hi")
    assert info.value.status_code == status
    body = info.value.body
    assert body["type"] == "server_error" and "\n" not in body["message"]


def test_stream_cut_mid_way(emulators: Any) -> None:
    with emulators.running(_faulty("stream_cut")) as emu, emulators.client(emu) as c:
        seen: list[str] = []
        with (
            pytest.raises((openai.APIConnectionError, httpx2.RemoteProtocolError)),
            c.responses.stream(model=MODEL, input="hello") as stream,
        ):
            for event in stream:
                seen.append(event.type)
        assert "response.output_text.delta" in seen
        assert "response.completed" not in seen
        chunks: list[Any] = []
        with pytest.raises((openai.APIConnectionError, httpx2.RemoteProtocolError)):
            for chunk in c.chat.completions.create(model=MODEL, messages=USER, stream=True):
                chunks.append(chunk)
        assert len(chunks) > 1
        # the server survives its own cuts
        assert c.models.list().data


def test_response_failed_event(emulators: Any) -> None:
    with emulators.running(_faulty("response_failed")) as emu, emulators.client(emu) as c:
        with c.responses.with_streaming_response.create(
            model=MODEL, input="hello", stream=True
        ) as raw:
            events = sse_events(raw.iter_lines())
        assert events[-1]["type"] == "response.failed"
        failed = events[-1]["response"]
        assert failed["status"] == "failed"
        assert failed["error"] == {"code": "server_error", "message": failed["error"]["message"]}
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert "response.output_text.delta" in {e["type"] for e in events}
        assert c.responses.retrieve(failed["id"]).status == "failed"
        with pytest.raises(openai.APIError, match="error occurred"):
            for _ in c.chat.completions.create(model=MODEL, messages=USER, stream=True):
                pass


def test_error_event(emulators: Any) -> None:
    with emulators.running(_faulty("error_event")) as emu, emulators.client(emu) as c:
        with c.responses.stream(model=MODEL, input="hello") as stream:
            events = list(stream)
        assert events[-1].type == "error"
        assert events[-1].code == "server_error"
        with c.chat.completions.with_streaming_response.create(
            model=MODEL, messages=USER, stream=True
        ) as raw:
            data = sse_data(raw.iter_lines())
        assert json.loads(data[-1])["error"]["type"] == "server_error"
        assert "[DONE]" not in data


def test_stream_faults_do_not_apply_to_non_streaming_requests(emulators: Any) -> None:
    with emulators.running(_faulty("stream_cut")) as emu, emulators.client(emu) as c:
        assert c.responses.create(model=MODEL, input="hello").status == "completed"


def test_slow_headers(tmp_path: Path, emulators: Any) -> None:
    truth = tmp_path / "t.jsonl"
    profile = _faulty("slow_headers", slow_headers_ms={"median": 80})
    with emulators.running(profile, truth_log=truth) as emu, emulators.client(emu) as c:
        c.responses.create(model=MODEL, input="hi", stream=True).close()
    (record,) = read_truth(truth)
    assert record["fault"] == "slow_headers"
    assert record["delays_ms"]["slow_headers_ms"] == 80
    assert 80 <= record["headers_ms"] < 120


def test_fault_rates_are_applied_at_the_configured_rate(tmp_path: Path, emulators: Any) -> None:
    truth = tmp_path / "t.jsonl"
    profile = load_profile("zero").derive({"both": {"faults": {"server_error": 0.2}}})
    with emulators.running(profile, truth_log=truth) as emu, emulators.client(emu) as c:
        for _ in range(200):
            with contextlib.suppress(openai.InternalServerError):
                c.chat.completions.create(model=MODEL, messages=USER)
    faults = [r["fault"] for r in read_truth(truth)]
    assert 0.12 <= faults.count("server_error") / len(faults) <= 0.28


# --- errors -------------------------------------------------------------------------------------


def _bad(
    call: Any, status: type[Exception], param: str | None, code: str | None = None, match: str = ""
) -> None:
    with pytest.raises(status) as info:
        call()
    err = info.value
    body = err.body
    assert set(body) == {"message", "type", "param", "code"}
    assert body["param"] == param
    if code is not None:
        assert body["code"] == code
    assert match in body["message"] and "\n" not in body["message"]


def test_invalid_requests(client: openai.OpenAI) -> None:
    r, chat = client.responses, client.chat.completions
    bad = openai.BadRequestError
    _bad(
        lambda: r.create(
            model=MODEL, input="x", extra_body={"response_format": {"type": "json_object"}}
        ),
        bad,
        "response_format",
        match="text.format",
    )
    _bad(
        lambda: r.create(model=MODEL, extra_body={"messages": USER}),
        bad,
        "messages",
        match="'input'",
    )
    _bad(
        lambda: r.create(model=MODEL, input="x", max_output_tokens=15),
        bad,
        "max_output_tokens",
        "integer_below_min_value",
        ">= 16",
    )
    _bad(
        lambda: r.create(model="o3", input="x", temperature=0.2),
        bad,
        "temperature",
        "unsupported_parameter",
    )
    _bad(
        lambda: r.create(model="gpt-5", input="x", top_p=0.5), bad, "top_p", "unsupported_parameter"
    )
    _bad(
        lambda: chat.create(model="o4-mini", messages=USER, temperature=0),
        bad,
        "temperature",
        "unsupported_value",
    )
    _bad(
        lambda: chat.create(model="o3", messages=USER, max_tokens=10),
        bad,
        "max_tokens",
        match="max_completion_tokens",
    )
    _bad(
        lambda: r.create(model=MODEL, input="x", extra_body={"frobnicate": 1}),
        bad,
        "frobnicate",
        "unknown_parameter",
    )
    _bad(
        lambda: chat.create(model=MODEL, messages=USER, extra_body={"input": "x"}),
        bad,
        "input",
        match="Unrecognized request argument supplied: input",
    )
    _bad(lambda: chat.create(model=MODEL, messages=[]), bad, "messages")
    _bad(
        lambda: chat.create(model=MODEL, messages=USER, stream_options={"include_usage": True}),
        bad,
        "stream_options",
    )
    _bad(
        lambda: chat.create(model=MODEL, messages=USER, response_format={"type": "json_object"}),
        bad,
        "messages",
        match="json",
    )
    _bad(
        lambda: r.create(model=MODEL, input="x", temperature=3),
        bad,
        "temperature",
        "decimal_above_max_value",
    )
    _bad(lambda: r.create(model=MODEL, input="x", tool_choice="required"), bad, "tool_choice")
    _bad(
        lambda: r.create(model=MODEL, input=[{"type": "reasoning", "id": "rs_1", "summary": []}]),
        openai.NotFoundError,
        "input",
        "item_not_found",
    )


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    _bad(
        lambda: client.responses.create(model="gpt-9", input="x"),
        openai.NotFoundError,
        "model",
        "model_not_found",
        "`gpt-9` does not exist",
    )


def test_missing_key_bad_json_and_unknown_route(client: openai.OpenAI) -> None:
    base = str(client.base_url).rstrip("/")
    with httpx2.Client() as raw:
        no_key = raw.post(f"{base}/chat/completions", json={"model": MODEL, "messages": USER})
        assert no_key.status_code == 401
        assert "API key" in no_key.json()["error"]["message"]
        headers = {"authorization": "Bearer sk-test", "content-type": "application/json"}
        garbage = raw.post(f"{base}/responses", content=b"{not json", headers=headers)
        assert garbage.status_code == 400
        assert garbage.json()["error"]["type"] == "invalid_request_error"
        nowhere = raw.get(f"{base}/embeddings", headers=headers)
        assert nowhere.status_code == 404
        assert nowhere.json()["error"]["message"] == "Invalid URL (GET /v1/embeddings)"
        assert nowhere.headers["x-emulator"]


def test_an_emulator_bug_is_an_openai_shaped_500(emulators: Any) -> None:
    def broken(*args: Any) -> Any:
        raise ZeroDivisionError("bug")

    with emulators.running("zero") as emu, emulators.client(emu) as c:
        emu.app.emulator._generate = broken  # type: ignore[method-assign]
        try:
            with pytest.raises(openai.InternalServerError) as info:
                c.responses.create(model=MODEL, input="hi")
        finally:
            del emu.app.emulator._generate
        assert info.value.body["type"] == "server_error"
        assert info.value.response.headers["x-emulator"]
        assert c.responses.create(model=MODEL, input="hi").status == "completed"
