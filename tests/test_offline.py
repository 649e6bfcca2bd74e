"""The test environment itself: offline and credential-free."""

from __future__ import annotations

import os
import socket

import pytest


def test_no_openai_key_in_environment() -> None:
    assert not any(name.startswith("OPENAI_") and "KEY" in name for name in os.environ)


def test_non_loopback_connection_is_blocked() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(OSError, match="network blocked"):
        sock.connect(("192.0.2.1", 443))  # TEST-NET-1, never routed
    sock.close()


def test_loopback_is_allowed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket()
    client.connect(server.getsockname())
    client.close()
    server.close()
