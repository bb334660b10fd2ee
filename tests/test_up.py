"""`shoal up` as a whole: stopping cleanly, and coming back with everything on the same data dir."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from tests.harness import LocalShoal, node_containers, wait_for
from tests.test_cluster import wait_running

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello.yaml"


def port_open(url: str) -> bool:
    host, port = url.split("://", 1)[-1].rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


async def test_up_stops_cleanly_and_comes_back_with_its_deployments(fresh_cluster: LocalShoal) -> None:
    await asyncio.to_thread(fresh_cluster.start, manifests=[EXAMPLE])
    async with await fresh_cluster.connect() as client:
        first = await wait_running(client, "hello", 3)
        uid = (await client.deployments())["default.hello"].metadata.uid
    assert len(node_containers(fresh_cluster.node)) == 3

    assert await asyncio.to_thread(fresh_cluster.stop) == 0
    assert node_containers(fresh_cluster.node) == []  # it stopped the pods it ran
    assert not port_open(fresh_cluster.url)  # and its nats-server

    await asyncio.to_thread(fresh_cluster.start)
    async with await fresh_cluster.connect() as client:
        assert (await client.deployments())["default.hello"].metadata.uid == uid
        again = await wait_running(client, "hello", 3)
        assert {p.metadata.name for p, _ in again} == {p.metadata.name for p, _ in first}

        async def containers_back() -> bool:
            return len(node_containers(fresh_cluster.node)) == 3

        await wait_for(containers_back, what="3 containers after the restart")
