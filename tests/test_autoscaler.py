"""The autoscaler on a real cluster: Podman's CPU and memory figures, a real JetStream backlog.

The cluster samples metrics every second and evaluates HPAs every second, so that scaling
shows within seconds; the manifests shorten the scale-down stabilization window likewise.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig

from shoal.bus.connection import connect_client
from shoal.client import ShoalClient
from shoal.models.autoscaling import HPAStatus
from tests.harness import LocalShoal, backlog_metric, deployment, documents, hpa, utilization_metric, wait_for
from tests.test_cluster import pods_of, wait_running

SHOAL_UP_ARGS = ["--node-option=--metrics-interval=1", "--autoscaler-option=--sync-period=1"]

BURN_SECONDS = 20


async def replicas(client: ShoalClient, name: str) -> int:
    return (await client.deployments())[f"default.{name}"].spec.desired_replicas


async def status_of(client: ShoalClient, name: str) -> HPAStatus | None:
    return (await client.hpa_statuses()).get(f"default.{name}")


async def test_cpu_load_scales_up_then_down_after_the_window(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    # Each replica burns its whole CPU limit (200m, 4x the 50% target of its 100m request)
    # for BURN_SECONDS after it starts, then idles.
    burn = f"timeout {BURN_SECONDS} sh -c 'while :; do :; done'; exec sleep 3600"
    manifest = deployment(
        "burner", replicas=1, command=["sh", "-c", burn], cpu="100m", limits={"cpu": "200m"}
    )
    cpu = utilization_metric("cpu", 50)
    await client.apply(documents(manifest))
    await wait_running(client, "burner", 1)
    load_started = time.monotonic()
    await client.apply(documents(hpa("burner", cpu, min_replicas=1, max_replicas=3, down=5)))

    async def scaled_up() -> bool:
        return await replicas(client, "burner") == 3

    await wait_for(scaled_up, timeout=30, what="the burner scaled to its max of 3")
    to_scale = time.monotonic() - load_started
    assert to_scale < 15, f"took {to_scale:.1f}s to scale up"

    async def decided() -> Any:
        # The status with the decision is written just after the scale request it made.
        status = await status_of(client, "burner")
        return status if status is not None and status.decisions else None

    status = await wait_for(decided, timeout=10, what="the scale-up decision in the HPA's status")
    first = status.decisions[0]
    assert (first.from_replicas, first.to_replicas) == (1, 3)
    # 200m of a 100m request is 200% against 50%: the metric alone asked for more than max
    assert first.readings[0].current is not None and first.readings[0].current > 100
    assert first.readings[0].replicas is not None and first.readings[0].replicas > 3

    top = await asyncio.to_thread(cluster.shoal, "top", "pods", check=True)
    assert any(line.startswith("burner-") for line in top.stdout.splitlines()), top.stdout
    await wait_running(client, "burner", 3)

    async def scaled_down() -> bool:
        return await replicas(client, "burner") == 1

    # Burning ends BURN_SECONDS after each pod started; then the 5 s window; then down to min.
    await wait_for(scaled_down, timeout=BURN_SECONDS + 30, what="the burner back at its min of 1")

    async def decided_down() -> bool:
        status = await status_of(client, "burner")
        return status is not None and status.decisions[-1].to_replicas == 1

    await wait_for(decided_down, timeout=10, what="the scale-down decision in the HPA's status")
    described = await asyncio.to_thread(cluster.shoal, "describe", "hpa", "burner", check=True)
    assert "Recent decisions" in described.stdout and "SuccessfulRescale" in described.stdout
    table = await asyncio.to_thread(cluster.shoal, "get", "hpa", check=True)
    assert "Deployment/burner" in table.stdout and "cpu:" in table.stdout
    await client.delete(
        documents=documents(manifest + "---\n" + hpa("burner", cpu, min_replicas=1, max_replicas=3, down=5))
    )


async def test_memory_target_scales_to_max_and_no_further(cluster: LocalShoal, client: ShoalClient) -> None:
    # About 40 MB held by each replica against a 16Mi request: 250% of a 100% target.
    hold = "x=$(head -c 40000000 /dev/zero | tr '\\0' a); while :; do sleep 3600; done"  # the shell keeps x
    manifest = deployment(
        "hog", replicas=1, command=["sh", "-c", hold], memory="16Mi", limits={"memory": "128Mi"}
    )
    memory = utilization_metric("memory", 100)
    autoscaler = hpa("hog", memory, min_replicas=1, max_replicas=2, down=5)
    await client.apply(documents(manifest + "---\n" + autoscaler))

    async def at_max() -> HPAStatus | None:
        status = await status_of(client, "hog")
        return status if await replicas(client, "hog") == 2 and status and status.decisions else None

    status = await wait_for(at_max, timeout=40, what="the hog scaled to its max of 2")
    await wait_running(client, "hog", 2)

    async def measured_both() -> HPAStatus | None:
        current = await status_of(client, "hog")
        reading = current.readings[0] if current and current.readings else None
        return current if reading and reading.replicas and current.current_replicas == 2 else None

    status = await wait_for(measured_both, timeout=20, what="both replicas measured")
    # the metric asks for more than max; max holds
    assert status.readings[0].replicas is not None and status.readings[0].replicas > 2
    assert status.desired_replicas == 2 and await replicas(client, "hog") == 2
    assert all(d.to_replicas <= 2 for d in status.decisions)
    await client.delete(documents=documents(manifest + "---\n" + autoscaler))


async def test_a_backlog_scales_workers_from_zero_to_max_and_back(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    # The queue and its workers are the user's application: it uses NATS as an app identity.
    app = await connect_client(cluster.url, "worker-app", access=cluster.access_as("app", "worker"))
    js = app.jetstream()
    await js.add_stream(name="JOBS", subjects=["jobs.>"])
    await js.add_consumer("JOBS", ConsumerConfig(durable_name="workers", ack_policy=AckPolicy.EXPLICIT))
    try:
        manifest = deployment("worker", replicas=0, command=["sleep", "3600"])
        pending = backlog_metric("JOBS", "workers", "5")
        autoscaler = hpa("worker", pending, min_replicas=0, max_replicas=3, down=3)
        await client.apply(documents(manifest + "---\n" + autoscaler))

        async def evaluated_idle() -> bool:
            status = await status_of(client, "worker")
            return status is not None and bool(status.readings) and status.readings[0].current == 0

        await wait_for(evaluated_idle, timeout=20, what="the idle queue evaluated")
        assert await replicas(client, "worker") == 0

        first_message = time.monotonic()
        for i in range(20):
            await js.publish(f"jobs.{i}", b"work")
        await wait_running(client, "worker", 3, timeout=30)
        from_zero = time.monotonic() - first_message
        assert from_zero < 15, f"{from_zero:.1f}s from the first message to 3 Ready workers"

        # The workers' job, done here: take and acknowledge every message.
        subscription = await js.pull_subscribe_bind("workers", stream="JOBS")
        drained = 0
        while drained < 20:
            for message in await subscription.fetch(20 - drained, timeout=5):
                await message.ack()
                drained += 1

        async def back_to_zero() -> bool:
            return await replicas(client, "worker") == 0 and not await pods_of(client, "worker")

        await wait_for(back_to_zero, timeout=30, what="the workers scaled back to zero")
        status = await status_of(client, "worker")
        assert status is not None
        assert [(d.from_replicas, d.to_replicas) for d in status.decisions] == [(0, 3), (3, 0)]
        await client.delete(documents=documents(manifest + "---\n" + autoscaler))
    finally:
        await js.delete_stream("JOBS")
        await app.close()
