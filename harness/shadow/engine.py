"""The shadow side: a background thread with its own event loop, HTTP client and writer.

With ``mode="thread"`` the engine runs in the application's process and the application's
thread only calls :meth:`ShadowEngine.submit`, which counts, checks the bound and appends the
captured call to a deque the loop polls — no translation, no system call. With
``mode="process"`` (the default) the same engine runs in a sidecar process
(:mod:`harness.shadow.sidecar`) and is fed from a pipe.

On the loop, each job is translated (:func:`harness.translate.from_chat.shadow_responses_kwargs`),
sent to Responses through :class:`harness.transport.client.Transport` (own connections, own
concurrency limit and timeout, no retries, wire clock) and turned into observations; a
second thread computes similarity on the unredacted text, runs the redaction hook and appends
to this process's shard (fsync in small groups, so disk latency never stalls the loop).
Every failure on this side is caught and recorded as data or counted; nothing is raised to the
application.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import platform
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness import __version__
from harness.analysis.similarity import text_similarity
from harness.emulator import PROFILE_HEADER
from harness.errors import TranslationError
from harness.records import Observation, OutputFormatName, RunMeta
from harness.shadow.capture import Capture, read_capture
from harness.shadow.config import (
    STAT_FIELDS,
    ClientKind,
    Mode,
    ShadowConfig,
    ShadowStats,
    ShadowTarget,
)
from harness.shadow.store import (
    ShardWriter,
    ensure_meta,
    fingerprint,
    mark_finished,
    write_stats,
)
from harness.translate.from_chat import shadow_responses_kwargs
from harness.transport.client import CallResult, Transport, warm_sdk

__all__ = [
    "STAT_FIELDS",
    "ClientKind",
    "Mode",
    "ShadowConfig",
    "ShadowEngine",
    "ShadowStats",
    "ShadowTarget",
    "target_name",
]

_STOP = object()
_log = logging.getLogger("harness.shadow")
#: how often the shadow loop picks up new jobs (s)
POLL_S = 0.002
#: how often each process rewrites its shadow-stats file (s)
STATS_INTERVAL_S = 10.0


@dataclass(slots=True)
class _Job:
    kind: Literal["pair", "canary"]
    capture: Capture
    order: int
    pair_id: str


@dataclass
class _Written:
    observations: list[Observation]
    is_emulator: bool | None = None
    #: the emulator profile named by the reply's ``x-emulator-profile`` header
    emulator_profile: str | None = None
    pair: bool = False
    done: threading.Event | None = field(default=None)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"harness": __version__, "python": platform.python_version()}
    for dist in ("openai", "httpx2", "pydantic"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def target_name(base_url: str) -> str:
    return "openai" if "api.openai.com" in base_url else base_url


class ShadowEngine:
    """Background shadow work of one process. Start once; ``submit`` from any thread."""

    def __init__(
        self,
        config: ShadowConfig,
        target: ShadowTarget,
        *,
        calls: Callable[[], int] | None = None,
        publish: Callable[[str, int], None] | None = None,
        stats_file: bool = True,
        poll: bool = True,
    ) -> None:
        """``publish(name, value)`` sees every counter change (the sidecar shares them with
        the application's process); ``stats_file=False``: that process writes the file;
        ``poll=False``: ``submit`` wakes the loop (fine off the application's process)."""
        self._poll_inbox = poll
        self.config = config
        self._calls = calls
        self._publish = publish
        self._stats_file = stats_file
        self.target = target
        self.base_url = target.base_url.rstrip("/")
        self.run_dir = config.resolved_run_dir()
        self.stats = ShadowStats()
        self._lock = threading.Lock()
        self._pending = 0
        self._capacity = config.max_queue + config.max_concurrency
        self._order = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sem: asyncio.Semaphore | None = None
        self._transport: Transport | None = None
        self._writes: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._inbox: collections.deque[_Job] = collections.deque()
        self._shard: ShardWriter | None = None
        self._stats_path: Path | None = None
        self._closed = False
        self._meta_done = False
        self._stats_saved = time.monotonic()
        self._idle = threading.Condition(self._lock)
        self._loop_thread = threading.Thread(
            target=self._loop_main, name="harness-shadow", daemon=True
        )
        self._writer_thread = threading.Thread(
            target=self._writer_main, name="harness-shadow-writer", daemon=True
        )
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._shard = ShardWriter(
            self.run_dir,
            max_bytes=self.config.max_shard_bytes,
            max_age_s=self.config.max_shard_age_s,
            fsync_every=self.config.fsync_every,
        )
        if self._stats_file:
            self._stats_path = (
                self.run_dir / f"shadow-stats-{self._shard.prefix}-{self._shard.first_index}.json"
            )
        self._writer_thread.start()
        self._loop_thread.start()
        self._ready.wait(30)
        if self._start_error is not None:
            raise self._start_error

    def _loop_main(self) -> None:
        try:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._sem = asyncio.Semaphore(self.config.max_concurrency)
            if self.config.shadow_client == "sdk":
                warm_sdk()
            self._transport = Transport(
                self.base_url,
                self.target.api_key,
                kind=self.config.shadow_client,
                timeout_s=min(self.target.timeout_s, self.config.timeout_s),
                max_connections=self.config.max_concurrency,
                headers=self.target.headers,
            )
            self._loop = loop
        except BaseException as exc:  # reported by start(), never swallowed
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            poller = loop.create_task(self._poll()) if self._poll_inbox else None
            loop.run_forever()
            if poller is not None:
                poller.cancel()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._transport.aclose())
            loop.close()

    def close(self, timeout_s: float | None = None) -> None:
        """Stop taking jobs, wait up to ``timeout_s`` for queued ones, flush, write stats."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.flush(self.config.drain_timeout_s if timeout_s is None else timeout_s)
        loop = self._loop
        if loop is not None and self._loop_thread.is_alive():
            fut = asyncio.run_coroutine_threadsafe(self._cancel_all(), loop)
            with contextlib.suppress(Exception):
                fut.result(10)
            loop.call_soon_threadsafe(loop.stop)
            self._loop_thread.join(10)
        self._writes.put(_STOP)
        self._writer_thread.join(30)
        self._save_stats()
        if self._meta_done:
            mark_finished(self.run_dir)

    async def _cancel_all(self) -> None:
        self._take()  # jobs still in the inbox become tasks too …
        await asyncio.sleep(0)  # … and every task starts, so its cancel is counted in _run
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every accepted job is written (True) or ``timeout_s`` passed (False)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        done = threading.Event()
        self._writes.put(_Written([], done=done))
        return done.wait(max(0.0, deadline - time.monotonic()))

    # --- the application's thread ----------------------------------------------------------

    def submit(self, kind: Literal["pair", "canary"], capture: Capture) -> bool:
        """Hand one captured call to the shadow loop; False (and counted) when it is full."""
        loop = self._loop
        with self._lock:
            if self._closed or loop is None:
                self._bump("dropped_closed" if kind == "pair" else "canary_dropped")
                return False
            if self._pending >= self._capacity:
                self._bump("dropped_queue_full" if kind == "pair" else "canary_dropped")
                return False
            self._pending += 1
            self._order += 1
            order = self._order
            if kind == "pair":
                self._bump("enqueued")
        prefix = self._shard.prefix if self._shard else "p"
        first = self._shard.first_index if self._shard else 0
        # deque.append is atomic and makes no system call: a wake-up (call_soon_threadsafe)
        # would write to the loop's self-pipe, release the GIL and let the shadow thread run
        # first. In the application's process the loop polls instead (every POLL_S).
        self._inbox.append(_Job(kind, capture, order, f"{prefix}-{first}-{order}"))
        if not self._poll_inbox:
            loop.call_soon_threadsafe(self._take)
        return True

    def count(self, name: str) -> None:
        with self._lock:
            self._bump(name)

    def _bump(self, name: str) -> None:
        # with self._lock held
        value = getattr(self.stats, name) + 1
        setattr(self.stats, name, value)
        if self._publish is not None:
            self._publish(name, value)

    def snapshot(self) -> ShadowStats:
        """A consistent copy of the counters."""
        with self._lock:
            return ShadowStats(**self.stats.as_dict())

    @property
    def pending(self) -> int:
        """Jobs accepted and not yet handed to the writer."""
        return self._pending

    def wait_for_room(self, limit: int, timeout_s: float) -> bool:
        """Wait until fewer than ``limit`` jobs are pending (the sidecar's back-pressure)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending < limit, timeout_s)

    # --- the shadow loop -------------------------------------------------------------------

    def _job_done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _take(self) -> None:
        loop = asyncio.get_running_loop()
        inbox = self._inbox
        while inbox:
            task = loop.create_task(self._run(inbox.popleft()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _poll(self) -> None:
        while True:
            self._take()
            await asyncio.sleep(POLL_S)

    async def _run(self, job: _Job) -> None:
        try:
            if job.kind == "canary":
                self._writes.put(self._canary(job))
                return
            assert self._sem is not None
            async with self._sem:
                self._writes.put(await self._pair(job))
        except asyncio.CancelledError:
            self.count("cancelled_at_close")
        except Exception:  # a bug here must never reach the application; count and log it
            self.count("internal_errors")
            if job.kind == "pair":
                self.count("pairs_failed")
            _log.exception("harness.shadow: internal error on the shadow side (counted)")
        finally:
            self._job_done()

    async def _shadow_call(self, kwargs: dict[str, Any]) -> CallResult:
        try:
            rkw = shadow_responses_kwargs(kwargs, ignore=self.config.ignore_params)
        except TranslationError as exc:
            self.count("untranslatable")
            return CallResult(error_type="untranslatable", error_message=str(exc))
        await asyncio.sleep(0)
        assert self._transport is not None
        try:
            return await asyncio.wait_for(
                self._transport.send("responses", rkw), self.config.timeout_s
            )
        except TimeoutError:
            self.count("timeouts")
            return CallResult(
                error_type="shadow_timeout",
                error_message=f"no complete reply within {self.config.timeout_s} s",
            )

    async def _pair(self, job: _Job) -> _Written:
        capture = job.capture
        started = time.time()
        shadow = await self._shadow_call(capture.kwargs)
        # Yield between CPU steps: each return to the loop's select releases the GIL, so the
        # application's threads never wait long for it.
        await asyncio.sleep(0)
        primary = read_capture(capture)
        await asyncio.sleep(0)
        self.count("shadow_ok" if shadow.ok else "shadow_errors")
        emulator = shadow.headers.get("x-emulator") or primary.headers.get("x-emulator")
        is_emulator = None if not (shadow.headers or primary.headers) else bool(emulator)
        return _Written(
            [
                self._observation(job, "chat", capture.started_at, primary, "sdk"),
                self._observation(job, "responses", started, shadow, self.config.shadow_client),
            ],
            is_emulator=is_emulator,
            emulator_profile=shadow.headers.get(PROFILE_HEADER)
            or primary.headers.get(PROFILE_HEADER),
            pair=True,
        )

    def _canary(self, job: _Job) -> _Written:
        capture = job.capture
        if capture.fallback == "untranslatable":
            result = CallResult(
                error_type="untranslatable",
                error_message=str(capture.error) if capture.error else None,
            )
        else:
            result = read_capture(capture)
        if capture.fallback is not None:
            result.ok = False
            result.error_type = result.error_type or capture.fallback
            result.error_message = f"served by chat instead: {result.error_message or ''}".strip()
        obs = self._observation(
            job, "responses", capture.started_at, result, "sdk", origin="canary"
        )
        return _Written(
            [obs],
            is_emulator=("x-emulator" in result.headers if result.headers else None),
            emulator_profile=result.headers.get(PROFILE_HEADER) if result.headers else None,
        )

    def _observation(
        self,
        job: _Job,
        api: Literal["chat", "responses"],
        started: float,
        result: CallResult,
        client: ClientKind,
        origin: Literal["shadow", "canary"] = "shadow",
    ) -> Observation:
        capture = job.capture
        wire, headers = result.wire, result.headers
        processing = headers.get("openai-processing-ms")
        try:
            processing_ms = float(processing) if processing else None
        except ValueError:
            processing_ms = None
        scenario = self.config.scenario if origin == "shadow" else f"{self.config.scenario}-canary"
        return Observation(
            run_id=self.run_dir.name,
            scenario=scenario,
            prompt_id=job.pair_id,
            arm=api,
            api=api,
            turn=1,
            repeat=0,
            conversation=job.pair_id,
            cold=False,
            model=str(capture.kwargs.get("model", "")),
            stream=capture.stream,
            order=job.order,
            started_at=started,
            **result.observation_fields(stream=capture.stream),
            new_connection=wire.new_connection if wire.ttfb_ms is not None else None,
            processing_ms=processing_ms,
            client=client,
            request_bytes=result.request_bytes,
            origin=origin,
            contaminated_cache=origin == "shadow",
            output_format=_asked_format(capture.kwargs),
        )

    # --- the writer thread -----------------------------------------------------------------

    def _writer_main(self) -> None:
        shard = self._shard
        assert shard is not None
        while True:
            if time.monotonic() - self._stats_saved >= STATS_INTERVAL_S:
                self._guard(self._save_stats)
            try:
                item = self._writes.get(timeout=self.config.fsync_interval_s)
            except queue.Empty:
                self._guard(shard.sync)
                continue
            if item is _STOP:
                if not self._meta_done and shard.shards:
                    self._guard(lambda: self._write_meta(None))
                break
            if item.observations and not self._guard(lambda item=item: self._write(shard, item)):
                self.count("pairs_failed" if item.pair else "canary_dropped")
            if item.done is not None:
                self._guard(shard.sync)
                self._guard(self._save_stats)
                item.done.set()
        self._guard(shard.close)

    def _guard(self, action: Any) -> bool:
        try:
            action()
        except Exception:  # disk full, permissions…: counted, never raised to the app
            self.count("write_errors")
            if self.stats.write_errors == 1:
                _log.exception(
                    "harness.shadow: cannot write to %s (counted as write_errors; logged once)",
                    self.run_dir,
                )
            return False
        return True

    def _write(self, shard: ShardWriter, item: _Written) -> None:
        observations = [fingerprint(o) for o in item.observations]
        if item.pair and len(observations) == 2:
            a, b = observations
            if a.ok and b.ok and (a.output_text or b.output_text):
                score = text_similarity(a.output_text or "", b.output_text or "")
                observations = [o.model_copy(update={"similarity": score}) for o in observations]
        observations = [self.config.redact(o) for o in observations]
        if not self._meta_done and item.is_emulator is not None:
            self._write_meta(item.is_emulator, item.emulator_profile)
        shard.write(observations)
        self.count("pairs_written" if item.pair else "canary_written")

    def _write_meta(self, is_emulator: bool | None, emulator_profile: str | None = None) -> None:
        config = self.config
        meta = RunMeta(
            run_id=self.run_dir.name,
            created_at=time.time(),
            seed=config.seed,
            target=target_name(self.base_url),
            target_url=self.base_url,
            is_emulator=bool(is_emulator),
            emulator_profile=emulator_profile if is_emulator else None,
            client=config.shadow_client,
            concurrency=config.max_concurrency,
            versions=_versions(),
            machine={
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "python_implementation": platform.python_implementation(),
            },
            shadow=config.describe(),
        )
        ensure_meta(self.run_dir, meta)
        self._meta_done = True

    def _save_stats(self) -> None:
        if self._stats_path is not None:
            stats = self.snapshot()
            if self._calls is not None:
                stats.calls = self._calls()
            write_stats(self._stats_path, stats.as_dict())
            self._stats_saved = time.monotonic()


def _asked_format(kwargs: dict[str, Any]) -> OutputFormatName:
    """The output format a captured chat call asked for (its ``response_format`` type)."""
    fmt = kwargs.get("response_format")
    if isinstance(fmt, type):  # chat.completions.parse(response_format=SomeModel)
        return "json_schema"
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        return "json_schema"
    return "json_object" if kind == "json_object" else "text"
