"""Per-model capabilities: which parameters a model accepts, on which API.

The table is keyed by name prefix (dated snapshots such as ``gpt-4o-2024-08-06`` and fine-tunes
``ft:gpt-4o-mini:...`` resolve to their family). A model the table does not know is treated
permissively (``known=False``): nothing is rejected, because targets such as the emulator or a
local server accept arbitrary names and the server's own answer is then the authority.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import Literal

from harness.translate.enums import REASONING_EFFORTS
from harness.translate.request import Params

#: The Responses API rejects ``max_output_tokens`` below this (spec: ``minimum: 16``).
RESPONSES_MIN_OUTPUT_TOKENS = 16

#: every value the SDK knows (an unknown model is not second-guessed)
_ALL_EFFORTS = frozenset(REASONING_EFFORTS)


@dataclass(frozen=True)
class ModelInfo:
    """What one model family accepts. ``reasoning_efforts`` empty: no ``reasoning_effort``."""

    family: str
    known: bool = True
    reasoning: bool = False
    supports_temperature: bool = True
    supports_top_p: bool = True
    supports_verbosity: bool = False
    reasoning_efforts: frozenset[str] = frozenset()
    supports_chat: bool = True
    supports_responses: bool = True
    min_output_tokens: int = RESPONSES_MIN_OUTPUT_TOKENS

    def serves(self, api: Literal["chat", "responses"]) -> bool:
        """Whether the ``chat`` or ``responses`` API serves this model at all."""
        return self.supports_chat if api == "chat" else self.supports_responses

    @property
    def supports_reasoning_effort(self) -> bool:
        """Whether ``reasoning_effort`` may be sent at all."""
        return bool(self.reasoning_efforts)


_CHAT_MODEL = ModelInfo(family="")
_O_SERIES = ModelInfo(
    family="",
    reasoning=True,
    supports_temperature=False,
    supports_top_p=False,
    reasoning_efforts=frozenset({"low", "medium", "high"}),
)
_GPT5 = replace(
    _O_SERIES,
    supports_verbosity=True,
    reasoning_efforts=frozenset({"minimal", "low", "medium", "high"}),
)

# First match wins, so more specific patterns come first. A pattern must end at the string end
# or at a "-" (dated snapshots), so "o1" does not match "o10".
_TABLE: tuple[tuple[str, str, ModelInfo], ...] = (
    # Responses-only models: OpenAI serves them on /v1/responses only.
    ("o1-pro", r"o1-pro", replace(_O_SERIES, supports_chat=False)),
    ("o3-pro", r"o3-pro", replace(_O_SERIES, supports_chat=False)),
    ("deep-research", r"o[34](-mini)?-deep-research", replace(_O_SERIES, supports_chat=False)),
    ("codex-mini", r"codex-mini", replace(_O_SERIES, supports_chat=False)),
    ("gpt-5-codex", r"gpt-5(\.\d+)?-codex(-[a-z]+)*", replace(_GPT5, supports_chat=False)),
    ("gpt-5-pro", r"gpt-5(\.\d+)?-pro", replace(_GPT5, supports_chat=False)),
    # The first o1 previews predate reasoning_effort.
    ("o1-mini", r"o1-(mini|preview)", replace(_O_SERIES, reasoning_efforts=frozenset())),
    ("o-series", r"o1|o3|o4-mini", _O_SERIES),
    # gpt-5-chat-latest is the non-reasoning ChatGPT model: sampling parameters, no effort.
    ("gpt-5-chat", r"gpt-5-chat", _CHAT_MODEL),
    # gpt-5.1 and later replaced "minimal" effort by "none"; gpt-5.2 added "xhigh" (accepted
    # for every 5.x: refusing valid traffic would bias a shadow sample, the server decides).
    (
        "gpt-5.x",
        r"gpt-5\.\d+",
        replace(_GPT5, reasoning_efforts=frozenset({"none", "low", "medium", "high", "xhigh"})),
    ),
    ("gpt-5", r"gpt-5", _GPT5),
    ("gpt-4.1", r"gpt-4\.1", _CHAT_MODEL),
    ("gpt-4o", r"gpt-4o", _CHAT_MODEL),
    ("gpt-4", r"gpt-4", _CHAT_MODEL),
    ("gpt-3.5", r"gpt-3\.5", _CHAT_MODEL),
)
_COMPILED = tuple(
    (re.compile(rf"(?:{pattern})(?:-|$)"), replace(info, family=family))
    for family, pattern, info in _TABLE
)

_UNKNOWN = ModelInfo(
    family="",
    known=False,
    supports_verbosity=True,
    reasoning_efforts=_ALL_EFFORTS,
)


def _base_name(model: str) -> str:
    # Fine-tunes are "ft:<base>:<org>:<suffix>:<id>"; only the base decides capabilities.
    if model.startswith("ft:"):
        return model[3:].split(":", 1)[0]
    return model


@functools.lru_cache(maxsize=512)  # asked for every request a run translates
def model_info(model: str) -> ModelInfo:
    """Capabilities of ``model``; unknown names get a permissive entry with ``known=False``."""
    name = _base_name(model).lower()
    for regex, info in _COMPILED:
        if regex.match(name):
            return info
    return replace(_UNKNOWN, family=name)


#: why one API does not serve a model, and what to do ("reason; fix"; ``{model}``: its name)
_NOT_SERVED: dict[str, str] = {
    "chat": "{model} is served on the Responses API only; drop the chat arm or pick a model "
    "both APIs serve",
    "responses": "{model} is not served on the Responses API; drop the responses arms or pick "
    "a model both APIs serve",
}


def not_served(model: str, api: Literal["chat", "responses"]) -> str | None:
    """Why ``api`` does not serve ``model`` ("reason; fix"); None when it does."""
    return None if model_info(model).serves(api) else _NOT_SERVED[api].format(model=model)


def is_reasoning_model(model: str) -> bool:
    """True for the o-series and the gpt-5 reasoning family."""
    return model_info(model).reasoning


def unsupported_params(model: str, params: Params) -> list[tuple[str, str]]:
    """``(param, "reason; fix")`` for each set parameter ``model`` rejects on both APIs."""
    info = model_info(model)
    problems: list[tuple[str, str]] = []
    if params.temperature is not None and not info.supports_temperature:
        problems.append(
            (
                "temperature",
                f"{model} is a reasoning model and rejects temperature "
                "on both APIs; remove temperature (steer it with reasoning_effort)",
            )
        )
    if params.top_p is not None and not info.supports_top_p:
        problems.append(
            ("top_p", f"{model} is a reasoning model and rejects top_p on both APIs; remove top_p")
        )
    if params.reasoning_effort is not None:
        if not info.supports_reasoning_effort:
            problems.append(
                (
                    "reasoning_effort",
                    f"{model} does not accept reasoning_effort "
                    "(chat reasoning_effort / responses reasoning.effort); remove it "
                    "or use a reasoning model such as o4-mini or gpt-5",
                )
            )
        elif params.reasoning_effort not in info.reasoning_efforts:
            allowed = ", ".join(sorted(info.reasoning_efforts))
            problems.append(
                (
                    "reasoning_effort",
                    f"{model} does not accept reasoning_effort "
                    f"{params.reasoning_effort!r}; use one of: {allowed}",
                )
            )
    if params.verbosity is not None and not info.supports_verbosity:
        problems.append(
            (
                "verbosity",
                f"{model} does not accept verbosity (chat verbosity / "
                "responses text.verbosity); remove it or use a gpt-5 model",
            )
        )
    return problems
