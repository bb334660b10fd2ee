"""`shoal up --nats-cluster 3`: three clustered nats-servers, state kept on all three, and the
cluster working on through the loss of one."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest

from shoal.bus import kv, subjects
from shoal.bus.connection import servers_of
from shoal.client import ShoalClient
from shoal.errors import RemoteUnavailable, ShoalError
from tests.harness import LocalShoal, deployment, documents, remove_node_containers, unique_name, wait_for


@pytest.fixture
def three(podman: str, tmp_path: Path) -> Iterator[LocalShoal]:
    shoal = LocalShoal(tmp_path / "cluster", node=unique_name("n3"), extra_args=["--nats-cluster", "3"])
    try:
        shoal.start()
        yield shoal
    finally:
        shoal.stop()
        remove_node_containers(shoal.node)


def server_pids(shoal: LocalShoal) -> dict[int, int]:
    """Member index -> pid of each live nats-server of this cluster (from its ports file)."""
    found = {}
    for index in range(3):
        for ports in (shoal.data_dir / f"nats-{index}" / "ports").glob("nats-server_*.ports"):
            pid = int(ports.stem.rsplit("_", 1)[1])
            if Path(f"/proc/{pid}").exists() and "nats-server" in Path(f"/proc/{pid}/cmdline").read_text():
                found[index] = pid
    return found


async def running_pods(client: ShoalClient, app: str) -> int:
    statuses = await client.pod_statuses()
    return sum(
        1
        for pod in (await client.pods()).values()
        if pod.metadata.labels.get("app") == app
        and (status := statuses.get(pod.key)) is not None
        and status.uid == pod.metadata.uid
        and status.ready
    )


async def test_three_servers_keep_every_bucket_on_three_and_survive_losing_one(three: LocalShoal) -> None:
    assert len(servers_of(three.url)) == 3
    nc = await nats.connect(servers=servers_of(three.url), **three.access.options())
    try:
        js = nc.jetstream()
        for bucket in (kv.PODS, kv.DEPLOYMENTS, kv.SERVICES, kv.SECRETS):
            assert (await js.stream_info(f"KV_{bucket.name}")).config.num_replicas == 3
        assert (await js.stream_info(subjects.EVENTS_STREAM)).config.num_replicas == 3
    finally:
        await nc.close()
    async with await three.connect() as client:
        await client.apply(documents(deployment("steady", replicas=2)))
        await wait_for(lambda: _count_is(client, "steady", 2), timeout=60, what="2 running pods")

    pids = server_pids(three)
    assert set(pids) == {0, 1, 2}
    os.kill(pids[0], signal.SIGKILL)  # one of the three
    killed = time.monotonic()

    # With one server of three gone, everything goes on (writes need a majority: two are left).
    # The roles fail over to the other servers; a command run now is answered within seconds.
    async def scaled() -> bool:
        done = await asyncio.to_thread(three.shoal, "scale", "deployment", "steady", "--replicas", "3")
        return done.returncode == 0

    await wait_for(scaled, timeout=30, what="a scale answered after the loss of a server")
    answered_after = time.monotonic() - killed
    async with await three.connect() as client:
        await wait_for(lambda: _count_is(client, "steady", 3), timeout=60, what="3 running pods")
        listed = await asyncio.to_thread(three.shoal, "get", "pods", check=True)
        assert listed.stdout.count("steady-") == 3
        # Streams led by the lost server elect new leaders first (seconds, as etcd would).
        assert answered_after < 20, (
            f"the first command after the loss was answered {answered_after:.1f}s later"
        )
        # `shoal up` starts the lost server again, and it rejoins.
        await wait_for(lambda: _restarted(three, pids[0]), timeout=30, what="the server started again")

        # While it catches up, a write may be told to try again (its stream moving leaders):
        # the API says so in one reply, and the next try is taken.
        async def deleted() -> bool:
            try:
                await client.delete(documents=documents(deployment("steady")))
            except RemoteUnavailable:
                return False
            return True

        await wait_for(deleted, timeout=30, what="the delete taken once the server rejoined")


async def _count_is(client: ShoalClient, app: str, count: int) -> bool:
    try:
        return await running_pods(client, app) == count
    except nats.errors.TimeoutError:  # a stream still electing its new leader: not yet
        return False


async def _restarted(shoal: LocalShoal, old: int) -> bool:
    pid = server_pids(shoal).get(0)
    return pid is not None and pid != old


async def test_all_three_servers_killed_at_once_lose_no_acknowledged_apply(three: LocalShoal) -> None:
    # Every replica killed together, mid-write, and started again (by `shoal up`): what the API
    # acknowledged was on the servers' files, and is there once they recovered. A SIGKILL keeps
    # what the kernel cached, so this shows recovery, not power-loss durability (which is
    # what `sync_interval: always` is for: fsync before the acknowledgement).
    acknowledged: list[str] = []
    prefix = unique_name("kept")

    async def apply_all() -> None:
        for index in range(12):
            name = f"{prefix}-{index}"
            manifest = (
                f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{n: '{index}'}}\n"
            )

            async def applied(manifest: str = manifest) -> bool:
                try:
                    async with await three.connect() as fresh:
                        await fresh.apply(documents(manifest))
                except (ShoalError, nats.errors.Error, TimeoutError):
                    return False  # the servers are away: try again
                return True

            await wait_for(applied, timeout=90, interval=0.2, what=f"apply of {name} acknowledged")
            acknowledged.append(name)

    applying = asyncio.create_task(apply_all())
    await wait_for(lambda: len(acknowledged) >= 3, timeout=60, interval=0.01, what="three applies")
    pids = server_pids(three)
    assert set(pids) == {0, 1, 2}
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    at_kill = list(acknowledged)
    await asyncio.wait_for(applying, 150)
    assert acknowledged == [f"{prefix}-{i}" for i in range(12)]
    assert not set(server_pids(three).values()) & set(pids.values())  # all three are new processes
    async with await three.connect() as client:
        stored = await client.config_maps()
        missing = [name for name in acknowledged if f"default.{name}" not in stored]
        assert missing == [], (
            f"acknowledged, then lost: {missing} ({len(at_kill)} acknowledged before the kill)"
        )


JOINED = re.compile(r": (\S+) (?:connected|reconnected) to NATS at \S+:(\d+)$")


def joined_servers(log: Path) -> dict[str, int]:
    """Each actor's server (by client port) as it stands, from `shoal up`'s log."""
    on: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        if found := JOINED.search(line):
            on[found[1]] = int(found[2])
    return on


def server_ports(shoal: LocalShoal) -> dict[int, int]:
    """Member index -> client port of each nats-server of this cluster."""
    return {index: int(url.rsplit(":", 1)[1]) for index, url in enumerate(servers_of(shoal.url))}


LOG_LINE = re.compile(r"^(\S+ \S+) \S+ \S+: (\S+) (disconnected from|reconnected to) NATS")


def reconnections(log: Path, since: float) -> dict[str, float]:
    """Each actor's seconds from its first disconnect after ``since`` (epoch) to its reconnect,
    from `shoal up`'s log (inf: never back)."""
    gone: dict[str, float] = {}
    back: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        found = LOG_LINE.match(line)
        if not found:
            continue
        stamp, millis = found[1].split(",")
        at = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
        if at < since - 1:
            continue
        if found[3] == "disconnected from":
            gone.setdefault(found[2], at)
        elif found[2] in gone:
            back.setdefault(found[2], at)
    return {name: back.get(name, float("inf")) - at for name, at in gone.items()}


async def test_a_server_killed_mid_rollout_loses_nothing_and_every_actor_reconnects_at_once(
    three: LocalShoal,
) -> None:
    app = unique_name("roll")
    async with await three.connect() as client:
        await client.apply(documents(deployment(app, replicas=3, cpu="10m")))
        await wait_for(lambda: _count_is(client, app, 3), timeout=60, what="3 running pods")
        # Each actor joined one of the three at random: the one most of them are on goes.
        on = joined_servers(three.data_dir / "logs" / "shoal.log")
        ports = server_ports(three)
        busiest = max(ports, key=lambda index: sum(port == ports[index] for port in on.values()))
        assert any(port == ports[busiest] for port in on.values()), f"no actor on any server: {on}"
        pids = server_pids(three)
        # A new template (a rollout), then at once the loss of that server.
        changed = deployment(
            app, replicas=3, cpu="10m", command=["sh", "-c", "echo v2; exec httpd -f -p 8080 -h /www"]
        )
        await client.apply(documents(changed))
        killed = time.time()
        os.kill(pids[busiest], signal.SIGKILL)
    done = await asyncio.to_thread(
        three.shoal, "rollout", "status", "deployment", app, "--timeout", "90", timeout=120
    )
    assert done.returncode == 0, done.stderr
    async with await three.connect() as client:
        await wait_for(
            lambda: _count_is(client, app, 3), timeout=60, what="3 running pods of the new template"
        )
        pods = [p for p in (await client.pods()).values() if p.metadata.labels.get("app") == app]
        templates = {p.metadata.template_hash for p in pods}
        assert len(templates) == 1, templates
        gaps = reconnections(three.data_dir / "logs" / "shoal.log", killed)
        assert gaps, "no actor saw the server go"
        print("reconnected after: " + ", ".join(f"{name} {gap:.2f}s" for name, gap in sorted(gaps.items())))
        slow = {name: gap for name, gap in gaps.items() if gap > 2.0}
        assert not slow, f"actors not back on another server within 2 s: {slow}"
        await client.delete(documents=documents(changed))
