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
