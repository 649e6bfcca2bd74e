"""Similarity of two replies to the same request (text, JSON, tool calls, optional semantic).

Text similarity is defined on **words** so that it has a plain meaning: a word is a
whitespace-separated token, compared case-insensitively with punctuation removed. The score is
rapidfuzz's normalized Indel similarity on the two word sequences,
``2 · LCS(a, b) / (len(a) + len(b))``. Replacing a fraction *d* of one reply's words with
different words therefore scores ``1 − d`` (each replaced word costs one deletion and one
insertion out of 2·n edits). This is the "divergence *d*" the emulator injects.

All functions are pure and take replies, not runs: :mod:`harness.analysis.pairs` applies them to
the arms of an observation table and computes the A/A noise floor from replicate arms.
"""

from __future__ import annotations

import json
import math
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import Indel

from harness.records import ToolCallRecord

FloatArray = npt.NDArray[np.float64]

#: Punctuation removed before splitting into words (ASCII plus common typographic marks).
_PUNCTUATION = string.punctuation + "“”‘’«»—–…·•¿¡"
_STRIP = str.maketrans("", "", _PUNCTUATION)

#: Embeds a batch of texts into unit-normalisable vectors (an optional semantic backend).
Embedder = Callable[[Sequence[str]], "npt.NDArray[np.floating[Any]]"]


def words(text: str) -> list[str]:
    """The words text similarity compares: casefolded, punctuation removed, split on spaces."""
    return text.casefold().translate(_STRIP).split()


def word_similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """Normalized Indel similarity of two word sequences (1.0 when both are empty)."""
    if not a and not b:
        return 1.0
    return float(Indel.normalized_similarity(a, b))


def text_similarity(a: str, b: str) -> float:
    """Word-level similarity of two texts; ``1 − d`` when a fraction d of words differ."""
    if a == b:
        return 1.0
    return word_similarity(words(a), words(b))


# --- JSON -------------------------------------------------------------------------------------


def parse_json(text: str | None) -> tuple[bool, Any]:
    """(True, value) when ``text`` is a JSON object or array, else (False, None)."""
    if text is None:
        return False, None
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return False, None
    try:
        return True, json.loads(stripped)
    except json.JSONDecodeError:
        return False, None


def flatten_json(value: Any, prefix: str = "$") -> dict[str, Any]:
    """Leaf paths of a JSON value (``$.a.b[0]``); empty objects and arrays are leaves."""
    out: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for key, item in value.items():
            out.update(flatten_json(item, f"{prefix}.{key}"))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            out.update(flatten_json(item, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def _same_leaf(a: Any, b: Any) -> bool:
    # JSON has one number type: 1 == 1.0, but true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0) or a == b
    return type(a) is type(b) and bool(a == b)


def json_agreement(a: Any, b: Any) -> float:
    """Field-by-field agreement: leaf paths with equal values / all leaf paths of either."""
    fa, fb = flatten_json(a), flatten_json(b)
    paths = fa.keys() | fb.keys()
    if not paths:
        return 1.0
    same = sum(1 for p in paths if p in fa and p in fb and _same_leaf(fa[p], fb[p]))
    return same / len(paths)


def schema_valid(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` validates against a JSON Schema (draft 2020-12)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(dict(schema))
    return bool(validator.is_valid(value))


@dataclass(frozen=True)
class JsonPair:
    """Structured-output agreement of one pair of replies."""

    a_parses: bool
    b_parses: bool
    a_schema_valid: bool | None
    b_schema_valid: bool | None
    agreement: float


def compare_json(
    a_text: str | None,
    b_text: str | None,
    schema: Mapping[str, Any] | None = None,
    *,
    asked: bool = False,
) -> JsonPair | None:
    """Parse both replies, check them against ``schema`` and compare field by field.

    None when neither reply is JSON and neither ``schema`` nor ``asked`` (the request asked
    for JSON) says it should be (not a structured pair).
    A reply that does not parse agrees on nothing, except with a byte-identical reply: the
    arms answered alike, and the parse and schema rates say that the answer was not JSON.
    """
    a_ok, a_val = parse_json(a_text)
    b_ok, b_val = parse_json(b_text)
    if not (a_ok or b_ok or asked or schema is not None):
        return None
    a_valid = (a_ok and schema_valid(a_val, schema)) if schema is not None else None
    b_valid = (b_ok and schema_valid(b_val, schema)) if schema is not None else None
    agreement = json_agreement(a_val, b_val) if a_ok and b_ok else float(a_text == b_text)
    return JsonPair(a_ok, b_ok, a_valid, b_valid, agreement)


# --- tool calls -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolPair:
    """Tool-call agreement of one pair: names, and names with equal arguments."""

    name_agreement: float
    arguments_agreement: float


def _canonical_arguments(arguments: str) -> Any:
    try:
        return ("json", json.dumps(json.loads(arguments), sort_keys=True))
    except (json.JSONDecodeError, TypeError):
        return ("raw", arguments.strip())


def compare_tool_calls(a: Sequence[ToolCallRecord], b: Sequence[ToolCallRecord]) -> ToolPair | None:
    """Agreement of two lists of calls (order-insensitive); None when neither made a call.

    ``name_agreement`` = calls matched by name / the longer list; ``arguments_agreement`` =
    calls matched by name *and* equal parsed arguments / the longer list.
    """
    if not a and not b:
        return None
    longest = max(len(a), len(b))
    names = sum((Counter(c.name for c in a) & Counter(c.name for c in b)).values())
    full = sum(
        (
            Counter((c.name, _canonical_arguments(c.arguments)) for c in a)
            & Counter((c.name, _canonical_arguments(c.arguments)) for c in b)
        ).values()
    )
    return ToolPair(names / longest, full / longest)


# --- semantic (optional backend) --------------------------------------------------------------


def semantic_similarity(
    a_texts: Sequence[str], b_texts: Sequence[str], embed: Embedder
) -> FloatArray:
    """Cosine similarity of embeddings, pair by pair, from a caller-supplied embedder.

    Identical texts score exactly 1 (float rounding, or an empty text's zero vector, would
    otherwise make byte-identical replies look different)."""
    if len(a_texts) != len(b_texts):
        raise ValueError("a_texts and b_texts must pair up")
    if not a_texts:
        return np.zeros(0)
    va = np.asarray(embed(list(a_texts)), dtype=np.float64)
    vb = np.asarray(embed(list(b_texts)), dtype=np.float64)
    na = np.linalg.norm(va, axis=1)
    nb = np.linalg.norm(vb, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = (va * vb).sum(axis=1) / (na * nb)
    cos = np.clip(np.nan_to_num(cos, nan=0.0), -1.0, 1.0)
    cos[[x == y for x, y in zip(a_texts, b_texts, strict=True)]] = 1.0
    return np.asarray(cos, dtype=np.float64)
