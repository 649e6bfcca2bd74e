"""Rules the real API enforces that the spec does not show, through the official SDK (issue 17).

Each case pins the status (the SDK's exception class), ``type``, ``param``, ``code`` and
message OpenAI sends, so a harness change that would make live runs fail fails here first.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from harness.emulator.testing import nonce
from harness.translate.enums import REASONING_EFFORTS, RESPONSES_SERVICE_TIERS, VERBOSITIES

MODEL = "gpt-4.1-mini"
USER = [{"role": "user", "content": "hi"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
FLAT_TOOL = {"type": "function", **TOOL["function"]}  # type: ignore[dict-item]


@pytest.fixture
def client(emulator_client: openai.OpenAI) -> openai.OpenAI:
    return emulator_client


def _rejects(call: Any, param: str | None, message: str, code: str | None = None) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        call()
    body = info.value.body
    assert isinstance(body, dict)
    assert body == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


# --- 2: json_object on Responses ----------------------------------------------------------------


def test_json_object_needs_json_in_input_messages_not_instructions(client: openai.OpenAI) -> None:
    fmt = {"format": {"type": "json_object"}}
    _rejects(
        lambda: client.responses.create(
            model=MODEL, instructions="Answer in JSON.", input="Who won?", text=fmt
        ),
        "input",
        "Response input messages must contain the word 'json' in some form to use "
        "'text.format' of type 'json_object'.",
    )
    # the same system prompt as an input message is accepted (the harness's translation)
    ok = client.responses.create(
        model=MODEL,
        input=[
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "Who won?"},
        ],
        text=fmt,
    )
    assert ok.output_text.startswith("{")


# --- 3: metadata needs store on chat --------------------------------------------------------------


def test_chat_metadata_needs_store(client: openai.OpenAI) -> None:
    message = "The 'metadata' parameter is only allowed when 'store' is enabled."
    _rejects(
        lambda: client.chat.completions.create(model=MODEL, messages=USER, metadata={"a": "b"}),
        "metadata",
        message,
    )
    _rejects(
        lambda: client.chat.completions.create(
            model=MODEL, messages=USER, metadata={"a": "b"}, store=False
        ),
        "metadata",
        message,
    )
    stored = client.chat.completions.create(
        model=MODEL, messages=USER, metadata={"a": "b"}, store=True
    )
    assert stored.choices[0].message.content
    # Responses has no such rule
    assert client.responses.create(model=MODEL, input="hi", metadata={"a": "b"}, store=False)


def test_metadata_values_must_be_strings(client: openai.OpenAI) -> None:
    _rejects(
        lambda: client.responses.create(
            model=MODEL,
            input="hi",
            metadata={"n": 1},  # type: ignore[dict-item]
        ),
        "metadata.n",
        "Invalid type for 'metadata.n': expected a string, but got an integer instead.",
        "invalid_type",
    )


# --- 8: tool call pairing ------------------------------------------------------------------------


def _call(call_id: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }


def test_chat_tool_message_without_its_call(client: openai.OpenAI) -> None:
    orphan = [*USER, {"role": "tool", "tool_call_id": "call_x", "content": "18 C"}]
    _rejects(
        lambda: client.chat.completions.create(model=MODEL, messages=orphan, tools=[TOOL]),
        "messages.[1].role",
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
        "message with 'tool_calls'.",
    )


def test_chat_tool_call_without_an_answer(client: openai.OpenAI) -> None:
    unanswered = [*USER, _call("call_a"), {"role": "user", "content": "and?"}]
    _rejects(
        lambda: client.chat.completions.create(model=MODEL, messages=unanswered, tools=[TOOL]),
        "messages.[1].role",
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        "call_a",
    )
    answered = [*USER, _call("call_a"), {"role": "tool", "tool_call_id": "call_a", "content": "18"}]
    ok = client.chat.completions.create(model=MODEL, messages=answered, tools=[TOOL])
    assert ok.choices[0].message.content


def test_responses_tool_output_and_call_pairing(client: openai.OpenAI) -> None:
    call = {"type": "function_call", "call_id": "call_b", "name": "get_weather", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "call_b", "output": "18 C"}
    _rejects(
        lambda: client.responses.create(
            model=MODEL, input=[{"role": "user", "content": "hi"}, output], tools=[FLAT_TOOL]
        ),
        "input",
        "No tool call found for function call output with call_id call_b.",
    )
    _rejects(
        lambda: client.responses.create(
            model=MODEL,
            input=[{"role": "user", "content": "hi"}, call, {"role": "user", "content": "and?"}],
            tools=[FLAT_TOOL],
        ),
        "input",
        "No tool output found for function call call_b.",
    )
    ok = client.responses.create(
        model=MODEL, input=[{"role": "user", "content": "hi"}, call, output], tools=[FLAT_TOOL]
    )
    assert ok.output_text


# --- 8: parameters ------------------------------------------------------------------------------


def test_parallel_tool_calls_needs_tools_and_is_refused_on_o_series_chat(
    client: openai.OpenAI,
) -> None:
    _rejects(
        lambda: client.chat.completions.create(
            model=MODEL, messages=USER, parallel_tool_calls=False
        ),
        "parallel_tool_calls",
        "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when "
        "'tools' are specified.",
    )
    _rejects(
        lambda: client.chat.completions.create(
            model="o4-mini", messages=USER, tools=[TOOL], parallel_tool_calls=False
        ),
        "parallel_tool_calls",
        "Unsupported parameter: 'parallel_tool_calls' is not supported with this model.",
        "unsupported_parameter",
    )


@pytest.mark.parametrize(
    ("api", "kwargs", "param", "values"),
    [
        ("chat", {"reasoning_effort": "extreme"}, "reasoning_effort", REASONING_EFFORTS),
        ("responses", {"reasoning": {"effort": "extreme"}}, "reasoning.effort", REASONING_EFFORTS),
        ("chat", {"verbosity": "loud"}, "verbosity", VERBOSITIES),
        ("responses", {"text": {"verbosity": "loud"}}, "text.verbosity", VERBOSITIES),
        ("responses", {"service_tier": "gold"}, "service_tier", RESPONSES_SERVICE_TIERS),
    ],
)
def test_invalid_enum_values(
    client: openai.OpenAI, api: str, kwargs: dict[str, Any], param: str, values: tuple[str, ...]
) -> None:
    def call() -> Any:
        if api == "chat":
            return client.chat.completions.create(model="gpt-5-mini", messages=USER, **kwargs)
        return client.responses.create(model="gpt-5-mini", input="hi", **kwargs)

    bad = next(iter(v for v in _leaves(kwargs)))
    listed = ", ".join(f"'{v}'" for v in values[:-1]) + f", and '{values[-1]}'"
    _rejects(
        call, param, f"Invalid value: '{bad}'. Supported values are: {listed}.", "invalid_value"
    )


def _leaves(d: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for v in d.values():
        out += _leaves(v) if isinstance(v, dict) else [v]
    return out


def test_every_sdk_effort_and_tier_is_accepted(client: openai.OpenAI) -> None:
    for effort in REASONING_EFFORTS:
        r = client.responses.create(model="gpt-5-mini", input="hi", reasoning={"effort": effort})
        assert r.status == "completed"
    for tier in RESPONSES_SERVICE_TIERS:
        assert client.responses.create(model=MODEL, input="hi", service_tier=tier)


def test_verbosity_is_refused_on_gpt_4_1(client: openai.OpenAI) -> None:
    _rejects(
        lambda: client.chat.completions.create(model="gpt-4.1", messages=USER, verbosity="low"),
        "verbosity",
        "Unsupported parameter: 'verbosity' is not supported with this model.",
        "unsupported_parameter",
    )
    _rejects(
        lambda: client.responses.create(model="gpt-4.1", input="hi", text={"verbosity": "low"}),
        "text.verbosity",
        "Unsupported parameter: 'text.verbosity' is not supported with this model.",
        "unsupported_parameter",
    )


def test_chat_serves_n_choices(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": f"{nonce()} What are your support hours?"}]
    one = client.chat.completions.create(model=MODEL, messages=question, temperature=0)
    three = client.chat.completions.create(model=MODEL, messages=question, temperature=0, n=3)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert one.usage is not None and three.usage is not None
    assert three.usage.completion_tokens == 3 * one.usage.completion_tokens
    stream = client.chat.completions.create(
        model=MODEL, messages=question, n=2, stream=True, stream_options={"include_usage": True}
    )
    texts = {0: "", 1: ""}
    finishes = {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts[0] and texts[0] == texts[1]
    assert finishes == {0: "stop", 1: "stop"}


# --- 9: forced tool calls, allowed_tools ----------------------------------------------------------


def test_forced_tool_call_finishes_stop_on_chat(client: openai.OpenAI) -> None:
    forced = {"type": "function", "function": {"name": "get_weather"}}
    c = client.chat.completions.create(model=MODEL, messages=USER, tools=[TOOL], tool_choice=forced)
    assert c.choices[0].message.tool_calls
    assert c.choices[0].finish_reason == "stop"
    finishes = [
        ch.choices[0].finish_reason
        for ch in client.chat.completions.create(
            model=MODEL, messages=USER, tools=[TOOL], tool_choice=forced, stream=True
        )
        if ch.choices and ch.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    # a call the model chose (here: "required", not a named function) is still tool_calls
    chosen = client.chat.completions.create(
        model=MODEL, messages=USER, tools=[TOOL], tool_choice="required"
    )
    assert chosen.choices[0].finish_reason == "tool_calls"


def test_chat_allowed_tools_is_read_under_allowed_tools(client: openai.OpenAI) -> None:
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        },
    }
    c = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        tools=[TOOL],
        tool_choice=choice,  # type: ignore[arg-type]
    )
    assert c.choices[0].message.tool_calls
    _rejects(
        lambda: client.chat.completions.create(
            model=MODEL,
            messages=USER,
            tools=[TOOL],
            tool_choice={"type": "allowed_tools", "mode": "required"},  # type: ignore[arg-type]
        ),
        "tool_choice.allowed_tools",
        "Missing required parameter: 'tool_choice.allowed_tools'.",
        "missing_required_parameter",
    )


# --- 4: refusals ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def refusing(module_emulators: Any) -> openai.OpenAI:
    from harness.emulator.profiles import load_profile

    profile = load_profile("zero").derive({"content": {"refusal_share": 1.0}})
    return module_emulators.client(module_emulators.start(profile))  # type: ignore[no-any-return]


def test_chat_refusal_through_the_sdk(refusing: openai.OpenAI) -> None:
    from harness.emulator.content import REFUSAL_TEXT

    c = refusing.chat.completions.create(model=MODEL, messages=USER)
    message = c.choices[0].message
    assert message.content is None and message.refusal == REFUSAL_TEXT
    assert c.choices[0].finish_reason == "stop"
    deltas = [
        (ch.choices[0].delta.content, ch.choices[0].delta.refusal)
        for ch in refusing.chat.completions.create(model=MODEL, messages=USER, stream=True)
        if ch.choices
    ]
    assert "".join(r or "" for _, r in deltas) == REFUSAL_TEXT
    assert not any(text for text, _ in deltas)


def test_responses_refusal_through_the_sdk(refusing: openai.OpenAI) -> None:
    from harness.emulator.content import REFUSAL_TEXT

    r = refusing.responses.create(model=MODEL, input="hi")
    [item] = r.output
    assert item.type == "message"
    [part] = item.content
    assert part.type == "refusal" and part.refusal == REFUSAL_TEXT
    assert r.output_text == ""
    with refusing.responses.stream(model=MODEL, input="hi") as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert "response.output_text.delta" not in kinds
    deltas = [e.delta for e in events if e.type == "response.refusal.delta"]
    assert "".join(deltas) == REFUSAL_TEXT
    done = [e for e in events if e.type == "response.refusal.done"]
    assert done and done[0].refusal == REFUSAL_TEXT
    assert kinds[-1] == "response.completed"


def test_refusals_are_off_by_default(client: openai.OpenAI) -> None:
    c = client.chat.completions.create(model=MODEL, messages=USER)
    assert c.choices[0].message.refusal is None and c.choices[0].message.content
