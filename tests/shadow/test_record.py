"""Record-only mode: ``harness record`` and ``harness.shadow.record`` write an application's
requests, unchanged, as Batch API input that ``harness import batch`` turns into a scenario.

The end-to-end tests run ``record_app.py`` (plain official-SDK code, sync then async) against the
shared ``zero``-profile emulator, once as it is and once under ``harness record`` (the CLI called
in-process; the application is its child process, as in real use), and share those two runs.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import openai
import pytest
import yaml
from openai.types.chat import ChatCompletionAssistantMessageParam, ChatCompletionMessage

from harness.cli.app import main
from harness.emulator.server import EmulatorThread
from harness.shadow import BatchRecorder, record
from harness.shadow.recorder import (
    BOOT_DIR,
    CHAT_URL,
    RESOURCE_MODULES,
    RESPONSES_URL,
    recording_env,
    request_body,
)

APP = Path(__file__).with_name("record_app.py")
BOOT = BOOT_DIR / "sitecustomize.py"
MODEL = "gpt-4.1-mini"
HELLO = [{"role": "user", "content": "What are your support hours?"}]
#: what a request's assistant message may hold (the SDK's type: a reply's extra fields such as
#: ``annotations`` are not part of a request, and the import leaves them out)
ASSISTANT_KEYS = frozenset(ChatCompletionAssistantMessageParam.__annotations__)


def _app_env() -> dict[str, str]:
    # the child imports this checkout's harness, as the test process does
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH")) if p)
    return env


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class Recorded:
    """The two runs of the application and what the recording one left."""

    def __init__(self, tmp: Path, base_url: str) -> None:
        plain = subprocess.run(
            [sys.executable, str(APP), base_url],
            capture_output=True,
            text=True,
            env=_app_env(),
            check=True,
            timeout=120,
        )
        self.plain_stdout = plain.stdout
        self.out = tmp / "calls.jsonl"
        self.recorded_stdout = tmp / "app-stdout.json"
        # the application's stdout goes to a file: `harness record` passes its streams through
        shell = (
            shlex.join([sys.executable, str(APP), base_url])
            + " > "
            + shlex.quote(str(self.recorded_stdout))
        )
        self.exit_code = main(["record", "--out", str(self.out), "--", "sh", "-c", shell])


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorThread) -> Recorded:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", _app_env()["PYTHONPATH"])
        return Recorded(tmp_path_factory.mktemp("record"), emulator.base_url)


# --- the application under `harness record` -------------------------------------------------


def test_the_app_gets_the_same_replies_when_recorded(recorded: Recorded) -> None:
    assert recorded.exit_code == 0
    replies = json.loads(recorded.recorded_stdout.read_text(encoding="utf-8"))
    assert replies == json.loads(recorded.plain_stdout)
    # both clients made every call: 5 chat and 1 responses each, streamed ones read to the end
    assert [len(replies["sync"]), len(replies["async"])] == [6, 6]
    assert replies["sync"][1][1] == "stop" and replies["async"][3][1] == "stop"


def test_each_call_is_one_batch_line_as_the_app_sent_it(recorded: Recorded) -> None:
    lines = _lines(recorded.out)
    assert [line["url"] for line in lines] == 2 * ([CHAT_URL] * 5 + [RESPONSES_URL])
    assert all(line["method"] == "POST" for line in lines)
    assert len({line["custom_id"] for line in lines}) == len(lines)
    chat = [line["body"] for line in lines if line["url"] == CHAT_URL]
    # stream exactly as sent: absent where the app left it out, true where it streamed
    assert [body.get("stream") for body in chat] == 2 * [None, True, None, True, None]
    assert chat[1]["stream_options"] == {"include_usage": True}
    assert "stream_options" not in chat[3]
    # the earlier reply went back as the SDK object; the line holds what the SDK sent for it
    assert chat[1]["messages"][2]["role"] == "assistant"
    assert chat[3]["messages"][2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert chat[4]["response_format"]["type"] == "json_schema"
    responses = [line["body"] for line in lines if line["url"] == RESPONSES_URL]
    assert [body["input"] for body in responses] == [
        "Opening hours, sync?",
        "Opening hours, async?",
    ]
    # the API key travels in a header, never in the file
    assert "sk-app-secret" not in recorded.out.read_text(encoding="utf-8")


def _as_sent(body: dict[str, Any]) -> dict[str, Any]:
    """A recorded chat body as a request: no nulls, an assistant message's request fields."""
    messages = []
    for m in body["messages"]:
        keep = ASSISTANT_KEYS if m["role"] == "assistant" else m.keys()
        messages.append({k: v for k, v in m.items() if v is not None and k in keep})
    return {**body, "messages": messages}


def _as_planned(kwargs: dict[str, Any], nonce: str, sent: dict[str, Any]) -> dict[str, Any]:
    """A planned chat request less what the plan adds to what the app sent: the
    cache-isolation nonce, and the API's defaults ``store: false`` and ``stream: false`` spelt
    out, and ``stream_options.include_usage`` on a stream (a run needs its usage)."""
    out: dict[str, Any] = json.loads(json.dumps(kwargs).replace(f"[run {nonce}] ", ""))
    for added, default in (("store", False), ("stream", False)):
        if added not in sent:
            assert out.pop(added) is default
    if "stream_options" not in sent and out.get("stream"):
        assert out.pop("stream_options") == {"include_usage": True}
    return out


def _canonical(body: dict[str, Any]) -> str:
    # numbers as JSON means them: temperature 0 and 0.0 are one value
    return json.dumps(json.loads(json.dumps(body), parse_int=float), sort_keys=True)


def test_import_batch_plans_the_requests_the_app_sent(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario, report = tmp_path / "app.yaml", tmp_path / "report.json"
    args = ["import", "batch", str(recorded.out), "--out", str(scenario), "--report", str(report)]
    assert main(args) == 0
    # every call imports: the Responses ones are translated back to the neutral request
    assert json.loads(report.read_text(encoding="utf-8"))["not_imported"] == []

    sent = [_as_sent(line["body"]) for line in _lines(recorded.out) if line["url"] == CHAT_URL]
    by_text = {json.dumps(body, sort_keys=True): body for body in sent}
    capsys.readouterr()
    assert main(["plan", str(scenario), "--json", "--repeats", "1"]) == 0
    prompts = yaml.safe_load(scenario.read_text(encoding="utf-8"))["prompts"]
    weights = {p["id"]: p.get("weight", 1) for p in prompts}
    planned = Counter[str]()
    asked: list[tuple[dict[str, Any], str]] = []
    for text in capsys.readouterr().out.splitlines():
        record_ = json.loads(text)
        if record_["arm"] != "chat":
            continue
        line = int(record_["prompt_id"].removeprefix("line-"))
        recorded_line = _lines(recorded.out)[line - 1]
        source = recorded_line["body"]
        if recorded_line["url"] == RESPONSES_URL:  # its text input, as the chat user message
            text = json.dumps(record_["kwargs"]["messages"]).replace(
                f"[run {record_['nonce']}] ", ""
            )
            asked.append((json.loads(text)[-1], source["input"]))
            continue
        kwargs = _as_planned(record_["kwargs"], record_["nonce"], source)
        planned[_canonical(kwargs)] += weights[record_["prompt_id"]]
    assert planned == Counter(_canonical(body) for body in sent)
    assert [(m["role"], m["content"]) for m, _ in asked] == [("user", q) for _, q in asked]
    assert sorted(q for _, q in asked) == ["Opening hours, async?", "Opening hours, sync?"]
    assert len(by_text) < len(sent)  # identical calls (sync and async) merged into a weight


# --- errors and the command's own exit status -------------------------------------------------


@pytest.mark.parametrize("where", ["missing/dir/calls.jsonl", "."])
def test_an_unwritable_out_is_one_line_and_exit_2(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    out = tmp_path / where
    code = main(["record", "--out", str(out), "--", "touch", str(marker)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"harness: error: {out}: cannot write (")
    assert "--out" in err
    assert not marker.exists()  # nothing was run


def test_no_command_or_a_missing_one_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["record", "--out", str(tmp_path / "c.jsonl")]) == 2
    assert "give it after --" in capsys.readouterr().err
    assert main(["record", "--out", str(tmp_path / "c.jsonl"), "--", "no-such-cmd-xyz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot run 'no-such-cmd-xyz'" in err


def test_the_command_exit_status_passes_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "c.jsonl"
    out.write_text("old\n", encoding="utf-8")
    code = main(["record", "--out", str(out), "--", sys.executable, "-c", "raise SystemExit(3)"])
    assert code == 3
    assert out.read_text(encoding="utf-8") == ""  # emptied first (no --append)
    err = capsys.readouterr().err
    assert f"{out}: 0 requests recorded" in err and "nothing recorded" in err


def test_recording_loads_with_the_sdk_resource_and_other_sitecustomize_runs(
    tmp_path: Path,
) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "sitecustomize.py").write_text("import os\nos.environ['OWN_SITE'] = 'ran'\n")
    env = recording_env(tmp_path / "c.jsonl", {**_app_env(), "PYTHONPATH": str(own)})
    check = (
        "import os, sys\n"
        "print(os.environ.get('OWN_SITE'), 'harness' in sys.modules)\n"
        "import openai\n"
        "print('harness' in sys.modules)\n"
        "openai.OpenAI(api_key='k').chat.completions\n"
        "create = openai.resources.chat.completions.Completions.create\n"
        "print('harness' in sys.modules, hasattr(create, '__harness_recorder__'))\n"
        "print('openai.resources.responses.responses' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, check=True
    )
    # nothing of harness until the app loads the chat resource; responses is never loaded
    assert done.stdout.split() == ["ran", "False", "False", "True", "True", "False"]
    assert done.stderr == ""


def test_the_hook_watches_the_modules_the_recorder_patches() -> None:
    tree = ast.parse(BOOT.read_text(encoding="utf-8"))
    watched = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "WATCHED"
    )
    assert isinstance(watched, ast.Call)
    assert ast.literal_eval(watched.args[0]) == set(RESOURCE_MODULES)


# --- the one-line wrapper, in process -------------------------------------------------------


@pytest.fixture
def client(emulator: EmulatorThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


def test_record_returns_the_same_client_and_replies_unchanged(
    client: openai.OpenAI, tmp_path: Path
) -> None:
    out = tmp_path / "calls.jsonl"
    assert record(client, out) is client
    assert record(client, out) is client  # twice: still one line per call
    reply = client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0)
    assert isinstance(reply.choices[0].message, ChatCompletionMessage)
    stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    assert isinstance(stream, openai.Stream)
    # the line is written when create returns, before the stream is read
    assert len(_lines(out)) == 2
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    assert raw.parse().choices[0].message.content
    client.responses.create(model=MODEL, input="hi", store=False)
    lines = _lines(out)
    assert [line["url"] for line in lines] == [CHAT_URL] * 3 + [RESPONSES_URL]
    assert lines[0]["body"] == {"model": MODEL, "messages": HELLO, "temperature": 0}
    assert lines[1]["body"]["stream"] is True


def test_messages_from_a_generator_reach_both_the_server_and_the_line(
    client: openai.OpenAI, tmp_path: Path
) -> None:
    """The SDK takes any iterable and uses it up sending it: a line written afterwards from the
    same generator held ``messages: []``."""
    out = tmp_path / "calls.jsonl"
    record(client, out)
    reply = client.chat.completions.create(model=MODEL, messages=(m for m in HELLO))
    assert reply.choices[0].message.content
    (line,) = _lines(out)
    assert line["body"]["messages"] == HELLO


def test_an_api_error_is_recorded_and_raised_as_it_came(
    client: openai.OpenAI, tmp_path: Path
) -> None:
    out = tmp_path / "calls.jsonl"
    record(client, out)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[])
    with pytest.raises(TypeError):  # the SDK refused before sending: nothing to record
        client.chat.completions.create(messages=HELLO)  # type: ignore[call-overload]
    assert [line["body"]["messages"] for line in _lines(out)] == [[]]


def test_the_key_is_never_written_and_import_scrubs_what_the_content_holds(
    emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, planted = "sk-proj-RecordedKey0123456789abcdef", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx01234"
    out, scenario = tmp_path / "calls.jsonl", tmp_path / "app.yaml"
    with openai.OpenAI(base_url=emulator.base_url, api_key=key, max_retries=0) as keyed:
        record(keyed, out).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": f"My key is {planted}, mail jane@example.com"}],
        )
    recorded = out.read_text(encoding="utf-8")
    assert key not in recorded  # the client's key is a header, never part of the body
    assert planted in recorded and "jane@example.com" in recorded  # content: as the app sent it
    assert main(["import", "batch", str(out), "--out", str(scenario)]) == 0
    capsys.readouterr()
    written = scenario.read_text(encoding="utf-8")
    assert planted not in written and "jane@example.com" not in written


def test_the_async_client_records_the_same_way(emulator: EmulatorThread, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"

    async def app() -> str | None:
        async with openai.AsyncOpenAI(
            base_url=emulator.base_url, api_key="sk-test", max_retries=0
        ) as aclient:
            assert record(aclient, out) is aclient
            pending = aclient.chat.completions.create(model=MODEL, messages=HELLO)
            assert not out.read_bytes()  # not awaited yet: nothing sent, nothing recorded
            reply = await pending
            stream = await aclient.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
            assert isinstance(stream, openai.AsyncStream)
            assert [c async for c in stream]
            await aclient.responses.create(model=MODEL, input="hi", store=False)
        return reply.choices[0].message.content

    assert asyncio.run(app())
    assert [(line["url"], line["body"].get("stream")) for line in _lines(out)] == [
        (CHAT_URL, None),
        (CHAT_URL, True),
        (RESPONSES_URL, None),
    ]


# --- the body and the file ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({"model": "m", "seed": openai.NOT_GIVEN, "stop": openai.omit}, {"model": "m"}),
        ({"model": "m", "user": None}, {"model": "m", "user": None}),
        (
            {"model": "m", "extra_headers": {"X": "1"}, "extra_query": {}, "timeout": 3.0},
            {"model": "m"},
        ),
        ({"model": "m", "extra_body": {"model": "n", "x": 1}}, {"model": "n", "x": 1}),
        ({"model": "m", "shadow_key": "user-1"}, {"model": "m"}),
        (
            {"messages": ({"role": "user", "content": "a"},)},
            {"messages": [HELLO[0] | {"content": "a"}]},
        ),
        (
            {"messages": [ChatCompletionMessage(role="assistant", content="x")]},
            {"messages": [{"role": "assistant", "content": "x"}]},
        ),
        ({"messages": (m for m in HELLO)}, {"messages": HELLO}),
        ({"metadata": MappingProxyType({"k": "v"})}, {"metadata": {"k": "v"}}),
    ],
)
def test_request_body_is_what_the_sdk_sends(kwargs: dict[str, Any], body: dict[str, Any]) -> None:
    assert request_body(kwargs) == body


def test_a_body_that_cannot_be_written_is_counted_not_raised(tmp_path: Path) -> None:
    recorder = BatchRecorder(tmp_path / "calls.jsonl")
    recorder.write(CHAT_URL, {"model": "m", "metadata": object()})
    recorder.write(CHAT_URL, {"model": "m"})
    recorder.close()
    assert (recorder.written, recorder.failed) == (1, 1)
    assert [line["body"] for line in _lines(recorder.path)] == [{"model": "m"}]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_worker_appends_with_its_own_custom_ids(tmp_path: Path) -> None:
    recorder = BatchRecorder(tmp_path / "calls.jsonl")
    recorder.write(CHAT_URL, {"model": "parent"})
    pid = os.fork()
    if pid == 0:  # the child: one line, then out without running the parent's cleanup
        recorder.write(CHAT_URL, {"model": "child"})
        os._exit(0 if recorder.written == 1 else 1)
    assert os.waitpid(pid, 0)[1] == 0
    recorder.write(CHAT_URL, {"model": "parent"})
    recorder.close()
    lines = _lines(recorder.path)
    ids = {line["body"]["model"]: line["custom_id"].rsplit("-", 1)[0] for line in lines}
    assert len(lines) == 3 and len({line["custom_id"] for line in lines}) == 3
    assert ids["child"] != ids["parent"]


def test_ctrl_c_lets_the_command_shut_down_as_it_does(tmp_path: Path) -> None:
    app = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: (print('bye', flush=True), sys.exit(5)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    command = [sys.executable, "-m", "harness", "record", "--out", str(tmp_path / "c.jsonl")]
    with subprocess.Popen(
        [*command, "--", sys.executable, "-c", app],
        env=_app_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert out == "bye\n"
    assert proc.returncode == 5  # the command's own exit, after its own clean-up
    assert "Traceback" not in err
