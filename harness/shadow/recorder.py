"""Record-only mode: an application's own calls go through unchanged and each request body is
appended to a JSONL file as one OpenAI Batch API input line, for ``harness import batch``.

Two ways in, one recorder:

- in code, one line: ``client = harness.shadow.record(openai.OpenAI(), "calls.jsonl")`` returns
  the same client with its ``chat.completions.create`` and ``responses.create`` recording;
- without code: ``harness record --out calls.jsonl -- python app.py`` sets :data:`ENV_VAR` and
  puts ``harness/shadow/boot/`` (a ``sitecustomize``) on ``PYTHONPATH``, which patches the
  SDK's resource classes (:func:`patch_module`) as the application imports their modules, so
  every client of every Python process the command starts records.

Nothing is mirrored and no reply is kept, so unlike a shadow capture (:mod:`harness.shadow.
capture`) no timing or copy is needed: the line is written in the calling thread right after
the SDK's ``create`` returned (for a stream: when its headers came, before the first chunk is
read) or raised an API error, while the caller's ``messages`` are still as sent. The overhead is
one ``json.dumps`` of the body and one locked ``write`` to a file opened for appending; nothing
is read back. Several processes may share one file: a line is one ``write`` under ``flock``.

What a line holds is the request body as the SDK sends it (``extra_body`` merged in, SDK
objects such as a previous reply's message dumped as the SDK dumps them, ``stream`` as the
application sent it). Request options (``extra_headers``, ``extra_query``, ``timeout``) are not
part of the body and are not written; the API key and organization travel in headers, so they
never reach the file. Message content is written as sent: ``harness import`` scrubs secrets and
personal data before anything reaches a scenario, so keep the recorded file itself private.

Recording never breaks the application: a body that cannot be written (not JSON-serializable,
disk full) is logged and counted in :attr:`BatchRecorder.failed`, and the call's result is
returned as it came. ``chat.completions.parse``/``stream`` and ``responses.parse``/``stream``
(the SDK's helpers, which do not go through ``create``) are not recorded.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import json
import logging
import os
import secrets
import subprocess
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    import openai

__all__ = [
    "CHAT_URL",
    "ENV_VAR",
    "RESOURCE_MODULES",
    "RESPONSES_URL",
    "SDK_REQUEST_OPTIONS",
    "BatchRecorder",
    "Recorded",
    "enable_recording",
    "patch_module",
    "record",
    "recording_env",
    "request_body",
    "run_recorded",
]

Url = Literal["/v1/chat/completions", "/v1/responses"]
CHAT_URL: Url = "/v1/chat/completions"
RESPONSES_URL: Url = "/v1/responses"
#: the file ``harness record`` asks the processes it starts to append to
ENV_VAR = "HARNESS_RECORD_OUT"
#: SDK request options: sent as headers, query or client settings, never in the body
SDK_REQUEST_OPTIONS = ("extra_headers", "extra_query", "timeout")
#: keyword arguments of a :class:`~harness.shadow.client.ShadowClient` call that are not sent
_HARNESS_KWARGS = ("shadow_key",)

_log = logging.getLogger("harness.shadow.record")
_Client = TypeVar("_Client", bound="openai.OpenAI | openai.AsyncOpenAI")


def _given(value: Any) -> bool:
    """False for the SDK's ``NOT_GIVEN`` / ``omit`` sentinels (the SDK leaves those out)."""
    return type(value).__name__ not in ("NotGiven", "Omit")


def _json_default(value: Any) -> Any:
    """What ``json.dumps`` cannot write by itself, the way the SDK serializes it."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model, e.g. the ChatCompletionMessage of an earlier reply
        return dump(exclude_unset=True, mode="json")
    if not _given(value):
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "__iter__") and not isinstance(value, str | bytes | bytearray):
        return list(value)  # an iterable of messages or parts, sent as a list
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(value: Any) -> str:
    # json's own walk, with a hook for the rare SDK object: under half the time of converting
    # the whole tree to plain data first (measured on a 3 kB conversation)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _top_level(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    body = {
        name: value
        for name, value in kwargs.items()
        if name not in SDK_REQUEST_OPTIONS
        and name not in _HARNESS_KWARGS
        and name != "extra_body"
        and _given(value)
    }
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping):
        body.update(extra)  # the SDK merges extra_body over the parameters
    return body


def request_body(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body the SDK sends for ``create(**kwargs)``, as a line of the file holds it."""
    body: dict[str, Any] = json.loads(_dumps(_top_level(kwargs)))
    return body


class BatchRecorder:
    """Appends request bodies to ``path`` as Batch API input lines (thread- and fork-safe)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._prefix = secrets.token_hex(4)
        self._count = 0
        #: lines this process wrote, and bodies it could not write (logged)
        self.written = 0
        self.failed = 0
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def _renew(self) -> None:
        # A forked child keeps the file (O_APPEND: its lines still go to the end) but needs its
        # own lock (the parent's may have been held at the fork) and its own custom_id prefix.
        self._lock = threading.Lock()
        self._prefix = secrets.token_hex(4)
        self._count = self.written = self.failed = 0

    def write(self, url: Url, kwargs: Mapping[str, Any]) -> None:
        """Append the body of ``create(**kwargs)`` sent to ``url``; never raises."""
        try:
            with self._lock:
                self._count += 1
                custom_id = f"rec-{self._prefix}-{self._count}"
            line = _dumps(
                {"custom_id": custom_id, "method": "POST", "url": url, "body": _top_level(kwargs)}
            )
            data = (line + "\n").encode("utf-8")
            with self._lock:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(self._fd, view) :]
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                self.written += 1
        except Exception:  # the application's call must not fail because recording did
            self.failed += 1
            _log.exception("harness record: cannot write a %s request to %s", url, self.path)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _after_fork(ref: weakref.ref[BatchRecorder]) -> None:
    recorder = ref()
    if recorder is not None:
        recorder._renew()


# --- wrapping ``create`` ---------------------------------------------------------------------


def _replayable(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with each one-shot iterator (``messages=(m for m in …)``, which the SDK
    accepts and uses up while sending) made a list first: the SDK and the line get the same."""
    return {k: list(v) if isinstance(v, Iterator) else v for k, v in kwargs.items()}


def _recording(create: Callable[..., Any], url: Url, recorder: BatchRecorder) -> Any:
    """``create`` (sync or async, bound or not) that records what it sent.

    A call that raised anything but an :class:`openai.APIError` (a ``TypeError`` for a missing
    argument, …) sent nothing and is not recorded.
    """
    import openai

    if inspect.iscoroutinefunction(create):

        @functools.wraps(create)
        async def acreate(*args: Any, **kwargs: Any) -> Any:
            kwargs = _replayable(kwargs)
            try:
                result = await create(*args, **kwargs)
            except openai.APIError:
                recorder.write(url, kwargs)
                raise
            recorder.write(url, kwargs)
            return result

        acreate.__harness_recorder__ = recorder  # type: ignore[attr-defined]
        return acreate

    async def after(pending: Any, kwargs: dict[str, Any]) -> Any:
        try:
            result = await pending
        except openai.APIError:
            recorder.write(url, kwargs)
            raise
        recorder.write(url, kwargs)
        return result

    @functools.wraps(create)
    def screate(*args: Any, **kwargs: Any) -> Any:
        kwargs = _replayable(kwargs)
        try:
            result = create(*args, **kwargs)
        except openai.APIError:
            recorder.write(url, kwargs)
            raise
        if inspect.iscoroutine(result):
            # AsyncCompletions.create is a plain function returning a coroutine (the SDK's
            # argument check wraps it): nothing is sent until it is awaited
            return after(result, kwargs)
        recorder.write(url, kwargs)
        return result

    screate.__harness_recorder__ = recorder  # type: ignore[attr-defined]
    return screate


def _recorded(create: Any) -> bool:
    return hasattr(create, "__harness_recorder__")


def record(client: _Client, path: str | os.PathLike[str] | BatchRecorder) -> _Client:
    """``client`` itself, its ``chat.completions.create`` and ``responses.create`` appending
    each request to ``path`` as a Batch API input line (see the module docstring).

    ``client = record(openai.OpenAI(), "calls.jsonl")``; ``client.with_options(...)`` returns a
    new client, which does not record.
    """
    recorder = path if isinstance(path, BatchRecorder) else BatchRecorder(path)
    resources: tuple[tuple[Any, Url], ...] = (
        (client.chat.completions, CHAT_URL),
        (client.responses, RESPONSES_URL),
    )
    for resource, url in resources:
        if not _recorded(resource.create):
            # an instance attribute: with_raw_response and with_streaming_response, built
            # from the resource's create on first use, record too
            resource.create = _recording(resource.create, url, recorder)
    return client


#: the SDK modules defining ``create`` for each endpoint: (sync, async) class names and url
RESOURCE_MODULES: dict[str, tuple[tuple[str, str], Url]] = {
    "openai.resources.chat.completions.completions": (
        ("Completions", "AsyncCompletions"),
        CHAT_URL,
    ),
    "openai.resources.responses.responses": (("Responses", "AsyncResponses"), RESPONSES_URL),
}
#: this process's recorder per file (one file descriptor, one custom_id sequence)
_PROCESS_RECORDERS: dict[Path, BatchRecorder] = {}
_PROCESS_LOCK = threading.Lock()


def _process_recorder(path: str | os.PathLike[str] | BatchRecorder) -> BatchRecorder:
    if isinstance(path, BatchRecorder):
        return path
    key = Path(path).resolve()
    with _PROCESS_LOCK:
        recorder = _PROCESS_RECORDERS.get(key)
        if recorder is None:
            recorder = _PROCESS_RECORDERS[key] = BatchRecorder(key)
        return recorder


def patch_module(module: ModuleType, path: str | os.PathLike[str] | BatchRecorder) -> None:
    """Make ``create`` of the resource classes in ``module`` (one of :data:`RESOURCE_MODULES`)
    record into ``path``, for every client of this process; idempotent."""
    names, url = RESOURCE_MODULES[module.__name__]
    recorder: BatchRecorder | None = None
    for name in names:
        cls = getattr(module, name)
        if not _recorded(cls.__dict__["create"]):
            recorder = recorder or _process_recorder(path)
            setattr(cls, "create", _recording(cls.__dict__["create"], url, recorder))  # noqa: B010


def enable_recording(path: str | os.PathLike[str] | BatchRecorder) -> BatchRecorder:
    """Make every SDK client of this process record into ``path`` (what ``harness record``
    does in the processes it starts, one resource module at a time as the app imports it);
    idempotent."""
    import importlib

    recorder = _process_recorder(path)
    for name in RESOURCE_MODULES:
        patch_module(importlib.import_module(name), recorder)
    return recorder


# --- ``harness record``: a command run with recording on ------------------------------------

#: the directory ``harness record`` puts first on the command's ``PYTHONPATH``
BOOT_DIR = Path(__file__).resolve().parent / "boot"


@dataclass(frozen=True)
class Recorded:
    """What :func:`run_recorded` saw: the command's exit status and the lines it added, by url."""

    returncode: int
    lines: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.lines.values())


def recording_env(out: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with recording into ``out`` switched on."""
    new = dict(os.environ if env is None else env)
    new[ENV_VAR] = str(out.resolve())
    path = new.get("PYTHONPATH")
    new["PYTHONPATH"] = str(BOOT_DIR) + (os.pathsep + path if path else "")
    return new


def run_recorded(command: Sequence[str], out: Path, *, append: bool = False) -> Recorded:
    """Run ``command`` with every Python process it starts recording into ``out``.

    ``out`` is emptied first unless ``append``. Raises :class:`~harness.errors.HarnessError`
    when ``out`` cannot be written or the command cannot be started.
    """
    from harness.errors import HarnessError

    if not command:
        raise HarnessError(
            "record: no command — give it after --, e.g. harness record --out calls.jsonl -- "
            "python app.py"
        )
    try:
        with out.open("ab" if append else "wb") as fh:
            start = fh.tell()
    except OSError as exc:
        raise HarnessError(
            f"{out}: cannot write ({exc.strerror or exc}) — pass a writable file as --out"
        ) from None
    try:
        proc = subprocess.Popen(list(command), env=recording_env(out))
    except OSError as exc:
        raise HarnessError(
            f"record: cannot run {command[0]!r} ({exc.strerror or exc}) — check the command "
            "after --"
        ) from None
    with proc:
        try:
            returncode = proc.wait()
        except KeyboardInterrupt:
            # The command got the same Ctrl-C: let it shut down as it does (flushing its own
            # work); a second Ctrl-C stops it at once.
            try:
                returncode = proc.wait()
            except KeyboardInterrupt:
                proc.kill()
                raise
    return Recorded(returncode, _count_lines(out, start))


def _count_lines(path: Path, start: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    with path.open("rb") as fh:
        fh.seek(start)
        for raw in fh:
            try:
                url = str(json.loads(raw).get("url"))
            except (ValueError, AttributeError):
                url = "unreadable"
            counts[url] = counts.get(url, 0) + 1
    return counts
