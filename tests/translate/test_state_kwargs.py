"""Responses kwargs per state mode: conversation turns, reasoning items carried or dropped."""

from __future__ import annotations

import pytest

from harness.errors import TranslationError
from harness.translate.convert import conversation_items, to_responses_kwargs
from harness.translate.request import Message, NeutralRequest, Params, ToolCall

REASONING = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAB1"}
CALL = ToolCall(id="call_1", name="get_order", arguments='{"id":"1"}')


def _request(model: str = "o4-mini", *, store: bool = False) -> NeutralRequest:
    return NeutralRequest(
        model=model,
        params=Params(store=store, stream=False),
        messages=(
            Message(role="system", content="Be brief."),
            Message(role="user", content="Where is order 1?"),
            Message(role="assistant", tool_calls=(CALL,), reasoning_items=(REASONING,)),
            Message(role="tool", tool_call_id="call_1", content='{"status":"late"}'),
            Message(role="user", content="Thanks."),
        ),
    )


def test_stateless_reasoning_replay_sends_the_items_and_asks_for_them_encrypted() -> None:
    kwargs = to_responses_kwargs(_request())
    assert REASONING in kwargs["input"]
    assert kwargs["include"] == ["reasoning.encrypted_content"]
    assert kwargs["store"] is False


def test_without_reasoning_items_neither_the_items_nor_the_include_are_sent() -> None:
    kwargs = to_responses_kwargs(_request(), carry_reasoning=False)
    assert all(item.get("type") != "reasoning" for item in kwargs["input"])
    assert "include" not in kwargs
    # everything else of the history is still there: only the reasoning is dropped
    assert len(kwargs["input"]) == len(to_responses_kwargs(_request())["input"]) - 1


def test_a_conversation_turn_sends_only_its_new_items_and_the_instructions() -> None:
    kwargs = to_responses_kwargs(_request(), conversation="conv_1", new_from=3)
    assert kwargs["conversation"] == "conv_1"
    assert kwargs["instructions"] == "Be brief."
    assert kwargs["input"] == [
        {"type": "function_call_output", "call_id": "call_1", "output": '{"status":"late"}'},
        {"role": "user", "content": "Thanks."},
    ]
    assert "previous_response_id" not in kwargs
    # the conversation holds its reasoning items: no encrypted copy is asked for
    assert "include" not in kwargs


def test_conversation_and_previous_response_id_cannot_be_combined() -> None:
    with pytest.raises(TranslationError, match="cannot be combined"):
        to_responses_kwargs(
            _request(store=True), conversation="conv_1", previous_response_id="resp_1", new_from=3
        )


def test_a_conversation_turn_needs_a_new_message() -> None:
    with pytest.raises(TranslationError, match="after conversation"):
        to_responses_kwargs(_request(), conversation="conv_1", new_from=5)


@pytest.mark.parametrize(("store", "reasoning_kept"), [(True, True), (False, False)])
def test_conversation_items_are_the_history_before_the_turn_without_instructions(
    store: bool, reasoning_kept: bool
) -> None:
    items = conversation_items(_request(store=store), 3, store=store)
    kinds = [i.get("type", "message") for i in items]
    # store false: reasoning items only live encrypted in the client, so they are not seeded
    expected = ["message", *(["reasoning"] if reasoning_kept else []), "function_call"]
    assert kinds == expected
    assert items[0] == {"role": "user", "content": "Where is order 1?"}
