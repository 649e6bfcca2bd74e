"""``harness import batch``: a realistic 50-request log to a scenario that validates and runs.

The log is the one issue 18 describes: a long shared system prompt, multi-turn requests with
fixed assistant replies, tool calls and results, ``json_schema`` output, some requests not
streamed, two with ``n``/``seed``/``stop``, duplicates, and planted secrets and personal data.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.cli.app import main
from harness.importers.batch import read_batch
from harness.importers.build import ImportOptions, build_scenario
from harness.importers.scrub import Scrubber
from harness.importers.source import BadLine, SourceRequest
from harness.rundir import read_observations
from harness.runner.plan import build_plan, dry_run
from harness.scenario.load import load_scenario
from harness.translate.spec import request_problems

MODEL = "gpt-4.1-mini"
SYSTEM = "You are the support assistant of Acme Outdoor Gear. " + " ".join(
    f"Policy {i}: answer politely and cite the relevant help page." for i in range(80)
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "order_status",
            "description": "Look up an order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "ticket",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"category": {"type": "string"}, "urgent": {"type": "boolean"}},
            "required": ["category", "urgent"],
            "additionalProperties": False,
        },
    },
}
SECRETS = (
    "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123456789",
    "eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "jane.doe@example.com",
    "+1 415 555 0100",
    "4111 1111 1111 1111",
)


def _system() -> dict[str, Any]:
    return {"role": "system", "content": SYSTEM}


def traffic() -> list[dict[str, Any]]:
    """50 logged request bodies (the issue's mix), in log order."""
    bodies: list[dict[str, Any]] = []
    for i in range(16):  # single turn; 8 distinct questions, each asked twice
        q = f"How do I return item number {i % 8}?"
        bodies.append(
            {
                "model": MODEL,
                "messages": [_system(), {"role": "user", "content": q}],
                "stream": True,
            }
        )
    for i in range(10):  # multi-turn with the app's fixed assistant reply; not streamed
        bodies.append(
            {
                "model": MODEL,
                "messages": [
                    _system(),
                    {"role": "user", "content": f"I want to change my order {i}."},
                    {"role": "assistant", "content": "Sure — what would you like to change?"},
                    {"role": "user", "content": "The delivery address, please."},
                ],
            }
        )
    for i in range(8):  # tool call and its logged result
        call = {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": "order_status", "arguments": json.dumps({"order_id": f"A{i}"})},
        }
        bodies.append(
            {
                "model": MODEL,
                "messages": [
                    _system(),
                    {"role": "user", "content": f"Where is order A{i}?"},
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {
                        "role": "tool",
                        "tool_call_id": f"call_{i}",
                        "content": json.dumps({"status": "shipped", "eta_days": i}),
                    },
                ],
                "tools": TOOLS,
                "tool_choice": "auto",
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
    for i in range(10):  # structured output, half streamed
        bodies.append(
            {
                "model": MODEL,
                "messages": [
                    _system(),
                    {"role": "user", "content": f"Classify this ticket: my tent pole {i} broke."},
                ],
                "response_format": SCHEMA,
                "temperature": 0,
                **({"stream": True} if i % 2 else {}),
            }
        )
    # planted secrets and personal data, one request each
    bodies.append(
        {
            "model": MODEL,
            "messages": [
                _system(),
                {
                    "role": "user",
                    "content": f"My key {SECRETS[0]} stopped working, mail {SECRETS[2]}",
                },
            ],
        }
    )
    bodies.append(
        {
            "model": MODEL,
            "messages": [
                _system(),
                {"role": "user", "content": f"Call me on {SECRETS[3]}; card {SECRETS[4]}."},
            ],
            "user": SECRETS[2],
        }
    )
    bodies.append(
        {
            "model": MODEL,
            "messages": [
                _system(),
                {"role": "user", "content": f"The header was Authorization: Bearer {SECRETS[1]}"},
            ],
            "stream": True,
        }
    )
    bodies.append({"model": MODEL, "messages": [_system(), {"role": "user", "content": "Hi"}]})
    # two with parameters the Responses API lacks
    bodies.append(
        {"model": MODEL, "messages": [_system(), {"role": "user", "content": "Ideas?"}], "n": 3}
    )
    bodies.append(
        {
            "model": MODEL,
            "messages": [_system(), {"role": "user", "content": "List sizes"}],
            "seed": 7,
            "stop": ["\n\n"],
        }
    )
    assert len(bodies) == 50
    return bodies


def write_log(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("import")
    log = write_log(root / "app.jsonl", traffic())
    out, report = root / "scenarios" / "app.yaml", root / "import-report.json"
    assert main(["import", "batch", str(log), "--out", str(out), "--report", str(report)]) == 0
    return log, out, report


def test_the_log_imports_with_no_line_written_by_hand(
    imported: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, report_path = imported
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert (report["lines"], report["requests"]) == (50, 50)
    assert report["imported_requests"] == 48
    assert [n["line"] for n in report["not_imported"]] == [49, 50]
    assert report["not_imported"][0]["reason"] == (
        "n: Responses returns exactly one output per request; remove n (use repeats for samples)"
    )
    # every Chat-only parameter of the request is named, so one --drop-unsupported does it
    seed, stop = report["not_imported"][1]["reason"].split("; remove seed")
    assert seed.startswith("seed: Responses has no seed parameter") and "stop: " in stop
    scenario = load_scenario(out)
    assert sum(p.weight for p in scenario.prompts) == 48
    assert report["merged"] == 8 and len(scenario.prompts) == 40
    assert Counter(p.weight for p in scenario.prompts)[2] == 8
    # stated once: model, the long system prompt, the tools and the output schema
    text = out.read_text(encoding="utf-8")
    assert text.count("Policy 79") == 1 and text.count("order_status") == 1 + 8  # + calls
    assert scenario.system == SYSTEM and scenario.model == MODEL
    assert scenario.tools is not None and scenario.output_schema is not None
    assert main(["validate", str(out)]) == 0


def test_stream_follows_the_source_and_store_stays_off(imported: tuple[Path, Path, Path]) -> None:
    log, out, _ = imported
    scenario = load_scenario(out)
    sent = {
        item.line: bool(item.body.get("stream", False))
        for item in read_batch(log)
        if isinstance(item, SourceRequest)
    }
    for prompt in scenario.prompts:
        line = int(prompt.id.removeprefix("line-"))
        assert scenario.params_for(prompt)["stream"] is sent[line], prompt.id
        assert "store" not in scenario.params_for(prompt)


def test_history_and_tool_results_reach_both_apis_verbatim(
    imported: tuple[Path, Path, Path],
) -> None:
    log, out, _ = imported
    # the log as written, except the lines with planted secrets, which must arrive scrubbed
    # (comparing every line with the scrubber's output would hide a scrubber that redacts
    # ordinary text)
    bodies = {
        i.line: Scrubber().value(i.body)
        if any(secret in json.dumps(i.body) for secret in SECRETS)
        else i.body
        for i in read_batch(log)
        if isinstance(i, SourceRequest)
    }
    checked = Counter[str]()
    for planned in dry_run(build_plan(load_scenario(out), repeats=1)):
        endpoint = "/chat/completions" if planned.conversation.api == "chat" else "/responses"
        kwargs = planned.kwargs()
        assert request_problems(endpoint, kwargs) == [], planned.conversation.conversation
        source = bodies[int(planned.conversation.prompt_id.removeprefix("line-"))]
        if planned.turn != 1 or "Policy" not in json.dumps(source):
            continue
        if endpoint == "/chat/completions":
            # after the nonce-bearing system message, every message as logged
            expected = [
                {k: v for k, v in m.items() if v is not None} for m in source["messages"][1:]
            ]
            assert kwargs["messages"][1:] == expected
            assert kwargs["messages"][0]["content"].endswith(SYSTEM)
            checked["chat"] += 1
        else:
            kinds = [item.get("type", "message") for item in kwargs["input"]]
            if "tools" in source:
                assert kinds == ["message", "function_call", "function_call_output"]
                call = source["messages"][2]["tool_calls"][0]
                assert kwargs["input"][1]["call_id"] == call["id"]
                assert kwargs["input"][2]["output"] == source["messages"][3]["content"]
                checked["tools"] += 1
            if any(m["role"] == "assistant" and m.get("content") for m in source["messages"]):
                assert kwargs["input"][1] == {
                    "type": "message",
                    "role": "assistant",
                    "content": "Sure — what would you like to change?",
                }
                checked["history"] += 1
    assert checked == {"chat": 40, "tools": 8, "history": 10}


def test_no_planted_secret_reaches_the_scenario_or_report(
    imported: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, report_path = imported
    text = out.read_text(encoding="utf-8") + report_path.read_text(encoding="utf-8")
    for secret in SECRETS:
        assert secret not in text
    assert "[redacted-email]" in text and "[redacted-api-key]" in text
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["scrubbed"] == {
        "api-key": 1,
        "bearer-token": 1,
        "email": 2,
        "phone": 1,
        "card-number": 1,
    }


def test_the_imported_scenario_runs_against_the_emulator(
    imported: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, out, _ = imported
    code = main(
        [
            "run",
            str(out),
            "--emulator-profile",
            "zero",
            "--repeats",
            "1",
            "--out",
            str(tmp_path / "runs"),
            "--seed",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    observations = list(read_observations(run_dir / "observations.jsonl"))
    assert len(observations) == 2 * 40  # one request per prompt and arm
    assert all(o.ok for o in observations)
    (report,) = (tmp_path / "reports").glob("*/report.html")
    html = report.read_text(encoding="utf-8")
    assert "(the end of a fixed history of" in html  # a logged history in the prompt detail
    assert "Under the traffic mix (each request counted as often as its prompt occurs" in html
    for written in (run_dir / "observations.jsonl", report, run_dir / "summary.json"):
        for secret in SECRETS:
            assert secret not in written.read_text(encoding="utf-8"), written


# --------------------------------------------------------------------------- options


def test_drop_unsupported_imports_them_and_records_the_change(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", traffic()[-2:])
    out, report_path = tmp_path / "s.yaml", tmp_path / "r.json"
    args = ["import", "batch", str(log), "--out", str(out), "--report", str(report_path)]
    assert main([*args, "--drop-unsupported", "n,seed,stop"]) == 0
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["not_imported"] == []
    assert [(n["line"], n["reason"]) for n in report["changed"]] == [
        (1, "n removed (--drop-unsupported)"),
        (2, "seed removed (--drop-unsupported)"),
        (2, "stop removed (--drop-unsupported)"),
    ]
    assert len(load_scenario(out).prompts) == 2


def test_drop_unsupported_names_only_known_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "log.jsonl", traffic()[:1])
    code = main(
        ["import", "batch", str(log), "--out", str(tmp_path / "s.yaml"), "--drop-unsupported", "x"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error: --drop-unsupported x: not a Chat parameter")
    assert "\n" not in err and not (tmp_path / "s.yaml").exists()


def test_store_is_kept_only_when_asked(tmp_path: Path) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "store": True}
    items = [SourceRequest(1, body)]
    plain = build_scenario(items, ImportOptions(name="s"), source="log", fmt="batch")
    assert "store" not in json.dumps(plain.scenario)
    assert plain.report.changed[0].reason.startswith("store: true not kept")
    kept = build_scenario(
        items, ImportOptions(name="s", keep_store=True), source="log", fmt="batch"
    )
    assert kept.scenario["defaults"]["store"] is True and kept.report.changed == []


def test_custom_scrub_pattern(tmp_path: Path) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Customer ACME-12345 asks"}]}
    result = build_scenario(
        [SourceRequest(1, body)],
        ImportOptions(name="s", scrub=(r"ACME-\d+",)),
        source="log",
        fmt="batch",
    )
    assert "ACME-12345" not in json.dumps(result.scenario)
    assert result.report.scrubbed == {"custom": 1}


def test_batch_api_and_body_lines_import_like_bare_bodies(tmp_path: Path) -> None:
    bodies = traffic()[16:20]
    wrapped = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": b}
        for i, b in enumerate(bodies[:2])
    ] + [{"body": b, "latency_ms": 120} for b in bodies[2:]]
    a = build_scenario(
        read_batch(write_log(tmp_path / "a.jsonl", bodies)),
        ImportOptions(name="s"),
        source="a",
        fmt="batch",
    )
    b = build_scenario(
        read_batch(write_log(tmp_path / "b.jsonl", wrapped)),
        ImportOptions(name="s"),
        source="b",
        fmt="batch",
    )
    assert a.scenario == b.scenario


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "{not json",
            "malformed JSON (Expecting property name enclosed in double quotes at column 2)",
        ),
        (
            json.dumps({"custom_id": "x", "method": "POST", "url": "/v1/embeddings", "body": {}}),
            "unknown url '/v1/embeddings': only /v1/chat/completions and /v1/responses "
            "requests are imported",
        ),
        (
            json.dumps({"model": MODEL, "prompt": "Hi"}),
            "not a Chat Completions request body (no messages list)",
        ),
        (
            json.dumps({"url": "/v1/responses", "body": {"model": MODEL, "messages": []}}),
            "not a Responses request body (no input)",
        ),
        ("[1, 2]", "expected a JSON object, got list"),
    ],
)
def test_a_bad_line_is_one_error_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, problem: str
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(traffic()[0]) + "\n\n" + line + "\n", encoding="utf-8")
    out = tmp_path / "s.yaml"
    assert main(["import", "batch", str(log), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"harness: error: {log}:3: {problem} — fix the line or pass --skip-bad\n"
    assert not out.exists() and list(tmp_path.iterdir()) == [log]


def test_skip_bad_lists_bad_lines_in_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(traffic()[0]) + "\n{oops\n", encoding="utf-8")
    out = tmp_path / "s.yaml"
    assert main(["import", "batch", str(log), "--out", str(out), "--skip-bad"]) == 0
    printed = capsys.readouterr().out
    assert f"{log}:2: bad line skipped: malformed JSON" in printed
    assert len(load_scenario(out).prompts) == 1


def test_reader_yields_line_numbers_of_the_file() -> None:
    items = list(read_batch(Path(__file__)))  # not JSONL: every non-blank line is bad
    assert items and all(isinstance(i, BadLine) for i in items)
    assert items[0].line == 1


def test_the_same_log_imports_to_the_same_scenario(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", traffic())
    first, second = (
        build_scenario(read_batch(log), ImportOptions(name="s"), source="log", fmt="batch")
        for _ in range(2)
    )
    assert first == second
    ids = [p["id"] for p in first.scenario["prompts"]]
    assert ids == sorted(ids, key=lambda i: int(i.removeprefix("line-")))  # log order


def test_a_single_question_with_tools_imports_as_one_logged_request(tmp_path: Path) -> None:
    """A logged request with tools and one user message is one request: the scenario sends it
    once per arm (no canned tool results needed), with its tools, as the log did."""
    question = {"role": "user", "content": "Where is order 12?"}
    body = {"model": MODEL, "messages": [_system(), question], "tools": TOOLS}
    log = write_log(tmp_path / "log.jsonl", [body, body])
    out = tmp_path / "s.yaml"
    assert main(["import", "batch", str(log), "--out", str(out)]) == 0
    scenario = load_scenario(out)
    (prompt,) = scenario.prompts
    assert prompt.weight == 2
    planned = list(dry_run(build_plan(scenario)))
    assert len(planned) == len(scenario.arms)
    for p in planned:
        assert p.turn == 1


def test_a_duplicate_counts_its_redactions_again(tmp_path: Path) -> None:
    """Duplicates skip scrubbing (their outcome is remembered) but are counted as redacted."""
    secret = {"model": MODEL, "messages": [{"role": "user", "content": "Mail jane@example.com"}]}
    other = {"model": MODEL, "messages": [{"role": "user", "content": "Call +1 415 555 0100"}]}
    log = write_log(tmp_path / "log.jsonl", [secret, other, secret, secret])
    result = build_scenario(read_batch(log), ImportOptions(name="s"), source=str(log), fmt="batch")
    assert result.report.scrubbed == {"email": 3, "phone": 1}
    assert [p.get("weight", 1) for p in result.scenario["prompts"]] == [3, 1]
    assert "jane@example.com" not in json.dumps(result.scenario)
