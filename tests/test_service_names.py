"""Services by name, for real: cluster IPs in the kernel (nftables) and DNS in every pod,
on a `shoal up` with two nodes on the local Podman."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from dnslib import QTYPE, RR, A, DNSRecord

from shoal.client import ShoalClient
from shoal.models.api import ObjectRef
from shoal.models.pod import PodStatus
from tests.harness import TEST_IMAGE, UDP_IMAGE, LocalShoal, documents, node_containers, wait_for


class Upstream:
    """A resolver standing in for the host's: every A query gets 192.0.2.55."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            query = DNSRecord.parse(data)
            self.asked.append(str(query.q.qname))
            reply = query.reply()
            if query.q.qtype == QTYPE.A:
                reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("192.0.2.55"), ttl=60))
            self.sock.sendto(reply.pack(), addr)

    def close(self) -> None:
        self.sock.close()


UPSTREAM = Upstream()
SHOAL_UP_ARGS = [f"--node-option=--dns-upstream=127.0.0.1:{UPSTREAM.port}"]


@pytest.fixture(scope="module", autouse=True)
def _upstream() -> Iterator[None]:
    try:
        yield
    finally:
        UPSTREAM.close()


def app(
    name: str,
    replicas: int,
    command: list[str],
    port: int | None = None,
    grace: int = 1,
    image: str = TEST_IMAGE,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, "command": command}
    if port:
        container["ports"] = [{"containerPort": port}]
        container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": grace, "containers": [container]},
            },
        },
    }


def service(name: str, port: int, target: int, app: str | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app or name}, "ports": [{"port": port, "targetPort": target}], **spec},
    }


# Each backend pod answers with its own name, so calls can be told apart.
BACKEND = app(
    "backend",
    2,
    ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"],
    8080,
    # A stopping pod first waits for every service to drop it, for half its grace period at
    # most: with a 1 s grace, 0.5 s was now and then too short on a loaded 2-core machine.
    grace=4,
)
CLIENT = app("client", 1, ["sleep", "3600"])
UDP_ECHO = app("echo", 2, ["udp-echo", "9053"], image=UDP_IMAGE)
UDP_ECHO["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 9053, "protocol": "UDP"}]
UDP_SERVICE = service("echo", 53, 9053)
UDP_SERVICE["spec"]["ports"][0]["protocol"] = "UDP"
OBJECTS = [
    BACKEND,
    service("backend", 80, 8080),
    service("backend-pods", 80, 8080, app="backend", clusterIP="None"),
    CLIENT,
    service("nobody", 80, 8080),
    service("sticky", 80, 8080, app="backend", sessionAffinity="ClientIP"),
    UDP_ECHO,
    UDP_SERVICE,
]


def in_pod(container_id: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "exec", container_id, "sh", "-c", script], capture_output=True, text=True, timeout=30
    )


def http(container_id: str, target: str) -> str:
    """One request from inside the pod (busybox nc: its wget is not usable here)."""
    done = in_pod(container_id, f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {target} | tail -1")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def ready_pods(client: ShoalClient, app_name: str, count: int) -> list[PodStatus]:
    async def ready() -> list[PodStatus] | None:
        found = []
        for pod in (await client.pods()).values():
            if pod.metadata.labels.get("app") == app_name and not pod.terminating:
                _, status = await client.pod(pod.metadata.namespace, pod.metadata.name)
                if status is not None and status.ready:
                    found.append(status)
        return found if len(found) == count else None

    return await wait_for(ready, timeout=60, what=f"{count} Ready pods of {app_name}")


@pytest.fixture(scope="module")
def deployed(cluster: LocalShoal) -> Iterator[dict[str, Any]]:
    """The objects above, applied once for the module, on two nodes."""
    second = f"{cluster.node}-b"
    # Nodes of one host share its DNS port: the second is set up as the first.
    cluster.start_node(second, f"--dns-upstream=127.0.0.1:{UPSTREAM.port}")
    text = yaml.safe_dump_all(OBJECTS)
    try:
        yield asyncio.run(_deploy(cluster, second, text))
    finally:
        asyncio.run(_undeploy(cluster, text))


async def _deploy(cluster: LocalShoal, second: str, text: str) -> dict[str, Any]:
    async with await cluster.connect() as client:
        await wait_for(lambda: _has_nodes(client, {cluster.node, second}), timeout=60, what="two Ready nodes")
        await client.apply(documents(text))
        backends = await ready_pods(client, "backend", 2)
        await ready_pods(client, "echo", 2)
        [client_pod] = await ready_pods(client, "client", 1)
        services = await client.services()
        [client_container] = node_containers(client_pod.node_name, **{"shoal.pod": client_pod.name})

        async def endpoints_ready() -> bool:
            found = (await client.endpoints()).get("default.backend")
            return found is not None and sum(len(p.targets) for p in found.ports) == 2

        await wait_for(endpoints_ready, timeout=30, what="two endpoints of backend")
        return {
            "client": client_container["Id"],
            "backends": backends,
            "ip": services["default.backend"].spec.cluster_ip,
            "nobody": services["default.nobody"].spec.cluster_ip,
            "echo": services["default.echo"].spec.cluster_ip,
            "nodes": {cluster.node, second},
        }


async def _undeploy(cluster: LocalShoal, text: str) -> None:
    async with await cluster.connect() as client:
        await client.delete(documents=documents(text))


async def _has_nodes(client: ShoalClient, names: set[str]) -> bool:
    return names <= await client.ready_nodes()


async def test_a_service_is_called_by_name_from_a_pod(deployed: dict[str, Any]) -> None:
    client, ip = deployed["client"], deployed["ip"]
    assert ip.startswith("10.96.")
    names = {b.name for b in deployed["backends"]}
    assert {b.node_name for b in deployed["backends"]} == deployed["nodes"]  # one on each node
    for target in ("backend 80", "backend.default 80", "backend.default.svc.cluster.local 80", f"{ip} 80"):
        assert await asyncio.to_thread(http, client, target) in names, target
    answered = {await asyncio.to_thread(http, client, "backend 80") for _ in range(30)}
    assert answered == names  # calls spread over both replicas


async def test_client_ip_affinity_keeps_a_client_on_one_pod(deployed: dict[str, Any]) -> None:
    client = deployed["client"]
    answered = {await asyncio.to_thread(http, client, "sticky 80") for _ in range(20)}
    assert len(answered) == 1 and answered <= {b.name for b in deployed["backends"]}


async def test_pods_resolve_as_on_kubernetes(deployed: dict[str, Any]) -> None:
    client = deployed["client"]
    conf = (await asyncio.to_thread(in_pod, client, "cat /etc/resolv.conf")).stdout
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in conf
    assert "options ndots:5" in conf
    looked_up = await asyncio.to_thread(in_pod, client, "nslookup backend.default.svc.cluster.local")
    assert deployed["ip"] in looked_up.stdout, looked_up.stdout + looked_up.stderr
    headless = await asyncio.to_thread(in_pod, client, "nslookup backend-pods.default.svc.cluster.local")
    for pod in deployed["backends"]:
        assert pod.pod_ip in headless.stdout, headless.stdout
    missing = await asyncio.to_thread(in_pod, client, "nslookup nothing.default.svc.cluster.local")
    assert missing.returncode != 0
    # busybox's nslookup stops at the first search domain's NXDOMAIN: ask for the absolute name.
    outside = await asyncio.to_thread(in_pod, client, "nslookup example.org.")
    assert "192.0.2.55" in outside.stdout, outside.stdout + outside.stderr
    assert any(name.startswith("example.org") for name in UPSTREAM.asked)


async def test_the_host_reaches_cluster_ips_and_a_service_without_endpoints_refuses(
    deployed: dict[str, Any],
) -> None:
    names = {b.name for b in deployed["backends"]}
    request = b"GET / HTTP/1.0\r\n\r\n"

    def call(address: str) -> str:
        with socket.create_connection((address, 80), timeout=3) as conn:
            conn.sendall(request)
            received = b""
            while chunk := conn.recv(4096):
                received += chunk
            return received.decode().strip().rsplit("\n", 1)[-1].strip()

    assert await asyncio.to_thread(call, deployed["ip"]) in names
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(call, deployed["nobody"])


async def test_a_rolling_update_behind_the_cluster_ip_fails_no_request(
    cluster: LocalShoal, deployed: dict[str, Any]
) -> None:
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}
    errors: list[str] = []
    slowest = [0.0]

    def load() -> None:
        while not stop.is_set():
            began = time.monotonic()
            try:
                # A client's patience, not a latency bound: under load a connection now and then
                # waits a SYN retransmit or two (1-3 s) during the rollout, and still succeeds.
                with socket.create_connection((deployed["ip"], 80), timeout=10) as conn:
                    conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    received = b""
                    while chunk := conn.recv(4096):
                        received += chunk
                ok = received.startswith(b"HTTP/1.") and b" 200 " in received.split(b"\r\n", 1)[0]
            except OSError as err:
                ok = False
                errors.append(repr(err))
            counts["ok" if ok else "failed"] += 1
            slowest[0] = max(slowest[0], time.monotonic() - began)
            stop.wait(0.02)  # a steady load, not a flood of new connections

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        async with await cluster.connect() as client:
            before = {b.name for b in deployed["backends"]}
            await asyncio.to_thread(cluster.shoal, "rollout", "restart", "deployment/backend", check=True)

            async def replaced() -> bool:
                pods = [
                    p for p in (await client.pods()).values() if p.metadata.labels.get("app") == "backend"
                ]
                names = {p.metadata.name for p in pods}
                return len(pods) == 2 and not names & before

            await wait_for(replaced, timeout=90, what="both backends replaced")
            await ready_pods(client, "backend", 2)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 10)
    # The load ran all through the rollout (a few seconds; the slowest request says whether
    # one waited out SYN retransmits).
    assert counts["ok"] >= 20, (counts, f"slowest request {slowest[0]:.1f}s")
    # Known and open: on a loaded host, about one connection in a thousand made during the
    # rollout hangs (every SYN unanswered) and times out; the cause is not found yet. More than
    # that is a regression; none at all is the goal.
    assert counts["failed"] <= max(1, counts["ok"] // 500), (counts, errors[:5])


async def test_a_udp_service_answers_and_forgets_an_endpoint_that_went(
    cluster: LocalShoal, deployed: dict[str, Any]
) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)

    def ask(payload: str) -> str:
        """The answering pod's name, or "" when no answer came."""
        sock.sendto(payload.encode(), (deployed["echo"], 53))
        try:
            data, _ = sock.recvfrom(2048)
        except TimeoutError:
            return ""
        pod, _, echoed = data.decode().partition(" ")
        assert echoed == payload
        return pod

    try:
        async with await cluster.connect() as client:
            pods = {s.name for s in await ready_pods(client, "echo", 2)}
            first = await asyncio.to_thread(ask, "one")
            assert first in pods
            # One socket, one translation (conntrack): the same pod answers again.
            assert await asyncio.to_thread(ask, "two") == first
            # That pod goes: the same socket's next datagrams reach another pod, at once,
            # not after the kernel's UDP translation would have timed out (30-120 s).
            await client.delete(refs=[ObjectRef(kind="Pod", namespace="default", name=first)])
            gone = time.monotonic()

            async def another() -> str:
                answer = await asyncio.to_thread(ask, "three")
                return answer if answer and answer != first else ""

            await wait_for(another, timeout=15, interval=0.2, what="another echo pod to answer")
            print(f"another pod answered {time.monotonic() - gone:.1f}s after the delete")
    finally:
        sock.close()
