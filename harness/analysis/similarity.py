"""Similarity of two replies to the same request (text, JSON, tool calls, optional semantic).

Text similarity is defined on **words** so that it has a plain meaning: a word is a
whitespace-separated token, compared case-insensitively with punctuation removed. The score is
rapidfuzz's normalized Indel similarity on the two word sequences,
``2 · LCS(a, b) / (len(a) + len(b))``. Replacing a fraction *d* of one reply's words with
different words therefore scores ``1 − d`` (each replaced word costs one deletion and one
insertion out of 2·n edits). This is the "divergence *d*" the emulator injects.

All functions are pure; the A/A noise floor is computed by the analysis from replicate arms.
"""

from __future__ import annotations

import json
import math
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import Indel

from harness.analysis.stats import Bootstrap, excludes, interval, ratio_replicates
from harness.arms import Arm
from harness.summary import Effect, JsonStats, Similarity, SimilarityStats, ToolCallStats

if TYPE_CHECKING:
    from harness.analysis.metrics import ArmData, ObservationTable

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

#: First characters of a JSON object or array, possibly after leading whitespace.
_JSON_START = frozenset("{[ \t\r\n")


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
    a_text: str | None, b_text: str | None, schema: Mapping[str, Any] | None = None
) -> JsonPair | None:
    """Parse both replies, check them against ``schema`` and compare field by field.

    None when neither reply is JSON and no schema says it should be (not a structured pair).
    A reply that does not parse agrees on nothing.
    """
    a_ok, a_val = parse_json(a_text)
    b_ok, b_val = parse_json(b_text)
    if not (a_ok or b_ok or schema is not None):
        return None
    a_valid = (a_ok and schema_valid(a_val, schema)) if schema is not None else None
    b_valid = (b_ok and schema_valid(b_val, schema)) if schema is not None else None
    agreement = json_agreement(a_val, b_val) if a_ok and b_ok else 0.0
    return JsonPair(a_ok, b_ok, a_valid, b_valid, agreement)


# --- tool calls -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """A function call as compared: the name and its raw JSON arguments."""

    name: str
    arguments: str


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


def compare_tool_calls(a: Sequence[ToolCall], b: Sequence[ToolCall]) -> ToolPair | None:
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
    """Cosine similarity of embeddings, pair by pair, from a caller-supplied embedder."""
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
    return np.asarray(np.clip(np.nan_to_num(cos, nan=0.0), -1.0, 1.0), dtype=np.float64)


# --- pairs of arms (used by the analysis) -----------------------------------------------------


@dataclass
class KindScores:
    """One kind of similarity over the pairs where it applies, keyed by pairing unit."""

    units: npt.NDArray[np.int64]
    scores: FloatArray
    extras: dict[str, FloatArray]


@dataclass
class PairScores:
    """Similarity scores of one comparison ``a_vs_b`` (same prompt, repeat and turn)."""

    a: str
    b: str
    replicate: bool
    kinds: dict[str, KindScores]


def _kind(units: list[int], scores: list[float], **extras: list[float]) -> KindScores:
    return KindScores(
        np.array(units, dtype=np.int64),
        np.array(scores, dtype=np.float64),
        {k: np.array(v, dtype=np.float64) for k, v in extras.items()},
    )


def pair_scores(
    t: ObservationTable,
    a: ArmData,
    b: ArmData,
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
    embedder: Embedder | None = None,
    word_cache: dict[int, list[str]] | None = None,
) -> PairScores:
    """Score every key both arms answered successfully, for each kind that applies."""
    cache = word_cache if word_cache is not None else {}
    schemas = schemas or {}

    def ok_rows(arm: ArmData) -> dict[int, int]:
        keep = t.ok[arm.rows]
        return dict(zip(arm.units[keep].tolist(), arm.rows[keep].tolist(), strict=True))

    def cached_words(row: int, text: str) -> list[str]:
        w = cache.get(row)
        if w is None:
            w = cache[row] = words(text)
        return w

    ra, rb = ok_rows(a), ok_rows(b)
    tu: list[int] = []
    ts: list[float] = []
    ju: list[int] = []
    js: list[float] = []
    jx: dict[str, list[float]] = {k: [] for k in ("a_parses", "b_parses", "a_valid", "b_valid")}
    cu: list[int] = []
    cs: list[float] = []
    cn: list[float] = []
    sem_pairs: list[tuple[int, str, str]] = []
    for unit in sorted(ra.keys() & rb.keys()):
        ia, ib = ra[unit], rb[unit]
        xa, xb = t.output_text[ia] or "", t.output_text[ib] or ""
        if xa or xb:
            tu.append(unit)
            ts.append(
                1.0 if xa == xb else word_similarity(cached_words(ia, xa), cached_words(ib, xb))
            )
            if embedder is not None:
                sem_pairs.append((unit, xa, xb))
        elif math.isfinite(stored := float(np.fmax(t.similarity[ia], t.similarity[ib]))):
            # a redacted shadow pair: the score computed before the text was dropped
            tu.append(unit)
            ts.append(stored)
        if xa[:1] in _JSON_START or xb[:1] in _JSON_START or t.prompt_id[ia] in schemas:
            jp = compare_json(xa, xb, schemas.get(t.prompt_id[ia]))
            if jp is not None:
                ju.append(unit)
                js.append(jp.agreement)
                jx["a_parses"].append(float(jp.a_parses))
                jx["b_parses"].append(float(jp.b_parses))
                jx["a_valid"].append(math.nan if jp.a_schema_valid is None else jp.a_schema_valid)
                jx["b_valid"].append(math.nan if jp.b_schema_valid is None else jp.b_schema_valid)
        if t.tool_calls[ia] or t.tool_calls[ib]:
            tp = compare_tool_calls(t.tool_calls[ia], t.tool_calls[ib])
            if tp is not None:
                cu.append(unit)
                cs.append(tp.arguments_agreement)
                cn.append(tp.name_agreement)
    kinds = {
        "text": _kind(tu, ts),
        "json": _kind(ju, js, **jx),
        "tool_calls": _kind(cu, cs, name_agreement=cn),
    }
    if embedder is not None:
        sem = semantic_similarity([p[1] for p in sem_pairs], [p[2] for p in sem_pairs], embedder)
        kinds["semantic"] = KindScores(np.array([p[0] for p in sem_pairs], dtype=np.int64), sem, {})
    return PairScores(a.name, b.name, Arm.of(a.name).base == b.name, kinds)


def noise_floor_key(key: str, scores: Mapping[str, PairScores]) -> str | None:
    """The A/A comparison a comparison is judged against: its own if it is one, else the
    replicate of its baseline arm, of its own arm's API, of chat, or any."""
    this = scores[key]
    if this.replicate:
        return key
    aa = {k: p for k, p in scores.items() if p.replicate}
    for want in (this.b, Arm.of(this.a).base, "chat"):
        for k, p in sorted(aa.items()):
            if p.b == want:
                return k
    return min(aa) if aa else None


def _rate(values: FloatArray) -> float | None:
    v = values[np.isfinite(values)]
    return float(v.mean()) if v.size else None


@dataclass(frozen=True)
class Gap:
    """A registered paired gap to the noise floor: its value and bootstrap handles."""

    value: float
    n_pairs: int
    sum_handle: int
    count_handle: int


def register_gaps(boot: Bootstrap, key: str, scores: Mapping[str, PairScores]) -> dict[str, Gap]:
    """Register, per kind, the paired gap (A/A score − this score) with the scenario's
    bootstrap, over keys both comparisons scored."""
    this = scores[key]
    floor_key = noise_floor_key(key, scores)
    if floor_key is None or floor_key == key:
        return {}
    gaps: dict[str, Gap] = {}
    for kind, ks in this.kinds.items():
        fk = scores[floor_key].kinds.get(kind)
        if fk is None or ks.units.size == 0 or fk.units.size == 0:
            continue
        shared, ia, ib = np.intersect1d(ks.units, fk.units, return_indices=True)
        if shared.size == 0:
            continue
        diff = fk.scores[ib] - ks.scores[ia]
        gaps[kind] = Gap(
            float(diff.mean()),
            int(shared.size),
            boot.total(shared, diff),
            boot.total(shared, np.ones(shared.size)),
        )
    return gaps


def similarity_summary(
    key: str, scores: Mapping[str, PairScores], reps: Sequence[FloatArray], gaps: Mapping[str, Gap]
) -> Similarity:
    """Mean/min per kind, the A/A noise floor, and the paired gap to it with a 95 % CI."""
    this = scores[key]
    floor_key = noise_floor_key(key, scores)
    floor = scores[floor_key] if floor_key else None
    out: dict[str, SimilarityStats | None] = {}
    for kind, ks in this.kinds.items():
        if ks.units.size == 0:
            out[kind] = None
            continue
        fk = floor.kinds.get(kind) if floor is not None else None
        has_floor = fk is not None and fk.scores.size > 0
        below = None
        if kind in gaps:
            g = gaps[kind]
            ci = interval(ratio_replicates(reps[g.sum_handle], reps[g.count_handle]))
            below = Effect(value=g.value, ci95=ci, significant=excludes(ci, 0.0), n_pairs=g.n_pairs)
        common: dict[str, Any] = {
            "n_pairs": int(ks.units.size),
            "mean": float(ks.scores.mean()),
            "min": float(ks.scores.min()),
            "noise_floor": float(fk.scores.mean()) if fk is not None and has_floor else None,
            "noise_floor_from": floor_key if has_floor else None,
            "below_noise_floor": below,
        }
        if kind == "json":
            out[kind] = JsonStats(
                **common,
                a_parse_rate=_rate(ks.extras["a_parses"]),
                b_parse_rate=_rate(ks.extras["b_parses"]),
                a_schema_valid_rate=_rate(ks.extras["a_valid"]),
                b_schema_valid_rate=_rate(ks.extras["b_valid"]),
            )
        elif kind == "tool_calls":
            out[kind] = ToolCallStats(**common, name_agreement=_rate(ks.extras["name_agreement"]))
        else:
            out[kind] = SimilarityStats(**common)
    return Similarity.model_validate(
        {
            "text": out.get("text"),
            "json": out.get("json"),
            "tool_calls": out.get("tool_calls"),
            "semantic": out.get("semantic"),
        }
    )
