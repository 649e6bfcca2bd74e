"""The conversation-state section from observations with known figures (analysis only)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.analysis.analyze import analyze_table
from harness.analysis.metrics import ObservationTable
from harness.analysis.state import has_state_arms
from harness.records import STATE_LOST, Observation, Usage

MODEL = "gpt-4.1-mini"
# Per turn: (input, cached) tokens. Chat caches 500 of turn 2's 2,000 tokens, the conversation
# arm 700: over both turns 700 / 3,000 against 500 / 3,000, a relative improvement of +40 %;
# the history arm caches what chat does (+0 %, which contradicts "40–80 % better").
CACHED = {"chat": (0, 500), "responses": (0, 500), "responses_conversation": (0, 700)}


def _obs(arm: str, repeat: int, turn: int, **extra: Any) -> Observation:
    inp, cached = (1000, CACHED[arm][0]) if turn == 1 else (2000, CACHED[arm][1])
    base: dict[str, Any] = dict(
        run_id="r",
        scenario="s",
        prompt_id="p",
        arm=arm,
        api="chat" if arm == "chat" else "responses",
        turn=turn,
        repeat=repeat,
        conversation=f"s/p/{arm}/r{repeat}",
        cold=turn == 1,
        model=MODEL,
        stream=True,
        order=0,
        started_at=0.0,
        ok=True,
        status=200,
        ttft_ms=100.0 + turn,
        total_ms=200.0 + turn,
        usage=Usage(input_tokens=inp, cached_tokens=cached, output_tokens=10),
        output_text=f"answer {turn}",
        items_sent=1 if arm == "responses_conversation" else 2 * turn,
        items_held=3 * turn if arm == "responses_conversation" else None,
        duplicate_items=0 if arm == "responses_conversation" else None,
        forked=False if arm == "responses_conversation" else None,
    )
    base.update(extra)
    return Observation(**base)


def _summary(records: list[Observation]) -> Any:
    table = ObservationTable.from_observations(records)
    (scenario,) = analyze_table(table, resamples=200).scenarios
    return scenario


def test_per_turn_figures_and_the_claim_per_state_mode() -> None:
    records = [_obs(arm, r, t) for arm in CACHED for r in range(12) for t in (1, 2)]
    scenario = _summary(records)
    state = scenario.conversation_state
    assert state is not None and list(state.arms) == list(CACHED)
    conv = state.arms["responses_conversation"]
    assert conv.state == "conversation"
    first, second = conv.turns
    assert (first.turn, first.cached_share, second.cached_share) == (1, 0.0, 0.35)
    assert (second.items_sent_mean, second.items_held_mean) == (1.0, 6.0)
    assert (second.duplicate_items, second.forks) == (0, 0)
    assert second.similarity_to_chat == 1.0
    assert (second.ttft_ms_p50, second.total_ms_p50) == (102.0, 202.0)
    history = state.arms["responses"]
    assert history.turns[1].items_held_mean is None and history.turns[1].items_sent_mean == 4.0
    # the claim is the headline rule on <arm>_vs_chat: 700/3000 vs 500/3000 → +40 %
    claim = conv.cache_claim
    assert claim is not None
    assert claim.metric == "responses_conversation_vs_chat.cache_hit_improvement"
    assert claim.value == pytest.approx(0.4)
    same = history.cache_claim
    assert same is not None and same.value == pytest.approx(0.0)
    assert same.verdict == "contradicted"
    assert state.arms["chat"].cache_claim is None


def test_lost_turns_are_counted_and_no_state_arm_means_no_section() -> None:
    records = [_obs(arm, r, t) for arm in ("chat", "responses") for r in range(3) for t in (1, 2)]
    assert _summary(records).conversation_state is None
    records += [_obs("responses_conversation", r, 1) for r in range(3)]
    records += [
        _obs(
            "responses_conversation",
            r,
            2,
            ok=False,
            status=None,
            error_type=STATE_LOST,
            usage=None,
            ttft_ms=None,
            total_ms=None,
        )
        for r in range(3)
    ]
    state = _summary(records).conversation_state
    assert state is not None
    assert state.arms["responses_conversation"].lost_turns == 3
    assert state.arms["responses_conversation"].turns[1].errors == 3


@pytest.mark.parametrize(
    ("arms", "expected"),
    [
        (["chat", "responses", "chat#2"], False),
        (["chat", "responses_chained"], True),
        (["chat", "responses+store"], True),
        (["responses_conversation"], True),
    ],
)
def test_has_state_arms(arms: list[str], expected: bool) -> None:
    assert has_state_arms(arms) is expected
