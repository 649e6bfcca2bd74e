"""The real traffic mix: prompt ``weight`` (how often a prompt occurs) and ``reference`` answers.

Imported traffic merges identical requests into one prompt with a weight, so a plain mean
over rows would price a rare request like a frequent one. Here each row counts as often as its
prompt occurs: a weighted mean cost per request and its projections. The bootstrap intervals
and the arm-vs-arm cost ratio stay unweighted (equal weight per conversation).

A prompt's ``reference`` (a known-good answer, e.g. the logged reply) is compared with each
arm's final text reply of every conversation, beside the arms' similarity to each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.analysis.metrics import ObservationTable, comparison_key, comparison_pairs
from harness.analysis.pricing import project
from harness.analysis.similarity import text_similarity
from harness.summary import PromptSummary, ReferenceScore, Summary, WeightedCost

__all__ = ["PromptTraffic", "apply_traffic", "prompt_summaries", "weighted_cost"]


@dataclass(frozen=True)
class PromptTraffic:
    """What a scenario file says about one prompt's place in the traffic."""

    weight: int = 1
    reference: str | None = None


def weighted_cost(
    t: ObservationTable, rows: Sequence[int], cost: np.ndarray, weights: Mapping[str, int]
) -> WeightedCost | None:
    """Mean cost per request with each row counted ``weights[prompt]`` times (None if a row
    has no price)."""
    idx = np.array([i for i in rows if t.has_usage[i]], dtype=np.int64)
    if idx.size == 0:
        return None
    c = cost[idx]
    if not np.isfinite(c).all():
        return None
    w = np.array([weights.get(t.prompt_id[i], 1) for i in idx.tolist()], dtype=np.float64)
    projection = project(float((c * w).sum() / w.sum()))
    if projection is None:
        return None
    return WeightedCost(
        per_request_usd=projection.per_request_usd,
        per_1k_requests_usd=projection.per_1k_requests_usd,
        per_1m_requests_usd=projection.per_1m_requests_usd,
        requests_represented=int(w.sum()),
    )


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
    cost: np.ndarray,
    traffic: Mapping[tuple[str, str], PromptTraffic],
) -> Summary:
    """The summary with weighted costs and per-prompt reference similarity, for scenarios whose
    prompts have a weight above 1 or a reference (unchanged otherwise). ``table`` holds the
    measured rows the summary was computed from and ``cost`` their costs."""
    scenarios = []
    for sc in summary.scenarios:
        mine = {p: v for (s, p), v in traffic.items() if s == sc.name}
        if not any(v.weight > 1 or v.reference is not None for v in mine.values()):
            scenarios.append(sc)
            continue
        rows = [i for i, s in enumerate(table.scenario) if s == sc.name]
        weights = {p: v.weight for p, v in mine.items()}
        arms = {}
        for name, arm in sc.arms.items():
            if arm.cost_usd is None:
                arms[name] = arm
                continue
            arm_rows = [i for i in rows if table.arm[i] == name]
            weighted = weighted_cost(table, arm_rows, cost, weights)
            arms[name] = arm.model_copy(
                update={"cost_usd": arm.cost_usd.model_copy(update={"weighted": weighted})}
            )
        prompts = prompt_summaries(table.take(np.array(rows, dtype=np.int64)), mine)
        scenarios.append(sc.model_copy(update={"arms": arms, "prompts": prompts}))
    return summary.model_copy(update={"scenarios": scenarios})
