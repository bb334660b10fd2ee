"""Benchmark: time from `apply` to N pods Running, beside a plain loop of `podman run -d`.

Runs a real `shoal up` (nats-server, control plane, one node on the local Podman) in a
temporary data dir, then for each N applies a deployment of N busybox pods and times until
the node reports all N Running; in the same run, times a loop of N `podman run -d` of the
same image and command. Prints the median of several rounds and the ratio.

    .venv/bin/python bench/apply_to_running.py [--sizes 1 10 50] [--rounds 3] [--compare-security]

``shoal up`` is secure by default (TLS, an identity per role); ``--compare-security`` runs the
same rounds on a ``shoal up --insecure`` cluster afterwards and prints both and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.client import ShoalClient
from tests.harness import (
    LocalShoal,
    deployment,
    documents,
    node_containers,
    remove_node_containers,
    unique_name,
    wait_for,
)

COMMAND = ["sleep", "3600"]


async def shoal_round(client: ShoalClient, node: str, n: int) -> float:
    name = unique_name("bench")
    manifest = deployment(name, replicas=n, command=COMMAND, cpu="10m", memory="4Mi", grace=0)
    started = time.perf_counter()
    await client.apply(documents(manifest))
    while True:
        statuses = await client.pod_statuses()
        running = sum(1 for s in statuses.values() if s.name.startswith(name) and s.phase == "Running")
        if running >= n:
            elapsed = time.perf_counter() - started
            break
        await asyncio.sleep(0.02)
    await client.delete(documents=documents(manifest))

    async def cleaned_up() -> bool:
        pods = await client.pods()
        return not node_containers(node, **{"shoal.deployment": name}) and not any(
            k.startswith(f"default.{name}") for k in pods
        )

    await wait_for(cleaned_up, timeout=120, what="the benchmark's pods removed")
    return elapsed


def podman_round(n: int, conf: Path) -> float:
    env = {"CONTAINERS_CONF": str(conf), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    label = unique_name("plain")
    started = time.perf_counter()
    for i in range(n):
        argv = ["podman", "run", "-d", "--name", f"{label}-{i}", "--label", f"bench={label}"]
        subprocess.run(
            [*argv, "localhost/busybox:latest", *COMMAND], check=True, capture_output=True, env=env
        )
    elapsed = time.perf_counter() - started
    ids = subprocess.run(
        ["podman", "ps", "-aq", "--filter", f"label=bench={label}"], capture_output=True, text=True
    ).stdout.split()
    if ids:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *ids], capture_output=True, env=env, check=False)
    return elapsed


Times = dict[int, tuple[list[float], list[float]]]


async def measure(sizes: list[int], rounds: int, extra: list[str]) -> Times:
    """Rounds of apply->Running on a fresh `shoal up` (with ``extra`` options), each beside a
    `podman run -d` loop: for each N, the Shoal times and the Podman times."""
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-"))
    shoal = LocalShoal(root, node=unique_name("bench"), extra_args=extra)
    shoal.start()
    conf = shoal.data_dir / "nodes" / shoal.node / "containers.conf"
    found: Times = {}
    try:
        async with await shoal.connect() as client:
            await shoal_round(client, shoal.node, 1)  # warm-up: image, first container
            for n in sizes:
                shoal_times, plain_times = [], []
                for _ in range(rounds):
                    shoal_times.append(await shoal_round(client, shoal.node, n))
                    plain_times.append(await asyncio.to_thread(podman_round, n, conf))
                found[n] = (shoal_times, plain_times)
    finally:
        shoal.stop()
        remove_node_containers(shoal.node)
    return found


async def main(sizes: list[int], rounds: int, compare_security: bool) -> None:
    secure = await measure(sizes, rounds, [])
    if not compare_security:
        print(f"{'N':>4}  {'shoal apply->Running':>21}  {'podman run -d loop':>19}  {'ratio':>6}")
        for n, (shoal_times, plain_times) in secure.items():
            s, p = statistics.median(shoal_times), statistics.median(plain_times)
            print(f"{n:>4}  {s:>20.2f}s  {p:>18.2f}s  {s / p:>6.2f}", flush=True)
        return
    plain = await measure(sizes, rounds, ["--insecure"])
    print(f"{'N':>4}  {'TLS+auth':>9}  {'insecure':>9}  {'ratio':>6}  {'podman (each run)':>18}")
    for n in sizes:
        s, i = statistics.median(secure[n][0]), statistics.median(plain[n][0])
        anchors = f"{statistics.median(secure[n][1]):.2f}/{statistics.median(plain[n][1]):.2f}s"
        print(f"{n:>4}  {s:>8.2f}s  {i:>8.2f}s  {s / i:>6.2f}  {anchors:>18}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--compare-security",
        action="store_true",
        help="also on a `shoal up --insecure` cluster (plaintext, no users), and print the ratio",
    )
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.rounds, args.compare_security))
