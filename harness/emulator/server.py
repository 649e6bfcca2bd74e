"""Running the emulator: in the foreground (:func:`serve`), in a thread, or in its own process.

- :func:`serve` — blocking uvicorn server (``harness emulator``).
- :class:`EmulatorThread` — in-process, on a free loopback port; quick tests.
- :class:`EmulatorProcess` — its own interpreter, for timing-accurate runs (a client in the
  same process would delay the server through the GIL and the shared event loop).

All bind the socket before announcing the address, so a client may connect as soon as it has
the URL. uvicorn runs with httptools, an asyncio loop with µs-resolution timers
(:func:`~harness.emulator.latency.precise_loop`), no access log and no lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn
import yaml
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from harness.emulator.app import ARRIVAL_KEY, create_app
from harness.emulator.latency import precise_loop
from harness.emulator.profiles import EmulatorConfig, Profile, load_profile
from harness.errors import HarnessError

ProfileArg = str | Path | Profile
_READY = re.compile(r"listening on (http://\S+/v1)")
_START_TIMEOUT_S = 30.0


def _profile(profile: ProfileArg) -> Profile:
    return profile if isinstance(profile, Profile) else load_profile(profile)


def _config(
    profile: Profile, seed: int, truth_log: Path | None, time_scale: float
) -> EmulatorConfig:
    if not time_scale >= 0:  # also rejects NaN
        raise HarnessError(f"--time-scale must be 0 or more (got {time_scale})")
    return EmulatorConfig(profile=profile, seed=seed, truth_log=truth_log, time_scale=time_scale)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: any free port), ready to hand to uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets that say so,
    # and without it Nagle holds the body write behind the headers for a delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise HarnessError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _ArrivalStampingProtocol(HttpToolsProtocol):
    """httptools protocol that notes when a request's first bytes were parsed.

    The truth log measures from this moment (``scope["emulator.t0"]``) rather than from when the
    app task first runs, so queueing inside the server counts as server time, as a client sees.
    """

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[ARRIVAL_KEY] = time.perf_counter()  # type: ignore[literal-required]


#: the asyncio loop with µs-resolution timers (see :mod:`harness.emulator.latency`)
_LOOP = "harness.emulator.latency:precise_loop"


def uvicorn_config(app: Any) -> uvicorn.Config:
    """The uvicorn settings every emulator server uses (benchmarks reuse them as a baseline)."""
    return uvicorn.Config(
        app,
        http=_ArrivalStampingProtocol,
        loop=_LOOP,
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        server_header=False,
    )


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def serve(
    host: str = "127.0.0.1",
    port: int = 8787,
    profile: ProfileArg = "parity",
    seed: int = 0,
    truth_log: Path | None = None,
    time_scale: float = 1.0,
) -> None:
    """Serve the emulator until interrupted; prints one line with its URL and profile."""
    prof = _profile(profile)
    app = create_app(_config(prof, seed, truth_log, time_scale))
    try:
        sock = bind_socket(host, port)
    except HarnessError:
        app.close()
        raise
    print(f"emulator (not OpenAI) listening on {_url(sock)} — profile {prof.name}", flush=True)
    try:
        uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])
    finally:
        app.close()
        sock.close()


@dataclass(eq=False)
class _Emulator:
    """An emulator in a thread or in a process: its settings, ``base_url`` once bound, and the
    context manager that starts and stops it."""

    profile: ProfileArg = "parity"
    seed: int = 0
    truth_log: Path | None = None
    time_scale: float = 1.0
    base_url: str = field(default="", init=False)

    def __enter__(self) -> Self:
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop(failed=exc is not None)

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self, *, failed: bool = False) -> None:
        """Stop serving; ``failed``: the with-block raised, so raise nothing over it."""
        raise NotImplementedError


@dataclass(eq=False)
class EmulatorThread(_Emulator):
    """The emulator in a background thread of this process (context manager).

    ``base_url`` is ``http://127.0.0.1:PORT/v1``; ``app.emulator`` exposes its state.
    """

    def __post_init__(self) -> None:
        config = _config(_profile(self.profile), self.seed, self.truth_log, self.time_scale)
        self.app = create_app(config)
        self._sock = bind_socket("127.0.0.1", 0)
        self.base_url = _url(self._sock)
        self._server = uvicorn.Server(uvicorn_config(self.app))
        self._thread = threading.Thread(target=self._run, name="emulator", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=precise_loop) as runner:
                runner.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # surfaced by __enter__/__exit__, never swallowed
            self._error = exc

    def _start(self) -> None:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise HarnessError(f"emulator thread failed to start: {self._error!r}")
            self._thread.join(0.005)

    def _stop(self, *, failed: bool = False) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self.app.close()
        self._sock.close()
        if self._error is not None and not failed:
            raise HarnessError(f"emulator thread crashed: {self._error!r}")


class EmulatorProcess(_Emulator):
    """The emulator in its own Python process (context manager); ``base_url`` once entered.

    The child exits when this process closes its stdin pipe, so it never outlives the parent,
    even if the parent is killed.
    """

    _proc: subprocess.Popen[str] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _drain: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def _profile_arg(self) -> str:
        if not isinstance(self.profile, Profile):
            load_profile(self.profile)  # a bad profile is one line here, not a child's crash
            return str(self.profile)
        self._tmp = tempfile.TemporaryDirectory(prefix="emulator-profile-")
        path = Path(self._tmp.name) / f"{self.profile.name}.yaml"
        data = self.profile.model_dump(mode="json")
        data["extends"] = None
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return str(path)

    def _start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "harness.emulator",
            "--port",
            "0",
            "--profile",
            self._profile_arg(),
            "--seed",
            str(self.seed),
            "--time-scale",
            repr(self.time_scale),
            "--exit-with-stdin",
        ]
        if self.truth_log is not None:
            cmd += ["--truth-log", str(self.truth_log)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            self.base_url = self._wait_ready()
        except BaseException:
            self._stop()
            raise

    def _wait_ready(self) -> str:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(proc.stdout.readline() if proc.stdout else ""), daemon=True
        )
        reader.start()
        reader.join(_START_TIMEOUT_S)
        match = _READY.search(line[0]) if line else None
        if match is None:
            code = proc.poll()
            if line and code is None:
                # Its stdout closed, so it is exiting: report its status, not a timeout.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = proc.wait(10)
            raise HarnessError(
                "emulator process did not start"
                + (
                    f" (exit status {code})"
                    if code is not None
                    else f" within {_START_TIMEOUT_S:.0f} s"
                )
            )
        # Keep draining stdout so the child can never block on a full pipe.
        self._drain = threading.Thread(target=proc.stdout.read, daemon=True)
        self._drain.start()
        return match.group(1)

    def _stop(self, *, failed: bool = False) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._drain is not None:
            self._drain.join(5)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def exit_when_stdin_closes() -> None:
    """End this process when its stdin closes (the parent that holds the pipe has gone)."""

    def watch() -> None:
        # os.read on the descriptor, not sys.stdin.buffer: a daemon thread blocked inside the
        # buffered reader holds its lock, and an exit on the main thread then aborts the
        # interpreter ("could not acquire lock for <stdin> ... daemon threads").
        fd = sys.stdin.fileno()
        with contextlib.suppress(OSError):
            while os.read(fd, 65536):
                pass
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
