"""The Ray tier: a real local Ray cluster — a head node plus a second node process on this
machine — collected only when ``HARNESS_RAY=1`` (``.ci/run`` sets it). Small on purpose: one CPU
and a small object store per node, no dashboard, so it starts on a loaded 2-core machine."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

#: per node: the runner's records are small, and 2 cores are shared with everything else
NODE: dict[str, Any] = {
    "num_cpus": 1,
    "object_store_memory": 80 * 2**20,
}


#: Ray's head leaves its Ray Client server's log files open (ray/_private/node.py,
#: start_ray_client_server); the warning comes whenever the collector finds them.
RAY_CLIENT_LOG_LEAK = (
    r"ignore:Exception ignored in. <_io\.FileIO name='[^']*ray_client_server\.(out|err)'"
    ":pytest.PytestUnraisableExceptionWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.ray)
            item.add_marker(pytest.mark.filterwarnings(RAY_CLIENT_LOG_LEAK))


class RayCluster(NamedTuple):
    #: the head's GCS address (``HOST:PORT``), as ``--ray-address`` takes it
    address: str
    #: the head's Ray Client address (``ray://127.0.0.1:PORT``)
    client: str


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A running 2-node Ray cluster."""
    import ray
    from ray.cluster_utils import Cluster

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        client_port = s.getsockname()[1]
    head = {**NODE, "include_dashboard": False, "ray_client_server_port": client_port}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        yield RayCluster(str(cluster.address), f"ray://127.0.0.1:{client_port}")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch, ray_cluster: RayCluster) -> Iterator[None]:
    """The suite's guard, widened to this machine's own address: Ray turns a loopback address
    into the node's interface address, where the cluster listens. The internet stays blocked."""
    own = {"127.0.0.1", "::1", "localhost", "", ray_cluster.address.rsplit(":", 1)[0]}
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
