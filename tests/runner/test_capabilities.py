"""The capability probe and what ``harness run`` does with it (issue 17)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.emulator.server import EmulatorThread
from harness.rundir import read_observations
from harness.runner.capabilities import (
    FEATURES,
    Capabilities,
    Feature,
    check_plans,
    emulator_capabilities,
    probe_capabilities,
)
from harness.runner.plan import build_plan
from harness.scenario.load import load_scenario

TINY = """\
version: 1
name: tiny
model: gpt-4.1-mini
defaults:
  max_output_tokens: 16
arms: [chat, responses, responses_chained]
repeats: 1
system: "You answer briefly."
prompts:
  - id: hello
    turns: ["Hi there.", "And again?"]
"""

LLAMA_CHAINED = "llama.cpp does not support 'previous_response_id'."


class LlamaLike:
    """The emulator behind what llama-server lacks (DESIGN §9): ``previous_response_id`` is a
    400 with llama-server's own message; every request body is kept for the test to read."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.inner(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        body = json.loads(raw or b"{}")
        self.bodies.append(body)
        if body.get("previous_response_id"):
            error = {
                "error": {"code": 400, "message": LLAMA_CHAINED, "type": "invalid_request_error"}
            }
            payload = json.dumps(error).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.inner(scope, replay, send)


@pytest.fixture
def llama_like() -> Iterator[tuple[str, LlamaLike]]:
    server = EmulatorThread(profile="zero")
    wrapped = LlamaLike(server._server.config.app)
    server._server.config.app = wrapped
    with server:
        yield server.base_url, wrapped


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    return scenario


def test_probing_the_emulator_finds_what_it_is_known_to_serve(emulator_url: str) -> None:
    probed = probe_capabilities(emulator_url, "sk-test")
    known = emulator_capabilities()
    assert list(probed.features) == list(FEATURES)
    assert {k: f.supported for k, f in probed.features.items()} == {
        k: f.supported for k, f in known.features.items()
    }
    assert "cached tokens" in probed.features["cached_tokens"].detail


def test_probe_reports_what_the_server_said(llama_like: tuple[str, LlamaLike]) -> None:
    url, _ = llama_like
    found = probe_capabilities(url, "none").features
    assert found["previous_response_id"] == Feature(
        supported=False, detail=f"HTTP 400: {LLAMA_CHAINED}"
    )
    assert found["chat"].supported and found["responses"].supported
    assert found["store"].supported


def test_unsupported_arm_stops_the_run_before_anything_is_sent(
    llama_like: tuple[str, LlamaLike],
    tiny: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, server = llama_like
    out = tmp_path / "runs"
    assert main(["run", str(tiny), "--target", url, "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "arm responses_chained cannot run" in err[0]
    assert "previous_response_id unsupported" in err[0] and "--skip-unsupported" in err[0]
    assert not out.exists()
    # Only the probe spoke to the server: no scenario prompt was ever sent.
    assert not any("Hi there." in json.dumps(b) for b in server.bodies)


def test_skip_unsupported_runs_the_rest_and_records_what_it_skipped(
    llama_like: tuple[str, LlamaLike],
    tiny: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = llama_like
    out = tmp_path / "runs"
    argv = ["run", str(tiny), "--target", url, "--quiet", "--out", str(out)]
    assert main([*argv, "--skip-unsupported"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert (
        "skipped (--skip-unsupported): tiny: arm responses_chained — previous_response_id"
        in printed
    )
    (run_dir,) = out.iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    why = f"previous_response_id unsupported (HTTP 400: {LLAMA_CHAINED})"
    assert meta["skipped"] == {"tiny: arm responses_chained": why}
    caps = Capabilities.model_validate(meta["capabilities"])
    assert caps.supports("chat") and not caps.supports("previous_response_id")
    rows = list(read_observations(run_dir / "observations.jsonl"))
    assert {r.arm for r in rows} == {"chat", "responses"}
    assert all(r.ok for r in rows), [r.error_message for r in rows]
    assert meta["planned_requests"] == len(rows) == 4


def test_a_prompt_needing_a_missing_feature_is_named() -> None:
    scenario = load_scenario(Path("scenarios/structured_extraction.yaml"))
    plan = build_plan(scenario, repeats=1)
    caps = emulator_capabilities()
    caps.features["json_schema"] = Feature(supported=False, detail="HTTP 400: no grammar")
    with pytest.raises(Exception, match=r"json_schema unsupported \(HTTP 400: no grammar\)"):
        check_plans([plan], caps, skip_unsupported=False)
    kept, skipped = check_plans([plan], caps, skip_unsupported=True)
    assert skipped and all("prompt " in k for k in skipped)
    needing = {c.prompt_id for c in plan.conversations if c.base.output_format is not None}
    assert not {c.prompt_id for c in kept[0].conversations} & needing


def test_unknown_support_never_stops_a_run() -> None:
    caps = emulator_capabilities()
    caps.features["previous_response_id"] = Feature(supported=None, detail="no stored response")
    assert caps.supports("previous_response_id")


@pytest.mark.parametrize("stream", [False, True])
def test_the_probe_sends_once_more_on_a_dropped_kept_alive_connection(
    stream: bool, dropping_server: Any
) -> None:
    # llama-server drops kept-alive connections it has idled out (the real-server tier found
    # /responses unsupported for it); streaming probes follow the same one-retry rule
    from harness.runner.capabilities import _Http

    http = _Http(dropping_server.base_url, "none", 10.0)
    try:
        assert http.json("GET", "models").ok  # the connection is now kept alive
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        answer = (
            http.events("chat/completions", body)
            if stream
            else http.json("POST", "chat/completions", body)
        )
    finally:
        http.close()
    assert answer.ok, answer.error
    assert dropping_server.dropped == 1 and dropping_server.served == 2
    if stream:
        assert answer.data[-1] == "[DONE]" and dropping_server.REPLY in answer.data[0]


def test_the_probe_does_not_send_again_when_a_new_connection_is_dropped(
    dropping_server: Any,
) -> None:
    # on a fresh connection the close does not prove the request went unserved
    from harness.runner.capabilities import _Http

    http = _Http(dropping_server.base_url, "none", 10.0)
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        answer = http.json("POST", "chat/completions", body)
    finally:
        http.close()
    assert not answer.ok and "without sending a response" in (answer.error or "")
    assert dropping_server.dropped == 1 and dropping_server.served == 0


def test_background_scenario_needs_background_mode_on_responses_arms(tmp_path: Path) -> None:
    scenario = tmp_path / "bg.yaml"
    scenario.write_text(
        TINY.replace(
            "arms: [chat, responses, responses_chained]", "arms: [chat, responses]"
        ).replace("  max_output_tokens: 16\n", "  max_output_tokens: 16\n  store: true\n")
        + "background: true\n"
    )
    plan = build_plan(load_scenario(scenario), repeats=1)
    caps = emulator_capabilities()
    caps.features["background"] = Feature(supported=False, detail="HTTP 400: no background")
    with pytest.raises(
        Exception,
        match=r"background unsupported \(HTTP 400: no background\) → prompt hello on "
        r"arm responses cannot run",
    ):
        check_plans([plan], caps, skip_unsupported=False)
    kept, _ = check_plans([plan], caps, skip_unsupported=True)
    # chat has no background mode and runs as usual
    assert {c.arm for c in kept[0].conversations} == {"chat"}
