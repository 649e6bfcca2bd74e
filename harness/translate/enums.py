"""Enum values of request parameters, read from the openai SDK's own ``Literal`` types.

Hand-written lists fell behind the API (``reasoning_effort`` lacked ``none`` and ``xhigh``,
``service_tier`` lacked ``scale`` and ``fast``, image ``detail`` lacked ``original``), so
gpt-5.1 traffic was refused; these follow every SDK upgrade. A test checks them against the
OpenAPI spec.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any, Literal

from openai.types.chat import completion_create_params as _chat_params
from openai.types.responses import response_text_config_param as _text_params
from openai.types.responses.image_detail import ImageDetail
from openai.types.responses.service_tier import ServiceTier
from openai.types.shared.reasoning import Reasoning
from openai.types.shared.reasoning_effort import ReasoningEffort

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


_CHAT_HINTS = typing.get_type_hints(_chat_params.CompletionCreateParamsBase)

REASONING_EFFORTS = literal_values(ReasoningEffort)
VERBOSITIES = literal_values(
    typing.get_type_hints(_text_params.ResponseTextConfigParam)["verbosity"]
)
CHAT_SERVICE_TIERS = literal_values(_CHAT_HINTS["service_tier"])
RESPONSES_SERVICE_TIERS = literal_values(ServiceTier)
#: tiers both APIs accept (a neutral request goes to both)
SERVICE_TIERS = tuple(t for t in CHAT_SERVICE_TIERS if t in RESPONSES_SERVICE_TIERS)
IMAGE_DETAILS = literal_values(ImageDetail)
REASONING_CONTEXTS = literal_values(Reasoning.model_fields["context"].annotation)
REASONING_SUMMARIES = literal_values(Reasoning.model_fields["summary"].annotation)


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
