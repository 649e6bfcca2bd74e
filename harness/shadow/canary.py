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


# --- sync ----------------------------------------------------------------------------------------


def serve_sync(
    client: openai.OpenAI,
    kwargs: dict[str, Any],
    capture: Capture,
    ignore: Collection[str],
    on_done: OnDone,
) -> Any:
    """Serve one chat call from Responses (fallback to Chat); records into ``capture``."""
    completions = client.chat.completions
    try:
        rkw = canary_kwargs(kwargs, ignore)
    except Exception as exc:  # TranslationError, or a bug here: Chat serves the call
        capture.fallback = "untranslatable"
        capture.error = exc
        on_done(capture)
        return completions.create(**kwargs)
    token = CURRENT_RECORDER.set(capture.recorder)
    try:
        result = client.responses.create(**rkw)
    except openai.APIError as exc:
        capture.failed(exc)
        capture.fallback = "responses_error"
        on_done(capture)
        return completions.create(**kwargs)
    finally:
        CURRENT_RECORDER.reset(token)
    capture.returned(result)
    if not capture.stream:
        try:
            completion = completion_from_response(result)
        except Exception as exc:  # TranslationError, ValidationError: Chat serves the call
            capture.failed(exc)
            capture.fallback = "untranslatable_response"
            on_done(capture)
            return completions.create(**kwargs)
        on_done(capture)
        return completion
    out: openai.Stream[ChatCompletionChunk] = openai.Stream(
        cast_to=ChatCompletionChunk, response=result.response, client=client
    )
    out._iterator = _chunks_sync(result, capture, kwargs, completions, on_done)
    return out


def _chunks_sync(
    events: Any, capture: Capture, kwargs: dict[str, Any], completions: Any, on_done: OnDone
) -> Iterator[ChatCompletionChunk]:
    translator = ChunkTranslator(include_usage=_include_usage(kwargs))
    inner = iter(events)
    delivered = False
    fallback: Any = None
    try:
        while True:
            token = CURRENT_RECORDER.set(capture.recorder)
            try:
                event = next(inner)
            except StopIteration:
                capture.end_ns = time.perf_counter_ns()
                return
            except openai.APIError as exc:
                capture.failed(exc)
                if delivered:
                    raise
                capture.fallback = "responses_error"
                break
            finally:
                CURRENT_RECORDER.reset(token)
            capture.items.append((time.perf_counter_ns(), event))
            try:
                chunks = translator.feed(event)
            except Exception as exc:  # a failed stream, or an event we cannot translate
                capture.end_ns = time.perf_counter_ns()
                if delivered:
                    raise _stream_error(_as_stream_error(exc), events.response) from None
                capture.fallback = "responses_error"
                break
            for chunk in chunks:
                delivered = True
                yield _chunk_model(chunk)
        events.close()
        fallback = completions.create(**kwargs)
    finally:
        if capture.end_ns is None:
            capture.abandoned = True
            events.close()
        on_done(capture)
    yield from fallback


# --- async ---------------------------------------------------------------------------------------


async def serve_async(
    client: openai.AsyncOpenAI,
    kwargs: dict[str, Any],
    capture: Capture,
    ignore: Collection[str],
    on_done: OnDone,
) -> Any:
    """:func:`serve_sync` for ``openai.AsyncOpenAI``."""
    completions = client.chat.completions
    try:
        rkw = canary_kwargs(kwargs, ignore)
    except Exception as exc:  # TranslationError, or a bug here: Chat serves the call
        capture.fallback = "untranslatable"
        capture.error = exc
        on_done(capture)
        return await completions.create(**kwargs)
    token = CURRENT_RECORDER.set(capture.recorder)
    try:
        result = await client.responses.create(**rkw)
    except openai.APIError as exc:
        capture.failed(exc)
        capture.fallback = "responses_error"
        on_done(capture)
        return await completions.create(**kwargs)
    finally:
        CURRENT_RECORDER.reset(token)
    capture.returned(result)
    if not capture.stream:
        try:
            completion = completion_from_response(result)
        except Exception as exc:  # TranslationError, ValidationError: Chat serves the call
            capture.failed(exc)
            capture.fallback = "untranslatable_response"
            on_done(capture)
            return await completions.create(**kwargs)
        on_done(capture)
        return completion
    out: openai.AsyncStream[ChatCompletionChunk] = openai.AsyncStream(
        cast_to=ChatCompletionChunk, response=result.response, client=client
    )
    out._iterator = _chunks_async(result, capture, kwargs, completions, on_done)
    return out


async def _chunks_async(
    events: Any, capture: Capture, kwargs: dict[str, Any], completions: Any, on_done: OnDone
) -> AsyncIterator[ChatCompletionChunk]:
    translator = ChunkTranslator(include_usage=_include_usage(kwargs))
    inner = events.__aiter__()
    delivered = False
    fallback: Any = None
    try:
        while True:
            token = CURRENT_RECORDER.set(capture.recorder)
            try:
                event = await inner.__anext__()
            except StopAsyncIteration:
                capture.end_ns = time.perf_counter_ns()
                return
            except openai.APIError as exc:
                capture.failed(exc)
                if delivered:
                    raise
                capture.fallback = "responses_error"
                break
            finally:
                CURRENT_RECORDER.reset(token)
            capture.items.append((time.perf_counter_ns(), event))
            try:
                chunks = translator.feed(event)
            except Exception as exc:  # a failed stream, or an event we cannot translate
                capture.end_ns = time.perf_counter_ns()
                if delivered:
                    raise _stream_error(_as_stream_error(exc), events.response) from None
                capture.fallback = "responses_error"
                break
            for chunk in chunks:
                delivered = True
                yield _chunk_model(chunk)
        await events.close()
        fallback = await completions.create(**kwargs)
    finally:
        if capture.end_ns is None:
            capture.abandoned = True
            await events.close()
        on_done(capture)
    async for chunk in fallback:
        yield chunk
