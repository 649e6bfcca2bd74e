"""The arm id type: parsing, the round trip, what an id says, labels, order; and one home."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from harness.arms import ARM_RE, BASE_ARMS, STATE_ARMS, Arm, ArmIdError

PACKAGE = Path(__file__).resolve().parents[1] / "harness"
_KNOWN = (
    "chat, responses, responses_chained, responses_conversation, a variant such as "
    "responses+no_reasoning, or an A/A replicate such as chat#2"
)


@pytest.mark.parametrize(
    ("text", "base", "replicate", "api", "chained", "label"),
    [
        ("chat", "chat", 1, "chat", False, "Chat Completions"),
        ("responses", "responses", 1, "responses", False, "Responses"),
        ("responses_chained", "responses_chained", 1, "responses", True, "Responses (chained)"),
        ("chat#2", "chat", 2, "chat", False, "Chat Completions replicate 2"),
        ("responses#3", "responses", 3, "responses", False, "Responses replicate 3"),
        (
            "responses_chained#10",
            "responses_chained",
            10,
            "responses",
            True,
            "Responses (chained) replicate 10",
        ),
        ("chat#123", "chat", 123, "chat", False, "Chat Completions replicate 123"),
        (
            "responses_conversation",
            "responses_conversation",
            1,
            "responses",
            False,
            "Responses (conversation)",
        ),
        ("responses+store", "responses", 1, "responses", False, "Responses (store)"),
        (
            "responses+no_reasoning#2",
            "responses",
            2,
            "responses",
            False,
            "Responses (no reasoning items) replicate 2",
        ),
        (
            "responses_conversation+store",
            "responses_conversation",
            1,
            "responses",
            False,
            "Responses (conversation, store)",
        ),
    ],
)
def test_valid_ids(
    text: str, base: str, replicate: int, api: str, chained: bool, label: str
) -> None:
    arm = Arm.parse(text)
    assert (arm.base, arm.replicate, arm.api, arm.chained, arm.label) == (
        base,
        replicate,
        api,
        chained,
        label,
    )
    assert arm.is_replicate is (replicate > 1)
    assert str(arm) == text
    assert Arm.parse(str(arm)) == arm
    assert Arm.of(text) == arm
    assert ARM_RE.match(text)


@pytest.mark.parametrize(
    ("text", "message", "fix"),
    [
        (
            "chat#1",
            "arm chat#1: replicates start at #2 (chat itself is #1)",
            "write chat or chat#2",
        ),
        (
            "responses#1",
            "arm responses#1: replicates start at #2 (responses itself is #1)",
            "write responses or responses#2",
        ),
        (
            "completions",
            "unknown arm completions",
            f"use {_KNOWN}",
        ),
        (
            "respones",
            "unknown arm respones",
            f"did you mean responses? use {_KNOWN}",
        ),
        (
            "chat#02",
            "unknown arm chat#02",
            f"did you mean chat? use {_KNOWN}",
        ),
        ("chat#0", "unknown arm chat#0", None),
        ("chat#", "unknown arm chat#", None),
        ("chat#x", "unknown arm chat#x", None),
        ("Chat", "unknown arm Chat", None),
        ("chat ", "unknown arm chat ", None),
        ("", "unknown arm ", None),
        ("#2", "unknown arm #2", None),
        ("chat#2#3", "unknown arm chat#2#3", None),
        (
            "responses_chained+store",
            "arm responses_chained+store: responses_chained has no variant store",
            "write responses_chained (it has no variants)",
        ),
        (
            "responses+nostore",
            "arm responses+nostore: responses has no variant nostore",
            "use responses+no_reasoning or responses+store",
        ),
        (
            "responses_conversation+no_reasoning",
            "arm responses_conversation+no_reasoning: responses_conversation has no variant "
            "no_reasoning",
            "use responses_conversation+store",
        ),
        (
            "responses+store#1",
            "arm responses+store#1: replicates start at #2 (responses+store itself is #1)",
            "write responses+store or responses+store#2",
        ),
        ("responses+", "unknown arm responses+", None),
    ],
)
def test_invalid_ids_name_the_id_and_the_fix(text: str, message: str, fix: str | None) -> None:
    with pytest.raises(ArmIdError) as caught:
        Arm.parse(text)
    assert caught.value.text == text
    assert caught.value.message == message
    if fix is not None:
        assert caught.value.fix == fix
    assert str(caught.value) == f"{caught.value.message} — {caught.value.fix}"


def test_messages_show_the_id_as_the_caller_renders_it() -> None:
    with pytest.raises(ArmIdError) as caught:
        Arm.parse("bad\narm", shown="bad\\narm")
    assert caught.value.message == "unknown arm bad\\narm"


@pytest.mark.parametrize(
    ("text", "base", "replicate", "label"),
    [
        # ids this version rejects still render (a summary from elsewhere): taken whole
        ("chat#1", "chat#1", 1, "chat#1"),
        ("chat#x", "chat#x", 1, "chat#x"),
        ("custom", "custom", 1, "custom"),
        ("custom#2", "custom", 2, "custom replicate 2"),
        ("#2", "#2", 1, "#2"),
    ],
)
def test_of_never_fails_and_round_trips(text: str, base: str, replicate: int, label: str) -> None:
    arm = Arm.of(text)
    assert (arm.base, arm.replicate, arm.label, str(arm)) == (base, replicate, label, text)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            ["responses_chained", "chat#2", "responses", "chat", "responses#2"],
            ["chat", "chat#2", "responses", "responses#2", "responses_chained"],
        ),
        (["chat#10", "chat#9", "chat#2", "chat"], ["chat", "chat#2", "chat#9", "chat#10"]),
        (["zeta", "custom#2", "chat", "custom"], ["chat", "custom", "custom#2", "zeta"]),
        (
            [
                "responses_conversation+store",
                "responses+store",
                "responses_conversation",
                "responses+no_reasoning#2",
                "responses",
                "responses+no_reasoning",
                "responses_chained",
            ],
            [
                "responses",
                "responses+no_reasoning",
                "responses+no_reasoning#2",
                "responses+store",
                "responses_chained",
                "responses_conversation",
                "responses_conversation+store",
            ],
        ),
    ],
)
def test_sort_order(given: list[str], expected: list[str]) -> None:
    assert sorted(given, key=lambda a: Arm.of(a).sort_key) == expected


def test_base_arms_are_the_valid_primaries_in_report_order() -> None:
    assert BASE_ARMS == ("chat", "responses", "responses_chained", "responses_conversation")
    assert sorted(BASE_ARMS, key=lambda a: Arm.parse(a).sort_key) == list(BASE_ARMS)


@pytest.mark.parametrize(
    ("text", "state", "store", "carries", "primary"),
    [
        ("chat", "history", None, True, "chat"),
        ("responses", "history", None, True, "responses"),
        ("responses+no_reasoning", "history", None, False, "responses+no_reasoning"),
        ("responses+store#2", "history", True, True, "responses+store"),
        ("responses_chained#2", "chained", True, True, "responses_chained"),
        ("responses_conversation", "conversation", None, True, "responses_conversation"),
        (
            "responses_conversation+store",
            "conversation",
            True,
            True,
            "responses_conversation+store",
        ),
    ],
)
def test_what_an_arm_sends(
    text: str, state: str, store: bool | None, carries: bool, primary: str
) -> None:
    arm = Arm.parse(text)
    assert (arm.state, arm.store, arm.carries_reasoning, arm.primary) == (
        state,
        store,
        carries,
        primary,
    )
    assert arm.chained is (state == "chained")
    assert arm.conversation is (state == "conversation")


def test_state_arms_are_valid_and_in_report_order() -> None:
    assert sorted(STATE_ARMS, key=lambda a: Arm.parse(a).sort_key) == list(STATE_ARMS)
    assert {Arm.parse(a).state for a in STATE_ARMS} == {"history", "chained", "conversation"}


def test_arms_module_needs_only_the_standard_library() -> None:
    tree = ast.parse((PACKAGE / "arms.py").read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert imported <= {"__future__", "dataclasses", "difflib", "re", "typing"}


# An arm id split at "#", or a replicate recognised by its "#", outside harness/arms.py.
_PARSES_ARM_IDS = re.compile(
    r"""(?:partition|split|rsplit|index|find)\(\s*["']#["']|["']#["']\s+(?:not\s+)?in\b"""
)


def _sources() -> list[Path]:
    return sorted(
        p
        for pattern in ("*.py", "*.j2")
        for p in PACKAGE.rglob(pattern)
        if p != PACKAGE / "arms.py"
    )


def test_the_pattern_finds_what_it_looks_for() -> None:
    for line in (
        'base, _, rep = arm.partition("#")',
        "arm.split('#')",
        '"#" not in c.a',
        '{% if "#" in arm %}',
    ):
        assert _PARSES_ARM_IDS.search(line), line
    assert not _PARSES_ARM_IDS.search('_TEXT = "#222222"')


def test_no_module_outside_arms_parses_arm_ids() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in _sources()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _PARSES_ARM_IDS.search(line)
    ]
    assert _sources()  # the walk found the package
    assert found == []
