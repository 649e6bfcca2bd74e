"""The steps both wire parsers share (``from_wire``): one meaning on Chat kwargs and Responses
bodies, each API's own defaults, and errors that name the field in the caller's body."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import TranslationError
from harness.translate.from_chat import neutral_from_chat_kwargs
from harness.translate.from_responses import neutral_from_responses_kwargs
from harness.translate.request import ImagePart, JsonSchemaFormat, NeutralRequest

PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}}
SCHEMA = {"name": "city", "schema": PARAMS, "description": "A city."}


def _chat(
    tool: dict[str, Any] | None = None, part: dict[str, Any] | None = None, **extra: Any
) -> NeutralRequest:
    content: Any = [{"type": "text", "text": "hi"}, *([part] if part else [])]
    kwargs: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": content}]}
    if tool is not None:
        kwargs["tools"] = [{"type": "function", "function": tool}]
    return neutral_from_chat_kwargs({**kwargs, **extra})


def _responses(
    tool: dict[str, Any] | None = None, part: dict[str, Any] | None = None, **extra: Any
) -> NeutralRequest:
    content: Any = [{"type": "input_text", "text": "hi"}, *([part] if part else [])]
    body: dict[str, Any] = {"model": "m", "input": [{"role": "user", "content": content}]}
    if tool is not None:
        body["tools"] = [{"type": "function", **tool}]
    request, _ = neutral_from_responses_kwargs({**body, **extra})
    return request


@pytest.mark.parametrize(("given", "chat", "responses"), [(None, False, True), (True, True, True)])
def test_a_function_tool_takes_its_apis_strict_default(
    given: bool | None, chat: bool, responses: bool
) -> None:
    tool = {"name": "get_weather", "parameters": PARAMS, "description": "Weather."}
    if given is not None:
        tool["strict"] = given
    for parse, strict in ((_chat, chat), (_responses, responses)):
        (read,) = parse(tool).tools
        assert (read.name, read.strict, read.parameters, read.description) == (
            "get_weather",
            strict,
            PARAMS,
            "Weather.",
        )
    (explicit,) = _responses({**tool, "strict": False}).tools
    assert explicit.strict is False


def test_a_nameless_function_tool_is_an_error_naming_its_field() -> None:
    with pytest.raises(TranslationError, match=r"^responses: tools\[0\]\.function\.name: "):
        _chat({"parameters": PARAMS})
    with pytest.raises(TranslationError, match=r"^tools\[0\]\.name: "):
        _responses({"parameters": PARAMS, "name": ""})


def test_a_json_schema_format_reads_the_same_on_both_apis() -> None:
    chat = _chat(response_format={"type": "json_schema", "json_schema": SCHEMA})
    responses = _responses(text={"format": {"type": "json_schema", **SCHEMA}})
    expected = JsonSchemaFormat(name="city", schema=PARAMS, strict=False, description="A city.")
    assert chat.output_format == responses.output_format == expected


def test_an_image_parts_detail_defaults_to_auto_and_a_bad_one_names_its_field() -> None:
    chat = _chat(part={"type": "image_url", "image_url": {"url": "https://x/a.png"}})
    responses = _responses(part={"type": "input_image", "image_url": "https://x/a.png"})
    image = ImagePart(url="https://x/a.png", detail="auto")
    for request in (chat, responses):
        content = request.messages[0].content
        assert isinstance(content, list | tuple) and content[1] == image
    with pytest.raises(TranslationError, match=r"messages\[0\]\.content\[1\]\.image_url\.detail"):
        _chat(part={"type": "image_url", "image_url": {"url": "u", "detail": "huge"}})
    with pytest.raises(TranslationError, match=r"^input\[0\]\.content\[1\]\.detail: 'huge'"):
        _responses(part={"type": "input_image", "image_url": "u", "detail": "huge"})


@pytest.mark.parametrize("parse", [_chat, _responses])
def test_a_missing_model_is_named(parse: Any) -> None:
    with pytest.raises(TranslationError, match=r"model: a model name is required"):
        parse(model="")
