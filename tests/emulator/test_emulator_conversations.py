"""The emulator's Conversations API and ``conversation`` on Responses, through the official SDK;
every body validates against OpenAI's spec."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from harness.emulator.profiles import load_profile
from harness.emulator.testing import nonce, sse_events, text_of_tokens
from harness.translate.spec import schema_problems, stream_event_schemas

MODEL = "gpt-4.1-mini"
#: long enough (≥ 1,024 tokens) that a turn's shared prefix is cached
INSTRUCTIONS = text_of_tokens(1500, "conv")
TURNS = ["What are your support hours?", "And on weekends?", "Thanks, and holidays?"]


def _valid(name: str, obj: Any) -> None:
    problems = schema_problems(name, obj)
    assert not problems, "\n".join(problems[:5])


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


@pytest.fixture
def client(emulator_client: openai.OpenAI) -> openai.OpenAI:
    return emulator_client


def test_lifecycle_validates_against_the_spec(client: openai.OpenAI) -> None:
    convs = client.conversations.with_raw_response
    body = {"metadata": {"topic": "demo"}, "items": [_user("Hello!")]}
    assert not schema_problems("CreateConversationBody", body)
    created = convs.create(**body).http_response.json()
    _valid("ConversationResource", created)
    assert created["metadata"] == {"topic": "demo"} and created["id"].startswith("conv_")
    cid = created["id"]

    fetched = convs.retrieve(cid).http_response.json()
    _valid("ConversationResource", fetched)
    assert fetched == created
    updated = convs.update(cid, metadata={"topic": "other"}).http_response.json()
    _valid("ConversationResource", updated)
    assert client.conversations.retrieve(cid).metadata == {"topic": "other"}

    items = client.conversations.items.with_raw_response
    added = items.create(cid, items=[_user("One"), _user("Two")]).http_response.json()
    _valid("ConversationItemList", added)
    assert [i["content"][0]["text"] for i in added["data"]] == ["One", "Two"]
    listed = items.list(cid, order="asc").http_response.json()
    _valid("ConversationItemList", listed)
    assert [i["content"][0]["text"] for i in listed["data"]] == ["Hello!", "One", "Two"]
    one = items.retrieve(added["data"][0]["id"], conversation_id=cid).http_response.json()
    _valid("ConversationItem", one)
    assert one == added["data"][0]
    after_delete = items.delete(one["id"], conversation_id=cid).http_response.json()
    _valid("ConversationResource", after_delete)
    left = client.conversations.items.list(cid, order="asc").data
    assert [i.id for i in left] == [listed["data"][0]["id"], listed["data"][2]["id"]]
    with pytest.raises(openai.NotFoundError, match="Item with id"):
        client.conversations.items.retrieve(one["id"], conversation_id=cid)

    deleted = convs.delete(cid).http_response.json()
    _valid("DeletedConversationResource", deleted)
    assert deleted == {"id": cid, "object": "conversation.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError) as gone:
        client.conversations.retrieve(cid)
    _valid("ErrorResponse", gone.value.response.json())
    assert (
        gone.value.response.json()["error"]["message"] == f"Conversation with id '{cid}' not found."
    )


def test_item_pagination(client: openai.OpenAI) -> None:
    cid = client.conversations.create(items=[_user(f"m{i}") for i in range(7)]).id
    page = client.conversations.items.list(cid, limit=3)  # newest first by default
    assert [i.content[0].text for i in page.data] == ["m6", "m5", "m4"]
    assert page.has_more and page.first_id == page.data[0].id and page.last_id == page.data[-1].id
    rest = client.conversations.items.list(cid, limit=3, after=page.last_id)
    assert [i.content[0].text for i in rest.data] == ["m3", "m2", "m1"]
    every = [i.content[0].text for i in client.conversations.items.list(cid, limit=2, order="asc")]
    assert every == [f"m{i}" for i in range(7)]  # the SDK pages with `after` until has_more ends
    for bad in (0, 101):
        with pytest.raises(openai.BadRequestError) as err:
            client.conversations.items.list(cid, limit=bad)
        assert err.value.response.json()["error"]["param"] == "limit"


def test_at_most_20_items_per_create(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.conversations.create(items=[_user(str(i)) for i in range(21)])
    error = err.value.response.json()["error"]
    assert error["code"] == "array_above_max_length" and error["param"] == "items"
    assert "maximum length 20, but got an array with length 21" in error["message"]
    cid = client.conversations.create(items=[_user(str(i)) for i in range(20)]).id
    with pytest.raises(openai.BadRequestError, match="maximum length 20"):
        client.conversations.items.create(cid, items=[_user(str(i)) for i in range(21)])
    assert len(list(client.conversations.items.list(cid, limit=100))) == 20


def test_response_in_a_conversation_holds_each_item_once(client: openai.OpenAI) -> None:
    cid = client.conversations.create().id
    sent: list[str] = []
    for turn in TURNS:
        raw = client.responses.with_raw_response.create(
            model=MODEL, input=f"{nonce()} {turn}", conversation=cid, store=False
        )
        body = raw.http_response.json()
        _valid("Response", body)
        assert body["conversation"] == {"id": cid}
        sent.append(body["output"][0]["id"])
    held = client.conversations.items.list(cid, order="asc", limit=100).data
    ids = [i.id for i in held]
    assert len(ids) == len(set(ids)) == 2 * len(TURNS)  # each turn: its input, its reply
    assert [i.role for i in held] == ["user", "assistant"] * len(TURNS)
    assert ids[1::2] == sent


def test_streamed_turn_validates_and_is_appended_once_a_failed_one_is_not(
    client: openai.OpenAI, emulators: Any
) -> None:
    cid = client.conversations.create(items=[_user("Hello!")]).id
    with client.responses.with_streaming_response.create(
        model=MODEL, input=f"{nonce()} hi", conversation=cid, stream=True
    ) as resp:
        events = sse_events(resp.iter_lines())
    for event in events:
        _valid(stream_event_schemas()[event["type"]], event)
    assert events[0]["response"]["conversation"] == {"id": cid}
    assert events[-1]["type"] == "response.completed"
    held = client.conversations.items.list(cid, order="asc").data
    assert [i.id for i in held[2:]] == [o["id"] for o in events[-1]["response"]["output"]]
    assert len(held) == 3

    failing = load_profile("zero").derive({"both": {"faults": {"response_failed": 1.0}}})
    with emulators.running(failing) as emu:
        c = emulators.client(emu)
        broken = c.conversations.create(items=[_user("Hello!")]).id
        with c.responses.with_streaming_response.create(
            model=MODEL, input="hi", conversation=broken, stream=True
        ) as resp:
            types = [e["type"] for e in sse_events(resp.iter_lines())]
        assert types[-1] == "response.failed"
        # a turn that failed adds neither its input nor a partial output
        assert len(c.conversations.items.list(broken).data) == 1


def test_conversation_turns_bill_and_cache_like_a_chain(emulators: Any) -> None:
    """Turn k in a conversation renders the same prompt as turn k chained by
    previous_response_id: the same input tokens and the same cached tokens (fresh servers)."""

    def run(mode: str) -> list[tuple[int, int]]:
        server = emulators.start("zero")
        c = emulators.client(server)
        cid = c.conversations.create().id if mode == "conversation" else None
        previous: str | None = None
        out = []
        for turn in TURNS:
            kwargs: dict[str, Any] = {"model": MODEL, "instructions": INSTRUCTIONS, "input": turn}
            if cid is not None:
                kwargs["conversation"] = cid
            elif previous is not None:
                kwargs["previous_response_id"] = previous
            r = c.responses.create(**kwargs)
            previous = r.id
            assert r.usage is not None
            out.append((r.usage.input_tokens, r.usage.input_tokens_details.cached_tokens))
        return out

    chained, conversation = run("chained"), run("conversation")
    assert conversation == chained
    assert conversation[0][1] == 0 and all(cached >= 1024 for _, cached in conversation[1:])
    assert conversation[2][0] > conversation[1][0] > conversation[0][0]


def test_conversation_request_errors(client: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL, input="hi")
    cid = client.conversations.create().id
    with pytest.raises(openai.BadRequestError) as both:
        client.responses.create(
            model=MODEL, input="x", conversation=cid, previous_response_id=first.id
        )
    _valid("ErrorResponse", both.value.response.json())
    assert both.value.response.json()["error"]["param"] == "conversation"
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model=MODEL, input="x", conversation="conv_nope")
    assert missing.value.response.json()["error"]["param"] == "conversation"
    # a refused request leaves the conversation as it was
    assert client.conversations.items.list(cid).data == []


def test_stored_reasoning_items_replay_by_id_and_list_encrypted_on_request(
    client: openai.OpenAI,
) -> None:
    cid = client.conversations.create().id
    r = client.responses.create(model="o4-mini", input=f"{nonce()} Plan a trip.", conversation=cid)
    reasoning = r.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content is None
    plain = client.conversations.items.retrieve(reasoning.id, conversation_id=cid)
    assert plain.type == "reasoning" and plain.encrypted_content is None
    shown = client.conversations.items.with_raw_response.list(
        cid, include=["reasoning.encrypted_content"]
    ).http_response.json()
    _valid("ConversationItemList", shown)
    listed = [i for i in shown["data"] if i["type"] == "reasoning"]
    assert listed and listed[0]["encrypted_content"]


# --- store: false and reasoning items -----------------------------------------------------------

NOT_PERSISTED = (
    "Item with id '{}' not found. Items are not persisted when `store` is set to false. Try "
    "again with `store` set to true, or remove this item from your input."
)


def _turn_two(first: Any, reasoning: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _user("Plan a trip."),
        reasoning,
        {"role": "assistant", "content": first.output_text},
        _user("And the budget?"),
    ]


def test_unstored_reasoning_replayed_by_id_is_404_as_openai_words_it(
    client: openai.OpenAI,
) -> None:
    first = client.responses.create(model="o4-mini", input=f"{nonce()} Plan a trip.", store=False)
    item = first.output[0]
    assert item.type == "reasoning" and item.encrypted_content is None
    by_id = {"type": "reasoning", "id": item.id, "summary": []}
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="o4-mini", input=_turn_two(first, by_id), store=False)
    body = err.value.response.json()
    _valid("ErrorResponse", body)
    assert body["error"] == {
        "message": NOT_PERSISTED.format(item.id),
        "type": "invalid_request_error",
        "param": "input",
        "code": "item_not_found",
    }


def test_reasoning_replays_with_encrypted_content_or_when_stored(client: openai.OpenAI) -> None:
    first = client.responses.with_raw_response.create(
        model="o4-mini",
        input=f"{nonce()} Plan a trip.",
        store=False,
        include=["reasoning.encrypted_content"],
    )
    _valid("Response", first.http_response.json())
    parsed = first.parse()
    item = parsed.output[0]
    assert item.type == "reasoning" and item.encrypted_content
    carried = client.responses.create(
        model="o4-mini",
        input=_turn_two(parsed, item.model_dump(exclude_none=True)),
        store=False,
        reasoning={"context": "all_turns"},
    )
    dropped = client.responses.create(
        model="o4-mini",
        input=[m for m in _turn_two(parsed, {}) if m],
        store=False,
        reasoning={"context": "all_turns"},
    )
    assert carried.usage is not None and dropped.usage is not None and parsed.usage is not None
    # the carried item is the earlier turn's reasoning, rendered (all_turns) and billed
    assert carried.usage.input_tokens > dropped.usage.input_tokens
    # a stored response's reasoning replays by id alone
    stored = client.responses.create(model="o4-mini", input=f"{nonce()} Plan a trip.")
    by_id = {"type": "reasoning", "id": stored.output[0].id, "summary": []}
    replay = client.responses.create(model="o4-mini", input=_turn_two(stored, by_id), store=False)
    assert replay.status == "completed"


# --- GET /responses/{id}/input_items ------------------------------------------------------------


def test_input_items_are_what_the_request_sent(client: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL, input=f"{nonce()} hello")
    sent = [_user("one"), {"role": "user", "content": [{"type": "input_text", "text": "two"}]}]
    chained = client.responses.create(model=MODEL, input=sent, previous_response_id=first.id)
    raw = client.responses.input_items.with_raw_response.list(chained.id, order="asc")
    body = raw.http_response.json()
    _valid("ResponseItemList", body)
    # only this request's input, not the chain it continues
    assert [i["content"][0]["text"] for i in body["data"]] == ["one", "two"]
    assert all(i["id"].startswith("msg_") for i in body["data"]) and not body["has_more"]
    newest = client.responses.input_items.list(chained.id, limit=1)
    assert newest.has_more and newest.data[0].id == body["data"][1]["id"]

    cid = client.conversations.create(items=[_user("earlier")]).id
    turn = client.responses.create(model=MODEL, input="now", conversation=cid)
    items = client.responses.input_items.list(turn.id).data
    held = client.conversations.items.list(cid, order="asc").data
    assert [i.id for i in items] == [held[1].id]  # the turn's item, as the conversation holds it

    unstored = client.responses.create(model=MODEL, input="x", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(unstored.id)


def test_tool_loop_in_a_conversation_sends_only_the_new_output(client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    }
    cid = client.conversations.create().id
    call = client.responses.create(
        model=MODEL,
        input=f"{nonce()} Weather in Paris?",
        tools=[tool],
        tool_choice="required",
        conversation=cid,
    )
    fc = call.output[0]
    assert fc.type == "function_call"
    result = {"type": "function_call_output", "call_id": fc.call_id, "output": '{"temp_c": 18}'}
    final = client.responses.create(
        model=MODEL,
        input=[result],
        tools=[tool],
        conversation=cid,
    )
    assert final.output[0].type == "message"
    held = client.conversations.items.with_raw_response.list(cid, order="asc").http_response.json()
    _valid("ConversationItemList", held)
    assert [i["type"] for i in held["data"]] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert held["data"][1]["id"] == fc.id and held["data"][2]["call_id"] == fc.call_id


def test_unrendered_reasoning_is_billed_only_when_the_profile_says(emulators: Any) -> None:
    """Whether OpenAI bills earlier turns' reasoning it does not render is undocumented: a
    profile parameter, off by default; on, it adds exactly those reasoning tokens as input."""
    billing = load_profile("zero").derive({"responses": {"bill_unrendered_reasoning": True}})
    inputs = {}
    for name, profile in (("default", "zero"), ("billed", billing)):
        c = emulators.client(emulators.start(profile))
        first = c.responses.create(
            model="o4-mini",
            input="Plan a trip.",
            store=False,
            include=["reasoning.encrypted_content"],
        )
        item = first.output[0].model_dump(exclude_none=True)
        with_item = c.responses.create(model="o4-mini", input=_turn_two(first, item), store=False)
        without = c.responses.create(
            model="o4-mini", input=[m for m in _turn_two(first, {}) if m], store=False
        )
        assert first.usage is not None and with_item.usage is not None
        assert without.usage is not None
        inputs[name] = (
            with_item.usage.input_tokens - without.usage.input_tokens,
            first.usage.output_tokens_details.reasoning_tokens,
        )
    assert inputs["default"][0] == 0
    extra, reasoning_tokens = inputs["billed"]
    assert reasoning_tokens > 0 and extra == reasoning_tokens
