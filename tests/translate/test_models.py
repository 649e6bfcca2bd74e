"""The per-model capability table (harness/models.py)."""

from __future__ import annotations

import dataclasses

import pytest

from harness.translate.capabilities import (
    RESPONSES_MIN_OUTPUT_TOKENS,
    ModelInfo,
    is_reasoning_model,
    model_info,
    unsupported_params,
)
from harness.translate.enums import REASONING_EFFORTS
from harness.translate.request import Params

# model → (family, reasoning, temperature/top_p, verbosity, efforts, chat, known)
LOW_MED_HIGH = {"low", "medium", "high"}
ALL_FOUR = {"minimal", "low", "medium", "high"}
GPT_5_X = {"none", "low", "medium", "high", "xhigh"}  # gpt-5.1 "none", gpt-5.2 "xhigh"
SDK_ALL = set(REASONING_EFFORTS)  # an unknown model is not second-guessed
FAMILIES = [
    ("gpt-4.1-mini", "gpt-4.1", False, True, False, set(), True, True),
    ("gpt-4.1-2025-04-14", "gpt-4.1", False, True, False, set(), True, True),
    ("gpt-4o", "gpt-4o", False, True, False, set(), True, True),
    ("gpt-4o-mini-2024-07-18", "gpt-4o", False, True, False, set(), True, True),
    ("gpt-4-turbo", "gpt-4", False, True, False, set(), True, True),
    ("gpt-3.5-turbo", "gpt-3.5", False, True, False, set(), True, True),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "gpt-4o", False, True, False, set(), True, True),
    ("o1", "o-series", True, False, False, LOW_MED_HIGH, True, True),
    ("o1-2024-12-17", "o-series", True, False, False, LOW_MED_HIGH, True, True),
    ("o1-mini", "o1-mini", True, False, False, set(), True, True),
    ("o1-preview", "o1-mini", True, False, False, set(), True, True),
    ("o3", "o-series", True, False, False, LOW_MED_HIGH, True, True),
    ("o3-mini", "o-series", True, False, False, LOW_MED_HIGH, True, True),
    ("o4-mini-2025-04-16", "o-series", True, False, False, LOW_MED_HIGH, True, True),
    ("o1-pro", "o1-pro", True, False, False, LOW_MED_HIGH, False, True),
    ("o3-pro-2025-06-10", "o3-pro", True, False, False, LOW_MED_HIGH, False, True),
    ("o3-deep-research", "deep-research", True, False, False, LOW_MED_HIGH, False, True),
    ("codex-mini-latest", "codex-mini", True, False, False, LOW_MED_HIGH, False, True),
    ("gpt-5", "gpt-5", True, False, True, ALL_FOUR, True, True),
    ("gpt-5-mini", "gpt-5", True, False, True, ALL_FOUR, True, True),
    ("gpt-5-nano-2025-08-07", "gpt-5", True, False, True, ALL_FOUR, True, True),
    ("gpt-5.1", "gpt-5.x", True, False, True, GPT_5_X, True, True),
    ("gpt-5-pro", "gpt-5-pro", True, False, True, ALL_FOUR, False, True),
    ("gpt-5-codex", "gpt-5-codex", True, False, True, ALL_FOUR, False, True),
    ("gpt-5.1-codex-mini", "gpt-5-codex", True, False, True, ALL_FOUR, False, True),
    ("gpt-5-chat-latest", "gpt-5-chat", False, True, False, set(), True, True),
    # Unknown names are permissive: the target's own answer is the authority.
    ("llama-3.1-8b", "llama-3.1-8b", False, True, True, SDK_ALL, True, False),
    ("o10", "o10", False, True, True, SDK_ALL, True, False),
    ("emulator", "emulator", False, True, True, SDK_ALL, True, False),
]


@pytest.mark.parametrize(
    ("model", "family", "reasoning", "sampling", "verbosity", "efforts", "chat", "known"),
    FAMILIES,
    ids=[row[0] for row in FAMILIES],
)
def test_model_info(
    model: str,
    family: str,
    reasoning: bool,
    sampling: bool,
    verbosity: bool,
    efforts: set[str],
    chat: bool,
    known: bool,
) -> None:
    info = model_info(model)
    assert info == ModelInfo(
        family=family,
        known=known,
        reasoning=reasoning,
        supports_temperature=sampling,
        supports_top_p=sampling,
        supports_verbosity=verbosity,
        reasoning_efforts=frozenset(efforts),
        supports_chat=chat,
        supports_responses=True,
        min_output_tokens=RESPONSES_MIN_OUTPUT_TOKENS,
    )
    assert info.supports_reasoning_effort == bool(efforts)
    assert is_reasoning_model(model) is reasoning


def test_model_info_is_frozen_and_case_insensitive() -> None:
    info = model_info("GPT-5")
    assert info.family == "gpt-5"
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.reasoning = False  # type: ignore[misc]


UNSUPPORTED = [
    ("gpt-4.1", Params(temperature=0, top_p=1, max_output_tokens=16), []),
    ("o3", Params(temperature=0), [("temperature", "remove temperature")]),
    ("gpt-5", Params(top_p=0.5), [("top_p", "remove top_p")]),
    (
        "o4-mini",
        Params(temperature=1, top_p=1),
        [("temperature", "remove temperature"), ("top_p", "remove top_p")],
    ),
    ("gpt-4o", Params(reasoning_effort="low"), [("reasoning_effort", "use a reasoning model")]),
    ("o1-mini", Params(reasoning_effort="low"), [("reasoning_effort", "remove it")]),
    (
        "o3",
        Params(reasoning_effort="minimal"),
        [("reasoning_effort", "use one of: high, low, medium")],
    ),
    ("gpt-5", Params(reasoning_effort="minimal"), []),
    ("gpt-5.1", Params(reasoning_effort="minimal"), [("reasoning_effort", "use one of")]),
    ("gpt-4.1-mini", Params(verbosity="low"), [("verbosity", "use a gpt-5 model")]),
    ("o3", Params(verbosity="high"), [("verbosity", "remove it")]),
    ("gpt-5-mini", Params(verbosity="low", reasoning_effort="high"), []),
    ("my-local-model", Params(temperature=0.2, reasoning_effort="high", verbosity="low"), []),
]


@pytest.mark.parametrize(
    ("model", "params", "expected"),
    UNSUPPORTED,
    ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(UNSUPPORTED)],
)
def test_unsupported_params(model: str, params: Params, expected: list[tuple[str, str]]) -> None:
    problems = unsupported_params(model, params)
    assert [name for name, _ in problems] == [name for name, _ in expected]
    for (_, reason), (_, fix) in zip(problems, expected, strict=True):
        assert fix in reason.partition("; ")[2]  # contract: "what is wrong; how to fix"
        assert reason.count("; ") == 1
        assert model in reason
