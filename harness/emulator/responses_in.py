"""Responses API requests → :class:`GenRequest`: input items, instructions, chains.

``instructions`` go into the prompt prefix and are *not* part of the stored conversation, so
they are not carried over ``previous_response_id`` (OpenAI's rule). A chained request's
conversation is the stored chain (earlier inputs and outputs, reasoning included) plus its new
input; an unknown or unstored previous response is OpenAI's 400 ``previous_response_not_found``.
"""

from __future__ import annotations

from typing import Any

from harness.emulator.background import STORE_REQUIRED
from harness.emulator.content import reasoning_tokens_of
from harness.emulator.conversations import ConversationStore, Held, stored_item
from harness.emulator.errors import (
    ApiError,
    invalid,
    missing_parameter,
    not_emulated,
    not_found,
)
from harness.emulator.prompt import (
    GenRequest,
    OutputFormat,
    Segment,
    message_segments,
)
from harness.emulator.store import ResponseStore
from harness.emulator.validate import (
    check_keys,
    effort_of,
    enum_value,
    gen_request,
    metadata_of,
    model_of,
    opt_bool,
    opt_int,
    output_format,
    require_json_word,
    sampling,
    stream_of,
    text_of_parts,
    tools_of,
    type_error,
    verbosity_of,
)
from harness.translate.enums import (
    REASONING_CONTEXTS,
    REASONING_SUMMARIES,
    RESPONSES_SERVICE_TIERS,
)

_PARTS = frozenset({"input_text", "input_image", "input_file", "output_text", "refusal"})
_INCLUDABLE = frozenset(
    {
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
        "message.input_image.image_url",
        "file_search_call.results",
        "web_search_call.results",
        "web_search_call.action.sources",
        "computer_call_output.output.image_url",
        "code_interpreter_call.outputs",
    }
)
MIN_OUTPUT_TOKENS = 16


def _message(item: dict[str, Any], where: str) -> list[Segment]:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise invalid(
            f"Invalid value: '{role}'. Supported values are: 'assistant', 'system', "
            "'developer', and 'user'.",
            param=f"{where}.role",
            code="invalid_value",
        )
    if "content" not in item:
        raise missing_parameter(f"{where}.content")
    text, images = text_of_parts(item["content"], f"{where}.content", allowed=_PARTS)
    return message_segments(str(role), text, images)


def _item(
    item: Any, where: str, names: dict[str, str], reasoning: dict[str, Segment]
) -> list[Segment]:
    if not isinstance(item, dict):
        raise type_error(where, "an object", item)
    kind = item.get("type", "message")
    if kind == "message":
        return _message(item, where)
    if kind == "function_call":
        call_id, name = item.get("call_id"), item.get("name")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise missing_parameter(f"{where}.call_id")
        names[call_id] = name
        return [
            Segment("function_call", str(item.get("arguments", "")), name=name, call_id=call_id)
        ]
    if kind == "function_call_output":
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            raise missing_parameter(f"{where}.call_id")
        if call_id not in names:
            raise invalid(
                f"No tool call found for function call output with call_id {call_id}.",
                param="input",
            )
        output, _ = text_of_parts(item.get("output", ""), f"{where}.output", allowed=_PARTS)
        return [Segment("tool", output, name=names.get(call_id, ""), call_id=call_id)]
    if kind == "reasoning":
        return [_reasoning(item, where, reasoning)]
    raise not_emulated(f"Input items of type '{kind}'", param=f"{where}.type")


def _as_list(raw: Any, where: str) -> list[Any]:
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise type_error(where, "a string or an array", raw)
    return raw


def _names(before: list[Segment]) -> dict[str, str]:
    return {s.call_id: s.name for s in before if s.role == "function_call"}


def held_items(
    raw: Any, where: str, before: list[Segment], reasoning: dict[str, Segment]
) -> list[Held]:
    """Input items (after the segments ``before``) as a conversation holds them (validated)."""
    names = _names(before)
    return [
        (stored_item(item, segs), segs)
        for i, item in enumerate(_as_list(raw, where))
        for segs in [_item(item, f"{where}[{i}]", names, reasoning)]
    ]


def _items(raw: Any, names: dict[str, str], reasoning: dict[str, Segment]) -> list[Segment]:
    return [
        seg
        for i, item in enumerate(_as_list(raw, "input"))
        for seg in _item(item, f"input[{i}]", names, reasoning)
    ]


def _reasoning(item: dict[str, Any], where: str, known: dict[str, Segment]) -> Segment:
    encrypted = item.get("encrypted_content")
    if isinstance(encrypted, str):
        tokens = reasoning_tokens_of(encrypted)
        if tokens is None:
            raise invalid(
                "The encrypted content for item could not be verified.",
                param=f"{where}.encrypted_content",
                code="invalid_encrypted_content",
            )
        return Segment("reasoning", encrypted, placeholder_tokens=tokens)
    item_id = str(item.get("id", ""))
    if item_id in known:
        return known[item_id]
    raise ApiError(
        404,
        f"Item with id '{item_id}' not found. Items are not persisted when "
        "`store` is set to false. Try again with `store` set to true, or remove this "
        "item from your input.",
        param="input",
        code="item_not_found",
    )


def _text_format(raw: Any) -> OutputFormat | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise type_error("text", "an object", raw)
    return output_format(raw.get("format"), "text.format", schema_key=None)


def _early_rejections(body: dict[str, Any]) -> None:
    # The mistakes migration guides make, answered the way OpenAI answers them.
    if "response_format" in body:
        raise invalid(
            "Unsupported parameter: 'response_format'. In the Responses API, this "
            "parameter has moved to 'text.format'. Try again with the new parameter.",
            param="response_format",
            code="unsupported_parameter",
        )
    if "messages" in body:
        raise invalid(
            "Unsupported parameter: 'messages'. In the Responses API, this parameter "
            "is called 'input'.",
            param="messages",
            code="unsupported_parameter",
        )
    if "max_tokens" in body or "max_completion_tokens" in body:
        key = "max_tokens" if "max_tokens" in body else "max_completion_tokens"
        raise invalid(
            f"Unsupported parameter: '{key}'. In the Responses API, this parameter "
            "has moved to 'max_output_tokens'. Try again with the new parameter.",
            param=key,
            code="unsupported_parameter",
        )
    if body.get("conversation") is not None and body.get("previous_response_id") is not None:
        # The spec says the two "cannot be used in conjunction"; OpenAI's exact wording for
        # this 400 is not on the public record (docs/api-fidelity.md), so this one is ours.
        raise invalid(
            "Cannot use both 'previous_response_id' and 'conversation' in the same request.",
            param="conversation",
        )
    for key in ("prompt", "context_management"):
        if body.get(key) is not None:
            raise not_emulated(f"'{key}'", param=key)
    if body.get("background") is True and body.get("store") is False:
        raise invalid(STORE_REQUIRED, param="background")
    opt_bool(body, "background", False)


def _conversation_id(raw: Any) -> str:
    if isinstance(raw, dict):
        raw = raw.get("id")
        if raw is None:
            raise missing_parameter("conversation.id")
    if not isinstance(raw, str):
        raise type_error("conversation", "a string or an object with an id", raw)
    return raw


def parse(
    body: dict[str, Any],
    store: ResponseStore,
    reasoning_items: dict[str, Segment],
    conversations: ConversationStore | None = None,
) -> GenRequest:
    """Validate a ``POST /v1/responses`` body (raises :class:`ApiError`)."""
    _early_rejections(body)
    check_keys(body, "responses")
    model = model_of(body)
    temperature = sampling(body, model, "responses")
    cap = opt_int(body, "max_output_tokens", MIN_OUTPUT_TOKENS)
    reasoning = body.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise type_error("reasoning", "an object", reasoning)
    effort = effort_of((reasoning or {}).get("effort"), model, "reasoning.effort")
    context = enum_value((reasoning or {}).get("context"), "reasoning.context", REASONING_CONTEXTS)
    summary = enum_value((reasoning or {}).get("summary"), "reasoning.summary", REASONING_SUMMARIES)
    text_cfg = body.get("text")
    verbosity = verbosity_of(
        text_cfg.get("verbosity") if isinstance(text_cfg, dict) else None, model, "text.verbosity"
    )
    enum_value(body.get("service_tier"), "service_tier", RESPONSES_SERVICE_TIERS)
    metadata_of(body)
    include = body.get("include") or []
    if not isinstance(include, list):
        raise type_error("include", "an array", include)
    for value in include:
        if value not in _INCLUDABLE:
            raise invalid(
                f"Invalid value: '{value}'. Supported values are: "
                + ", ".join(f"'{v}'" for v in sorted(_INCLUDABLE))
                + ".",
                param="include",
                code="invalid_value",
            )
    stream = stream_of(body)

    names: dict[str, str] = {}
    conversation: list[Segment] = []
    previous = body.get("previous_response_id")
    if previous is not None:
        if not isinstance(previous, str):
            raise type_error("previous_response_id", "a string", previous)
        stored = store.get(previous)
        if stored is None:
            raise invalid(
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        conversation = list(stored.conversation)
        names = {s.call_id: s.name for s in conversation if s.role == "function_call"}
    conversation_id: str | None = None
    new_items: list[Held] = []
    if body.get("conversation") is not None:
        conversation_id = _conversation_id(body["conversation"])
        if conversations is None or conversations.get(conversation_id) is None:
            raise not_found("Conversation", conversation_id, "conversation")
        conversation = conversations.require(conversation_id).segments()
    if body.get("input") is None and previous is None and conversation_id is None:
        raise missing_parameter("input")
    if conversation_id is not None:
        new_items = held_items(body.get("input", []), "input", conversation, reasoning_items)
        conversation += [seg for _, segs in new_items for seg in segs]
    else:
        conversation += _items(body.get("input", []), names, reasoning_items)
    answered = {s.call_id for s in conversation if s.role == "tool"}
    for seg in conversation:
        if seg.role == "function_call" and seg.call_id not in answered:
            raise invalid(f"No tool output found for function call {seg.call_id}.", param="input")

    tools = tools_of(body, nested=False)
    output = _text_format(body.get("text"))
    require_json_word(
        output,
        # Only input messages count: "JSON" in `instructions` alone is still a 400 on OpenAI.
        (s for s in conversation if s.role in ("system", "user", "assistant")),
        "Response input messages must contain the word 'json' in some form to use "
        "'text.format' of type 'json_object'.",
        "input",
    )
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise not_emulated("'instructions' as a list of items", param="instructions")
    return gen_request(
        "responses",
        body,
        model,
        conversation,
        tools,
        output,
        instructions=instructions,
        max_output_tokens=cap,
        temperature=temperature,
        effort=effort,
        verbosity=verbosity,
        all_turns_reasoning=context == "all_turns",
        reasoning_summary=summary is not None and model.reasoning,
        stream=stream,
        store=opt_bool(body, "store", True),
        include_encrypted="reasoning.encrypted_content" in include,
        previous_response_id=previous,
        conversation_id=conversation_id,
        new_items=new_items,
    )
