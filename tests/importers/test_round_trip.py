"""The same requests as Batch input, fine-tuning JSONL and OTel GenAI telemetry in three dialects
import to equivalent scenarios: the same planned requests (``harness plan --json``), apart from
the fields each import report names as not carried by its format."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from import_formats import finetune_line, otel_document, reply
from test_batch_import import MODEL, traffic, write_log

from harness.cli.app import main
from harness.scenario.load import load_scenario

DIALECTS = ("semconv", "events", "openllmetry")
#: what a report's not-carried name removes from a planned request (a path; [] = every item)
_MASKS: dict[str, tuple[str, ...]] = {
    "model": (),  # the round trip passes it with --defaults
    "user": ("user", "safety_identifier"),
    "response_format": ("response_format", "text"),
    "response_format.json_schema.name": ("response_format.json_schema.name", "text.format.name"),
    "response_format.json_schema.strict": (
        "response_format.json_schema.strict",
        "text.format.strict",
    ),
    "stream": ("stream", "stream_options"),
    "stream_options": ("stream_options",),
    "tool_choice": ("tool_choice",),
    "parallel_tool_calls": ("parallel_tool_calls",),
    "sampling": ("temperature", "top_p", "max_completion_tokens", "max_output_tokens"),
    "tools[].function.strict": ("tools[].function.strict", "tools[].strict"),
    "tools": ("tools",),
}


def _strip(value: Any, path: list[str]) -> None:
    head, *rest = path
    items = head.endswith("[]")
    key = head.removesuffix("[]")
    if not isinstance(value, dict) or key not in value:
        return
    if not rest:
        del value[key]
    elif items:
        for item in value[key]:
            _strip(item, rest)
    else:
        _strip(value[key], rest)


def planned(scenario: Path, capsys: pytest.CaptureFixture[str], masked: set[str]) -> Counter[str]:
    """The planned request bodies (with prompt weights), less the masked fields."""
    capsys.readouterr()
    assert main(["plan", str(scenario), "--json", "--repeats", "1"]) == 0
    weights = {p.id: p.weight for p in load_scenario(scenario).prompts}
    paths = [path.split(".") for name in masked for path in _MASKS[name]]
    out = Counter[str]()
    for line in capsys.readouterr().out.splitlines():
        record = json.loads(line)
        text = json.dumps(record["kwargs"], sort_keys=True).replace(record["nonce"], "NONCE")
        kwargs = json.loads(text)
        for path in paths:
            _strip(kwargs, path)
        # tools the format lost: an empty list and no list plan the same request
        if "tools" in masked:
            kwargs.pop("tool_choice", None)
        key = json.dumps([record["arm"], record["turn"], record["kind"], kwargs], sort_keys=True)
        out[key] += weights[record["prompt_id"]]
    return out


def run_import(fmt: str, source: Path, out: Path, *extra: str) -> dict[str, Any]:
    report = out.with_suffix(".report.json")
    args = ["import", fmt, str(source), "--out", str(out), "--report", str(report), "--name", "app"]
    assert main([*args, *extra]) == 0
    result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return result


@pytest.fixture(scope="module")
def bodies() -> list[dict[str, Any]]:
    return traffic()


def test_every_format_plans_the_batch_requests(
    bodies: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = run_import("batch", write_log(tmp_path / "app.jsonl", bodies), tmp_path / "batch.yaml")
    assert batch["not_carried"] == {} and batch["prompts"] == 40
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text(yaml.safe_dump({"model": MODEL}), encoding="utf-8")
    # fine-tuning examples hold no seed/stop/n: the two requests batch refuses are left out
    finetune = run_import(
        "finetune",
        write_log(tmp_path / "ft.jsonl", [finetune_line(b) for b in bodies[:48]]),
        tmp_path / "ft.yaml",
        "--defaults",
        str(defaults),
    )
    assert finetune["from_defaults"] == ["model"]
    reports = {"finetune": finetune}
    for dialect in DIALECTS:
        source = tmp_path / f"{dialect}.json"
        source.write_text(json.dumps(otel_document(dialect, bodies)), encoding="utf-8")
        reports[dialect] = run_import("otel", source, tmp_path / f"{dialect}.yaml")
    # each dialect names what it lacks, no more: OpenLLMetry records stream, user and the schema
    carried = {name: set(reports[name]["not_carried"]) for name in DIALECTS}
    assert {"stream", "user", "response_format"} <= carried["semconv"] & carried["events"]
    assert not {"stream", "user", "response_format"} & carried["openllmetry"]
    assert (
        "tools" in carried["events"] and "tools" not in carried["semconv"] | carried["openllmetry"]
    )
    for name, report in reports.items():
        masked = set(report["not_carried"])
        assert masked <= set(_MASKS), name
        assert planned(
            tmp_path / f"{name if name != 'finetune' else 'ft'}.yaml", capsys, masked
        ) == (planned(tmp_path / "batch.yaml", capsys, masked)), name
        assert report["imported_requests"] == 48 and report["prompts"] == 40, name
        assert report["merged"] == batch["merged"], name
    for dialect in DIALECTS:
        # seed, stop and n are recorded as gen_ai.request.*: refused for the same reasons
        assert reports[dialect]["not_imported"] != []
        reasons = [n["reason"].partition(": ")[2] for n in reports[dialect]["not_imported"]]
        assert reasons == [n["reason"] for n in batch["not_imported"]], dialect
    # the format's own fields arrive: tools with the semantic conventions and OpenLLMetry
    for name in ("semconv", "openllmetry", "finetune"):
        file = tmp_path / f"{name if name != 'finetune' else 'ft'}.yaml"
        scenario = load_scenario(file)
        assert scenario.tools is not None, name
        assert [t.name for t in scenario.tools] == ["order_status"]


def test_the_output_message_becomes_the_reference(
    bodies: list[dict[str, Any]], tmp_path: Path
) -> None:
    expected = Counter(reply(b) for b in bodies[:48])
    for dialect in DIALECTS:
        source = tmp_path / f"{dialect}.json"
        source.write_text(json.dumps(otel_document(dialect, bodies[:48])), encoding="utf-8")
        run_import("otel", source, tmp_path / f"{dialect}.yaml")
        prompts = load_scenario(tmp_path / f"{dialect}.yaml").prompts
        assert Counter({p.reference: p.weight for p in prompts}) == expected, dialect


def test_defaults_fill_what_a_trace_cannot_carry(
    bodies: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the structured-output requests: their schema and streaming come back from --defaults
    subset = [b for b in bodies if "response_format" in b and "stream" not in b]
    assert len(subset) == 5
    batch = tmp_path / "batch.yaml"
    run_import("batch", write_log(tmp_path / "app.jsonl", subset), batch)
    defaults = tmp_path / "defaults.json"
    defaults.write_text(
        json.dumps({"response_format": subset[0]["response_format"], "stream": False}),
        encoding="utf-8",
    )
    source = tmp_path / "t.json"
    source.write_text(json.dumps(otel_document("semconv", subset)), encoding="utf-8")
    out = tmp_path / "otel.yaml"
    report = run_import("otel", source, out, "--defaults", str(defaults))
    assert report["from_defaults"] == ["response_format", "stream"]
    printed = capsys.readouterr().out
    assert "not carried by otel: tool_choice (" in printed
    assert "; response_format (the conventions record at most gen_ai.output.type" in printed
    assert "taken from --defaults: response_format, stream" in printed
    assert planned(out, capsys, set()) == planned(batch, capsys, set())


# --------------------------------------------------------------------------- fidelity, bad input


def _chat_span(attrs: dict[str, Any]) -> dict[str, Any]:
    from import_formats import span, traces

    return traces([span(1, {"gen_ai.operation.name": "chat", **attrs})])


def test_a_span_without_content_is_listed_not_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from import_formats import semconv_span, traces

    doc = traces(
        [
            semconv_span(0, traffic()[0]),
            *_chat_span({"gen_ai.request.model": MODEL})["resourceSpans"][0]["scopeSpans"][0][
                "spans"
            ],
        ]
    )
    source = tmp_path / "t.json"
    source.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    report = run_import("otel", source, tmp_path / "s.yaml")
    assert report["requests"] == 2 and report["imported_requests"] == 1
    (note,) = report["not_imported"]
    assert note["reason"] == (
        "span 0000000000000002 (chat): no message content recorded (content capture was off "
        "when it was traced)"
    )
    assert f"{source}:1: not imported: span 0000000000000002" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not OTLP JSON (malformed JSON: Expecting property name enclosed in"),
        (json.dumps({"spans": []}), "not OTLP JSON (no resourceSpans or resourceLogs)"),
        ("\n\n" + json.dumps({"spans": []}) + "\n", "not OTLP JSON (no resourceSpans or"),
        ("\n", "not OTLP JSON (the file is empty)"),
    ],
)
def test_a_file_that_is_not_otlp_json_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    source = tmp_path / "t.json"
    source.write_text(text, encoding="utf-8")
    assert main(["import", "otel", str(source), "--out", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: {source}: {problem}") and err.count("\n") == 1
    assert not (tmp_path / "s.yaml").exists()


def test_finetune_needs_a_model_and_names_what_it_cannot_carry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_log(tmp_path / "ft.jsonl", [finetune_line(traffic()[0])])
    out = tmp_path / "s.yaml"
    assert main(["import", "finetune", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "examples name no model — pass --defaults FILE" in err and err.count("\n") == 1
    defaults = tmp_path / "d.yaml"
    defaults.write_text("model: gpt-4.1-mini\ntemperature: 0.2\n", encoding="utf-8")
    assert (
        main(["import", "finetune", str(source), "--out", str(out), "--defaults", str(defaults)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "not carried by finetune: model (" in printed
    assert "taken from --defaults: model, temperature" in printed
    scenario = load_scenario(out)
    assert scenario.prompts[0].reference == reply(traffic()[0])
    assert scenario.params_for(scenario.prompts[0])["temperature"] == 0.2


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({"messages": [{"role": "user", "content": "Hi"}]}, "not a fine-tuning chat example"),
        (
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "?"}]},
            "the last message must be the assistant's",
        ),
    ],
)
def test_a_bad_finetune_line_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: dict[str, Any], problem: str
) -> None:
    source = write_log(tmp_path / "ft.jsonl", [line])
    defaults = tmp_path / "d.yaml"
    defaults.write_text("model: gpt-4.1-mini\n", encoding="utf-8")
    out = tmp_path / "s.yaml"
    code = main(["import", "finetune", str(source), "--out", str(out), "--defaults", str(defaults)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: {source}:1: {problem}") and not out.exists()


def test_bad_defaults_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_log(tmp_path / "ft.jsonl", [finetune_line(traffic()[0])])
    defaults = tmp_path / "d.yaml"
    defaults.write_text("- model\n", encoding="utf-8")
    args = ["import", "finetune", str(source), "--out", str(tmp_path / "s.yaml")]
    assert main([*args, "--defaults", str(defaults)]) == 2
    assert capsys.readouterr().err == (
        f"harness: error: --defaults {defaults}: expected a mapping of chat parameters, such as "
        "'model: gpt-4.1-mini'\n"
    )


def test_json_output_without_a_recorded_schema_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from import_formats import semconv_span, traces

    body = traffic()[0]
    # json_object output needs the word JSON in the messages (an API rule the import checks)
    body["messages"][-1]["content"] = "Answer in JSON: " + body["messages"][-1]["content"]
    span = semconv_span(0, body)
    span["attributes"].append({"key": "gen_ai.output.type", "value": {"stringValue": "json"}})
    source = tmp_path / "t.json"
    source.write_text(json.dumps(traces([span])), encoding="utf-8")
    report = run_import("otel", source, tmp_path / "s.yaml")
    assert [n["reason"] for n in report["changed"]] == [
        "span-0000000000000001: gen_ai.output.type is json but the output format was not "
        "recorded: imported as text (give response_format in --defaults)"
    ]
    defaults = tmp_path / "d.json"
    defaults.write_text(json.dumps({"response_format": {"type": "json_object"}}), "utf-8")
    report = run_import("otel", source, tmp_path / "s2.yaml", "--defaults", str(defaults))
    assert report["changed"] == [] and report["from_defaults"] == ["response_format"]
    assert load_scenario(tmp_path / "s2.yaml").prompts[0].output == "json_object"


def test_nothing_importable_is_one_line_naming_the_first_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "t.json"
    source.write_text(json.dumps(_chat_span({"gen_ai.request.model": MODEL})), encoding="utf-8")
    out = tmp_path / "s.yaml"
    assert main(["import", "otel", str(source), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"harness: error: {source}: no request could be imported (1 not imported, 0 bad lines; "
        "line 1: span 0000000000000002 (chat): no message content recorded (content capture "
        "was off when it was traced))\n"
    )
    assert not out.exists()


def test_an_imported_trace_runs_against_the_emulator(
    bodies: list[dict[str, Any]], tmp_path: Path
) -> None:
    from harness.rundir import read_observations

    source = tmp_path / "events.json"
    source.write_text(json.dumps(otel_document("events", bodies)), encoding="utf-8")
    out = tmp_path / "events.yaml"
    run_import("otel", source, out)  # log records joined to spans: the most indirect dialect
    args = ["run", str(out), "--emulator-profile", "zero", "--repeats", "1", "--seed", "1"]
    assert main([*args, "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    observations = list(read_observations(run_dir / "observations.jsonl"))
    assert len(observations) == 2 * 40 and all(o.ok for o in observations)


def test_finetune_keeps_parallel_tool_calls_and_a_tool_call_reply_has_no_reference(
    tmp_path: Path,
) -> None:
    from harness.importers.finetune import read_finetune

    body = traffic()[26]  # a tool call and its result
    line = finetune_line(body) | {"parallel_tool_calls": False}
    call = {"role": "assistant", "tool_calls": body["messages"][2]["tool_calls"]}
    calls_only = {"messages": [*body["messages"][:2], call], "tools": body["tools"]}
    source = write_log(tmp_path / "ft.jsonl", [line, calls_only])
    first, second = read_finetune(source)
    assert first.body["parallel_tool_calls"] is False and "weight" not in json.dumps(first.body)
    assert first.reference == reply(body) and second.reference is None
    assert second.body["messages"] == body["messages"][:2]


def test_defaults_fill_only_what_a_batch_request_leaves_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = traffic()[:2]  # two single-turn requests, both streamed
    bodies[1] = {k: v for k, v in bodies[1].items() if k != "stream"}
    defaults = tmp_path / "d.yaml"
    defaults.write_text("stream: true\ntemperature: 0.5\n", encoding="utf-8")
    out = tmp_path / "s.yaml"
    log = write_log(tmp_path / "log.jsonl", bodies)
    report = run_import("batch", log, out, "--defaults", str(defaults))
    assert report["from_defaults"] == ["stream", "temperature"] and report["not_carried"] == {}
    assert "taken from --defaults: stream, temperature" in capsys.readouterr().out
    scenario = load_scenario(out)
    assert [scenario.params_for(p)["stream"] for p in scenario.prompts] == [True, True]
    assert all(scenario.params_for(p)["temperature"] == 0.5 for p in scenario.prompts)
