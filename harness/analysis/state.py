"""The conversation-state section: each way of keeping state, turn by turn, and the caching claim
per state mode.

Per arm and turn: input, cached and cache-write tokens (without the cache nonce), the cached
share, items sent and held with duplicates and forks (:mod:`harness.runner.state`), cost, TTFT
and total latency, and how alike the replies are to the chat arm's. The guide's "40–80 % better
caching" is evaluated on each arm's comparison with chat by the same rule as the headline claim
(:func:`harness.analysis.claims.cache_claim`): a relative improvement of the cached share.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from harness.analysis import decide, stats
from harness.analysis.claims import cache_claim
from harness.analysis.metrics import (
    ArmData,
    FloatArray,
    IntArray,
    ObservationTable,
    billed_tokens,
    comparison_key,
)
from harness.analysis.similarity import word_similarity, words
from harness.arms import Arm
from harness.records import STATE_LOST
from harness.summary import Comparison, ConversationStateSummary, StateArm, StateTurn

__all__ = ["conversation_state", "has_state_arms"]


def has_state_arms(arms: Mapping[str, ArmData] | list[str]) -> bool:
    """Whether a run compared ways of keeping state (a state-keeping arm or a named variant)."""
    return any((a := Arm.of(name)).state != "history" or a.variant is not None for name in arms)


def _mean(values: FloatArray) -> float | None:
    v = values[np.isfinite(values)]
    return float(v.mean()) if v.size else None


def _turn_key(t: ObservationTable, row: int) -> tuple[str, int, int]:
    return (t.prompt_id[row], int(t.repeat[row]), int(t.turn[row]))


_TurnRows = dict[tuple[str, int, int], int]


def _similarity(t: ObservationTable, rows: IntArray, chat: _TurnRows) -> float | None:
    scores = []
    for row in rows.tolist():
        other = chat.get(_turn_key(t, row))
        if other is None or not t.ok[row]:
            continue
        a, b = t.output_text[row], t.output_text[other]
        if a is None or b is None:
            continue
        scores.append(word_similarity(words(a), words(b)))
    return float(np.mean(scores)) if scores else None


def _turns(
    t: ObservationTable, rows: IntArray, cost: FloatArray, chat: _TurnRows
) -> list[StateTurn]:
    out = []
    turns = t.turn[rows]
    for turn in np.unique(turns).tolist():
        r = rows[turns == turn]
        ok = t.ok[r]
        use = r[t.has_usage[r]]
        inp, cached, write = billed_tokens(t, use)
        ttft = stats.quantiles(t.ttft_ms[r][ok])
        total = stats.quantiles(t.total_ms[r][ok])
        costs = cost[use]
        out.append(
            StateTurn(
                turn=int(turn),
                requests=int(r.size),
                errors=int((~ok).sum()),
                input_tokens_mean=float(inp.mean()) if use.size else None,
                cached_tokens_mean=float(cached.mean()) if use.size else None,
                cache_write_tokens_mean=float(write.mean()) if use.size else None,
                cached_share=float(cached.sum() / inp.sum()) if use.size and inp.sum() else None,
                items_sent_mean=_mean(t.items_sent[r]),
                items_held_mean=_mean(t.items_held[r]),
                duplicate_items=int(np.nansum(t.duplicate_items[r])),
                forks=int(np.nansum(t.forked[r])) if np.isfinite(t.forked[r]).any() else None,
                cost_usd_mean=float(costs.mean())
                if costs.size and np.isfinite(costs).all()
                else None,
                ttft_ms_p50=ttft.p50 if ttft else None,
                total_ms_p50=total.p50 if total else None,
                similarity_to_chat=_similarity(t, r, chat),
            )
        )
    return out


def conversation_state(
    t: ObservationTable,
    arms: Mapping[str, ArmData],
    cost: FloatArray,
    comparisons: Mapping[str, Comparison],
    *,
    emulator_profile: str | None = None,
    margins: decide.Margins = decide.DEFAULT_MARGINS,
) -> ConversationStateSummary | None:
    """The section for one scenario's measured rows (None when no state arm ran)."""
    if not has_state_arms(arms):
        return None
    chat_rows = arms["chat"].rows.tolist() if "chat" in arms else []
    chat = {_turn_key(t, row): row for row in chat_rows}
    out: dict[str, StateArm] = {}
    for name in sorted(arms, key=lambda a: Arm.of(a).sort_key):
        arm = Arm.of(name)
        if arm.is_replicate:
            continue
        rows = arms[name].rows
        key = comparison_key(name, "chat")
        claim = (
            cache_claim(key, comparisons[key], emulator_profile, margins)
            if name != "chat" and key in comparisons
            else None
        )
        out[name] = StateArm(
            state=arm.state,
            label=arm.label,
            lost_turns=sum(1 for row in rows.tolist() if t.error_type[row] == STATE_LOST),
            turns=_turns(t, rows, cost, chat if name != "chat" else {}),
            cache_claim=claim,
        )
    return ConversationStateSummary(arms=out)
