"""The steps both wire-body parsers take to build a :class:`NeutralRequest` (pure).

:mod:`harness.translate.from_chat` and :mod:`harness.translate.from_responses` read different
bodies into the same neutral request; where the two APIs carry a value the same way (a function
tool, a JSON schema format, an image part, an enum value, the model name) it is read here once,
so both parsers keep one meaning for it. Each parser passes its own ``fail``, which spells the
one-line error for its audience.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError

from harness.errors import TranslationError, first_problem
from harness.translate.enums import IMAGE_DETAILS
from harness.translate.request import FunctionTool, ImagePart, JsonSchemaFormat

__all__ = [
    "Fail",
    "check_enum",
    "function_tool",
    "image_part",
    "json_schema_format",
    "model_name",
    "neutral_fields",
]

#: Makes the parser's error for a field (its path) and what is wrong with it.
Fail = Callable[[str, str], TranslationError]


def _not_none(value: Any) -> bool:
    return value is not None


def check_enum(fail: Fail, param: str, value: Any, values: tuple[str, ...]) -> None:
    if value not in values:
        raise fail(
            param, f"{value!r} is not a value the API accepts; use one of: {', '.join(values)}"
        )


def model_name(fail: Fail, body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise fail("model", "a model name is required")
    return model


def image_part(fail: Fail, where: str, url: str, detail: Any) -> ImagePart:
    """An image part; both APIs default its detail to ``auto``."""
    detail = detail or "auto"
    check_enum(fail, f"{where}.detail", detail, IMAGE_DETAILS)
    return ImagePart(url=url, detail=detail)


def function_tool(
    fail: Fail,
    where: str,
    fn: Mapping[str, Any],
    *,
    strict: bool,
    given: Callable[[Any], bool] = _not_none,
) -> FunctionTool:
    """A function tool from its name/description/parameters/strict; ``strict`` is the API's
    default where the body does not say (Chat: false, Responses: true)."""
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise fail(f"{where}.name", "a function tool needs a name; give the function's name")
    values: dict[str, Any] = {
        "name": name,
        "strict": strict if fn.get("strict") is None else bool(fn["strict"]),
    }
    for key in ("description", "parameters"):
        if given(fn.get(key)):
            values[key] = fn[key]
    return FunctionTool(**values)


def json_schema_format(
    spec: Mapping[str, Any], *, given: Callable[[Any], bool] = _not_none
) -> JsonSchemaFormat:
    """A ``json_schema`` output format; strict is false unless the body says so, on both APIs."""
    values: dict[str, Any] = {
        "name": spec.get("name"),
        "schema": spec.get("schema") or {},
        "strict": bool(spec.get("strict") or False),
    }
    if given(spec.get("description")):
        values["description"] = spec["description"]
    return JsonSchemaFormat(**values)


@contextmanager
def neutral_fields(fail: Fail) -> Iterator[None]:
    """Report a value the neutral model rejects as the parser's one-line error on its field."""
    try:
        yield
    except ValidationError as exc:
        where, why = first_problem(exc, "request")
        raise fail(where, f"{why}; fix the value") from None
