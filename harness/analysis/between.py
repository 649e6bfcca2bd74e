"""Between-run comparisons: a candidate run against a baseline of one or several runs.

Why not two independent bootstraps (what ``compare_runs`` did before): two runs of the same
scenario send the same prompts, turns and repeat indexes, so their requests pair up. Resampling
each run on its own throws the pairing away — two runs with identical, deterministic cost got a
cost interval of −6 % to +6 % and a fixed 44 % hit ratio an interval of 27–61 %. And it ignores
that runs differ as wholes (the hour, the server's load, a deploy): resampling requests within
one run cannot see that, so false alarms grew with the sample size (7.5 % at 5 repeats, 20 % at
30 with an 8 % run-level spread).

So here:

- **Pairing.** The resampling unit is the conversation, matched across runs by prompt × repeat
  index (all its turns, the candidate's and every baseline run's rows together), stratified by
  prompt when each prompt has at least two conversations. Cost, tokens and cache are compared
  over the prompt × turn × repeat keys both sides completed with usage (a request one side lost
  does not tilt the ratio).
- **Run-level variance.** Each ratio's log replicates (each delta's replicates) get a normal
  term of variance ``σ²_run · (1 + 1/k)`` for a baseline of ``k`` runs: the candidate run's own
  run effect plus the baseline mean's. ``σ²_run`` is estimated from a baseline of ``k ≥ 2`` runs
  (the spread of the runs' own estimates minus their within-run sampling variance, floored at 0);
  with one run it is *assumed*: :data:`ASSUMED_RUN_SPREAD` (see there for where the numbers come
  from). Pass ``spread=`` to set it yourself.

The interval is a percentile interval of those replicates; a value equal in every resample gives
a zero-width interval (identical deterministic cost: 1.00× (1.00–1.00)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.analysis import decide, stats
from harness.analysis.metrics import MEDIAN_RATIOS, ObservationTable, latency_columns
from harness.analysis.pricing import PriceBook
from harness.arms import Arm
from harness.summary import Effect, RunArmComparison, RunSpreadInfo

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = [
    "ASSUMED_RUN_SPREAD",
    "BOOTSTRAP_UNIT",
    "compare_tables",
    "conversation_weights",
    "quantile_interval",
    "weighted_quantile",
]

BOOTSTRAP_UNIT = (
    "conversation (prompt × repeat), paired across runs by prompt × turn × repeat index, "
    "plus run-level variance"
)

#: Run-to-run spread assumed when the baseline holds one run (so it cannot be estimated), on
#: each metric's own scale: log-sd for ratios, the metric's unit for deltas.
#:
#: - Latency ratios: 0.03 (≈ 3 % between the medians of two runs of the same requests, i.e. a
#:   4.2 % log-sd on the ratio of one candidate run to one baseline run). An assumption, not a
#:   measurement on OpenAI — this project has none: the emulator has no run-level effect, and a
#:   hosted API's medians move with the hour and the load by a few per cent to well over 10 %.
#:   3 % is a floor: the smallest spread we would call plausible for two CI runs on one
#:   machine against one target, so a one-run baseline never claims the precision of a
#:   within-run comparison. It keeps A/A false alarms bounded as samples grow (they grew to
#:   20 % at 30 repeats with none) and still lets a +25 % regression fail at a few hundred
#:   samples. Save a baseline of several runs (``harness baseline save RUN RUN RUN --name N``)
#:   to replace it with an estimate, or pass ``run_spread`` / ``harness gate --run-spread``.
#: - Cost, tokens, cache: 0. They are functions of token counts, which a scenario fixes up to
#:   the model's sampling (within-run variance, already in the bootstrap).
#: - Error rate: 0 (failures are counted per request; a run-wide outage is what the gate is for).
ASSUMED_RUN_SPREAD: Mapping[str, float] = {
    **{name: 0.03 for name, _ in MEDIAN_RATIOS},
    "cost_ratio": 0.0,
    "output_tokens_ratio": 0.0,
    "cache_hit_ratio_delta": 0.0,
    "cache_hit_improvement": 0.0,
    "error_rate_delta": 0.0,
}
_LOG_METRICS = frozenset({n for n, _ in MEDIAN_RATIOS} | {"cost_ratio", "output_tokens_ratio"})
#: Relative changes (value − 1 is the ratio): run-level noise is added on log(1 + value).
_RELATIVE = frozenset({"cache_hit_improvement"})
#: Resamples per block: bounds the weight matrices (resamples × rows) to a few tens of MB.
_BLOCK = 250


# --- resampling --------------------------------------------------------------------------------


def conversation_weights(strata: IntArray, resamples: int, rng: np.random.Generator) -> FloatArray:
    """``resamples`` × units bootstrap counts: each stratum (prompt) resampled on its own when
    every stratum has ≥ 2 units, else all units together (one conversation per prompt)."""
    n = strata.size
    out = np.zeros((resamples, n), dtype=np.float64)
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    if any(g.size < 2 for g in groups):
        groups = [np.arange(n)]
    rows = np.arange(resamples)[:, None]
    for g in groups:
        picks = g[rng.integers(0, g.size, size=(resamples, g.size))]
        np.add.at(out, (np.broadcast_to(rows, picks.shape), picks), 1.0)
    return out


def weighted_quantile(
    values: FloatArray, units: IntArray, weights: FloatArray, q: float
) -> FloatArray:
    """Per row of ``weights`` (resamples × units), the ``q`` quantile of ``values`` with each
    value repeated as often as its unit was drawn — ``numpy.quantile``'s linear rule on the
    expanded sample (the median averages the two middle values). NaN when nothing was drawn."""
    out = np.full(weights.shape[0], np.nan)
    if values.size == 0:
        return out
    order = np.argsort(values, kind="stable")
    v, u = values[order], units[order]
    cum = np.cumsum(weights[:, u], axis=1)
    total = cum[:, -1]
    pos = q * (total - 1.0)  # 0-based position in the expanded sample
    lo_rank, hi_rank = np.floor(pos), np.ceil(pos)
    # item at 0-based position p: the first value whose cumulative count exceeds p
    lo = np.minimum((cum <= lo_rank[:, None]).sum(axis=1), v.size - 1)
    hi = np.minimum((cum <= hi_rank[:, None]).sum(axis=1), v.size - 1)
    frac = pos - lo_rank
    res = v[lo] + (v[hi] - v[lo]) * frac
    res[total <= 0] = np.nan
    return np.asarray(res, dtype=np.float64)


# --- one arm across runs -------------------------------------------------------------------------


@dataclass
class _Side:
    """One run's rows of one arm: their unit (conversation) and key (prompt, turn, repeat)."""

    rows: IntArray
    table: ObservationTable
    units: IntArray
    keys: list[tuple[str, int, int]]
    lat: dict[str, FloatArray]
    cost: FloatArray


@dataclass
class _Stat:
    """A statistic of weights → replicates; ``per_run`` gives it for baseline run j alone
    (for the run-level variance), None when the metric has no per-run counterpart."""

    compute: Callable[[FloatArray], FloatArray]
    per_run: list[Callable[[FloatArray], FloatArray]] = field(default_factory=list)


def _median_of(sides: Sequence[_Side], col: str) -> Callable[[FloatArray], FloatArray]:
    vals, units = [], []
    for s in sides:
        ok = s.table.ok[s.rows] & np.isfinite(s.lat[col][s.rows])
        vals.append(s.lat[col][s.rows][ok])
        units.append(s.units[ok])
    v = np.concatenate(vals) if vals else np.zeros(0)
    u = np.concatenate(units).astype(np.int64) if units else np.zeros(0, dtype=np.int64)
    return lambda w: weighted_quantile(v, u, w, 0.5)


def _unit_sums(n_units: int, units: IntArray, values: FloatArray) -> FloatArray:
    return np.bincount(units, weights=values, minlength=n_units).astype(np.float64)


def _matched(
    cand: _Side, base: Sequence[_Side], ok: Callable[[_Side], npt.NDArray[np.bool_]]
) -> tuple[IntArray, list[int], list[list[int]]]:
    """Candidate rows whose key some baseline run also has (both passing ``ok``), and for each
    of them the baseline rows (per run) with that key."""
    cand_ok = ok(cand)
    base_index: list[dict[tuple[str, int, int], int]] = []
    for b in base:
        bok = ok(b)
        base_index.append({b.keys[i]: int(b.rows[i]) for i in range(b.rows.size) if bok[i]})
    c_rows: list[int] = []
    b_rows: list[list[int]] = []
    c_pos: list[int] = []
    for i in range(cand.rows.size):
        if not cand_ok[i]:
            continue
        found = [idx[cand.keys[i]] for idx in base_index if cand.keys[i] in idx]
        if found:
            c_pos.append(i)
            c_rows.append(int(cand.rows[i]))
            b_rows.append(found)
    return np.array(c_pos, dtype=np.int64), c_rows, b_rows


def _sum_stats(
    n_units: int, cand: _Side, base: Sequence[_Side], usage: str
) -> tuple[dict[str, FloatArray], dict[str, FloatArray], int]:
    """Per-unit sums over matched keys: candidate and baseline (mean over the baseline runs that
    have the key). ``usage`` = "usage" (tokens) or "cost" (priced rows)."""

    def ok(s: _Side) -> npt.NDArray[np.bool_]:
        m = s.table.ok[s.rows] & s.table.has_usage[s.rows]
        return m & np.isfinite(s.cost[s.rows]) if usage == "cost" else m

    pos, c_rows, b_rows = _matched(cand, base, ok)
    units = cand.units[pos] if pos.size else np.zeros(0, dtype=np.int64)
    t_c = cand.table
    out_c: dict[str, FloatArray] = {}
    out_b: dict[str, FloatArray] = {}
    cr = np.array(c_rows, dtype=np.int64)
    t_b = base[0].table if base else t_c
    # every baseline side of one scenario and arm shares one table (the runs concatenated)
    for name, col in (
        ("input", t_c.input_tokens),
        ("cached", t_c.cached_tokens),
        ("output", t_c.output_tokens),
    ):
        out_c[name] = _unit_sums(
            n_units, units, col[cr].astype(np.float64) if cr.size else np.zeros(0)
        )
    out_c["cost"] = _unit_sums(n_units, units, cand.cost[cr] if cr.size else np.zeros(0))
    out_c["n"] = _unit_sums(n_units, units, np.ones(cr.size))
    base_cols: dict[str, FloatArray] = {
        "input": t_b.input_tokens.astype(np.float64),
        "cached": t_b.cached_tokens.astype(np.float64),
        "output": t_b.output_tokens.astype(np.float64),
        "cost": base[0].cost if base else np.zeros(0),
    }
    for name, bcol in base_cols.items():
        vals = np.array([float(np.mean(bcol[r])) for r in b_rows]) if b_rows else np.zeros(0)
        out_b[name] = _unit_sums(n_units, units, vals)
    out_b["n"] = out_c["n"]
    return out_c, out_b, int(np.unique(units).size)


def _ratio_of(
    f: Callable[[FloatArray], FloatArray], g: Callable[[FloatArray], FloatArray]
) -> Callable[[FloatArray], FloatArray]:
    return lambda w: stats.ratio_replicates(f(w), g(w))


def _arm_stats(
    n_units: int, cand: _Side, base: Sequence[_Side]
) -> tuple[dict[str, _Stat], dict[str, int]]:
    """Every between-run statistic of one arm, and how many conversations each is paired over."""
    out: dict[str, _Stat] = {}
    paired: dict[str, int] = {}
    cand_units = set(cand.units.tolist())
    base_units = set().union(*(set(b.units.tolist()) for b in base)) if base else set()
    both = len(cand_units & base_units)
    for name, col in MEDIAN_RATIOS:
        mc, mb = _median_of([cand], col), _median_of(base, col)
        per = [_median_of([b], col) for b in base]
        out[name] = _Stat(_ratio_of(mc, mb), per)
        paired[name] = both
    tok_c, tok_b, n_tok = _sum_stats(n_units, cand, base, "usage")
    cost_c, cost_b, n_cost = _sum_stats(n_units, cand, base, "cost")
    per_tok = [_sum_stats(n_units, cand, [b], "usage")[1] for b in base]
    per_cost = [_sum_stats(n_units, cand, [b], "cost")[1] for b in base]

    def mean_of(sums: dict[str, FloatArray], what: str) -> Callable[[FloatArray], FloatArray]:
        return lambda w: stats.ratio_replicates(w @ sums[what], w @ sums["n"])

    def hit(sums: dict[str, FloatArray]) -> Callable[[FloatArray], FloatArray]:
        return lambda w: stats.ratio_replicates(w @ sums["cached"], w @ sums["input"])

    hc, hb = hit(tok_c), hit(tok_b)
    cc, cb = mean_of(cost_c, "cost"), mean_of(cost_b, "cost")
    oc, ob = mean_of(tok_c, "output"), mean_of(tok_b, "output")
    out["cost_ratio"] = _Stat(_ratio_of(cc, cb), [mean_of(s, "cost") for s in per_cost])
    out["output_tokens_ratio"] = _Stat(_ratio_of(oc, ob), [mean_of(s, "output") for s in per_tok])
    out["cache_hit_ratio_delta"] = _Stat(lambda w: hc(w) - hb(w), [hit(s) for s in per_tok])
    out["cache_hit_improvement"] = _Stat(
        lambda w: stats.ratio_replicates(hc(w), hb(w)) - 1.0, [hit(s) for s in per_tok]
    )
    paired.update(
        cost_ratio=n_cost,
        output_tokens_ratio=n_tok,
        cache_hit_ratio_delta=n_tok,
        cache_hit_improvement=n_tok,
    )
    err_c = _unit_sums(n_units, cand.units, (~cand.table.ok[cand.rows]).astype(np.float64))
    n_c = _unit_sums(n_units, cand.units, np.ones(cand.rows.size))
    err_b = sum(
        (_unit_sums(n_units, b.units, (~b.table.ok[b.rows]).astype(np.float64)) for b in base),
        np.zeros(n_units),
    )
    n_b = sum((_unit_sums(n_units, b.units, np.ones(b.rows.size)) for b in base), np.zeros(n_units))
    out["error_rate_delta"] = _Stat(
        lambda w: (
            stats.ratio_replicates(w @ err_c, w @ n_c) - stats.ratio_replicates(w @ err_b, w @ n_b)
        )
    )
    paired["error_rate_delta"] = both
    return out, paired


def _run_variance(
    per_run: list[Callable[[FloatArray], FloatArray]], w: FloatArray, log: bool
) -> float | None:
    """σ²_run from k ≥ 2 baseline runs: variance of their point estimates minus their mean
    within-run (bootstrap) variance, floored at 0; None when it cannot be estimated."""
    if len(per_run) < 2:
        return None
    points, within = [], []
    ones = np.ones((1, w.shape[1]))
    for f in per_run:
        p, reps = f(ones)[0], f(w)
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                p, reps = math.log(p) if p > 0 else math.nan, np.log(reps)
        reps = reps[np.isfinite(reps)]
        if not math.isfinite(p) or reps.size < 3:
            return None
        points.append(p)
        within.append(float(reps.var(ddof=1)))
    return max(0.0, float(np.var(points, ddof=1)) - float(np.mean(within)))


def _effect(
    name: str,
    value: float,
    reps: FloatArray,
    sd_run: float,
    runs: int,
    n_pairs: int,
    rng: np.random.Generator,
    strata: int = 1,
) -> Effect | None:
    if not math.isfinite(value):
        return None
    log = name in _LOG_METRICS
    extra = sd_run * math.sqrt(1.0 + 1.0 / max(1, runs))
    if extra > 0:
        noise = rng.normal(0.0, extra, reps.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            if log:
                reps = np.exp(np.log(reps) + noise)
            elif name in _RELATIVE:
                reps = np.exp(np.log1p(reps) + noise) - 1.0
            else:
                reps = reps + noise
    # The within-run rule: no interval below the minimum of conversations, expanded at 10–20
    # (docs/statistics.md); stratified by prompt when every prompt has ≥ 2 conversations.
    ci = stats.interval(reps, n=n_pairs, strata=strata if n_pairs > 2 * strata else 1)
    null = 1.0 if log else 0.0
    return Effect(value=value, ci95=ci, significant=decide.excludes(ci, null), n_pairs=n_pairs)


def compare_arm(
    cand: _Side,
    base: Sequence[_Side],
    n_units: int,
    strata: IntArray,
    *,
    resamples: int,
    rng: np.random.Generator,
    spread: Mapping[str, float] | None,
    estimated: dict[str, float],
) -> RunArmComparison:
    """One arm: every metric as an :class:`Effect` (candidate / baseline)."""
    statistics, paired = _arm_stats(n_units, cand, base)
    n_strata = int(np.unique(strata).size)
    ones = np.ones((1, n_units))
    reps: dict[str, list[FloatArray]] = {k: [] for k in statistics}
    for start in range(0, resamples, _BLOCK):
        w = conversation_weights(strata, min(_BLOCK, resamples - start), rng)
        for k, s in statistics.items():
            reps[k].append(s.compute(w))
    w_est = conversation_weights(strata, min(resamples, 400), rng)
    fields: dict[str, Any] = {}
    for k, s in statistics.items():
        value = float(s.compute(ones)[0])
        if spread is not None and k in spread:
            sd = spread[k]
        else:
            var = _run_variance(s.per_run, w_est, k in _LOG_METRICS or k in _RELATIVE)
            sd = math.sqrt(var) if var is not None else ASSUMED_RUN_SPREAD[k]
            if var is not None:
                estimated[k] = max(estimated.get(k, 0.0), sd)
        fields[k] = _effect(
            k, value, np.concatenate(reps[k]), sd, len(base), paired[k], rng, n_strata
        )
    return RunArmComparison.model_validate(fields)


def _side(
    t: ObservationTable,
    rows: IntArray,
    unit_of: Mapping[tuple[str, int], int],
    lat: dict[str, FloatArray],
    cost: FloatArray,
) -> _Side:
    keys = [(t.prompt_id[i], int(t.turn[i]), int(t.repeat[i])) for i in rows.tolist()]
    units = np.array([unit_of[(p, r)] for p, _, r in keys], dtype=np.int64)
    return _Side(rows, t, units, keys, lat, cost)


def compare_tables(
    cand: ObservationTable,
    baseline: Sequence[ObservationTable],
    *,
    book: PriceBook,
    seed: int = 0,
    resamples: int = stats.DEFAULT_RESAMPLES,
    spread: Mapping[str, float] | None = None,
) -> tuple[dict[str, dict[str, RunArmComparison]], RunSpreadInfo]:
    """Every scenario and arm the candidate shares with the baseline (one table per baseline
    run, measured rows only). ``spread`` overrides the run-level spread per metric."""
    from harness.analysis.metrics import costs_per_row

    runs = [b for b in baseline if len(b)]
    base_all = _concat(runs) if runs else cand.take(np.zeros(0, dtype=np.int64))
    run_of = (
        np.concatenate([np.full(len(b), j, dtype=np.int64) for j, b in enumerate(runs)])
        if runs
        else np.zeros(0, dtype=np.int64)
    )
    lat_c, lat_b = latency_columns(cand), latency_columns(base_all)
    cost_c, cost_b = costs_per_row(cand, book), costs_per_row(base_all, book)
    rng = np.random.default_rng(seed)
    estimated: dict[str, float] = {}
    out: dict[str, dict[str, RunArmComparison]] = {}
    for scenario in sorted(set(cand.scenario) & set(base_all.scenario)):
        arms = sorted(
            {a for a, s in zip(cand.arm, cand.scenario, strict=True) if s == scenario}
            & {a for a, s in zip(base_all.arm, base_all.scenario, strict=True) if s == scenario},
            key=lambda a: Arm.of(a).sort_key,
        )
        per_arm: dict[str, RunArmComparison] = {}
        for arm in arms:
            rc = np.flatnonzero(
                np.array(
                    [
                        s == scenario and a == arm
                        for s, a in zip(cand.scenario, cand.arm, strict=True)
                    ],
                    dtype=bool,
                )
            )
            rb = np.flatnonzero(
                np.array(
                    [
                        s == scenario and a == arm
                        for s, a in zip(base_all.scenario, base_all.arm, strict=True)
                    ],
                    dtype=bool,
                )
            )
            convs = sorted(
                {(cand.prompt_id[i], int(cand.repeat[i])) for i in rc.tolist()}
                | {(base_all.prompt_id[i], int(base_all.repeat[i])) for i in rb.tolist()}
            )
            unit_of = {c: i for i, c in enumerate(convs)}
            prompts = {p: i for i, p in enumerate(sorted({p for p, _ in convs}))}
            strata = np.array([prompts[p] for p, _ in convs], dtype=np.int64)
            c_side = _side(cand, rc, unit_of, lat_c, cost_c)
            b_sides = [
                _side(base_all, rb[run_of[rb] == j], unit_of, lat_b, cost_b)
                for j in range(len(runs))
                if (run_of[rb] == j).any()
            ]
            per_arm[arm] = compare_arm(
                c_side,
                b_sides,
                len(convs),
                strata,
                resamples=resamples,
                rng=rng,
                spread=spread,
                estimated=estimated,
            )
        out[scenario] = per_arm
    k = len(runs)
    if spread is not None:
        source = "given"
        used = dict(spread)
    elif k >= 2:
        source = f"estimated from {k} baseline runs"
        used = {m: estimated.get(m, ASSUMED_RUN_SPREAD[m]) for m in ASSUMED_RUN_SPREAD}
    else:
        source = "assumed (a one-run baseline cannot show it; see ASSUMED_RUN_SPREAD)"
        used = dict(ASSUMED_RUN_SPREAD)
    return out, RunSpreadInfo(baseline_runs=k, source=source, spread=used)


def _concat(tables: Sequence[ObservationTable]) -> ObservationTable:
    if len(tables) == 1:
        return tables[0]
    from dataclasses import fields as dc_fields

    cols: dict[str, Any] = {}
    for f in dc_fields(ObservationTable):
        parts = [getattr(t, f.name) for t in tables]
        if isinstance(parts[0], np.ndarray):
            cols[f.name] = np.concatenate(parts)
        else:
            cols[f.name] = [x for p in parts for x in p]
    return ObservationTable(**cols)


# --- within one run: quantiles other than the median (p95 gates) -----------------------------


def quantile_interval(
    t: ObservationTable,
    scenario: str,
    arms: Sequence[str],
    col: str,
    q: float,
    *,
    resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, tuple[float, float] | None] | None:
    """The ``q`` quantile of ``col`` in one arm, or the ratio of two arms' quantiles
    (``arms[0] / arms[1]``), with a 95 % interval from resampling conversations (prompt ×
    repeat, both arms together, stratified by prompt). None when an arm has no value.

    Why: a p95 decided on its point value failed ~20 % of A/A runs at 20 samples for a 1.2×
    gate; the tail is noisy and the gate must see how noisy."""
    lat = latency_columns(t)[col]
    rows = [
        np.flatnonzero(
            np.array(
                [s == scenario and a == arm for s, a in zip(t.scenario, t.arm, strict=True)],
                dtype=bool,
            )
            & t.ok
            & np.isfinite(lat)
        )
        for arm in arms
    ]
    if any(r.size == 0 for r in rows):
        return None
    convs = sorted({(t.prompt_id[i], int(t.repeat[i])) for r in rows for i in r.tolist()})
    unit_of = {c: i for i, c in enumerate(convs)}
    prompts = {p: i for i, p in enumerate(sorted({p for p, _ in convs}))}
    strata = np.array([prompts[p] for p, _ in convs], dtype=np.int64)
    units = [
        np.array([unit_of[(t.prompt_id[i], int(t.repeat[i]))] for i in r.tolist()], dtype=np.int64)
        for r in rows
    ]
    rng = np.random.default_rng((seed, len(convs)))

    def statistic(w: FloatArray) -> FloatArray:
        qs = [weighted_quantile(lat[r], u, w, q) for r, u in zip(rows, units, strict=True)]
        return qs[0] if len(qs) == 1 else stats.ratio_replicates(qs[0], qs[1])

    value = float(statistic(np.ones((1, len(convs))))[0])
    if not math.isfinite(value):
        return None
    reps = np.concatenate(
        [
            statistic(conversation_weights(strata, min(_BLOCK, resamples - s), rng))
            for s in range(0, resamples, _BLOCK)
        ]
    )
    return value, stats.interval(reps)
