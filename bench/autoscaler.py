"""Benchmark: the autoscaler's reaction times on Podman, and its loop cost with 1,000 HPAs.

    .venv/bin/python bench/autoscaler.py latency [--trials 5] [--metrics-interval 1] [--sync-period 1]
    .venv/bin/python bench/autoscaler.py loop [--hpas 1000] [--nodes 100]

``latency`` runs ``shoal up`` on the local Podman and measures, per trial:
- CPU: from the moment a burning pod is Running (load starts) to the two replicas the HPA
  adds being Ready;
- scale from zero: from the first message published into an idle JetStream queue to the
  first worker Ready (minReplicas 0, the worker deployment at 0).

``loop`` runs nats-server, the API, the scheduler and a process of hollow nodes, creates
``--hpas`` deployments of one pod each with an HPA apiece, and times the autoscaler's rounds
(every HPA evaluated): a steady round (no change), and a round in which every HPA scales.
It also times the evaluation alone, without NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nats.js.api import AckPolicy, ConsumerConfig

from shoal.actors.autoscaler.actor import AutoscalerActor, AutoscalerSettings
from shoal.actors.autoscaler.evaluate import evaluate, next_status
from shoal.actors.autoscaler.recommend import TargetPod
from shoal.bus.connection import connect_client
from shoal.bus.nats_server import NatsServer, NatsServerConfig
from shoal.client import ShoalClient
from shoal.models.autoscaling import HorizontalPodAutoscaler
from shoal.processes import die_with_parent
from tests.harness import (
    LocalShoal,
    backlog_metric,
    deployment,
    documents,
    hpa,
    remove_node_containers,
    unique_name,
    utilization_metric,
)

SHOAL = [sys.executable, "-m", "shoal"]


PENDING = backlog_metric("JOBS", "workers", "5")


def summary(label: str, values: list[float]) -> None:
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    print(
        f"{label}: n={len(values)} p50 {p50:.2f}s  max {ordered[-1]:.2f}s  "
        f"({', '.join(f'{v:.2f}' for v in values)})",
        flush=True,
    )


async def ready_count(client: ShoalClient, app: str) -> tuple[int, list[float]]:
    pods = await client.pods()
    statuses = await client.pod_statuses(pods)
    ready_since = []
    for pod in pods.values():
        status = statuses.get(pod.key)
        if pod.metadata.labels.get("app") != app or pod.terminating or status is None:
            continue
        if status.uid == pod.metadata.uid and status.ready:
            ready_since.append(status.ready_since or 0.0)
    return len(ready_since), ready_since


async def wait(probe, timeout: float = 60.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await probe():
            return value
        await asyncio.sleep(interval)
    raise TimeoutError("condition not met in time")


async def latency(trials: int, metrics_interval: float, sync_period: float) -> None:
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-hpa-"))
    cluster = LocalShoal(
        root,
        node=unique_name("bench"),
        extra_args=[
            f"--node-option=--metrics-interval={metrics_interval}",
            f"--autoscaler-option=--sync-period={sync_period}",
        ],
    )
    cluster.start()
    try:
        async with await cluster.connect() as client:
            print(f"metrics every {metrics_interval:g}s, HPAs evaluated every {sync_period:g}s", flush=True)
            cpu_times = []
            for trial in range(trials):
                name = f"burn{trial}"
                burn = "timeout 60 sh -c 'while :; do :; done'; exec sleep 3600"
                text = deployment(
                    name, replicas=1, command=["sh", "-c", burn], cpu="100m", limits={"cpu": "200m"}
                )
                text += "---\n" + hpa(name, utilization_metric("cpu", 50), min_replicas=1, max_replicas=3)
                await client.apply(documents(text))
                _, first = await wait(lambda n=name: _at_least(client, n, 1))
                load_started = min(first)
                _, since = await wait(lambda n=name: _at_least(client, n, 3), timeout=90)
                cpu_times.append(max(since) - load_started)
                await client.delete(documents=documents(text))
                await wait(lambda n=name: _none_left(client, n))
            summary("CPU load start -> 2 new replicas Ready", cpu_times)

            js = client.js
            await js.add_stream(name="JOBS", subjects=["jobs.>"])
            await js.add_consumer(
                "JOBS", ConsumerConfig(durable_name="workers", ack_policy=AckPolicy.EXPLICIT)
            )
            text = deployment("worker", replicas=0, command=["sleep", "3600"])
            text += "---\n" + hpa("worker", PENDING, min_replicas=0, max_replicas=3)
            await client.apply(documents(text))
            subscription = await js.pull_subscribe_bind("workers", stream="JOBS")
            zero_times = []
            for _ in range(trials):
                await wait(lambda: _none_left(client, "worker"))
                await asyncio.sleep(sync_period * 2)  # the idle queue evaluated at zero
                sent = time.time()
                await js.publish("jobs.1", b"work")
                _, since = await wait(lambda: _at_least(client, "worker", 1))
                zero_times.append(min(since) - sent)
                for message in await subscription.fetch(1, timeout=5):
                    await message.ack()
            summary("first message in an idle queue -> a worker Ready", zero_times)
            await client.delete(documents=documents(text))
            await js.delete_stream("JOBS")
    finally:
        cluster.stop()
        remove_node_containers(cluster.node)


async def _at_least(client: ShoalClient, app: str, count: int) -> tuple[int, list[float]] | None:
    found, since = await ready_count(client, app)
    return (found, since) if found >= count else None


async def _none_left(client: ShoalClient, app: str) -> bool:
    return not any(p.metadata.labels.get("app") == app for p in (await client.pods()).values())


def evaluation_alone(count: int) -> None:
    """The decisions alone: ``count`` HPAs of 3 measured pods each, no NATS."""
    models = [
        HorizontalPodAutoscaler.model_validate(
            yaml.safe_load(hpa(f"d{i}", utilization_metric("cpu", 50), min_replicas=1, max_replicas=10))
        )
        for i in range(count)
    ]
    pods = [TargetPod(f"p{i}", True, 100, 1 << 26, 40 + i * 10, 1 << 25) for i in range(3)]
    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for model in models:
            result = evaluate(model, 3, pods, {}, [], [], 1000.0)
            next_status(model, None, result, 1000.0)
    per_round = (time.perf_counter() - started) / rounds
    print(f"evaluation alone: {count} HPAs in {per_round * 1000:.1f} ms per round", flush=True)


async def loop(count: int, nodes: int) -> None:
    evaluation_alone(count)
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-loop-"))
    server = NatsServer(NatsServerConfig(store_dir=root / "js", port=0), run_dir=root)
    server.start()
    logs = {name: open(root / f"{name}.log", "w") for name in ("api", "scheduler", "fleet")}
    argv = {
        "api": [*SHOAL, "api"],
        "scheduler": [*SHOAL, "scheduler", "--log-level", "warning"],
        "fleet": [
            *SHOAL, "node", "--runtime", "hollow", "--count", str(nodes), "--name", "hollow",
            "--heartbeat", "5", "--lease", "15", "--workers", "2", "--max-pods", "1000",
            "--metrics-interval", "5", "--log-level", "warning",
        ],
    }  # fmt: skip
    processes = [
        subprocess.Popen(
            [*args, "--server", server.url],
            stdout=logs[name],
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        for name, args in argv.items()
    ]
    actor: AutoscalerActor | None = None
    try:
        async with await ShoalClient.connect(server.url) as client:
            while len(await client.nodes()) < nodes:
                await asyncio.sleep(0.2)
            names = [f"d{i}" for i in range(count)]
            for start in range(0, count, 100):
                batch = "---\n".join(
                    deployment(n, replicas=1, cpu="100m") for n in names[start : start + 100]
                )
                await client.apply(documents(batch))
            started = time.monotonic()

            async def all_running() -> bool:
                statuses = await client.pod_statuses()
                return sum(1 for s in statuses.values() if s.phase == "Running") >= count

            await wait(all_running, timeout=300, interval=1.0)
            print(f"{count} deployments Running on {nodes} hollow nodes ({time.monotonic() - started:.1f}s)")

            nc = await connect_client(server.url, "bench-autoscaler")
            actor = AutoscalerActor(nc, AutoscalerSettings(sync_period=3600))
            await actor.start()
            await actor.lease.elected.wait()

            async def sampled() -> bool:
                return len(actor.samples(time.time())) >= count  # type: ignore[union-attr]

            await wait(sampled, timeout=60, interval=0.5)
            # Hollow pods use half their request: a 50% target is met, nothing changes.
            for start in range(0, count, 100):
                batch = "---\n".join(
                    hpa(n, utilization_metric("cpu", 50), min_replicas=1, max_replicas=3)
                    for n in names[start : start + 100]
                )
                await client.apply(documents(batch))
            await wait(lambda: _hpas_known(actor, count), timeout=60)
            steady = []
            for _ in range(5):
                begun = time.perf_counter()
                await actor.run_round()
                steady.append(time.perf_counter() - begun)
            statuses = await client.hpa_statuses()
            decisions = sum(len(s.decisions) for s in statuses.values())
            print(
                f"steady round, {count} HPAs: p50 {statistics.median(steady) * 1000:.0f} ms"
                f" (rounds: {', '.join(f'{v * 1000:.0f}' for v in steady)} ms); {decisions} scaling decisions"
            )
            # A 20% target: every deployment is asked for ceil(1 * 50 / 20) = 3 replicas.
            for start in range(0, count, 100):
                batch = "---\n".join(
                    hpa(n, utilization_metric("cpu", 20), min_replicas=1, max_replicas=3)
                    for n in names[start : start + 100]
                )
                await client.apply(documents(batch))
            await wait(lambda: _targets_are(actor, 20), timeout=60)
            actor.wake.clear()
            begun = time.perf_counter()
            await actor.run_round()
            scaling = time.perf_counter() - begun
            deployments = await client.deployments()
            scaled = sum(1 for d in deployments.values() if d.spec.desired_replicas == 3)
            print(
                f"scaling round, {count} HPAs: {scaling * 1000:.0f} ms;"
                f" {scaled} deployments now at 3 replicas"
            )
            await actor.stop()
            await nc.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        server.stop()


async def _hpas_known(actor: AutoscalerActor, count: int) -> bool:
    return len(actor.hpas.entries) >= count


async def _targets_are(actor: AutoscalerActor, percent: int) -> bool:
    return all(e.value.spec.metrics[0].target.amount == percent for e in actor.hpas.entries.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--trials", type=int, default=5)
    lat.add_argument("--metrics-interval", type=float, default=1.0)
    lat.add_argument("--sync-period", type=float, default=1.0)
    lp = sub.add_parser("loop")
    lp.add_argument("--hpas", type=int, default=1000)
    lp.add_argument("--nodes", type=int, default=100)
    args = parser.parse_args()
    if args.mode == "latency":
        asyncio.run(latency(args.trials, args.metrics_interval, args.sync_period))
    else:
        asyncio.run(loop(args.hpas, args.nodes))


if __name__ == "__main__":
    main()
