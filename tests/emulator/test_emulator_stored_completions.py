"""Stored chat completions (``store: true``) through the official SDK: list (``model``,
``metadata``, ``after``, ``limit``, ``order``), retrieve, update, delete and messages, every body
checked against OpenAI's spec. Each test tags its completions with its own metadata value, so
the shared server's other completions never match its listings."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from harness.emulator.chat_store import CompletionStore
from harness.emulator.testing import nonce
from harness.translate.spec import request_problems, schema_problems

MODEL = "gpt-4.1-mini"
SYSTEM = {"role": "system", "content": "Be brief."}


def _valid(name: str, obj: Any) -> None:
    problems = schema_problems(name, obj)
    assert not problems, "\n".join(problems[:5])


def _valid_messages(page: dict[str, Any]) -> None:
    """``ChatCompletionMessageList`` as the spec's example shows it: the spec's item schema
    (``ChatCompletionResponseMessage``) allows only ``role: assistant``, yet its own example
    lists the request's ``user`` message — the one deviation allowed, on non-assistant roles."""
    allowed = {
        f"ChatCompletionMessageList: data.{i}.role: '{m['role']}' is not one of ['assistant']"
        for i, m in enumerate(page["data"])
        if m["role"] != "assistant"
    }
    problems = [p for p in schema_problems("ChatCompletionMessageList", page) if p not in allowed]
    assert not problems, "\n".join(problems[:5])


def _store(client: openai.OpenAI, tag: str, n: int, **extra: Any) -> list[str]:
    """``n`` stored completions with metadata ``{"test": tag}``; their ids, oldest first."""
    ids = []
    metadata = {"test": tag, **extra.pop("metadata", {})}
    for i in range(n):
        body: dict[str, Any] = {
            "model": MODEL,
            "messages": [SYSTEM, {"role": "user", "content": f"Question {i} ({tag})"}],
            "store": True,
            "metadata": metadata,
            **extra,
        }
        assert not request_problems("/chat/completions", body)
        ids.append(client.chat.completions.create(**body).id)
    return ids


@pytest.fixture
def client(emulator_client: openai.OpenAI) -> openai.OpenAI:
    return emulator_client


def test_a_stored_completion_is_retrieved_as_it_was_returned(client: openai.OpenAI) -> None:
    tag = nonce()
    reply = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[SYSTEM, {"role": "user", "content": "Hello"}],
        store=True,
        metadata={"test": tag},
    ).http_response.json()
    fetched = client.chat.completions.with_raw_response.retrieve(reply["id"]).http_response.json()
    _valid("CreateChatCompletionResponse", fetched)
    assert fetched == {**reply, "metadata": {"test": tag}}


def test_a_streamed_completion_is_stored_under_its_chunks_id(client: openai.OpenAI) -> None:
    tag = nonce()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Hello"}],
        store=True,
        metadata={"test": tag},
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    stored = client.chat.completions.retrieve(chunks[0].id)
    assert stored.choices[0].message.content == text


def test_unstored_completions_are_not_listed(client: openai.OpenAI) -> None:
    tag = nonce()
    unstored = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": f"Not kept {tag}"}]
    )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.retrieve(unstored.id)
    assert _store(client, tag, 1) == [
        c.id for c in client.chat.completions.list(metadata={"test": tag})
    ]


def test_the_list_filters_by_metadata_and_model_and_validates(client: openai.OpenAI) -> None:
    tag = nonce()
    a = _store(client, tag, 2, metadata={"app": "a"})
    b = _store(client, tag, 1, metadata={"app": "b"})
    nano = _store(client, tag, 1, metadata={"app": "a"}, model="gpt-4.1-nano")
    raw = client.chat.completions.with_raw_response.list(metadata={"test": tag, "app": "a"})
    page = raw.http_response.json()
    _valid("ChatCompletionList", page)
    assert [c["id"] for c in page["data"]] == [*a, *nano]
    assert page["first_id"] == a[0] and page["last_id"] == nano[0] and not page["has_more"]
    listed = client.chat.completions.list(metadata={"test": tag, "app": "b"})
    assert [c.id for c in listed] == b
    # the model filter takes the name the request used or the snapshot the reply names
    by_alias = client.chat.completions.list(metadata={"test": tag}, model=MODEL)
    assert [c.id for c in by_alias] == [*a, *b]
    snapshot = client.chat.completions.retrieve(nano[0]).model
    assert snapshot != "gpt-4.1-nano"
    assert [c.id for c in client.chat.completions.list(model=snapshot)][-1] == nano[0]


def test_paging_by_after_and_order_and_sdk_iteration(client: openai.OpenAI) -> None:
    tag = nonce()
    ids = _store(client, tag, 5)
    first = client.chat.completions.list(metadata={"test": tag}, limit=2)
    assert [c.id for c in first.data] == ids[:2] and first.has_more
    second = client.chat.completions.list(metadata={"test": tag}, limit=2, after=ids[1])
    assert [c.id for c in second.data] == ids[2:4]
    newest = client.chat.completions.list(metadata={"test": tag}, limit=2, order="desc")
    assert [c.id for c in newest.data] == [ids[4], ids[3]]
    # the SDK follows has_more with after=<last id>: every completion, once, in order
    assert [c.id for c in client.chat.completions.list(metadata={"test": tag}, limit=2)] == ids
    descending = client.chat.completions.list(metadata={"test": tag}, limit=2, order="desc")
    assert [c.id for c in descending] == ids[::-1]


def test_list_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="limit"):
        client.chat.completions.list(limit=0)
    with pytest.raises(openai.BadRequestError, match="asc"):
        client.chat.completions.list(order="sideways")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.list(after="chatcmpl-unknown")


def test_messages_are_listed_as_sent(client: openai.OpenAI) -> None:
    tag = nonce()
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    sent: list[dict[str, Any]] = [
        SYSTEM,
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in "},
                {"type": "text", "text": "this chart?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                },
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a bar chart"},
        {"role": "user", "content": "Thanks", "name": "bo"},
    ]
    cid = client.chat.completions.create(
        model=MODEL,
        messages=sent,
        store=True,
        metadata={"test": tag},  # type: ignore[arg-type]
    ).id
    raw = client.chat.completions.messages.with_raw_response.list(cid, limit=100)
    page = raw.http_response.json()
    _valid_messages(page)
    listed = page["data"]
    assert [m["id"] for m in listed] == [f"{cid}-{i}" for i in range(5)]
    assert [m["role"] for m in listed] == [m["role"] for m in sent]
    assert listed[1]["content"] == "What is in this chart?"
    assert listed[1]["content_parts"] == sent[1]["content"]
    assert listed[2]["tool_calls"] == [call] and listed[2]["content"] is None
    assert listed[3]["tool_call_id"] == "call_1" and listed[3]["content"] == "a bar chart"
    assert listed[4]["name"] == "bo" and listed[4]["content_parts"] is None

    two = client.chat.completions.messages.list(cid, limit=2)
    assert [m.id for m in two.data] == [f"{cid}-0", f"{cid}-1"] and two.has_more
    assert [m.id for m in client.chat.completions.messages.list(cid, limit=2)] == [
        m["id"] for m in listed
    ]
    after = client.chat.completions.messages.list(cid, after=f"{cid}-2", order="asc")
    assert [m.id for m in after.data] == [f"{cid}-3", f"{cid}-4"]
    newest = client.chat.completions.messages.list(cid, limit=1, order="desc")
    assert [m.id for m in newest.data] == [f"{cid}-4"]


def test_update_replaces_metadata(client: openai.OpenAI) -> None:
    tag, moved = nonce(), nonce()
    (cid,) = _store(client, tag, 1)
    raw = client.chat.completions.with_raw_response.update(cid, metadata={"test": moved})
    updated = raw.http_response.json()
    _valid("CreateChatCompletionResponse", updated)
    assert updated["metadata"] == {"test": moved}
    assert list(client.chat.completions.list(metadata={"test": tag})) == []
    assert [c.id for c in client.chat.completions.list(metadata={"test": moved})] == [cid]
    with pytest.raises(openai.BadRequestError, match="metadata"):
        client.chat.completions.update(cid, metadata={"k": 1})  # type: ignore[dict-item]
    with pytest.raises(openai.BadRequestError, match="Missing required parameter: 'metadata'"):
        client.post(f"/chat/completions/{cid}", body={}, cast_to=object)
    with pytest.raises(openai.BadRequestError, match="Unknown parameter: 'model'"):
        client.post(
            f"/chat/completions/{cid}", body={"metadata": {}, "model": MODEL}, cast_to=object
        )


def test_delete_forgets_a_completion(client: openai.OpenAI) -> None:
    tag = nonce()
    kept, gone = _store(client, tag, 2)
    raw = client.chat.completions.with_raw_response.delete(gone)
    deleted = raw.http_response.json()
    _valid("ChatCompletionDeleted", deleted)
    assert deleted == {"object": "chat.completion.deleted", "id": gone, "deleted": True}
    assert [c.id for c in client.chat.completions.list(metadata={"test": tag})] == [kept]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.delete(gone)


def test_unknown_ids_are_404(client: openai.OpenAI) -> None:
    unknown = "chatcmpl-" + nonce()
    calls = [
        lambda: client.chat.completions.retrieve(unknown),
        lambda: client.chat.completions.update(unknown, metadata={}),
        lambda: client.chat.completions.delete(unknown),
        lambda: client.chat.completions.messages.list(unknown),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        body = caught.value.body
        assert isinstance(body, dict)
        assert body["message"] == f"Chat completion with id '{unknown}' not found."
        assert body["param"] == "completion_id"


def test_stored_completion_routes_need_a_key(client: openai.OpenAI) -> None:
    base = str(client.base_url).rstrip("/")
    with httpx2.Client() as raw:
        for path in ("/chat/completions", "/chat/completions/x", "/chat/completions/x/messages"):
            no_key = raw.get(f"{base}{path}")
            assert no_key.status_code == 401, path
            assert "API key" in no_key.json()["error"]["message"]


def test_the_store_is_bounded_oldest_first() -> None:
    store = CompletionStore(max_entries=2)
    for i in range(3):
        body = {"id": f"c{i}", "model": "m", "choices": []}
        store.keep(body, {"model": MODEL, "messages": [], "metadata": {"i": str(i)}})
    assert [s.body["id"] for s in store] == ["c1", "c2"]
    assert store.get("c0") is None
