"""Production shadow mode: mirror a sampled share of live Chat Completions calls to Responses.

The migration playbook ("deploy both side by side, route 10 % to Responses, monitor, increase
gradually, roll back on problems") as a library::

    client = ShadowClient(openai.OpenAI(), sample_rate=0.10, run_dir=Path("runs/stage-10"))
    reply = client.chat.completions.create(model=..., messages=..., shadow_key=user_id)

``client.chat.completions.create`` returns the application's own Chat Completions result —
same object, same type, same exceptions; a stream is the SDK's own stream object, passed
through chunk by chunk. For a deterministic sample of calls (a hash of the key, else a seeded
draw) the same request is translated with the harness translator and sent to Responses with
its own HTTP client, bounded queue, concurrency limit and timeout
(:mod:`harness.shadow.engine`) — by default in a sidecar process at lower CPU priority
(:mod:`harness.shadow.sidecar`), so the shadow work never holds this process's GIL;
``mode="thread"`` runs it on background threads of this process instead. Each pair becomes
two observations (arm ``chat`` = the live call, arm ``responses`` = the shadow) in a shard of
``runs/<run-id>/``;
``harness analyze`` merges the shards, and ``harness report`` / ``harness gate`` then work as
on scenario runs. With ``canary_rate`` a share of calls is *served* from Responses
(:mod:`harness.shadow.canary`), falling back to Chat on any error.

Everything else on the client (``client.models``, ``client.responses``, ``with_raw_response``,
``chat.completions.stream``/``parse``…) is the wrapped client's own and is not mirrored.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import openai

from harness.shadow.canary import CanaryCall, serve_async, serve_sync
from harness.shadow.capture import (
    Capture,
    atap_stream,
    instrument_client,
    snapshot_kwargs,
    tap_stream,
)
from harness.shadow.engine import ShadowConfig, ShadowEngine, ShadowStats, ShadowTarget
from harness.shadow.sidecar import Sidecar, in_sidecar
from harness.shadow.store import (
    MergeResult,
    merge_shards,
)
from harness.transport.wire import CURRENT_RECORDER, WireRecorder

__all__ = ["AsyncShadowClient", "ShadowClient", "sample_point", "shadow_target"]

Route = Literal["shadow", "canary"] | None
_log = logging.getLogger("harness.shadow")
#: The per-call keyword argument that carries the sampling key; removed before the SDK call.
KEY_KWARG = "shadow_key"


def sample_point(key: str, salt: bytes) -> float:
    """A key's fixed point in [0, 1): the same key always lands in the same place."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=salt).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def shadow_target(client: openai.OpenAI | openai.AsyncOpenAI, config: ShadowConfig) -> ShadowTarget:
    """Where the mirror sends, built from the wrapped client (and ``shadow_*`` overrides).

    The wrapped client's organization, project and default headers go with the mirror only
    when it goes to the same base URL: they belong to that target. Its timeout applies,
    capped at ``timeout_s``.
    """
    own = str(client.base_url).rstrip("/")
    base_url = (config.shadow_base_url or own).rstrip("/")
    headers: dict[str, str] = {}
    if base_url == own:
        if client.organization:
            headers["OpenAI-Organization"] = client.organization
        if client.project:
            headers["OpenAI-Project"] = client.project
        custom = getattr(client, "_custom_headers", None) or {}
        headers.update({k: v for k, v in custom.items() if isinstance(v, str)})
    timeout = client.timeout
    seconds = timeout if isinstance(timeout, int | float) else getattr(timeout, "read", None)
    timeout_s = config.timeout_s
    if isinstance(seconds, int | float) and seconds > 0:
        timeout_s = min(timeout_s, float(seconds))
    return ShadowTarget(
        base_url=base_url,
        api_key=config.shadow_api_key or client.api_key,
        headers=headers,
        timeout_s=timeout_s,
    )


class Shadow:
    """Sampling and the shadow engine of one wrapped client (``client.shadow``)."""

    def __init__(self, client: openai.OpenAI | openai.AsyncOpenAI, config: ShadowConfig) -> None:
        if in_sidecar():
            raise RuntimeError(
                "harness.shadow: a ShadowClient was created while the shadow sidecar imported "
                "the application's main module. Guard the script's entry point with "
                '`if __name__ == "__main__":` (as for any multiprocessing code), or pass '
                "mode='thread'."
            )
        self.client = client
        self.config = config
        self._salt = hashlib.sha256(f"harness-shadow:{config.seed}".encode()).digest()[:16]
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self._calls = 0
        self._engine: ShadowEngine | Sidecar | None = None
        self._closed = False
        self.wire_clock = config.wire_clock and instrument_client(client)
        self._active = config.sample_rate > 0 or config.canary_rate > 0
        if self._active:
            self._engine = self._new_engine()
        ref = weakref.ref(self)
        atexit.register(_close_ref, ref)
        os.register_at_fork(after_in_child=lambda: _forget_engine(ref))

    def _new_engine(self) -> ShadowEngine | Sidecar:
        target = shadow_target(self.client, self.config)
        if self.config.mode == "process":
            try:
                return Sidecar(self.config, target, calls=lambda: self._calls)
            except ValueError:
                raise  # settings that cannot go to a process: the message says what to do
            except Exception:  # e.g. inside a daemonic process, which may not have children
                _log.warning(
                    "harness.shadow: cannot start the shadow sidecar; the shadow side "
                    "runs in this process instead (mode='thread')",
                    exc_info=True,
                )
        engine = ShadowEngine(self.config, target, calls=lambda: self._calls)
        engine.start()
        return engine

    @property
    def engine(self) -> ShadowEngine | Sidecar | None:
        engine = self._engine
        if engine is None and self._active and not self._closed:
            # A forked web worker: threads do not survive fork, start this process's own.
            with self._lock:
                if self._engine is None:
                    try:
                        self._engine = self._new_engine()
                    except Exception:  # never the application's problem: stop mirroring
                        _log.exception(
                            "harness.shadow: cannot start the shadow side in "
                            "process %d; mirroring is off",
                            os.getpid(),
                        )
                        self._active = False
                engine = self._engine
        return engine

    @property
    def run_dir(self) -> Path:
        return self.config.resolved_run_dir()

    # --- the primary path ------------------------------------------------------------------

    def route(self, kwargs: dict[str, Any]) -> Route:
        """Pop ``shadow_key`` and decide: mirror, serve from Responses, or leave alone."""
        key = kwargs.pop(KEY_KWARG, None)
        with self._lock:
            self._calls += 1
        if not self._active or self._closed:
            return None
        config = self.config
        if key is None:
            key = _key_from(kwargs, config.key_metadata_field)
        point = self._rng.random() if key is None else sample_point(str(key), self._salt)
        if point < config.canary_rate:
            return "canary"
        if point < config.canary_rate + config.sample_rate:
            return "shadow"
        return None

    def capture(self, api: Literal["chat", "responses"], kwargs: dict[str, Any]) -> Capture:
        return Capture(
            api=api,
            kwargs=snapshot_kwargs(kwargs),
            stream=kwargs.get("stream") is True,
            started_at=time.time(),
            t0_ns=time.perf_counter_ns(),
            recorder=WireRecorder() if self.wire_clock else None,
        )

    def canary_call(self, kwargs: dict[str, Any]) -> CanaryCall:
        """A call to serve from Responses (:mod:`harness.shadow.canary` does the rest)."""
        capture = self.capture("responses", kwargs)
        return CanaryCall(kwargs, capture, self.config.ignore_params, self.canary_done)

    def mirrored(self, kwargs: dict[str, Any]) -> _Mirrored:
        """The ``with`` block around a mirrored call's live ``create``."""
        return _Mirrored(self, self.capture("chat", kwargs))

    def pair_done(self, capture: Capture) -> None:
        engine = self.engine
        if engine is None:
            return
        engine.count("sampled")
        if capture.abandoned:
            engine.count("abandoned_streams")
            return
        engine.submit("pair", capture)

    def canary_done(self, capture: Capture) -> None:
        engine = self.engine
        if engine is None:
            return
        engine.count("canary")
        engine.count("canary_fallbacks" if capture.fallback else "canary_served")
        if not capture.abandoned:
            engine.submit("canary", capture)

    # --- control ---------------------------------------------------------------------------

    def stats(self) -> ShadowStats:
        """This process's counters so far (its sidecar's included)."""
        engine = self._engine
        stats = engine.snapshot() if engine else ShadowStats()
        stats.calls = self._calls
        return stats

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every accepted shadow call is written; False on timeout."""
        engine = self._engine
        return True if engine is None else engine.flush(timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Finish queued shadow calls (up to ``drain_timeout_s``), write stats and stop."""
        self._closed = True
        engine = self._engine
        if engine is not None:
            engine.close(timeout_s)

    def merge(self) -> MergeResult:
        """Merge the run's shards into ``observations.jsonl`` (after :meth:`flush`)."""
        return merge_shards(self.run_dir)


class _Mirrored:
    """A mirrored call's live ``create``, for both clients: the wire clock's recorder is on
    during the call; an API error is recorded (then raised to the caller as it came); a result
    is tapped (a stream) or handed to the shadow side."""

    __slots__ = ("_token", "capture", "shadow")

    def __init__(self, shadow: Shadow, capture: Capture) -> None:
        self.shadow = shadow
        self.capture = capture

    def __enter__(self) -> _Mirrored:
        self._token = CURRENT_RECORDER.set(self.capture.recorder)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        CURRENT_RECORDER.reset(self._token)
        if isinstance(exc, openai.APIError):
            self.capture.failed(exc)
            self.shadow.pair_done(self.capture)

    def returned(self, result: Any) -> Any:
        """The live result, unchanged (a stream's iterator is tapped)."""
        capture = self.capture
        capture.returned(result)
        if isinstance(result, openai.Stream):
            result._iterator = tap_stream(result._iterator, capture, self.shadow.pair_done)
        elif isinstance(result, openai.AsyncStream):
            result._iterator = atap_stream(result._iterator, capture, self.shadow.pair_done)
        else:
            self.shadow.pair_done(capture)
        return result


def _key_from(kwargs: Mapping[str, Any], metadata_field: str | None) -> Any:
    if metadata_field is not None:
        metadata = kwargs.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get(metadata_field) is not None:
            return metadata[metadata_field]
    for name in ("safety_identifier", "user"):
        value = kwargs.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _close_ref(ref: weakref.ref[Shadow]) -> None:
    shadow = ref()
    if shadow is not None:
        shadow.close()


def _forget_engine(ref: weakref.ref[Shadow]) -> None:
    shadow = ref()
    if shadow is not None:  # in a forked child: the parent's threads (and lock holders) are gone
        if isinstance(shadow._engine, Sidecar):
            shadow._engine.abandon_after_fork()
        shadow._lock = threading.Lock()
        shadow._calls = 0
        shadow._engine = None


def _config(config: ShadowConfig | None, options: dict[str, Any]) -> ShadowConfig:
    for name in ("run_dir", "runs_dir"):
        if isinstance(options.get(name), str):
            options[name] = Path(options[name])
    if "ignore_params" in options:
        options["ignore_params"] = frozenset(options["ignore_params"])
    return dataclasses.replace(config or ShadowConfig(), **options)


# --- one core for both clients ------------------------------------------------------------------


class _BaseCompletions:
    def __init__(self, inner: Any, shadow: Shadow) -> None:
        self._inner = inner
        self._shadow = shadow

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _BaseChat:
    _completions: type[_BaseCompletions]

    def __init__(self, inner: Any, shadow: Shadow) -> None:
        self._inner = inner
        self.completions = self._completions(inner.completions, shadow)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_Client = TypeVar("_Client", openai.OpenAI, openai.AsyncOpenAI)


class _BaseShadowClient(Generic[_Client]):
    """What both clients share: the wrapped client, its :class:`Shadow`, ``chat``."""

    _chat: type[_BaseChat]

    def __init__(self, client: _Client, config: ShadowConfig | None = None, **options: Any) -> None:
        self.wrapped: _Client = client
        self.shadow = Shadow(client, _config(config, options))
        self.chat = self._chat(client.chat, self.shadow)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


# --- sync ----------------------------------------------------------------------------------------


class _Completions(_BaseCompletions):
    def create(self, **kwargs: Any) -> Any:
        """``chat.completions.create``: the live call, mirrored or canaried when sampled."""
        route = self._shadow.route(kwargs)
        if route is None:
            return self._inner.create(**kwargs)
        if route == "canary":
            return serve_sync(self._shadow.client, self._shadow.canary_call(kwargs))  # type: ignore[arg-type]
        with self._shadow.mirrored(kwargs) as call:
            result = self._inner.create(**kwargs)
        return call.returned(result)


class _Chat(_BaseChat):
    _completions = _Completions


class ShadowClient(_BaseShadowClient[openai.OpenAI]):
    """Drop-in wrapper of ``openai.OpenAI``; see the module docstring.

    ``ShadowClient(openai.OpenAI(), sample_rate=0.1, run_dir=Path("runs/stage-10"))`` — any
    :class:`ShadowConfig` field may be given as a keyword (or pass ``config=``).
    """

    _chat = _Chat

    def close(self) -> None:
        """Drain and stop the shadow side, then close the wrapped client."""
        self.shadow.close()
        self.wrapped.close()

    def __enter__(self) -> ShadowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- async ---------------------------------------------------------------------------------------


class _AsyncCompletions(_BaseCompletions):
    async def create(self, **kwargs: Any) -> Any:
        """``chat.completions.create``: the live call, mirrored or canaried when sampled."""
        route = self._shadow.route(kwargs)
        if route is None:
            return await self._inner.create(**kwargs)
        if route == "canary":
            call = self._shadow.canary_call(kwargs)
            return await serve_async(self._shadow.client, call)  # type: ignore[arg-type]
        with self._shadow.mirrored(kwargs) as mirrored:
            result = await self._inner.create(**kwargs)
        return mirrored.returned(result)


class _AsyncChat(_BaseChat):
    _completions = _AsyncCompletions


class AsyncShadowClient(_BaseShadowClient[openai.AsyncOpenAI]):
    """Drop-in wrapper of ``openai.AsyncOpenAI`` (the shadow side runs in its sidecar process,
    or with ``mode="thread"`` on its own thread and loop, never on the application's loop)."""

    _chat = _AsyncChat

    async def close(self) -> None:
        """Drain and stop the shadow side (on a worker thread), then close the wrapped client."""
        import asyncio

        await asyncio.to_thread(self.shadow.close)
        await self.wrapped.close()

    async def __aenter__(self) -> AsyncShadowClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
