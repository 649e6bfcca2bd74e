"""Live Chat Completions call kwargs → a :class:`NeutralRequest` → Responses kwargs (pure).

Shadow and canary mode start from what an application passes to
``client.chat.completions.create(...)``, not from a scenario file. This module parses those
keyword arguments into the harness's neutral request and hands it to
:func:`harness.translate.convert.to_responses_kwargs`, so production traffic goes through exactly
the translation scenario runs test. Anything without a faithful Responses equivalent raises
:class:`~harness.errors.TranslationError` naming the parameter; the shadow client records that as a
shadow error and never raises it to the application.

Deliberate differences from scenario translation (a mirrored call must not change the outcome
of the real one, and production code uses a few spellings scenarios do not):

- ``store`` is ignored: the shadow Responses call is always sent with ``store: false``, so the
  provider keeps no copy of mirrored traffic.
- ``stream_options`` is ignored: a Responses stream reports usage in its terminal event anyway.
- ``max_tokens`` (deprecated on chat) is accepted as ``max_output_tokens``.
- ``n: 1`` is accepted (it is the default); any other ``n`` is rejected. Likewise the no-op
  defaults of parameters Responses lacks (``logprobs=False``, ``frequency_penalty=0``,
  ``presence_penalty=0``, ``modalities=["text"]``, ``logit_bias={}``…) are accepted: many apps
  send them, and refusing those calls would bias the shadow sample toward apps that do not.
- Enum values (``reasoning_effort``, ``verbosity``, ``service_tier``, image ``detail``) are the
  openai SDK's own (:mod:`harness.translate.enums`); an unknown one is a one-line error.
- SDK request options (``extra_headers``, ``extra_query``, ``timeout``) are not part of the
  request body and are dropped; a non-empty ``extra_body`` is rejected (unknown parameters).
- ``safety_identifier``, ``prompt_cache_retention``, ``prompt_cache_options`` and
  ``moderation`` have the same name and shape on both APIs; they are copied verbatim by
  :func:`shadow_responses_kwargs` (the neutral model does not carry them).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import openai
from pydantic import BaseModel

from harness.errors import TranslationError
from harness.translate.convert import UNMAPPABLE_CHAT_PARAMS, to_responses_kwargs
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

#: Parameters copied unchanged to the Responses call (same name and shape on both APIs).
SAME_NAME_PARAMS = frozenset(
    {"safety_identifier", "prompt_cache_retention", "prompt_cache_options", "moderation"}
)
#: SDK request options that are not part of the request body.
_SDK_OPTIONS = frozenset({"extra_headers", "extra_query", "timeout"})
#: Chat parameters the shadow call deliberately does not forward (see the module docstring).
_IGNORED = frozenset({"store", "stream_options"})
_PARAMS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_completion_tokens": "max_output_tokens",
    "max_tokens": "max_output_tokens",
    "reasoning_effort": "reasoning_effort",
    "verbosity": "verbosity",
    "prompt_cache_key": "prompt_cache_key",
    "metadata": "metadata",
    "stream": "stream",
    "parallel_tool_calls": "parallel_tool_calls",
    "service_tier": "service_tier",
    "user": "user",
}
_STRUCTURAL = frozenset(
    {"model", "messages", "tools", "tool_choice", "response_format", "n", "extra_body"}
)
_MESSAGE_KEYS = frozenset(
    {
        "role",
        "content",
        "tool_calls",
        "tool_call_id",
        "annotations",
        "refusal",
        "audio",
        "function_call",
        "name",
    }
)


#: Chat parameters without a Responses equivalent whose value here changes nothing: dropped.
_NO_OP_DEFAULTS: dict[str, Callable[[Any], bool]] = {
    "logprobs": lambda v: v is False,
    "top_logprobs": lambda v: v == 0 and v is not False,
    "frequency_penalty": lambda v: v == 0 and not isinstance(v, bool),
    "presence_penalty": lambda v: v == 0 and not isinstance(v, bool),
    "modalities": lambda v: isinstance(v, list | tuple) and list(v) == ["text"],
    "logit_bias": lambda v: isinstance(v, Mapping) and not v,
    "stop": lambda v: isinstance(v, list | tuple) and not v,
}
#: Parameters checked against the SDK's values before the neutral model sees them.
_ENUMS: dict[str, tuple[str, ...]] = {
    "reasoning_effort": REASONING_EFFORTS,
    "verbosity": VERBOSITIES,
    "service_tier": SERVICE_TIERS,
}


def _fail(param: str, message: str) -> TranslationError:
    return TranslationError(f"responses: {param}: {message}")


def _given(value: Any) -> bool:
    """False for None and the SDK's NOT_GIVEN / omit sentinels (both mean "not sent")."""
    return value is not None and not isinstance(value, openai.NotGiven | openai.Omit)


def _plain(value: Any) -> Any:
    """A message or part as a plain dict (SDK models such as ChatCompletionMessage included)."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True)
    return value


# --------------------------------------------------------------------------- messages


def _part(where: str, raw: Any) -> Part:
    part = _plain(raw)
    if not isinstance(part, Mapping):
        raise _fail(where, f"a content part must be an object, not {type(part).__name__}")
    kind = part.get("type")
    if kind == "text":
        return TextPart(text=str(part.get("text", "")))
    if kind == "image_url":
        image = _plain(part.get("image_url")) or {}
        if not isinstance(image, Mapping) or not image.get("url"):
            raise _fail(where, "image_url needs {url, detail}; give the image URL")
        return image_part(_fail, f"{where}.image_url", str(image["url"]), image.get("detail"))
    if kind == "input_audio":
        raise _fail(
            where,
            "audio input is not translated to Responses by the harness; shadow "
            "only text and image calls",
        )
    if kind == "file":
        raise _fail(
            where,
            "file parts are not translated to Responses by the harness (the "
            "input_file shape differs); shadow only text and image calls",
        )
    if kind == "refusal":
        raise _fail(
            where,
            "an assistant refusal part has no Responses input form; drop the "
            "refused turn from the history",
        )
    raise _fail(where, f"content part type {kind!r} is not translated; use text or image_url")


def _content(where: str, raw: Any) -> str | list[Part] | None:
    if not _given(raw):
        return None
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Iterable):
        return [_part(f"{where}[{i}]", p) for i, p in enumerate(raw)]
    raise _fail(where, f"content must be a string or a list of parts, not {type(raw).__name__}")


def _tool_call(where: str, raw: Any) -> ToolCall:
    call = _plain(raw)
    if not isinstance(call, Mapping) or call.get("type", "function") != "function":
        raise _fail(
            where,
            "only function tool calls are translated; custom tool calls have a "
            "different Responses item",
        )
    fn = _plain(call.get("function")) or {}
    return ToolCall(
        id=str(call.get("id", "")),
        name=str(fn.get("name", "")),
        arguments=str(fn.get("arguments", "")),
    )


def _message(i: int, raw: Any) -> Message:
    where = f"messages[{i}]"
    msg = _plain(raw)
    if not isinstance(msg, Mapping):
        raise _fail(where, f"a message must be an object, not {type(msg).__name__}")
    unknown = sorted(set(msg) - _MESSAGE_KEYS)
    if unknown:
        raise _fail(
            f"{where}.{unknown[0]}",
            "is not a Chat Completions message field the harness translates; remove it",
        )
    role = msg.get("role")
    if role == "function":
        raise _fail(f"{where}.role", "function messages are deprecated; use tool messages")
    if role not in ("system", "developer", "user", "assistant", "tool"):
        raise _fail(f"{where}.role", f"{role!r} is not a chat role")
    if _given(msg.get("name")):
        raise _fail(
            f"{where}.name",
            "Responses input messages have no participant name; "
            "remove name (or put it in the text)",
        )
    for key in ("audio", "function_call", "refusal"):
        if _given(msg.get(key)):
            raise _fail(
                f"{where}.{key}",
                f"an assistant {key} has no Responses input "
                "equivalent here; remove it from the history",
            )
    calls = tuple(
        _tool_call(f"{where}.tool_calls[{j}]", c) for j, c in enumerate(msg.get("tool_calls") or ())
    )
    tool_call_id = msg.get("tool_call_id")
    # Citations of an earlier reply are output metadata; chat does not read them back either.
    return Message(
        role=role,
        content=_content(f"{where}.content", msg.get("content")),
        tool_calls=calls,
        tool_call_id=str(tool_call_id) if _given(tool_call_id) else None,
    )


# --------------------------------------------------------------------------- tools and formats


def _tools(raw: Any) -> tuple[FunctionTool, ...]:
    out = []
    for i, item in enumerate(raw or ()):
        tool = _plain(item)
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            raise _fail(
                f"tools[{i}]",
                "only function tools are translated; custom tools have a different Responses shape",
            )
        fn = _plain(tool.get("function")) or {}
        out.append(function_tool(_fail, f"tools[{i}].function", fn, strict=False, given=_given))
    return tuple(out)


def _tool_choice(raw: Any) -> str | None:
    if not _given(raw):
        return None
    if isinstance(raw, str):
        return raw
    choice = _plain(raw)
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return str((_plain(choice.get("function")) or {}).get("name", ""))
    raise _fail(
        "tool_choice",
        "only auto, none, required or one function are translated "
        "(allowed_tools and custom choices are not)",
    )


def _output_format(raw: Any) -> OutputFormat | None:
    fmt = _plain(raw)
    if not _given(fmt):
        return None
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return JsonObjectFormat()
    if kind == "json_schema":
        return json_schema_format(_plain(fmt.get("json_schema")) or {}, given=_given)
    raise _fail(
        "response_format", f"type {kind!r} is not translated; use text, json_object or json_schema"
    )


# --------------------------------------------------------------------------- entry points


def neutral_from_chat_kwargs(
    kwargs: Mapping[str, Any], *, ignore: Collection[str] = ()
) -> NeutralRequest:
    """Parse ``chat.completions.create`` kwargs into a :class:`NeutralRequest`.

    ``ignore`` names parameters to drop instead of rejecting (for example ``seed`` when a team
    accepts that the shadow call runs without it). Raises TranslationError for anything that
    has no Responses equivalent, naming the parameter and the fix.
    """
    params: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name in ignore or name in _SDK_OPTIONS or name in _IGNORED or not _given(value):
            continue
        if name in _NO_OP_DEFAULTS and _NO_OP_DEFAULTS[name](value):
            continue
        if name in _ENUMS:
            check_enum(_fail, name, value, _ENUMS[name])
        if name in _PARAMS:
            target = _PARAMS[name]
            if target in params:
                raise _fail(
                    name,
                    "max_tokens and max_completion_tokens are both set; keep max_completion_tokens",
                )
            params[target] = dict(value) if name == "metadata" else value
        elif name in _STRUCTURAL or name in SAME_NAME_PARAMS:
            continue
        elif name in UNMAPPABLE_CHAT_PARAMS:
            raise _fail(name, UNMAPPABLE_CHAT_PARAMS[name])
        else:
            raise _fail(
                name,
                "is not a Chat Completions parameter the harness translates; "
                "remove it or list it in the shadow client's ignore_params",
            )
    if "n" not in ignore and _given(kwargs.get("n")) and kwargs["n"] != 1:
        raise _fail("n", UNMAPPABLE_CHAT_PARAMS["n"])
    if "extra_body" not in ignore and _given(kwargs.get("extra_body")) and kwargs["extra_body"]:
        raise _fail(
            "extra_body",
            "carries parameters the harness cannot see into; pass them "
            "as keyword arguments or list extra_body in ignore_params",
        )
    # Params default to streaming; a mirrored call streams exactly when the real one does.
    params["stream"] = bool(params.get("stream", False))
    model = model_name(_fail, kwargs)
    messages = kwargs.get("messages")
    if not isinstance(messages, Iterable) or isinstance(messages, str | bytes | Mapping):
        raise _fail("messages", "a list of messages is required")
    with neutral_fields(_fail):
        return NeutralRequest(
            model=model,
            messages=tuple(_message(i, m) for i, m in enumerate(messages)),
            params=Params(**params),
            tools=_tools(kwargs.get("tools") if "tools" not in ignore else None),
            tool_choice=_tool_choice(
                kwargs.get("tool_choice") if "tool_choice" not in ignore else None
            ),
            output_format=_output_format(
                kwargs.get("response_format") if "response_format" not in ignore else None
            ),
        )


def shadow_responses_kwargs(
    kwargs: Mapping[str, Any], *, ignore: Collection[str] = ()
) -> dict[str, Any]:
    """The ``responses.create`` kwargs that mirror a ``chat.completions.create`` call.

    Always ``store: false`` (see the module docstring). Raises TranslationError.
    """
    neutral = neutral_from_chat_kwargs(kwargs, ignore=ignore)
    neutral = neutral.model_copy(
        update={"params": neutral.params.model_copy(update={"store": False})}
    )
    out = to_responses_kwargs(neutral)
    for name in sorted(SAME_NAME_PARAMS - set(ignore)):
        value = kwargs.get(name)
        if _given(value):
            out[name] = value
    return out
