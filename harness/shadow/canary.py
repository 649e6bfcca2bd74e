"""Canary mode: serve a share of live Chat Completions calls from the Responses API.

The caller still gets Chat Completions objects: a non-streaming call returns a
``ChatCompletion`` built by :func:`harness.translate.convert.responses_to_chat_completion`; a
streaming call returns an ``openai.Stream`` (``AsyncStream``) of ``ChatCompletionChunk``, translated
event by event by :class:`ChunkTranslator`. Whenever Responses cannot serve the call — the request
does not translate, the Responses call fails, or its stream fails before any chunk reached the
caller — the call falls back to Chat Completions and the caller sees Chat's own result (or Chat's
own exception). A stream that fails after chunks were delivered cannot be replayed: the caller gets
an ``openai.APIError``, as a failing Chat stream raises.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from typing import Any, cast

import openai
from openai._models import construct_type
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from harness.errors import TranslationError
from harness.shadow.capture import Capture
from harness.translate.convert import responses_to_chat_completion
from harness.translate.from_chat import shadow_responses_kwargs
from harness.transport.wire import CURRENT_RECORDER

__all__ = [
    "CanaryCall",
    "CanaryStreamError",
    "ChunkTranslator",
    "canary_kwargs",
    "completion_from_response",
    "serve_async",
    "serve_sync",
]

OnDone = Callable[[Capture], None]


class CanaryStreamError(Exception):
    """A Responses stream ended in a way a chat stream reports as an error."""

    def __init__(self, message: str, body: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.body = dict(body)


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    dumped: dict[str, Any] = obj.model_dump(mode="json")
    return dumped


class ChunkTranslator:
    """Responses stream events → ``chat.completion.chunk`` dicts, one event at a time (pure).

    The first chunk (``role: assistant``) is held back until the first output arrives, so a
    stream that fails before producing anything has delivered nothing and can fall back.
    With ``include_usage`` a last chunk with empty ``choices`` carries the usage, as Chat
    sends it for ``stream_options: {include_usage: true}``.
    """

    def __init__(self, *, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.head: dict[str, Any] = {}
        self.started = False
        self.finished = False
        self._tool_index: dict[str, int] = {}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk = dict(self.head)
        chunk["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _open(self, delta: dict[str, Any]) -> dict[str, Any]:
        # Chat's first chunk carries the role; merge it into the first output like Chat does.
        if not self.started:
            self.started = True
            delta = {
                "role": "assistant",
                "content": delta.pop("content", None),
                "refusal": None,
                **delta,
            }
        return self._chunk(delta)

    def feed(self, event: Any) -> list[dict[str, Any]]:
        """Chunks for one event (often none). Raises CanaryStreamError on a failed stream."""
        kind = _get(event, "type")
        if kind == "response.created":
            response = _get(event, "response")
            self.head = {
                "id": _get(response, "id"),
                "object": "chat.completion.chunk",
                "created": int(_get(response, "created_at") or time.time()),
                "model": _get(response, "model"),
                "service_tier": _get(response, "service_tier"),
                "system_fingerprint": None,
            }
            return []
        if kind == "response.output_text.delta":
            return [self._open({"content": _get(event, "delta") or ""})]
        if kind == "response.refusal.delta":
            return [self._open({"refusal": _get(event, "delta") or ""})]
        if kind == "response.output_item.added":
            item = _get(event, "item")
            if _get(item, "type") != "function_call":
                return []
            index = self._tool_index.setdefault(str(_get(item, "id")), len(self._tool_index))
            call = {
                "index": index,
                "id": _get(item, "call_id"),
                "type": "function",
                "function": {"name": _get(item, "name"), "arguments": ""},
            }
            return [self._open({"content": None, "tool_calls": [call]})]
        if kind == "response.function_call_arguments.delta":
            index = self._tool_index.get(str(_get(event, "item_id")), 0)
            return [
                self._chunk(
                    {
                        "tool_calls": [
                            {"index": index, "function": {"arguments": _get(event, "delta") or ""}}
                        ]
                    }
                )
            ]
        if kind in ("response.completed", "response.incomplete"):
            return self._finish(_as_dict(_get(event, "response")))
        if kind == "response.failed":
            error = _get(_get(event, "response"), "error")
            raise CanaryStreamError(
                str(_get(error, "message") or "response.failed"),
                {
                    "code": _get(error, "code") or "response_failed",
                    "message": _get(error, "message"),
                },
            )
        if kind == "error":
            raise CanaryStreamError(
                str(_get(event, "message") or "error event"),
                {"code": _get(event, "code") or "stream_error", "message": _get(event, "message")},
            )
        return []

    def _finish(self, response: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            completion = responses_to_chat_completion(response)
        except TranslationError as exc:
            raise CanaryStreamError(
                str(exc), {"code": "untranslatable", "message": str(exc)}
            ) from None
        self.finished = True
        out = []
        if not self.started:
            out.append(self._open({"content": ""}))
        out.append(self._chunk({}, completion["choices"][0]["finish_reason"]))
        if self.include_usage and "usage" in completion:
            out.append({**self.head, "choices": [], "usage": completion["usage"]})
        return out


def _include_usage(kwargs: Mapping[str, Any]) -> bool:
    options = kwargs.get("stream_options")
    return isinstance(options, Mapping) and bool(options.get("include_usage"))


def _chunk_model(data: dict[str, Any]) -> ChatCompletionChunk:
    return cast(ChatCompletionChunk, construct_type(type_=ChatCompletionChunk, value=data))


def completion_from_response(response: Any) -> ChatCompletion:
    """A Responses ``Response`` (SDK object or dict) as a ``ChatCompletion`` object."""
    completion = ChatCompletion.model_validate(responses_to_chat_completion(_as_dict(response)))
    request_id = getattr(response, "_request_id", None)
    if request_id is not None:
        completion._request_id = request_id
    return completion


def canary_kwargs(kwargs: Mapping[str, Any], ignore: Collection[str]) -> dict[str, Any]:
    """Responses kwargs serving a chat call (it keeps the caller's ``store`` choice)."""
    out = shadow_responses_kwargs(kwargs, ignore=ignore)
    out["store"] = kwargs.get("store") is True
    return out


def _as_stream_error(exc: Exception) -> CanaryStreamError:
    if isinstance(exc, CanaryStreamError):
        return exc
    return CanaryStreamError(
        f"canary: {type(exc).__name__}: {exc}", {"code": "canary_error", "message": str(exc)}
    )


def _stream_error(exc: CanaryStreamError, response: Any) -> openai.APIError:
    request = getattr(response, "request", None)
    return openai.APIError(str(exc), request=request, body=exc.body)  # type: ignore[arg-type]


# --- one core for both clients ------------------------------------------------------------------


class CanaryCall:
    """One chat call served from Responses: every decision and record, for both clients.

    The sync and async twins below only do the I/O (``create``, ``next()`` /
    ``await __anext__()``, ``close``). This object decides what each outcome means: a request
    that does not translate, a Responses error (the ``with`` block around the Responses call and
    around each pull of its stream), a reply that does not translate, a stream that breaks
    before or after chunks reached the caller — and keeps ``capture`` and ``on_done`` in step.
    """

    __slots__ = (
        "_token",
        "capture",
        "delivered",
        "event",
        "kwargs",
        "on_done",
        "request",
        "result",
        "translator",
    )

    def __init__(
        self, kwargs: dict[str, Any], capture: Capture, ignore: Collection[str], on_done: OnDone
    ) -> None:
        self.kwargs = kwargs
        self.capture = capture
        self.on_done = on_done
        #: the Responses result: a ``Response`` or its event stream (None until it came)
        self.result: Any = None
        self.event: Any = None
        self.delivered = False
        self.translator = ChunkTranslator(include_usage=_include_usage(kwargs))
        self._token: Any = None
        #: the Responses kwargs; None: the request does not translate and Chat serves it
        self.request: dict[str, Any] | None = None
        try:
            self.request = canary_kwargs(kwargs, ignore)
        except Exception as exc:  # TranslationError, or a bug here: Chat serves the call
            capture.fallback = "untranslatable"
            capture.error = exc
            on_done(capture)

    # around the Responses call, and around each pull of its stream
    def __enter__(self) -> None:
        self._token = CURRENT_RECORDER.set(self.capture.recorder)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        """True (swallow) at the stream's end and on an API error Chat can still answer."""
        CURRENT_RECORDER.reset(self._token)
        if kind is None:
            return False
        capture = self.capture
        if kind is StopIteration or kind is StopAsyncIteration:
            capture.end_ns = time.perf_counter_ns()
            return True
        if not isinstance(exc, openai.APIError):
            return False
        capture.failed(exc)
        if self.delivered:  # chunks reached the caller: it gets the error, as from a chat stream
            return False
        capture.fallback = "responses_error"
        if self.result is None:  # the Responses call itself failed
            self.on_done(capture)
        return True

    def served(self) -> Any:
        """What the caller gets from Responses: a ``ChatCompletion``, the event stream to
        translate (a streaming call), or None: Chat serves the call (already recorded)."""
        result = self.result
        if result is None:
            return None
        capture = self.capture
        capture.returned(result)
        if capture.stream:
            return result
        try:
            completion = completion_from_response(result)
        except Exception as exc:  # TranslationError, ValidationError: Chat serves the call
            capture.failed(exc)
            capture.fallback = "untranslatable_response"
            self.on_done(capture)
            return None
        self.on_done(capture)
        return completion

    @property
    def streaming(self) -> bool:
        """The event stream is neither over nor broken."""
        return self.capture.end_ns is None

    def take(self) -> list[ChatCompletionChunk]:
        """The chunks for the event just pulled (none once the stream is over).

        Raises ``openai.APIError`` when the stream breaks after chunks reached the caller;
        before that, a broken stream makes Chat serve the call (:attr:`falls_back`).
        """
        capture = self.capture
        if capture.end_ns is not None:
            return []
        event = self.event
        capture.items.append((time.perf_counter_ns(), event))
        try:
            chunks = self.translator.feed(event)
        except Exception as exc:  # a failed stream, or an event we cannot translate
            capture.end_ns = time.perf_counter_ns()
            if self.delivered:
                raise _stream_error(_as_stream_error(exc), self.result.response) from None
            capture.fallback = "responses_error"
            return []
        if chunks:
            self.delivered = True
        return [_chunk_model(chunk) for chunk in chunks]

    @property
    def falls_back(self) -> bool:
        """Responses could not serve the call: Chat does."""
        return self.capture.fallback is not None

    def dropped(self) -> bool:
        """At the chunk stream's end: True when the caller dropped it early (close the events)."""
        if self.capture.end_ns is None:
            self.capture.abandoned = True
            return True
        return False


def _chunk_stream(stream: type[Any], call: CanaryCall, client: Any, chunks: Any) -> Any:
    out = stream(cast_to=ChatCompletionChunk, response=call.result.response, client=client)
    out._iterator = chunks
    return out


# --- sync ----------------------------------------------------------------------------------------


def serve_sync(client: openai.OpenAI, call: CanaryCall) -> Any:
    """Serve one chat call from Responses (fallback to Chat); records into ``call.capture``."""
    if call.request is not None:
        with call:
            call.result = client.responses.create(**call.request)
    served = call.served()
    if served is None:
        return client.chat.completions.create(**call.kwargs)
    if not call.capture.stream:
        return served
    return _chunk_stream(openai.Stream, call, client, _chunks_sync(call, client.chat.completions))


def _chunks_sync(call: CanaryCall, completions: Any) -> Iterator[ChatCompletionChunk]:
    events = call.result
    inner = iter(events)
    fallback: Any = ()
    try:
        while call.streaming:
            with call:
                call.event = next(inner)
            yield from call.take()
        if call.falls_back:
            events.close()
            fallback = completions.create(**call.kwargs)
    finally:
        if call.dropped():
            events.close()
        call.on_done(call.capture)
    yield from fallback


# --- async ---------------------------------------------------------------------------------------


async def serve_async(client: openai.AsyncOpenAI, call: CanaryCall) -> Any:
    """:func:`serve_sync` for ``openai.AsyncOpenAI``."""
    if call.request is not None:
        with call:
            call.result = await client.responses.create(**call.request)
    served = call.served()
    if served is None:
        return await client.chat.completions.create(**call.kwargs)
    if not call.capture.stream:
        return served
    chunks = _chunks_async(call, client.chat.completions)
    return _chunk_stream(openai.AsyncStream, call, client, chunks)


async def _chunks_async(call: CanaryCall, completions: Any) -> AsyncIterator[ChatCompletionChunk]:
    events = call.result
    inner = events.__aiter__()
    fallback: Any = None
    try:
        while call.streaming:
            with call:
                call.event = await inner.__anext__()
            for chunk in call.take():
                yield chunk
        if call.falls_back:
            await events.close()
            fallback = await completions.create(**call.kwargs)
    finally:
        if call.dropped():
            await events.close()
        call.on_done(call.capture)
    if fallback is not None:
        async for chunk in fallback:
            yield chunk
