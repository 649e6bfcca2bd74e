"""The real-server tier: llama.cpp's llama-server (DESIGN §9), collected only when
``HARNESS_REALSERVER=1`` (``.ci/run`` sets it). Then a server that cannot be built or started is
a failure, never a skip."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "realserver.sh"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.realserver)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a running llama-server."""
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=3600
    )
    if started.returncode != 0:
        pytest.fail(f"llama-server did not start:\n{started.stderr[-3000:]}", pytrace=False)
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], timeout=60, check=False)


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """llama-server takes any key; the harness sends this one to a URL target."""
    monkeypatch.setenv("HARNESS_TARGET_API_KEY", "none")
