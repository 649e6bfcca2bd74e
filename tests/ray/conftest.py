"""The Ray tier: a real local Ray cluster — a head node plus a second node process on this
machine — collected only when ``HARNESS_RAY=1`` (``.ci/run`` sets it). Small on purpose: one CPU
and a small object store per node, no dashboard, so it starts on a loaded 2-core machine."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: per node: the runner's records are small, and 2 cores are shared with everything else
NODE: dict[str, Any] = {
    "num_cpus": 1,
    "object_store_memory": 80 * 2**20,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """Address (``127.0.0.1:PORT``) of a running 2-node Ray cluster."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        yield str(cluster.address)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch, ray_cluster: str) -> Iterator[None]:
    """The suite's guard, widened to this machine's own address: Ray turns a loopback address
    into the node's interface address, where the cluster listens. The internet stays blocked."""
    own = {"127.0.0.1", "::1", "localhost", "", ray_cluster.rsplit(":", 1)[0]}
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def allowed(address: object) -> bool:
        if not isinstance(address, tuple) or not address:
            return isinstance(address, str | bytes)  # an AF_UNIX path
        return str(address[0]) in own or str(address[0]).startswith("127.")

    def guarded_connect(self: socket.socket, address: object) -> object:
        if not allowed(address):
            raise OSError(f"network blocked in tests: {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    def guarded_connect_ex(self: socket.socket, address: object) -> int:
        if not allowed(address):
            raise OSError(f"network blocked in tests: {address!r}")
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield
