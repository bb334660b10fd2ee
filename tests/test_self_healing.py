"""Self-healing on one node: probes, crash-loop backoff, image pull backoff, Podman trouble."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import time

from shoal.client import ShoalClient
from shoal.models.pod import PodStatus
from tests.harness import LocalShoal, deployment, documents, node_containers, output, wait_for
from tests.test_cluster import pods_of, wait_running

SHOAL_UP_ARGS = ["--node-option=--backoff-initial=1", "--node-option=--backoff-max=8"]

HTTPD = "exec httpd -f -p 8080 -h /www"


async def podman(*args: str) -> None:
    await asyncio.to_thread(subprocess.run, ["podman", *args], check=True, capture_output=True)


async def status_of(client: ShoalClient, app: str) -> PodStatus | None:
    pods = await pods_of(client, app)
    return pods[0][1] if pods else None


async def main_container(cluster: LocalShoal, client: ShoalClient, app: str) -> str:
    [(pod, _)] = await pods_of(client, app)
    running = [
        c
        for c in node_containers(cluster.node, **{"shoal.pod": pod.metadata.name})
        if c["State"] == "running"
    ]
    assert len(running) == 1
    return running[0]["Id"]


async def reasons(client: ShoalClient, name_prefix: str) -> list[tuple[float, str, str]]:
    return [(e.time, e.reason, e.message) async for e in client.events() if e.name.startswith(name_prefix)]


async def test_a_failing_liveness_probe_restarts_the_container(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    probes = {
        "livenessProbe": {
            "exec": {"command": ["cat", "/tmp/alive"]},
            "periodSeconds": 1,
            "failureThreshold": 2,
        }
    }
    manifest = deployment("lively", command=["sh", "-c", f"touch /tmp/alive; {HTTPD}"], probes=probes)
    await client.apply(documents(manifest))
    await wait_running(client, "lively", 1)
    await podman("exec", await main_container(cluster, client, "lively"), "rm", "/tmp/alive")

    async def restarted() -> PodStatus | None:
        status = await status_of(client, "lively")
        return status if status and status.restarts == 1 and status.ready else None

    await wait_for(restarted, timeout=30, what="a restart after the liveness probe failed")
    assert any(
        reason == "Unhealthy" and "liveness" in message
        for _, reason, message in await reasons(client, "lively")
    )
    await client.delete(documents=documents(manifest))


async def test_a_failing_readiness_probe_keeps_the_pod_out_of_ready(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    probes = {"readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}}
    manifest = deployment("shy", probes=probes)
    await client.apply(documents(manifest))

    async def failing_and_running() -> PodStatus | None:
        status = await status_of(client, "shy")
        failed = any(r == "Unhealthy" and "readiness" in m for _, r, m in await reasons(client, "shy"))
        return status if status and status.phase == "Running" and failed else None

    status = await wait_for(
        failing_and_running, timeout=30, what="a Running pod whose readiness probe failed"
    )
    assert not status.ready and not status.container_statuses[0].ready
    deployment_status = (await client.deployment_statuses())["default.shy"]
    assert deployment_status.ready_replicas == 0
    await podman("exec", await main_container(cluster, client, "shy"), "touch", "/tmp/ready")
    await wait_running(client, "shy", 1, timeout=15)
    assert (await status_of(client, "shy")).restarts == 0  # type: ignore[union-attr]
    await client.delete(documents=documents(manifest))


async def test_a_startup_probe_holds_the_liveness_probe_off(cluster: LocalShoal, client: ShoalClient) -> None:
    probes = {
        "startupProbe": {
            "exec": {"command": ["cat", "/tmp/started"]},
            "periodSeconds": 1,
            "failureThreshold": 60,
        },
        "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1},
    }
    manifest = deployment("slowstart", probes=probes)
    await client.apply(documents(manifest))

    async def up_for_a_while_unstarted() -> PodStatus | None:
        status = await status_of(client, "slowstart")
        if not status or status.phase != "Running":
            return None
        container = status.container_statuses[0]
        started_at = container.state.started_at or time.time()
        # Long enough for a liveness probe with period 1 s and threshold 1 to have killed it.
        return status if time.time() - started_at >= 4 else None

    status = await wait_for(
        up_for_a_while_unstarted, timeout=30, what="4 s of running behind the startup probe"
    )
    container = status.container_statuses[0]
    assert status.restarts == 0 and not container.started and not container.ready
    await podman("exec", await main_container(cluster, client, "slowstart"), "touch", "/tmp/started")

    async def killed_by_liveness() -> PodStatus | None:
        current = await status_of(client, "slowstart")
        return current if current and current.restarts >= 1 else None

    await wait_for(killed_by_liveness, timeout=30, what="the liveness probe to act once started")
    await client.delete(documents=documents(manifest))


async def test_a_crash_loop_backs_off_with_growing_intervals(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    manifest = deployment("crasher", command=["sh", "-c", "echo boom; exit 3"])
    await client.apply(documents(manifest))
    seen_backoff: list[PodStatus] = []

    async def four_restarts() -> list[float] | None:
        status = await status_of(client, "crasher")
        if status is not None and status.reason == "CrashLoopBackOff":
            seen_backoff.append(status)
        times = [t for t, reason, _ in await reasons(client, "crasher") if reason == "Restarted"]
        return times if len(times) >= 4 else None

    times = await wait_for(four_restarts, timeout=60, interval=0.2, what="four restarts")
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # first restart at once, then 1 s, 2 s, 4 s (backoff-initial=1): each gap longer than the last
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert gaps[2] >= 3.0, gaps
    assert seen_backoff, "CrashLoopBackOff never showed"
    last = seen_backoff[-1].container_statuses[0]
    assert last.state.reason == "CrashLoopBackOff"
    assert last.last_state is not None and last.last_state.exit_code == 3
    assert seen_backoff[-1].phase == "Running" and not seen_backoff[-1].ready
    await client.delete(documents=documents(manifest))


async def test_a_missing_image_backs_off(cluster: LocalShoal, client: ShoalClient) -> None:
    manifest = deployment("ghost").replace("localhost/busybox:latest", "localhost/no-such-image:1")
    await client.apply(documents(manifest))

    async def backing_off() -> PodStatus | None:
        status = await status_of(client, "ghost")
        return status if status and status.reason == "ImagePullBackOff" else None

    status = await wait_for(backing_off, timeout=30, what="ImagePullBackOff")
    assert status.phase == "Pending" and "no-such-image" in status.message
    failures = [t for t, reason, _ in await reasons(client, "ghost") if reason == "Failed"]
    # 1 s then 2 s between attempts: never a hot loop
    assert len(failures) <= 4
    await client.delete(documents=documents(manifest))


async def test_the_podman_service_is_started_again_when_it_dies(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await client.apply(documents(deployment("survivor")))
    await wait_running(client, "survivor", 1)
    registered = (await client.nodes())[cluster.node].started_at
    socket_path = cluster.data_dir / "nodes" / cluster.node / "podman.sock"
    [pid] = (await output("pgrep", "-f", f"system service.*{socket_path}")).split()
    os.kill(int(pid), signal.SIGKILL)
    before = await main_container(cluster, client, "survivor")
    await podman("kill", before)  # a crash while the service is away must still be healed

    async def healed() -> PodStatus | None:
        status = await status_of(client, "survivor")
        return status if status and status.restarts == 1 and status.ready else None

    await wait_for(healed, timeout=30, what="the container restarted through a new Podman service")
    again = (await output("pgrep", "-f", f"system service.*{socket_path}")).split()
    assert again and again != [pid]
    # The node actor itself rode it out: it did not fail and start again (it would re-register).
    assert (await client.nodes())[cluster.node].started_at == registered
    await client.delete(documents=documents(deployment("survivor")))


async def test_a_container_whose_conmon_died_is_recreated(cluster: LocalShoal, client: ShoalClient) -> None:
    await client.apply(documents(deployment("orphaned")))
    await wait_running(client, "orphaned", 1)
    container = await main_container(cluster, client, "orphaned")
    inspected = (
        await output("podman", "inspect", container, "--format", "{{.State.ConmonPid}} {{.State.Pid}}")
    ).split()
    conmon, process = (int(x) for x in inspected)
    os.kill(conmon, signal.SIGKILL)
    os.kill(process, signal.SIGKILL)  # Podman never hears of this exit

    async def recreated() -> PodStatus | None:
        status = await status_of(client, "orphaned")
        return status if status and status.restarts >= 1 and status.ready else None

    await wait_for(recreated, timeout=30, what="the container recreated after its process vanished")
    await client.delete(documents=documents(deployment("orphaned")))
