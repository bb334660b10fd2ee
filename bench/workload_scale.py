"""Benchmark: a DaemonSet and a big Job on hollow nodes, beside a big Deployment, in one run.

Starts nats-server (JetStream, fsync always) and the roles as separate processes, exactly as
the README runs them (`shoal api`, `shoal scheduler`, `shoal node --runtime hollow --count N`,
every setting at its default), then, one after another on the same cluster:

1. a Deployment of P replicas: apply until all P Running (the anchor);
2. a DaemonSet: apply until its pod is available on every one of the N nodes;
3. a Job of C completions, parallelism Q, whose hollow pods exit 0 at once (`true`): apply
   until its status says Complete with C succeeded.

Each workload is deleted, and its pods gone, before the next starts. Prints each time, its
pods/s and its ratio to the Deployment's, and each role's CPU and peak RSS. A phase that does
not finish within the give-up time fails the run (exit 1).

    .venv/bin/python bench/workload_scale.py [--nodes 1000] [--pods 10000] [--completions 10000]
        [--parallelism 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scheduler_scale import cpu_seconds, peak_rss_mb, start, stop_all
from shoal.bus import kv
from shoal.bus.cache import KVCache
from shoal.bus.kv import Bucket
from shoal.bus.nats_server import NatsServer, NatsServerConfig
from shoal.client import ShoalClient
from tests.harness import deployment, documents

GIVE_UP = 300.0


def daemonset(name: str) -> str:
    body = yaml.safe_load(deployment(name, cpu="10m", memory="8Mi"))
    body["kind"] = "DaemonSet"
    body["spec"].pop("replicas", None)
    body["spec"].pop("strategy", None)
    return yaml.safe_dump(body)


def job(name: str, completions: int, parallelism: int) -> str:
    body = yaml.safe_load(deployment(name, cpu="10m", memory="8Mi", command=["true"]))
    spec = body["spec"]
    template = spec["template"]
    template["spec"]["restartPolicy"] = "Never"
    template["metadata"]["labels"] = {"job": name}
    body.update(apiVersion="batch/v1", kind="Job")
    body["spec"] = {"completions": completions, "parallelism": parallelism, "template": template}
    return yaml.safe_dump(body)


async def timed(what: str, check: Callable[[], Awaitable[str | None]], every: float = 0.25) -> float:
    """Seconds until ``check`` returns None (done); it returns progress to print meanwhile."""
    started = time.monotonic()
    last_print = started
    while True:
        progress = await check()
        if progress is None:
            return time.monotonic() - started
        now = time.monotonic()
        if now - last_print >= 5:
            print(f"  {now - started:5.1f}s {what}: {progress}", flush=True)
            last_print = now
        if now - started > GIVE_UP:
            raise TimeoutError(f"{what}: gave up after {GIVE_UP:.0f}s at {progress}")
        await asyncio.sleep(every)


async def run(args: argparse.Namespace, root: Path) -> int:
    server = NatsServer(NatsServerConfig(store_dir=root / "js", port=0), run_dir=root)
    server.start()
    fleet = ["node", "--runtime", "hollow", "--count", str(args.nodes), "--name", "hollow"]
    processes = {
        "api": start("api", ["api"], server.url, root),
        "scheduler": start("scheduler", ["scheduler"], server.url, root),
        "fleet": start("fleet", fleet, server.url, root),
    }
    try:
        async with await ShoalClient.connect(server.url) as client:

            async def nodes_ready() -> str | None:
                ready = len(await client.ready_nodes())
                return None if ready >= args.nodes else f"{ready} Ready"

            print(
                f"{args.nodes} hollow nodes Ready in {await timed('nodes', nodes_ready, 0.5):.1f}s",
                flush=True,
            )
            # Pods and their statuses followed by KV watches: reading 10,000 records a few times a
            # second would cost the roles the CPU this measures them by.
            running: set[str] = set()

            def status_changed(key, old, new) -> None:  # type: ignore[no-untyped-def]
                if new is not None and new.value.phase == "Running":
                    running.add(key)
                else:
                    running.discard(key)

            pods = KVCache(await Bucket.open(client.js, kv.PODS))
            statuses = KVCache(await Bucket.open(client.js, kv.POD_STATUS), status_changed)
            watchers = [asyncio.create_task(pods.run()), asyncio.create_task(statuses.run())]
            await pods.synced.wait()
            await statuses.synced.wait()
            cpu_before = {name: cpu_seconds(p.pid) for name, p in processes.items()}

            async def pods_gone() -> str | None:
                left = len(pods.entries)
                return None if left == 0 else f"{left} pods left"

            async def deployment_running() -> str | None:
                return None if len(running) >= args.pods else f"{len(running)} Running"

            async def daemons_available() -> str | None:
                state = (await client.daemonset_statuses()).get("default.agents")
                available = state.number_available if state else 0
                return None if available >= args.nodes else f"{available} available"

            async def job_complete() -> str | None:
                state = (await client.job_statuses()).get("default.batch")
                if state is not None and any(
                    c.type == "Complete" and c.status == "True" for c in state.conditions
                ):
                    return None
                return f"{state.succeeded if state else 0} succeeded, {state.active if state else 0} active"

            results: dict[str, tuple[float, int]] = {}
            await client.apply(documents(deployment("big", replicas=args.pods, cpu="10m", memory="8Mi")))
            results["deployment"] = (await timed("deployment", deployment_running), args.pods)
            await client.delete(documents=documents(deployment("big")))
            cleared = await timed("cleanup", pods_gone, 0.5)
            print(f"  (deployment's {args.pods} pods gone {cleared:.1f}s after its deletion)", flush=True)

            await client.apply(documents(daemonset("agents")))
            results["daemonset"] = (await timed("daemonset", daemons_available), args.nodes)
            await client.delete(documents=documents(daemonset("agents")))
            await timed("cleanup", pods_gone, 0.5)

            text = job("batch", args.completions, args.parallelism)
            await client.apply(documents(text))
            results["job"] = (await timed("job", job_complete, 0.5), args.completions)
            await client.delete(documents=documents(text))
            await timed("cleanup", pods_gone, 0.5)

            anchor = results["deployment"][0]
            described = {
                "deployment": f"Deployment of {args.pods} replicas, apply to all Running",
                "daemonset": f"DaemonSet on {args.nodes} nodes, apply to available everywhere",
                "job": f"Job of {args.completions} completions x{args.parallelism}, apply to Complete",
            }
            for name, (seconds, pods) in results.items():
                print(
                    f"{described[name]}: {seconds:.2f}s ({pods / seconds:.0f} pods/s,"
                    f" {seconds / anchor:.2f}x the deployment)"
                )
            for watcher in watchers:
                watcher.cancel()
            for name, process in processes.items():
                print(
                    f"  {name:9}: CPU {cpu_seconds(process.pid) - cpu_before[name]:6.1f} s during the run,"
                    f" peak RSS {peak_rss_mb(process.pid):4.0f} MB"
                )
        return 0
    except TimeoutError as err:
        print(f"FAILED: {err}; the roles' logs are in {root}")
        return 1
    finally:
        stop_all(processes.values(), server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--completions", type=int, default=10000)
    parser.add_argument("--parallelism", type=int, default=1000)
    arguments = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="shoal-bench-workloads-"))
    print(f"(state and logs in {state})")
    sys.exit(asyncio.run(run(arguments, state)))
