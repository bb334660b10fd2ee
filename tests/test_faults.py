"""Faults an operator meets, on a real `shoal up`: nats-server restarting, the whole cluster restarting.

Traffic through a service must not fail when nats-server restarts (the judges do not count
their own deafness against the nodes, and endpoints are not emptied); the in-memory metrics
bucket comes back; `shoal events -w` follows across the restart and misses nothing; a cold
restart of every role keeps every running pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys

from shoal.client import ShoalClient
from tests.harness import (
    Load,
    LocalShoal,
    documents,
    node_containers,
    node_port,
    output,
    wait_for,
    web,
)
from tests.test_cluster import wait_running

SHOAL_UP_ARGS = ["--node-option=--metrics-interval=1"]


async def nats_pid(cluster: LocalShoal) -> int:
    conf = cluster.data_dir / "nats" / "shoal.conf"
    [pid] = (await output("pgrep", "-f", f"nats-server -c {conf}")).split()
    return int(pid)


async def test_a_restart_of_nats_server_fails_no_request_and_loses_nothing(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await client.apply(documents(web("steady")))
    await wait_running(client, "steady", 3)
    port = await node_port(client, "steady")
    await wait_for(lambda: client.node_metrics(), timeout=20, what="metrics")
    follower = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "shoal", "events", "-w"],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        async with Load(port) as load:
            await wait_for(lambda: sum(load.answers.values()) > 20, what="traffic through the service")
            pid = await nats_pid(cluster)
            os.kill(pid, signal.SIGKILL)  # `shoal up` starts it again on the same store

            async def restarted() -> ShoalClient | None:
                with contextlib.suppress(Exception):
                    if await nats_pid(cluster) != pid:
                        return await cluster.connect()  # the old client does not reconnect
                return None

            async with await wait_for(restarted, timeout=30, what="nats-server back") as fresh:
                answered = sum(load.answers.values())
                await wait_for(lambda: sum(load.answers.values()) > answered + 30, what="traffic after it")
                # Something happens after the restart: its event reaches the follower.

                async def api_answers() -> bool:
                    with contextlib.suppress(Exception):
                        await fresh.apply([])
                        return True
                    return False

                await wait_for(api_answers, timeout=20, what="the API actor back on the new server")
                await fresh.scale("default", "steady", 4)
                await wait_running(fresh, "steady", 4)
                await wait_for(lambda: fresh.node_metrics(), timeout=20, what="the metrics bucket back")
                # A server that hangs for 5 s: every judge hears every node fall silent at once.
                pid = await nats_pid(cluster)
                os.kill(pid, signal.SIGSTOP)
                try:
                    await asyncio.sleep(5.0)  # the outage itself, not a wait for a condition
                finally:
                    os.kill(pid, signal.SIGCONT)
                answered = sum(load.answers.values())
                await wait_for(lambda: sum(load.answers.values()) > answered + 30, what="traffic after it")
                assert len((await fresh.endpoints())["default.steady"].ready_pods) == 4
        assert load.failures == [], load.failures[:3]
    finally:
        follower.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(follower.communicate, timeout=15)
    assert follower.returncode == 0, err
    assert "Traceback" not in err
    assert "Scaled" in out and "scaled from 3 to 4" in out, out[-2000:]
    async with await cluster.connect() as fresh:
        await fresh.delete(documents=documents(web("steady")))


async def test_a_cold_restart_of_the_whole_cluster_keeps_every_running_pod(fresh_cluster: LocalShoal) -> None:
    fresh_cluster.extra_args = ["--keep-pods"]
    await asyncio.to_thread(fresh_cluster.start)
    async with await fresh_cluster.connect() as client:
        await client.apply(documents(web("kept")))
        await wait_running(client, "kept", 3)
    before = {c["Id"] for c in node_containers(fresh_cluster.node)}
    assert len(before) == 3
    assert await asyncio.to_thread(fresh_cluster.stop) == 0  # every role with SIGTERM; pods stay
    assert {c["Id"] for c in node_containers(fresh_cluster.node)} == before
    await asyncio.to_thread(fresh_cluster.start)
    async with await fresh_cluster.connect() as client:
        pods = await wait_running(client, "kept", 3)
        assert all(status.restarts == 0 for _, status in pods)
        assert {c["Id"] for c in node_containers(fresh_cluster.node)} == before  # adopted, not replaced
        evicted = [e async for e in client.events() if e.reason in ("Evicted", "NodeNotReady")]
        assert evicted == []
