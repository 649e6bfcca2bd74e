"""The wire clock's sync and async sockets stamp the same events (one core, two thin twins).

The async pair times the harness's own client; the sync pair an application's ``openai.OpenAI``
under shadow capture. Fake sockets stand in for the network, so each stamp is checked alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import httpcore2
import pytest

from harness.transport.wire import CURRENT_RECORDER, SyncTimedBackend, TimedBackend, WireRecorder

#: when each fake TLS handshake finished (perf_counter_ns)
TLS_DONE_NS: list[int] = []


class _SyncSocket(httpcore2.NetworkStream):
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return b"" if self.written == [b"eof"] else b"HTTP/1.1 200 OK\r\n"

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written.append(buffer)

    def close(self) -> None:
        pass

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        TLS_DONE_NS.append(time.perf_counter_ns())
        return self


class _SyncNet(httpcore2.NetworkBackend):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        self.calls.append((host, port, timeout, local_address, socket_options))
        return _SyncSocket()


class _AsyncSocket(httpcore2.AsyncNetworkStream):
    def __init__(self) -> None:
        self.sync = _SyncSocket()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.sync.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.sync.write(buffer, timeout)

    async def aclose(self) -> None:
        pass

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
        TLS_DONE_NS.append(time.perf_counter_ns())
        return self


class _AsyncNet(httpcore2.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        self.calls.append((host, port, timeout, local_address, socket_options))
        return _AsyncSocket()


def _sync_session(rec: WireRecorder | None) -> list[tuple[Any, ...]]:
    net = _SyncNet()
    token = CURRENT_RECORDER.set(rec)
    try:
        stream = SyncTimedBackend(net).connect_tcp("api.example", 443, timeout=2.0)
        stream = stream.start_tls(None, server_hostname="api.example")
        stream.write(b"GET / HTTP/1.1\r\n\r\n")
        stream.write(b"more")
        assert stream.read(100) == b"HTTP/1.1 200 OK\r\n"
    finally:
        CURRENT_RECORDER.reset(token)
    return net.calls


def _async_session(rec: WireRecorder | None) -> list[tuple[Any, ...]]:
    net = _AsyncNet()

    async def session() -> None:
        token = CURRENT_RECORDER.set(rec)
        try:
            stream = await TimedBackend(net).connect_tcp("api.example", 443, timeout=2.0)
            stream = await stream.start_tls(None, server_hostname="api.example")
            await stream.write(b"GET / HTTP/1.1\r\n\r\n")
            await stream.write(b"more")
            assert await stream.read(100) == b"HTTP/1.1 200 OK\r\n"
        finally:
            CURRENT_RECORDER.reset(token)

    asyncio.run(session())
    return net.calls


@pytest.mark.parametrize("session", [_sync_session, _async_session], ids=["sync", "async"])
def test_twins_stamp_connect_tls_first_write_and_reads(session: Any) -> None:
    rec = WireRecorder()
    TLS_DONE_NS.clear()
    calls = session(rec)
    assert calls == [("api.example", 443, 2.0, None, None)]  # arguments pass untouched
    assert rec.connect_start_ns is not None and rec.connect_end_ns is not None
    assert rec.first_write_ns is not None
    # connection setup includes TLS: it ends after the handshake, before the first write
    assert rec.connect_start_ns <= TLS_DONE_NS[0] <= rec.connect_end_ns <= rec.first_write_ns
    assert [data for _, data in rec.reads] == [b"HTTP/1.1 200 OK\r\n"]
    assert rec.reads[0][0] >= rec.first_write_ns


@pytest.mark.parametrize("session", [_sync_session, _async_session], ids=["sync", "async"])
def test_twins_without_a_recorder_only_pass_through(session: Any) -> None:
    assert session(None) == [("api.example", 443, 2.0, None, None)]
