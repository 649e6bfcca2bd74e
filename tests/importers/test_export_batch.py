"""``harness export batch``: a scenario's first requests as Batch API input, checked against the
spec, and back through ``harness import batch`` to the same planned requests."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_batch_import import traffic, write_log
from test_round_trip import planned

from harness.cli.app import main
from harness.runner.plan import build_plan, dry_run
from harness.scenario.load import load_scenario
from harness.translate.spec import request_problems


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's 50-request log imported (40 prompts, weights, history, tools, schemas)."""
    root = tmp_path_factory.mktemp("export")
    log = write_log(root / "app.jsonl", traffic())
    out = root / "app.yaml"
    assert main(["import", "batch", str(log), "--out", str(out), "--name", "app"]) == 0
    return out


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_chat_then_import_plans_the_same_requests(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch.jsonl"
    assert main(["export", "batch", str(imported), "--api", "chat", "--out", str(batch)]) == 0
    again = tmp_path / "again.yaml"
    assert main(["import", "batch", str(batch), "--out", str(again), "--name", "app"]) == 0
    # the Batch API does not stream: stream is the one field the round trip changes
    before = planned(imported, capsys, {"stream"})
    after = planned(again, capsys, {"stream"})
    assert sum(before.values()) == 48 * len(load_scenario(imported).arms)
    assert after == before
    streamed = [r for r in load_scenario(imported).prompts if r.params and r.params.stream]
    assert streamed or load_scenario(imported).defaults.stream  # the mask hides a real change


def test_export_responses_then_import_plans_the_same_requests(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Responses bodies (instructions, function_call items, flat tools, text.format) come back
    through the neutral request to the same planned requests on every arm."""
    batch = tmp_path / "batch.jsonl"
    assert main(["export", "batch", str(imported), "--api", "responses", "--out", str(batch)]) == 0
    assert any(
        item.get("type") == "function_call_output"
        for line in read_lines(batch)
        for item in line["body"]["input"]
    )
    again, report_path = tmp_path / "again.yaml", tmp_path / "again.json"
    args = ["import", "batch", str(batch), "--out", str(again), "--name", "app"]
    capsys.readouterr()
    assert main([*args, "--report", str(report_path)]) == 0
    printed = capsys.readouterr().out
    assert "not carried by batch: instructions role" in printed
    assert "taken from --defaults" not in printed  # --defaults cannot say which role it was
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["not_imported"] == [] and report["changed"] == []
    assert report["not_carried"] == {
        "instructions role": "Responses instructions do not say whether the app sent a system "
        "or a developer message: imported as system"
    }
    before = planned(imported, capsys, {"stream"})
    assert planned(again, capsys, {"stream"}) == before
    assert load_scenario(again).prompts[0].weight == load_scenario(imported).prompts[0].weight


def test_what_a_responses_line_cannot_carry_is_reported_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ask = {"model": "gpt-4.1-mini", "input": "Hi", "store": False}
    lines = [
        {"custom_id": "a", "method": "POST", "url": "/v1/responses", "body": ask},
        {
            "custom_id": "b",
            "method": "POST",
            "url": "/v1/responses",
            "body": {**ask, "previous_response_id": "resp_1"},
        },
        {**ask, "input": "Hello", "truncation": "auto"},  # a bare Responses body
        {"model": "gpt-4.1-mini", "input": [{"type": "web_search_call", "id": "ws"}]},
        {"model": "gpt-4.1-mini", "input": "Store me"},  # Responses stores by default
    ]
    source = tmp_path / "r.jsonl"
    source.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    out, report_path = tmp_path / "s.yaml", tmp_path / "r.json"
    capsys.readouterr()
    assert (
        main(["import", "batch", str(source), "--out", str(out), "--report", str(report_path)]) == 0
    )
    report = json.loads(report_path.read_text(encoding="utf-8"))
    printed = capsys.readouterr().out
    assert [(n["line"], n["reason"].partition(":")[0]) for n in report["not_imported"]] == [
        (2, "custom_id b"),
        (4, "input[0]"),
    ]
    assert "previous_response_id: not carried" in report["not_imported"][0]["reason"]
    assert f"{source}:4: not imported: input[0]: a 'web_search_call' item" in printed
    assert [(n["line"], n["reason"].split(" (")[0]) for n in report["changed"]] == [
        (3, "truncation dropped"),
        (5, "store: true not kept"),
    ]
    scenario = load_scenario(out)
    assert [p.input for p in scenario.prompts] == ["Hi", "Hello", "Store me"]
    assert report["not_carried"] == {}  # no instructions: nothing about their role


def test_lines_are_batch_input_checked_against_the_spec(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.jsonl"
    assert main(["export", "batch", str(imported), "--api", "both", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    scenario = load_scenario(imported)
    weights = sum(p.weight for p in scenario.prompts)
    for api, url, endpoint in (
        ("chat", "/v1/chat/completions", "/chat/completions"),
        ("responses", "/v1/responses", "/responses"),
    ):
        path = tmp_path / f"b.{api}.jsonl"
        assert f"{path}: {weights} requests" in printed
        lines = read_lines(path)
        assert len(lines) == weights
        assert len({line["custom_id"] for line in lines}) == weights
        ids = Counter(line["custom_id"].split("#")[0] for line in lines)
        assert ids == Counter({f"app/{p.id}/{api}": p.weight for p in scenario.prompts})
        for line in lines:
            assert set(line) == {"custom_id", "method", "url", "body"}
            assert (line["method"], line["url"]) == ("POST", url)
            assert line["body"]["stream"] is False
            assert "stream_options" not in line["body"]
            assert request_problems(endpoint, line["body"]) == []
    assert not (tmp_path / "b.jsonl").exists()


def test_the_bodies_are_the_runs_own_translation(imported: Path, tmp_path: Path) -> None:
    """Each exported body is what the run sends first for that prompt on that API (nonce off,
    stream off): the run's translator, not a second one."""
    out = tmp_path / "r.jsonl"
    assert main(["export", "batch", str(imported), "--api", "responses", "--out", str(out)]) == 0
    bodies = {line["custom_id"]: line["body"] for line in read_lines(out)}
    scenario = load_scenario(imported)
    plain = scenario.model_copy(update={"cache_isolation": "none"})
    checked = 0
    for request in dry_run(build_plan(plain, repeats=1)):
        conv = request.conversation
        if conv.arm != "responses" or request.turn != 1 or conv.warmup:
            continue
        kwargs = request.kwargs()
        kwargs["stream"] = False
        assert bodies[f"app/{conv.prompt_id}/responses"] == kwargs
        checked += 1
    assert checked == len(scenario.prompts)


def test_once_writes_one_line_per_prompt(imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "once.jsonl"
    assert main(["export", "batch", str(imported), "--out", str(out), "--once"]) == 0
    lines = read_lines(out)
    assert len(lines) == len(load_scenario(imported).prompts) == 40
    assert all(line["url"] == "/v1/responses" for line in lines)


def test_later_turns_are_named_not_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "version: 1\nname: s\nmodel: gpt-4.1-mini\nprompts:\n"
        "  - id: two\n    turns: ['Hello', 'And then?']\n  - id: one\n    input: Hi\n",
        encoding="utf-8",
    )
    out = tmp_path / "s.jsonl"
    assert main(["export", "batch", str(scenario), "--api", "chat", "--out", str(out)]) == 0
    assert "1 prompts have later turns, not exported" in capsys.readouterr().out
    lines = read_lines(out)
    assert [line["custom_id"] for line in lines] == ["s/two/chat", "s/one/chat"]
    first = lines[0]["body"]["messages"]
    assert [m["content"] for m in first if m["role"] == "user"] == ["Hello"]


def test_a_missing_scenario_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.jsonl"
    assert main(["export", "batch", str(tmp_path / "nope.yaml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.yaml" in err and "\n" not in err
    assert not out.exists()


def test_a_chained_arm_does_not_make_the_batch_store(tmp_path: Path) -> None:
    """The chained arm stores its responses; a batch request is not chained, so it does not."""
    for arms in ("[responses_chained, chat]", "[responses_chained]"):
        scenario = tmp_path / "s.yaml"
        scenario.write_text(
            f"version: 1\nname: s\nmodel: gpt-4.1-mini\narms: {arms}\n"
            "prompts:\n  - id: one\n    input: Hi\n",
            encoding="utf-8",
        )
        out = tmp_path / "s.jsonl"
        assert main(["export", "batch", str(scenario), "--api", "both", "--out", str(out)]) == 0
        for api in ("chat", "responses"):
            (line,) = read_lines(tmp_path / f"s.{api}.jsonl")
            assert line["body"]["store"] is False, (arms, api)
