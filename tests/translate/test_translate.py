"""The translator (harness/translate.py): one case per DESIGN §3 row, exact output dicts.

Every produced request is also checked against OpenAI's OpenAPI spec, against the openai SDK's
``create`` signatures, and on the wire through the SDK (a mock transport captures the body), so
a translation that "looks right" but would be rejected cannot pass.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
import pytest
from openai.resources.chat.completions import Completions
from openai.resources.responses import Responses
from openai.types.chat import completion_create_params as chat_params
from openai.types.responses import response_create_params as responses_params
from pydantic import TypeAdapter

from harness.errors import TranslationError
from harness.translate.convert import (
    UNMAPPABLE_CHAT_PARAMS,
    responses_to_chat_completion,
    to_chat_kwargs,
    to_responses_kwargs,
    translation_notes,
)
from harness.translate.request import (
    FunctionTool,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaFormat,
    Message,
    NeutralRequest,
    OutputFormat,
    Params,
    TextPart,
    ToolCall,
)
from harness.translate.spec import request_problems, schema_problems, top_level_properties

MODEL = "gpt-4.1-mini"

# --------------------------------------------------------------------------- builders


def user(content: str | list[TextPart | ImagePart]) -> Message:
    return Message(role="user", content=content)


def system(content: str) -> Message:
    return Message(role="system", content=content)


def assistant(
    content: str | None = None, *calls: ToolCall, reasoning: tuple[dict[str, Any], ...] = ()
) -> Message:
    return Message(role="assistant", content=content, tool_calls=calls, reasoning_items=reasoning)


def tool(call_id: str, content: str | list[TextPart | ImagePart]) -> Message:
    return Message(role="tool", tool_call_id=call_id, content=content)


def req(
    *messages: Message,
    model: str = MODEL,
    tools: tuple[FunctionTool, ...] = (),
    tool_choice: str | None = None,
    output_format: OutputFormat | None = None,
    **params: Any,
) -> NeutralRequest:
    return NeutralRequest(
        model=model,
        messages=messages,
        params=Params(**params),
        tools=tools,
        tool_choice=tool_choice,
        output_format=output_format,
    )


WEATHER = FunctionTool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    strict=True,
)
CLOCK = FunctionTool(name="get_time")  # no description, default parameters, strict False
CALL_1 = ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
CALL_2 = ToolCall(id="call_2", name="get_time", arguments="{}")
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
REASONING_1 = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAB1"}

# Request-level defaults, spelled out once; every expected dict below is still complete.
CHAT = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True}, "store": False}
RESP = {"model": MODEL, "stream": True, "store": False}
HI_CHAT = [{"role": "user", "content": "Hi"}]
HI_RESP = [{"role": "user", "content": "Hi"}]
CHAT_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": WEATHER.parameters,
        "strict": True,
    },
}
RESP_WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": WEATHER.parameters,
    "strict": True,
}


@dataclass(frozen=True)
class Case:
    id: str
    req: NeutralRequest
    chat: dict[str, Any] | None  # None: the case is about the Responses arm only
    responses: dict[str, Any]
    opts: dict[str, Any] = field(default_factory=dict)  # to_responses_kwargs keywords


CASES = [
    # -- messages → input items; leading system/developer → instructions
    Case(
        "plain-user-text",
        req(user("Hi")),
        {**CHAT, "messages": HI_CHAT},
        {**RESP, "input": HI_RESP},
    ),
    Case(
        "system-to-instructions",
        req(system("Be brief."), user("Hi")),
        {**CHAT, "messages": [{"role": "system", "content": "Be brief."}, *HI_CHAT]},
        {**RESP, "instructions": "Be brief.", "input": HI_RESP},
    ),
    Case(
        "developer-to-instructions",
        req(Message(role="developer", content="Be brief."), user("Hi")),
        {**CHAT, "messages": [{"role": "developer", "content": "Be brief."}, *HI_CHAT]},
        {**RESP, "instructions": "Be brief.", "input": HI_RESP},
    ),
    Case(
        "system-parts-joined-into-instructions",
        req(
            Message(role="system", content=[TextPart(text="Be "), TextPart(text="brief.")]),
            user("Hi"),
        ),
        {
            **CHAT,
            "messages": [
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "Be "},
                        {"type": "text", "text": "brief."},
                    ],
                },
                *HI_CHAT,
            ],
        },
        {**RESP, "instructions": "Be brief.", "input": HI_RESP},
    ),
    Case(
        "later-system-message-stays-in-input",
        req(user("Hi"), assistant("Hello!"), system("Now answer in French."), user("Bye")),
        {
            **CHAT,
            "messages": [
                *HI_CHAT,
                {"role": "assistant", "content": "Hello!"},
                {"role": "system", "content": "Now answer in French."},
                {"role": "user", "content": "Bye"},
            ],
        },
        {
            **RESP,
            "input": [
                *HI_RESP,
                {"type": "message", "role": "assistant", "content": "Hello!"},
                {"role": "system", "content": "Now answer in French."},
                {"role": "user", "content": "Bye"},
            ],
        },
    ),
    # -- content parts: text → input_text; images; assistant history as a typed message,
    #    string content
    Case(
        "text-parts-to-input-text",
        req(user([TextPart(text="Look "), TextPart(text="here")])),
        {
            **CHAT,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look "},
                        {"type": "text", "text": "here"},
                    ],
                }
            ],
        },
        {
            **RESP,
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Look "},
                        {"type": "input_text", "text": "here"},
                    ],
                }
            ],
        },
    ),
    Case(
        "assistant-history-as-string",
        req(user("Hi"), assistant("Hello! How can I help?"), user("Hours?")),
        {
            **CHAT,
            "messages": [
                *HI_CHAT,
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "Hours?"},
            ],
        },
        {
            **RESP,
            "input": [
                *HI_RESP,
                {"type": "message", "role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "Hours?"},
            ],
        },
    ),
    Case(
        "assistant-parts-joined-to-string",
        req(
            user("Hi"),
            assistant(None).model_copy(
                update={"content": [TextPart(text="Hello"), TextPart(text=" there")]}
            ),
            user("Hours?"),
        ),
        {
            **CHAT,
            "messages": [
                *HI_CHAT,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Hello"},
                        {"type": "text", "text": " there"},
                    ],
                },
                {"role": "user", "content": "Hours?"},
            ],
        },
        {
            **RESP,
            "input": [
                *HI_RESP,
                {"type": "message", "role": "assistant", "content": "Hello there"},
                {"role": "user", "content": "Hours?"},
            ],
        },
    ),
    Case(
        "image-with-detail",
        req(
            user(
                [
                    TextPart(text="What is in this chart?"),
                    ImagePart(url="data:image/png;base64,iVBORw0KGgo=", detail="low"),
                ]
            )
        ),
        {
            **CHAT,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this chart?"},
                        {
                            "type": "image_url",
                            "image_url": {
                                "url": "data:image/png;base64,iVBORw0KGgo=",
                                "detail": "low",
                            },
                        },
                    ],
                }
            ],
        },
        {
            **RESP,
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is in this chart?"},
                        {
                            "type": "input_image",
                            "image_url": "data:image/png;base64,iVBORw0KGgo=",
                            "detail": "low",
                        },
                    ],
                }
            ],
        },
    ),
    Case(
        "image-detail-defaults-to-auto-and-is-sent",
        req(user([ImagePart(url="https://example.com/a.png")])),
        {
            **CHAT,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://example.com/a.png", "detail": "auto"},
                        }
                    ],
                }
            ],
        },
        {
            **RESP,
            "input": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "input_image",
                            "image_url": "https://example.com/a.png",
                            "detail": "auto",
                        }
                    ],
                }
            ],
        },
    ),
    # -- tools: nested vs flat, strict always sent; tool_choice
    Case(
        "tools-nested-vs-flat-strict-explicit",
        req(user("Hi"), tools=(WEATHER, CLOCK)),
        {
            **CHAT,
            "messages": HI_CHAT,
            "tools": [
                CHAT_WEATHER,
                {
                    "type": "function",
                    "function": {
                        "name": "get_time",
                        "parameters": {"type": "object", "properties": {}},
                        "strict": False,
                    },
                },
            ],
        },
        {
            **RESP,
            "input": HI_RESP,
            "tools": [
                RESP_WEATHER,
                {
                    "type": "function",
                    "name": "get_time",
                    "parameters": {"type": "object", "properties": {}},
                    "strict": False,
                },
            ],
        },
    ),
    *[
        Case(
            f"tool-choice-{choice}",
            req(user("Hi"), tools=(WEATHER,), tool_choice=choice),
            {**CHAT, "messages": HI_CHAT, "tools": [CHAT_WEATHER], "tool_choice": choice},
            {**RESP, "input": HI_RESP, "tools": [RESP_WEATHER], "tool_choice": choice},
        )
        for choice in ("auto", "none", "required")
    ],
    Case(
        "tool-choice-function-name",
        req(user("Hi"), tools=(WEATHER,), tool_choice="get_weather"),
        {
            **CHAT,
            "messages": HI_CHAT,
            "tools": [CHAT_WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
        {
            **RESP,
            "input": HI_RESP,
            "tools": [RESP_WEATHER],
            "tool_choice": {"type": "function", "name": "get_weather"},
        },
    ),
    # -- tool calls → function_call items; role tool → function_call_output
    Case(
        "tool-round-trip-parallel-calls",
        req(
            user("Weather and time?"),
            assistant(None, CALL_1, CALL_2),
            tool("call_1", '{"temp_c": 18}'),
            tool("call_2", "12:00"),
            tools=(WEATHER, CLOCK),
        ),
        {
            **CHAT,
            "messages": [
                {"role": "user", "content": "Weather and time?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "content": '{"temp_c": 18}', "tool_call_id": "call_1"},
                {"role": "tool", "content": "12:00", "tool_call_id": "call_2"},
            ],
            "tools": [
                CHAT_WEATHER,
                {
                    "type": "function",
                    "function": {
                        "name": "get_time",
                        "parameters": {"type": "object", "properties": {}},
                        "strict": False,
                    },
                },
            ],
        },
        {
            **RESP,
            "input": [
                {"role": "user", "content": "Weather and time?"},
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {
                    "type": "function_call",
                    "call_id": "call_2",
                    "name": "get_time",
                    "arguments": "{}",
                },
                {"type": "function_call_output", "call_id": "call_1", "output": '{"temp_c": 18}'},
                {"type": "function_call_output", "call_id": "call_2", "output": "12:00"},
            ],
            "tools": [
                RESP_WEATHER,
                {
                    "type": "function",
                    "name": "get_time",
                    "parameters": {"type": "object", "properties": {}},
                    "strict": False,
                },
            ],
        },
    ),
    Case(
        "assistant-text-before-its-tool-call",
        req(
            user("Weather?"),
            assistant("Let me check.", CALL_1),
            tool("call_1", [TextPart(text="18 C")]),
            tools=(WEATHER,),
        ),
        {
            **CHAT,
            "messages": [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": "Let me check.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {
                    "role": "tool",
                    "content": [{"type": "text", "text": "18 C"}],
                    "tool_call_id": "call_1",
                },
            ],
            "tools": [CHAT_WEATHER],
        },
        {
            **RESP,
            "input": [
                {"role": "user", "content": "Weather?"},
                {"type": "message", "role": "assistant", "content": "Let me check."},
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {
                    "type": "function_call_output",
                    "call_id": "call_1",
                    "output": [{"type": "input_text", "text": "18 C"}],
                },
            ],
            "tools": [RESP_WEATHER],
        },
    ),
    # -- structured outputs
    Case(
        "json-schema-nested-vs-flat",
        req(
            user("Extract: John is 30"),
            output_format=JsonSchemaFormat(name="person", schema_=PERSON, description="A person."),
        ),
        {
            **CHAT,
            "messages": [{"role": "user", "content": "Extract: John is 30"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "person",
                    "schema": PERSON,
                    "strict": True,
                    "description": "A person.",
                },
            },
        },
        {
            **RESP,
            "input": [{"role": "user", "content": "Extract: John is 30"}],
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "person",
                    "schema": PERSON,
                    "strict": True,
                    "description": "A person.",
                }
            },
        },
    ),
    Case(
        "json-schema-not-strict",
        req(
            user("Extract"),
            output_format=JsonSchemaFormat(name="person", schema_=PERSON, strict=False),
        ),
        {
            **CHAT,
            "messages": [{"role": "user", "content": "Extract"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": PERSON, "strict": False},
            },
        },
        {
            **RESP,
            "input": [{"role": "user", "content": "Extract"}],
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "person",
                    "schema": PERSON,
                    "strict": False,
                }
            },
        },
    ),
    Case(
        "json-object",
        req(user("Reply in JSON: hi"), output_format=JsonObjectFormat()),
        {
            **CHAT,
            "messages": [{"role": "user", "content": "Reply in JSON: hi"}],
            "response_format": {"type": "json_object"},
        },
        {
            **RESP,
            "input": [{"role": "user", "content": "Reply in JSON: hi"}],
            "text": {"format": {"type": "json_object"}},
        },
    ),
    Case(
        # the real Responses API ignores instructions when looking for the word: the system
        # prompt stays an input message (issue 17, defect 2)
        "json-object-word-only-in-system",
        req(system("Reply in JSON."), user("Hi"), output_format=JsonObjectFormat()),
        {
            **CHAT,
            "messages": [
                {"role": "system", "content": "Reply in JSON."},
                {"role": "user", "content": "Hi"},
            ],
            "response_format": {"type": "json_object"},
        },
        {
            **RESP,
            "input": [
                {"role": "system", "content": "Reply in JSON."},
                {"role": "user", "content": "Hi"},
            ],
            "text": {"format": {"type": "json_object"}},
        },
    ),
    Case(
        "json-object-word-in-user-keeps-instructions",
        req(system("Be terse."), user("Reply in JSON: hi"), output_format=JsonObjectFormat()),
        {
            **CHAT,
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Reply in JSON: hi"},
            ],
            "response_format": {"type": "json_object"},
        },
        {
            **RESP,
            "instructions": "Be terse.",
            "input": [{"role": "user", "content": "Reply in JSON: hi"}],
            "text": {"format": {"type": "json_object"}},
        },
    ),
    Case(
        "metadata-with-store",
        req(user("Hi"), metadata={"run": "r1"}, store=True),
        {**CHAT, "messages": HI_CHAT, "store": True, "metadata": {"run": "r1"}},
        {**RESP, "input": HI_RESP, "store": True, "metadata": {"run": "r1"}},
    ),
    # -- max_output_tokens: chat max_completion_tokens (never max_tokens)
    Case(
        "max-output-tokens",
        req(user("Hi"), max_output_tokens=256),
        {**CHAT, "messages": HI_CHAT, "max_completion_tokens": 256},
        {**RESP, "input": HI_RESP, "max_output_tokens": 256},
    ),
    Case(
        "max-output-tokens-at-responses-minimum",
        req(user("Hi"), max_output_tokens=16),
        {**CHAT, "messages": HI_CHAT, "max_completion_tokens": 16},
        {**RESP, "input": HI_RESP, "max_output_tokens": 16},
    ),
    # -- reasoning_effort, verbosity (reasoning + store false → encrypted reasoning include)
    Case(
        "reasoning-effort",
        req(user("Hi"), model="o4-mini", reasoning_effort="high"),
        {**CHAT, "model": "o4-mini", "messages": HI_CHAT, "reasoning_effort": "high"},
        {
            **RESP,
            "model": "o4-mini",
            "input": HI_RESP,
            "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "high"},
        },
    ),
    Case(
        "verbosity",
        req(user("Hi"), model="gpt-5", verbosity="low"),
        {**CHAT, "model": "gpt-5", "messages": HI_CHAT, "verbosity": "low"},
        {
            **RESP,
            "model": "gpt-5",
            "input": HI_RESP,
            "include": ["reasoning.encrypted_content"],
            "text": {"verbosity": "low"},
        },
    ),
    Case(
        "verbosity-merged-with-format",
        req(
            user("Extract"),
            model="gpt-5-mini",
            verbosity="high",
            reasoning_effort="minimal",
            output_format=JsonSchemaFormat(name="person", schema_=PERSON),
        ),
        {
            **CHAT,
            "model": "gpt-5-mini",
            "messages": [{"role": "user", "content": "Extract"}],
            "reasoning_effort": "minimal",
            "verbosity": "high",
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": PERSON, "strict": True},
            },
        },
        {
            **RESP,
            "model": "gpt-5-mini",
            "input": [{"role": "user", "content": "Extract"}],
            "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "minimal"},
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "person",
                    "schema": PERSON,
                    "strict": True,
                },
                "verbosity": "high",
            },
        },
    ),
    # -- temperature / top_p where the model accepts them
    Case(
        "sampling-params",
        req(user("Hi"), temperature=0, top_p=0.9),
        {**CHAT, "messages": HI_CHAT, "temperature": 0, "top_p": 0.9},
        {**RESP, "input": HI_RESP, "temperature": 0, "top_p": 0.9},
    ),
    # -- store and stream
    Case(
        "store-explicit-true-stateless",
        req(user("Hi"), model="o3", store=True),
        {**CHAT, "model": "o3", "messages": HI_CHAT, "store": True},
        {**RESP, "model": "o3", "input": HI_RESP, "store": True},
    ),
    Case(
        "no-stream",
        req(user("Hi"), stream=False),
        {"model": MODEL, "messages": HI_CHAT, "stream": False, "store": False},
        {"model": MODEL, "input": HI_RESP, "stream": False, "store": False},
    ),
    # -- stateless reasoning arm: reasoning items go back before the assistant's items
    Case(
        "stateless-reasoning-items-before-assistant-items",
        req(
            user("Weather?"),
            assistant("Checking.", CALL_1, reasoning=(REASONING_1,)),
            tool("call_1", "18"),
            model="o4-mini",
            tools=(WEATHER,),
        ),
        {
            **CHAT,
            "model": "o4-mini",
            "messages": [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "content": "18", "tool_call_id": "call_1"},
            ],
            "tools": [CHAT_WEATHER],
        },
        {
            **RESP,
            "model": "o4-mini",
            "input": [
                {"role": "user", "content": "Weather?"},
                REASONING_1,
                {"type": "message", "role": "assistant", "content": "Checking."},
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {"type": "function_call_output", "call_id": "call_1", "output": "18"},
            ],
            "include": ["reasoning.encrypted_content"],
            "tools": [RESP_WEATHER],
        },
    ),
    Case(
        "reasoning-items-imply-include-for-unknown-model",
        req(
            user("Hi"),
            assistant("Hello", reasoning=(REASONING_1,)),
            user("Bye"),
            model="my-local-reasoner",
        ),
        {
            **CHAT,
            "model": "my-local-reasoner",
            "messages": [
                *HI_CHAT,
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Bye"},
            ],
        },
        {
            **RESP,
            "model": "my-local-reasoner",
            "input": [
                *HI_RESP,
                REASONING_1,
                {"type": "message", "role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Bye"},
            ],
            "include": ["reasoning.encrypted_content"],
        },
    ),
    # -- parameters passed through unchanged on both APIs
    Case(
        "pass-through-params",
        req(
            user("Hi"),
            tools=(WEATHER,),
            prompt_cache_key="support-bot-a1",
            metadata={"run": "r1", "arm": "chat"},
            parallel_tool_calls=False,
            service_tier="flex",
            user="user-1234",
        ),
        {
            # chat answers 400 to metadata without store: true, so the chat arm leaves it out
            **CHAT,
            "messages": HI_CHAT,
            "tools": [CHAT_WEATHER],
            "prompt_cache_key": "support-bot-a1",
            "parallel_tool_calls": False,
            "service_tier": "flex",
            "user": "user-1234",
        },
        {
            **RESP,
            "input": HI_RESP,
            "tools": [RESP_WEATHER],
            "prompt_cache_key": "support-bot-a1",
            "metadata": {"run": "r1", "arm": "chat"},
            "parallel_tool_calls": False,
            "service_tier": "flex",
            "user": "user-1234",
        },
    ),
    # -- models the table does not know: nothing is rejected or added
    Case(
        "unknown-model-passes-everything",
        req(
            user("Hi"),
            model="llama-3.1-8b",
            temperature=0.2,
            reasoning_effort="low",
            verbosity="low",
        ),
        {
            **CHAT,
            "model": "llama-3.1-8b",
            "messages": HI_CHAT,
            "temperature": 0.2,
            "reasoning_effort": "low",
            "verbosity": "low",
        },
        {
            **RESP,
            "model": "llama-3.1-8b",
            "input": HI_RESP,
            "temperature": 0.2,
            "reasoning": {"effort": "low"},
            "text": {"verbosity": "low"},
        },
    ),
    # -- chained arm: store true; later turns send only the new input + previous_response_id
    Case(
        "chained-turn-1-stores-and-sends-everything",
        req(system("Be brief."), user("Hi"), model="o4-mini"),
        None,
        {**RESP, "model": "o4-mini", "instructions": "Be brief.", "input": HI_RESP, "store": True},
        {"chained": True},
    ),
    Case(
        "chained-turn-2-resends-instructions-only-new-input",
        req(system("Be brief."), user("Hi"), assistant("Hello!"), user("Weekends?")),
        None,
        {
            **RESP,
            "instructions": "Be brief.",
            "input": [{"role": "user", "content": "Weekends?"}],
            "store": True,
            "previous_response_id": "resp_turn1",
        },
        {"chained": True, "previous_response_id": "resp_turn1", "new_from": 3},
    ),
    Case(
        "chained-tool-output-turn",
        req(user("Weather?"), assistant(None, CALL_1), tool("call_1", "18"), tools=(WEATHER,)),
        None,
        {
            **RESP,
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "18"}],
            "store": True,
            "previous_response_id": "<response of turn 1>",
            "tools": [RESP_WEATHER],
        },
        {"chained": True, "previous_response_id": "<response of turn 1>", "new_from": 2},
    ),
    Case(
        "previous-response-id-implies-chained",
        req(user("Hi"), assistant("Hello!"), user("Bye"), store=True),
        None,
        {
            **RESP,
            "input": [{"role": "user", "content": "Bye"}],
            "store": True,
            "previous_response_id": "resp_1",
        },
        {"previous_response_id": "resp_1", "new_from": 2},
    ),
    Case(
        "new-from-ignored-without-previous-response-id",
        req(user("Hi"), assistant("Hello!"), user("Bye")),
        None,
        {
            **RESP,
            "input": [
                *HI_RESP,
                {"type": "message", "role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Bye"},
            ],
        },
        {"new_from": 2},
    ),
]
CHAT_CASES = [c for c in CASES if c.chat is not None]


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


# --------------------------------------------------------------------------- exact outputs


@pytest.mark.parametrize("case", CHAT_CASES, ids=_ids(CHAT_CASES))
def test_chat_kwargs(case: Case) -> None:
    assert to_chat_kwargs(case.req) == case.chat


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_responses_kwargs(case: Case) -> None:
    assert to_responses_kwargs(case.req, **case.opts) == case.responses


def _produced() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for case in CASES:
        if case.chat is not None:
            yield f"chat-{case.id}", "/chat/completions", to_chat_kwargs(case.req)
        yield f"responses-{case.id}", "/responses", to_responses_kwargs(case.req, **case.opts)


PRODUCED = list(_produced())


@pytest.mark.parametrize(
    ("endpoint", "body"), [(e, b) for _, e, b in PRODUCED], ids=[i for i, _, _ in PRODUCED]
)
def test_produced_request_is_valid_against_spec(endpoint: str, body: dict[str, Any]) -> None:
    assert request_problems(endpoint, body) == []


def _nones(node: Any, path: str = "") -> list[str]:
    if node is None:
        return [path]
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _nones(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _nones(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("body", [b for _, _, b in PRODUCED], ids=[i for i, _, _ in PRODUCED])
def test_produced_request_has_no_none_values(body: dict[str, Any]) -> None:
    assert _nones(body) == []


# --------------------------------------------------------------------------- the SDK accepts them

SDK_CREATE: dict[str, Callable[..., Any]] = {
    "/chat/completions": Completions.create,
    "/responses": Responses.create,
}


@pytest.mark.parametrize(
    ("endpoint", "body"), [(e, b) for _, e, b in PRODUCED], ids=[i for i, _, _ in PRODUCED]
)
def test_sdk_signature_accepts_kwargs(endpoint: str, body: dict[str, Any]) -> None:
    inspect.signature(SDK_CREATE[endpoint]).bind(object(), **body)


@pytest.fixture(scope="module")
def sdk_param_types() -> dict[tuple[str, bool], TypeAdapter[Any]]:
    """The SDK's own TypedDicts for each endpoint, streaming or not (pydantic-validated)."""
    return {
        ("/chat/completions", True): TypeAdapter(chat_params.CompletionCreateParamsStreaming),
        ("/chat/completions", False): TypeAdapter(chat_params.CompletionCreateParamsNonStreaming),
        ("/responses", True): TypeAdapter(responses_params.ResponseCreateParamsStreaming),
        ("/responses", False): TypeAdapter(responses_params.ResponseCreateParamsNonStreaming),
    }


@pytest.mark.parametrize(
    ("endpoint", "body"), [(e, b) for _, e, b in PRODUCED], ids=[i for i, _, _ in PRODUCED]
)
def test_sdk_param_types_accept_kwargs(
    sdk_param_types: dict[tuple[str, bool], TypeAdapter[Any]], endpoint: str, body: dict[str, Any]
) -> None:
    sdk_param_types[endpoint, body["stream"]].validate_python(body)


class _Capture:
    """An openai client over a mock transport that records each request body it sends."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        transport = httpx2.MockTransport(self._handle)
        self.client = openai.OpenAI(
            api_key="sk-test",
            base_url="http://127.0.0.1:9/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=transport),
        )

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.bodies.append((request.url.path, body))
        if body.get("stream"):
            return httpx2.Response(
                200, headers={"content-type": "text/event-stream"}, content=b"data: [DONE]\n\n"
            )
        return httpx2.Response(200, json={})


@pytest.fixture(scope="module")
def capture() -> Iterator[_Capture]:
    cap = _Capture()
    yield cap
    cap.client.close()


@pytest.mark.parametrize(
    ("endpoint", "body"), [(e, b) for _, e, b in PRODUCED], ids=[i for i, _, _ in PRODUCED]
)
def test_sdk_sends_kwargs_unchanged(capture: _Capture, endpoint: str, body: dict[str, Any]) -> None:
    create = (
        capture.client.chat.completions.create
        if endpoint == "/chat/completions"
        else capture.client.responses.create
    )
    result = create(**copy.deepcopy(body))
    if body["stream"]:
        result.close()
    assert capture.bodies[-1] == (f"/v1{endpoint}", body)


# --------------------------------------------------------------------------- rejections

REASONING_NO_CONTENT = {"type": "reasoning", "id": "rs_9", "summary": []}
BOTH = ("chat", "responses")

NEGATIVE: list[tuple[str, NeutralRequest, dict[str, Any], tuple[str, ...], str, str]] = [
    # (id, request, to_responses_kwargs opts, apis, param named, fix named)
    (
        "temperature-on-reasoning-model",
        req(user("Hi"), model="o3", temperature=0),
        {},
        BOTH,
        "temperature",
        "remove temperature",
    ),
    (
        "top-p-on-gpt-5",
        req(user("Hi"), model="gpt-5", top_p=0.9),
        {},
        BOTH,
        "top_p",
        "remove top_p",
    ),
    (
        "reasoning-effort-on-gpt-4.1",
        req(user("Hi"), reasoning_effort="low"),
        {},
        BOTH,
        "reasoning_effort",
        "use a reasoning model",
    ),
    (
        "minimal-effort-on-o3",
        req(user("Hi"), model="o3", reasoning_effort="minimal"),
        {},
        BOTH,
        "reasoning_effort",
        "use one of: high, low, medium",
    ),
    (
        "verbosity-on-gpt-4o",
        req(user("Hi"), model="gpt-4o", verbosity="low"),
        {},
        BOTH,
        "verbosity",
        "use a gpt-5 model",
    ),
    (
        "max-output-tokens-below-16",
        req(user("Hi"), max_output_tokens=15),
        {},
        ("responses",),
        "max_output_tokens",
        "set max_output_tokens to 16 or more",
    ),
    (
        "max-output-tokens-zero",
        req(user("Hi"), max_output_tokens=0),
        {},
        BOTH,
        "max_output_tokens",
        "or more",
    ),
    (
        "chained-with-store-false",
        req(user("Hi"), store=False),
        {"chained": True},
        ("responses",),
        "store",
        "remove store: false",
    ),
    (
        "chained-turn-with-store-false",
        req(user("Hi"), store=False),
        {"previous_response_id": "resp_1"},
        ("responses",),
        "store",
        "needs store: true",
    ),
    (
        "new-from-past-the-end",
        req(user("Hi")),
        {"chained": True, "previous_response_id": "resp_1", "new_from": 1},
        ("responses",),
        "new_from",
        "index of the first message of this turn",
    ),
    (
        "stateless-reasoning-item-without-encrypted-content",
        req(
            user("Hi"),
            assistant("Hello", reasoning=(REASONING_NO_CONTENT,)),
            user("Bye"),
            model="o4-mini",
        ),
        {},
        ("responses",),
        "messages[1].reasoning_items",
        "include reasoning.encrypted_content",
    ),
    (
        "only-instructions",
        req(system("Be brief.")),
        {},
        ("responses",),
        "input",
        "add a user message",
    ),
    (
        "responses-only-model-on-chat",
        req(user("Hi"), model="o3-pro"),
        {},
        ("chat",),
        "model",
        "drop the chat arm",
    ),
    ("no-messages", req(), {}, BOTH, "messages", "add a user message"),
    (
        "tool-choice-without-tools",
        req(user("Hi"), tool_choice="auto"),
        {},
        BOTH,
        "tool_choice",
        "declare tools",
    ),
    (
        "tool-choice-unknown-function",
        req(user("Hi"), tools=(WEATHER,), tool_choice="get_tme"),
        {},
        BOTH,
        "tool_choice",
        "one of: get_weather",
    ),
    (
        "parallel-tool-calls-without-tools",
        req(user("Hi"), parallel_tool_calls=True),
        {},
        BOTH,
        "parallel_tool_calls",
        "declare tools",
    ),
    (
        "duplicate-tool-names",
        req(user("Hi"), tools=(WEATHER, WEATHER)),
        {},
        BOTH,
        "tools[1].name",
        "give each tool a unique name",
    ),
    (
        "json-object-without-the-word-json",
        req(user("Hi"), output_format=JsonObjectFormat()),
        {},
        BOTH,
        "output_format",
        "mention JSON",
    ),
    (
        "image-in-system-message",
        req(
            Message(role="system", content=[ImagePart(url="https://example.com/a.png")]), user("Hi")
        ),
        {},
        BOTH,
        "messages[0].content",
        "move the image to a user message",
    ),
    ("empty-part-list", req(user([])), {}, BOTH, "messages[0].content", "at least one part"),
    (
        "user-without-content",
        req(Message(role="user")),
        {},
        BOTH,
        "messages[0].content",
        "add content",
    ),
    (
        "assistant-without-content-or-calls",
        req(user("Hi"), assistant(None), user("Bye")),
        {},
        BOTH,
        "messages[1].content",
        "add content",
    ),
    (
        "tool-message-without-call-id",
        req(user("Hi"), Message(role="tool", content="x")),
        {},
        BOTH,
        "messages[1].tool_call_id",
        "set it to the id of the call it answers",
    ),
    (
        "call-id-on-user-message",
        req(Message(role="user", content="Hi", tool_call_id="c")),
        {},
        BOTH,
        "messages[0].tool_call_id",
        "only role: tool messages answer calls",
    ),
    (
        "tool-calls-on-user-message",
        req(Message(role="user", content="Hi", tool_calls=(CALL_1,))),
        {},
        BOTH,
        "messages[0].tool_calls",
        "move them to an assistant message",
    ),
    (
        "reasoning-items-on-user-message",
        req(Message(role="user", content="Hi", reasoning_items=(REASONING_1,))),
        {},
        BOTH,
        "messages[0].reasoning_items",
        "move them to the assistant message",
    ),
    (
        "unanswered-tool-call",
        req(user("Weather?"), assistant(None, CALL_1), tools=(WEATHER,)),
        {},
        BOTH,
        "messages[1]",
        "add a role: tool message for each call",
    ),
    (
        "tool-output-for-unknown-call",
        req(user("Weather?"), assistant(None, CALL_1), tool("call_9", "18"), tools=(WEATHER,)),
        {},
        BOTH,
        "messages[2].tool_call_id",
        "use the id of one of that message's tool_calls",
    ),
    (
        "tool-call-answered-too-late",
        req(
            user("Weather?"),
            assistant(None, CALL_1),
            user("Hurry"),
            tool("call_1", "18"),
            tools=(WEATHER,),
        ),
        {},
        BOTH,
        "messages[2]",
        "answer each tool call with a role: tool message right after the call",
    ),
    (
        "responses-only-model-on-chat",
        req(user("Hi"), model="o3-pro"),
        {},
        ("chat",),
        "model",
        "o3-pro is served on the Responses API only; drop the chat arm or pick a model both "
        "APIs serve",
    ),
]


@pytest.mark.parametrize(
    ("request_", "opts", "apis", "param", "fix"),
    [n[1:] for n in NEGATIVE],
    ids=[n[0] for n in NEGATIVE],
)
def test_rejections_name_param_and_fix(
    request_: NeutralRequest, opts: dict[str, Any], apis: tuple[str, ...], param: str, fix: str
) -> None:
    translators: dict[str, Callable[[NeutralRequest], dict[str, Any]]] = {
        "chat": to_chat_kwargs,
        "responses": lambda r: to_responses_kwargs(r, **opts),
    }
    for api, translate in translators.items():
        if api not in apis:
            translate(request_)  # the other API accepts it
            continue
        with pytest.raises(TranslationError) as exc:
            translate(request_)
        message = str(exc.value)
        assert message.startswith(f"{api}: {param}: "), message
        assert fix in message


def test_every_unsupported_param_is_reported_at_once() -> None:
    with pytest.raises(TranslationError) as exc:
        to_responses_kwargs(req(user("Hi"), model="o3", temperature=0, top_p=1))
    assert "responses: temperature:" in str(exc.value)
    assert "responses: top_p:" in str(exc.value)


# --------------------------------------------------------------------------- the guide's samples


def test_guide_response_format_on_responses_fails_spec_and_sdk() -> None:
    body = {
        "model": "gpt-4.1",
        "input": "Extract: John is 30",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "person_info", "strict": True, "schema": PERSON},
        },
    }
    assert request_problems("/responses", body) == [
        "CreateResponse: response_format: not a parameter of /responses"
    ]
    with pytest.raises(TypeError, match="response_format"):
        inspect.signature(Responses.create).bind(object(), **body)
    fixed = to_responses_kwargs(
        req(
            user("Extract: John is 30"),
            model="gpt-4.1",
            output_format=JsonSchemaFormat(name="person_info", schema_=PERSON),
        )
    )
    assert "response_format" not in fixed
    assert request_problems("/responses", fixed) == []


GUIDE_IMAGE_PARTS = [
    (
        "object-image-url",
        {"type": "input_image", "image_url": {"url": "https://e.com/i.jpg"}, "detail": "auto"},
    ),
    ("guide-verbatim", {"type": "input_image", "image_url": {"url": "https://e.com/i.jpg"}}),
    ("missing-detail", {"type": "input_image", "image_url": "https://e.com/i.jpg"}),
    ("chat-text-part-type", {"type": "text", "text": "What's in this image?"}),
]


@pytest.mark.parametrize(
    "part", [p for _, p in GUIDE_IMAGE_PARTS], ids=[i for i, _ in GUIDE_IMAGE_PARTS]
)
def test_guide_image_shapes_fail_spec(part: dict[str, Any]) -> None:
    body = {
        "model": "gpt-4.1",
        "input": [
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "What's in this image?"}, part],
            }
        ],
    }
    assert request_problems("/responses", body) != []


def test_guide_file_search_tool_fails_spec() -> None:
    body = {
        "model": "gpt-4.1",
        "input": "Summarize",
        "tools": [{"type": "file_search", "file_ids": ["file-abc123"]}],
    }
    assert request_problems("/responses", body) != []


def test_output_text_part_in_assistant_input_fails_spec() -> None:
    # Why assistant history is sent as a plain string (DESIGN §3).
    body = {
        "model": "gpt-4.1",
        "input": [{"role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]}],
    }
    assert request_problems("/responses", body) != []


# --------------------------------------------------------------------------- purity


def test_translation_is_deterministic_and_does_not_share_state() -> None:
    case = next(c for c in CASES if c.id == "stateless-reasoning-items-before-assistant-items")
    before = case.req.model_dump()
    first = to_responses_kwargs(case.req)
    first["input"][1]["summary"].append("mutated")
    first["tools"][0]["parameters"]["properties"].clear()
    chat = to_chat_kwargs(case.req)
    chat["tools"][0]["function"]["parameters"]["required"].clear()
    assert case.req.model_dump() == before
    assert to_responses_kwargs(case.req) == case.responses
    assert to_chat_kwargs(case.req) == case.chat


# --------------------------------------------------------------------------- unmappable params


def test_unmappable_chat_params_are_chat_params_with_a_reason() -> None:
    chat_params = top_level_properties("CreateChatCompletionRequest")
    sdk_params = set(inspect.signature(Completions.create).parameters)
    for name, reason in UNMAPPABLE_CHAT_PARAMS.items():
        assert name in chat_params and name in sdk_params, name
        assert name not in Params.model_fields, name
        assert reason.endswith(".") and reason.count("; ") == 1, name  # "reason; fix."
    required = {
        "n",
        "stop",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "audio",
        "modalities",
        "prediction",
        "logprobs",
        "top_logprobs",
        "web_search_options",
        "stream_options",
        "max_tokens",
    }
    assert required <= set(UNMAPPABLE_CHAT_PARAMS)


def test_unmappable_chat_params_have_no_responses_parameter_of_that_name() -> None:
    # Same name, different meaning: Responses' stream_options only controls obfuscation and its
    # top_logprobs only works with the logprobs include; the rest do not exist there at all.
    same_name_elsewhere = {"stream_options", "top_logprobs"}
    responses_params = top_level_properties("CreateResponse")
    assert set(UNMAPPABLE_CHAT_PARAMS) & responses_params == same_name_elsewhere


# --------------------------------------------------------------------------- canary: back to chat

RESPONSE_BASE: dict[str, Any] = {
    "id": "resp_abc",
    "object": "response",
    "created_at": 1741476777,
    "status": "completed",
    "completed_at": 1741476778,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "gpt-4.1-mini-2025-04-14",
    "output": [],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": False,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "metadata": {},
    "service_tier": "default",
    "usage": {
        "input_tokens": 2000,
        "input_tokens_details": {"cached_tokens": 1920, "cache_write_tokens": 0},
        "output_tokens": 52,
        "output_tokens_details": {"reasoning_tokens": 10},
        "total_tokens": 2052,
    },
}


def _text_message(
    *texts: str, annotations: tuple[list[dict[str, Any]], ...] = ()
) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_1",
        "status": "completed",
        "role": "assistant",
        "content": [
            {
                "type": "output_text",
                "text": t,
                "logprobs": [],
                "annotations": annotations[i] if i < len(annotations) else [],
            }
            for i, t in enumerate(texts)
        ],
    }


FUNCTION_CALL = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"city":"Paris"}',
    "status": "completed",
}
REASONING_OUT = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gA"}
CITATION = {
    "type": "url_citation",
    "start_index": 0,
    "end_index": 4,
    "url": "https://example.com/",
    "title": "Example",
}
CHAT_USAGE = {
    "prompt_tokens": 2000,
    "completion_tokens": 52,
    "total_tokens": 2052,
    "prompt_tokens_details": {"cached_tokens": 1920, "cache_write_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 10},
}


def _completion(message: dict[str, Any], finish: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_abc",
        "object": "chat.completion",
        "created": 1741476777,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "annotations": [],
                    **message,
                },
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": CHAT_USAGE,
        "service_tier": "default",
        **extra,
    }


BACK = [
    (
        "text-completed-stop",
        {"output": [REASONING_OUT, _text_message("Hello", " there")]},
        _completion({"content": "Hello there"}, "stop"),
    ),
    (
        "tool-calls",
        {"output": [REASONING_OUT, FUNCTION_CALL]},
        _completion(
            {
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ]
            },
            "tool_calls",
        ),
    ),
    (
        # chat finishes a call forced by tool_choice naming a function with "stop" (issue 17)
        "forced-tool-call-is-stop",
        {
            "output": [REASONING_OUT, FUNCTION_CALL],
            "tool_choice": {"type": "function", "name": "get_weather"},
        },
        _completion(
            {
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ]
            },
            "stop",
        ),
    ),
    (
        "text-and-tool-call",
        {"output": [_text_message("Checking."), FUNCTION_CALL]},
        _completion(
            {
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            "tool_calls",
        ),
    ),
    (
        "incomplete-max-output-tokens-is-length",
        {
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "output": [_text_message("Hel")],
        },
        _completion({"content": "Hel"}, "length"),
    ),
    (
        "incomplete-content-filter",
        {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}, "output": []},
        _completion({}, "content_filter"),
    ),
    (
        "refusal",
        {
            "output": [
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "refusal", "refusal": "I can't."}],
                }
            ]
        },
        _completion({"refusal": "I can't."}, "stop"),
    ),
    (
        "citations-shift-with-joined-text",
        {"output": [_text_message("See ", "docs", annotations=([], [CITATION]))]},
        _completion(
            {
                "content": "See docs",
                "annotations": [
                    {
                        "type": "url_citation",
                        "url_citation": {
                            "start_index": 4,
                            "end_index": 8,
                            "url": "https://example.com/",
                            "title": "Example",
                        },
                    }
                ],
            },
            "stop",
        ),
    ),
    (
        "metadata-kept-unknown-tier-dropped",
        {"output": [_text_message("Hi")], "metadata": {"run": "r1"}, "service_tier": "ultrafast"},
        {
            **{
                k: v
                for k, v in _completion({"content": "Hi"}, "stop").items()
                if k != "service_tier"
            },
            "metadata": {"run": "r1"},
        },
    ),
    (
        "no-usage",
        {"output": [_text_message("Hi")], "usage": None},
        {k: v for k, v in _completion({"content": "Hi"}, "stop").items() if k != "usage"},
    ),
]


@pytest.mark.parametrize(("changes", "expected"), [b[1:] for b in BACK], ids=[b[0] for b in BACK])
def test_responses_to_chat_completion(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    response = {**RESPONSE_BASE, **changes}
    if response["usage"] is None:
        del response["usage"]
    assert schema_problems("Response", response) == []  # the fixture is a real response shape
    completion = responses_to_chat_completion(response)
    assert completion == expected
    assert schema_problems("CreateChatCompletionResponse", completion) == []


@pytest.mark.parametrize(
    ("status", "details", "match"),
    [
        ("failed", None, "status: 'failed'"),
        ("in_progress", None, "status: 'in_progress'"),
        ("incomplete", {"reason": "something_new"}, "incomplete_details.reason"),
    ],
)
def test_unfinished_response_cannot_become_a_chat_completion(
    status: str, details: dict[str, Any] | None, match: str
) -> None:
    response = {**RESPONSE_BASE, "status": status, "incomplete_details": details}
    with pytest.raises(TranslationError, match=match):
        responses_to_chat_completion(response)


def test_translation_notes_say_what_the_default_translation_changed() -> None:
    json_in_system = req(system("Reply in JSON."), user("Hi"), output_format=JsonObjectFormat())
    [note] = translation_notes(json_in_system, "responses")
    assert note.startswith("text.format: json_object needs the word JSON in an input message")
    assert translation_notes(json_in_system, "chat") == []
    json_in_user = req(system("Be terse."), user("JSON: hi"), output_format=JsonObjectFormat())
    assert translation_notes(json_in_user, "responses") == []
    nowhere = req(system("Be terse."), user("Hi"), output_format=JsonObjectFormat())
    assert translation_notes(nowhere, "responses") == []  # refused, not changed
    tagged = req(user("Hi"), metadata={"run": "r1"})
    [note] = translation_notes(tagged, "chat")
    assert note.startswith("metadata: Chat Completions accepts metadata only with store: true")
    assert translation_notes(tagged, "responses") == []
    assert translation_notes(req(user("Hi"), metadata={"run": "r1"}, store=True), "chat") == []
