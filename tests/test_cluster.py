"""A real cluster (`shoal up`: nats-server, API, scheduler, a node on Podman) doing its job."""

from __future__ import annotations

import asyncio
import os
import subprocess
import urllib.request

import nats
import ormsgpack

from shoal.bus import subjects
from shoal.client import ShoalClient
from shoal.models.event import Event
from shoal.models.pod import Pod, PodStatus
from tests.harness import (
    TEST_IMAGE,
    LocalShoal,
    deployment,
    documents,
    node_containers,
    podman_json,
    unique_name,
    wait_for,
)


async def pods_of(client: ShoalClient, app: str) -> list[tuple[Pod, PodStatus | None]]:
    pods = await client.pods()
    statuses = await client.pod_statuses()
    found = []
    for pod in pods.values():
        if pod.metadata.labels.get("app") == app and not pod.terminating:
            status = statuses.get(pod.key)
            found.append((pod, status if status and status.uid == pod.metadata.uid else None))
    return found


async def wait_running(
    client: ShoalClient, app: str, count: int, timeout: float = 60.0
) -> list[tuple[Pod, PodStatus]]:
    seen: list[str] = []

    async def probe() -> list[tuple[Pod, PodStatus]] | None:
        pods = await pods_of(client, app)
        ready = [(p, s) for p, s in pods if s is not None and s.phase == "Running" and s.ready]
        seen[:] = [
            f"{p.metadata.name}: {s.phase if s else 'no status'} {s.reason if s else ''}" for p, s in pods
        ]
        return ready if len(ready) == count and len(pods) == count else None

    try:
        return await wait_for(probe, timeout=timeout, what=f"{count} running pods of {app}")
    except AssertionError as err:
        raise AssertionError(f"{err}; pods: {seen}") from None


def http_get(ip: str, port: int = 8080) -> str:
    with urllib.request.urlopen(f"http://{ip}:{port}/", timeout=5) as response:
        return response.read().decode()


async def test_deployment_runs_scales_and_is_deleted(cluster: LocalShoal, client: ShoalClient) -> None:
    await client.apply(documents(deployment("web", replicas=3)))
    pods = await wait_running(client, "web", 3)

    containers = node_containers(cluster.node, **{"shoal.deployment": "web"})
    assert len(containers) == 3
    cluster_id = (await client.namespaces())["kube-system"].metadata.uid
    assert cluster_id
    for item in containers:
        labels = item["Labels"]
        assert labels["shoal.namespace"] == "default" and labels["shoal.node"] == cluster.node
        assert labels["shoal.pod"] in {p.metadata.name for p, _ in pods}
        assert labels["shoal.cluster"] == cluster_id
        assert item["Names"][0].startswith(f"shoal_{cluster_id[:8]}_default_{labels['shoal.pod']}_")
    for pod, status in pods:
        assert pod.node_name == cluster.node
        assert status.pod_ip.startswith("10.")
        assert "Shoal" in await asyncio.to_thread(http_get, status.pod_ip)

    await client.scale("default", "web", 5)
    await wait_running(client, "web", 5)
    assert len(node_containers(cluster.node, **{"shoal.deployment": "web"})) == 5

    await client.scale("default", "web", 1)
    await wait_running(client, "web", 1)

    async def containers_gone_to(count: int) -> bool:
        return len(node_containers(cluster.node, **{"shoal.deployment": "web"})) == count

    await wait_for(lambda: containers_gone_to(1), timeout=30, what="surplus containers removed")

    await client.delete(documents=documents(deployment("web")))

    async def all_gone() -> bool:
        return not await pods_of(client, "web") and not (await client.pods()) and await containers_gone_to(0)

    await wait_for(all_gone, timeout=30, what="every pod record and container removed")


async def test_a_killed_container_is_restarted_and_counted(cluster: LocalShoal, client: ShoalClient) -> None:
    await client.apply(documents(deployment("crashy")))
    [(pod, _)] = await wait_running(client, "crashy", 1)
    [container] = node_containers(cluster.node, **{"shoal.pod": pod.metadata.name})
    await asyncio.to_thread(
        subprocess.run, ["podman", "kill", container["Id"]], check=True, capture_output=True
    )

    async def restarted() -> PodStatus | None:
        _, current = await client.pod("default", pod.metadata.name)
        if current and current.restarts == 1 and current.ready:
            return current
        return None

    after = await wait_for(restarted, timeout=30, what="restart count 1 and Ready again")
    assert after.container_statuses[0].container_id != container["Id"]
    # The killed incarnation is kept, exited, for `logs --previous`; the replacement runs.
    found = {c["Id"]: c for c in node_containers(cluster.node, **{"shoal.pod": pod.metadata.name})}
    assert set(found) == {container["Id"], after.container_statuses[0].container_id}
    assert found[container["Id"]]["State"] == "exited"
    assert found[after.container_statuses[0].container_id]["Labels"]["shoal.restarts"] == "1"
    await client.delete(documents=documents(deployment("crashy")))


async def test_resource_limits_reach_the_container(cluster: LocalShoal, client: ShoalClient) -> None:
    manifest = deployment("limited", limits={"cpu": "500m", "memory": "64Mi"})
    await client.apply(documents(manifest))
    [(pod, _)] = await wait_running(client, "limited", 1)
    [container] = node_containers(cluster.node, **{"shoal.pod": pod.metadata.name})
    [inspected] = podman_json("inspect", container["Id"])
    host = inspected["HostConfig"]
    assert host["Memory"] == 64 * 2**20
    assert host["CpuQuota"] == 50_000 and host["CpuPeriod"] == 100_000
    await client.delete(documents=documents(manifest))


async def test_a_pod_with_two_containers_runs_as_a_podman_pod(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    manifest = deployment("duo", extra_container=True)
    await client.apply(documents(manifest))
    [(pod, status)] = await wait_running(client, "duo", 1)
    assert {c.name for c in status.container_statuses} == {"main", "sidecar"}
    podman_pods = podman_json("pod", "ps", "--format=json", f"--filter=label=shoal.pod={pod.metadata.name}")
    assert len(podman_pods) == 1
    assert "Shoal" in await asyncio.to_thread(http_get, status.pod_ip)
    await client.delete(documents=documents(manifest))

    async def pod_removed() -> bool:
        return not podman_json("pod", "ps", "--format=json", f"--filter=label=shoal.pod={pod.metadata.name}")

    await wait_for(pod_removed, timeout=30, what="the Podman pod removed")


async def test_a_pod_that_fits_nowhere_stays_pending_with_a_reason(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    manifest = deployment("huge", cpu="512")
    await client.apply(documents(manifest))

    async def pending() -> Pod | None:
        pods = await pods_of(client, "huge")
        return pods[0][0] if pods and pods[0][0].scheduling else None

    pod = await wait_for(pending, timeout=20, what="a Pending pod with a reason")
    assert pod.node_name == ""
    assert pod.scheduling is not None and "1 Insufficient cpu" in pod.scheduling.message
    described = await asyncio.to_thread(cluster.shoal, "describe", "pod", pod.metadata.name, check=True)
    assert "Unschedulable" in described.stdout and "Insufficient cpu" in described.stdout
    listed = await asyncio.to_thread(cluster.shoal, "get", "pods", check=True)
    assert pod.metadata.name in listed.stdout and "Pending" in listed.stdout
    await client.delete(documents=documents(manifest))


async def test_subscribers_see_the_pod_lifecycle(cluster: LocalShoal, client: ShoalClient) -> None:
    seen: list[list[Event]] = [[], []]
    # Any NATS client a viewer's credentials let in follows the feed.
    viewer = cluster.access_as("viewer").options()
    subscribers = [await nats.connect(cluster.url, **viewer) for _ in seen]
    try:
        for index, nc in enumerate(subscribers):

            async def collect(msg, index=index) -> None:  # type: ignore[no-untyped-def]
                seen[index].append(Event.model_validate(ormsgpack.unpackb(msg.data)))

            await nc.subscribe(subjects.EVENTS_ALL, cb=collect)
            await nc.flush()
        manifest = deployment("watched", replicas=2)
        await client.apply(documents(manifest))
        pods = await wait_running(client, "watched", 2)
        names = {p.metadata.name for p, _ in pods}
        await client.delete(documents=documents(manifest))

        async def lifecycle_seen() -> bool:
            for events in seen:
                reasons = {(e.name, e.reason) for e in events}
                for name in names:
                    if not {(name, "Scheduled"), (name, "Started"), (name, "Removed")} <= reasons:
                        return False
                if ("watched", "Created") not in reasons or ("watched", "Deleted") not in reasons:
                    return False
            return True

        await wait_for(lifecycle_seen, timeout=30, what="created/scheduled/started/deleted/removed events")
        started = next(e for e in seen[0] if e.reason == "Started")
        assert started.kind == "Pod" and started.source == f"node/{cluster.node}"
    finally:
        for nc in subscribers:
            await nc.close()
    # the same events stay in the stream for later readers
    stored = [e async for e in client.events(follow=False)]
    assert {e.reason for e in stored} >= {
        "Created",
        "Scheduled",
        "Started",
        "Deleted",
        "Removed",
        "Registered",
    }


async def test_logs_come_from_the_node(cluster: LocalShoal, client: ShoalClient) -> None:
    command = ["sh", "-c", "for i in 1 2 3; do echo line-$i; done; exec httpd -f -p 8080 -h /www"]
    manifest = deployment("chatty", command=command)
    await client.apply(documents(manifest))
    [(pod, _)] = await wait_running(client, "chatty", 1)

    async def logged() -> str:
        return b"".join([chunk async for chunk in client.logs("default", pod.metadata.name)]).decode()

    text = await wait_for(logged, timeout=10, what="log output")
    assert text.splitlines() == ["line-1", "line-2", "line-3"]
    followed = client.logs("default", pod.metadata.name, follow=True, tail=1)
    first = await asyncio.wait_for(followed.__anext__(), 10)
    assert first == b"line-3\n"
    await followed.aclose()
    result = await asyncio.to_thread(cluster.shoal, "logs", pod.metadata.name, check=True)
    assert result.stdout.splitlines() == ["line-1", "line-2", "line-3"]
    await client.delete(documents=documents(manifest))


async def test_garbage_on_node_subjects_gets_errors_and_the_node_lives(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    nc = await nats.connect(cluster.url, **cluster.access.options())
    try:
        for payload in (b"", b"\xff\x00", ormsgpack.packb({"namespace": "default"}), ormsgpack.packb([1])):
            msg = await nc.request(subjects.node_logs(cluster.node), payload, timeout=5)
            assert ormsgpack.unpackb(msg.data)["error"]["code"] == "bad-payload"
        request = {"schema": 1, "namespace": "default", "pod": "no-such-pod", "stream": "shoal.v1.logs.x"}
        msg = await nc.request(subjects.node_logs(cluster.node), ormsgpack.packb(request), timeout=5)
        assert ormsgpack.unpackb(msg.data)["error"]["code"] == "not-found"
        beats: asyncio.Queue[bytes] = asyncio.Queue()

        async def beat(msg) -> None:  # type: ignore[no-untyped-def]
            beats.put_nowait(msg.data)

        await nc.subscribe(subjects.node_heartbeat(cluster.node), cb=beat)
        await asyncio.wait_for(beats.get(), timeout=10)  # the node still says it is alive
        assert cluster.node in await client.ready_nodes()
    finally:
        await nc.close()


async def test_invalid_manifests_change_nothing_in_a_running_cluster(
    cluster: LocalShoal, client: ShoalClient, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    good = deployment("steady", replicas=2)
    await client.apply(documents(good))
    before = await wait_running(client, "steady", 2)
    cases = {
        "missing image": good.replace("image: localhost/busybox:latest", "imagePullPolicy: Always"),
        "negative replicas": good.replace("replicas: 2", "replicas: -1"),
        "bad cpu": good.replace("cpu: 50m", "cpu: abc"),
        "unknown kind": good.replace("kind: Deployment", "kind: Gizmo"),
        "broken yaml": "apiVersion: apps/v1\nkind: [Deployment\n",
        "not a mapping": "- a\n- b\n",
    }
    for label, text in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(deployment("newcomer") + "---\n" + text)
        result = await asyncio.to_thread(cluster.shoal, "apply", "-f", str(path))
        assert result.returncode == 1, label
        assert "error:" in result.stderr and "bad.yaml" in result.stderr, (label, result.stderr)
        assert "Traceback" not in result.stderr, label
    assert set(await client.deployments()) == {"default.steady"}
    after = await wait_running(client, "steady", 2)
    assert {p.metadata.uid for p, _ in after} == {p.metadata.uid for p, _ in before}
    await client.delete(documents=documents(good))


async def test_garbage_in_the_buckets_is_ignored_by_every_actor(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    # Written as the roles that may write those buckets (a bug of theirs, say).
    writers = {
        role: await nats.connect(cluster.url, **cluster.access_as(role, name).options())
        for role, name in (("api", ""), ("scheduler", ""), ("node", cluster.node))
    }
    written = []
    try:
        for bucket, writer, prefix in (
            (subjects.BUCKET_DEPLOYMENTS, "api", ""),
            (subjects.BUCKET_PODS, "scheduler", ""),
            (subjects.BUCKET_POD_STATUS, "node", f"{cluster.node}."),  # a node's own statuses
            (subjects.BUCKET_NODES, "scheduler", ""),
        ):
            kv = await writers[writer].jetstream().key_value(bucket)
            await kv.put(f"{prefix}default.garbage", b"\xff\xfe not msgpack")
            await kv.put(f"{prefix}default.wrong-shape", ormsgpack.packb({"schema": 1, "hello": "world"}))
            written.append((kv, prefix))
        registered = (await client.nodes())[cluster.node].started_at
        restarts_before = cluster.log.read_text().count("starting it again")
        manifest = deployment("after-garbage")
        await client.apply(documents(manifest))
        await wait_running(client, "after-garbage", 1)
        await client.delete(documents=documents(manifest))
        # Every actor shrugged it off: none failed and was started again, the node did not re-register.
        assert cluster.log.read_text().count("starting it again") == restarts_before
        assert (await client.nodes())[cluster.node].started_at == registered
    finally:
        for kv, prefix in written:
            await kv.delete(f"{prefix}default.garbage")
            await kv.delete(f"{prefix}default.wrong-shape")
        for nc in writers.values():
            await nc.close()


async def test_a_node_leaves_alone_the_containers_of_another_cluster_on_its_host(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    """Two clusters on one host may both have a node of the host's name. The node removes a
    container of its own cluster that no pod record asks for, and never one of the other's."""
    cluster_id = (await client.namespaces())["kube-system"].metadata.uid
    stranger, stray = unique_name("stranger"), unique_name("stray")

    def run(pod: str, made_by: str) -> None:
        pod_labels = {
            "shoal.node": cluster.node,
            "shoal.cluster": made_by,
            "shoal.namespace": "default",
            "shoal.pod": pod,
            "shoal.container": "main",
            "shoal.uid": pod,
        }
        argv = ["podman", "run", "-d", "--name", f"t_{pod}"]
        for key, value in pod_labels.items():
            argv += ["--label", f"{key}={value}"]
        # The node's own Podman settings (this host's ulimits), as the other cluster's node had.
        conf = cluster.data_dir / "nodes" / cluster.node / "containers.conf"
        env = dict(os.environ, CONTAINERS_CONF=str(conf))
        subprocess.run([*argv, TEST_IMAGE, "sleep", "600"], check=True, capture_output=True, env=env)

    def remove() -> None:
        for pod in (stranger, stray):
            subprocess.run(["podman", "rm", "-f", "-t", "0", f"t_{pod}"], capture_output=True, check=False)

    try:
        await asyncio.to_thread(run, stranger, "0f" * 16)
        await asyncio.to_thread(run, stray, cluster_id)
        await wait_for(
            lambda: not node_containers(cluster.node, **{"shoal.pod": stray}),
            timeout=30,
            what="the node to remove its own cluster's stray container",
        )
        # Found by the same listing as the stray one, and left running.
        assert [c["State"] for c in node_containers(cluster.node, **{"shoal.pod": stranger})] == ["running"]
    finally:
        await asyncio.to_thread(remove)
