"""Prompts with a fixed history (``messages:``), shared tools/output, ``reference`` and ``weight``.

The history must reach both APIs as written: chat gets the messages, Responses gets the
assistant text as an assistant message item, its calls as ``function_call`` items and the tool
results as ``function_call_output`` items — checked against the OpenAPI spec and sent through
the SDK to the emulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.errors import ScenarioError
from harness.runner.plan import build_plan, dry_run, translation_problems
from harness.scenario.load import load_scenario
from harness.translate.spec import request_problems

if TYPE_CHECKING:
    import openai

HEAD = "version: 1\nname: t\nmodel: gpt-4.1-mini\ncache_isolation: none\n"

SHARED = """
tools:
  - name: get_weather
    description: Weather for a city
    parameters:
      type: object
      properties: {city: {type: string}}
      required: [city]
      additionalProperties: false
    strict: true
"""

HISTORY = """
prompts:
  - id: after-tool
    system: You are a travel assistant.
    messages:
      - {role: user, content: "Weather in Paris?"}
      - role: assistant
        tool_calls: [{id: call_1, name: get_weather, arguments: {city: Paris}}]
      - {role: tool, tool_call_id: call_1, content: '{"temp_c": 21}'}
    weight: 3
    reference: It is 21 °C in Paris.
  - id: after-reply
    messages:
      - {role: developer, content: Answer briefly.}
      - {role: user, content: "Hi"}
      - {role: assistant, content: "Hello! How can I help?"}
      - {role: user, content: "Recommend a museum."}
    tools: []
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    return [line.split(": ", 1)[1] for line in info.value.problems]


def first_requests(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for planned in dry_run(build_plan(load_scenario(path), repeats=1)):
        if planned.turn == 1:
            out[(planned.conversation.prompt_id, planned.conversation.api)] = planned.kwargs()
    return out


def test_history_is_sent_verbatim_to_both_apis(tmp_path: Path) -> None:
    sent = first_requests(write(tmp_path, HEAD + SHARED + HISTORY))
    chat = sent[("after-tool", "chat")]
    assert chat["messages"] == [
        {"role": "system", "content": "You are a travel assistant."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
    ]
    assert [t["function"]["name"] for t in chat["tools"]] == ["get_weather"]
    responses = sent[("after-tool", "responses")]
    assert responses["instructions"] == "You are a travel assistant."
    assert responses["input"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp_c": 21}'},
    ]
    # tools: [] on a prompt overrides the shared tools
    assert "tools" not in sent[("after-reply", "chat")]
    assert sent[("after-reply", "responses")]["input"] == [
        {"role": "user", "content": "Hi"},
        {"type": "message", "role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Recommend a museum."},
    ]
    for (_, api), body in sent.items():
        endpoint = "/chat/completions" if api == "chat" else "/responses"
        assert request_problems(endpoint, body) == []


def test_the_measured_request_is_the_history_then_turns_follow(tmp_path: Path) -> None:
    text = (
        HEAD + SHARED + HISTORY.replace("    weight: 3\n", "    weight: 3\n    turns: [Thanks]\n")
    )
    plan = build_plan(load_scenario(write(tmp_path, text)), repeats=1)
    conv = next(c for c in plan.conversations if c.prompt_id == "after-tool")
    # the fixed tool result is the first request; no canned tool_results, so replies' calls
    # are not answered, and the extra turn follows the model's reply
    assert [(s.kind, bool(s.messages)) for s in conv.steps] == [
        ("tool_results", True),
        ("user", False),
    ]
    requests = [p for p in dry_run(plan) if p.conversation is conv]
    assert [len(p.request.messages) for p in requests] == [4, 6]
    assert requests[1].request.messages[-1].content == "Thanks"


def test_nonce_goes_on_the_first_instruction_or_user_text(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD.replace("none", "conversation") + SHARED + HISTORY)
    sent = first_requests(path)
    assert sent[("after-tool", "chat")]["messages"][0]["content"].startswith("[run ")
    assert sent[("after-tool", "chat")]["messages"][1]["content"] == "Weather in Paris?"
    assert sent[("after-reply", "chat")]["messages"][0]["content"].startswith("[run ")
    assert sent[("after-reply", "chat")]["messages"][3]["content"] == "Recommend a museum."


def test_shared_output_schema_and_per_prompt_override(tmp_path: Path) -> None:
    text = (
        HEAD
        + "output_schema:\n  name: answer\n  schema:\n    type: object\n"
        + "    properties: {a: {type: string}}\n    required: [a]\n"
        + "    additionalProperties: false\n"
        + "prompts:\n  - {id: shared, input: Hi}\n  - {id: plain, input: Hi, output: text}\n"
    )
    sent = first_requests(write(tmp_path, text))
    assert sent[("shared", "chat")]["response_format"]["json_schema"]["name"] == "answer"
    assert sent[("shared", "responses")]["text"]["format"]["name"] == "answer"
    assert "response_format" not in sent[("plain", "chat")]
    assert "text" not in sent[("plain", "responses")]


def test_weight_and_reference_are_read(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, HEAD + SHARED + HISTORY))
    assert [(p.weight, p.reference) for p in scenario.prompts] == [
        (3, "It is 21 °C in Paris."),
        (1, None),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "  - {id: p, messages: [{role: user, content: Hi}], weight: 0}\n",
            "prompts[0].weight: 0 is out of range (must be ≥ 1) — use a value ≥ 1",
        ),
        (
            "  - {id: p, messages: [{role: user, content: Hi}], weight: many}\n",
            "prompts[0].weight: expected a whole number, got 'many' (a string) — write a whole "
            "number such as 5",
        ),
        (
            "  - {id: p, messages: [{role: robot, content: Hi}]}\n",
            "prompts[0].messages[0].role: robot is not allowed — use one of: system, "
            "developer, user, assistant or tool",
        ),
        (
            "  - {id: p, messages: [{role: user, content: Hi}, {role: assistant, content: Yo}]}\n",
            "prompts[0].messages: the fixed history ends with a message of role assistant and "
            "nothing follows — end messages with a user or tool message, or add input: / turns:",
        ),
        (
            "  - id: p\n    messages:\n      - {role: user, content: Hi}\n"
            "      - role: assistant\n        tool_calls: [{id: c1, name: get_weather, "
            "arguments: '{}'}]\n",
            "prompts[0].messages[1]: the last message makes tool call(s) c1 that are not "
            "answered — add a role: tool message for each call",
        ),
        (
            "  - id: p\n    messages:\n      - {role: user, content: Hi}\n"
            "      - {role: tool, tool_call_id: c9, content: x}\n",
            "prompts[0].messages[1].tool_call_id: c9 answers no tool call of the assistant "
            "message before it — use the id of one of that message's tool_calls",
        ),
        (
            "  - id: p\n    messages:\n      - {role: user, content: Hi, name: bob}\n",
            "prompts[0].messages[0].name: unknown key name — remove it: Responses input "
            "messages have no participant name",
        ),
        (
            "  - {id: p, input: Hi, expected: Hello}\n",
            "prompts[0].expected: unknown key expected — write reference: (a known-good "
            "answer, compared with each arm's reply)",
        ),
    ],
)
def test_bad_values_are_one_line_each(tmp_path: Path, body: str, expected: str) -> None:
    assert problems(tmp_path, HEAD + SHARED + "prompts:\n" + body) == [expected]


def test_shared_tool_choice_must_name_a_shared_tool(tmp_path: Path) -> None:
    text = HEAD + SHARED + "tool_choice: get_time\nprompts:\n  - {id: p, input: Hi}\n"
    found = problems(tmp_path, text)
    assert found[0] == (
        "tool_choice: tool_choice get_time is not a tool of this prompt — use auto, none, "
        "required or one of: get_weather"
    )


def test_history_runs_through_the_sdk_against_the_emulator(
    tmp_path: Path, emulator_client: openai.OpenAI
) -> None:
    """Every request of the plan, every arm and turn, accepted by the emulator via the SDK."""
    text = HEAD + SHARED + HISTORY.replace("    weight: 3\n", "    weight: 3\n    turns: [More]\n")
    scenario = load_scenario(write(tmp_path, text))
    assert translation_problems(scenario) == []
    sent = 0
    for planned in dry_run(build_plan(scenario, repeats=1)):
        if planned.turn != 1:
            continue  # later turns hold placeholders for the replies
        body = {**planned.kwargs(), "stream": False}
        body.pop("stream_options", None)
        if planned.conversation.api == "chat":
            reply: Any = emulator_client.chat.completions.create(**body)
            assert reply.choices[0].message is not None
        else:
            reply = emulator_client.responses.create(**body)
            assert reply.status == "completed"
        sent += 1
    assert sent == 4


def test_plan_names_fixed_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.app import main

    assert main(["plan", str(write(tmp_path, HEAD + SHARED + HISTORY)), "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "│" in line]
    steps = {
        (cells[1], cells[5])
        for line in rows
        if len(cells := [c.strip() for c in line.split("│")]) > 5
    }
    assert steps >= {("after-tool", "fixed tool results"), ("after-reply", "fixed user")}
