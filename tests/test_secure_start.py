"""Roles started in any order on a secure nats-server (TLS, an identity per role), as the README
starts them by hand: a node that comes up before the control plane may not make the buckets
itself, and waits for them instead of failing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.bus.nats_server import NatsServer, NatsServerConfig, ServerTLS
from shoal.client import ShoalClient
from shoal.security.access import Access
from shoal.security.authority import Authority
from tests.harness import stop_processes, unique_name, wait_for

pytestmark = pytest.mark.nats


class Secured:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.authority = Authority(root)
        config = NatsServerConfig(store_dir=root / "js", port=0)
        cert, key = self.authority.server_cert("shoal", ["127.0.0.1", "localhost"])
        config.tls = ServerTLS(cert=cert, key=key, ca=self.authority.ca)
        self.node = unique_name("early")
        self.accesses = {
            role: Access(self.authority.issue(role, name), self.authority.ca)
            for role, name in (("admin", ""), ("api", ""), ("fleet", ""))
        }
        config.authorization = self.authority.authorization
        self.server = NatsServer(config, run_dir=root)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start_role(self, role: str, *argv: str) -> Path:
        access = self.accesses[role]
        log = self.root / f"{role}.log"
        with log.open("w") as out:
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "shoal",
                        *argv,
                        "--server",
                        self.server.url,
                        "--credentials",
                        str(access.credentials),
                        "--tls-ca",
                        str(access.ca),
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        return log

    def stop(self) -> None:
        stop_processes(self.processes)
        self.server.stop()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    cluster = Secured(tmp_path)
    cluster.server.start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def test_a_node_started_before_the_control_plane_waits_for_it(secured: Secured) -> None:
    # A hollow node (in memory, as the scale benchmarks run them), with the fleet's identity.
    node_log = secured.start_role("fleet", "node", "--runtime", "hollow", "--name", secured.node)
    await wait_for(
        lambda: "waiting for the control plane" in node_log.read_text(),
        timeout=30,
        what="the node to wait for buckets it may not make",
    )
    assert secured.processes[0].poll() is None, node_log.read_text()  # still running
    secured.start_role("api", "api")
    async with await ShoalClient.connect(secured.server.url, access=secured.accesses["admin"]) as client:

        async def registered() -> bool:
            return f"{secured.node}-0001" in await client.nodes()

        await wait_for(
            registered, timeout=60, what=f"node {secured.node} registered once the API made the buckets"
        )
    assert "could not start" not in node_log.read_text()
