"""Shared fixtures. Every test runs offline and without OpenAI credentials."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

import pytest

if TYPE_CHECKING:  # imported where used, so tests that need no server do not load uvicorn
    import openai

    from harness.emulator.server import EmulatorProcess, EmulatorThread, ProfileArg

#: The llama.cpp tier builds and starts a real server, the Ray tier a 2-node Ray cluster (slow
#: on a small machine), the docs tier runs every documented command: only when asked
#: (``.ci/run`` asks).
TIERS = {"realserver": "HARNESS_REALSERVER", "ray": "HARNESS_RAY", "docs": "HARNESS_DOCS"}
collect_ignore = [tier for tier, var in TIERS.items() if os.environ.get(var) != "1"]

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"
DATA = Path(__file__).resolve().parent / "data"

_SECRET_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_ORG_ID",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT_ID",
    "OPENAI_BASE_URL",
    "OPENAI_ADMIN_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "HARNESS_TARGET_API_KEY",
)


@pytest.fixture(autouse=True)
def _no_openai_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in _SECRET_VARS:
        monkeypatch.delenv(var, raising=False)


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return isinstance(address, str | bytes)  # a str/bytes address is an AF_UNIX path
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse any connection that is not to loopback (tests must never reach the internet)."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: object) -> object:
        if not _is_loopback(address):
            raise OSError(f"network blocked in tests: {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    def guarded_connect_ex(self: socket.socket, address: object) -> int:
        if not _is_loopback(address):
            raise OSError(f"network blocked in tests: {address!r}")
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield


# --- the emulator: the test server ------------------------------------------------------------
#
# One way to get an emulator in a test, instead of a fixture per file. Pick by what the test
# does with the server's state:
#
# - ``emulator`` / ``emulator_url`` / ``emulator_client``: one ``zero``-profile server for the
#   whole session. For tests that only send requests and read the replies; a test that checks
#   cache hits on it must make its prompt prefix new with ``harness.emulator.testing.nonce()``.
# - ``emulators`` (per test) / ``module_emulators`` (per module): fresh servers with their own
#   profile, seed, truth log, time scale or process. A test that reads a truth log, depends on
#   the server's seed or counters, or patches the server gets its own.
# - ``mode="process"``: the server in its own interpreter, as timing tests need (DESIGN §4: a
#   client in the same process delays the server through the GIL and the event loop).

#: what ``Emulators.start`` returns: both have ``base_url`` and are context managers
Emulator: TypeAlias = "EmulatorThread | EmulatorProcess"


class Emulators:
    """Starts emulators and SDK clients for them; whatever is still open is closed at teardown."""

    def __init__(self) -> None:
        self._stacks: dict[int, ExitStack] = {}
        self._clients = ExitStack()

    def start(
        self,
        profile: ProfileArg = "zero",
        *,
        mode: Literal["thread", "process"] = "thread",
        seed: int = 0,
        truth_log: Path | None = None,
        time_scale: float = 1.0,
    ) -> Emulator:
        """A running server (``zero`` profile unless given: no delays, no faults)."""
        from harness.emulator.server import EmulatorProcess, EmulatorThread

        kind = {"thread": EmulatorThread, "process": EmulatorProcess}[mode]
        stack = ExitStack()
        server = stack.enter_context(
            kind(profile=profile, seed=seed, truth_log=truth_log, time_scale=time_scale)
        )
        self._stacks[id(server)] = stack
        return server

    @contextmanager
    def running(
        self,
        profile: ProfileArg = "zero",
        *,
        mode: Literal["thread", "process"] = "thread",
        seed: int = 0,
        truth_log: Path | None = None,
        time_scale: float = 1.0,
    ) -> Iterator[Emulator]:
        """:meth:`start` for a ``with`` block: the server stops when the block ends, so a test
        can read a complete truth log after it."""
        server = self.start(
            profile, mode=mode, seed=seed, truth_log=truth_log, time_scale=time_scale
        )
        try:
            yield server
        finally:
            self.stop(server)

    def client(self, server: Emulator, *, api_key: str = "sk-test") -> openai.OpenAI:
        """An SDK client for ``server`` without retries (a test sees every error as it came);
        closed when ``server`` stops."""
        import openai

        stack = self._stacks.get(id(server), self._clients)
        return stack.enter_context(
            openai.OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0)
        )

    def stop(self, server: Emulator) -> None:
        """Stop ``server`` (and its clients) now: its truth log is complete only once it has
        stopped, since a record is written just after the reply's last bytes went out."""
        self._stacks.pop(id(server)).close()

    def close(self) -> None:
        """Stop every server still running, newest first, then the other clients; one that
        fails to stop does not keep the rest running."""
        with ExitStack() as everything:
            everything.push(self._clients)
            for stack in self._stacks.values():
                everything.push(stack)
            self._stacks.clear()


@pytest.fixture
def emulators() -> Iterator[Emulators]:
    """Fresh emulators for one test (``emulators.start(profile, seed=..., truth_log=...)``)."""
    started = Emulators()
    yield started
    started.close()


@pytest.fixture(scope="module")
def module_emulators() -> Iterator[Emulators]:
    """Fresh emulators shared by the tests of one module (a module's own profile or seed)."""
    started = Emulators()
    yield started
    started.close()


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorThread]:
    """The shared in-thread ``zero`` server: read-only use, fresh prompt prefixes for caching."""
    from harness.emulator.server import EmulatorThread

    with EmulatorThread(profile="zero") as server:
        yield server


@pytest.fixture(scope="session")
def emulator_url(emulator: EmulatorThread) -> str:
    """The shared server's base URL (``http://127.0.0.1:PORT/v1``)."""
    return emulator.base_url


@pytest.fixture(scope="session")
def emulator_client(emulator: EmulatorThread) -> Iterator[openai.OpenAI]:
    """An SDK client for the shared server, without retries."""
    import openai

    with openai.OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``harness run scenarios/quickstart.yaml`` on the ``zero`` profile (2 repeats, seed 7),
    shared: tests that change it change a copy."""
    from harness.runner.execute import RunOptions, run

    options = RunOptions(
        out=tmp_path_factory.mktemp("quickstart"),
        repeats=2,
        seed=7,
        progress=False,
        emulator_profile="zero",
    )
    return run([SCENARIOS / "quickstart.yaml"], options).run_dir


class DroppingServer:
    """A loopback HTTP/1.1 server that answers ``GET /models`` and a one-word chat completion
    (SSE when asked to stream), except that it closes the connection without a reply on the
    first ``drops`` POSTs, as llama-server does to a kept-alive connection it has idled out."""

    REPLY = "OK"

    def __init__(self, drops: int) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.drops = drops
        self.dropped = 0
        self.served = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _drop(self) -> bool:
                if owner.dropped < owner.drops:
                    owner.dropped += 1
                    self.close_connection = True
                    return True
                return False

            def _send(self, content_type: str, data: bytes) -> None:
                owner.served += 1
                self.send_response(200)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send("application/json", b'{"object": "list", "data": []}')

            def do_POST(self) -> None:
                import json

                body = json.loads(self._body() or b"{}")
                if self._drop():
                    return
                message = {"role": "assistant", "content": owner.REPLY}
                usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
                head = {"id": "chatcmpl-1", "created": 0, "model": "m"}
                if not body.get("stream"):
                    reply = {
                        **head,
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": usage,
                    }
                    self._send("application/json", json.dumps(reply).encode())
                    return
                chunk = {
                    **head,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": message, "finish_reason": "stop"}],
                }
                events = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
                self._send("text/event-stream", events.encode())

            def log_message(self, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def dropping_server(request: pytest.FixtureRequest) -> Iterator[DroppingServer]:
    """:class:`DroppingServer`; ``@pytest.mark.parametrize("dropping_server", [n],
    indirect=True)`` drops ``n`` connections (default 1)."""
    server = DroppingServer(getattr(request, "param", 1))
    yield server
    server.close()
