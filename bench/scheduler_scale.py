"""Benchmark: the control plane at scale, with hollow nodes and a real nats-server.

Starts nats-server (JetStream, fsync always) and the roles as separate processes, exactly as
the README runs them: `shoal api`, `shoal scheduler` and `shoal node --runtime hollow --count N`
(in-memory runtimes, as kubemark does), every setting at its default. Then applies one
deployment of P replicas and times until the hollow nodes report all P pods Running,
following the count with a KV watch rather than polling. With `--probe`, a second
deployment is scaled 0 -> 1 one second into the big apply, and the time until its pod is
bound and Running is printed. Also printed: nodes marked NotReady and pods evicted during the
run (both should be 0), each process's longest event-loop stall, its CPU and peak RSS. A run
that gives up exits non-zero.

    .venv/bin/python bench/scheduler_scale.py --nodes 1000 --pods 10000 [--probe] [--spread] [--profile]
    .venv/bin/python bench/scheduler_scale.py --nodes 5000 --pods 50000 --probe
    .venv/bin/python bench/scheduler_scale.py --compare-security --rounds 3
    .venv/bin/python bench/scheduler_scale.py --compare-replication --secure --rounds 3

With ``--secure``, nats-server speaks TLS and lets in only identities issued for the run, with
each role's permissions (as ``shoal up`` sets them up); ``--compare-security`` runs plain and
secure rounds in turn in one invocation and prints the medians and their ratio. With
``--nats-cluster 3`` the roles run against three clustered nats-servers (every bucket and the
event stream on three); ``--compare-replication`` runs one-server and three-server rounds in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.bus import kv, subjects
from shoal.bus.cache import KVCache
from shoal.bus.kv import Bucket
from shoal.bus.nats_server import NatsServer, NatsServerConfig, ServerTLS
from shoal.client import ShoalClient
from shoal.processes import die_with_parent
from shoal.security.access import Access
from shoal.security.authority import Authority
from tests.harness import deployment, documents

SHOAL = [sys.executable, "-m", "shoal"]
GIVE_UP = 180.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def manifest(name: str, pods: int, spread: bool) -> str:
    text = deployment(name, replicas=pods, cpu="10m", memory="8Mi")
    if not spread:
        return text
    body = yaml.safe_load(text)
    body["spec"]["template"]["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": name}},
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


def start(
    role: str, argv: list[str], url: str, root: Path, access: Access | None = None
) -> subprocess.Popen[bytes]:
    log = open(root / f"{role}.log", "w")
    level = os.environ.get("BENCH_LOG_LEVEL", "info")
    secured = (
        ["--credentials", str(access.credentials), "--tls-ca", str(access.ca)]
        if access is not None and access.credentials is not None and access.ca is not None
        else []
    )
    return subprocess.Popen(
        [*SHOAL, *argv, "--server", url, "--log-level", level, *secured],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )


def stop_all(processes: Iterable[subprocess.Popen[bytes]], server: NatsServer) -> None:
    """Stop the roles (all signalled first, then waited for), then nats-server."""
    stopping = list(processes)
    for process in stopping:
        process.terminate()
    for process in stopping:
        process.wait(15)
    server.stop()


def access_for(authority: Authority | None, role: str) -> Access | None:
    return None if authority is None else Access(authority.issue(role), authority.ca)


async def start_servers(root: Path, authority: Authority | None, count: int) -> tuple[list[NatsServer], str]:
    """One nats-server, or ``count`` clustered ones as `shoal up --nats-cluster` runs them (state
    made once, on three of them); their URL list."""
    if authority is not None:
        for role in ("admin", "api", "scheduler", "fleet"):
            authority.issue(role)
    if count > 1:
        from shoal.cli.up import jetstream_ready, nats_servers

        servers = nats_servers(root, 0, count, authority)
        for server in servers:
            server.start()
        url = ",".join(server.url for server in servers)
        await jetstream_ready(url, access_for(authority, "admin") or Access(), count)
        return servers, url
    config = NatsServerConfig(store_dir=root / "js", port=0)
    if authority is not None:
        cert, key = authority.server_cert("shoal", ["127.0.0.1", "localhost"])
        config.tls = ServerTLS(cert=cert, key=key, ca=authority.ca)
        config.authorization = authority.authorization
    server = NatsServer(config, run_dir=root)
    server.start()
    return [server], server.url


async def run(
    args: argparse.Namespace, root: Path, secure: bool = False, servers: int = 1
) -> tuple[int, float]:
    authority = Authority(root) if secure else None
    nats, url = await start_servers(root, authority, servers)
    fleet = ["node", "--runtime", "hollow", "--count", str(args.nodes), "--name", "hollow"]
    if args.spread:
        fleet += ["--label", "zone=z1"]  # relabelled below into 10 zones
    processes = {
        "api": start("api", ["api"], url, root, access_for(authority, "api")),
        "scheduler": start("scheduler", ["scheduler"], url, root, access_for(authority, "scheduler")),
        "fleet": start("fleet", fleet, url, root, access_for(authority, "fleet")),
    }
    code = 0
    elapsed = float("nan")
    try:
        async with await ShoalClient.connect(url, access=access_for(authority, "admin")) as client:
            started = time.monotonic()
            while len(await client.ready_nodes()) < args.nodes:
                if time.monotonic() - started > 120:
                    print(
                        f"FAILED: {len(await client.ready_nodes())} of {args.nodes} nodes Ready after 120 s"
                    )
                    return 1, elapsed
                await asyncio.sleep(0.5)
            pods_stream = await client.js.stream_info(f"KV_{kv.PODS.name}")
            print(
                f"{args.nodes} hollow nodes Ready in {time.monotonic() - started:.1f}s"
                f" ({len(nats)} nats-server(s), the pods bucket on {pods_stream.config.num_replicas})",
                flush=True,
            )
            if args.spread:
                for index, name in enumerate(sorted(await client.nodes())):
                    await client.update_node(name, labels={"zone": f"z{index % 10}"})
            if args.probe:
                probe = yaml.safe_load(manifest("probe", 0, False))
                probe["metadata"]["namespace"] = "probe"
                await client.apply(documents(yaml.safe_dump(probe)))
            not_ready: set[str] = set()
            evicted: set[str] = set()

            async def counted(msg) -> None:  # type: ignore[no-untyped-def]
                token = msg.subject.split(".")
                (not_ready if token[-1] == "NodeNotReady" else evicted).add(token[-2])

            watchers = [
                await client.nc.subscribe(subjects.event("Node", "", "*", "NodeNotReady"), cb=counted),
                await client.nc.subscribe(subjects.event("Pod", "*", "*", "Evicted"), cb=counted),
            ]
            running: dict[str, str] = {}
            done = asyncio.Event()
            probe_running: list[float] = []

            def changed(key, old, new) -> None:  # type: ignore[no-untyped-def]
                if new is None or new.value.phase != "Running":
                    return
                if new.value.namespace == "probe":
                    probe_running.append(time.monotonic())
                    return
                running[key] = new.value.node_name
                if len(running) >= args.pods:
                    done.set()

            def probe_changed(key, old, new) -> None:  # type: ignore[no-untyped-def]
                nonlocal probe_bound
                if new is not None and new.value.node_name and probe_bound is None:
                    probe_bound = time.monotonic()

            probe_at = probe_bound = None
            probe_watch = KVCache(await Bucket.open(client.js, kv.PODS), probe_changed, keys="probe.*")
            probe_watcher = asyncio.create_task(probe_watch.run())
            await probe_watch.synced.wait()
            watch = KVCache(await Bucket.open(client.js, kv.POD_STATUS), changed)
            watcher = asyncio.create_task(watch.run())
            await watch.synced.wait()
            cpu_before = {name: cpu_seconds(p.pid) for name, p in processes.items()}
            started = time.monotonic()
            await client.apply(documents(manifest("big", args.pods, args.spread)))
            if args.profile:
                for role in ("scheduler", "fleet"):
                    subprocess.Popen(
                        ["py-spy", "record", "--nonblocking", "-d", "12", "-f", "speedscope",
                         "-o", str(root / f"{role}.json"), "-p", str(processes[role].pid)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
            while not done.is_set():
                if args.probe and probe_at is None and time.monotonic() - started >= 1.0:
                    probe_at = time.monotonic()
                    await client.scale("probe", "probe", 1)

                try:
                    await asyncio.wait_for(done.wait(), 0.1 if probe_at and not probe_bound else 2.0)
                except TimeoutError:
                    if not probe_at or probe_bound:
                        print(f"  {time.monotonic() - started:5.1f}s {len(running)} running", flush=True)
                if time.monotonic() - started > GIVE_UP:
                    pods_now = await client.pods()
                    bound = sum(1 for p in pods_now.values() if p.node_name)
                    print(
                        f"FAILED: gave up after {GIVE_UP:.0f} s with {len(running)} of {args.pods} Running:"
                        f" {len(pods_now)} pods stored, {bound} bound; the roles' logs are in {root}"
                    )
                    code = 1
                    break
            elapsed = time.monotonic() - started
            if probe_at is not None:
                deadline = time.monotonic() + 20
                while not probe_running and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            watcher.cancel()
            probe_watcher.cancel()
            if code == 0:
                print(
                    f"{args.pods} pods on {args.nodes} hollow nodes: {elapsed:.2f}s from apply to all Running"
                    f" ({args.pods / elapsed:.0f} pods/s)"
                )
            if probe_at is not None:
                bound_in = f"{probe_bound - probe_at:.2f}s" if probe_bound else "never"
                ran_in = f"{probe_running[0] - probe_at:.2f}s" if probe_running else "never"
                print(f"  second deployment 0->1 mid-round: bound after {bound_in}, Running after {ran_in}")
            await asyncio.sleep(1.0)  # events in flight
            for sub in watchers:
                await sub.unsubscribe()
            print(f"  nodes marked NotReady: {len(not_ready)}; pods evicted: {len(evicted)}")
            if args.spread and code == 0:
                zones = {name: node.labels.get("zone") for name, node in (await client.nodes()).items()}
                specs = await client.node_specs()
                zones = {name: (specs[name].labels or {}).get("zone", zone) for name, zone in zones.items()}
                per_zone: dict[str, int] = {}
                for node_name in running.values():
                    per_zone[zones[node_name]] = per_zone.get(zones[node_name], 0) + 1
                skew = max(per_zone.values()) - min(per_zone.values())
                print(f"  per zone: {sorted(per_zone.values())}; skew {skew}")
            stats = {s.roles[0]: s for s in await client.process_stats()}
            for name, process in processes.items():
                role = {"fleet": "node-fleet"}.get(name, name)
                stall = stats[role].max_stall * 1000 if role in stats else float("nan")
                print(
                    f"  {name:9}: longest event-loop stall {stall:5.0f} ms,"
                    f" CPU {cpu_seconds(process.pid) - cpu_before[name]:5.1f} s during the run,"
                    f" peak RSS {peak_rss_mb(process.pid):4.0f} MB"
                )
            for server in nats:
                assert server.process is not None
                used = cpu_seconds(server.process.pid)
                print(f"  nats-server {server.config.server_name}: CPU {used:.1f} s in all")
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                print(f"(a role ignored SIGTERM for 15 s: pid {process.pid}, killed)")
                process.kill()
        for server in nats:
            server.stop()
    return code, elapsed


async def compare(args: argparse.Namespace, modes: list[tuple[str, bool, int]]) -> int:
    """Rounds of each mode (label, secure, servers) in turn, on the same machine in the same run;
    the medians, and the second's ratio to the first."""
    import statistics

    times: dict[str, list[float]] = {label: [] for label, _, _ in modes}
    for round_ in range(args.rounds):
        for label, secure, servers in modes:
            root = Path(tempfile.mkdtemp(prefix="shoal-bench-scale-"))
            print(f"-- round {round_ + 1}, {label} ({root})")
            code, elapsed = await run(args, root, secure, servers)
            if code:
                return code
            times[label].append(elapsed)
    medians = {label: statistics.median(values) for label, values in times.items()}
    (first, base), (second, other) = list(medians.items())[:2]
    print(
        f"apply -> {args.pods} Running on {args.nodes} hollow nodes, median of {args.rounds}: "
        + ", ".join(
            f"{label} {medians[label]:.2f}s {sorted(round(t, 2) for t in times[label])}" for label in times
        )
        + f"; {second} / {first} = {other / base:.2f}"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--probe", action="store_true", help="scale a second deployment 0->1 mid-round")
    parser.add_argument(
        "--spread", action="store_true", help="topology spread over 10 zones and anti-affinity on"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the scheduler and the fleet (speedscope)"
    )
    parser.add_argument("--secure", action="store_true", help="TLS and an identity per role")
    parser.add_argument("--compare-security", action="store_true", help="plain and secure rounds in turn")
    parser.add_argument(
        "--nats-cluster", type=int, default=1, help="clustered nats-servers (3: state kept on three)"
    )
    parser.add_argument(
        "--compare-replication", action="store_true", help="one server (R1) and three (R3) rounds in turn"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (with --compare-...)")
    arguments = parser.parse_args()
    if arguments.compare_security:
        modes = [("plaintext, no users", False, 1), ("TLS and permissions", True, 1)]
        sys.exit(asyncio.run(compare(arguments, modes)))
    if arguments.compare_replication:
        modes = [("one server (R1)", arguments.secure, 1), ("three servers (R3)", arguments.secure, 3)]
        sys.exit(asyncio.run(compare(arguments, modes)))
    state = Path(tempfile.mkdtemp(prefix="shoal-bench-scale-"))
    print(f"(state and logs in {state})")
    sys.exit(asyncio.run(run(arguments, state, arguments.secure, arguments.nats_cluster))[0])
