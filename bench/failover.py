"""Benchmark: how fast Shoal heals. Node death to replacements Running, and scheduler failover.

Runs a real `shoal up --processes` (every role a process of its own, so one can be killed)
plus two extra node actors (three nodes on the local Podman) with default settings
(heartbeat 0.5 s, node lease 2 s, eviction delay 0.5 s, scheduler lease TTL 0.6 s). Each
node trial kills a node actor with SIGKILL and removes its containers (a host death), then
times until every replica is Running and Ready on the other nodes. Each scheduler trial
(three schedulers: the one of `shoal up` and two standbys) SIGKILLs the leading scheduler
and times until another one announces it leads (LeaderElected: lease taken and fences
moved, ready to write). Prints p50, p99 and max.

    .venv/bin/python bench/failover.py [--trials 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.bus import kv, subjects
from shoal.bus.kv import Bucket
from shoal.client import ShoalClient
from tests.harness import LocalShoal, deployment, documents, remove_node_containers, unique_name, wait_for

REPLICAS = 6


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, values: list[float]) -> None:
    print(
        f"{label:<34} n={len(values):<3} p50={statistics.median(values):.2f}s"
        f"  p99={percentile(values, 0.99):.2f}s  max={max(values):.2f}s",
        flush=True,
    )


async def ready_on(client: ShoalClient, app: str, nodes: set[str]) -> bool:
    pods = await client.pods()
    statuses = await client.pod_statuses()
    mine = [p for p in pods.values() if p.metadata.labels.get("app") == app and not p.terminating]
    ready = [
        p
        for p in mine
        if (s := statuses.get(p.key)) and s.uid == p.metadata.uid and s.ready and p.node_name in nodes
    ]
    return len(mine) == REPLICAS and len(ready) == REPLICAS


async def node_trial(
    shoal: LocalShoal, client: ShoalClient, all_nodes: set[str], victim: str, app: str
) -> float:
    async def nothing_left() -> bool:
        return not await client.pods()

    async def victim_back() -> bool:
        node = (await client.nodes()).get(victim)
        return node is not None and node.started_at > killed_at and victim in await client.ready_nodes()

    async def all_ready() -> bool:
        return all_nodes <= await client.ready_nodes()

    await wait_for(nothing_left, timeout=60, what="a clean slate")
    await wait_for(all_ready, timeout=60, what="every node Ready")
    await client.apply(documents(deployment(app, replicas=REPLICAS)))
    await wait_for(lambda: ready_on(client, app, all_nodes), timeout=60, what="pods running")
    started, killed_at = time.monotonic(), time.time()
    shoal.kill_role(victim)
    remove_node_containers(victim)
    survivors = all_nodes - {victim}
    await wait_for(lambda: ready_on(client, app, survivors), timeout=60, interval=0.02, what="heal")
    elapsed = time.monotonic() - started
    shoal.start_node(victim)
    await client.delete(documents=documents(deployment(app)))
    await wait_for(victim_back, timeout=30, what="the node back")
    return elapsed


async def node_trials(shoal: LocalShoal, client: ShoalClient, extra: list[str], trials: int) -> list[float]:
    times = []
    for trial in range(trials):
        victim = extra[trial % len(extra)]
        times.append(await node_trial(shoal, client, {shoal.node, *extra}, victim, f"heal{trial}"))
        print(f"  node trial {trial + 1}: {times[-1]:.2f}s", flush=True)
    return times


async def scheduler_trials(shoal: LocalShoal, client: ShoalClient, trials: int) -> list[float]:
    leases = await Bucket.open(client.js, kv.LEASES)
    times = []
    for trial in range(trials):
        # Two standbys, so a warm one is there even while the last victim is still restarting.
        for standby in ("standby-1", "standby-2"):
            if standby not in shoal.roles or shoal.roles[standby].poll() is not None:
                shoal.roles.pop(standby, None)
                shoal.start_role(standby, "scheduler")
        await asyncio.sleep(4.0)
        entry = await leases.get("scheduler")
        assert entry is not None
        holder = entry.value.holder
        elected = asyncio.Event()

        async def announced(msg, holder: str = holder, elected: asyncio.Event = elected) -> None:  # type: ignore[no-untyped-def]
            if msg.subject.split(".")[-2] != holder:
                elected.set()

        subscription = await client.nc.subscribe(
            subjects.event("Scheduler", "", "*", "LeaderElected"), cb=announced
        )
        started = time.monotonic()
        os.kill(int(holder.rsplit("-", 1)[1]), signal.SIGKILL)
        await asyncio.wait_for(elected.wait(), 30)
        times.append(time.monotonic() - started)
        await subscription.unsubscribe()
        print(f"  scheduler trial {trial + 1}: {times[-1]:.2f}s", flush=True)
    return times


async def main(trials: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-failover-"))
    shoal = LocalShoal(root, node=unique_name("fo"), extra_args=["--processes"])
    shoal.start()
    extra = [f"{shoal.node}-b", f"{shoal.node}-c"]
    try:
        for name in extra:
            shoal.start_node(name)
        async with await shoal.connect() as client:
            node_times = await node_trials(shoal, client, extra, trials)
            scheduler_times = await scheduler_trials(shoal, client, trials)
        print()
        report("node death -> pods Running elsewhere", node_times)
        report("scheduler leader killed -> new leader acting", scheduler_times)
    finally:
        shoal.stop()
        for name in [shoal.node, *extra]:
            remove_node_containers(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10)
    asyncio.run(main(parser.parse_args().trials))
