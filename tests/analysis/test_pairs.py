"""Which pairs each kind of similarity scores: JSON only where JSON was asked, tool calls only
on tool turns — so byte-identical answers never fail a similarity gate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from harness.analysis.analyze import analyze_table
from harness.analysis.metrics import ObservationTable
from harness.analysis.pricing import PriceBook
from harness.analysis.semantic import load_embedder
from harness.gates.config import GateConfig, parse_gate
from harness.gates.evaluate import evaluate
from harness.records import Observation, ToolCallRecord, Usage
from harness.summary import Similarity

ARMS = ("chat", "responses", "chat#2")
REPEATS = 10
CALL = [ToolCallRecord(id="c1", name="get_order", arguments='{"order_id": "10482"}')]


def _obs(arm: str, prompt: str, repeat: int, turn: int, **kw: Any) -> Observation:
    return Observation(
        run_id="r",
        scenario="s",
        prompt_id=prompt,
        arm=arm,
        api="chat" if arm.startswith("chat") else "responses",
        turn=turn,
        repeat=repeat,
        conversation=f"{prompt}/{arm}/{repeat}",
        cold=turn == 1,
        model="gpt-4.1-mini",
        stream=True,
        order=0,
        started_at=0.0,
        ok=True,
        status=200,
        ttft_ms=100.0,
        total_ms=300.0,
        usage=Usage(input_tokens=100, output_tokens=10),
        **kw,
    )


#: (prompt, turn) → what every arm answered, byte for byte: a tool call on a prompt with an
#: output schema, JSON after the tool result, a text reply that starts with "[", a refusal in
#: JSON mode, plain text.
IDENTICAL: dict[tuple[str, int], dict[str, Any]] = {
    ("order", 1): {"output_text": "", "tool_calls": CALL, "output_format": "json_schema"},
    ("order", 2): {"output_text": '{"status": "shipped"}', "output_format": "json_schema"},
    ("cite", 1): {"output_text": "[1] See the manual, page 4.", "output_format": "text"},
    ("mode", 1): {"output_text": "I can't help with that.", "output_format": "json_object"},
    ("chat", 1): {"output_text": "Hello there, how can I help?", "output_format": "text"},
}


def _run(answers: dict[tuple[str, int], dict[str, Any]], **per_arm: Any) -> list[Observation]:
    out = []
    for arm in ARMS:
        for (prompt, turn), fields in answers.items():
            for r in range(REPEATS):
                out.append(_obs(arm, prompt, r, turn, **(fields | per_arm.get(arm, {}))))
    return out


def _summary(records: list[Observation], schemas: Any = None, embedder: Any = None) -> Any:
    table = ObservationTable.from_observations(records)
    book = PriceBook(when=datetime(2026, 11, 1, tzinfo=UTC))
    return analyze_table(table, book=book, resamples=200, schemas=schemas, embedder=embedder)


def _gate(summary: Any, threshold: float = 0.999) -> dict[str, str]:
    config = GateConfig(
        for_all=[
            parse_gate(f"{key}.similarity_mean_min", threshold, "gates.yaml", 1)
            for key in ("responses_vs_chat", "chat#2_vs_chat")
        ]
    )
    return {r.key: r.status for r in evaluate(summary, config).results}


def _sim(summary: Any, key: str = "responses_vs_chat") -> Similarity:
    sim: Similarity = summary.scenarios[0].comparisons[key].similarity
    return sim


SCHEMA = {
    ("s", "order"): {
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"],
    }
}


@pytest.mark.parametrize("recorded", [True, False], ids=["format recorded", "older records"])
def test_byte_identical_answers_never_fail_a_similarity_gate(recorded: bool) -> None:
    answers = IDENTICAL
    if not recorded:  # runs before output_format was recorded: the scenario's schema decides
        answers = {
            k: {f: v for f, v in a.items() if f != "output_format"} for k, a in answers.items()
        }
    summary = _summary(_run(answers), SCHEMA)
    assert set(_gate(summary).values()) == {"pass"}
    sim = _sim(summary)
    assert sim.text is not None and sim.text.mean == 1.0
    assert sim.tool_calls is not None and sim.tool_calls.n_pairs == REPEATS  # turn 1 of order
    assert sim.json_ is not None and sim.json_.mean == 1.0
    # JSON is scored where it was asked and there is a reply: order turn 2 (+ JSON mode)
    assert sim.json_.n_pairs == (2 if recorded else 1) * REPEATS
    if recorded:
        assert sim.json_.a_parse_rate == pytest.approx(0.5)  # the refusal is not JSON


def test_byte_identical_answers_pass_with_semantic_similarity_too() -> None:
    summary = _summary(_run(IDENTICAL), SCHEMA, load_embedder())
    assert set(_gate(summary).values()) == {"pass"}
    sem = _sim(summary).semantic
    assert sem is not None and sem.mean == 1.0 and sem.n_pairs == 4 * REPEATS  # replies with text


def test_json_differences_are_still_measured_where_json_was_asked() -> None:
    answers = {k: v for k, v in IDENTICAL.items() if k[0] == "order"}
    records = [
        o.model_copy(update={"output_text": '{"status": "pending"}'})
        if o.arm == "responses" and o.turn == 2
        else o
        for o in _run(answers)
    ]
    summary = _summary(records, SCHEMA)
    sim = _sim(summary)
    assert sim.json_ is not None and sim.json_.mean == 0.0 and sim.json_.n_pairs == REPEATS
    status = _gate(summary, 0.9)
    assert status == {
        "responses_vs_chat.similarity_mean_min": "fail",
        "chat#2_vs_chat.similarity_mean_min": "pass",
    }


def test_a_text_reply_that_looks_like_broken_json_is_not_a_json_pair() -> None:
    answers = {("cite", 1): IDENTICAL[("cite", 1)]}
    records = _run(answers, responses={"output_text": "[1] See the manual, page 5."})
    sim = _sim(_summary(records))
    assert sim.json_ is None
    assert sim.text is not None and 0.8 < (sim.text.mean or 0.0) < 1.0


def test_tool_call_similarity_only_on_turns_with_a_call() -> None:
    answers = {("order", 1): IDENTICAL[("order", 1)], ("chat", 1): IDENTICAL[("chat", 1)]}
    other = [ToolCallRecord(id="c1", name="get_order", arguments='{"order_id": "1"}')]
    records = [
        o.model_copy(update={"tool_calls": other})
        if o.arm == "responses" and o.prompt_id == "order"
        else o
        for o in _run(answers)
    ]
    sim = _sim(_summary(records))
    calls = sim.tool_calls
    assert calls is not None and calls.n_pairs == REPEATS  # the text prompt is not a tool turn
    assert calls.mean == 0.0 and calls.name_agreement == 1.0


def test_a_kind_is_decided_over_the_conversations_behind_its_own_pairs() -> None:
    """JSON asked on 4 of 14 conversations: its gap has too few samples even though the pair
    as a whole has 14 — decided on 4, a 'differs' card could rest on a handful of turns."""
    records = []
    for arm in ARMS:
        for r in range(4):
            text = '{"status": "pending"}' if arm == "responses" else '{"status": "shipped"}'
            records.append(_obs(arm, "order", r, 1, output_text=text, output_format="json_object"))
        for r in range(10):
            records.append(_obs(arm, "chat", r, 1, output_text="Hello!", output_format="text"))
    sim = _sim(_summary(records))
    assert sim.json_ is not None and sim.json_.below_noise_floor is not None
    gap = sim.json_.below_noise_floor
    assert gap.n_pairs == 4 and gap.decision == "too_few_samples" and gap.ci95 is None
    assert sim.text is not None and sim.text.below_noise_floor is not None
    assert sim.text.below_noise_floor.n_pairs == 14
