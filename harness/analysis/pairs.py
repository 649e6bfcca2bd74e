"""Similarity of two arms over one run: every pair of replies both answered, and the A/A floor.

:func:`pair_scores` walks the observation table and scores each pair of replies with the pure
functions of :mod:`harness.analysis.similarity`; the rest registers and summarises the paired gap
to the noise floor (an A/A comparison of a replicate arm with its base, DESIGN §1). Kept apart
from :mod:`harness.analysis.similarity` so that module needs no table and the table's module
(:mod:`harness.analysis.metrics`) can use it without an import cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.analysis.decide import excludes
from harness.analysis.metrics import ArmData, ObservationTable
from harness.analysis.similarity import (
    Embedder,
    compare_json,
    compare_tool_calls,
    parse_json,
    semantic_similarity,
    word_similarity,
    words,
)
from harness.analysis.stats import Bootstrap, interval, ratio_replicates
from harness.arms import Arm
from harness.records import JSON_OUTPUT_FORMATS
from harness.summary import Effect, JsonStats, Similarity, SimilarityStats, ToolCallStats

__all__ = [
    "Gap",
    "KindScores",
    "PairScores",
    "json_asked",
    "noise_floor_key",
    "pair_scores",
    "register_gaps",
    "similarity_summary",
]

FloatArray = npt.NDArray[np.float64]


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


def json_asked(
    t: ObservationTable, ia: int, ib: int, schemas: Mapping[str, Any] | None = None
) -> bool:
    """Whether JSON output was asked for this pair: the recorded output format, or for records
    without one, an output schema in the scenario file or two replies that both parse as JSON.

    A reply that merely starts with ``[`` or ``{`` on a text prompt is not a failed JSON reply.
    """
    fa, fb = t.output_format[ia], t.output_format[ib]
    if fa is not None or fb is not None:
        return fa in JSON_OUTPUT_FORMATS or fb in JSON_OUTPUT_FORMATS
    if schemas and t.prompt_id[ia] in schemas:
        return True
    return parse_json(t.output_text[ia])[0] and parse_json(t.output_text[ib])[0]


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
        if (xa or xb) and json_asked(t, ia, ib, schemas):
            jp = compare_json(xa, xb, schemas.get(t.prompt_id[ia]), asked=True)
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
    #: conversations behind the scored pairs (JSON or tool turns can be a subset of the pair's)
    conversations: int = 0


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
            boot.conversations(shared),
        )
    return gaps


def similarity_summary(
    key: str,
    scores: Mapping[str, PairScores],
    reps: Sequence[FloatArray],
    gaps: Mapping[str, Gap],
    boot: Bootstrap | None = None,
) -> Similarity:
    """Mean/min per kind, the A/A noise floor, and the paired gap to it with a 95 % CI (given
    ``boot``: the one interval rule over the conversations behind that kind's pairs)."""
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
            gap_reps = ratio_replicates(reps[g.sum_handle], reps[g.count_handle])
            n = g.conversations or g.n_pairs
            ci = boot.interval(gap_reps, n) if boot is not None else interval(gap_reps)
            below = Effect(value=g.value, ci95=ci, significant=excludes(ci, 0.0), n_pairs=n)
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
