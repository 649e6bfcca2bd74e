"""The enum values read from the SDK's Literal types agree with the OpenAPI spec."""

from __future__ import annotations

from typing import Any

import pytest

from harness.translate import enums
from harness.translate.spec import _schemas, spec_path


def _spec_enum(name: str) -> set[str]:
    schema: Any = _schemas(str(spec_path()))[name]
    branches = schema.get("anyOf", [schema])
    return {v for b in branches for v in b.get("enum", []) if v is not None}


@pytest.mark.parametrize(
    ("values", "schema"),
    [
        (enums.REASONING_EFFORTS, "ReasoningEffort"),
        (enums.VERBOSITIES, "Verbosity"),
        (enums.CHAT_SERVICE_TIERS, "ServiceTier"),
        (enums.RESPONSES_SERVICE_TIERS, "ServiceTierResponses"),
        (enums.IMAGE_DETAILS, "ImageDetail"),
    ],
)
def test_sdk_values_match_the_spec(values: tuple[str, ...], schema: str) -> None:
    assert set(values) == _spec_enum(schema)


def test_values_the_old_hand_written_lists_lacked() -> None:
    assert {"none", "xhigh"} <= set(enums.REASONING_EFFORTS)
    assert {"scale", "fast"} <= set(enums.SERVICE_TIERS)
    assert "original" in enums.IMAGE_DETAILS
    assert enums.REASONING_CONTEXTS == ("auto", "current_turn", "all_turns")


def test_one_of_is_openais_wording() -> None:
    assert enums.one_of(("a",)) == "'a'"
    assert enums.one_of(("a", "b")) == "'a' and 'b'"
    assert enums.one_of(("a", "b", "c")) == "'a', 'b', and 'c'"


def test_values_read_from_the_sdk_source_equal_its_imported_types() -> None:
    # harness.translate.enums reads the SDK's source so analysis never imports the SDK
    import typing

    from openai.types.chat import completion_create_params as chat_params
    from openai.types.responses import response_text_config_param as text_params
    from openai.types.responses.image_detail import ImageDetail
    from openai.types.responses.service_tier import ServiceTier
    from openai.types.shared.reasoning import Reasoning
    from openai.types.shared.reasoning_effort import ReasoningEffort

    hints = typing.get_type_hints(chat_params.CompletionCreateParamsBase)
    text_hints = typing.get_type_hints(text_params.ResponseTextConfigParam)
    assert enums.literal_values(ReasoningEffort) == enums.REASONING_EFFORTS
    assert enums.literal_values(hints["service_tier"]) == enums.CHAT_SERVICE_TIERS
    assert enums.literal_values(ServiceTier) == enums.RESPONSES_SERVICE_TIERS
    assert enums.literal_values(text_hints["verbosity"]) == enums.VERBOSITIES
    assert enums.literal_values(ImageDetail) == enums.IMAGE_DETAILS
    assert (
        enums.literal_values(Reasoning.model_fields["context"].annotation)
        == enums.REASONING_CONTEXTS
    )
    assert (
        enums.literal_values(Reasoning.model_fields["summary"].annotation)
        == enums.REASONING_SUMMARIES
    )
    with pytest.raises(LookupError, match="no Literal 'nope'"):
        enums.sdk_literal("types.shared.reasoning", "nope", "Reasoning")
