"""The real traffic mix: prompt ``weight`` (how often a prompt occurs) and ``reference`` answers.

Imported traffic merges identical requests into one prompt with a weight, so a plain mean
over rows would price a rare request like a frequent one. Here each row counts as often as its
prompt occurs: a weighted mean cost per request per arm, its projections, and the arm-vs-arm
cost ratio under that mix — each with an interval of the same weighted quantity. The intervals
come from the scenario's own bootstrap design and seed (the resamples of the unweighted
figures): a resample's statistic weighs each request by its prompt's weight times how often
the resample drew its conversation, and the small-sample expansion uses the effective number
of conversations (:meth:`harness.analysis.stats.Bootstrap.weighted_design`). Only cost is
weighted: latency, cache shares and the verdict cards weigh every conversation equally
(docs/statistics.md, "Traffic weights").

A prompt's ``reference`` (a known-good answer, e.g. the logged reply) is compared with each
arm's final text reply of every conversation, beside the arms' similarity to each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.analysis import decide, stats
from harness.analysis.metrics import (
    ObservationTable,
    billed_tokens,
    comparison_key,
    comparison_pairs,
    effect_from,
    scenario_bootstrap,
)
from harness.analysis.pricing import project
from harness.analysis.similarity import text_similarity
from harness.summary import Effect, PromptSummary, ReferenceScore, Summary, WeightedCost
from harness.translate.tokens import CACHE_MIN_TOKENS

__all__ = [
    "PromptTraffic",
    "TrafficCosts",
    "apply_traffic",
    "prompt_summaries",
    "traffic_costs",
]

FloatArray = stats.FloatArray
IntArray = stats.IntArray


@dataclass(frozen=True)
class PromptTraffic:
    """What a scenario file says about one prompt's place in the traffic."""

    weight: int = 1
    reference: str | None = None


@dataclass(frozen=True)
class TrafficCosts:
    """One scenario's weighted costs: per arm, and per comparison ``<a>_vs_<b>``."""

    arms: dict[str, WeightedCost | None]
    ratios: dict[str, Effect | None]


def _row_weights(t: ObservationTable, weights: Mapping[str, int]) -> FloatArray:
    return np.array([weights.get(p, 1) for p in t.prompt_id], dtype=np.float64)


def _scaled(ci: tuple[float, float] | None, factor: float) -> tuple[float, float] | None:
    return None if ci is None else (ci[0] * factor, ci[1] * factor)


@dataclass
class _Side:
    """One arm's weighted mean registered with the bootstrap."""

    num: int
    den: int
    mean: float
    shares: FloatArray
    conversations: int
    event_var: float = 0.0


def _register(
    boot: stats.Bootstrap, units: IntArray, values: FloatArray, w: FloatArray, conversations: int
) -> _Side:
    assert boot.clusters is not None  # unit_ids always gives the conversation of each unit
    shares = np.bincount(boot.clusters[units], weights=w, minlength=boot.n_clusters)
    return _Side(
        boot.total(units, values * w),
        boot.total(units, w),
        float((values * w).sum() / w.sum()),
        shares.astype(np.float64),
        conversations,
    )


def traffic_costs(
    t: ObservationTable,
    cost: FloatArray,
    weights: Mapping[str, int],
    *,
    billed: FloatArray | None = None,
    missed: FloatArray | None = None,
    name: str = "",
    seed: int = 0,
    resamples: int = stats.DEFAULT_RESAMPLES,
    margins: decide.Margins = decide.DEFAULT_MARGINS,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> TrafficCosts:
    """Weighted cost per request per arm and weighted cost ratios, with intervals.

    ``t``: one scenario's measured rows, in the order the analysis saw them, so that ``name``
    and ``seed`` draw the very resamples of the unweighted figures. ``cost``: per row, as
    billed; ``billed`` and ``missed``: per row without the cache nonce, and as if nothing had
    been cached (the cost ratio is matched and keeps room for cache misses, as the unweighted
    one does; without them the ratio uses ``cost`` and no room). ``pairs``: the comparisons
    (all by default).
    """
    boot, units = scenario_bootstrap(t, name=name, seed=seed, resamples=resamples)
    w_row = _row_weights(t, weights)
    groups: dict[str, list[int]] = {}
    for i, arm in enumerate(t.arm):
        groups.setdefault(arm, []).append(i)
    by_arm = {arm: np.array(rows, dtype=np.int64) for arm, rows in groups.items()}
    sides: dict[str, _Side | None] = {}
    for arm, r in by_arm.items():
        use = r[t.has_usage[r]]
        if use.size == 0 or not np.isfinite(cost[use]).all():
            sides[arm] = None
            continue
        sides[arm] = _register(
            boot, units[use], cost[use], w_row[use], boot.conversations(units[r])
        )
    paired: dict[str, tuple[_Side, _Side] | None] = {}
    for a, b in comparison_pairs(by_arm) if pairs is None else pairs:
        paired[comparison_key(a, b)] = _match(
            boot, t, units, by_arm[a], by_arm[b], w_row, cost if billed is None else billed, missed
        )
    reps = boot.run()
    arms: dict[str, WeightedCost | None] = {}
    for arm, side in sides.items():
        projection = project(side.mean) if side is not None else None
        if side is None or projection is None:
            arms[arm] = None
            continue
        mean_reps = stats.ratio_replicates(reps[side.num], reps[side.den])
        ci = boot.interval(mean_reps, side.conversations, side.shares)
        effective = boot.effective_conversations(side.shares)
        arms[arm] = WeightedCost(
            per_request_usd=projection.per_request_usd,
            per_1k_requests_usd=projection.per_1k_requests_usd,
            per_1m_requests_usd=projection.per_1m_requests_usd,
            requests_represented=int(w_row[by_arm[arm][t.has_usage[by_arm[arm]]]].sum()),
            per_request_usd_ci95=ci,
            per_1k_requests_usd_ci95=_scaled(ci, 1_000),
            per_1m_requests_usd_ci95=_scaled(ci, 1_000_000),
            effective_conversations=min(effective, side.conversations),
        )
    ratios: dict[str, Effect | None] = {}
    rule = decide.rule_for("cost_ratio", margins)
    for key, pair in paired.items():
        value = stats.safe_ratio(pair[0].mean, pair[1].mean) if pair is not None else None
        if pair is None or value is None:
            ratios[key] = None
            continue
        x, y = pair
        rep = stats.ratio_replicates(
            stats.ratio_replicates(reps[x.num], reps[x.den]),
            stats.ratio_replicates(reps[y.num], reps[y.den]),
        )
        ci = boot.interval(rep, x.conversations, x.shares)
        if x.mean and y.mean:  # a free arm (ratio 0) has no relative spread to widen by
            # the unweighted ratio's room for cache misses, each request weighed as it is here
            rel = x.event_var / x.mean**2 + y.event_var / y.mean**2
            ci = boot.widen_log(ci, value, math.sqrt(rel), x.conversations, x.shares)
        n = min(boot.effective_conversations(x.shares), x.conversations)
        ratios[key] = effect_from(value, ci, 1.0, n, rule)
    return TrafficCosts(arms, ratios)


def _match(
    boot: stats.Bootstrap,
    t: ObservationTable,
    units: IntArray,
    ra: IntArray,
    rb: IntArray,
    w_row: FloatArray,
    cost: FloatArray,
    missed: FloatArray | None,
) -> tuple[_Side, _Side] | None:
    """Both arms' weighted means over the requests both reported usage for (as the
    unweighted ratio: :func:`harness.analysis.metrics.match_usage`)."""
    common = np.intersect1d(units[ra[t.has_usage[ra]]], units[rb[t.has_usage[rb]]])
    if common.size == 0:
        return None
    n = boot.conversations(common)
    out = []
    for rows in (ra, rb):
        r = rows[t.has_usage[rows] & np.isin(units[rows], common)]
        if not np.isfinite(cost[r]).all():
            return None
        w = w_row[r]
        side = _register(boot, units[r], cost[r], w, n)
        if missed is not None:
            _, cached, _ = billed_tokens(t, r)
            could = ~t.cold[r] & (t.input_tokens[r] >= CACHE_MIN_TOKENS)
            hit = (cached[could] > 0).astype(np.float64)
            extra = (missed[r] - cost[r])[could]
            side.event_var = stats.cache_event_var(extra, hit, float(w.sum()), w[could])
        out.append(side)
    return out[0], out[1]


def _final_replies(t: ObservationTable, rows: Sequence[int]) -> dict[tuple[str, int], str]:
    """(arm, repeat) → the last turn's text of each conversation that ended in text."""
    last: dict[tuple[str, int], tuple[int, str]] = {}
    for i in rows:
        text = t.output_text[i]
        if not t.ok[i] or not text:
            continue
        key = (t.arm[i], int(t.repeat[i]))
        turn = int(t.turn[i])
        if key not in last or turn > last[key][0]:
            last[key] = (turn, text)
    return {k: v[1] for k, v in last.items()}


def prompt_summaries(
    t: ObservationTable, traffic: Mapping[str, PromptTraffic]
) -> dict[str, PromptSummary]:
    """Per prompt: its weight, each arm's similarity to the reference and the arms' mean text
    similarity to each other (over the same repeat and turn)."""
    by_prompt: dict[str, list[int]] = {}
    for i, pid in enumerate(t.prompt_id):
        by_prompt.setdefault(pid, []).append(i)
    arms = sorted(set(t.arm))
    out: dict[str, PromptSummary] = {}
    for pid, rows in sorted(by_prompt.items()):
        info = traffic.get(pid, PromptTraffic())
        reference: dict[str, ReferenceScore] = {}
        if info.reference is not None:
            scores: dict[str, list[float]] = {}
            for (arm, _), text in _final_replies(t, rows).items():
                scores.setdefault(arm, []).append(text_similarity(text, info.reference))
            for arm in arms:
                got = scores.get(arm, [])
                reference[arm] = ReferenceScore(
                    n=len(got),
                    mean=float(np.mean(got)) if got else None,
                    min=float(np.min(got)) if got else None,
                )
        texts = {
            (t.arm[i], int(t.repeat[i]), int(t.turn[i])): t.output_text[i] or ""
            for i in rows
            if t.ok[i]
        }
        between: dict[str, float | None] = {}
        for a, b in comparison_pairs(arms):
            pair = [
                text_similarity(text, texts[(b, r, turn)])
                for (arm, r, turn), text in texts.items()
                if arm == a and (b, r, turn) in texts and (text or texts[(b, r, turn)])
            ]
            between[comparison_key(a, b)] = float(np.mean(pair)) if pair else None
        out[pid] = PromptSummary(
            weight=info.weight,
            reference=info.reference is not None,
            reference_similarity=reference,
            arm_similarity=between,
        )
    return out


def apply_traffic(
    summary: Summary,
    table: ObservationTable,
    cost: FloatArray,
    traffic: Mapping[tuple[str, str], PromptTraffic],
    *,
    billed: FloatArray | None = None,
    missed: FloatArray | None = None,
    seed: int = 0,
    resamples: int = stats.DEFAULT_RESAMPLES,
    margins: Mapping[str, decide.Margins] | None = None,
) -> Summary:
    """The summary with weighted costs (for scenarios with a prompt weighing more than 1) and
    per-prompt reference similarity (with a weight above 1 or a reference; unchanged
    otherwise). ``table`` holds the measured rows the summary was computed from; ``cost``,
    ``billed`` and ``missed`` their costs (see :func:`traffic_costs`); ``seed`` and
    ``resamples`` those of the analysis."""
    scenarios = []
    for sc in summary.scenarios:
        mine = {p: v for (s, p), v in traffic.items() if s == sc.name}
        weighted = any(v.weight != 1 for v in mine.values())
        if not weighted and not any(v.reference is not None for v in mine.values()):
            scenarios.append(sc)
            continue
        rows = np.array([i for i, s in enumerate(table.scenario) if s == sc.name], dtype=np.int64)
        t = table.take(rows)
        update: dict[str, object] = {"prompts": prompt_summaries(t, mine)}
        if weighted:
            found = traffic_costs(
                t,
                cost[rows],
                {p: v.weight for p, v in mine.items()},
                billed=None if billed is None else billed[rows],
                missed=None if missed is None else missed[rows],
                name=sc.name,
                seed=seed,
                resamples=resamples,
                margins=(margins or {}).get(sc.name, decide.DEFAULT_MARGINS),
                pairs=[(c.a, c.b) for c in sc.comparisons.values()],
            )
            update["arms"] = {
                name: arm
                if arm.cost_usd is None
                else arm.model_copy(
                    update={
                        "cost_usd": arm.cost_usd.model_copy(
                            update={"weighted": found.arms.get(name)}
                        )
                    }
                )
                for name, arm in sc.arms.items()
            }
            update["comparisons"] = {
                key: c.model_copy(
                    update={
                        # a cost ratio that cannot be assessed (shadow pairs' cache) stays so
                        "weighted_cost_ratio": None
                        if c.cost_ratio is None
                        else found.ratios.get(key)
                    }
                )
                for key, c in sc.comparisons.items()
            }
        scenarios.append(sc.model_copy(update=update))
    return summary.model_copy(update={"scenarios": scenarios})
