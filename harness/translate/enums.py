"""Enum values of request parameters, read from the openai SDK's own ``Literal`` types.

Hand-written lists fell behind the API (``reasoning_effort`` lacked ``none`` and ``xhigh``,
``service_tier`` lacked ``scale`` and ``fast``, image ``detail`` lacked ``original``), so
gpt-5.1 traffic was refused; these follow every SDK upgrade. A test checks them against the
OpenAPI spec.
"""

from __future__ import annotations

import ast
import importlib.util
import typing
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

__all__ = [
    "CHAT_SERVICE_TIERS",
    "IMAGE_DETAILS",
    "REASONING_CONTEXTS",
    "REASONING_EFFORTS",
    "REASONING_SUMMARIES",
    "RESPONSES_SERVICE_TIERS",
    "SERVICE_TIERS",
    "VERBOSITIES",
    "EffortValue",
    "ImageDetailValue",
    "ServiceTierValue",
    "VerbosityValue",
    "literal_values",
    "one_of",
    "sdk_literal",
]


def literal_values(tp: Any) -> tuple[str, ...]:
    """The string values of a ``Literal`` type, through ``Optional``/``Union``/aliases."""
    out: list[str] = []
    for arg in typing.get_args(tp):
        if isinstance(arg, str):
            out.append(arg)
        elif arg is not type(None):
            out += literal_values(arg)
    return tuple(dict.fromkeys(out))


@cache
def _sdk_dir() -> Path:
    spec = importlib.util.find_spec("openai")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise ImportError("the openai SDK is not installed")
    return Path(spec.origin).parent


def sdk_literal(module: str, name: str, owner: str | None = None) -> tuple[str, ...]:
    """The values of the SDK's ``Literal`` named ``name`` (a type alias, or a field of class
    ``owner``) in ``openai/<module>.py``, read from its source.

    Reading, not importing: importing any ``openai.types`` module loads the whole SDK (and
    httpx2), which analysis, reports and gates must not (DESIGN §1). A test checks these
    against the imported types and against the spec.
    """
    path = _sdk_dir().joinpath(*module.split(".")).with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    scope: list[ast.stmt] = tree.body
    if owner is not None:
        scope = next(n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner)
    for node in scope:
        if not isinstance(node, ast.AnnAssign):
            continue
        # a type alias keeps its Literal in the value; a field, in its annotation
        value = node.value if owner is None else node.annotation
        if isinstance(node.target, ast.Name) and node.target.id == name and value is not None:
            found = [
                c.value
                for sub in ast.walk(value)
                if isinstance(sub, ast.Subscript)
                and isinstance(sub.value, ast.Name)
                and sub.value.id == "Literal"
                for c in ast.walk(sub.slice)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            ]
            if found:
                return tuple(dict.fromkeys(found))
    raise LookupError(f"no Literal {name!r} in the openai SDK's {path}")


REASONING_EFFORTS = sdk_literal("types.shared.reasoning_effort", "ReasoningEffort")
VERBOSITIES = sdk_literal(
    "types.responses.response_text_config_param", "verbosity", "ResponseTextConfigParam"
)
CHAT_SERVICE_TIERS = sdk_literal(
    "types.chat.completion_create_params", "service_tier", "CompletionCreateParamsBase"
)
RESPONSES_SERVICE_TIERS = sdk_literal("types.responses.service_tier", "ServiceTier")
#: tiers both APIs accept (a neutral request goes to both)
SERVICE_TIERS = tuple(t for t in CHAT_SERVICE_TIERS if t in RESPONSES_SERVICE_TIERS)
IMAGE_DETAILS = sdk_literal("types.responses.image_detail", "ImageDetail")
REASONING_CONTEXTS = sdk_literal("types.shared.reasoning", "context", "Reasoning")
REASONING_SUMMARIES = sdk_literal("types.shared.reasoning", "summary", "Reasoning")


if TYPE_CHECKING:  # mypy cannot take a Literal built at run time; pydantic validates these
    EffortValue = str
    VerbosityValue = str
    ServiceTierValue = str
    ImageDetailValue = str
else:
    EffortValue = Literal[REASONING_EFFORTS]
    VerbosityValue = Literal[VERBOSITIES]
    ServiceTierValue = Literal[SERVICE_TIERS]
    ImageDetailValue = Literal[IMAGE_DETAILS]


def one_of(values: tuple[str, ...]) -> str:
    """``'a', 'b', and 'c'`` — OpenAI's wording of a list of supported values."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) < 3:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
