"""``harness.importers.otel``: the less common shapes of OTLP/JSON GenAI telemetry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from import_formats import any_value, key_values, semconv_span, span, traces

from harness.errors import HarnessError
from harness.importers.otel import read_otel
from harness.importers.source import BadLine, SourceRequest, Unusable

MODEL = "gpt-4.1-mini"
BODY = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ],
}


def _read(tmp_path: Path, text: str) -> list[Any]:
    path = tmp_path / "t.json"
    path.write_text(text, encoding="utf-8")
    return list(read_otel(path))


def test_inference_details_log_record_joins_its_span(tmp_path: Path) -> None:
    chat = span(0, {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL})
    details = {
        "traceId": chat["traceId"],
        "spanId": chat["spanId"],
        "eventName": "gen_ai.client.inference.operation.details",
        "attributes": key_values(
            {
                "gen_ai.input.messages": [
                    {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                    {"role": "user", "parts": [{"type": "text", "content": "Hi"}]},
                ],
                "gen_ai.output.messages": [
                    {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}]}
                ],
            }
        ),
    }
    (item,) = _read(tmp_path, json.dumps(traces([chat], [details])))
    assert item == SourceRequest(1, BODY, "Hello", id=f"span-{chat['spanId']}")


def test_one_document_per_line_and_a_bad_later_line(tmp_path: Path) -> None:
    first = json.dumps(traces([semconv_span(0, BODY)]))
    second = json.dumps(traces([semconv_span(1, BODY)]))
    items = _read(tmp_path, f"{first}\n{second}\n{{oops\n")
    # in line order: the spans of a line are read before the next line is
    assert [type(i).__name__ for i in items] == ["SourceRequest", "SourceRequest", "BadLine"]
    one, two, bad = items
    assert isinstance(bad, BadLine) and bad.line == 3
    assert (one.line, two.line) == (1, 2) and one.body == two.body == BODY


def test_a_part_the_importer_cannot_express_is_listed(tmp_path: Path) -> None:
    chat = span(
        0,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": MODEL,
            "gen_ai.input.messages": json.dumps(
                [
                    {
                        "role": "user",
                        "parts": [{"type": "blob", "modality": "image", "content": "AA=="}],
                    }
                ]
            ),
        },
    )
    (item,) = _read(tmp_path, json.dumps(traces([chat])))
    assert isinstance(item, Unusable)
    assert item.reason.endswith(
        "gen_ai.input.messages: a 'blob' part is not imported (text and tools only)"
    )


def test_agent_and_http_spans_are_passed_over(tmp_path: Path) -> None:
    agent = span(0, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"})
    http = span(1, {"http.request.method": "POST"})
    chat = semconv_span(2, BODY)
    items = _read(tmp_path, json.dumps(traces([agent, http, chat])))
    assert [i.id for i in items] == [f"span-{chat['spanId']}"]


def test_event_body_as_log_record_kvlist_with_an_event_name_attribute(tmp_path: Path) -> None:
    chat = span(0, {"gen_ai.request.model": MODEL, "gen_ai.system": "openai"})
    logs = [
        {
            "timeUnixNano": str(10 + n),
            "traceId": chat["traceId"],
            "spanId": chat["spanId"],
            # the event name as an attribute: what SDKs wrote before LogRecord.eventName
            "attributes": key_values({"event.name": name}),
            "body": any_value(body),
        }
        for n, (name, body) in enumerate(
            [
                ("gen_ai.system.message", {"content": "Be brief."}),
                ("gen_ai.user.message", {"content": "Hi"}),
                ("gen_ai.choice", {"index": 0, "message": {"content": "Hello"}}),
            ]
        )
    ]
    (item,) = _read(tmp_path, json.dumps(traces([chat], logs[::-1])))
    assert item == SourceRequest(1, BODY, "Hello", id=f"span-{chat['spanId']}")


def test_events_without_content_are_capture_off(tmp_path: Path) -> None:
    chat = span(0, {"gen_ai.request.model": MODEL})
    chat["events"] = [
        {"name": "gen_ai.user.message", "attributes": key_values({"gen_ai.system": "openai"})}
    ]
    (item,) = _read(tmp_path, json.dumps(traces([chat])))
    assert isinstance(item, Unusable) and "content capture was off" in item.reason


def test_openllmetry_with_the_conventions_tool_definitions(tmp_path: Path) -> None:
    tool = {"type": "function", "name": "lookup", "description": "Look up", "parameters": {}}
    chat = span(
        0,
        {
            "gen_ai.request.model": MODEL,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "Hi",
            "gen_ai.tool.definitions": json.dumps([tool]),
        },
    )
    (item,) = _read(tmp_path, json.dumps(traces([chat])))
    assert item.body["tools"] == [
        {
            "type": "function",
            "function": {"name": "lookup", "description": "Look up", "parameters": {}},
        }
    ]


def test_malformed_otlp_structures_are_listed_not_tracebacks(tmp_path: Path) -> None:
    broken = {"resourceSpans": [{"scopeSpans": ["not a scope"]}]}
    chat = semconv_span(0, BODY)
    chat["attributes"].append({"key": "gen_ai.request.seed", "value": {"intValue": "seven"}})
    items = _read(tmp_path, json.dumps(broken) + "\n" + json.dumps(traces([chat])) + "\n")
    bad, unusable = items
    assert isinstance(bad, BadLine) and bad.line == 1
    assert bad.problem.startswith("malformed OTLP/JSON (AttributeError: ")
    assert isinstance(unusable, Unusable) and unusable.line == 2
    assert unusable.reason.startswith(f"span {chat['spanId']}: malformed attributes (invalid")


def test_exception_texts_in_report_notes_are_scrubbed(tmp_path: Path) -> None:
    """An exception quoting a malformed value (here an API key) is listed without the key."""
    from harness.cli.app import main

    key = "sk-proj-Abc123def456GHI789jkl0"
    good = semconv_span(0, BODY)
    chat = semconv_span(1, BODY)
    chat["attributes"].append({"key": "gen_ai.request.seed", "value": {"intValue": key}})
    source = tmp_path / "t.json"
    source.write_text(json.dumps(traces([good, chat])) + "\n", encoding="utf-8")
    report = tmp_path / "report.json"
    out = tmp_path / "s.yaml"
    args = ["import", "otel", str(source), "--out", str(out), "--report", str(report)]
    assert main(args) == 0
    text = report.read_text(encoding="utf-8")
    assert "malformed attributes (invalid literal" in text  # the note is kept
    assert key not in text and key not in out.read_text(encoding="utf-8")


def _event_logs(chat: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "timeUnixNano": str(10 + n),
            "traceId": chat["traceId"],
            "spanId": chat["spanId"],
            "eventName": name,
            "body": any_value(body),
        }
        for n, (name, body) in enumerate(
            [
                ("gen_ai.system.message", {"content": "Be brief."}),
                ("gen_ai.user.message", {"content": "Hi"}),
                ("gen_ai.choice", {"index": 0, "message": {"content": "Hello"}}),
            ]
        )
    ]


def test_log_records_on_other_lines_join_their_span_before_or_after_it(tmp_path: Path) -> None:
    """The collector writes traces and logs as separate requests: a span's event records may
    come on a later line (the span waits for the end) or an earlier one."""
    early = span(0, {"gen_ai.request.model": MODEL, "gen_ai.system": "openai"})
    late = span(1, {"gen_ai.request.model": MODEL, "gen_ai.system": "openai"})
    logs_only = {"resourceLogs": traces([], _event_logs(early))["resourceLogs"]}
    lines = [
        json.dumps(logs_only),
        json.dumps(traces([early, late])),
        json.dumps({"resourceLogs": traces([], _event_logs(late))["resourceLogs"]}),
    ]
    items = _read(tmp_path, "\n".join(lines) + "\n")
    assert items == [
        SourceRequest(2, BODY, "Hello", id=f"span-{early['spanId']}"),
        SourceRequest(2, BODY, "Hello", id=f"span-{late['spanId']}"),
    ]


def test_one_pretty_printed_document_still_reads(tmp_path: Path) -> None:
    doc = traces([semconv_span(0, BODY), semconv_span(1, BODY)])
    items = _read(tmp_path, json.dumps(doc, indent=2))
    assert [(i.line, i.body) for i in items] == [(1, BODY), (1, BODY)]
    broken = json.dumps(doc, indent=2).replace('"spans"', "spans", 1)
    with pytest.raises(HarnessError, match=r"t\.json: not OTLP JSON \(malformed JSON: .* at line"):
        _read(tmp_path, broken)


@pytest.mark.parametrize("skip_bad", [False, True])
def test_a_bad_line_is_one_error_with_file_and_line_unless_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], skip_bad: bool
) -> None:
    from harness.cli.app import main

    source = tmp_path / "t.jsonl"
    good = json.dumps(traces([semconv_span(0, BODY)]))
    source.write_text(f"{good}\n{{oops\n{good}\n", encoding="utf-8")
    out, report = tmp_path / "s.yaml", tmp_path / "r.json"
    args = ["import", "otel", str(source), "--out", str(out), "--report", str(report)]
    if not skip_bad:
        assert main(args) == 2
        problem = "malformed JSON (Expecting property name enclosed in double quotes at column 2)"
        err = capsys.readouterr().err
        assert err == f"harness: error: {source}:2: {problem} — fix the line or pass --skip-bad\n"
        assert not out.exists() and not report.exists()
        return
    assert main([*args, "--skip-bad"]) == 0
    data = json.loads(report.read_text(encoding="utf-8"))
    assert [n["line"] for n in data["bad_lines"]] == [2]
    assert data["prompts"] == 1 and data["merged"] == 1
