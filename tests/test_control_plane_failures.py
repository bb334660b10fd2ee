"""The control plane under failure: the scheduler leader killed, nats-server killed mid-apply."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from shoal.client import ShoalClient
from shoal.errors import ShoalError
from shoal.models.node import LeaseRecord
from tests.harness import (
    ControlPlaneWatch,
    LocalShoal,
    deployment,
    documents,
    output,
    scheduler_leader,
    wait_for,
)
from tests.test_cluster import wait_running

# Killing one role's process is the fault under test: each role runs as a process of its own.
SHOAL_UP_ARGS = ["--processes"]


async def test_killing_the_scheduler_leader_hands_over_without_extra_pods(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    cluster.start_role("standby-scheduler", "scheduler")
    manifest = deployment("steady", replicas=3)
    await client.apply(documents(manifest))
    await wait_running(client, "steady", 3)
    first = await wait_for(lambda: scheduler_leader(client), what="a scheduler leader")

    async with ControlPlaneWatch(client, first, "steady") as watch:
        pid = int(first.holder.rsplit("-", 1)[1])
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)

        async def new_leader() -> LeaseRecord | None:
            current = await scheduler_leader(client)
            return current if current is not None and current.holder != first.holder else None

        second = await wait_for(new_leader, timeout=10, interval=0.05, what="another scheduler to lead")
        await wait_for(lambda: bool(watch.takeovers), what="the takeover seen by the watch")
        # When the standby took the lease, by its own record (same host, same clock): the
        # test's polling does not count.
        failover = watch.takeovers[0].renewed_at - killed_at
        assert failover < 2.0, f"failover took {failover:.2f}s"
        assert second.term > first.term
        await client.scale("default", "steady", 5)
        await wait_running(client, "steady", 5)
    assert watch.most <= 5, f"saw {watch.most} pods for 5 replicas"
    await client.delete(documents=documents(manifest))


async def test_nats_server_killed_mid_apply_loses_no_acknowledged_deployment(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    acknowledged: list[str] = []
    conf = cluster.data_dir / "nats" / "shoal.conf"

    async def apply_all() -> None:
        for index in range(8):
            name = f"burst-{index}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with await cluster.connect() as fresh:
                        await fresh.apply(documents(deployment(name)))
                    acknowledged.append(name)
                    break
                except ShoalError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)

    applying = asyncio.create_task(apply_all())
    await wait_for(lambda: len(acknowledged) >= 2, timeout=30, interval=0.01, what="two applies")
    [pid] = (await output("pgrep", "-f", f"nats-server -c {conf}")).split()
    os.kill(int(pid), signal.SIGKILL)
    await asyncio.wait_for(applying, 90)
    assert acknowledged == [f"burst-{i}" for i in range(8)]

    async with await cluster.connect() as after:
        stored = await after.deployments()
        assert {f"default.burst-{i}" for i in range(8)} <= set(stored)

        async def all_running() -> bool:
            pods = await after.pods()
            statuses = await after.pod_statuses()
            burst = [p for p in pods.values() if p.metadata.name.startswith("burst-")]
            ready = [
                p
                for p in burst
                if (s := statuses.get(p.key)) is not None and s.ready and s.uid == p.metadata.uid
            ]
            return len(burst) == 8 and len(ready) == 8

        await wait_for(all_running, timeout=60, what="every burst deployment running after the restart")
        await after.delete(refs=[])  # the API answers again
    [new_pid] = (await output("pgrep", "-f", f"nats-server -c {conf}")).split()
    assert new_pid != pid
