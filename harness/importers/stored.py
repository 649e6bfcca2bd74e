"""OpenAI stored completions (``store: true``) as chat requests, pulled through the SDK.

``client.chat.completions.list(metadata=…, model=…)`` pages through the stored completions
(oldest first); ``client.chat.completions.messages.list(id)`` gives each one's request messages.
Each completion becomes one request: its messages as sent, with its ``metadata`` (and ``store:
true`` only with ``--keep-store``: every stored completion was sent with it, so a change note
per request would say nothing), and the stored reply as its ``reference``. The API returns
neither the request's tools, output format, streaming nor sampling parameters:
:func:`not_carried` names them for the report and ``--defaults`` fills them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from harness.errors import HarnessError
from harness.importers.source import SourceItem, SourceRequest, Unusable

if TYPE_CHECKING:
    import openai

__all__ = ["MAX_PAGE", "StoredQuery", "not_carried", "read_stored", "source_label"]

#: the most completions or messages one list request asks for (the list endpoints' limit)
MAX_PAGE = 100

_NOT_CARRIED = {
    "tools": "a stored completion lists its messages and reply, not the request's tools",
    "tool_choice": "not returned with a stored completion",
    "parallel_tool_calls": "not returned with a stored completion",
    "response_format": "not returned with a stored completion",
    "stream": "not returned: a completion is stored alike streamed or not",
    "sampling": "temperature, top_p, max_completion_tokens, seed, stop… are not returned",
}
_MODEL_NOTE = (
    "a stored completion names the snapshot that answered, not the model the app asked for: "
    "pass --model NAME"
)


@dataclass(frozen=True)
class StoredQuery:
    """Which stored completions to import (``harness import stored`` options)."""

    metadata: Mapping[str, str] = field(default_factory=dict)
    model: str | None = None
    #: at most this many completions (None: every one that matches)
    limit: int | None = None
    page_size: int = MAX_PAGE
    #: give each request the ``store: true`` it was sent with (``--keep-store``)
    keep_store: bool = False

    def describe(self) -> str:
        """The filter in words, for errors."""
        shown = [f"metadata {k}={v}" for k, v in self.metadata.items()]
        if self.model is not None:
            shown.append(f"model {self.model}")
        return ", ".join(shown) or "no filter"


def not_carried(query: StoredQuery) -> dict[str, str]:
    """The request fields a stored completion does not return, and why."""
    notes = dict(_NOT_CARRIED)
    if query.model is None:
        notes = {"model": _MODEL_NOTE, **notes}
    return notes


def source_label(base_url: str) -> str:
    """Where the completions come from, as the report names it (no user or password)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", "")) + "/chat/completions"


def _request_message(listed: Mapping[str, Any]) -> dict[str, Any]:
    """A listed message back as the request message it was sent as."""
    msg: dict[str, Any] = {"role": listed.get("role")}
    parts = listed.get("content_parts")
    if parts:
        msg["content"] = list(parts)
    elif listed.get("content") is not None:
        msg["content"] = listed["content"]
    for key in ("name", "tool_calls", "tool_call_id"):
        if listed.get(key):
            msg[key] = listed[key]
    return msg


def _reference(completion: Mapping[str, Any]) -> str | None:
    choices = completion.get("choices") or []
    message = (choices[0].get("message") or {}) if choices else {}
    content = message.get("content")
    return content if isinstance(content, str) and content else None


def _body(
    completion: Mapping[str, Any], messages: list[dict[str, Any]], query: StoredQuery
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": query.model or completion.get("model"), "messages": messages}
    if query.keep_store:
        body["store"] = True
    if completion.get("metadata"):
        body["metadata"] = dict(completion["metadata"])
    n = len(completion.get("choices") or [])
    if n > 1:  # the one sampling parameter a completion shows: its choices
        body["n"] = n
    return body


def read_stored(
    client: openai.OpenAI, query: StoredQuery, label: str, *, empty_hint: str = ""
) -> Iterator[SourceItem]:
    """Every matching stored completion as a request (line: its place in the listing, id: the
    completion's id); API errors become one-line :class:`HarnessError`s naming ``label``, and
    ``empty_hint`` ends the error for a listing with no match."""
    import openai

    listed = 0
    try:
        page = client.chat.completions.list(
            metadata=dict(query.metadata) or openai.omit,
            model=query.model if query.model is not None else openai.omit,
            limit=min(query.page_size, query.limit or MAX_PAGE),
            order="asc",
        )
        for completion in page:
            if query.limit is not None and listed >= query.limit:
                break
            listed += 1
            try:
                messages = [
                    _request_message(m.to_dict())
                    for m in client.chat.completions.messages.list(
                        completion.id, limit=MAX_PAGE, order="asc"
                    )
                ]
            except openai.NotFoundError:
                # deleted (or expired) between the listing and this read
                yield Unusable(listed, f"{completion.id}: gone before its messages were read")
                continue
            data = completion.to_dict()
            yield SourceRequest(
                listed, _body(data, messages, query), _reference(data), id=completion.id
            )
    except openai.AuthenticationError:
        raise HarnessError(
            f"{label}: 401, the server refused the API key — set HARNESS_TARGET_API_KEY "
            "(OPENAI_API_KEY for --target openai) to a key that may read stored completions"
        ) from None
    except openai.PermissionDeniedError:
        raise HarnessError(
            f"{label}: 403, the key may not read stored completions — use a key with read "
            "access to Chat Completions"
        ) from None
    except openai.APIConnectionError as exc:
        raise HarnessError(
            f"{label}: cannot connect ({type(exc.__cause__ or exc).__name__}) — start the "
            "server or fix --target"
        ) from None
    except openai.APIStatusError as exc:
        raise HarnessError(
            f"{label}: {exc.status_code} while listing stored completions — check that "
            "--target serves the stored-completions API"
        ) from None
    if listed == 0:
        raise HarnessError(
            f"{label}: no stored chat completions match ({query.describe()}) — completions are "
            f"stored only when sent with store: true; check --metadata and --model{empty_hint}"
        )
