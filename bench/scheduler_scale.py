"""Benchmark: the scheduler at scale, with hollow nodes and a real nats-server.

Starts nats-server (JetStream, fsync always), the API actor, the scheduler and one process
running N hollow node actors (in-memory runtime, as kubemark does), then applies one
deployment of P replicas and times until the hollow nodes report all P pods Running.
The count is followed with a KV watch, not by polling, so measuring costs little.
Prints the time, pods/s and the peak RSS of the scheduler and of the fleet process.

    .venv/bin/python bench/scheduler_scale.py --nodes 1000 --pods 10000 [--spread] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.bus import kv
from shoal.bus.cache import KVCache
from shoal.bus.kv import Bucket
from shoal.bus.nats_server import NatsServer, NatsServerConfig
from shoal.client import ShoalClient
from shoal.processes import die_with_parent
from tests.harness import deployment, documents

SHOAL = [sys.executable, "-m", "shoal"]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def manifest(pods: int, spread: bool) -> str:
    text = deployment("big", replicas=pods, cpu="10m", memory="16Mi")
    if not spread:
        return text
    import yaml

    body = yaml.safe_load(text)
    body["spec"]["template"]["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "big"}},
        }
    ]
    body["spec"]["template"]["spec"]["affinity"] = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "other"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    return yaml.safe_dump(body)


async def run(nodes: int, pods: int, spread: bool, profile: bool, root: Path) -> None:
    server = NatsServer(NatsServerConfig(store_dir=root / "js", port=0), run_dir=root)
    server.start()
    logs = [open(root / f"{name}.log", "w") for name in ("api", "scheduler", "fleet")]
    fleet_args = [
        "node",
        "--runtime",
        "hollow",
        "--count",
        str(nodes),
        "--name",
        "hollow",
        "--workers",
        "2",
        "--max-pods",
        "1000",
        "--log-level",
        "warning",
    ]
    if spread:
        fleet_args += ["--label", "zone=z1"]  # relabelled below into 10 zones
    processes = [
        subprocess.Popen(
            [*SHOAL, "api", "--server", server.url],
            stdout=logs[0],
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        ),
        subprocess.Popen(
            [
                *SHOAL,
                "scheduler",
                "--server",
                server.url,
                "--log-level",
                os.environ.get("BENCH_SCHEDULER_LOG", "info"),
            ],
            stdout=logs[1],
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        ),
        subprocess.Popen(
            [*SHOAL, *fleet_args, "--server", server.url],
            stdout=logs[2],
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        ),
    ]
    try:
        async with await ShoalClient.connect(server.url) as client:
            started = time.monotonic()
            while len(await client.nodes()) < nodes:
                await asyncio.sleep(0.2)
            print(f"{nodes} hollow nodes registered in {time.monotonic() - started:.1f}s", flush=True)
            if spread:
                for index, name in enumerate(sorted(await client.nodes())):
                    await client.update_node(name, labels={"zone": f"z{index % 10}"})
            await asyncio.sleep(3)  # let every node's lease be seen at least once
            running: dict[str, str] = {}
            done = asyncio.Event()

            def changed(key, old, new) -> None:  # type: ignore[no-untyped-def]
                if new is not None and new.value.phase == "Running":
                    running[key] = new.value.node_name
                    if len(running) >= pods:
                        done.set()

            watch = KVCache(await Bucket.open(client.js, kv.POD_STATUS), changed)
            watcher = asyncio.create_task(watch.run())
            await watch.synced.wait()
            started = time.monotonic()
            await client.apply(documents(manifest(pods, spread)))
            if profile:
                for role, pid in (("scheduler", processes[1].pid), ("fleet", processes[2].pid)):
                    subprocess.Popen(
                        [
                            "py-spy",
                            "record",
                            "--nonblocking",
                            "-d",
                            "12",
                            "-f",
                            "speedscope",
                            "-o",
                            str(root / f"{role}.json"),
                            "-p",
                            str(pid),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
            while not done.is_set():
                try:
                    await asyncio.wait_for(done.wait(), 2.0)
                except TimeoutError:
                    print(f"  {time.monotonic() - started:5.1f}s {len(running)} running", flush=True)
                if time.monotonic() - started > 120:
                    pods_now = await client.pods()
                    bound = sum(1 for p in pods_now.values() if p.node_name)
                    print(
                        f"giving up after 120 s: {len(pods_now)} pods stored, {bound} bound;"
                        f" the roles' logs are in {root}"
                    )
                    break
            elapsed = time.monotonic() - started
            watcher.cancel()
            print(
                f"{pods} pods on {nodes} hollow nodes: {elapsed:.2f}s from apply to all Running"
                f" ({pods / elapsed:.0f} pods/s)"
            )
            if spread:
                zones = {name: node.labels.get("zone") for name, node in (await client.nodes()).items()}
                specs = await client.node_specs()
                zones = {name: (specs[name].labels or {}).get("zone", zone) for name, zone in zones.items()}
                per_zone: dict[str, int] = {}
                for node_name in running.values():
                    per_zone[zones[node_name]] = per_zone.get(zones[node_name], 0) + 1
                skew = max(per_zone.values()) - min(per_zone.values())
                print(f"  per zone: {sorted(per_zone.values())}; skew {skew}")
            cpu = {
                name: cpu_seconds(pid)
                for name, pid in (
                    ("nats-server", server.process.pid if server.process else 0),
                    ("scheduler", processes[1].pid),
                    ("fleet", processes[2].pid),
                )
            }
            print("CPU seconds used, whole run: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
            print(
                f"peak RSS: scheduler {peak_rss_mb(processes[1].pid):.0f} MB,"
                f" hollow fleet {peak_rss_mb(processes[2].pid):.0f} MB"
            )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument(
        "--spread", action="store_true", help="topology spread over 10 zones and anti-affinity on"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the scheduler and the fleet (speedscope files)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-scale-"))
    print(f"(state and logs in {root})")
    asyncio.run(run(args.nodes, args.pods, args.spread, args.profile, root))
