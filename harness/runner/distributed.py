"""Distributed runs on Ray: the plan sharded by conversation over Ray async actors.

The driver (``harness run --engine ray``) plans, probes and writes the run directory as a
single-process run does; only the sending moves. The conversations are dealt to ``--workers``
Ray actors in whole blocks (one prompt × repeat: its arms in their planned, interleaved order),
so a conversation's turns and its ``previous_response_id`` chain stay on one worker and cold
flags stay true. Each actor runs the ordinary runner (:func:`harness.runner.execute._execute`:
same clocks, same client) on its own event loop, with its share of ``--rps`` and
``--concurrency``. The driver polls the actors for their records every :data:`POLL_S` and writes
a conversation's records to the run's one ``observations.jsonl`` once all its turns are in, each
record naming its worker and host. Analysis then reads one file of raw samples, so percentiles
are never averaged across workers.

A worker that dies (its process killed, its node lost) is seen on the next poll. Its unfinished
conversations are sent again from turn 1 by a live worker (a new one if none is left), with a
fresh cache nonce when the nonce was the conversation's own, so the redone turn 1 is truly cold;
the new nonce is written to ``meta.json`` at once. Records of the dead attempt go to
:data:`ABANDONED_FILE`, which nothing analyses. A conversation is written only when complete, so
nothing is lost or written twice; ``--resume`` works as for any run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import re
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from types import ModuleType, TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness import __version__
from harness.errors import HarnessError, TargetError
from harness.records import NOT_SENT, Observation, RunMeta
from harness.rundir import write_meta
from harness.runner.execute import (
    EngineJob,
    FatalError,
    Pacer,
    RunOptions,
    _execute,
    _Shared,
    stored_by,
)
from harness.runner.plan import PlannedConversation, cache_nonce, nonce_prefix
from harness.runner.target import Target
from harness.transport.client import warm_sdk

__all__ = [
    "ABANDONED_FILE",
    "INSTALL_HINT",
    "DistributedInfo",
    "RayEngine",
    "RayWorker",
    "Redo",
    "WorkerInfo",
    "connect",
    "shard",
    "share",
    "with_nonce",
]

INSTALL_HINT = "--engine ray needs Ray, which is not installed — pip install 'shadow-harness[ray]'"
#: Records of attempts a dead worker left unfinished: kept for inspection, never analysed.
ABANDONED_FILE = "observations.abandoned.jsonl"
#: How often the driver asks each worker for its records.
POLL_S = 0.1
#: How long workers may take to start (a busy cluster, a cold node) before the run gives up.
READY_TIMEOUT_S = 120.0
#: A worker that has not answered a poll for this long is taken for dead (stopped, hung,
#: partitioned away: Ray reports only processes that exit) and killed; its work is redone.
SILENT_S = 60.0
#: From the last worker ready to the first paced send: time for the work to reach every worker.
START_DELAY_S = 0.5
#: Object store of a Ray started here (the runner sends small records, not tensors).
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20


# --- the plan, split --------------------------------------------------------------------------


def shard(
    conversations: list[PlannedConversation], workers: int
) -> list[list[PlannedConversation]]:
    """Split conversations into ``workers`` shards of whole blocks (one prompt × repeat: its
    arms, in planned order), each block to the shard with the fewest requests so far; every
    shard keeps the plan's order."""
    blocks: list[list[PlannedConversation]] = []
    last: tuple[str, str, int, bool] | None = None
    for conv in conversations:
        key = (conv.scenario, conv.prompt_id, conv.repeat, conv.warmup)
        if key != last:
            blocks.append([])
            last = key
        blocks[-1].append(conv)
    shards: list[list[PlannedConversation]] = [[] for _ in range(workers)]
    load = [0] * workers
    for block in blocks:
        i = load.index(min(load))
        shards[i].extend(block)
        load[i] += sum(len(c.steps) for c in block)
    return shards


def share(total: int, workers: int, index: int) -> int:
    """Worker ``index``'s part of ``total`` (e.g. concurrency): the parts add up to ``total``,
    and none is below 1, since a worker with nothing in flight would send nothing."""
    return max(1, total // workers + (index < total % workers))


def with_nonce(conv: PlannedConversation, nonce: str | None) -> PlannedConversation:
    """``conv`` with its cache nonce replaced by ``nonce`` wherever the plan wrote it."""
    if conv.nonce is None or nonce is None or conv.nonce == nonce:
        return conv
    text = conv.model_dump_json().replace(nonce_prefix(conv.nonce), nonce_prefix(nonce))
    return PlannedConversation.model_validate_json(text).model_copy(update={"nonce": nonce})


# --- what meta.json records -------------------------------------------------------------------


class WorkerInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    host: str
    node_id: str
    pid: int
    rps: float | None
    concurrency: int
    conversations: int = Field(description="conversations given to it, redone ones included")
    observations: int = Field(default=0, description="records of it in observations.jsonl")
    died: bool = False
    death: str | None = Field(default=None, description="why the driver gave it up")
    loop: dict[str, Any] | None = None


class Redo(BaseModel):
    """A conversation a dead worker left unfinished, sent again from turn 1."""

    model_config = ConfigDict(extra="forbid")

    conversation: str
    dead_worker: str
    worker: str
    nonce_before: str | None
    nonce: str | None = Field(description="the fresh nonce (unchanged when shared by an arm)")
    abandoned_observations: int


class DistributedInfo(BaseModel):
    """``meta.json`` → ``distributed``."""

    model_config = ConfigDict(extra="forbid")

    engine: str = "ray"
    ray_version: str
    address: str | None = Field(description="--ray-address; null: Ray started on the driver")
    workers: list[WorkerInfo] = Field(default_factory=list)
    redone: list[Redo] = Field(default_factory=list)
    abandoned_file: str | None = None
    driver_cpu_ms: float = 0.0
    driver_cpu_ms_per_observation: float | None = None
    wall_s: float = 0.0


# --- Ray --------------------------------------------------------------------------------------


def _ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise HarnessError(INSTALL_HINT) from None
    return ray


_ADDRESS = re.compile(r"(?:ray://)?\[?(?P<host>[^\[\]/]+?)\]?:(?P<port>\d+)/?")


def _check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """A TCP connection to ``address`` (Ray would retry an unreachable one for minutes)."""
    found = _ADDRESS.fullmatch(address)
    if found is None:
        raise HarnessError(
            f"--ray-address {address!r}: not auto, HOST:PORT or ray://HOST:PORT "
            "— e.g. --ray-address ray://head-node:10001"
        )
    host, port = found["host"], int(found["port"])
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise TargetError(
            f"--ray-address {address}: cannot reach {host}:{port} "
            f"({exc.strerror or type(exc).__name__}) — start the head there "
            "(ray start --head) or fix the address"
        ) from None


def _version_mismatch(address: str | None, message: str) -> HarnessError:
    rays = re.findall(r"Ray: (\S+)", message)
    pythons = re.findall(r"Python: (\S+)", message)
    where = f"--ray-address {address}" if address else "Ray"
    if len(rays) == 2 and len(pythons) == 2:
        return HarnessError(
            f"{where}: version mismatch — the cluster runs Ray {rays[0]} on Python "
            f"{pythons[0]}, this process Ray {rays[1]} on Python {pythons[1]}; install the "
            f"cluster's versions here (pip install 'ray=={rays[0]}') or restart the cluster"
        )
    first = message.strip().splitlines()[0] if message.strip() else "version mismatch"
    return HarnessError(f"{where}: {first} — use the cluster's Ray and Python versions here")


#: tries of a Ray Client connection whose server failed to start (a transient proxy failure)
CLIENT_ATTEMPTS = 3


def connect(address: str | None, workers: int) -> bool:
    """Join the Ray cluster at ``address`` (None: start Ray on this machine, with a CPU per
    worker); True if this call connected, so the caller disconnects. An existing connection
    of this process is reused."""
    ray = _ray()
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs: dict[str, Any] = dict(
            address="local",
            num_cpus=max(1, workers),
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        )
    else:
        if address not in (None, "auto"):
            _check_reachable(address)
        kwargs = {"address": address}
    for attempt in range(CLIENT_ATTEMPTS):
        try:
            ray.init(**kwargs, **quiet)
        except RuntimeError as exc:
            ray.shutdown()  # a half-made connection would fail the next ray.init
            if "Version mismatch" in str(exc):
                raise _version_mismatch(address, str(exc)) from None
            raise _cannot_connect(address, exc) from None
        except (ConnectionError, TimeoutError, ValueError) as exc:
            ray.shutdown()
            # Ray Client's proxy forks a server per client; that fork fails now and then
            # ("Initialization failure from server", seen in 2 of 4 CI runs): worth a retry
            if attempt + 1 < CLIENT_ATTEMPTS and "Initialization failure" in str(exc):
                time.sleep(2.0)
                continue
            raise _cannot_connect(address, exc) from None
        return True
    raise AssertionError("unreachable: the last attempt returns or raises")


def _cannot_connect(address: str | None, exc: Exception) -> TargetError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    where = f"--ray-address {address}" if address else "Ray"
    return TargetError(
        f"{where}: cannot connect ({first}) — start a cluster (ray start --head) or "
        "drop --ray-address to start Ray here"
    )


# --- a worker ---------------------------------------------------------------------------------


class _AlignedPacer(Pacer):
    """A pacer whose first send is at ``first`` (monotonic): workers paced from one start, each
    offset by its place, send at the total rate, evenly spaced, from the first request on."""

    def __init__(self, rps: float, first: float) -> None:
        super().__init__(rps)
        self._next = first


class _Buffer:
    """A worker's records, held until the driver's next poll (an :class:`ObservationSink`)."""

    def __init__(self, worker: str, host: str) -> None:
        self.worker = worker
        self.host = host
        self.lines: list[str] = []

    def write(self, obs: Observation) -> None:
        obs.worker, obs.host = self.worker, self.host
        self.lines.append(obs.model_dump_json())

    def sync(self) -> None:
        return None

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


@dataclass
class Drained:
    """What a worker hands the driver at a poll."""

    lines: list[str]
    running: bool
    submits: int
    fatal: FatalError | None
    stopped_arms: dict[tuple[str, str], FatalError]
    error: str | None = None
    #: set once the worker is idle: what the runner wrote into its copy of meta.json
    meta: dict[str, Any] | None = None


class RayWorker:
    """A Ray async actor running the ordinary runner on the shards it is given."""

    def __init__(
        self,
        worker_id: str,
        target: Target,
        options: RunOptions,
        meta: RunMeta,
        new_connection: frozenset[str],
        offset_s: float = 0.0,
    ) -> None:
        self._id = worker_id
        self._offset_s = offset_s
        self._host = socket.gethostname()
        self._target = target
        self._options = options
        self._meta = meta
        self._new_connection = new_connection
        self._buffer = _Buffer(worker_id, self._host)
        self._shared = _Shared(
            run_id=meta.run_id,
            writer=self._buffer,
            pacer=Pacer(options.rps),
            policy=options.retry,
            client=options.client,
            rng=random.Random(f"{meta.seed}/{worker_id}"),
            progress=None,
            concurrency=options.concurrency,
        )
        self._queue: list[tuple[list[PlannedConversation], list[tuple[str, str]]]] = []
        self._submits = 0
        self._task: asyncio.Task[None] | None = None
        self._error: str | None = None
        self._deleted = 0
        self._chat_deleted: int | None = None  # None: no batch stored a chat completion

    async def hello(self) -> dict[str, Any]:
        """Who and where this worker is, once it is ready to send (the SDK warmed up: that
        takes ~1 s of CPU, more on a loaded machine, and would delay one worker's start)."""
        import ray

        if self._options.client == "sdk":
            self._meta.sdk_warmup_ms = warm_sdk() or self._meta.sdk_warmup_ms

        return {
            "pid": os.getpid(),
            "host": self._host,
            "node_id": ray.get_runtime_context().get_node_id(),
            "harness": __version__,
        }

    async def submit(
        self,
        conversations: list[PlannedConversation],
        orphans: list[tuple[str, str]],
        start_wall: float | None = None,
    ) -> None:
        """Queue conversations (and stored responses a dead worker left) to send in order; a
        paced worker's first send is at unix time ``start_wall`` plus its offset."""
        rps = self._options.rps
        if start_wall is not None and rps:
            delay = max(0.0, start_wall - time.time())
            self._shared.pacer = _AlignedPacer(rps, time.monotonic() + delay + self._offset_s)
        self._queue.append((conversations, orphans))
        self._submits += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        try:
            while self._queue:
                conversations, orphans = self._queue.pop(0)
                self._shared.objects.stored_ids.extend(orphans)
                self._meta.stored_responses_deleted = 0
                self._meta.stored_chat_completions_deleted = None
                await _execute(
                    conversations,
                    self._target,
                    self._options,
                    self._shared,
                    self._meta,
                    self._new_connection,
                )
                self._deleted += self._meta.stored_responses_deleted or 0
                if self._meta.stored_chat_completions_deleted is not None:
                    self._chat_deleted = (
                        self._chat_deleted or 0
                    ) + self._meta.stored_chat_completions_deleted
        except HarnessError as exc:
            self._error = str(exc)
        except Exception as exc:  # reported to the driver, which stops the run with it
            self._error = f"{type(exc).__name__}: {exc}"

    async def halt(
        self, fatal: FatalError | None, stopped_arms: dict[tuple[str, str], FatalError]
    ) -> None:
        """Stop as the driver says: the run (a fatal error elsewhere) or some arms."""
        if fatal is not None and self._shared.fatal is None:
            self._shared.fatal = fatal
        for key, why in stopped_arms.items():
            self._shared.stopped_arms.setdefault(key, why)

    async def sent(self) -> int:
        """Planned requests with an outcome so far (tests kill a worker mid-run with it)."""
        return self._shared.recorded

    async def drain(self) -> Drained:
        self._shared.flush()
        running = bool(self._queue) or (self._task is not None and not self._task.done())
        meta = None
        if not running:
            meta = {
                "loop": self._meta.loop,
                "sdk_warmup_ms": self._meta.sdk_warmup_ms,
                "is_emulator": self._meta.is_emulator,
                "stored_responses_deleted": self._deleted,
                "stored_chat_completions_deleted": self._chat_deleted,
            }
        return Drained(
            self._buffer.take(),
            running,
            self._submits,
            self._shared.fatal,
            dict(self._shared.stopped_arms),
            self._error,
            meta,
        )


# --- the driver -------------------------------------------------------------------------------


@dataclass
class _Slot:
    """The driver's view of one worker."""

    info: WorkerInfo
    handle: Any
    assigned: dict[str, PlannedConversation] = field(default_factory=dict)
    submits: int = 0
    alive: bool = True
    idle: bool = False
    pending: Any = None
    asked_at: float = 0.0
    silenced: bool = False
    final: dict[str, Any] | None = None


class RayEngine:
    """``harness run --engine ray``: an :class:`harness.runner.execute.Engine` on Ray. Use as a
    context manager: a Ray it connected to (or started) is shut down at the end."""

    def __init__(
        self, address: str | None = None, workers: int = 2, silent_s: float = SILENT_S
    ) -> None:
        if workers < 1:
            raise HarnessError(f"--workers {workers}: give at least 1")
        self.address = address
        self.workers = workers
        self.silent_s = silent_s
        self._owned = False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            _ray().shutdown()
            self._owned = False

    def prepare(self, options: RunOptions) -> None:
        if options.record is not None or options.replay is not None:
            raise HarnessError(
                "--engine ray cannot record or replay cassettes — drop --engine ray "
                "(a replay is offline and quick on one process)"
            )
        self._owned = connect(self.address, self.workers) or self._owned

    def execute(self, job: EngineJob) -> None:
        _Driver(self, job).run()


@dataclass(eq=False)
class _Driver:
    """One distributed run: the engine, its job, and the workers' state."""

    engine: RayEngine
    job: EngineJob

    def __post_init__(self) -> None:
        meta = self.job.meta
        engine = self.engine
        self.ray = _ray()
        # a resumed run sends each conversation with the nonce meta.json holds for it
        self.job.todo = [
            with_nonce(c, meta.cache_nonces.get(c.conversation)) for c in self.job.todo
        ]
        self.steps = {c.conversation: len(c.steps) for c in self.job.todo}
        self.buffers: dict[str, list[Observation]] = {}
        self.slots: list[_Slot] = []
        prior = DistributedInfo.model_validate(meta.distributed) if meta.distributed else None
        self.info = DistributedInfo(
            ray_version=self.ray.__version__,
            address=engine.address,
            redone=list(prior.redone) if prior else [],
        )
        self.written: Counter[str] = Counter()

    # -- workers

    def _spawn(self, index: int) -> _Slot:
        n = self.engine.workers
        rps = self.job.options.rps / n if self.job.options.rps else None
        concurrency = share(self.job.options.concurrency, n, index % n)
        options = dataclasses.replace(
            self.job.options, rps=rps, concurrency=concurrency, progress=False
        )
        worker_id = f"ray-{index}"
        meta = self.job.meta.model_copy(deep=True)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # Round-robin over the live nodes: Ray's SPREAD, and a soft affinity, put both workers
        # of a loaded 2-node test cluster on one node. A replacement's node may be the one
        # that just died: it may go elsewhere.
        nodes = sorted(node["NodeID"] for node in self.ray.nodes() if node.get("Alive"))
        strategy = NodeAffinitySchedulingStrategy(
            node_id=nodes[index % len(nodes)], soft=index >= n
        )
        actor = self.ray.remote(RayWorker).options(
            num_cpus=0,  # the runner waits on the network: let workers share a node's CPUs
            scheduling_strategy=strategy,
            name=f"harness-{self.job.meta.run_id}-{worker_id}",
            max_restarts=0,
        )
        # paced workers take turns: worker i sends i/rps after worker 0, so the total is even
        offset = index / self.job.options.rps if self.job.options.rps and index < n else 0.0
        handle = actor.remote(
            worker_id, self.job.target, options, meta, self.job.new_connection, offset
        )
        info = WorkerInfo(
            id=worker_id,
            host="",
            node_id="",
            pid=0,
            rps=rps,
            concurrency=concurrency,
            conversations=0,
        )
        return _Slot(info, handle)

    def _greet(self, slots: list[_Slot]) -> None:
        refs = [s.handle.hello.remote() for s in slots]
        try:
            hellos = self.ray.get(refs, timeout=READY_TIMEOUT_S)
        except self.ray.exceptions.GetTimeoutError:
            raise HarnessError(
                f"Ray could not start {len(slots)} worker(s) in {READY_TIMEOUT_S:.0f} s — "
                "check the cluster has live nodes (ray status)"
            ) from None
        except self.ray.exceptions.RayError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            raise HarnessError(
                f"a Ray worker failed to start ({first}) — install shadow-harness "
                f"{__version__} on every Ray node"
            ) from None
        here = socket.gethostname()
        for slot, hello in zip(slots, hellos, strict=True):
            if self.job.target.name == "emulator" and hello["host"] != here:
                raise HarnessError(
                    f"Ray worker {slot.info.id} runs on {hello['host']}, but the built-in "
                    "emulator listens on this machine's loopback — serve one every node can "
                    "reach (harness emulator --host 0.0.0.0) and pass --target "
                    "http://HOST:8787/v1"
                )
            if hello["harness"] != __version__:
                raise HarnessError(
                    f"Ray worker {slot.info.id} on {hello['host']} runs shadow-harness "
                    f"{hello['harness']}, this driver {__version__} — install the same "
                    "version on every Ray node"
                )
            slot.info.host, slot.info.node_id, slot.info.pid = (
                hello["host"],
                hello["node_id"],
                hello["pid"],
            )

    def _submit(
        self,
        slot: _Slot,
        conversations: list[PlannedConversation],
        orphans: list[tuple[str, str]],
        start_wall: float | None = None,
    ) -> None:
        for conv in conversations:
            slot.assigned[conv.conversation] = conv
        slot.info.conversations += len(conversations)
        slot.submits += 1
        slot.idle = False
        slot.handle.submit.remote(conversations, orphans, start_wall)

    # -- the loop

    def run(self) -> None:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            self.slots = [self._spawn(i) for i in range(self.engine.workers)]
            self._greet(self.slots)
            start = time.time() + START_DELAY_S
            for slot, part in zip(self.slots, shard(self.job.todo, len(self.slots)), strict=True):
                self._submit(slot, part, [], start)
            self._poll_until_idle()
        finally:
            for slot in self.slots:
                if slot.alive:
                    self.ray.kill(slot.handle, no_restart=True)
            # partial conversations of a halted or interrupted run: recorded as the local
            # runner records them, and --resume redoes them from turn 1
            for conv in list(self.buffers):
                self._write(self.buffers.pop(conv))
            self._finish(time.process_time() - cpu0, time.perf_counter() - wall0)

    def _poll_until_idle(self) -> None:
        ray = self.ray
        while True:
            started = time.perf_counter()
            live = [s for s in self.slots if s.alive]
            for slot in live:
                if slot.pending is None:
                    slot.pending = slot.handle.drain.remote()
                    slot.asked_at = started
                elif not slot.silenced and started - slot.asked_at > self.engine.silent_s:
                    # its pending poll then fails as a dead actor's, and its work is redone
                    slot.silenced = True
                    ray.kill(slot.handle, no_restart=True)
            refs = [s.pending for s in live]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=POLL_S)
            done = set(ready)
            arrived: list[tuple[_Slot, Observation]] = []
            for slot in live:
                if slot.pending not in done:
                    continue
                ref, slot.pending = slot.pending, None
                try:
                    drained: Drained = ray.get(ref)
                except ray.exceptions.ActorUnavailableError:
                    continue  # a transient network error: ask again
                except ray.exceptions.RayActorError:
                    self._died(slot)
                    continue
                except ray.exceptions.RayError as exc:
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
                    raise HarnessError(
                        f"Ray worker {slot.info.id} on {slot.info.host} failed ({first}) — "
                        f"finish the run with: harness run --resume {self.job.run_dir}"
                    ) from None
                arrived.extend((slot, Observation.model_validate_json(x)) for x in drained.lines)
                self._heed(slot, drained)
            self._arrive(arrived)
            if all(s.idle for s in self.slots if s.alive):
                return
            time.sleep(max(0.0, POLL_S - (time.perf_counter() - started)))

    def _heed(self, slot: _Slot, drained: Drained) -> None:
        if drained.error is not None:
            raise HarnessError(f"Ray worker {slot.info.id} on {slot.info.host}: {drained.error}")
        shared = self.job.shared
        news = drained.fatal is not None and shared.fatal is None
        news = news or any(k not in shared.stopped_arms for k in drained.stopped_arms)
        if drained.fatal is not None and shared.fatal is None:
            shared.fatal = drained.fatal
        for key, why in drained.stopped_arms.items():
            shared.stopped_arms.setdefault(key, why)
        if news:
            for other in self.slots:
                if other.alive and other is not slot:
                    other.handle.halt.remote(shared.fatal, dict(shared.stopped_arms))
        slot.idle = not drained.running and drained.submits == slot.submits
        if slot.idle:
            slot.final = drained.meta

    def _arrive(self, arrived: list[tuple[_Slot, Observation]]) -> None:
        """Number the records in send order, and write each conversation once complete."""
        arrived.sort(key=lambda item: item[1].started_at)
        for slot, obs in arrived:
            obs.order = self.job.shared.order
            self.job.shared.order += 1
            if obs.conversation not in slot.assigned:
                continue  # a worker the driver gave up for dead sent it after all
            items = self.buffers.setdefault(obs.conversation, [])
            items.append(obs)
            if len(items) == self.steps.get(obs.conversation, -1):
                del self.buffers[obs.conversation]
                del slot.assigned[obs.conversation]
                self._write(items)

    def _write(self, items: list[Observation]) -> None:
        shared = self.job.shared
        for obs in sorted(items, key=lambda o: o.turn):
            shared.writer.write(obs)
            shared.recorded += 1
            if not obs.ok and obs.error_type != NOT_SENT:
                shared.errors += 1
            self.written[obs.worker or ""] += 1
            if shared.progress is not None:
                shared.progress.advance(shared.errors)

    def _died(self, slot: _Slot) -> None:
        """Send a dead worker's unfinished conversations again, from turn 1, elsewhere."""
        slot.alive = False
        slot.info.died = True
        slot.info.death = (
            f"silent for {self.engine.silent_s:g} s: killed"
            if slot.silenced
            else "its process ended"
        )
        unfinished = list(slot.assigned.values())
        slot.assigned.clear()
        abandoned = {c.conversation: self.buffers.pop(c.conversation, []) for c in unfinished}
        lost = [o for items in abandoned.values() for o in items]
        if lost:
            path = self.job.run_dir / ABANDONED_FILE
            with path.open("a", encoding="utf-8") as fh:
                fh.writelines(o.model_dump_json() + "\n" for o in lost)
                fh.flush()
                os.fsync(fh.fileno())
            self.info.abandoned_file = ABANDONED_FILE
        if not unfinished or self.job.shared.fatal is not None:
            return  # a stopped run sends nothing more; --resume redoes them
        heir = min((s for s in self.slots if s.alive), key=lambda s: len(s.assigned), default=None)
        if heir is None:
            if len(self.slots) >= 2 * self.engine.workers:
                raise HarnessError(
                    f"Ray workers keep dying ({len(self.slots)} started) — check the cluster "
                    f"(ray status), then finish the run: harness run --resume {self.job.run_dir}"
                )
            heir = self._spawn(len(self.slots))
            self._greet([heir])
            self.slots.append(heir)
        shared_nonces = Counter(self.job.meta.cache_nonces.values())
        redo: list[PlannedConversation] = []
        for conv in unfinished:
            fresh = conv.nonce
            if conv.nonce is not None and shared_nonces[conv.nonce] <= 1:
                # the dead attempt may have warmed its prefix: a new one makes turn 1 cold
                attempt = 1 + sum(r.conversation == conv.conversation for r in self.info.redone)
                fresh = cache_nonce(self.job.meta.seed, conv.conversation, "redo", attempt)
                self.job.meta.cache_nonces[conv.conversation] = fresh
            redo.append(with_nonce(conv, fresh))
            self.info.redone.append(
                Redo(
                    conversation=conv.conversation,
                    dead_worker=slot.info.id,
                    worker=heir.info.id,
                    nonce_before=conv.nonce,
                    nonce=fresh,
                    abandoned_observations=len(abandoned[conv.conversation]),
                )
            )
        orphans = stored_by(lost, unfinished)
        self._submit(heir, redo, orphans)
        # the new nonces must be on disk before their requests are: a crash keeps them true
        self.info.workers = [s.info for s in self.slots]
        self.job.meta.distributed = self.info.model_dump()
        write_meta(self.job.run_dir, self.job.meta)

    def _finish(self, cpu_s: float, wall_s: float) -> None:
        meta = self.job.meta
        finals = [s.final for s in self.slots if s.final]
        if finals:
            meta.is_emulator = meta.is_emulator or any(f["is_emulator"] for f in finals)
            warmups = [f["sdk_warmup_ms"] for f in finals if f["sdk_warmup_ms"] is not None]
            meta.sdk_warmup_ms = max(warmups) if warmups else meta.sdk_warmup_ms
            loops = [f["loop"] for f in finals if f["loop"]]
            # the worst worker's loop: saturation anywhere taints the run's timings
            meta.loop = max(loops, key=lambda lp: lp["lag_p99_ms"]) if loops else meta.loop
        if finals and not meta.keep_stored:
            meta.stored_responses_deleted = (meta.stored_responses_deleted or 0) + sum(
                f["stored_responses_deleted"] for f in finals
            )
            chat = [f.get("stored_chat_completions_deleted") for f in finals]
            if any(n is not None for n in chat):
                meta.stored_chat_completions_deleted = (
                    meta.stored_chat_completions_deleted or 0
                ) + sum(n or 0 for n in chat)
        for slot in self.slots:
            slot.info.observations = self.written[slot.info.id]
            slot.info.loop = slot.final["loop"] if slot.final else None
        info = self.info
        info.workers = [s.info for s in self.slots]
        info.driver_cpu_ms = round(cpu_s * 1000, 3)
        total = sum(self.written.values())
        info.driver_cpu_ms_per_observation = round(cpu_s * 1000 / total, 4) if total else None
        info.wall_s = round(wall_s, 3)
        meta.distributed = info.model_dump()
