"""Cassettes: record a whole shadow run once, replay it offline (vcrpy, indexed, linear).

Granularity: **one cassette per scenario**, ``<DIR>/<scenario name>.yaml``. A scenario is the unit
a team edits, reviews and re-records, and what ``harness cassettes check`` calls stale (its sha256
is in the cassette). Per prompt would multiply files without making any of them independent: the
run seed, nonces and warm-up belong to the whole scenario. The runner sets
:data:`CURRENT_SCENARIO` in each conversation's task, so concurrent conversations of several
scenarios record into, and replay from, their own cassette. Requests made outside a
conversation go by what they name: ``GET/DELETE /responses/{id}`` and ``DELETE
/chat/completions/{id}`` to the scenario that created the response or completion; the
connection warm-up ``GET /models`` is stored in every cassette of the run as a *shared*
interaction, which replays any number of times and is never reported unused.

Timing (DESIGN §4, §6): vcrpy's stub buffers the whole body inside ``handle_async_request``
while recording, so a clock above it is wrong. The wire clock (:mod:`harness.transport.wire`) sits
below it, and while recording :mod:`harness.cassettes.record` replaces the buffering stub so the
reply streams through and the SDK clock is true too. Each interaction's response gets a ``timing``
mapping (wire TTFB, TTFT, total, connect, event count, each event's arrival, and the SDK clock) — a
key beside ``status``/``headers``/``body`` that vcrpy ignores, so it never reaches the SDK as a
header, stays readable, and travels with its interaction. It is filled in by
:meth:`harness.transport.client.Transport.send` once the attempt is complete (through
``WireRecorder.recording``), so the stored figures are exactly the recorded observation's. On replay
the cassette hands them back through ``WireRecorder.replayed`` and the observation is marked
``replayed``.

Matching is method + path + canonical JSON body (sorted keys, no whitespace); the host is
ignored (an emulator's port changes every run). :class:`RunCassette` indexes interactions in a
dict of deques, so a lookup is O(1) and repeats of one request replay in recording order —
plain vcrpy scans every interaction per request (quadratic, DESIGN §6). A request with no
interaction left fails alone with :class:`CassetteMiss` (``error_type: cassette_miss``), which
names the cassette and the request; replay never goes live (record mode ``none``, and the
replay base URL is an unresolvable ``.invalid`` host).
"""

from __future__ import annotations

import copy
import hashlib
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson
from vcr.cassette import Cassette
from vcr.filters import decode_response
from vcr.patch import PATCHER_NAMES, CassettePatcherBuilder
from vcr.record_mode import RecordMode
from vcr.request import Request

from harness import NOT_OPENAI_LABEL, __version__
from harness.cassettes.files import (
    CassetteMeta,
    HarnessPersister,
    dump_cassette,
    load_cassette,
    read_meta,
    replayed_cassette,
    write_atomic,
)
from harness.cassettes.files import cassette_path as cassette_path
from harness.cassettes.record import recording_handler
from harness.errors import HarnessError
from harness.records import ReplayedCassette
from harness.transport.wire import CURRENT_RECORDER, RecordedTiming, WireTiming

#: Never written to a cassette, on requests or responses.
SCRUBBED_HEADERS = (
    "authorization",
    "api-key",
    "openai-organization",
    "openai-project",
    "cookie",
    "set-cookie",
)
#: SDK telemetry (OS, arch, runtime versions): noise in a cassette, never matched on.
_DROPPED_PREFIXES = ("x-stainless-",)
#: Replays go here: a reserved name that can never resolve (RFC 6761), so nothing goes live.
REPLAY_HOST = "http://cassette-replay.invalid"
#: vcrpy patches these too; a harness run only speaks httpx2, so leave the others alone.
_SKIP_PATCHERS = tuple(name for name in PATCHER_NAMES if name != "httpx2")

#: The scenario whose conversation is running in this task (set by the runner).
CURRENT_SCENARIO: ContextVar[str | None] = ContextVar("harness_cassette_scenario", default=None)

Key = tuple[str, str, bytes]


class CassetteMiss(httpx2.TransportError):
    """No recorded interaction is left for a request (it fails; nothing is sent)."""


# --- matching ----------------------------------------------------------------------------------


def canonical_body(body: bytes | str | None) -> bytes:
    """JSON bodies with sorted keys and no whitespace; anything else as it is."""
    if not body:
        return b""
    raw = body.encode() if isinstance(body, str) else body
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return raw
    except TypeError:  # integers beyond 64 bits: orjson refuses, the key need not be canonical
        return raw


def _path(uri: str) -> str:
    parts = urlsplit(uri)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def request_key(request: Request) -> Key:
    """Match key: method, path (+ query), canonical body. The host is deliberately ignored."""
    return (request.method.upper(), _path(request.uri), canonical_body(request.body))


def describe(request: Request) -> str:
    """``POST /v1/responses body sha256:0123456789ab`` — short enough for an error line."""
    method, path, body = request_key(request)
    digest = f" body sha256:{hashlib.sha256(body).hexdigest()[:12]}" if body else ""
    return f"{method} {path}{digest}"


# --- scrubbing (shared with pytest users through vcr_config) -----------------------------------


def _drop(name: str) -> bool:
    lower = name.lower()
    return lower in SCRUBBED_HEADERS or lower.startswith(_DROPPED_PREFIXES)


def scrub_request(request: Request) -> Request:
    """A copy of ``request`` without credentials, cookies or SDK telemetry headers."""
    clean = copy.copy(request)
    clean.headers = {k: v for k, v in request.headers.items() if not _drop(k)}
    return clean


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Drop ``set-cookie``, organisation/project and credential headers from a response dict."""
    response["headers"] = {k: v for k, v in response.get("headers", {}).items() if not _drop(k)}
    return response


def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy hook: scrub the response and, inside a harness request, reserve its timing slot.

    Runs in the request's own task inside vcrpy's patched ``handle_async_request``, after the
    whole body was read, so the wire recorder of this attempt is the current one.
    """
    response = scrub_response(response)
    rec = CURRENT_RECORDER.get()
    if rec is not None:
        rec.recording = partial(_store_timing, response)
    return response


def _store_timing(response: dict[str, Any], timing: RecordedTiming) -> None:
    data = asdict(timing.wire)
    data.update(
        sdk_ttfb_ms=timing.sdk_ttfb_ms,
        sdk_ttft_ms=timing.sdk_ttft_ms,
        sdk_total_ms=timing.sdk_total_ms,
        sdk_first_output_ms=timing.sdk_first_output_ms,
    )
    response["timing"] = data


def recorded_timing(response: dict[str, Any]) -> RecordedTiming:
    """The timing stored with an interaction (empty figures when there is none)."""
    data = dict(response.get("timing") or {})
    sdk = {
        k: data.pop(k, None)
        for k in ("sdk_ttfb_ms", "sdk_ttft_ms", "sdk_total_ms", "sdk_first_output_ms")
    }
    known = set(WireTiming.__slots__)
    wire = WireTiming(**{k: v for k, v in data.items() if k in known})
    return RecordedTiming(wire, **sdk)


def vcr_config() -> dict[str, Any]:
    """vcrpy settings for a user's own ``vcr_config`` fixture (pytest-recording).

    Scrubbing, decoded bodies, the readable YAML persister and body-aware matching; record
    modes stay pytest-recording's (``--record-mode``). Plain vcrpy matching is linear per
    request, which is fine for test-sized cassettes; ``harness run --replay`` uses the indexed
    :class:`RunCassette`.
    """
    return {
        "filter_headers": list(SCRUBBED_HEADERS),
        "before_record_request": scrub_request,
        "before_record_response": before_record_response,
        "decode_compressed_response": True,
        "match_on": ["method", "path", "body"],
        "persister": HarnessPersister,
    }


# --- the run's cassette ------------------------------------------------------------------------


@dataclass
class _Entry:
    request: Request
    response: dict[str, Any]
    scenario: str | None  # None: shared (the warm-up GET /models)
    played: int = 0


# a stored response or chat completion: its id names the scenario that created it when the
# run's clean-up deletes it outside any conversation
_RESPONSE_ID = re.compile(rb'"id"\s*:\s*"((?:resp_|chatcmpl-)[^"]+)"')
_BY_ID = re.compile(r"/(?:responses|chat/completions)/([^/?]+)")


class RunCassette(Cassette):  # type: ignore[misc]
    """All cassettes of one run in one indexed vcrpy cassette, routed per scenario."""

    def __init__(self, directory: Path, *, record: bool) -> None:
        # recording goes through recording_handler (applied after vcrpy's own patch)
        patches = (
            ((httpx2.AsyncHTTPTransport, "handle_async_request", recording_handler(self)),)
            if record
            else ()
        )
        super().__init__(
            path=str(directory),
            record_mode=RecordMode.ALL if record else RecordMode.NONE,
            before_record_request=scrub_request,
            before_record_response=lambda r: before_record_response(decode_response(r)),
            skip_patchers=_SKIP_PATCHERS,
            custom_patches=patches,
        )
        self.directory = directory
        self.entries: list[_Entry] = []
        self.files: dict[str, Path] = {}
        self.misses: list[str] = []
        self._index: dict[tuple[str | None, Key], deque[_Entry]] = {}
        self._owner: dict[str, str] = {}  # response id → scenario that created it
        self._pending: tuple[Request, _Entry] | None = None

    # loading and recording

    def add(
        self, scenario: str, path: Path, interactions: Iterable[tuple[Request, dict[str, Any]]]
    ) -> None:
        """Index one scenario's recorded interactions (replay)."""
        self.files[scenario] = path
        for request, response in interactions:
            entry = _Entry(request, response, None if response.get("shared") else scenario)
            self.entries.append(entry)
            key = request_key(request)
            self._index.setdefault((entry.scenario, key), deque()).append(entry)
            if entry.scenario is not None:
                self._index.setdefault((None, key), deque()).append(entry)

    def append(self, request: Request, response: dict[str, Any]) -> None:
        count = len(self.data)
        super().append(request, response)
        if len(self.data) == count:
            return
        stored_request, stored = self.data[-1]
        scenario = CURRENT_SCENARIO.get()
        if scenario is None:
            by_id = _BY_ID.search(_path(stored_request.uri))
            scenario = self._owner.get(by_id.group(1)) if by_id else None
        elif stored_request.uri.endswith(("/responses", "/chat/completions")):
            found = _RESPONSE_ID.search(stored["body"]["string"] or b"")
            if found:
                self._owner[found.group(1).decode()] = scenario
        if scenario is None:
            stored["shared"] = True
        self.entries.append(_Entry(stored_request, stored, scenario))

    # replaying

    def _find(self, request: Request) -> _Entry | None:
        scenario = CURRENT_SCENARIO.get()
        queue = self._index.get((scenario, key := request_key(request)))
        while queue:
            if queue[0].scenario is None or not queue[0].played:
                return queue[0]
            queue.popleft()  # played through the other index
        if scenario is not None:  # e.g. the shared warm-up, asked inside a conversation
            shared = self._index.get((None, key))
            if shared and shared[0].scenario is None:
                return shared[0]
        return None

    def can_play_response_for(self, request: Request) -> bool:
        if self.record_mode == RecordMode.ALL:
            return False
        entry = self._find(request)
        if entry is None:
            scenario = CURRENT_SCENARIO.get()
            where = (
                str(self.files.get(scenario, cassette_path(self.directory, scenario)))
                if scenario
                else f"the cassettes in {self.directory}"
            )
            message = (
                f"cassette miss: {where} has no unplayed interaction for "
                f"{describe(request)} — re-record with harness run --record "
                f"{self.directory}"
            )
            self.misses.append(message)
            rec = CURRENT_RECORDER.get()
            if rec is not None:
                rec.miss = message
            raise CassetteMiss(message)
        self._pending = (request, entry)
        return True

    def play_response(self, request: Request) -> dict[str, Any]:
        pending, self._pending = self._pending, None
        entry = pending[1] if pending is not None and pending[0] is request else None
        if entry is None:
            entry = self._find(request)
            if entry is None:
                raise CassetteMiss(f"cassette miss: {describe(request)}")
        entry.played += 1
        rec = CURRENT_RECORDER.get()
        if rec is not None:
            rec.replayed = recorded_timing(entry.response)
        return entry.response

    def unplayed(self, scenario: str) -> list[_Entry]:
        """Interactions of ``scenario`` that a replay never asked for (shared ones excluded)."""
        return [e for e in self.entries if e.scenario == scenario and not e.played]

    def _save(self, force: bool = False) -> None:  # saving is explicit: see recording()
        return None


@contextmanager
def _patched(cassette: RunCassette) -> Iterator[RunCassette]:
    with ExitStack() as stack:
        for patcher in CassettePatcherBuilder(cassette).build():
            stack.enter_context(patcher)
        yield cassette


@contextmanager
def scenario_scope(name: str) -> Iterator[None]:
    """Route this task's requests to ``name``'s cassette."""
    token = CURRENT_SCENARIO.set(name)
    try:
        yield
    finally:
        CURRENT_SCENARIO.reset(token)


# --- record ------------------------------------------------------------------------------------


@dataclass
class ScenarioInfo:
    """What a cassette's metadata needs to know about one scenario of the run."""

    name: str
    path: Path
    sha256: str
    nonces: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordingInfo:
    """The recording run's settings, written as they are into every cassette's metadata."""

    target: str
    is_emulator: bool
    emulator_profile: str | None
    emulator_seed: int | None
    emulator_time_scale: float | None
    base_url: str
    seed: int
    repeats: int | None
    client: str
    run_id: str


@contextmanager
def recording(
    directory: Path, scenarios: Sequence[ScenarioInfo], info: Callable[[], RecordingInfo]
) -> Iterator[RunCassette]:
    """Record every interaction of the block; on a clean exit write one cassette per scenario
    (an interrupted recording writes nothing: a partial cassette would only make misses).

    ``info`` is asked at the end, when the run knows whether its target is an emulator.
    """
    cassette = RunCassette(directory, record=True)
    with _patched(cassette):
        yield cassette
    save_recording(cassette, scenarios, info())


def save_recording(
    cassette: RunCassette, scenarios: Sequence[ScenarioInfo], info: RecordingInfo
) -> list[Path]:
    directory = cassette.directory
    directory.mkdir(parents=True, exist_ok=True)
    shared = [e for e in cassette.entries if e.scenario is None]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    written = []
    for scenario in scenarios:
        own = [e for e in cassette.entries if e.scenario == scenario.name]
        items = [(e.request, e.response) for e in shared + own]
        meta = CassetteMeta(
            recorded_from=f"{info.target} (not OpenAI)" if info.is_emulator else info.target,
            label=(
                f"{NOT_OPENAI_LABEL} (profile {info.emulator_profile or 'unknown'})"
                if info.is_emulator
                else info.target
            ),
            **asdict(info),
            harness_version=__version__,
            recorded_at=stamp,
            scenario=scenario.name,
            scenario_path=str(scenario.path),
            scenario_sha256=scenario.sha256,
            cache_nonces=scenario.nonces,
            interactions=len(items),
        )
        path = cassette_path(directory, scenario.name)
        write_atomic(path, dump_cassette(meta.model_dump(), items))
        written.append(path)
    return written


# --- replay ------------------------------------------------------------------------------------


@dataclass
class ReplaySetup:
    """Everything a replay run takes from its cassettes instead of the command line."""

    directory: Path
    #: The first cassette's metadata; seed, target and is_emulator are the same in all of them.
    recorded: CassetteMeta
    recorded_url: str | None
    base_url: str
    metas: dict[str, CassetteMeta]
    cassette: RunCassette

    def sources(
        self, scenario_paths: Mapping[str, Path], repeats: Mapping[str, int]
    ) -> list[ReplayedCassette]:
        """Each scenario's cassette and how it was recorded (meta.json ``replay``); ``repeats``
        are the replay's, which are the recording's unless the cassette lacks requests."""
        return [
            replayed_cassette(
                self.cassette.files[name],
                meta,
                scenario_paths.get(name),
                repeats=meta.repeats or repeats.get(name),
            )
            for name, meta in self.metas.items()
        ]


def prepare_replay(
    directory: Path, scenarios: Sequence[tuple[str, str]], *, seed: int | None = None
) -> ReplaySetup:
    """Load the cassettes of ``scenarios`` (name, sha256) from ``directory`` for a replay.

    The seed (and so every cache nonce) and each scenario's ``--repeats`` come from the
    cassettes; a different ``seed`` is refused, since no request would match.
    """
    if not directory.is_dir():
        raise HarnessError(f"--replay {directory}: not a directory of cassettes")
    cassette = RunCassette(directory, record=False)
    metas: dict[str, CassetteMeta] = {}
    for name, _sha in scenarios:
        path = cassette_path(directory, name)
        if not path.is_file():
            raise HarnessError(
                f"--replay {directory}: no cassette for scenario {name!r} "
                f"(expected {path}) — record one with harness run SCENARIO "
                f"--record {directory}"
            )
        metadata, interactions = load_cassette(path)
        metas[name] = read_meta(path, metadata)
        cassette.add(name, path, interactions)
        if not any(r.method == "GET" and _path(r.uri).endswith("/models") for r, _ in interactions):
            raise HarnessError(
                f"{path}: no recorded GET /models warm-up — re-record it with harness run --record"
            )
    first = next(iter(metas.values()))
    for field_name in ("seed", "target", "is_emulator"):
        values = {getattr(m, field_name) for m in metas.values()}
        if len(values) > 1:
            raise HarnessError(
                f"--replay {directory}: these cassettes were recorded with "
                f"different {field_name} values ({sorted(map(str, values))}) — "
                "replay them one scenario at a time"
            )
    if seed is not None and seed != first.seed:
        raise HarnessError(
            f"--seed {seed}: the cassettes were recorded with seed {first.seed} "
            "and replay needs the same requests — drop --seed"
        )
    recorded = first.base_url or ""
    return ReplaySetup(
        directory=directory,
        recorded=first,
        recorded_url=None if first.is_emulator else first.base_url,
        base_url=REPLAY_HOST + (urlsplit(recorded).path.rstrip("/") or "/v1"),
        metas=metas,
        cassette=cassette,
    )


@contextmanager
def replaying(setup: ReplaySetup) -> Iterator[RunCassette]:
    """Serve the block's HTTP requests from the loaded cassettes; misses fail, never go live."""
    with _patched(setup.cassette) as cassette:
        yield cassette
