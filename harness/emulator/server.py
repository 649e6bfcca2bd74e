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

import argparse
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
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

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


class EmulatorThread:
    """The emulator in a background thread of this process (context manager).

    ``base_url`` is ``http://127.0.0.1:PORT/v1``; ``app.emulator`` exposes its state.
    """

    def __init__(
        self,
        profile: ProfileArg = "parity",
        seed: int = 0,
        truth_log: Path | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.app = create_app(_config(_profile(profile), seed, truth_log, time_scale))
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

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise HarnessError(f"emulator thread failed to start: {self._error!r}")
            self._thread.join(0.005)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self.app.close()
        self._sock.close()
        if self._error is not None and exc is None:
            raise HarnessError(f"emulator thread crashed: {self._error!r}")


class EmulatorProcess:
    """The emulator in its own Python process (context manager); ``base_url`` once entered.

    The child exits when this process closes its stdin pipe, so it never outlives the parent,
    even if the parent is killed.
    """

    def __init__(
        self,
        profile: ProfileArg = "parity",
        seed: int = 0,
        truth_log: Path | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self._profile = profile
        self._seed = seed
        self._truth_log = truth_log
        self._time_scale = time_scale
        self._proc: subprocess.Popen[str] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._drain: threading.Thread | None = None
        self.base_url = ""

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def _profile_arg(self) -> str:
        if not isinstance(self._profile, Profile):
            load_profile(self._profile)  # a bad profile is one line here, not a child's crash
            return str(self._profile)
        self._tmp = tempfile.TemporaryDirectory(prefix="emulator-profile-")
        path = Path(self._tmp.name) / f"{self._profile.name}.yaml"
        data = self._profile.model_dump(mode="json")
        data["extends"] = None
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return str(path)

    def __enter__(self) -> EmulatorProcess:
        cmd = [
            sys.executable,
            "-m",
            "harness.emulator",
            "--port",
            "0",
            "--profile",
            self._profile_arg(),
            "--seed",
            str(self._seed),
            "--time-scale",
            repr(self._time_scale),
            "--exit-with-stdin",
        ]
        if self._truth_log is not None:
            cmd += ["--truth-log", str(self._truth_log)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            self.base_url = self._wait_ready()
        except BaseException:
            self._stop()
            raise
        return self

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

    def _stop(self) -> None:
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()


def _exit_when_stdin_closes() -> None:
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.emulator``: the same options as ``harness emulator``."""
    p = argparse.ArgumentParser(prog="python -m harness.emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--profile", default="parity")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truth-log", type=Path, default=None)
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--exit-with-stdin", action="store_true", help=argparse.SUPPRESS)
    args: Any = p.parse_args(argv)
    if args.exit_with_stdin:
        _exit_when_stdin_closes()
    try:
        serve(args.host, args.port, args.profile, args.seed, args.truth_log, args.time_scale)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0
