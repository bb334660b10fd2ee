"""Jobs, CronJobs and DaemonSets on a real cluster: `shoal up` with Podman and nats-server.

The decisions themselves are table-tested (test_jobs.py, test_cronjobs.py, test_daemonsets.py);
this module shows them running real pods: a Job's completions, a Job stopping at its backoff
limit, a CronJob's run when its schedule comes due, a DaemonSet following nodes and drains.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import yaml

from shoal.client import ShoalClient
from shoal.models.pod import Pod, PodStatus
from tests.harness import TEST_IMAGE, LocalShoal, documents, holds_for, wait_for


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


async def test_a_daemonset_runs_one_pod_per_node_and_follows_nodes_and_drains(
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
