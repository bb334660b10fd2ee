"""Rollouts and services on a real cluster: zero-downtime updates, failed rollouts, undo, endpoints."""

from __future__ import annotations

import asyncio
import time

from shoal.client import ShoalClient
from shoal.models.service import Endpoints
from tests.harness import Load, LocalShoal, documents, get, node_containers, node_port, output, wait_for, web
from tests.test_cluster import wait_running


async def endpoints(client: ShoalClient, name: str) -> Endpoints | None:
    return (await client.endpoints()).get(f"default.{name}")


async def test_rolling_from_v1_to_v2_drops_no_request(cluster: LocalShoal, client: ShoalClient) -> None:
    await client.apply(documents(web("roll")))
    await wait_running(client, "roll", 3)
    port = await node_port(client, "roll")

    async def serving() -> bool:
        found = await endpoints(client, "roll")
        return found is not None and len(found.ready_pods) == 3

    await wait_for(serving, what="3 endpoints")
    assert await asyncio.to_thread(get, port) == "v1"
    lowest_ready = 3

    async with Load(port) as load:
        await wait_for(lambda: sum(load.answers.values()) > 20, what="requests flowing")
        await client.rollout("default", "roll", "set-image", images={"web": "localhost/shoal-web:v2"})

        async def rolled() -> bool:
            nonlocal lowest_ready
            status = (await client.deployment_statuses()).get("default.roll")
            if status is not None and status.revision == 2:
                lowest_ready = min(lowest_ready, status.ready_replicas)
            return (
                status is not None
                and status.revision == 2
                and status.progressing_reason == "NewReplicaSetAvailable"
            )

        await wait_for(rolled, timeout=60, interval=0.05, what="the rollout to complete")
        await wait_for(lambda: load.last == "v2", what="answers from v2")
        settled = sum(load.answers.values())
        await wait_for(lambda: sum(load.answers.values()) > settled + 20, what="more requests")
    assert load.failures == []
    assert load.answers["v1"] > 0 and load.answers["v2"] > 0
    assert load.last == "v2"
    assert lowest_ready >= 3, "maxUnavailable 0: never fewer than 3 Ready"
    history = await asyncio.to_thread(cluster.shoal, "rollout", "history", "deployment/roll", check=True)
    assert "localhost/shoal-web:v2" in history.stdout and "(current)" in history.stdout
    described = await asyncio.to_thread(cluster.shoal, "describe", "deployment", "roll", check=True)
    assert "RollingUpdate (0 max unavailable, 1 max surge)" in described.stdout
    assert any(line.split() == ["Revision:", "2"] for line in described.stdout.splitlines()), described.stdout
    await client.delete(documents=documents(web("roll")))


async def test_a_rollout_that_never_gets_ready_fails_and_undo_brings_v1_back(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await client.apply(documents(web("stuck", replicas=4, surge="25%", unavailable="25%", deadline=6)))
    await wait_running(client, "stuck", 4)
    broken = web("stuck", replicas=4, surge="25%", unavailable="25%", deadline=6, command=["sleep", "3600"])
    await client.apply(documents(broken))  # runs, but never answers its readiness probe
    result = await asyncio.to_thread(
        cluster.shoal, "rollout", "status", "deployment/stuck", "--timeout", "60"
    )
    assert result.returncode == 1 and "progress deadline" in result.stdout
    status = (await client.deployment_statuses())["default.stuck"]
    assert status.failed and status.available_replicas >= 3  # stopped within maxUnavailable (1 of 4)
    assert status.replicas <= 5  # within maxSurge
    await asyncio.to_thread(cluster.shoal, "rollout", "undo", "deployment/stuck", check=True)
    done = await asyncio.to_thread(cluster.shoal, "rollout", "status", "deployment/stuck", "--timeout", "60")
    assert done.returncode == 0, done.stdout
    pods = await wait_running(client, "stuck", 4)
    assert all(p.spec.containers[0].command == [] for p, _ in pods)  # the v1 template again
    assert (await client.deployments())["default.stuck"].revision == 3
    await client.delete(documents=documents(web("stuck")))


async def test_a_killed_pod_leaves_the_endpoints_quickly_and_traffic_goes_on(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await client.apply(documents(web("steady")))
    await wait_running(client, "steady", 3)
    port = await node_port(client, "steady")

    async def all_ready() -> Endpoints | None:
        found = await endpoints(client, "steady")
        return found if found is not None and found.ports and len(found.ports[0].targets) == 3 else None

    found = await wait_for(all_ready, what="three endpoints")
    victim = found.ports[0].targets[0]
    container = next(
        c["Id"] for c in node_containers(cluster.node, **{"shoal.pod": victim.pod}) if c["State"] == "running"
    )
    async with Load(port) as load:
        await wait_for(lambda: sum(load.answers.values()) > 20, what="requests flowing")
        killed = time.monotonic()
        await output("podman", "kill", container, check=True)

        async def dropped() -> bool:
            now = await endpoints(client, "steady")
            if now is not None and all(
                (t.host, t.port) != (victim.host, victim.port) for t in now.ports[0].targets
            ):
                return True
            # Or the node restarted the container so fast that it was never out of service
            # (it is Ready again, with a restart counted, at the same address).
            status = (await client.pod_statuses()).get(f"default.{victim.pod}")
            return status is not None and status.restarts >= 1 and status.ready

        await wait_for(dropped, timeout=10, interval=0.02, what="the killed container's endpoint to go")
        took = time.monotonic() - killed
        served = sum(load.answers.values())
        await wait_for(lambda: sum(load.answers.values()) > served + 20, what="more requests")
    assert took < 1.5, f"the endpoint stayed {took:.2f}s"
    # The one request in flight on the killed container's connection may fail (SIGKILL gives
    # no chance to answer it); every later one is served by the other pods.
    assert len(load.failures) <= 1, load.failures
    assert all(at < killed + took for at in load.failed_at), (load.failures, took)
    await client.delete(documents=documents(web("steady")))


async def test_services_resolve_by_name_and_reach_pods_by_env(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await client.apply(documents(web("named", replicas=2)))
    await wait_running(client, "named", 2)
    resolved = await client.resolve("default", "named")
    assert len(resolved.ready_pods) == 2 and resolved.ports[0].node_port == await node_port(client, "named")
    # a pod started after the service sees it in its environment, and can call it
    caller = web("caller", replicas=1).split("---")[0]
    await client.apply(documents(caller))
    [(pod, _)] = await wait_running(client, "caller", 1)
    [container] = [
        c
        for c in node_containers(cluster.node, **{"shoal.pod": pod.metadata.name})
        if c["State"] == "running"
    ]
    env = await output("podman", "exec", container["Id"], "env", check=True)
    cluster_ip = (await client.services())["default.named"].spec.cluster_ip
    # As on Kubernetes: the cluster IP and the service's own port.
    assert f"NAMED_SERVICE_HOST={cluster_ip}" in env and "NAMED_SERVICE_PORT=80" in env
    answer = await output(
        "podman",
        "exec",
        container["Id"],
        "sh",
        "-c",
        "wget -q -O - http://$NAMED_SERVICE_HOST:$NAMED_SERVICE_PORT/",
    )
    assert answer.strip() == "v1"
    listed = await asyncio.to_thread(cluster.shoal, "get", "services", check=True)
    assert "named" in listed.stdout and f"80:{resolved.ports[0].node_port}/TCP" in listed.stdout
    await client.delete(documents=documents(web("named", replicas=2)))
    await client.delete(documents=documents(caller))
