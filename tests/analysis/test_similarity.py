"""Similarity: word-level text, JSON field agreement, tool calls, semantic hook."""

from __future__ import annotations

import json
import secrets

import numpy as np
import pytest

from harness.analysis.similarity import (
    compare_json,
    compare_tool_calls,
    flatten_json,
    json_agreement,
    semantic_similarity,
    text_similarity,
    words,
)
from harness.records import ToolCallRecord


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("  spaced\tout\nwords ", ["spaced", "out", "words"]),
        ("“Quoted” — dash…", ["quoted", "dash"]),
        ("ÉTÉ straße", ["été", "strasse"]),
        ("", []),
    ],
)
def test_words_normalise_case_and_punctuation(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def _replace_words(base: list[str], d: float, rng: np.random.Generator) -> list[str]:
    """The emulator's divergence d: a fraction d of the words replaced by different words."""
    out = list(base)
    for j in rng.choice(len(base), size=round(d * len(base)), replace=False).tolist():
        out[j] = f"other{rng.integers(10**9)}"
    return out


@pytest.mark.parametrize("d", [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("length", [20, 60, 200])
def test_replacing_a_fraction_d_of_words_scores_one_minus_d(d: float, length: int) -> None:
    rng = np.random.default_rng(int(d * 100) + length)
    vocab = [f"w{i}" for i in range(500)]
    base = [vocab[i] for i in rng.integers(0, len(vocab), length)]
    sims = [
        text_similarity(" ".join(base), " ".join(_replace_words(base, d, rng))) for _ in range(20)
    ]
    assert abs(float(np.mean(sims)) - (1.0 - d)) <= 0.05
    assert max(sims) <= 1.0 - d + 0.05


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("The cat sat.", "the cat sat", 1.0),  # case and punctuation are not words
        ("a b c d", "a b c d e f g h", 8 / 12),  # 2·LCS / (4 + 8)
        ("", "", 1.0),
        ("something", "", 0.0),
        ("one two three four", "four three two one", 0.25),  # order matters
    ],
)
def test_text_similarity_cases(a: str, b: str, expected: float) -> None:
    assert text_similarity(a, b) == pytest.approx(expected)


def test_flatten_json_paths() -> None:
    assert flatten_json({"a": {"b": [1, {"c": None}]}, "d": [], "e": {}}) == {
        "$.a.b[0]": 1,
        "$.a.b[1].c": None,
        "$.d": [],
        "$.e": {},
    }


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ({"name": "John", "age": 30}, {"name": "John", "age": 30}, 1.0),
        (
            {"name": "John", "age": 30, "city": "NYC", "ok": True},
            {"name": "John", "age": 31, "city": "NYC", "ok": True},
            0.75,
        ),
        ({"age": 30}, {"age": 30.0}, 1.0),  # one JSON number type
        ({"ok": True}, {"ok": 1}, 0.0),  # but true is not 1
        ({"a": 1}, {"b": 1}, 0.0),  # different fields
        ({"a": 1, "b": 2}, {"a": 1}, 0.5),  # a missing field disagrees
        ({"xs": [1, 2, 3]}, {"xs": [1, 2, 4]}, 2 / 3),  # arrays element by element
        ({"n": {"x": "a", "y": "b"}}, {"n": {"x": "a", "y": "c"}}, 0.5),
    ],
)
def test_json_field_agreement(a: object, b: object, expected: float) -> None:
    assert json_agreement(a, b) == pytest.approx(expected)


PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("a", "b", "schema", "expected"),
    [
        (
            '{"name": "John", "age": 30}',
            ' {"age": 30, "name": "John"}',
            PERSON,
            (True, True, True, True, 1.0),
        ),
        (
            '{"name": "John", "age": 30}',
            '{"name": "John", "age": "30"}',
            PERSON,
            (True, True, True, False, 0.5),
        ),
        (
            '{"name": "John", "age": 30}',
            'Sure! {"name": "John"}',
            PERSON,
            (True, False, True, False, 0.0),
        ),
        ('{"name": "John"}', '{"name": "Jane"}', None, (True, True, None, None, 0.0)),
        ("plain text", "other text", None, None),
        ("plain text", "other text", PERSON, (False, False, False, False, 0.0)),
        # identical answers agree even when they are not JSON; the parse rates say they are not
        ("plain text", "plain text", PERSON, (False, False, False, False, 1.0)),
    ],
)
def test_compare_json_crafted_pairs(
    a: str, b: str, schema: dict[str, object] | None, expected: tuple[object, ...] | None
) -> None:
    got = compare_json(a, b, schema)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert (
            got.a_parses,
            got.b_parses,
            got.a_schema_valid,
            got.b_schema_valid,
            got.agreement,
        ) == pytest.approx(expected)


def _call(name: str, **args: object) -> ToolCallRecord:
    return _raw(name, json.dumps(args))


def _raw(name: str, arguments: str) -> ToolCallRecord:
    # each side's ids are its own: only names and arguments are compared
    return ToolCallRecord(id=f"call_{secrets.token_hex(4)}", name=name, arguments=arguments)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (
            [_call("get_weather", city="Paris")],
            [_raw("get_weather", '{ "city" : "Paris" }')],
            (1.0, 1.0),
        ),  # whitespace/order
        ([_call("get_weather", city="Paris")], [_call("get_weather", city="Lyon")], (1.0, 0.0)),
        ([_call("get_weather", city="Paris")], [_call("get_time", city="Paris")], (0.0, 0.0)),
        ([_call("a", x=1), _call("b", y=2)], [_call("b", y=2), _call("a", x=1)], (1.0, 1.0)),
        ([_call("a", x=1), _call("b", y=2)], [_call("a", x=1)], (0.5, 0.5)),
        ([_call("a", x=1)], [], (0.0, 0.0)),
        ([_raw("a", "{not json")], [_raw("a", "{not json")], (1.0, 1.0)),
    ],
)
def test_tool_call_agreement(
    a: list[ToolCallRecord], b: list[ToolCallRecord], expected: tuple[float, float]
) -> None:
    got = compare_tool_calls(a, b)
    assert got is not None
    assert (got.name_agreement, got.arguments_agreement) == pytest.approx(expected)


def test_a_pair_asked_for_json_is_scored_even_when_neither_reply_parses() -> None:
    assert compare_json("no", "nope") is None
    got = compare_json("no", "nope", asked=True)
    assert got is not None and (got.a_parses, got.b_parses, got.agreement) == (False, False, 0.0)


def test_no_tool_calls_is_not_a_pair() -> None:
    assert compare_tool_calls([], []) is None


def _bag_of_words(texts: object) -> np.ndarray:
    vocab = ["cat", "dog", "sat", "ran"]
    return np.array(
        [[words(t).count(w) for w in vocab] for t in texts],  # type: ignore[attr-defined]
        dtype=float,
    )


def test_semantic_similarity_uses_the_given_embedder() -> None:
    got = semantic_similarity(
        ["cat sat", "cat sat", "", "dog"], ["sat cat", "dog ran", "cat", "dog dog"], _bag_of_words
    )
    assert got.tolist() == pytest.approx([1.0, 0.0, 0.0, 1.0])
    with pytest.raises(ValueError):
        semantic_similarity(["a"], [], _bag_of_words)
