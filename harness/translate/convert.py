"""One neutral request → Chat Completions kwargs and Responses kwargs (pure functions).

The rules are DESIGN §3 ("Translation facts"); the OpenAPI spec and the openai SDK are the
authority, not migration guides. Both translators share the checks in :func:`_check_request`,
so a request that cannot be expressed fails the same way for either arm, with a
:class:`~harness.errors.TranslationError` that names the parameter and the fix. Output dicts
hold only keys that are set (no ``None`` values), so they are also the exact request body.

:func:`responses_to_chat_completion` goes the other way for canary mode: a Responses API
response object becomes a ``chat.completion`` object.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from harness.errors import TranslationError
from harness.translate.capabilities import ModelInfo, model_info, not_served, unsupported_params
from harness.translate.enums import CHAT_SERVICE_TIERS
from harness.translate.request import (
    FunctionTool,
    ImagePart,
    JsonSchemaFormat,
    Message,
    NeutralRequest,
    Part,
    TextPart,
)
from harness.translate.rules import message_problems, repeated_tools, tool_choice_problem

Api = Literal["chat", "responses"]

#: Chat Completions parameters with no Responses equivalent: name → ``"reason; fix."``.
UNMAPPABLE_CHAT_PARAMS: dict[str, str] = {
    "n": "Responses returns exactly one output per request; remove n (use repeats for samples).",
    "stop": "Responses has no stop sequences; remove stop (or post-process the text).",
    "seed": "Responses has no seed parameter; remove seed (use repeats and the A/A noise floor).",
    "frequency_penalty": "Responses has no frequency_penalty; remove it.",
    "presence_penalty": "Responses has no presence_penalty; remove it.",
    "logit_bias": "Responses has no logit_bias; remove it.",
    "audio": "Responses has no audio output; remove audio (and use a text model).",
    "modalities": "Responses output is text only here; remove modalities.",
    "prediction": "Responses has no predicted outputs; remove prediction.",
    "logprobs": "logprobs map to Responses only via include message.output_text.logprobs, "
    "which the harness does not translate yet; remove logprobs.",
    "top_logprobs": "top_logprobs need the logprobs include on Responses, which the harness "
    "does not translate yet; remove top_logprobs.",
    "web_search_options": "Responses searches through a hosted web_search tool, not a request "
    "option, so results are not comparable; remove web_search_options.",
    "stream_options": "Responses reports usage in its terminal event and the harness sets "
    "include_usage on the chat arm itself; remove stream_options.",
    "max_tokens": "max_tokens is deprecated and rejected by reasoning models; use "
    "max_output_tokens (sent as max_completion_tokens / max_output_tokens).",
    "functions": "functions is deprecated; declare tools instead.",
    "function_call": "function_call is deprecated; use tool_choice instead.",
}

_ENCRYPTED_REASONING = "reasoning.encrypted_content"


def _fail(api: Api, param: str, message: str) -> TranslationError:
    return TranslationError(f"{api}: {param}: {message}")


# --------------------------------------------------------------------------- checks


def _texts(req: NeutralRequest) -> str:
    chunks: list[str] = []
    for msg in req.messages:
        if isinstance(msg.content, str):
            chunks.append(msg.content)
        elif msg.content is not None:
            chunks.extend(p.text for p in msg.content if isinstance(p, TextPart))
    return "\n".join(chunks)


def _check_messages(api: Api, messages: tuple[Message, ...]) -> None:
    for i, msg in enumerate(messages):
        if msg.reasoning_items and msg.role != "assistant":
            raise _fail(
                api,
                f"messages[{i}].reasoning_items",
                "only assistant messages carry reasoning "
                "items; move them to the assistant message that produced them",
            )
    for i, field, message, fix in message_problems(messages, ImagePart):
        where = f"messages[{i}]" + (f".{field}" if field else "")
        raise _fail(api, where, f"{message}; {fix}")


def _check_request(api: Api, req: NeutralRequest) -> ModelInfo:
    """Checks shared by both APIs (each raises naming the parameter and the fix), last that
    ``api`` serves the model; returns what the model accepts."""
    if not req.messages:
        raise _fail(api, "messages", "at least one message is required; add a user message")
    _check_messages(api, req.messages)
    problems = unsupported_params(req.model, req.params)
    if problems:
        raise TranslationError("; ".join(f"{api}: {name}: {why}" for name, why in problems))
    names = [tool.name for tool in req.tools]
    for t, message, fix in repeated_tools(names):
        raise _fail(api, f"tools[{t}].name", f"{message}; {fix}")
    choice = tool_choice_problem(req.tool_choice, names)
    if choice is not None:
        raise _fail(api, "tool_choice", "; ".join(choice))
    if req.params.parallel_tool_calls is not None and not req.tools:
        raise _fail(
            api, "parallel_tool_calls", "only allowed with tools; remove it or declare tools"
        )
    is_json_object = req.output_format is not None and req.output_format.type == "json_object"
    if is_json_object and "json" not in _texts(req).lower():
        # Both APIs refuse json_object mode unless the prompt asks for JSON.
        raise _fail(
            api,
            "output_format",
            "json_object mode requires the word 'JSON' in the "
            "messages; mention JSON in the system or user message",
        )
    unserved = not_served(req.model, api)
    if unserved is not None:
        raise _fail(api, "model", unserved)
    return model_info(req.model)


# --------------------------------------------------------------------------- shared pieces


def _joined_text(content: str | list[Part]) -> str:
    # Parts are concatenated as written: the model sees consecutive text parts as one text.
    return (
        content
        if isinstance(content, str)
        else "".join(p.text for p in content if isinstance(p, TextPart))
    )


def _json_word_only_in_instructions(req: NeutralRequest) -> bool:
    """``json_object`` output where only the leading system/developer message says "JSON".

    Chat accepts that; the real Responses API counts only input messages, not
    ``instructions``, and answers 400 — so the Responses translation keeps that message in
    ``input`` instead (docs/api-fidelity.md)."""
    fmt = req.output_format
    if fmt is None or fmt.type != "json_object" or not req.messages:
        return False
    first = req.messages[0]
    if first.role not in ("system", "developer") or first.content is None:
        return False
    if "json" not in _joined_text(first.content).lower():
        return False  # not there either: _check_request refuses the request
    rest = req.model_copy(update={"messages": req.messages[1:]})
    return "json" not in _texts(rest).lower()


def _chat_drops_metadata(req: NeutralRequest) -> bool:
    # Chat Completions answers 400 "The 'metadata' parameter is only allowed when 'store' is
    # enabled." and the chat arm does not store unless the scenario asks it to.
    return req.params.metadata is not None and req.params.store is not True


def translation_notes(req: NeutralRequest, api: Api) -> list[str]:
    """What the default translation to ``api`` changed so the real API accepts ``req``, one
    ``param: what and why`` line each — the same 400 a team's own migrated app would get."""
    notes: list[str] = []
    if api == "responses" and _json_word_only_in_instructions(req):
        notes.append(
            "text.format: json_object needs the word JSON in an input message, and only the "
            "system prompt says it, which Responses would send as instructions (they do not "
            "count: the real API answers 400); the system prompt is sent as the first input "
            "message instead — mention JSON in the user message to keep it as instructions"
        )
    if api == "chat" and _chat_drops_metadata(req):
        notes.append(
            "metadata: Chat Completions accepts metadata only with store: true (else 400), and "
            "the chat arm does not store; metadata is not sent on the chat arm — set store: "
            "true to send it"
        )
    return notes


def _passthrough(req: NeutralRequest) -> dict[str, Any]:
    """Parameters with the same name and shape on both APIs (set ones only)."""
    p = req.params
    values: dict[str, Any] = {
        "temperature": p.temperature,
        "top_p": p.top_p,
        "parallel_tool_calls": p.parallel_tool_calls,
        "prompt_cache_key": p.prompt_cache_key,
        "metadata": dict(p.metadata) if p.metadata is not None else None,
        "service_tier": p.service_tier,
        "user": p.user,
    }
    return {k: v for k, v in values.items() if v is not None}


def _function(tool: FunctionTool) -> dict[str, Any]:
    """The function definition: nested under ``function`` on chat, flat on responses."""
    # strict is always sent: the APIs default it differently (chat false, responses true).
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["parameters"] = copy.deepcopy(tool.parameters)
    out["strict"] = tool.strict
    return out


# --------------------------------------------------------------------------- chat


def _chat_part(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    return {"type": "image_url", "image_url": {"url": part.url, "detail": part.detail}}


def _chat_message(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": msg.role}
    if msg.content is not None:
        out["content"] = (
            msg.content if isinstance(msg.content, str) else [_chat_part(p) for p in msg.content]
        )
    if msg.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in msg.tool_calls
        ]
    if msg.tool_call_id is not None:
        out["tool_call_id"] = msg.tool_call_id
    return out


def to_chat_kwargs(req: NeutralRequest) -> dict[str, Any]:
    """Keyword arguments for ``client.chat.completions.create`` (raises TranslationError)."""
    _check_request("chat", req)
    p = req.params
    out: dict[str, Any] = {
        "model": req.model,
        "messages": [_chat_message(m) for m in req.messages],
        "stream": p.stream,
    }
    if p.stream:
        # Without it a chat stream carries no usage at all (it comes in an extra last chunk).
        out["stream_options"] = {"include_usage": True}
    # Chat already defaults to not storing; say so explicitly so both arms read the same.
    out["store"] = False if p.store is None else p.store
    out.update(_passthrough(req))
    if _chat_drops_metadata(req):
        del out["metadata"]
    if p.max_output_tokens is not None:
        if p.max_output_tokens < 1:
            raise _fail(
                "chat",
                "max_output_tokens",
                f"{p.max_output_tokens} is not a positive token count; set it to 1 or more",
            )
        # max_tokens is deprecated and reasoning models reject it.
        out["max_completion_tokens"] = p.max_output_tokens
    if p.reasoning_effort is not None:
        out["reasoning_effort"] = p.reasoning_effort
    if p.verbosity is not None:
        out["verbosity"] = p.verbosity
    fmt = req.output_format
    if isinstance(fmt, JsonSchemaFormat):
        schema: dict[str, Any] = {
            "name": fmt.name,
            "schema": copy.deepcopy(fmt.schema_),
            "strict": fmt.strict,
        }
        if fmt.description is not None:
            schema["description"] = fmt.description
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif fmt is not None:
        out["response_format"] = {"type": "json_object"}
    if req.tools:
        out["tools"] = [{"type": "function", "function": _function(t)} for t in req.tools]
    if req.tool_choice is not None:
        out["tool_choice"] = (
            req.tool_choice
            if req.tool_choice in ("auto", "none", "required")
            else {"type": "function", "function": {"name": req.tool_choice}}
        )
    return out


# --------------------------------------------------------------------------- responses


def _responses_part(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "input_text", "text": part.text}
    # image_url is a plain string here (not chat's {url, detail} object); detail is required.
    return {"type": "input_image", "image_url": part.url, "detail": part.detail}


def _responses_items(msg: Message) -> list[dict[str, Any]]:
    """Input items for one message: reasoning first, then the text, then the tool calls."""
    items = [copy.deepcopy(r) for r in msg.reasoning_items]
    content: str | list[dict[str, Any]] | None = (
        msg.content
        if msg.content is None or isinstance(msg.content, str)
        else [_responses_part(p) for p in msg.content]
    )
    if msg.role == "tool":
        items.append(
            {"type": "function_call_output", "call_id": msg.tool_call_id, "output": content}
        )
    elif msg.role == "assistant":
        # The one form the spec, OpenAI and llama-server all accept for history without ids: an
        # EasyInputMessage with an explicit ``type``. Without ``type`` llama-server answers 400
        # "Cannot determine type of 'item'"; an output_text part needs the id and status the
        # spec requires of an OutputMessage, and on store: false the real API cannot resolve
        # ids it never persisted (docs/api-fidelity.md).
        if msg.content is not None:
            items.append(
                {"type": "message", "role": "assistant", "content": _joined_text(msg.content)}
            )
        items.extend(
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
            for c in msg.tool_calls
        )
    else:
        items.append({"role": msg.role, "content": content})
    return items


def _instructions_end(req: NeutralRequest) -> int:
    """1 when the leading system/developer message is sent as ``instructions``, else 0."""
    first = req.messages[0] if req.messages else None
    if (
        first is not None
        and first.role in ("system", "developer")
        and first.content is not None
        and not _json_word_only_in_instructions(req)
    ):
        return 1
    return 0


def conversation_items(req: NeutralRequest, new_from: int, *, store: bool) -> list[dict[str, Any]]:
    """The items a new conversation starts with: ``req.messages`` after the instructions and
    before ``new_from`` (a prompt's fixed history), as ``conversations.create`` takes them."""
    messages = req.messages[_instructions_end(req) : new_from]
    if not store:
        messages = tuple(m.model_copy(update={"reasoning_items": ()}) for m in messages)
    return [item for msg in messages for item in _responses_items(msg)]


def to_responses_kwargs(
    req: NeutralRequest,
    *,
    chained: bool = False,
    previous_response_id: str | None = None,
    new_from: int = 0,
    conversation: str | None = None,
    carry_reasoning: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for ``client.responses.create`` (raises TranslationError).

    ``chained``: this conversation uses stored responses (``store: true`` required). With
    ``previous_response_id`` or ``conversation`` (a Conversations API id), only
    ``req.messages[new_from:]`` are sent as ``input`` (the server holds the rest) while
    ``instructions`` are re-sent, as they are not carried over. A ``previous_response_id``
    implies ``chained``. ``carry_reasoning=False`` sends earlier turns' reasoning items back
    neither in full nor encrypted (and asks for no encrypted reasoning).
    """
    info = _check_request("responses", req)
    p = req.params
    chained = chained or previous_response_id is not None
    if conversation is not None and previous_response_id is not None:
        raise _fail(
            "responses",
            "conversation",
            "conversation and previous_response_id cannot be combined (the API rejects "
            "both in one request); send one of them",
        )
    if not carry_reasoning:
        req = req.model_copy(
            update={
                "messages": tuple(
                    m.model_copy(update={"reasoning_items": ()}) if m.reasoning_items else m
                    for m in req.messages
                )
            }
        )
    if p.store is False and chained:
        raise _fail(
            "responses",
            "store",
            "the chained arm needs store: true (the server must "
            "keep each response for previous_response_id); remove store: false or "
            "drop the responses_chained arm",
        )
    store = chained if p.store is None else p.store

    # A leading system/developer message becomes `instructions`, re-sent on every turn.
    start = _instructions_end(req)
    instructions = _joined_text(req.messages[0].content or "") if start else None
    held_by = (
        "previous_response_id"
        if previous_response_id is not None
        else "conversation"
        if conversation is not None
        else None
    )
    if held_by is not None:
        if not 0 <= new_from < len(req.messages):
            raise _fail(
                "responses",
                "new_from",
                f"{new_from} leaves no new message of "
                f"{len(req.messages)} to send after {held_by}; pass the "
                "index of the first message of this turn",
            )
        start = max(start, new_from)
    messages = req.messages[start:]
    if not store:
        # Without stored responses the server cannot look reasoning items up by id.
        for i, msg in enumerate(messages, start):
            for item in msg.reasoning_items:
                if not item.get("encrypted_content"):
                    raise _fail(
                        "responses",
                        f"messages[{i}].reasoning_items",
                        "with store "
                        "false every reasoning item needs encrypted_content; request "
                        "it with include reasoning.encrypted_content on that turn",
                    )
    items = [item for msg in messages for item in _responses_items(msg)]
    if not items:
        raise _fail(
            "responses", "input", "nothing to send besides instructions; add a user message"
        )

    out: dict[str, Any] = {"model": req.model}
    if instructions is not None:
        out["instructions"] = instructions
    out["input"] = items
    out["stream"] = p.stream
    # Responses stores by default; the harness only stores what chaining needs.
    out["store"] = store
    if previous_response_id is not None:
        out["previous_response_id"] = previous_response_id
    if conversation is not None:
        out["conversation"] = conversation
    if (
        not store
        and carry_reasoning
        and conversation is None  # the conversation holds its reasoning items itself
        and (info.reasoning or any(m.reasoning_items for m in req.messages))
    ):
        # Stateless reasoning: ask for the encrypted reasoning so the next turn can send it back.
        out["include"] = [_ENCRYPTED_REASONING]
    out.update(_passthrough(req))
    if p.max_output_tokens is not None:
        if p.max_output_tokens < info.min_output_tokens:
            raise _fail(
                "responses",
                "max_output_tokens",
                f"{p.max_output_tokens} is below the "
                f"Responses API minimum of {info.min_output_tokens}; set "
                f"max_output_tokens to {info.min_output_tokens} or more",
            )
        out["max_output_tokens"] = p.max_output_tokens
    if p.reasoning_effort is not None:
        out["reasoning"] = {"effort": p.reasoning_effort}
    text: dict[str, Any] = {}
    fmt = req.output_format
    if isinstance(fmt, JsonSchemaFormat):
        text["format"] = {
            "type": "json_schema",
            "name": fmt.name,
            "schema": copy.deepcopy(fmt.schema_),
            "strict": fmt.strict,
        }
        if fmt.description is not None:
            text["format"]["description"] = fmt.description
    elif fmt is not None:
        text["format"] = {"type": "json_object"}
    if p.verbosity is not None:
        text["verbosity"] = p.verbosity
    if text:
        out["text"] = text
    if req.tools:
        out["tools"] = [{"type": "function", **_function(t)} for t in req.tools]
    if req.tool_choice is not None:
        out["tool_choice"] = (
            req.tool_choice
            if req.tool_choice in ("auto", "none", "required")
            else {"type": "function", "name": req.tool_choice}
        )
    return out


# --------------------------------------------------------------------------- canary: back to chat

_CHAT_SERVICE_TIERS = frozenset(CHAT_SERVICE_TIERS)


def _finish_reason(response: Mapping[str, Any], has_tool_calls: bool) -> str:
    status = response.get("status", "completed")
    if status == "completed":
        # Chat says "stop" for a call forced by tool_choice naming a function, as OpenAI does
        choice = response.get("tool_choice")
        forced = isinstance(choice, Mapping) and choice.get("type") == "function"
        return "tool_calls" if has_tool_calls and not forced else "stop"
    if status == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        if reason == "max_output_tokens":
            return "length"
        if reason == "content_filter":
            return "content_filter"
        raise TranslationError(
            f"response: incomplete_details.reason: {reason!r} has no chat "
            "finish_reason; expected max_output_tokens or content_filter"
        )
    raise TranslationError(
        f"response: status: {status!r} has no chat completion equivalent; "
        "only completed and incomplete responses can be converted"
    )


def _chat_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    # Cached tokens are a subset of input tokens: they are copied, never added.
    input_details = usage.get("input_tokens_details") or {}
    output_details = usage.get("output_tokens_details") or {}
    prompt_details = {"cached_tokens": input_details.get("cached_tokens", 0)}
    if "cache_write_tokens" in input_details:
        prompt_details["cache_write_tokens"] = input_details["cache_write_tokens"]
    return {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage.get("total_tokens", usage["input_tokens"] + usage["output_tokens"]),
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": output_details.get("reasoning_tokens", 0)
        },
    }


def responses_to_chat_completion(response: Mapping[str, Any]) -> dict[str, Any]:
    """A Responses API response object (JSON dict) as a ``chat.completion`` object.

    Only ``message`` and ``function_call`` output items are mapped; reasoning and server-side
    tool items have no place in a chat completion and are dropped. Raises TranslationError for
    a response that did not finish (failed, cancelled, in progress).
    """
    texts: list[str] = []
    refusals: list[str] = []
    annotations: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    offset = 0
    for item in response.get("output") or ():
        if item.get("type") == "function_call":
            tool_calls.append(
                {
                    "id": item["call_id"],
                    "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                }
            )
        elif item.get("type") == "message":
            for part in item.get("content") or ():
                if part.get("type") == "refusal":
                    refusals.append(part["refusal"])
                elif part.get("type") == "output_text":
                    # Texts are concatenated, so citation offsets shift by the text before.
                    annotations.extend(
                        {
                            "type": "url_citation",
                            "url_citation": {
                                "start_index": a["start_index"] + offset,
                                "end_index": a["end_index"] + offset,
                                "url": a["url"],
                                "title": a["title"],
                            },
                        }
                        for a in part.get("annotations") or ()
                        if a.get("type") == "url_citation"
                    )
                    texts.append(part["text"])
                    offset += len(part["text"])
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": "".join(refusals) if refusals else None,
        "annotations": annotations,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    out: dict[str, Any] = {
        "id": response["id"],
        "object": "chat.completion",
        "created": int(response["created_at"]),
        "model": response["model"],
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(response, bool(tool_calls)),
            }
        ],
    }
    if response.get("usage"):
        out["usage"] = _chat_usage(response["usage"])
    if response.get("service_tier") in _CHAT_SERVICE_TIERS:
        out["service_tier"] = response["service_tier"]
    if response.get("metadata"):
        out["metadata"] = dict(response["metadata"])
    return out
