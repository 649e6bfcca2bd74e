"""``harness import stored``: a test app stores chat completions on the emulator (metadata
``app: a`` and ``app: b``); the import pulls the ``a`` ones through the SDK, page by page, into
a scenario that plans the very requests the app sent, with the stored replies as references."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli.app import main
from harness.importers.source import SourceRequest, Unusable
from harness.importers.stored import StoredQuery, read_stored
from harness.scenario.load import load_scenario

MODEL = "gpt-4.1-mini"
KEY = "sk-proj-Zq8RkT3vLm9WxY2bNc4HdF6J"
EMAIL = "jane.doe@example.com"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
SYSTEM = {"role": "system", "content": "You are the support bot of Acme. Answer briefly."}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
#: app a's conversations: plain, multi-turn with a fixed reply, a tool round, planted secrets
A_MESSAGES: list[list[dict[str, Any]]] = [
    [SYSTEM, {"role": "user", "content": "What are your support hours?"}],
    [
        SYSTEM,
        {"role": "user", "content": "Do you ship to Norway?"},
        {"role": "assistant", "content": "Yes, within five days."},
        {"role": "user", "content": "And to Iceland?"},
    ],
    [
        SYSTEM,
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
    ],
    [SYSTEM, {"role": "user", "content": f"My key is {KEY}, write to me at {EMAIL}."}],
    [SYSTEM, {"role": "user", "content": "How do I reset my password?"}],
]
B_MESSAGES = [
    [{"role": "user", "content": "Translate 'hello' to French."}],
    [{"role": "user", "content": "Translate 'goodbye' to French."}],
]


@dataclass
class App:
    """What the test app sent and got back."""

    base_url: str
    sent_a: list[dict[str, Any]]
    #: completion id → its reply's content (None for a tool call)
    replies: dict[str, str | None]
    a_ids: list[str]
    b_ids: list[str]


def _a_body(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": messages,
        "tools": [TOOL],
        "temperature": 0.2,
        "stream": False,
        "store": True,
        "metadata": {"app": "a"},
    }


@pytest.fixture(scope="module")
def app(module_emulators: Any) -> App:
    server = module_emulators.start("zero")
    client = module_emulators.client(server)
    sent_a, replies, a_ids, b_ids = [], {}, [], []
    # interleaved, so a page of app a's completions is not a page of the store
    for i, messages in enumerate(A_MESSAGES):
        body = _a_body(messages)
        done = client.chat.completions.create(**body)
        sent_a.append(body)
        a_ids.append(done.id)
        replies[done.id] = done.choices[0].message.content
        if i < len(B_MESSAGES):
            b = client.chat.completions.create(
                model=MODEL, messages=B_MESSAGES[i], store=True, metadata={"app": "b"}
            )
            b_ids.append(b.id)
    # not stored: never listed
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    return App(server.base_url, sent_a, replies, a_ids, b_ids)


def _defaults(directory: Path) -> Path:
    path = directory / "defaults.yaml"
    path.write_text(yaml.safe_dump({"tools": [TOOL], "temperature": 0.2}), encoding="utf-8")
    return path


def _import(app: App, directory: Path, *extra: str) -> tuple[int, Path, Path]:
    out, report = directory / "scenarios" / "stored.yaml", directory / "report.json"
    args = [
        "import",
        "stored",
        "--target",
        app.base_url,
        "--out",
        str(out),
        "--report",
        str(report),
    ]
    return main([*args, *extra]), out, report


@pytest.fixture(scope="module")
def imported(app: App, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    directory = tmp_path_factory.mktemp("stored")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code, out, report = _import(
            app,
            directory,
            "--metadata",
            "app=a",
            "--model",
            MODEL,
            "--page-size",
            "2",
            "--keep-store",
            "--defaults",
            str(_defaults(directory)),
        )
    assert code == 0
    return out, report, printed.getvalue()


def test_exactly_the_matching_completions_are_imported_across_pages(
    app: App, imported: tuple[Path, Path, str]
) -> None:
    out, report_path, _ = imported
    scenario = load_scenario(out)
    # 5 completions at 2 per list request: three pages
    assert [p.id for p in scenario.prompts] == app.a_ids
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["format"] == "stored" and report["lines"] == report["requests"] == 5
    assert report["not_imported"] == [] and report["bad_lines"] == []


def test_the_scenario_plans_the_requests_the_app_sent(
    app: App, imported: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _, _ = imported
    capsys.readouterr()
    assert main(["validate", str(out)]) == 0
    assert main(["plan", str(out), "--json", "--repeats", "1"]) == 0
    planned = Counter[str]()
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record["arm"] != "chat":
            continue
        text = json.dumps(record["kwargs"], sort_keys=True).replace(f"[run {record['nonce']}] ", "")
        planned[text] += 1
    # what the app sent, with the planted secrets as the import redacts them
    sent = Counter(
        json.dumps(body, sort_keys=True)
        .replace(KEY, "[redacted-api-key]")
        .replace(EMAIL, "[redacted-email]")
        for body in app.sent_a
    )
    assert planned == sent


def test_references_are_the_stored_replies(app: App, imported: tuple[Path, Path, str]) -> None:
    out, _, _ = imported
    prompts = {p.id: p for p in load_scenario(out).prompts}
    assert any(app.replies.values())
    for cid, reply in app.replies.items():
        assert prompts[cid].reference == reply


def test_the_report_names_what_the_api_does_not_return(imported: tuple[Path, Path, str]) -> None:
    _, report_path, printed = imported
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert {"tools", "response_format", "sampling", "stream", "tool_choice"} <= set(
        report["not_carried"]
    )
    assert "model" not in report["not_carried"]  # --model named it
    assert report["from_defaults"] == ["temperature", "tools"]
    assert "not carried by stored: tools (" in printed
    assert "taken from --defaults: temperature, tools" in printed
    assert "5 stored completions, 5 requests → 5 prompts" in printed


def test_no_planted_secret_reaches_the_scenario_or_report(
    imported: tuple[Path, Path, str],
) -> None:
    out, report_path, printed = imported
    for text in (out.read_text(encoding="utf-8"), report_path.read_text(encoding="utf-8"), printed):
        assert KEY not in text and EMAIL not in text
    assert "[redacted-api-key]" in out.read_text(encoding="utf-8")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["scrubbed"] == {"api-key": 1, "email": 1}


def test_without_keep_store_or_model_the_requests_are_not_stored_and_the_model_is_named(
    app: App, tmp_path: Path
) -> None:
    code, out, report_path = _import(app, tmp_path, "--metadata", "app=b", "--limit", "1")
    assert code == 0
    scenario = load_scenario(out)
    assert [p.id for p in scenario.prompts] == app.b_ids[:1]
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert "store" not in data["defaults"] and "params" not in data["prompts"][0]
    # the snapshot that answered, as the stored completion names it
    assert data["model"].startswith(MODEL + "-")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert "model" in report["not_carried"] and report["changed"] == []


def test_group_by_metadata_splits_the_apps(app: App, tmp_path: Path) -> None:
    out = tmp_path / "by-app"
    args = ["import", "stored", "--target", app.base_url, "--model", MODEL, "--out", str(out)]
    assert main([*args, "--group-by", "metadata.app"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.yaml", "b.yaml"]
    assert [p.id for p in load_scenario(out / "b.yaml").prompts] == app.b_ids


def test_a_completion_with_several_choices_is_listed_not_imported(
    emulators: Any, tmp_path: Path
) -> None:
    # n is the one sampling parameter a stored completion shows (its choices), and it has no
    # Responses equivalent: listed with its reason, as a logged request with n would be
    server = emulators.start("zero")
    client = emulators.client(server)
    kept = client.chat.completions.create(model=MODEL, messages=B_MESSAGES[0], store=True)
    several = client.chat.completions.create(model=MODEL, messages=B_MESSAGES[1], store=True, n=2)
    out, report = tmp_path / "s.yaml", tmp_path / "r.json"
    args = ["import", "stored", "--target", server.base_url, "--out", str(out)]
    assert main([*args, "--report", str(report)]) == 0
    assert [p.id for p in load_scenario(out).prompts] == [kept.id]
    (note,) = json.loads(report.read_text(encoding="utf-8"))["not_imported"]
    assert note["line"] == 2 and note["reason"].startswith(f"{several.id}: n:")


def test_a_completion_deleted_during_the_import_is_listed_not_imported(emulators: Any) -> None:
    server = emulators.start("zero")
    client = emulators.client(server)
    ids = [
        client.chat.completions.create(model=MODEL, messages=m, store=True).id for m in B_MESSAGES
    ]
    items = read_stored(client, StoredQuery(), "emu")
    first = next(items)
    client.chat.completions.delete(ids[1])  # after the page listing it was read
    assert isinstance(first, SourceRequest) and first.id == ids[0]
    assert list(items) == [Unusable(2, f"{ids[1]}: gone before its messages were read")]


# --------------------------------------------------------------------------- errors


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_no_matching_completion_is_one_line(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _import(app, tmp_path, "--metadata", "app=zzz", "--metadata", "team=x")
    assert code == 2
    line = _one_line_error(capsys)
    assert "no stored chat completions match (metadata app=zzz, metadata team=x)" in line
    assert not out.exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_target_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    code = main(["import", "stored", "--target", url, "--out", str(tmp_path / "s.yaml")])
    assert code == 2
    assert "cannot connect" in _one_line_error(capsys)
    assert not (tmp_path / "s.yaml").exists()


class _Refusing(BaseHTTPRequestHandler):
    """OpenAI's 401 (or the server's ``status``) for every request."""

    def do_GET(self) -> None:
        status: int = getattr(self.server, "status", 401)
        body = json.dumps(
            {
                "error": {
                    "message": "Incorrect API key provided: " + self.headers["Authorization"],
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


#: the refusal's status → what the one error line says
REFUSALS = {
    401: "401, the server refused the API key — set HARNESS_TARGET_API_KEY",
    403: "403, the key may not read stored completions",
}


@pytest.fixture(params=sorted(REFUSALS))
def refusing_url(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    server.status = request.param  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", request.param
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_key_is_one_line_that_never_shows_it(
    refusing_url: tuple[str, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-live-never-print-this-key-0123456789"
    monkeypatch.setenv("HARNESS_TARGET_API_KEY", secret)
    out = tmp_path / "s.yaml"
    url, status = refusing_url
    code = main(["import", "stored", "--target", url, "--out", str(out)])
    captured_line = _one_line_error(capsys)
    assert code == 2
    assert REFUSALS[status] in captured_line
    assert secret not in captured_line
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--metadata", "app"), ("--page-size", "101"), ("--limit", "0")]
)
def test_bad_options_exit_2(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["import", "stored", "--target", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "s")]
    with pytest.raises(SystemExit) as exited:
        main([*args, option, value])
    assert exited.value.code == 2
    assert f"argument {option}: '{value}': expected" in capsys.readouterr().err


def test_a_target_that_is_not_a_url_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["import", "stored", "--target", "localhost:8000", "--out", str(tmp_path / "s")])
    assert code == 2
    assert "not 'emulator', 'openai' or an http(s) URL" in _one_line_error(capsys)


def test_openai_without_a_key_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["import", "stored", "--target", "openai", "--out", str(tmp_path / "s")])
    assert code == 2
    assert "--target openai needs OPENAI_API_KEY" in _one_line_error(capsys)
