"""Request checks both endpoints share, with OpenAI's wording where it is known.

The emulator rejects what OpenAI rejects for the parameters the harness uses (unknown top-level
keys, wrong types, out-of-range values, sampling parameters on reasoning models, unknown
models) — a fast, hand-written subset of the spec: full spec validation
(:func:`harness.translate.spec.request_problems`) is far too slow for the request path, and the
tests check the emulator against it instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.emulator.errors import (
    ApiError,
    invalid,
    missing_parameter,
    model_not_found,
    unknown_parameter,
    unsupported_parameter,
)
from harness.emulator.models import ModelInfo, find_model
from harness.emulator.prompt import (
    Api,
    GenRequest,
    OutputFormat,
    Segment,
    ToolSpec,
    leading_instructions,
    prompt_prefix,
)
from harness.translate.enums import REASONING_EFFORTS, VERBOSITIES, one_of

#: Top-level request keys per endpoint (``CreateChatCompletionRequest`` / ``CreateResponse`` in
#: the OpenAPI spec; a test keeps these in step with
#: ``harness.translate.spec.top_level_properties``).
CHAT_KEYS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "messages",
        "metadata",
        "modalities",
        "model",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
RESPONSES_KEYS = frozenset(
    {
        "background",
        "context_management",
        "conversation",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    }
)

_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    str: "a string",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def type_error(param: str, expected: str, value: Any) -> ApiError:
    """400 for a value of the wrong JSON type."""
    got = _TYPE_NAMES.get(type(value), "a value")
    return invalid(
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def check_keys(body: dict[str, Any], endpoint: str) -> None:
    """Reject top-level keys the endpoint does not define."""
    allowed = CHAT_KEYS if endpoint == "chat" else RESPONSES_KEYS
    for key in body:
        if key not in allowed:
            raise unknown_parameter(key, endpoint)


def model_of(body: dict[str, Any]) -> ModelInfo:
    """The requested model, or 400 (missing) / 404 (unknown)."""
    name = body.get("model")
    if name is None:
        raise invalid(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    if not isinstance(name, str):
        raise type_error("model", "a string", name)
    model = find_model(name)
    if model is None:
        raise model_not_found(name)
    return model


def opt_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    """A boolean parameter (null means the default)."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise type_error(key, "a boolean", value)
    return value


def stream_of(body: dict[str, Any]) -> bool:
    """``stream``; both APIs refuse ``stream_options`` on a request that does not stream."""
    stream = opt_bool(body, "stream", False)
    if body.get("stream_options") is not None and not stream:
        raise invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    return stream


def _out_of_range(key: str, kind: str, value: Any, *, below: bool, limit: str) -> ApiError:
    """OpenAI's 400 for a number outside its range (``kind``: integer or decimal)."""
    side, code, op = (
        ("below minimum", "below_min", ">=") if below else ("above maximum", "above_max", "<=")
    )
    return invalid(
        f"Invalid '{key}': {kind} {side} value. Expected a value {op} {limit}, "
        f"but got {value} instead.",
        param=key,
        code=f"{kind}_{code}_value",
    )


def opt_int(body: dict[str, Any], key: str, minimum: int) -> int | None:
    """An integer parameter at least ``minimum`` (null means unset)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(key, "an integer", value)
    if value < minimum:
        raise _out_of_range(key, "integer", value, below=True, limit=str(minimum))
    return value


def opt_number(body: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    """A number parameter within [lo, hi] (null means unset)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise type_error(key, "a decimal", value)
    if value < lo:
        raise _out_of_range(key, "decimal", value, below=True, limit=f"{lo:g}")
    if value > hi:
        raise _out_of_range(key, "decimal", value, below=False, limit=f"{hi:g}")
    return float(value)


def sampling(body: dict[str, Any], model: ModelInfo, endpoint: str) -> float:
    """Check ``temperature``/``top_p``; returns the temperature the reply is sampled at."""
    temperature = opt_number(body, "temperature", 0.0, 2.0)
    top_p = opt_number(body, "top_p", 0.0, 1.0)
    if model.reasoning:
        for key, value in (("temperature", temperature), ("top_p", top_p)):
            if value is None:
                continue
            if endpoint == "chat" and value == 1.0:
                continue  # chat accepts the default value on reasoning models
            if endpoint == "chat":
                raise invalid(
                    f"Unsupported value: '{key}' does not support {value:g} with this "
                    "model. Only the default (1) value is supported.",
                    param=key,
                    code="unsupported_value",
                )
            raise invalid(
                f"Unsupported parameter: '{key}' is not supported with this model.",
                param=key,
                code="unsupported_parameter",
            )
        return 1.0
    return 1.0 if temperature is None else temperature


def function_tool(raw: Any, where: str, *, nested: bool) -> ToolSpec:
    """A function tool in chat (``{type, function: {...}}``) or responses (flat) shape."""
    if not isinstance(raw, dict):
        raise type_error(where, "an object", raw)
    if raw.get("type") != "function":
        kind = raw.get("type")
        raise invalid(
            f"Tool type '{kind}' is not supported by this emulator (not OpenAI); "
            "only function tools are.",
            param=f"{where}.type",
            code="unsupported_by_emulator",
        )
    spec = raw.get("function") if nested else raw
    if not isinstance(spec, dict):
        raise missing_parameter(f"{where}.function")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        prefix = f"{where}.function" if nested else where
        raise missing_parameter(f"{prefix}.name")
    params = spec.get("parameters")
    if params is None:
        params = {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise type_error(f"{where}.parameters", "an object", params)
    strict = spec.get("strict")
    description = spec.get("description")
    return ToolSpec(
        name=name,
        description=description if isinstance(description, str) else "",
        parameters=params,
        strict=strict if isinstance(strict, bool) else None,
    )


def tools_of(body: dict[str, Any], *, nested: bool) -> tuple[list[ToolSpec], str, str | None]:
    """(tools, tool choice mode, forced tool name) of a request in either API shape."""
    raw_tools = body.get("tools") or []
    if not isinstance(raw_tools, list):
        raise type_error("tools", "an array", raw_tools)
    tools = [function_tool(t, f"tools[{i}]", nested=nested) for i, t in enumerate(raw_tools)]
    mode, forced = tool_choice(body.get("tool_choice"), tools, nested=nested)
    return tools, mode, forced


def tool_choice(raw: Any, tools: list[ToolSpec], *, nested: bool) -> tuple[str, str | None]:
    """(mode, forced tool name) from ``tool_choice`` in either API shape."""
    if raw is None:
        return "auto", None
    if not tools:
        raise invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
            "'tools' are specified.",
            param="tool_choice",
        )
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise invalid(
                f"Invalid value: '{raw}'. Supported values are: 'none', 'auto', and 'required'.",
                param="tool_choice",
                code="invalid_value",
            )
        return raw, None
    if isinstance(raw, dict) and raw.get("type") == "function":
        fn = raw.get("function") if nested else raw
        name = fn.get("name") if isinstance(fn, dict) else None
        if not any(t.name == name for t in tools):
            raise invalid(
                f"Invalid value for 'tool_choice': function '{name}' is not among the tools.",
                param="tool_choice",
            )
        return "required", str(name)
    if isinstance(raw, dict) and raw.get("type") == "allowed_tools":
        # chat nests the settings under "allowed_tools"; Responses has them beside "type"
        spec = raw.get("allowed_tools") if nested else raw
        where = "tool_choice.allowed_tools" if nested else "tool_choice"
        if not isinstance(spec, dict):
            raise missing_parameter(where)
        mode = spec.get("mode")
        if mode not in ("auto", "required"):
            raise invalid(
                f"Invalid value: '{mode}'. Supported values are: 'auto' and 'required'.",
                param=f"{where}.mode",
                code="invalid_value",
            )
        return str(mode), None
    raise invalid("Invalid value for 'tool_choice'.", param="tool_choice")


def json_schema_format(spec: Any, where: str) -> OutputFormat:
    """A ``json_schema`` format: name and schema are required."""
    if not isinstance(spec, dict):
        raise type_error(where, "an object", spec)
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise missing_parameter(f"{where}.name")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise missing_parameter(f"{where}.schema")
    return OutputFormat("json_schema", name, schema)


def require_json_word(
    output: OutputFormat | None, said: Iterable[Segment], message: str, param: str
) -> None:
    """OpenAI's 400 for ``json_object`` output asked of an input that never says "json"."""
    asks_json = output is not None and output.kind == "json_object"
    if asks_json and not any("json" in s.text.lower() for s in said if not s.placeholder_tokens):
        raise invalid(message, param=param)


def output_format(raw: Any, where: str, *, schema_key: str | None) -> OutputFormat | None:
    """Chat's ``response_format`` or Responses' ``text.format`` (at ``where``): ``None`` for
    plain text; a ``json_schema`` format's name and schema sit under ``schema_key`` (Chat:
    ``json_schema``) or in the format object itself (Responses: ``None``)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise type_error(where, "an object", raw)
    kind = raw.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind == "json_schema":
        if schema_key is None:
            return json_schema_format(raw, where)
        return json_schema_format(raw.get(schema_key), f"{where}.{schema_key}")
    raise invalid(
        f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and 'json_schema'.",
        param=f"{where}.type",
        code="invalid_value",
    )


def gen_request(
    api: Api,
    body: dict[str, Any],
    model: ModelInfo,
    conversation: list[Segment],
    tools: tuple[list[ToolSpec], str, str | None],
    output: OutputFormat | None,
    *,
    instructions: str | None = None,
    **fields: Any,
) -> GenRequest:
    """The :class:`GenRequest` both adapters end with; the fields that differ come as ``fields``.

    ``tools`` is what :func:`tools_of` returned. The prompt prefix is the instructions (the
    Responses ``instructions``, then the conversation's leading system/developer messages),
    the tools and the output format.
    """
    specs, mode, forced = tools
    lead = [Segment("system", instructions)] if instructions else []
    return GenRequest(
        api=api,
        model=model,
        body=body,
        prefix=prompt_prefix(lead + leading_instructions(conversation), specs, output),
        conversation=conversation,
        tools=specs,
        tool_choice=mode,
        forced_tool=forced,
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls", True),
        output=output,
        prompt_cache_key=body.get("prompt_cache_key"),
        cache_ttl_s=cache_ttl(body),
        **fields,
    )


EXTENDED_RETENTION_S = 86400.0
MIN_TTL_S = {"30m": 1800.0}


def cache_ttl(body: dict[str, Any]) -> float | None:
    """How long this request's prefixes stay cached; None: the profile's in-memory TTL.

    The spec: ``prompt_cache_retention`` defaults to ``24h`` (organizations without zero data
    retention; ``in_memory`` is the ZDR default), and ``prompt_cache_options.ttl`` is a
    *minimum* lifetime (``30m``, its only value and default) independent of the retention.
    """
    retention = body.get("prompt_cache_retention")
    if retention is not None and retention not in ("in_memory", "24h"):
        raise invalid(
            f"Invalid value: '{retention}'. Supported values are: 'in_memory' and '24h'.",
            param="prompt_cache_retention",
            code="invalid_value",
        )
    options = body.get("prompt_cache_options")
    floor = MIN_TTL_S.get(options.get("ttl", "")) if isinstance(options, dict) else None
    if retention == "in_memory":
        return floor
    return max(EXTENDED_RETENTION_S, floor or 0.0)


def enum_value(value: Any, param: str, values: tuple[str, ...]) -> str | None:
    """``value`` if it is one of ``values`` (null means unset), else OpenAI's 400."""
    if value is None:
        return None
    if value not in values:
        raise invalid(
            f"Invalid value: '{value}'. Supported values are: {one_of(values)}.",
            param=param,
            code="invalid_value",
        )
    return str(value)


def effort_of(raw: Any, model: ModelInfo, param: str) -> str | None:
    """``reasoning_effort`` / ``reasoning.effort``: a known value, on a reasoning model only."""
    effort = enum_value(raw, param, REASONING_EFFORTS)
    if effort is not None and not model.reasoning:
        raise unsupported_parameter(param)
    return effort


def verbosity_of(raw: Any, model: ModelInfo, param: str) -> str | None:
    """``verbosity`` / ``text.verbosity``: a known value, on a model that supports it."""
    verbosity = enum_value(raw, param, VERBOSITIES)
    if verbosity is not None and not model.verbosity:
        raise unsupported_parameter(param)
    return verbosity


def metadata_of(body: dict[str, Any]) -> dict[str, str] | None:
    """``metadata``: at most 16 string values (keys ≤ 64, values ≤ 512 characters)."""
    raw = body.get("metadata")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise type_error("metadata", "an object", raw)
    if len(raw) > 16:
        raise invalid(
            f"Invalid 'metadata': too many properties. Expected an object with at most 16 "
            f"properties, but got an object with {len(raw)} properties instead.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, value in raw.items():
        if not isinstance(value, str):
            raise type_error(f"metadata.{key}", "a string", value)
        if len(key) > 64:  # OpenAI names the object for a long key, the key for a long value
            raise _too_long("metadata", 64, len(key))
        if len(value) > 512:
            raise _too_long(f"metadata.{key}", 512, len(value))
    return raw


def _too_long(param: str, limit: int, length: int) -> ApiError:
    return invalid(
        f"Invalid '{param}': string too long. Expected a string with maximum length {limit}, "
        f"but got a string with length {length} instead.",
        param=param,
        code="string_above_max_length",
    )


def text_of_parts(parts: Any, where: str, *, allowed: frozenset[str]) -> tuple[str, list[str]]:
    """(joined text, image identities) of a content part list; strings pass through."""
    if isinstance(parts, str):
        return parts, []
    if not isinstance(parts, list):
        raise type_error(where, "a string or an array", parts)
    texts: list[str] = []
    images: list[str] = []
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise type_error(f"{where}[{i}]", "an object", part)
        kind = part.get("type")
        if kind not in allowed:
            raise invalid(
                f"Invalid value: '{kind}'. Supported values are: "
                + ", ".join(f"'{a}'" for a in sorted(allowed))
                + ".",
                param=f"{where}[{i}].type",
                code="invalid_value",
            )
        if "text" in part or kind in ("text", "input_text", "output_text", "refusal"):
            text = part.get("text", part.get("refusal", ""))
            if not isinstance(text, str):
                raise type_error(f"{where}[{i}].text", "a string", text)
            texts.append(text)
        else:
            images.append(_image_identity(part, f"{where}[{i}]"))
    return "\n".join(texts), images


def _image_identity(part: dict[str, Any], where: str) -> str:
    image = part.get("image_url")
    if isinstance(image, dict):  # chat: {"image_url": {"url", "detail"}}
        url, detail = image.get("url"), image.get("detail") or "auto"
    else:  # responses: {"image_url": "...", "detail": ...}
        url, detail = (
            image or part.get("file_id") or part.get("file_data"),
            part.get("detail") or "auto",
        )
    if not isinstance(url, str) or not url:
        raise missing_parameter(f"{where}.image_url")
    return f"{detail}\x1f{url}"
