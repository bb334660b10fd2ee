"""Jobs, CronJobs, DaemonSets and StatefulSets on a real cluster: `shoal up` with Podman and
nats-server.

The decisions themselves are table-tested (test_jobs.py, test_cronjobs.py, test_daemonsets.py,
test_statefulsets.py);
this module shows them running real pods: a Job's completions, a Job stopping at its backoff
limit, a CronJob's run when its schedule comes due, a DaemonSet following nodes and drains, a
StatefulSet's ordinals keeping their names, claims and DNS names.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import yaml

from shoal.client import ShoalClient
from shoal.models.pod import Pod, PodStatus
from tests.harness import TEST_IMAGE, LocalShoal, documents, holds_for, node_containers, wait_for


def pod_spec(command: str, restart: str = "Never") -> dict[str, Any]:
    return {
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "main",
                "image": TEST_IMAGE,
                "command": ["sh", "-c", command],
                "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}},
            }
        ],
    }


def job(name: str, command: str, **spec: Any) -> str:
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": pod_spec(command)}}}  # fmt: skip
    return yaml.safe_dump(body)


async def owned_pods(client: ShoalClient, kind: str, name: str) -> list[tuple[Pod, PodStatus | None]]:
    pods, statuses = await client.pods(), await client.pod_statuses()
    found = []
    for pod in pods.values():
        owner = pod.metadata.owner
        if owner is not None and owner.kind == kind and owner.name == name:
            status = statuses.get(pod.key)
            found.append((pod, status if status is not None and status.uid == pod.metadata.uid else None))
    return found


async def finished(
    client: ShoalClient,
    name: str,
    timeout: float = 60.0,
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """The job's status once it has finished; ``meanwhile`` runs at every look until then."""

    async def probe() -> Any:
        if meanwhile is not None:
            await meanwhile()
        status = (await client.job_statuses()).get(f"default.{name}")
        return status if status is not None and status.finished is not None else None

    return await wait_for(probe, timeout=timeout, interval=0.05, what=f"job {name} to finish")


async def test_a_job_of_five_completions_two_at_a_time_ends_with_five_succeeded_pods(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await client.apply(documents(job("five", "exit 0", completions=5, parallelism=2)))
    most_running = 0

    async def count_running() -> None:
        nonlocal most_running
        pods = await owned_pods(client, "Job", "five")
        running = [p for p, s in pods if not p.terminating and (s is None or not s.terminal)]
        most_running = max(most_running, len(running))

    status = await finished(client, "five", meanwhile=count_running)
    assert status.finished.type == "Complete" and status.succeeded == 5 and status.failed == 0
    pods = await owned_pods(client, "Job", "five")
    assert len(pods) == 5 and all(s is not None and s.phase == "Succeeded" for _, s in pods), pods
    assert most_running <= 2
    listing = cluster.shoal("get", "jobs", check=True).stdout
    assert "COMPLETIONS" in listing and "5/5" in listing
    described = cluster.shoal("describe", "job", "five", check=True).stdout
    assert "0 Active (0 Ready) / 5 Succeeded / 0 Failed" in described and "Completed" in described

    cluster.shoal("delete", "job", "five", check=True)

    async def pods_gone() -> bool:
        return (
            not await owned_pods(client, "Job", "five") and "default.five" not in await client.job_statuses()
        )

    await wait_for(pods_gone, timeout=30, what="the job's pods and status gone with it")


async def test_a_failing_job_stops_at_its_backoff_limit_with_condition_failed(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await client.apply(documents(job("fails", "exit 1", completions=3, parallelism=3, backoffLimit=2)))
    status = await finished(client, "fails")
    assert status.finished.type == "Failed" and status.finished.reason == "BackoffLimitExceeded"
    assert status.failed == 3 and status.succeeded == 0

    async def three_failed() -> bool:
        pods = await owned_pods(client, "Job", "fails")
        return len(pods) == 3 and all(s is not None and s.phase == "Failed" for _, s in pods)

    await holds_for(three_failed, 2, what="three failed pods and no new one")
    assert "BackoffLimitExceeded" in cluster.shoal("describe", "job", "fails", check=True).stdout
    cluster.shoal("delete", "job", "fails", check=True)


async def test_a_cronjob_created_through_the_api_runs_a_job_when_its_schedule_comes_due(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    body = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": {"spec": pod_spec("exit 0")}}},
        },
    }
    applied = time.time()
    reply = await client.apply(documents(yaml.safe_dump(body)))
    assert [r.action for r in reply.results] == ["created"]
    due = (int(applied // 60) + 1) * 60

    async def its_jobs() -> list[Any]:
        return [
            j for j in (await client.jobs()).values() if j.metadata.owner and j.metadata.owner.name == "tick"
        ]

    [started] = await wait_for(its_jobs, timeout=due - time.time() + 10, what="the cronjob's first job")
    assert started.metadata.name == f"tick-{due // 60}"
    assert started.metadata.creation_timestamp >= due
    status = await finished(client, started.metadata.name, timeout=30)
    assert status.finished.type == "Complete"
    assert len(await its_jobs()) == 1  # one run for one scheduled time
    cron_status = (await client.cronjob_statuses())["default.tick"]
    assert cron_status.last_schedule_time == due and cron_status.active == []
    assert "tick" in cluster.shoal("get", "cronjobs", check=True).stdout

    cluster.shoal("delete", "cronjob", "tick", check=True)

    async def jobs_gone() -> bool:
        return not await its_jobs() and not await owned_pods(client, "Job", started.metadata.name)

    await wait_for(jobs_gone, timeout=30, what="the cronjob's jobs and pods gone with it")


def daemonset() -> str:
    body = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": pod_spec("exec sleep 3600", "Always"),
            },
        },
    }
    return yaml.safe_dump(body)


async def daemon_nodes(client: ShoalClient) -> list[str]:
    """The nodes with a Running daemon pod (one each)."""
    pods = await owned_pods(client, "DaemonSet", "agent")
    return sorted(
        p.node_name for p, s in pods if not p.terminating and s is not None and s.phase == "Running"
    )


async def test_a_daemonset_runs_one_pod_per_node_and_follows_nodes_taints_and_drains(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    nodes = [cluster.node, f"{cluster.node}-b", f"{cluster.node}-c"]
    for name in nodes[1:]:
        cluster.start_node(name)

    async def all_ready() -> bool:
        return set(nodes) <= await client.ready_nodes()

    await wait_for(all_ready, timeout=30, what="three Ready nodes")
    await client.apply(documents(daemonset()))

    async def on_nodes(expected: list[str]) -> bool:
        return await daemon_nodes(client) == sorted(expected)

    await wait_for(lambda: on_nodes(nodes), timeout=30, what="a daemon pod on each of three nodes")
    listing = cluster.shoal("get", "ds", check=True).stdout
    assert "agent" in listing and "DESIRED" in listing

    cluster.kill_role(nodes[2])  # the node leaves: its pod goes, none replaces it elsewhere
    await wait_for(lambda: on_nodes(nodes[:2]), timeout=30, what="the lost node's daemon pod gone")
    assert len(await owned_pods(client, "DaemonSet", "agent")) == 2
    cluster.start_node(nodes[2])  # and comes back: it gets its pod again
    await wait_for(lambda: on_nodes(nodes), timeout=40, what="the returning node's daemon pod")

    # A NoExecute taint the pod does not tolerate takes it off the node; untainted, it returns
    cluster.shoal("taint", "node", nodes[2], "dedicated=db:NoExecute", check=True)
    await wait_for(lambda: on_nodes(nodes[:2]), timeout=30, what="the tainted node's daemon pod gone")
    cluster.shoal("taint", "node", nodes[2], "dedicated-", check=True)
    await wait_for(lambda: on_nodes(nodes), timeout=30, what="the untainted node's daemon pod")

    refused = cluster.shoal("drain", nodes[1])
    assert refused.returncode != 0
    assert "--ignore-daemonsets" in refused.stderr and "default/agent-" in refused.stderr
    drained = cluster.shoal("drain", nodes[1], "--ignore-daemonsets", "--timeout", "30")
    assert drained.returncode == 0, drained.stderr
    assert f"node/{nodes[1]} drained" in drained.stdout

    async def everywhere() -> bool:
        return await daemon_nodes(client) == sorted(nodes)

    await holds_for(everywhere, 1, what="the daemon pod staying on the drained node")
    cluster.shoal("uncordon", nodes[1], check=True)

    cluster.shoal("delete", "daemonset", "agent", check=True)

    async def gone() -> bool:
        return not await owned_pods(client, "DaemonSet", "agent")

    await wait_for(gone, timeout=30, what="the daemon pods gone with their DaemonSet")


def statefulset_objects(replicas: int) -> str:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 80}]},
    }
    spec = pod_spec("hostname >> /data/boots; exec sleep 3600", restart="Always")
    spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": spec},
            "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "64Mi"}}}}
            ],
        },
    }
    return yaml.safe_dump_all([service, statefulset])


def remove_volumes(*names: str) -> None:
    for name in names:
        subprocess.run(["podman", "volume", "rm", "-f", name], capture_output=True, check=False)


def in_container(pod: Pod, script: str) -> subprocess.CompletedProcess[str]:
    [container] = node_containers(pod.node_name, **{"shoal.pod": pod.metadata.name})
    return subprocess.run(
        ["podman", "exec", container["Id"], "sh", "-c", script], capture_output=True, text=True, timeout=30
    )


async def test_a_statefulset_gives_each_ordinal_its_name_its_claim_and_its_dns_name(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    volumes = ("shoal-default-data-db-0", "shoal-default-data-db-1")
    remove_volumes(*volumes)  # each claim starts empty
    try:
        await client.apply(documents(statefulset_objects(2)))

        async def running(count: int) -> dict[str, tuple[Pod, PodStatus]] | None:
            pods = await owned_pods(client, "StatefulSet", "db")
            up = {p.metadata.name: (p, s) for p, s in pods if s is not None and s.ready and not p.terminating}
            return up if len(up) == count and len(pods) == count else None

        pods = await wait_for(lambda: running(2), timeout=60, what="db-0 and db-1 Running and Ready")
        assert sorted(pods) == ["db-0", "db-1"]
        (db0, db0_status), (db1, _) = pods["db-0"], pods["db-1"]
        # OrderedReady: db-1 was made only once db-0 was Ready
        assert db0_status.ready_since is not None
        assert db1.metadata.creation_timestamp >= db0_status.ready_since - 0.5
        claims = cluster.shoal("get", "pvc", check=True).stdout
        assert "data-db-0" in claims and "data-db-1" in claims

        def listed_ready() -> bool:
            listing = cluster.shoal("get", "sts", check=True).stdout
            return any(line.split()[:2] == ["db", "2/2"] for line in listing.splitlines())

        await wait_for(lambda: asyncio.to_thread(listed_ready), timeout=20, what="get sts saying 2/2")

        # The pod's own DNS name, from the other pod: POD.SERVICE.NAMESPACE.svc.cluster.local
        looked_up = await asyncio.to_thread(in_container, db1, "nslookup db-0.db.default.svc.cluster.local")
        assert db0_status.pod_ip in looked_up.stdout, looked_up.stdout + looked_up.stderr

        # db-0 deleted: made again under its name, with its claim and the data in it
        cluster.shoal("delete", "pod", "db-0", check=True)

        async def db0_again() -> Pod | None:
            up = await running(2)
            again = up.get("db-0") if up else None
            return again[0] if again and again[0].metadata.uid != db0.metadata.uid else None

        replaced = await wait_for(db0_again, timeout=60, what="db-0 made again")
        boots = await asyncio.to_thread(in_container, replaced, "cat /data/boots")
        assert boots.stdout.split() == ["db-0", "db-0"], boots.stdout + boots.stderr

        # Scaled down: the highest ordinal goes, its claim stays
        cluster.shoal("scale", "statefulset", "db", "--replicas", "1", check=True)
        await wait_for(lambda: running(1), timeout=60, what="db-1 gone")
        assert "db-0" in (await running(1) or {})
        assert "data-db-1" in cluster.shoal("get", "pvc", check=True).stdout

        cluster.shoal("delete", "statefulset", "db", check=True)

        async def pods_gone() -> bool:
            return not await owned_pods(client, "StatefulSet", "db")

        await wait_for(pods_gone, timeout=60, what="the statefulset's pods gone")
        assert "data-db-0" in cluster.shoal("get", "pvc", check=True).stdout  # Retain
    finally:
        cluster.shoal("delete", "-f", "-", input=statefulset_objects(1))
        for claim in ("data-db-0", "data-db-1"):
            cluster.shoal("delete", "pvc", claim)
        remove_volumes(*volumes)


def rolled(kind: str) -> str:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "roll"},
        "spec": {
            "selector": {"matchLabels": {"app": "roll"}},
            "template": {
                "metadata": {"labels": {"app": "roll"}},
                "spec": pod_spec("exec sleep 3600", "Always"),
            },
        },
    }
    if kind == "StatefulSet":
        body["spec"]["replicas"] = 2
    return yaml.safe_dump(body)


async def test_daemonsets_and_statefulsets_roll_out_restart_and_undo_from_the_command_line(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    for kind, short in (("StatefulSet", "sts"), ("DaemonSet", "ds")):
        text = rolled(kind)
        try:
            await client.apply(documents(text))
            first = await asyncio.to_thread(
                cluster.shoal, "rollout", "status", f"{short}/roll", "--timeout", "60"
            )
            assert first.returncode == 0, first.stdout + first.stderr
            before = {p.metadata.uid for p, _ in await owned_pods(client, kind, "roll")}
            cluster.shoal("rollout", "restart", f"{short}/roll", check=True)
            done = await asyncio.to_thread(
                cluster.shoal, "rollout", "status", f"{short}/roll", "--timeout", "90"
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert "rolled out" in done.stdout or "rolling update complete" in done.stdout, done.stdout
            after = await owned_pods(client, kind, "roll")
            assert before and not before & {p.metadata.uid for p, _ in after if not p.terminating}
            history = cluster.shoal("rollout", "history", f"{short}/roll", check=True).stdout
            rows = history.splitlines()[1:]  # after the header (in a pipe, no rule under it)
            assert [line.split()[0] for line in rows if line.strip()] == ["1", "2"], history
            undone = cluster.shoal("rollout", "undo", f"{short}/roll", check=True).stdout
            assert "rolled back" in undone
            back = await asyncio.to_thread(
                cluster.shoal, "rollout", "status", f"{short}/roll", "--timeout", "90"
            )
            assert back.returncode == 0, back.stdout + back.stderr
            paused = cluster.shoal("rollout", "pause", f"{short}/roll")
            assert paused.returncode == 1 and "only deployments" in paused.stderr
        finally:
            cluster.shoal("delete", "-f", "-", input=text)

        async def gone(kind: str = kind) -> bool:
            return not await owned_pods(client, kind, "roll")

        await wait_for(gone, timeout=60, what=f"the {kind}'s pods gone")
