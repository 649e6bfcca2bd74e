"""The raw client's network backend (harness.transport.netio) against small local servers: TLS,
timeouts, refused and dropped connections, reuse of kept-alive connections, large bodies."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.transport.netio import HIGH_WATER, AsyncioBackend
from harness.transport.wire import CURRENT_RECORDER, TimedAsyncTransport, WireRecorder

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _response(body: bytes, extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n{extra}\r\n").encode() + body


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


@asynccontextmanager
async def _server(
    handler: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    tasks: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def _client(timeout_s: float = 5.0, verify: ssl.SSLContext | bool = True) -> httpx2.AsyncClient:
    transport = TimedAsyncTransport(network_backend=AsyncioBackend(), verify=verify)
    return httpx2.AsyncClient(transport=transport, timeout=timeout_s)


def _certificate(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: (server context, client context trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = tmp / "cert.pem"
    key_pem = tmp / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_pem, key_pem)
    return server, ssl.create_default_context(cafile=str(cert_pem))


async def _reply_each(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes = b"hello"
) -> None:
    try:
        while True:
            await _read_request(reader)
            writer.write(_response(body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def test_tls_requests_reuse_one_connection_and_verify_the_certificate(tmp_path: Path) -> None:
    server_ctx, client_ctx = _certificate(tmp_path)
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _reply_each(reader, writer, b"over tls")

    async def main() -> None:
        async with _server(handler, server_ctx) as port:
            async with _client(verify=client_ctx) as client:
                for _ in range(3):
                    r = await client.get(f"https://127.0.0.1:{port}/x")
                    assert (r.status_code, r.content) == (200, b"over tls")
            # the default trust store does not know this certificate: refused, clearly
            async with _client() as client:
                with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await client.get(f"https://127.0.0.1:{port}/x")

    asyncio.run(main())
    assert connections == 1  # three requests on one kept-alive connection


def test_read_timeout_connection_refused_and_a_dropped_connection() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(2)
        writer.close()

    async def dropping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with _server(silent) as port, _client(timeout_s=0.2) as client:
            with pytest.raises(httpx2.ReadTimeout):
                await client.get(f"http://127.0.0.1:{port}/")
        async with _server(dropping) as port, _client() as client:
            with pytest.raises(httpx2.RemoteProtocolError):
                await client.get(f"http://127.0.0.1:{port}/")
        async with _server(silent) as port:
            pass  # closed: nothing listens on the port any more
        async with _client() as client:
            with pytest.raises(httpx2.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")

    asyncio.run(main())


def test_a_kept_alive_connection_the_server_closed_is_replaced() -> None:
    connections = 0

    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _read_request(reader)
        writer.write(_response(b"ok"))  # keep-alive is implied, yet the server hangs up
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    async def main() -> None:
        async with _server(one_then_close) as port, _client() as client:
            for _ in range(3):
                r = await client.get(f"http://127.0.0.1:{port}/")
                assert r.content == b"ok"
                await asyncio.sleep(0.2)

    asyncio.run(main())
    assert connections == 3


def test_large_bodies_both_ways_and_the_wire_clock_sees_every_read() -> None:
    big = bytes(range(256)) * (3 * HIGH_WATER // 256)  # past the read buffer's high water

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
        writer.write(_response(body))
        await writer.drain()
        writer.close()

    async def main() -> WireRecorder:
        rec = WireRecorder()
        async with _server(echo) as port, _client() as client:
            token = CURRENT_RECORDER.set(rec)
            try:
                async with client.stream("POST", f"http://127.0.0.1:{port}/", content=big) as r:
                    received = b""
                    async for part in r.aiter_raw():
                        received += part
                        await asyncio.sleep(0)  # a slow reader
            finally:
                CURRENT_RECORDER.reset(token)
        assert received == big
        return rec

    rec = asyncio.run(main())
    assert rec.first_write_ns is not None and rec.connect_start_ns is not None
    assert sum(len(data) for _, data in rec.reads) > len(big)  # the body plus the head
