"""Several nodes: a host dies, a node is cut off and returns, a node actor restarts, drains, and
drains held back by disruption budgets."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from typing import Any

import yaml

from shoal.client import ShoalClient
from tests.harness import (
    TEST_IMAGE,
    LocalShoal,
    deployment,
    documents,
    node_containers,
    remove_node_containers,
    wait_for,
)
from tests.test_cluster import pods_of, wait_running

REPLICAS = 6


def names(cluster: LocalShoal) -> list[str]:
    return [cluster.node, f"{cluster.node}-b", f"{cluster.node}-c"]


async def ensure_nodes(cluster: LocalShoal, client: ShoalClient) -> list[str]:
    """The three nodes of this module, started if need be, all Ready."""
    for name in names(cluster)[1:]:
        if name not in cluster.roles:
            cluster.start_node(name)

    async def all_ready() -> bool:
        # A node process just (re)started is not up until it says so: until then the Ready
        # condition may be the previous process's, about to lapse.
        return (
            all(cluster.role_running(name) for name in names(cluster)[1:])
            and set(names(cluster)) <= await client.ready_nodes()
        )

    await wait_for(all_ready, timeout=30, what="three Ready nodes")
    return names(cluster)


async def spread_deployment(cluster: LocalShoal, client: ShoalClient, app: str) -> Counter[str]:
    """The app's pods on every node; how many each node got."""
    await ensure_nodes(cluster, client)

    async def no_pods_left() -> bool:
        return not await client.pods()  # terminating pods of earlier tests still hold resources

    await wait_for(no_pods_left, timeout=30, what="the previous test's pods gone")
    await client.apply(documents(deployment(app, replicas=REPLICAS)))
    pods = await wait_running(client, app, REPLICAS)
    # Spread scoring puts pods on every node; not always 2/2/2, because the scheduler's view
    # may still count the previous test's pods for the few milliseconds its watch lags.
    placed = Counter(p.node_name for p, _ in pods)
    assert set(placed) == set(names(cluster)), placed
    return placed


def app_containers(cluster: LocalShoal, app: str) -> dict[str, list[str]]:
    return {
        name: [c["Id"] for c in node_containers(name, **{"shoal.deployment": app})] for name in names(cluster)
    }


async def test_a_dead_hosts_pods_run_elsewhere_within_five_seconds(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await spread_deployment(cluster, client, "spread")
    victim = names(cluster)[2]
    started = time.monotonic()
    cluster.kill_role(victim)
    remove_node_containers(victim)  # the host is gone, and its containers with it

    async def replaced() -> bool:
        pods = await pods_of(client, "spread")
        running = [p for p, s in pods if s is not None and s.ready and p.node_name != victim]
        return len(running) == REPLICAS

    await wait_for(replaced, timeout=20, interval=0.05, what="all pods Running on the surviving nodes")
    elapsed = time.monotonic() - started
    assert elapsed < 5.0, f"replacement took {elapsed:.2f}s"

    cluster.start_node(victim)
    await ensure_nodes(cluster, client)
    pods = await wait_running(client, "spread", REPLICAS)
    assert all(p.node_name != victim for p, _ in pods)
    assert sum(len(ids) for ids in app_containers(cluster, "spread").values()) == REPLICAS
    await client.delete(documents=documents(deployment("spread")))


async def test_a_cut_off_node_removes_its_copies_when_it_returns(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    placed = await spread_deployment(cluster, client, "islands")
    cut_off = names(cluster)[1]
    cluster.kill_role(cut_off)  # the actor goes, its containers keep running (an edge site losing its link)

    async def replaced() -> bool:
        pods = await pods_of(client, "islands")
        ready = [p for p, s in pods if s is not None and s.ready]
        return len(ready) == REPLICAS and all(p.node_name != cut_off for p in ready)

    await wait_for(replaced, timeout=20, what="replacements while the node is cut off")
    # Meanwhile the cut-off node still runs its two copies: the documented price of staying up.
    assert len(app_containers(cluster, "islands")[cut_off]) == placed[cut_off]

    cluster.start_node(cut_off)

    async def converged() -> bool:
        containers = app_containers(cluster, "islands")
        return not containers[cut_off] and sum(len(ids) for ids in containers.values()) == REPLICAS

    await wait_for(converged, timeout=30, what="the returning node to remove its copies")
    await client.delete(documents=documents(deployment("islands")))


async def test_a_restarted_node_actor_adopts_its_running_containers(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    node = names(cluster)[1]
    await ensure_nodes(cluster, client)
    # A lease this machine's load cannot outlast while the actor restarts: what is tested is the
    # adoption (bench/ and the notes time the restart against the default lease).
    stop_role(cluster, node)
    cluster.start_node(node, "--lease", "10")
    try:
        placed = await spread_deployment(cluster, client, "adopted")
        before = sorted(app_containers(cluster, "adopted")[node])
        pods_before = {p.metadata.name for p, _ in await pods_of(client, "adopted")}
        cluster.kill_role(node)
        cluster.start_node(node, "--lease", "10")
        await ensure_nodes(cluster, client)

        async def reported_again() -> bool:
            statuses = await client.pod_statuses()
            mine = [s for s in statuses.values() if s.node_name == node and s.name.startswith("adopted-")]
            return len(mine) == placed[node] and all(s.ready for s in mine)

        await wait_for(reported_again, timeout=20, what="the restarted node to report its pods")
        assert sorted(app_containers(cluster, "adopted")[node]) == before
        pods = await pods_of(client, "adopted")
        assert {p.metadata.name for p, _ in pods} == pods_before
        assert all(s is not None and s.restarts == 0 for _, s in pods)
    finally:
        await client.delete(documents=documents(deployment("adopted")))
        await wait_for(lambda: no_pods(client), timeout=30, what="the test's pods gone")
        stop_role(cluster, node)  # the next test starts it again with the default lease


def stop_role(cluster: LocalShoal, label: str) -> None:
    """SIGTERM a role process and wait for it (a node keeps its containers running)."""
    process = cluster.roles.pop(label, None)
    if process is not None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def no_pods(client: ShoalClient) -> bool:
    return not await client.pods()


async def test_drain_moves_pods_off_and_leaves_the_node_cordoned(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await spread_deployment(cluster, client, "drained")
    node = names(cluster)[2]
    result = await asyncio.to_thread(cluster.shoal, "drain", node, "--timeout", "60", check=True)
    assert f"node/{node} drained" in result.stdout
    pods = await wait_running(client, "drained", REPLICAS)
    assert all(p.node_name != node for p, _ in pods)
    assert not app_containers(cluster, "drained")[node]
    nodes = await asyncio.to_thread(cluster.shoal, "get", "nodes", check=True)
    assert any(line.split()[:2] == [node, "Ready,SchedulingDisabled"] for line in nodes.stdout.splitlines())
    # cordoned: scaling up puts nothing there
    await client.scale("default", "drained", REPLICAS + 2)
    pods = await wait_running(client, "drained", REPLICAS + 2)
    assert all(p.node_name != node for p, _ in pods)
    await asyncio.to_thread(cluster.shoal, "uncordon", node, check=True)
    assert not (await client.node_specs())[node].unschedulable
    await client.delete(documents=documents(deployment("drained")))


def budget(app: str, **limit: int) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": f"{app}-budget"},
        "spec": {"selector": {"matchLabels": {"app": app}}, **limit},
    }


async def test_drain_never_takes_a_budgeted_deployment_below_min_available(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    placed = await spread_deployment(cluster, client, "budgeted")
    the_budget = documents(yaml.safe_dump(budget("budgeted", minAvailable=REPLICAS)))
    node = names(cluster)[1]
    lowest = REPLICAS

    async def ready_count() -> int:
        pods = await pods_of(client, "budgeted")
        return sum(1 for p, s in pods if s is not None and s.ready and not p.terminating)

    try:
        await client.apply(the_budget)
        drain = cluster.shoal_started("drain", node, "--timeout", "90")

        async def drained_never_below() -> bool:
            nonlocal lowest
            lowest = min(lowest, await ready_count())  # sampled at every look until it ends
            return drain.poll() is not None

        try:
            await wait_for(drained_never_below, timeout=120, interval=0.05, what="the drain to finish")
        finally:
            if drain.poll() is None:
                drain.kill()
        out, err = drain.communicate()
        assert drain.returncode == 0, err
        assert f"node/{node} drained" in out
        assert placed[node] > 0 and lowest >= REPLICAS, f"{lowest} Ready during the drain"
        pods = await wait_running(client, "budgeted", REPLICAS)
        assert all(p.node_name != node for p, _ in pods)
    finally:
        await asyncio.to_thread(cluster.shoal, "uncordon", node)
        await client.delete(documents=documents(deployment("budgeted")) + the_budget)


def one_pod_statefulset(app: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": app},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": TEST_IMAGE, "command": ["sleep", "3600"]}],
                },
            },
        },
    }


async def test_drain_waits_for_a_disruption_budget_and_says_why(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await ensure_nodes(cluster, client)
    objects = yaml.safe_dump_all([one_pod_statefulset("kept"), budget("kept", maxUnavailable=0)])
    await client.apply(documents(objects))
    [(pod, _)] = await wait_running(client, "kept", 1)
    node = pod.node_name
    try:
        refused = await asyncio.to_thread(cluster.shoal, "drain", node, "--timeout", "3")
        assert refused.returncode == 1
        assert "waiting to evict pod default/kept-0" in refused.stdout
        assert "disruption budget default/kept-budget" in refused.stderr, refused.stderr
        [(still, _)] = await wait_running(client, "kept", 1)
        assert still.metadata.uid == pod.metadata.uid and still.node_name == node
        # The budget allows one disruption now: the drain goes through, the pod moves, same name
        await client.apply(documents(yaml.safe_dump(budget("kept", maxUnavailable=1))))
        drained = await asyncio.to_thread(cluster.shoal, "drain", node, "--timeout", "60")
        assert drained.returncode == 0, drained.stderr
        [(moved, _)] = await wait_running(client, "kept", 1)
        assert moved.metadata.name == "kept-0" and moved.node_name != node
    finally:
        await asyncio.to_thread(cluster.shoal, "uncordon", node)
        await asyncio.to_thread(cluster.shoal, "delete", "-f", "-", input=objects)


async def test_a_statefulset_pod_keeps_its_name_and_data_across_its_nodes_death(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    node = (await ensure_nodes(cluster, client))[2]
    statefulset = one_pod_statefulset("ledger")
    statefulset["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["sh", "-c", "hostname >> /data/boots; exec sleep 3600"]
    container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    statefulset["spec"]["volumeClaimTemplates"] = [
        {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "16Mi"}}}}
    ]
    text = yaml.safe_dump(statefulset)
    volume = "shoal-default-data-ledger-0"
    await asyncio.to_thread(podman, "volume", "rm", "-f", volume)
    try:
        await client.apply(documents(text))
        [(pod, _)] = await wait_running(client, "ledger", 1)
        assert pod.node_name == node
        cluster.kill_role(node)
        remove_node_containers(node)  # the host is gone, and its containers with it

        async def waiting_for_its_node() -> bool:
            pods = [p for p, _ in await pods_of(client, "ledger")]
            return len(pods) == 1 and pods[0].metadata.uid != pod.metadata.uid and not pods[0].node_name

        # Evicted, and made again under its name: Pending, since its claim's volume is on that node
        await wait_for(waiting_for_its_node, timeout=30, what="ledger-0 made again, waiting for its node")
        cluster.start_node(node)
        await ensure_nodes(cluster, client)
        [(again, _)] = await wait_running(client, "ledger", 1)
        assert (again.metadata.name, again.node_name) == ("ledger-0", node)
        [found] = node_containers(node, **{"shoal.pod": "ledger-0"})
        boots = await asyncio.to_thread(podman, "exec", found["Id"], "cat", "/data/boots")
        assert boots.stdout.split() == ["ledger-0", "ledger-0"], boots.stdout + boots.stderr
    finally:
        cluster.shoal("delete", "-f", "-", input=text)
        cluster.shoal("delete", "pvc", "data-ledger-0")

        async def gone() -> bool:
            return not await pods_of(client, "ledger")

        await wait_for(gone, timeout=60, what="ledger-0 gone")
        await asyncio.to_thread(podman, "volume", "rm", "-f", volume)


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=30, check=False)
