"""Observations → per-arm metrics and arm-vs-arm comparisons, as columns.

:class:`ObservationTable` holds one run's observations as numpy columns (null → NaN), so 100,000
records are analysed without building 100,000 pydantic models. The functions here register an
arm's statistics with a scenario's shared :class:`harness.analysis.stats.Bootstrap`, then turn the
replicates into :class:`harness.summary.ArmSummary` and comparison effects; all are pure.
``harness.analysis.analyze.scenario_summary`` orchestrates them.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.analysis import decide, stats
from harness.analysis.background import background_stats
from harness.analysis.pricing import PriceBook, project
from harness.arms import Arm
from harness.errors import HarnessError
from harness.records import LAG_BOUND_MS, NOT_SENT, Observation, ToolCallRecord
from harness.summary import (
    ArmSummary,
    CacheStats,
    CostStats,
    Effect,
    Estimate,
    LatencyStats,
    Power,
    SaturationStats,
    TokenStats,
    TurnStats,
)
from harness.translate.tokens import CACHE_MIN_TOKENS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

LATENCIES = (
    "ttft_ms",
    "ttfb_ms",
    "total_ms",
    "sdk_ttft_ms",
    "sdk_ttfb_ms",
    "sdk_total_ms",
    "first_output_ms",
)
TOKENS = (
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)

#: the text columns; _FIELDS starts with them, so a new one is also read from each record
STRING_COLUMNS = (
    "conversation",
    "run_id",
    "scenario",
    "prompt_id",
    "arm",
    "api",
    "model",
    "service_tier",
    "finish",
    "error_type",
    "output_text",
    "output_format",
    "client",
    "outcome",
)
_FIELDS = (
    *STRING_COLUMNS,
    "tool_calls",
    "turn",
    "repeat",
    "order",
    "cold",
    "warmup",
    "ok",
    "usage",
    "saturated",
    "loop_lag_ms",
    *LATENCIES,
)
_REQUIRED = frozenset(
    {"run_id", "scenario", "prompt_id", "arm", "api", "model", "turn", "repeat", "cold"}
)
_DEFAULTS: dict[str, Any] = {
    "order": 0,
    "warmup": False,
    "ok": False,
    "tool_calls": [],
    "saturated": False,
    "client": "sdk",
}
_GET_FIELDS = itemgetter(*_FIELDS)
_GET_TOKENS = itemgetter(*TOKENS)
_NO_TOKENS = (0,) * len(TOKENS)
_EMPTY_ROW: dict[str, Any] = {
    k: _DEFAULTS.get(k, "" if k in _REQUIRED else None) for k in _FIELDS
} | {"turn": 1, "repeat": 0, "cold": True}


@dataclass
class ObservationTable:
    """Observations as columns. Latency nulls are NaN; token columns are 0 without usage."""

    run_id: list[str]
    scenario: list[str]
    prompt_id: list[str]
    arm: list[str]
    api: list[str]
    model: list[str]
    service_tier: list[str | None]
    finish: list[str | None]
    error_type: list[str | None]
    output_text: list[str | None]
    #: the output format each request asked for (``Observation.output_format``), None if unknown
    output_format: list[str | None]
    #: the client that sent each request (``Observation.client``: sdk or raw)
    client: list[str]
    #: "refusal" for a reply the model refused (ok, counted apart), else None
    outcome: list[str | None]
    tool_calls: list[Sequence[ToolCallRecord]]
    turn: IntArray
    repeat: IntArray
    order: IntArray
    cold: BoolArray
    warmup: BoolArray
    ok: BoolArray
    has_usage: BoolArray
    ttft_ms: FloatArray
    ttfb_ms: FloatArray
    total_ms: FloatArray
    sdk_ttft_ms: FloatArray
    sdk_ttfb_ms: FloatArray
    sdk_total_ms: FloatArray
    #: first output of any kind, reasoning included (TTFT when no reasoning streams first)
    first_output_ms: FloatArray
    input_tokens: IntArray
    cached_tokens: IntArray
    cache_write_tokens: IntArray
    output_tokens: IntArray
    reasoning_tokens: IntArray
    #: text similarity stored with a shadow pair (computed before redaction), NaN elsewhere
    similarity: FloatArray
    #: timed while the client's event loop was saturated (harness.runner.saturation)
    saturated: BoolArray
    #: the client's worst event-loop lag during the request, NaN when not measured
    loop_lag_ms: FloatArray
    conversation: list[str | None]
    #: input tokens of the harness's own cache nonce (0 unless set by :func:`with_nonce_tokens`)
    nonce_tokens: IntArray
    #: ``Observation.background`` as written (background: true requests), else None
    background: list[Mapping[str, Any] | None]
    #: conversation state (harness.runner.state), NaN where not measured; forked is 1.0 / 0.0
    items_sent: FloatArray
    items_held: FloatArray
    duplicate_items: FloatArray
    forked: FloatArray

    def __len__(self) -> int:
        return len(self.arm)

    def take(self, idx: IntArray) -> ObservationTable:
        """The rows at ``idx`` (in that order)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            col = getattr(self, f.name)
            out[f.name] = col[idx] if isinstance(col, np.ndarray) else [col[i] for i in idx]
        return ObservationTable(**out)

    @classmethod
    def from_dicts(cls, rows: Sequence[Mapping[str, Any]]) -> ObservationTable:
        """Columns from parsed observation JSON objects (the fast path for JSONL)."""
        try:
            return cls._from_dicts(rows)
        except (KeyError, TypeError, ValueError) as exc:
            raise HarnessError(
                f"observation records are malformed ({type(exc).__name__}: "
                f"{exc}) — re-run `harness run` or fix the JSONL"
            ) from exc

    @classmethod
    def _from_dicts(cls, rows: Sequence[Mapping[str, Any]]) -> ObservationTable:
        # One C-level itemgetter per row and a zip transpose: ~10x faster than per-field loops.
        if not rows:
            return cls._from_dicts([_EMPTY_ROW]).take(np.zeros(0, dtype=np.int64))
        try:
            cols = dict(zip(_FIELDS, zip(*map(_GET_FIELDS, rows), strict=True), strict=True))
        except KeyError:  # records written by another tool may omit defaulted fields
            cols = dict(
                zip(
                    _FIELDS,
                    zip(
                        *(
                            tuple(
                                r[k] if k in _REQUIRED else r.get(k, _DEFAULTS.get(k))
                                for k in _FIELDS
                            )
                            for r in rows
                        ),
                        strict=True,
                    ),
                    strict=True,
                )
            )
        usages = cols["usage"]
        try:
            tokens = list(zip(*(_GET_TOKENS(u) if u else _NO_TOKENS for u in usages), strict=True))
        except KeyError:
            tokens = list(
                zip(
                    *(tuple(u.get(k, 0) for k in TOKENS) if u else _NO_TOKENS for u in usages),
                    strict=True,
                )
            )
        strings: dict[str, Any] = {k: list(cols[k]) for k in STRING_COLUMNS}
        return cls(
            **strings,
            tool_calls=[
                [ToolCallRecord.model_construct(**t) for t in tc] if tc else ()
                for tc in cols["tool_calls"]
            ],
            turn=np.array(cols["turn"], dtype=np.int64),
            repeat=np.array(cols["repeat"], dtype=np.int64),
            order=np.array(cols["order"], dtype=np.int64),
            cold=np.array(cols["cold"], dtype=np.bool_),
            warmup=np.array(cols["warmup"], dtype=np.bool_),
            ok=np.array(cols["ok"], dtype=np.bool_),
            has_usage=np.array([u is not None for u in usages], dtype=np.bool_),
            similarity=np.array([r.get("similarity") for r in rows], dtype=np.float64),
            saturated=np.array([bool(x) for x in cols["saturated"]], dtype=np.bool_),
            loop_lag_ms=np.array(cols["loop_lag_ms"], dtype=np.float64),
            nonce_tokens=np.zeros(len(rows), dtype=np.int64),
            background=[r.get("background") for r in rows],
            **_arrays(cols, tokens, rows),
        )

    @classmethod
    def from_observations(cls, observations: Iterable[Observation]) -> ObservationTable:
        """Columns from typed records (library callers and tests)."""
        return cls.from_dicts([o.model_dump() for o in observations])

    def measured(self) -> ObservationTable:
        """The rows analysis counts: the latest record per key, without planned tool-result
        turns that were not needed (``not_sent``: never requests, so never errors)."""
        t = self.latest_per_key()
        keep = np.array([e != NOT_SENT for e in t.error_type], dtype=np.bool_)
        return t if keep.all() else t.take(np.flatnonzero(keep))

    def latest_per_key(self) -> ObservationTable:
        """Drop earlier records of a key that a resumed run recorded again (last one wins).

        The key is (scenario, prompt, arm, repeat, turn, warm-up): a warm-up request never
        replaces a measured one.
        """
        n = len(self)
        if n == 0:
            return self
        key = np.zeros(n, dtype=np.int64)
        for col in (self.scenario, self.prompt_id, self.arm):
            codes = _factorize(col)
            key = key * (int(codes.max()) + 1) + codes
        for num in (self.repeat, self.turn, self.warmup.astype(np.int64)):
            key = key * (int(num.max() - num.min()) + 1) + (num - num.min())
        _, first_from_end = np.unique(key[::-1], return_index=True)
        if first_from_end.size == n:
            return self
        return self.take(np.sort(n - 1 - first_from_end))


#: Observation fields of the conversation-state check, as float columns (NaN: not measured).
STATE_COLUMNS = ("items_sent", "items_held", "duplicate_items", "forked")


def _arrays(
    cols: Mapping[str, Sequence[Any]],
    tokens: Sequence[Sequence[int]],
    rows: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    out: dict[str, Any] = {k: np.array(cols[k], dtype=np.float64) for k in LATENCIES}  # None→NaN
    out.update({k: np.array([r.get(k) for r in rows], dtype=np.float64) for k in STATE_COLUMNS})
    out.update({k: np.array(v, dtype=np.int64) for k, v in zip(TOKENS, tokens, strict=True)})
    return out


def _factorize(values: Sequence[str]) -> IntArray:
    codes: dict[str, int] = {}
    return np.array([codes.setdefault(v, len(codes)) for v in values], dtype=np.int64)


def with_nonce_tokens(t: ObservationTable, nonces: Mapping[str, str]) -> ObservationTable:
    """The table with each row's cache-nonce tokens counted (``meta.cache_nonces``: conversation
    id → nonce). The nonce is the harness's, not the user's prompt, and its length varies from
    conversation to conversation, so comparisons of cost and tokens leave it out."""
    from harness.runner.plan import nonce_prefix
    from harness.translate.tokens import count_text_tokens

    if not nonces:
        return t
    counts: dict[tuple[str, str], int] = {}
    out = np.zeros(len(t), dtype=np.int64)
    for i, (conv, model) in enumerate(zip(t.conversation, t.model, strict=True)):
        nonce = nonces.get(conv or "")
        if nonce is None or not t.has_usage[i]:
            continue
        key = (nonce, model)
        n = counts.get(key)
        if n is None:
            # the prefix ends in a space that joins the next word's token: count it without
            n = counts[key] = count_text_tokens(nonce_prefix(nonce).rstrip(), model)
        out[i] = n
    return replace(t, nonce_tokens=out)


def billed_tokens(t: ObservationTable, rows: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Input, cached and cache-write tokens of ``rows`` without the cache nonce. The nonce
    opens the prompt, so a cache hit or write (always a prefix) includes it."""
    nonce = t.nonce_tokens[rows]
    inp = np.maximum(t.input_tokens[rows] - nonce, 0)
    cached = t.cached_tokens[rows]
    cached = np.where(cached > 0, np.maximum(cached - nonce, 0), 0)
    write = t.cache_write_tokens[rows]
    write = np.where(write > 0, np.maximum(write - nonce, 0), 0)
    return inp, cached, write


def comparison_pairs(arms: Iterable[str]) -> list[tuple[str, str]]:
    """Comparisons a run emits: every arm vs chat, replicates vs their arm, a named variant vs
    its base arm, chained vs stateless responses, the conversation arm vs the chained one
    (both hold the state on the server)."""
    present = sorted(set(arms), key=lambda a: Arm.of(a).sort_key)
    pairs: list[tuple[str, str]] = []
    if "chat" in present:
        pairs += [(a, "chat") for a in present if a != "chat"]
    for a in present:
        arm = Arm.of(a)
        primary = arm.primary
        if a != primary and primary != "chat" and primary in present:
            pairs.append((a, primary))
        elif arm.variant is not None and not arm.is_replicate and arm.base in present:
            pairs.append((a, arm.base))
    for a, b in (
        ("responses_chained", "responses"),
        ("responses_conversation", "responses_chained"),
    ):
        if a in present and b in present:
            pairs.append((a, b))
    return pairs


def comparison_key(a: str, b: str) -> str:
    return f"{a}_vs_{b}"


def stable_seed(*parts: str) -> int:
    return zlib.crc32("\x1f".join(parts).encode())


# --- per scenario -----------------------------------------------------------------------------


@dataclass
class ArmData:
    """One arm's rows within a scenario: indices into the table and the pairing unit of each."""

    name: str
    rows: IntArray
    units: IntArray


@dataclass
class Handles:
    """Bootstrap handles registered for one arm."""

    medians: dict[str, int]
    totals: dict[str, int]


def _latency_stats(
    values: FloatArray, replicates: FloatArray | None, boot: stats.Bootstrap, n: int
) -> LatencyStats | None:
    q = stats.quantiles(values)
    if q is None:
        return None
    ci = boot.interval(replicates, n) if replicates is not None else None
    return LatencyStats(n=q.n, p50=q.p50, p95=q.p95, p99=q.p99, mean=q.mean, ci95=ci)


def _token_stats(values: IntArray) -> TokenStats | None:
    if values.size == 0:
        return None
    return TokenStats(total=int(values.sum()), mean=float(values.mean()), requests=int(values.size))


def _ratio_of_sums(num: IntArray | FloatArray, den: IntArray | FloatArray) -> float | None:
    d = float(den.sum())
    return float(num.sum()) / d if d > 0 else None


def latency_columns(t: ObservationTable) -> dict[str, FloatArray]:
    """Latency columns plus cold/warm TTFT and total (NaN outside their subset)."""
    cols = {name: getattr(t, name) for name in LATENCIES}
    nan = np.full(len(t), np.nan)
    cols["cold_ttft_ms"] = np.where(t.cold, t.ttft_ms, nan)
    cols["warm_ttft_ms"] = np.where(~t.cold, t.ttft_ms, nan)
    cols["cold_total_ms"] = np.where(t.cold, t.total_ms, nan)
    cols["warm_total_ms"] = np.where(~t.cold, t.total_ms, nan)
    return cols


def register_arm(
    boot: stats.Bootstrap,
    t: ObservationTable,
    arm: ArmData,
    lat: Mapping[str, FloatArray],
    cost: FloatArray,
) -> Handles:
    """Register one arm's statistics with the scenario's shared bootstrap."""
    r, u = arm.rows, arm.units
    ok = t.ok[r]
    med = {name: boot.median(u[ok], col[r][ok]) for name, col in lat.items()}
    use = t.has_usage[r]
    priced = use & np.isfinite(cost[r])
    one = np.ones(r.size)
    totals = {
        "input": boot.total(u[use], t.input_tokens[r][use].astype(np.float64)),
        "cached": boot.total(u[use], t.cached_tokens[r][use].astype(np.float64)),
        "output": boot.total(u[use], t.output_tokens[r][use].astype(np.float64)),
        "usage_n": boot.total(u[use], one[use]),
        "cost": boot.total(u[priced], cost[r][priced]),
        "cost_n": boot.total(u[priced], one[priced]),
        "errors": boot.total(u, (~ok).astype(np.float64)),
        "n": boot.total(u, one),
    }
    return Handles(med, totals)


def _per_turn(t: ObservationTable, rows: IntArray, cost: FloatArray) -> list[TurnStats]:
    out = []
    turns = t.turn[rows]
    for turn in np.unique(turns).tolist():
        r = rows[turns == turn]
        ok, use = t.ok[r], t.has_usage[r]
        ttft = stats.quantiles(t.ttft_ms[r][ok])
        total = stats.quantiles(t.total_ms[r][ok])
        c = cost[r][use]
        out.append(
            TurnStats(
                turn=int(turn),
                requests=int(r.size),
                errors=int((~ok).sum()),
                ttft_ms_p50=ttft.p50 if ttft else None,
                total_ms_p50=total.p50 if total else None,
                input_tokens_mean=float(t.input_tokens[r][use].mean()) if use.any() else None,
                cached_tokens_mean=float(t.cached_tokens[r][use].mean()) if use.any() else None,
                cache_hit_ratio=_ratio_of_sums(t.cached_tokens[r][use], t.input_tokens[r][use]),
                cost_usd_mean=float(c.mean()) if c.size and np.isfinite(c).all() else None,
            )
        )
    return out


def _mode(values: Iterable[str | None]) -> str | None:
    counts = Counter(v for v in values if v is not None)
    return counts.most_common(1)[0][0] if counts else None


def arm_summary(
    t: ObservationTable,
    arm: ArmData,
    h: Handles,
    reps: Sequence[FloatArray],
    lat: Mapping[str, FloatArray],
    cost: FloatArray,
    warmup_excluded: int,
    boot: stats.Bootstrap,
) -> ArmSummary:
    """An arm's summary from its rows and its bootstrap replicates."""
    r = arm.rows
    ok, use = t.ok[r], t.has_usage[r]
    n = boot.conversations(arm.units)
    latency = {
        name: _latency_stats(col[r][ok], reps[h.medians[name]], boot, n)
        for name, col in lat.items()
    }
    tokens = {name: _token_stats(getattr(t, name)[r][use]) for name in TOKENS}
    inp, cached = t.input_tokens[r][use], t.cached_tokens[r][use]
    hit = _ratio_of_sums(cached, inp)
    hit_reps = stats.ratio_replicates(reps[h.totals["cached"]], reps[h.totals["input"]])
    eligible = inp >= CACHE_MIN_TOKENS
    cache = (
        CacheStats(
            eligible_requests=int(eligible.sum()),
            eligible_input_tokens=int(inp[eligible].sum()),
            eligible_hit_ratio=_ratio_of_sums(cached[eligible], inp[eligible]),
            hit_requests=int((cached > 0).sum()),
            cache_write_tokens=int(t.cache_write_tokens[r][use].sum()),
        )
        if use.any()
        else None
    )
    costs = cost[r][use]
    cost_stats = None
    projection = project(float(costs.mean())) if costs.size else None
    if projection is not None and np.isfinite(costs).all():
        mean_reps = stats.ratio_replicates(reps[h.totals["cost"]], reps[h.totals["cost_n"]])
        cost_stats = CostStats(
            total_usd=float(costs.sum()),
            per_request_usd=Estimate(
                value=projection.per_request_usd, ci95=boot.interval(mean_reps, n)
            ),
            per_1k_requests_usd=projection.per_1k_requests_usd,
            per_1m_requests_usd=projection.per_1m_requests_usd,
            priced_requests=int(costs.size),
        )
    idx = r.tolist()
    lag = t.loop_lag_ms[r]
    timed = np.isfinite(lag)
    saturation = (
        SaturationStats(
            timed_requests=int(timed.sum()),
            saturated=int(t.saturated[r].sum()),
            late=int((lag[timed] > LAG_BOUND_MS).sum()),
            lag_p50_ms=float(np.percentile(lag[timed], 50)),
            lag_max_ms=float(lag[timed].max()),
        )
        if timed.any()
        else None
    )
    finish = Counter(f for f in map(t.finish.__getitem__, idx) if f)
    errors = Counter(e for e in map(t.error_type.__getitem__, idx) if e)
    return ArmSummary(
        api=_mode(map(t.api.__getitem__, idx)),
        model=_mode(map(t.model.__getitem__, idx)),
        requests=int(r.size),
        errors=int((~ok).sum()),
        error_rate=float((~ok).mean()) if r.size else None,
        refusals=sum(1 for o in map(t.outcome.__getitem__, idx) if o == "refusal"),
        warmup_excluded=warmup_excluded,
        **latency,
        **tokens,
        cache_hit_ratio=(
            Estimate(value=hit, ci95=boot.interval(hit_reps, n)) if hit is not None else None
        ),
        cache=cache,
        cost_usd=cost_stats,
        per_turn=_per_turn(t, r, cost),
        finish=dict(sorted(finish.items())),
        error_types=dict(sorted(errors.items())),
        saturation=saturation,
        background=background_stats(map(t.background.__getitem__, idx)),
    )


# --- comparisons ------------------------------------------------------------------------------


@dataclass
class Matched:
    """One arm's usage over the requests (prompt × repeat × turn) for which *both* arms of a
    comparison reported usage, without the cache nonce: the cost, cache and token comparisons
    use these, so one arm losing cheap cached turns to failures cannot move them."""

    handles: dict[str, int]
    sums: dict[str, float]
    priced: bool
    conversations: int
    #: variance of the mean cost per request from cache hits and misses
    #: (:func:`harness.analysis.stats.cache_event_var`)
    cost_event_var: float = 0.0
    #: the same for the cached share of input tokens
    share_event_var: float = 0.0

    def reps(self, reps: Sequence[FloatArray], num: str, den: str) -> FloatArray:
        return stats.ratio_replicates(reps[self.handles[num]], reps[self.handles[den]])

    def mean(self, num: str) -> float | None:
        n = self.sums["usage_n"]
        return self.sums[num] / n if n > 0 else None

    def share(self) -> float | None:
        inp = self.sums["input"]
        return self.sums["cached"] / inp if inp > 0 else None


def match_usage(
    boot: stats.Bootstrap,
    t: ObservationTable,
    x: ArmData,
    y: ArmData,
    cost: FloatArray,
    missed: FloatArray | None = None,
) -> tuple[Matched, Matched]:
    """Register x's and y's usage totals over the requests both reported usage for
    (``cost``: per row, without the nonce — :func:`costs_per_row`; ``missed``: the same
    had nothing been cached, for the cache-event spread of the cost)."""
    common = np.intersect1d(x.units[t.has_usage[x.rows]], y.units[t.has_usage[y.rows]])

    def one(arm: ArmData) -> Matched:
        keep = t.has_usage[arm.rows] & np.isin(arm.units, common)
        r, u = arm.rows[keep], arm.units[keep]
        inp, cached, _ = billed_tokens(t, r)
        cols: dict[str, FloatArray] = {
            "input": inp.astype(np.float64),
            "cached": cached.astype(np.float64),
            "output": t.output_tokens[r].astype(np.float64),
            "usage_n": np.ones(r.size),
            "cost": cost[r],
        }
        handles = {k: boot.total(u, v) for k, v in cols.items()}
        sums = {k: float(np.nansum(v)) for k, v in cols.items()}
        priced = bool(r.size) and bool(np.isfinite(cost[r]).all())
        # requests that could have hit: warm, and long enough to be cached at all
        could = ~t.cold[r] & (t.input_tokens[r] >= CACHE_MIN_TOKENS)
        hit = (cached[could] > 0).astype(np.float64)
        event_var = 0.0
        if priced and missed is not None:
            event_var = stats.cache_event_var((missed[r] - cost[r])[could], hit, r.size)
        # a miss loses that request's cached tokens: the variance of the cached total, scaled
        # to the share of all input tokens
        share_var = stats.cache_event_var(cached[could].astype(np.float64), hit, 1)
        share_var /= max(sums["input"], 1.0) ** 2
        return Matched(handles, sums, priced, boot.conversations(common), event_var, share_var)

    return one(x), one(y)


@dataclass
class ArmView:
    """Everything a comparison needs about one arm: its rows, bootstrap and summary."""

    table: ObservationTable
    arm: ArmData
    handles: Handles
    reps: Sequence[FloatArray]
    lat: Mapping[str, FloatArray]
    summary: ArmSummary
    boot: stats.Bootstrap

    def values(self, col: str) -> FloatArray:
        r = self.arm.rows
        return self.lat[col][r][self.table.ok[r]]

    def units_with(self, col: str) -> set[int]:
        r = self.arm.rows
        keep = self.table.ok[r] & np.isfinite(self.lat[col][r])
        return set(self.arm.units[keep].tolist())

    def median_reps(self, col: str) -> FloatArray:
        return self.reps[self.handles.medians[col]]

    def sum_ratio(self, num: str, den: str) -> FloatArray:
        return stats.ratio_replicates(
            self.reps[self.handles.totals[num]], self.reps[self.handles.totals[den]]
        )


def effect(
    value: float | None,
    replicates: FloatArray,
    null: float,
    n_pairs: int,
    *,
    rule: decide.Rule | None = None,
    boot: stats.Bootstrap | None = None,
) -> Effect | None:
    """Assemble an :class:`Effect` with its decision; None when the value cannot exist.

    Below the minimum number of conversations there is no interval (and no verdict).
    """
    if value is None or not math.isfinite(value):
        return None
    ci = (
        boot.interval(replicates, n_pairs)
        if boot is not None
        else stats.interval(replicates, n=n_pairs)
    )
    return effect_from(value, ci, null, n_pairs, rule)


def effect_from(
    value: float | None,
    ci: tuple[float, float] | None,
    null: float,
    n_pairs: int,
    rule: decide.Rule | None,
) -> Effect:
    """An :class:`Effect` of a value and its interval, decided by ``rule``."""
    return Effect(
        value=value,
        ci95=ci,
        significant=decide.excludes(ci, null),
        n_pairs=n_pairs,
        decision=decide.decide(ci, n_pairs, rule) if rule is not None else None,
        margin=rule.margin if rule is not None else None,
    )


MEDIAN_RATIOS = (
    ("ttft_p50_ratio", "ttft_ms"),
    ("first_output_p50_ratio", "first_output_ms"),
    ("ttfb_p50_ratio", "ttfb_ms"),
    ("total_p50_ratio", "total_ms"),
    ("sdk_ttft_p50_ratio", "sdk_ttft_ms"),
    ("sdk_total_p50_ratio", "sdk_total_ms"),
    ("cold_ttft_ratio", "cold_ttft_ms"),
    ("warm_ttft_ratio", "warm_ttft_ms"),
    ("cold_total_ratio", "cold_total_ms"),
)


def comparison_metrics(
    x: ArmView,
    y: ArmView,
    *,
    paired: bool,
    margins: decide.Margins = decide.DEFAULT_MARGINS,
    matched: tuple[Matched, Matched] | None = None,
) -> dict[str, Effect | None]:
    """Every numeric comparison of x vs y (ratios x/y, deltas x−y), each decided by
    :func:`harness.analysis.decide.decide` under ``margins``.

    ``paired``: both views share one bootstrap (same run, resampled by conversation) and
    ``n_pairs`` counts conversations present in both; otherwise the samples are independent
    (two runs) and ``n_pairs`` is the smaller sample. ``matched``: cost, cache and tokens over
    the requests both arms reported usage for, without the cache nonce (:func:`match_usage`).
    """

    boot = x.boot

    def n_common(ux: set[int], uy: set[int]) -> int:
        """Conversations behind a comparison (the resampling unit)."""
        if paired:
            return boot.conversations(ux & uy)
        return min(boot.conversations(ux), y.boot.conversations(uy))

    def eff(name: str, value: float | None, reps: FloatArray, null: float, n: int) -> Effect | None:
        return effect(value, reps, null, n, rule=decide.rule_for(name, margins), boot=x.boot)

    out: dict[str, Effect | None] = {}
    for name, col in MEDIAN_RATIOS:
        qx, qy = stats.quantiles(x.values(col)), stats.quantiles(y.values(col))
        value = stats.safe_ratio(qx.p50 if qx else None, qy.p50 if qy else None)
        reps = stats.ratio_replicates(x.median_reps(col), y.median_reps(col))
        out[name] = eff(name, value, reps, 1.0, n_common(x.units_with(col), y.units_with(col)))
    shared = n_common(set(x.arm.units.tolist()), set(y.arm.units.tolist()))
    sx, sy = x.summary, y.summary
    if matched is not None:
        mx, my = matched
        usage_n = mx.conversations
        hit_x, hit_y = mx.reps(x.reps, "cached", "input"), my.reps(x.reps, "cached", "input")
        vx, vy = mx.share(), my.share()
        cost_x, cost_y = mx.reps(x.reps, "cost", "usage_n"), my.reps(x.reps, "cost", "usage_n")
        cx = mx.mean("cost") if mx.priced and my.priced else None
        cy = my.mean("cost") if mx.priced and my.priced else None
        out_x, out_y = mx.reps(x.reps, "output", "usage_n"), my.reps(x.reps, "output", "usage_n")
        ox, oy = mx.mean("output"), my.mean("output")
    else:
        usage_n = shared
        hit_x, hit_y = x.sum_ratio("cached", "input"), y.sum_ratio("cached", "input")
        vx = sx.cache_hit_ratio.value if sx.cache_hit_ratio else None
        vy = sy.cache_hit_ratio.value if sy.cache_hit_ratio else None
        cost_x, cost_y = x.sum_ratio("cost", "cost_n"), y.sum_ratio("cost", "cost_n")
        cx = sx.cost_usd.per_request_usd.value if sx.cost_usd else None
        cy = sy.cost_usd.per_request_usd.value if sy.cost_usd else None
        out_x, out_y = x.sum_ratio("output", "usage_n"), y.sum_ratio("output", "usage_n")
        ox = sx.output_tokens.mean if sx.output_tokens else None
        oy = sy.output_tokens.mean if sy.output_tokens else None
    delta = vx - vy if vx is not None and vy is not None else None
    d = eff("cache_hit_ratio_delta", delta, hit_x - hit_y, 0.0, usage_n)
    rel = stats.safe_ratio(vx, vy)
    improvement = effect(
        rel - 1.0 if rel is not None else None,
        stats.ratio_replicates(hit_x, hit_y) - 1.0,
        0.0,
        usage_n,
        boot=x.boot,
    )
    if matched is not None and d is not None and delta is not None:
        # As for cost below: warm turns that all hit leave the resamples no spread in the
        # cached share, yet a 1-in-10 miss rate is plausible.
        var_x, var_y = matched[0].share_event_var, matched[1].share_event_var
        ci = boot.widen(d.ci95, delta, math.sqrt(var_x + var_y), usage_n)
        if ci != d.ci95:
            d = effect_from(
                delta, ci, 0.0, usage_n, decide.rule_for("cache_hit_ratio_delta", margins)
            )
        if improvement is not None and improvement.ci95 and rel and vx and vy:
            se_log = math.sqrt(var_x / vx**2 + var_y / vy**2)
            lo, hi = improvement.ci95
            wide = boot.widen_log((lo + 1.0, hi + 1.0), rel, se_log, usage_n)
            if wide is not None and wide != (lo + 1.0, hi + 1.0):
                improvement = effect_from(
                    rel - 1.0, (wide[0] - 1.0, wide[1] - 1.0), 0.0, usage_n, None
                )
    out["cache_hit_ratio_delta"] = d
    if improvement is not None and d is not None:
        # judged by the absolute difference (decide.rule_for): same decision, its margin
        improvement = improvement.model_copy(update={"decision": d.decision, "margin": d.margin})
    out["cache_hit_improvement"] = improvement
    cost = eff(
        "cost_ratio", stats.safe_ratio(cx, cy), stats.ratio_replicates(cost_x, cost_y), 1.0, usage_n
    )
    if cost is not None and matched is not None and cx and cy:
        # Cache misses are rare events: ten warm turns that all hit leave the resamples no
        # spread, yet a 1-in-10 miss rate (each miss dearer by the cached share) is plausible.
        rel = matched[0].cost_event_var / cx**2 + matched[1].cost_event_var / cy**2
        ci = boot.widen_log(cost.ci95, cost.value or 0.0, math.sqrt(rel), usage_n)
        if ci != cost.ci95:
            cost = effect_from(cost.value, ci, 1.0, usage_n, decide.rule_for("cost_ratio", margins))
    out["cost_ratio"] = cost
    out["output_tokens_ratio"] = eff(
        "output_tokens_ratio",
        stats.safe_ratio(ox, oy),
        stats.ratio_replicates(out_x, out_y),
        1.0,
        usage_n,
    )
    ex, ey = sx.error_rate, sy.error_rate
    out["error_rate_delta"] = eff(
        "error_rate_delta",
        ex - ey if ex is not None and ey is not None else None,
        x.sum_ratio("errors", "n") - y.sum_ratio("errors", "n"),
        0.0,
        shared,
    )
    return out


def power_info(
    x: ArmView,
    y: ArmView,
    metric: Effect | None,
    metric_name: str,
    col: str,
    *,
    effect_size: float,
    power: float,
    margin: float = stats.LATENCY_MARGIN,
) -> Power | None:
    """Repeats needed for a true change of ``effect_size`` on a latency ratio to put the 95 %
    interval beyond the ``margin`` (the rule the gate and the verdicts use) with probability
    ``power``, from the observed spread (the bootstrap standard error of the log ratio, which
    includes pairing, prompt mix and drift)."""
    if metric is None:
        return None
    ratio = stats.ratio_replicates(x.median_reps(col), y.median_reps(col))
    finite = ratio[np.isfinite(ratio) & (ratio > 0)]
    se = float(np.log(finite).std(ddof=1)) if finite.size > 2 else math.nan
    t = x.table
    repeats = int(np.unique(np.concatenate([t.repeat[x.arm.rows], t.repeat[y.arm.rows]])).size)
    n_pairs = metric.n_pairs
    needed = stats.scale_for_power(se, n_pairs, effect_size, power=power, margin=margin)
    per_repeat = n_pairs / repeats if repeats else 0.0
    return Power(
        metric=metric_name,
        effect=effect_size,
        margin=margin,
        power=power,
        alpha=stats.ALPHA,
        sigma_log=stats.robust_sigma_log(np.concatenate([x.values(col), y.values(col)])),
        n_pairs=n_pairs,
        repeats=repeats,
        samples_needed=needed,
        repeats_needed=(
            math.ceil(needed / per_repeat) if needed is not None and per_repeat > 0 else None
        ),
    )


def unit_ids(t: ObservationTable, rows: IntArray) -> tuple[IntArray, int, IntArray, IntArray]:
    """Pairing unit (prompt × repeat × turn) of each row, numbered 0..K-1; K; the conversation
    (prompt × repeat, the resampling unit) of each unit; and the prompt of each conversation."""
    ids: dict[tuple[str, int, int], int] = {}
    conv_ids: dict[tuple[str, int], int] = {}
    prompt_ids: dict[str, int] = {}
    clusters: list[int] = []
    strata: list[int] = []
    prompts = [t.prompt_id[i] for i in rows]
    units = []
    for key in zip(prompts, t.repeat[rows].tolist(), t.turn[rows].tolist(), strict=True):
        unit = ids.get(key)
        if unit is None:
            unit = ids[key] = len(ids)
            conv = conv_ids.get(key[:2])
            if conv is None:
                conv = conv_ids[key[:2]] = len(conv_ids)
                strata.append(prompt_ids.setdefault(key[0], len(prompt_ids)))
            clusters.append(conv)
        units.append(unit)
    return (
        np.array(units, dtype=np.int64),
        len(ids),
        np.array(clusters, dtype=np.int64),
        np.array(strata, dtype=np.int64),
    )


def scenario_bootstrap(
    t: ObservationTable, *, name: str, seed: int, resamples: int
) -> tuple[stats.Bootstrap, IntArray]:
    """The scenario's one bootstrap over all its rows and each row's pairing unit.

    Seeded by ``(seed, name)`` so that every figure of a scenario (unweighted, traffic-weighted)
    draws the very same resamples.
    """
    units, n_units, clusters, strata = unit_ids(t, np.arange(len(t), dtype=np.int64))
    boot = stats.Bootstrap(
        n_units,
        resamples=resamples,
        seed=(seed, stable_seed(name)),
        clusters=clusters,
        strata=strata,
    )
    return boot, units


def costs_per_row(
    t: ObservationTable, book: PriceBook, *, without_nonce: bool = False, missed: bool = False
) -> FloatArray:
    """Cost of every row with usage (NaN without usage or without a known price);
    ``without_nonce``: of the tokens :func:`billed_tokens` leaves (for comparisons);
    ``missed``: as if the cache had missed (nothing cached)."""
    out = np.full(len(t), np.nan)
    codes: dict[tuple[str, str | None], int] = {}
    group = np.array(
        [codes.setdefault(k, len(codes)) for k in zip(t.model, t.service_tier, strict=True)],
        dtype=np.int64,
    )
    for (m, tier), code in codes.items():
        idx = np.flatnonzero((group == code) & t.has_usage)
        if idx.size == 0:
            continue
        if without_nonce:
            inp, cached, write = billed_tokens(t, idx)
        else:
            inp, cached, write = (
                t.input_tokens[idx],
                t.cached_tokens[idx],
                t.cache_write_tokens[idx],
            )
        if missed:
            cached = np.zeros_like(cached)
        c = book.cost_usd(m, tier, inp, cached, write, t.output_tokens[idx])
        if c is not None:
            out[idx] = c
    return out
