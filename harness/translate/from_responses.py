"""A Responses API request body → a :class:`NeutralRequest` (pure): the reverse of
:func:`harness.translate.convert.to_responses_kwargs`, for ``harness import`` of Responses
batch files (``harness export batch --api responses`` writes them).

``input`` items become messages: message items keep their role (``output_text`` parts of an
assistant message are its text), ``function_call`` items join the assistant message before them
as tool calls, ``function_call_output`` items are tool messages; ``instructions`` is a leading
system message (the body does not say whether it was ``system`` or ``developer``). Flat function
tools, ``tool_choice``, ``text.format`` (``json_schema`` / ``json_object``), ``text.verbosity``,
``reasoning.effort`` and the parameters both APIs share map one to one; the APIs' own defaults
apply where a key is absent (``store`` true, a function tool's ``strict`` true).

What the neutral request cannot hold is of two kinds. State held by the server
(``previous_response_id``, ``conversation``, a stored ``prompt``), hosted tools, item references
and input files change what is asked: :class:`~harness.errors.TranslationError` names the field
and why. Options that only shape delivery or extra output (``include``, ``truncation``,
``background``, ``reasoning.summary``, ``top_logprobs``…) are dropped and returned as notes, and
reasoning items (opaque, tied to the run that made them) are dropped the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import TranslationError
from harness.translate.enums import REASONING_EFFORTS, SERVICE_TIERS, VERBOSITIES
from harness.translate.from_wire import (
    check_enum,
    function_tool,
    image_part,
    json_schema_format,
    model_name,
    neutral_fields,
)
from harness.translate.request import (
    FunctionTool,
    JsonObjectFormat,
    Message,
    NeutralRequest,
    OutputFormat,
    Params,
    Part,
    TextPart,
    ToolCall,
)

__all__ = ["neutral_from_responses_kwargs"]

#: Responses parameters with the neutral model's name and meaning.
_PARAMS = (
    "temperature",
    "top_p",
    "max_output_tokens",
    "prompt_cache_key",
    "metadata",
    "stream",
    "store",
    "parallel_tool_calls",
    "service_tier",
    "user",
)
_STRUCTURAL = frozenset({"model", "input", "instructions", "tools", "tool_choice", "text"})
#: State the server holds: without it the request is not the one that was sent.
_SERVER_STATE = {
    "previous_response_id": "the earlier turns are held by the server, not in the file",
    "conversation": "the conversation's items are held by the server, not in the file",
    "prompt": "a stored prompt template's text is held by the server, not in the file",
}
#: Options dropped when set to anything but this no-op value (None: any value is dropped).
_DROPPED: dict[str, Callable[[Any], bool] | None] = {
    "truncation": lambda v: v == "disabled",
    "background": lambda v: v is False,
    "top_logprobs": lambda v: v == 0 and v is not False,
    "max_tool_calls": None,
    "stream_options": None,
    "safety_identifier": None,
    "prompt_cache_retention": None,
    "prompt_cache_options": None,
    "moderation": None,
    "context_management": None,
    "background_options": None,
}
#: The one ``include`` the harness adds itself wherever it is needed (stateless reasoning).
_OWN_INCLUDE = "reasoning.encrypted_content"
_ITEM_KEYS = frozenset({"type", "role", "content", "id", "status"})


def _fail(param: str, message: str) -> TranslationError:
    return TranslationError(f"{param}: {message}")


def _part(where: str, part: Any) -> Part:
    if not isinstance(part, Mapping):
        raise _fail(where, f"a content part must be an object, not {type(part).__name__}")
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return TextPart(text=str(part.get("text", "")))
    if kind == "input_image":
        if not isinstance(part.get("image_url"), str):
            raise _fail(where, "an image by file_id is not carried; give its image_url")
        return image_part(_fail, where, part["image_url"], part.get("detail"))
    if kind == "refusal":
        raise _fail(where, "a refusal has no input form on Chat; drop the refused turn")
    raise _fail(where, f"a {kind!r} part is not carried (text and images only)")


def _content(where: str, raw: Any) -> str | list[Part] | None:
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        return [_part(f"{where}[{i}]", p) for i, p in enumerate(raw)]
    raise _fail(where, f"content must be a string or a list of parts, not {type(raw).__name__}")


def _text_only(where: str, content: str | list[Part] | None) -> str | None:
    """Assistant history is text on both APIs (Chat's assistant parts are text too)."""
    if content is None or isinstance(content, str):
        return content
    if not all(isinstance(p, TextPart) for p in content):
        raise _fail(where, "an assistant message holds text only")
    return "".join(p.text for p in content if isinstance(p, TextPart))


def _messages(raw: Any, notes: list[str]) -> list[Message]:
    if isinstance(raw, str):
        return [Message(role="user", content=raw)]
    if not isinstance(raw, list) or not raw:
        raise _fail("input", "a string or a list of input items is required")
    out: list[Message] = []
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, Mapping):
            raise _fail(where, f"an input item must be an object, not {type(item).__name__}")
        kind = item.get("type", "message")
        if kind == "message":
            unknown = sorted(set(item) - _ITEM_KEYS)
            if unknown:
                raise _fail(f"{where}.{unknown[0]}", "is not a message field; remove it")
            role = item.get("role")
            if role not in ("system", "developer", "user", "assistant"):
                raise _fail(f"{where}.role", f"{role!r} is not a message role")
            content = _content(f"{where}.content", item.get("content"))
            if role == "assistant":
                content = _text_only(f"{where}.content", content)
            out.append(Message(role=role, content=content))
        elif kind == "function_call":
            call = ToolCall(
                id=str(item.get("call_id", "")),
                name=str(item.get("name", "")),
                arguments=str(item.get("arguments", "")),
            )
            last = out[-1] if out else None
            # a reply's calls follow its text as separate items: they are one chat message
            if last is not None and last.role == "assistant":
                out[-1] = last.model_copy(update={"tool_calls": (*last.tool_calls, call)})
            else:
                out.append(Message(role="assistant", tool_calls=(call,)))
        elif kind == "function_call_output":
            output = _content(f"{where}.output", item.get("output"))
            out.append(Message(role="tool", content=output, tool_call_id=str(item.get("call_id"))))
        elif kind == "reasoning":
            notes.append(
                f"{where}: reasoning item dropped (opaque, tied to the run that made it; "
                "a reasoning model makes its own)"
            )
        elif kind == "item_reference":
            raise _fail(where, "an item_reference points at an item the server holds")
        else:
            raise _fail(where, f"a {kind!r} item is not carried (hosted tools are not compared)")
    return out


def _tools(raw: Any) -> tuple[FunctionTool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail("tools", "a list of tools is required")
    out = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, Mapping) else None
            raise _fail(f"tools[{i}]", f"a {kind!r} tool is not carried (function tools only)")
        # Responses makes a function strict unless told otherwise (Chat does the opposite)
        out.append(function_tool(_fail, f"tools[{i}]", tool, strict=True))
    return tuple(out)


def _tool_choice(raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping) and raw.get("type") == "function" and raw.get("name"):
        return str(raw["name"])
    raise _fail("tool_choice", "only auto, none, required or one function are carried")


def _text(raw: Any, params: dict[str, Any]) -> OutputFormat | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _fail("text", "an object with format and verbosity is required")
    unknown = sorted(set(raw) - {"format", "verbosity"})
    if unknown:
        raise _fail(f"text.{unknown[0]}", "is not carried; remove it")
    if raw.get("verbosity") is not None:
        check_enum(_fail, "text.verbosity", raw["verbosity"], VERBOSITIES)
        params["verbosity"] = raw["verbosity"]
    fmt = raw.get("format")
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if fmt is None or kind == "text":
        return None
    if kind == "json_object":
        return JsonObjectFormat()
    if kind == "json_schema" and isinstance(fmt, Mapping):
        return json_schema_format(fmt)
    raise _fail(
        "text.format", f"type {kind!r} is not carried; use text, json_object or json_schema"
    )


def _reasoning(raw: Any, params: dict[str, Any], notes: list[str]) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise _fail("reasoning", "an object such as {effort: low} is required")
    if raw.get("effort") is not None:
        check_enum(_fail, "reasoning.effort", raw["effort"], REASONING_EFFORTS)
        params["reasoning_effort"] = raw["effort"]
    for key in sorted(set(raw) - {"effort"}):
        if raw[key] is not None:
            notes.append(f"reasoning.{key} dropped (a reasoning summary is extra output)")


def neutral_from_responses_kwargs(
    kwargs: Mapping[str, Any],
) -> tuple[NeutralRequest, list[str]]:
    """Parse a ``responses.create`` body into a :class:`NeutralRequest` and notes naming what
    was dropped (raises TranslationError for what cannot be carried, naming the field)."""
    for name, why in _SERVER_STATE.items():
        if kwargs.get(name) is not None:
            raise _fail(name, f"not carried: {why}")
    notes: list[str] = []
    params: dict[str, Any] = {}
    for name, value in kwargs.items():
        if value is None or name in _STRUCTURAL:
            continue
        if name in _PARAMS:
            if name == "service_tier":
                check_enum(_fail, name, value, SERVICE_TIERS)
            params[name] = value
        elif name == "reasoning":
            _reasoning(value, params, notes)
        elif name == "include":
            extra = [v for v in value if v != _OWN_INCLUDE] if isinstance(value, list) else value
            if extra:
                notes.append(f"include {extra} dropped (extra output the comparison does not read)")
        elif name in _DROPPED:
            no_op = _DROPPED[name]
            if no_op is None or not no_op(value):
                notes.append(f"{name} dropped (not carried by the harness's request model)")
        else:
            raise _fail(name, "is not a Responses parameter the harness carries; remove it")
    # the API's own defaults where the body is silent
    params["stream"] = bool(params.get("stream", False))
    params.setdefault("store", True)
    model = model_name(_fail, kwargs)
    messages = _messages(kwargs.get("input"), notes)
    instructions = kwargs.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _fail("instructions", "a string is required")
        messages.insert(0, Message(role="system", content=instructions))
    with neutral_fields(_fail):
        output_format = _text(kwargs.get("text"), params)
        request = NeutralRequest(
            model=model,
            messages=tuple(messages),
            params=Params(**params),
            tools=_tools(kwargs.get("tools")),
            tool_choice=_tool_choice(kwargs.get("tool_choice")),
            output_format=output_format,
        )
    return request, notes
