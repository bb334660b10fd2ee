"""`shoal credentials init` and `shoal nats`: a cluster of nats-servers laid out by hand (as
compose/ lays it out), each server its own process, the roles joining it with their own
identities."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.bus import kv
from shoal.cli.up import free_ports
from shoal.client import ShoalClient
from shoal.errors import ShoalError
from shoal.security.access import Access
from tests.harness import deployment, documents, stop_processes, wait_for

pytestmark = pytest.mark.nats

SERVERS = ("nats-a", "nats-b", "nats-c")


def shoal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shoal", *args], capture_output=True, text=True, timeout=60, check=False
    )


class HandLaidCluster:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.processes: list[subprocess.Popen[bytes]] = []
        ports = free_ports(6)
        self.client_ports, self.route_ports = ports[:3], ports[3:]
        self.url = ",".join(f"tls://127.0.0.1:{port}" for port in self.client_ports)

    def credentials(self, identity: str) -> Path:
        return self.data / "security" / "credentials" / f"{identity}.yaml"

    def start(self, *args: str, log: str) -> None:
        with (self.data / f"{log}.log").open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "shoal", *args], stdout=out, stderr=subprocess.STDOUT
            )
        self.processes.append(process)

    def stop(self) -> None:
        stop_processes(self.processes, grace=10)


@pytest.fixture
def hand_laid(tmp_path: Path) -> Iterator[HandLaidCluster]:
    cluster = HandLaidCluster(tmp_path / "data")
    init = ["credentials", "init", "--data-dir", str(cluster.data), "--node", "edge-1"]
    for name in SERVERS:
        init += ["--server", name]
    made = shoal(*init)
    assert made.returncode == 0, made.stderr
    routes = [f"--route=nats://127.0.0.1:{port}" for port in cluster.route_ports]
    try:
        for name, port, route_port in zip(SERVERS, cluster.client_ports, cluster.route_ports, strict=True):
            cluster.start(
                "nats", f"--name={name}", f"--data-dir={cluster.data}", "--host=127.0.0.1",
                f"--port={port}", f"--cluster-port={route_port}", *routes, log=name,
            )  # fmt: skip
        yield cluster
    finally:
        cluster.stop()


async def test_three_servers_from_credentials_init_take_roles_and_keep_state_on_three(
    hand_laid: HandLaidCluster,
) -> None:
    ca = hand_laid.data / "security" / "ca.pem"
    hand_laid.start(
        "api", "--server", hand_laid.url, "--credentials", str(hand_laid.credentials("api")),
        "--tls-ca", str(ca), "--js-replicas", "3",
        "--secret-keys", str(hand_laid.data / "secret-keys.yaml"), log="api",
    )  # fmt: skip
    admin = Access(hand_laid.credentials("admin"), ca)

    async def applied() -> bool:
        # Until the servers have formed their cluster and the API has made its buckets, the
        # apply is refused; then it is acknowledged.
        try:
            async with await ShoalClient.connect(hand_laid.url, access=admin) as client:
                await client.apply(documents(deployment("by-hand")))
            return True
        except ShoalError:
            return False

    await wait_for(applied, timeout=90, interval=0.5, what="an apply acknowledged by the API")
    async with await ShoalClient.connect(hand_laid.url, access=admin) as client:
        assert "default.by-hand" in await client.deployments()
        info = await client.js.stream_info(f"KV_{kv.DEPLOYMENTS.name}")
        assert info.config.num_replicas == 3
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2


def test_a_server_without_its_certificate_says_what_is_missing(tmp_path: Path) -> None:
    result = shoal("nats", "--name", "lonely", "--data-dir", str(tmp_path), "--port", "0")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert (
        "lonely" in lines[0] and "ca.pem" in lines[0] and "shoal credentials init --server lonely" in lines[0]
    )
    assert not (tmp_path / "nats-lonely").exists()


def test_set_context_adds_a_cluster_without_switching_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = tmp_path / "context.yaml"
    monkeypatch.setenv("SHOAL_CONTEXT", str(context))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shoal", "config", *args],
            capture_output=True, text=True, timeout=30, check=False, env=dict(os.environ),
        )  # fmt: skip

    refused = run("set-context", "far")
    assert refused.returncode != 0 and "--server is needed" in refused.stderr
    assert not context.exists()
    assert run("set-context", "far", "--server", "tls://10.0.0.1:4222", "--tls-ca", "ca.pem").returncode == 0
    assert run("set-context", "near", "--server", "tls://127.0.0.1:4222").returncode == 0
    assert run("set-context", "far", "--credentials", "admin.yaml").returncode == 0

    from shoal.cli.context import read_contexts

    current, contexts = read_contexts()
    assert current == ""
    assert contexts["far"] == {
        "server": "tls://10.0.0.1:4222",
        "ca": str((Path.cwd() / "ca.pem").resolve()),
        "credentials": str((Path.cwd() / "admin.yaml").resolve()),
    }
    assert contexts["near"] == {"server": "tls://127.0.0.1:4222"}
    assert run("use-context", "far").returncode == 0
    assert read_contexts()[0] == "far"
