"""Hollow nodes against a real control plane: registration, scale, labels and taints."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.bus import kv
from shoal.bus.cache import KVCache
from shoal.bus.kv import Bucket
from shoal.bus.nats_server import NatsServer
from shoal.client import ShoalClient
from shoal.errors import ShoalError
from shoal.models.scheduling import Taint
from shoal.processes import die_with_parent
from tests.harness import deployment, documents, wait_for

NODES = 50


@pytest.fixture
def fleet(nats_server: NatsServer, tmp_path: Path) -> Iterator[str]:
    """API, scheduler and 50 hollow nodes in one process, on a nats-server of the test's own."""
    argvs = {
        "api": ["api"],
        "scheduler": ["scheduler"],
        "fleet": ["node", "--runtime", "hollow", "--count", str(NODES), "--name", "hollow", "--cpu", "2",
                  "--memory", "4Gi", "--heartbeat", "2", "--lease", "6", "--workers", "2"],
    }  # fmt: skip
    processes = []
    for name, argv in argvs.items():
        with (tmp_path / f"{name}.log").open("w") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "shoal", *argv, "--server", nats_server.url],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent,
                )
            )
    try:
        yield nats_server.url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


async def all_nodes(client: ShoalClient) -> bool:
    """Every hollow node Ready, and the API answering (it may start after the fleet)."""
    if len(await client.ready_nodes()) != NODES:
        return False
    try:
        await client.apply([])
    except ShoalError:
        return False
    return True


async def test_500_pods_on_50_hollow_nodes_converge(fleet: str) -> None:
    async with await ShoalClient.connect(fleet) as client:
        await wait_for(lambda: all_nodes(client), timeout=60, what=f"{NODES} hollow nodes")
        running: dict[str, str] = {}
        done = asyncio.Event()

        def changed(key, old, new) -> None:  # type: ignore[no-untyped-def]
            if new is not None and new.value.phase == "Running" and new.value.ready:
                running[key] = new.value.node_name
                if len(running) == 500:
                    done.set()

        watch = KVCache(await Bucket.open(client.js, kv.POD_STATUS), changed)
        task = asyncio.create_task(watch.run())
        try:
            await client.apply(documents(deployment("wide", replicas=500, cpu="100m", memory="64Mi")))
            await asyncio.wait_for(done.wait(), 60)
        finally:
            task.cancel()
        per_node = Counter(running.values())
        assert len(per_node) == NODES and set(per_node.values()) == {10}  # spread evenly

        async def deployment_ready() -> bool:
            status = (await client.deployment_statuses()).get("default.wide")
            return status is not None and status.ready_replicas == 500

        await wait_for(deployment_ready, timeout=30, what="the deployment's status to count 500 ready")
        # 2 CPUs a node and 100m a pod: 20 pods a node, so 1000 of 1500 fit and 500 wait
        await client.scale("default", "wide", 1500)

        async def settled() -> tuple[int, int] | None:
            pods = await client.pods()
            bound = sum(1 for p in pods.values() if p.node_name)
            waiting = sum(
                1 for p in pods.values() if p.scheduling and "50 Insufficient cpu" in p.scheduling.message
            )
            return (bound, waiting) if bound + waiting == 1500 else None

        assert await wait_for(settled, timeout=60, what="1000 pods placed and 500 pending") == (1000, 500)


async def test_labels_and_taints_steer_pods(fleet: str) -> None:
    async with await ShoalClient.connect(fleet) as client:
        await wait_for(lambda: all_nodes(client), timeout=60, what=f"{NODES} hollow nodes")
        names = sorted(await client.nodes())
        gold, tainted = names[:3], names[3:]
        for name in gold:
            await client.update_node(name, labels={"tier": "gold"})
        specs = await client.node_specs()
        assert all((specs[name].labels or {})["tier"] == "gold" for name in gold)
        assert (specs[gold[0]].labels or {})["kubernetes.io/hostname"] == gold[0]  # registered labels kept
        manifest = deployment("picky", replicas=9).replace(
            "      containers:", "      nodeSelector:\n        tier: gold\n      containers:"
        )
        await client.apply(documents(manifest))

        async def placed() -> Counter[str] | None:
            pods = [p for p in (await client.pods()).values() if p.metadata.name.startswith("picky-")]
            bound = Counter(p.node_name for p in pods if p.node_name)
            return bound if sum(bound.values()) == 9 else None

        assert await wait_for(placed, timeout=30, what="9 picky pods placed") == Counter({n: 3 for n in gold})
        # a NoExecute taint on the gold nodes drives the pods out, and nowhere else fits them
        for name in gold:
            await client.update_node(name, add_taints=[Taint(key="maintenance", effect="NoExecute")])

        async def evicted() -> bool:
            pods = [p for p in (await client.pods()).values() if p.metadata.name.startswith("picky-")]
            return len(pods) == 9 and all(not p.node_name and p.scheduling for p in pods)

        await wait_for(evicted, timeout=30, what="pods evicted by the NoExecute taint, then Pending")
        pods = [p for p in (await client.pods()).values() if p.metadata.name.startswith("picky-")]
        assert "had untolerated taint" in pods[0].scheduling.message  # type: ignore[union-attr]
        assert tainted  # the other nodes were never used: they lack the label
