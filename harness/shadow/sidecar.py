"""The shadow side in its own process (``mode="process"``, the default).

Why a process: the shadow side's work is ~4-6 ms of CPU per mirrored stream (the mirror's HTTP
client and SSE parsing, similarity, records). In the application's process it holds the GIL — a
live call whose socket read returns while a shadow thread holds it waits for it — and it is the
application's CPU. Here the :class:`~harness.shadow.engine.ShadowEngine` runs in a sidecar
process started with the ``spawn`` method (never ``fork``: the application has threads) at a
lower CPU priority (``os.nice(10)``, best effort; with ``sidecar_priority="idle"`` also Linux's
``SCHED_IDLE``), and the application's process keeps only:

- on the application's thread, per mirrored call: a bound check, counters under a short lock
  and a ``deque.append`` + notify (:meth:`Sidecar.submit`);
- a sender thread: :func:`~harness.shadow.capture.compact` (the SDK objects → plain data,
  ~60 µs for a 40-chunk stream, pausing every few items to let the application have the GIL),
  ``pickle`` and a write to the pipe, :data:`SEND_DELAY_S` after the call ended (the moments
  right after a call are often the application's busiest);
- a supervisor thread that sleeps on the sidecar's exit and rewrites this process's stats file
  every 10 s.

Pipes: jobs and control messages go to the sidecar on one (``("job", kind, capture)``,
``("flush", token, timeout_s)``, ``("close", token, deadline_ns)``); acknowledgements come back
on another. Counters live in shared memory (int64 slots the sidecar writes through on every
change), so ``stats()`` never waits for the sidecar and a crashed sidecar's counts survive it.

Bounds: at most ``max_queue`` calls accepted and not yet taken by the sidecar (more are
dropped and counted, never waited for), plus ``max_concurrency`` in flight in the sidecar.

A crash (the sidecar exits without being asked) is counted (``sidecar_crashes``), logged once,
and what it held is counted as ``lost_in_crash``; the sidecar is restarted up to
:data:`MAX_RESTARTS` times (not when it never got going), after which mirrored calls are
counted as ``dropped_sidecar_down``. The application's calls are never affected.

Like any ``spawn``-ed process, the sidecar imports the application's main module (as
``__mp_main__``): a script must guard its entry point with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any, Literal

from harness.shadow.capture import Capture, compact
from harness.shadow.engine import (
    STAT_FIELDS,
    STATS_INTERVAL_S,
    ShadowConfig,
    ShadowEngine,
    ShadowStats,
    ShadowTarget,
)
from harness.shadow.store import next_stats_path, write_stats

#: the sidecar's process name (``multiprocessing.current_process().name`` inside it)
SIDECAR_NAME = "harness-shadow-sidecar"
#: how often a crashed sidecar is started again, per wrapped client
MAX_RESTARTS = 3
#: the sidecar's niceness increment: shadow work is background work
NICE = 10
#: how long the sender thread lets a captured call wait before converting and sending it (s)
SEND_DELAY_S = 0.005
_log = logging.getLogger("harness.shadow")
_CTX = multiprocessing.get_context("spawn")
_INDEX = {name: i for i, name in enumerate(STAT_FIELDS)}
# shared slots after the counters
_RECEIVED = len(STAT_FIELDS)  # jobs the sidecar took from the pipe
_READY = _RECEIVED + 1  # 1 once the sidecar's engine is running
_DEADLINE = _READY + 1  # close(): monotonic ns after which queued jobs are cancelled
_SLOTS = _DEADLINE + 1
#: counted by the application's process only (the engine's own copies are not added)
_PARENT_OWNED = frozenset(
    {
        "calls",
        "sampled",
        "canary",
        "canary_served",
        "canary_fallbacks",
        "abandoned_streams",
        "enqueued",
    }
)
Kind = Literal["pair", "canary"]


def _yield_gil() -> None:
    time.sleep(0)


def in_sidecar() -> bool:
    """True inside a sidecar process (also while it imports the application's main module)."""
    return multiprocessing.current_process().name == SIDECAR_NAME


# --- the sidecar process -------------------------------------------------------------------------


def _room(engine: ShadowEngine, limit: int, shared: Any) -> bool:
    """Wait until the engine takes another job; False once close()'s deadline passed."""
    while not engine.wait_for_room(limit, 0.05):
        deadline = shared[_DEADLINE]
        if deadline and time.monotonic_ns() >= deadline:
            return False
    return True


def _lower_priority(priority: str, nice: int) -> None:
    """Best effort: shadow work is background work (threads started later inherit it)."""
    with contextlib.suppress(OSError, AttributeError):  # absent on some systems
        os.nice(nice)
    if priority == "idle":  # Linux: run only when a CPU would otherwise be idle
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def sidecar_main(
    config: ShadowConfig,
    target: ShadowTarget,
    jobs: Connection,
    acks: Connection,
    shared: Any,
    nice: int = NICE,
) -> None:
    """The sidecar's entry point: run the engine on what arrives until told to close."""
    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the sidecar stops
    # when the application closes it, or drains and exits when the application is gone.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    _lower_priority(config.sidecar_priority, nice)

    def publish(name: str, value: int) -> None:
        shared[_INDEX[name]] = value

    engine = ShadowEngine(config, target, publish=publish, stats_file=False, poll=False)
    engine.start()
    shared[_READY] = 1
    limit = config.max_concurrency
    while True:
        try:
            message = pickle.loads(jobs.recv_bytes())
        except (EOFError, OSError):  # the application's process ended without close()
            engine.close()
            return
        what = message[0]
        if what == "job":
            shared[_RECEIVED] += 1
            kind, capture = message[1], message[2]
            if _room(engine, limit, shared):
                engine.submit(kind, capture)
            else:
                engine.count("cancelled_at_close" if kind == "pair" else "canary_dropped")
        elif what == "flush":
            acks.send((message[1], engine.flush(message[2])))
        elif what == "close":
            engine.close(max(0.0, (message[2] - time.monotonic_ns()) / 1e9))
            acks.send((message[1], True))
            return


# --- the application's side ----------------------------------------------------------------------


class _Generation:
    """One sidecar process: its pipes, shared counters, sender thread and what it accepted."""

    def __init__(self, config: ShadowConfig, target: ShadowTarget, on_unsendable: Any) -> None:
        self.shared = _CTX.RawArray("q", _SLOTS)
        jobs_r, self.jobs = _CTX.Pipe(duplex=False)
        self.acks, acks_w = _CTX.Pipe(duplex=False)
        self.process = _CTX.Process(
            target=sidecar_main,
            name=SIDECAR_NAME,
            daemon=True,
            args=(config, target, jobs_r, acks_w, self.shared),
        )
        try:
            self.process.start()
        finally:  # the sidecar's ends: once it is gone, writes fail and reads see EOF
            jobs_r.close()
            acks_w.close()
        self.accepted = self.accepted_pairs = 0
        self.unsent = self.unsent_pairs = 0
        self.dead = False
        self._on_unsendable = on_unsendable
        self._buffer: deque[tuple[Any, ...] | None] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._sender = threading.Thread(
            target=self._send_loop, name="harness-shadow-sender", daemon=True
        )
        self._sender.start()

    def put(self, message: tuple[Any, ...] | None) -> None:
        with self._ready:
            self._buffer.append(message)
            self._ready.notify()

    def _send_loop(self) -> None:
        while True:
            with self._ready:
                while not self._buffer:
                    self._ready.wait()
                first = self._buffer[0]
            if first is not None and first[0] == "job":
                # The moments right after a live call are often the application's busiest
                # (the reply is handled, the next call built), and work done then competes
                # with it for the GIL. Waiting a little moves this work, and whatever arrives
                # meanwhile, into the application's next wait on the network.
                time.sleep(SEND_DELAY_S)
            while True:
                with self._ready:
                    if not self._buffer:
                        break
                    message = self._buffer.popleft()
                if message is None or not self._send(message):
                    return

    def _send(self, message: tuple[Any, ...]) -> bool:
        """Pickle and write one message to the sidecar; False once the sidecar is gone."""
        try:
            if message[0] == "job":
                # Pauses (time.sleep(0) releases the GIL) keep each stretch this thread holds
                # the GIL short: a live call whose socket read returns meanwhile would
                # otherwise wait for all of it (~0.1 ms for a 40-chunk stream).
                job = compact(message[2], pause=_yield_gil)
                _yield_gil()
                data = pickle.dumps(("job", message[1], job), protocol=5)
            else:
                data = pickle.dumps(message, protocol=5)
        except Exception as exc:  # a request that does not pickle: counted, never raised
            self._on_unsendable(self, message[1], exc)
            return True
        try:
            self.jobs.send_bytes(data)
        except OSError:  # the sidecar is gone; the supervisor accounts for what it held
            return False
        return True

    def counters(self) -> dict[str, int]:
        shared = self.shared
        return {name: int(shared[i]) for i, name in enumerate(STAT_FIELDS)}

    @property
    def outstanding(self) -> int:
        """Accepted and not yet taken by the sidecar."""
        return self.accepted - self.unsent - int(self.shared[_RECEIVED])

    def stop(self) -> None:
        self.put(None)
        for conn in (self.jobs, self.acks):
            with contextlib.suppress(OSError):
                conn.close()


class Sidecar:
    """The application's handle on its shadow sidecar; the same interface as the engine's."""

    def __init__(self, config: ShadowConfig, target: ShadowTarget, *, calls: Any = None) -> None:
        run_dir = config.resolved_run_dir().absolute()  # one run dir, even across midnight
        self.config = config = dataclasses.replace(config, run_dir=run_dir)
        self.target = target
        self.run_dir = run_dir
        try:
            pickle.dumps((config, target))
        except Exception as exc:
            raise ValueError(
                "harness.shadow: mode='process' sends the settings to a sidecar process, and "
                f"they do not pickle ({type(exc).__name__}: {exc}). Define the redact hook at "
                "module level in an importable module, or pass mode='thread'."
            ) from None
        self._calls = calls
        self._lock = threading.Lock()
        self._control = threading.Lock()
        self._stats = ShadowStats()
        self._closed = False
        self._stopping = threading.Event()
        self._tokens = itertools.count(1)
        self._restarts = 0
        self._unsendable_logged = False
        run_dir.mkdir(parents=True, exist_ok=True)
        self._stats_path = next_stats_path(run_dir)
        self._generations = [_Generation(config, target, self._unsendable)]
        self._gen: _Generation | None = self._generations[0]
        self._supervisor = threading.Thread(
            target=self._supervise, daemon=True, name="harness-shadow-supervisor"
        )
        self._supervisor.start()

    @property
    def pid(self) -> int | None:
        """The running sidecar's process id (None when it is down)."""
        gen = self._gen
        return gen.process.pid if gen is not None else None

    # --- the application's thread ----------------------------------------------------------

    def _bump(self, name: str, n: int = 1) -> None:
        # with self._lock held
        setattr(self._stats, name, getattr(self._stats, name) + n)

    def count(self, name: str) -> None:
        with self._lock:
            self._bump(name)

    def submit(self, kind: Kind, capture: Capture) -> bool:
        """Hand one captured call to the sidecar; False (and counted) when it cannot take it."""
        pair = kind == "pair"
        with self._lock:
            gen = self._gen
            if self._closed or gen is None:
                self._bump(
                    ("dropped_closed" if self._closed else "dropped_sidecar_down")
                    if pair
                    else "canary_dropped"
                )
                return False
            if gen.outstanding >= self.config.max_queue:
                self._bump("dropped_queue_full" if pair else "canary_dropped")
                return False
            gen.accepted += 1
            if pair:
                gen.accepted_pairs += 1
                self._bump("enqueued")
        gen.put(("job", kind, capture))
        return True

    def _unsendable(self, gen: _Generation, kind: Kind, exc: Exception) -> None:
        with self._lock:
            gen.unsent += 1
            self._bump("internal_errors")
            if kind == "pair":
                gen.unsent_pairs += 1
                self._bump("pairs_failed")
            else:
                self._bump("canary_dropped")
            first = not self._unsendable_logged
            self._unsendable_logged = True
        if first:
            _log.error(
                "harness.shadow: a captured call cannot be sent to the sidecar "
                "(%s: %s); counted as pairs_failed, logged once",
                type(exc).__name__,
                exc,
            )

    # --- counters --------------------------------------------------------------------------

    def snapshot(self) -> ShadowStats:
        """This process's counters plus its sidecars' (the live one and any crashed ones)."""
        with self._lock:
            total = self._stats.as_dict()
            generations = list(self._generations)
        for gen in generations:
            for name, value in gen.counters().items():
                if name not in _PARENT_OWNED:
                    total[name] += value
        stats = ShadowStats(**total)
        if self._calls is not None:
            stats.calls = self._calls()
        return stats

    def _save_stats(self) -> None:
        try:
            write_stats(self._stats_path, self.snapshot().as_dict())
        except OSError:
            _log.warning("harness.shadow: cannot write %s", self._stats_path, exc_info=True)

    # --- supervision -----------------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            gen = self._gen
            if gen is None:  # down for good: only the counters are left to keep
                if not self._stopping.wait(STATS_INTERVAL_S):
                    self._save_stats()
                continue
            exited = wait([gen.process.sentinel], STATS_INTERVAL_S)
            if self._stopping.is_set():
                return
            if exited:
                self._crashed(gen)
            else:
                self._save_stats()

    def _settle_lost(self, gen: _Generation) -> int:
        # with self._lock held, the sidecar gone: what it accepted and did not finish is lost
        child = gen.counters()
        lost = (
            gen.accepted_pairs
            - gen.unsent_pairs
            - child["pairs_written"]
            - child["pairs_failed"]
            - child["cancelled_at_close"]
        )
        canary = (
            (gen.accepted - gen.accepted_pairs)
            - (gen.unsent - gen.unsent_pairs)
            - child["canary_written"]
            - child["canary_dropped"]
        )
        self._bump("lost_in_crash", max(0, lost))
        self._bump("canary_dropped", max(0, canary))
        return max(0, lost)

    def _crashed(self, gen: _Generation) -> None:
        gen.process.join(1)
        started = bool(gen.shared[_READY])
        restart = started and self._restarts < MAX_RESTARTS and not self._closed
        fresh = None
        if restart:
            # Started before the swap, so calls keep going to the dead one meanwhile: they
            # were accepted, and are counted as lost with it, not as dropped.
            self._restarts += 1
            try:
                fresh = _Generation(self.config, self.target, self._unsendable)
            except Exception:
                _log.exception("harness.shadow: cannot restart the shadow sidecar")
        with self._lock:
            gen.dead = True
            self._bump("sidecar_crashes")
            lost = self._settle_lost(gen)
            if fresh is not None:
                self._generations.append(fresh)
            if fresh is not None and not self._closed:
                self._gen = fresh
            else:
                self._gen = None
        gen.stop()
        if fresh is not None and self._gen is not fresh:  # close() came meanwhile
            fresh.process.kill()
            fresh.stop()
        if not started:
            why = "it did not start (its error is above); mirroring is off for this process"
        elif fresh is not None:
            why = f"restarted ({self._restarts} of {MAX_RESTARTS})"
        else:
            why = "mirroring is off for this process"
        _log.error(
            "harness.shadow: the shadow sidecar (pid %s) exited with code %s; %d "
            "mirrored call(s) lost; %s. The application's calls are not affected.",
            gen.process.pid,
            gen.process.exitcode,
            lost,
            why,
        )
        self._save_stats()

    # --- control ---------------------------------------------------------------------------

    def _await_ack(self, gen: _Generation, token: int, deadline: float) -> bool | None:
        """The sidecar's answer to ``token`` (None: no answer by ``deadline``, or it died)."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready = wait([gen.acks, gen.process.sentinel], left)
            if gen.acks in ready:
                try:
                    got, ok = gen.acks.recv()
                except (EOFError, OSError):
                    return None
                if got == token:
                    return bool(ok)
            elif ready:
                return None

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every accepted call is written (True) or ``timeout_s`` passed (False)."""
        deadline = time.monotonic() + timeout_s
        with self._control:
            gen = self._gen
            ok: bool | None = True
            if gen is not None and not gen.dead:
                token = next(self._tokens)
                gen.put(("flush", token, max(0.0, timeout_s - 0.05)))
                ok = self._await_ack(gen, token, deadline)
        self._save_stats()
        return bool(ok)

    def close(self, timeout_s: float | None = None) -> None:
        """Drain (up to ``timeout_s``, default ``drain_timeout_s``), stop the sidecar, write
        the counters."""
        timeout = self.config.drain_timeout_s if timeout_s is None else timeout_s
        with self._control:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
                gen = self._gen
            if gen is not None and not gen.dead:
                deadline_ns = time.monotonic_ns() + int(timeout * 1e9)
                gen.shared[_DEADLINE] = deadline_ns
                token = next(self._tokens)
                self._stopping.set()
                gen.put(("close", token, deadline_ns))
                # the engine's own close takes up to ~40 s past its drain in the worst case
                answered = self._await_ack(gen, token, time.monotonic() + timeout + 45)
                gen.process.join(5)
                if gen.process.is_alive():
                    gen.process.kill()
                    gen.process.join(5)
                with self._lock:
                    gen.dead = True
                    self._gen = None
                    if answered is None:
                        lost = self._settle_lost(gen)
                        _log.error(
                            "harness.shadow: the shadow sidecar did not finish closing; "
                            "%d mirrored call(s) lost",
                            lost,
                        )
                gen.stop()
            self._stopping.set()
        self._save_stats()

    def abandon_after_fork(self) -> None:
        """In a forked child: drop the parent's pipes and sidecars (they are not ours)."""
        # multiprocessing would otherwise signal and try to join them when this child exits
        children: set[Any] = getattr(multiprocessing.process, "_children", set())
        for gen in self._generations:
            children.discard(gen.process)
            for conn in (gen.jobs, gen.acks):
                with contextlib.suppress(OSError):
                    conn.close()
