"""Benchmark: requests/s and latency through a service's cluster IP (the kernel path) and its
node port (the userspace proxy) versus straight to one pod, and DNS lookups.

Runs a real `shoal up`, deploys the httpd test image behind a service, and drives the three
targets with wrk (Debian's wrk package) in the same run, for 1 and 3 replicas and each
number of connections: `direct` is the first pod's IP and port, `cluster-ip` the service's
virtual IP (nftables DNAT to a random endpoint), `node-port` the node port on 127.0.0.1
(the userspace proxy). busybox httpd closes every connection after one answer, so each
request is a new connection: the per-connection cost is what this measures. Then times
DNS lookups of the service's name at the node's resolver (the address pods use, asked from
the host), and a rollout of 10 replicas with the default strategy (25% surge, 25%
unavailable).

    .venv/bin/python bench/proxy.py [--duration 10] [--connections 2,16]

``BENCH_UP_ARGS`` passes options to the cluster's ``shoal up``, for instance
``BENCH_UP_ARGS=--node-option=--metrics-interval=0`` to run without metrics sampling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from shoal.client import ShoalClient
from tests.harness import LocalShoal, documents, remove_node_containers, unique_name, wait_for


def manifest(replicas: int, strategy: dict | None = None) -> str:  # type: ignore[type-arg]
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "bench"}},
        "template": {
            "metadata": {"labels": {"app": "bench"}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "web",
                        "image": "localhost/shoal-web:v1",
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
                        "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}},
                    }
                ],
            },
        },
    }
    if strategy:
        spec["strategy"] = strategy
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"}, "spec": spec}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bench"},
        "spec": {"selector": {"app": "bench"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    return yaml.safe_dump_all([deployment, service])


def wrk(url: str, duration: int, connections: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms)."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rate, percentile("50"), percentile("99")


def probe(host: str, port: int, stop: threading.Event) -> list[float]:
    """Whole-request times (connect included) of requests sent one by one while wrk runs.

    wrk times a request from its write, so a connection that waits for a retransmitted SYN
    counts against the proxy (whose upstream connect follows the write) but not against the
    direct path (whose connect precedes it); these samples count both the same way.
    """
    times = []
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
                while sock.recv(65536):
                    pass
        except OSError:
            continue
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure(
    url: str, host: str, port: int, duration: int, connections: int
) -> tuple[float, float, float, float]:
    """(requests/s, p50 ms, p99 ms) from wrk, and the p99 of whole-request probes alongside."""
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        probes = pool.submit(probe, host, port, stop)
        try:
            rate, p50, p99 = wrk(url, duration, connections)
        finally:
            stop.set()
        samples = sorted(probes.result())
    whole = samples[min(len(samples) - 1, int(len(samples) * 0.99))] if samples else float("nan")
    return rate, p50, p99, whole


async def ready(client: ShoalClient, replicas: int) -> bool:
    status = (await client.deployment_statuses()).get("default.bench")
    endpoints = (await client.endpoints()).get("default.bench")
    return bool(
        status
        and status.ready_replicas == replicas
        and status.replicas == replicas
        and endpoints
        and len(endpoints.ready_pods) == replicas
    )


def dns_lookups(server: str, name: str, count: int) -> list[float]:
    """Milliseconds per A lookup of ``name`` at ``server``:53, one after another."""
    from dnslib import DNSRecord

    times = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for _ in range(count):
            query = DNSRecord.question(name).pack()
            started = time.perf_counter()
            sock.sendto(query, (server, 53))
            sock.recv(4096)
            times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


async def main(duration: int, connection_counts: list[int]) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-proxy-"))
    shoal = LocalShoal(root, node=unique_name("px"), extra_args=os.environ.get("BENCH_UP_ARGS", "").split())
    shoal.start()
    try:
        async with await shoal.connect() as client:
            print(
                f"{'replicas':>8} {'conns':>5}  {'target':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
                f" {'whole-request p99 ms':>21}"
            )
            for replicas in (1, 3):
                await client.apply(documents(manifest(replicas)))
                await wait_for(lambda r=replicas: ready(client, r), timeout=60, what="ready")
                endpoints = (await client.endpoints())["default.bench"]
                port = endpoints.ports[0]
                target = port.targets[0]
                cluster_ip = (await client.services())["default.bench"].spec.cluster_ip
                assert cluster_ip, "the service has no cluster IP"
                paths = {
                    "direct": (
                        f"http://{target.pod_ip}:{target.container_port}/",
                        target.pod_ip,
                        target.container_port,
                    ),
                    "cluster-ip": (f"http://{cluster_ip}/", cluster_ip, 80),
                    "node-port": (f"http://127.0.0.1:{port.node_port}/", "127.0.0.1", port.node_port),
                }
                for connections in connection_counts:
                    results = {}
                    for label, (url, host, number) in paths.items():
                        results[label] = await asyncio.to_thread(
                            measure, url, host, number, duration, connections
                        )
                        rate, p50, p99, whole = results[label]
                        print(
                            f"{replicas:>8} {connections:>5}  {label:<10} {rate:>9.0f} {p50:>8.2f}"
                            f" {p99:>8.2f} {whole:>21.2f}",
                            flush=True,
                        )
                    for label in ("cluster-ip", "node-port"):
                        share = results[label][0] / results["direct"][0]
                        added = results[label][2] - results["direct"][2]
                        added_whole = results[label][3] - results["direct"][3]
                        print(
                            f"{'':>8} {'':>5}  {label}/direct throughput {share:.0%},"
                            f" added p99 {added:+.2f} ms (wrk), {added_whole:+.2f} ms (whole requests)",
                            flush=True,
                        )
            gateway = "10.88.0.1"  # Podman's default bridge: where the node answers its pods
            lookups = await asyncio.to_thread(dns_lookups, gateway, "bench.default.svc.cluster.local", 2000)
            p50, p99 = lookups[len(lookups) // 2], lookups[int(len(lookups) * 0.99)]
            print(f"DNS at {gateway}:53, 2000 lookups: p50 {p50:.3f} ms, p99 {p99:.3f} ms", flush=True)
            await client.delete(documents=documents(manifest(1)))

            async def gone() -> bool:
                return not await client.pods()

            await wait_for(gone, timeout=60, what="pods gone")
            default_strategy = {"type": "RollingUpdate"}  # 25% surge, 25% unavailable
            await client.apply(documents(manifest(10, default_strategy)))
            await wait_for(lambda: ready(client, 10), timeout=120, what="10 ready")
            started = time.monotonic()
            await client.rollout("default", "bench", "set-image", images={"web": "localhost/shoal-web:v2"})

            async def rolled() -> bool:
                status = (await client.deployment_statuses()).get("default.bench")
                return bool(
                    status and status.revision == 2 and status.progressing_reason == "NewReplicaSetAvailable"
                )

            await wait_for(rolled, timeout=300, interval=0.05, what="rollout")
            print(f"rollout of 10 replicas (25%/25%): {time.monotonic() - started:.2f}s")
    finally:
        shoal.stop()
        remove_node_containers(shoal.node)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="2,16", help="comma-separated connection counts")
    args = parser.parse_args()
    asyncio.run(main(args.duration, [int(c) for c in args.connections.split(",")]))
