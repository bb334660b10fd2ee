"""Benchmark (printed, not a test): requests failed per fault under steady HTTP load through a
service, and the time to converge.

Runs a real `shoal up --processes --keep-pods` (every role a process of its own, as the
README runs them, so each can be killed) plus two extra node actors: three nodes on the
local Podman, every setting at its default. Applies a deployment of 6 replicas with a
readiness probe and a service (`tests.harness.web`), and keeps a `tests.harness.Load`
running against the service's node port on 127.0.0.1 (a new connection per request; every
node's proxy serves the port). Then injects one fault after another:

- kill -9 of each control-plane role in turn: api, the leading scheduler (its pid from the
  `scheduler` lease), service, autoscaler (`shoal up` starts a role that exits again, with
  backoff that grows with each restart of that role);
- nats-server hung (SIGSTOP, then SIGCONT) for 5 s and for 15 s: the one fault `shoal up`
  cannot paper over by restarting, since the process never exits; and nats-server killed
  with -9 (`shoal up` starts it again on the same port and store);
- the Podman service of one node killed (the node starts it again; containers live on);
- one extra node actor restarted (SIGTERM, wait, start again; its containers keep running);
- a cold restart of the whole cluster: the extra node actors and `shoal up` stopped with
  SIGTERM (`--keep-pods`: every pod stays running), then all started again.

After each fault it waits until the cluster has converged again: every node Ready, 6
replicas Ready on Ready nodes, the service's endpoints listing exactly those 6 pods, the API
answering, the scheduler, service and autoscaler leases held by live processes, and what the
fault took away back (a new process, a re-registered node). For each fault it prints the
requests that failed and all requests made in the fault window (from the start of the fault
until 2 s after convergence), when in that window the failures were (seconds after the
fault began), how long the fault itself took, the seconds from the end of the fault to
convergence, how many of the Ready pods were replaced by others, the commonest failures,
and what convergence waited on (each check that said no, from when). A fault that does not
converge within 120 s is reported as such, and the run goes on with the next one.

    .venv/bin/python bench/chaos.py [--trials N] [--only NAME] [--keep]

`--trials N` repeats the whole set and prints medians; `--only NAME` runs one fault (names
as printed); `--keep` keeps the temp dir with the cluster's logs (`<dir>/data/logs/`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.bus import kv
from shoal.bus.kv import Bucket
from shoal.client import ShoalClient
from tests.harness import (
    Load,
    LocalShoal,
    documents,
    node_port,
    output,
    remove_node_containers,
    unique_name,
    wait_for,
    web,
)

APP = "chaos"
REPLICAS = 6
GIVE_UP = 120.0
"""Seconds a fault may take to converge before it is reported as not converging."""
TAIL = 2.0
"""The fault window goes on this long after convergence: failures just after it count too."""
PROBE_TIMEOUT = 1.0
"""A convergence check that takes longer (a hung nats-server) counts as not converged."""
LEASED = ("scheduler", "service", "autoscaler")

Probe = Callable[[], Awaitable[bool]]


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def holder_pid(holder: str) -> int:
    """The pid in a lease holder's name, ``<role>-<host>-<pid>``."""
    return int(holder.rsplit("-", 1)[1])


async def pids(pattern: str) -> list[int]:
    return [int(pid) for pid in (await output("pgrep", "-f", pattern)).split()]


async def only_pid(pattern: str) -> int:
    found = await pids(pattern)
    if len(found) != 1:
        raise AssertionError(f"expected one process matching {pattern!r}, found {found}")
    return found[0]


@dataclass
class Outcome:
    fault: str
    failed: int
    total: int
    lasted: float
    """Seconds the fault itself took (an outage's length, a restart's)."""
    converged: float | None
    """Seconds from the end of the fault to convergence; None if it did not converge."""
    failing: tuple[float, float] | None
    """First and last failure, in seconds after the fault began."""
    replaced: int
    """Ready pods before the fault that were no longer among the Ready ones once converged."""
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    waits: list[tuple[float, str]] = field(default_factory=list)
    """What convergence was waiting on, from when (seconds after the end of the fault)."""


@dataclass
class Fault:
    name: str
    inject: Callable[[Chaos], Awaitable[Probe]]
    """Causes the fault, returns once it is over, and gives what must hold for it to be healed."""
    healed: str
    """What that is, for the report of what convergence waited on."""
    note: str = ""


class Chaos:
    def __init__(self, shoal: LocalShoal, extra: list[str], client: ShoalClient, load: Load) -> None:
        self.shoal = shoal
        self.extra = extra
        self.nodes = {shoal.node, *extra}
        self.client = client
        self.load = load
        self.waiting = ""
        """Why the last convergence check said no."""
        self.serving: set[str] = set()
        """The Ready pods at the last check that said yes."""

    # -- what converged means -------------------------------------------------------------------

    async def lease_pid(self, key: str) -> int | None:
        """The pid of the live holder of a lease renewed lately, if there is one."""
        entry = await (await Bucket.open(self.client.js, kv.LEASES)).get(key)
        if entry is None:
            return None
        record = entry.value
        pid = holder_pid(record.holder)
        fresh = time.time() - record.renewed_at < max(2 * record.ttl, 1.0)
        return pid if fresh and alive(pid) else None

    def no(self, why: str) -> bool:
        self.waiting = why
        return False

    async def _converged(self, healed: Probe | None, what: str) -> bool:
        client = self.client
        ready_nodes = await client.ready_nodes()
        if not self.nodes <= ready_nodes:
            return self.no(f"nodes Ready: {len(self.nodes & ready_nodes)}/{len(self.nodes)}")
        pods = await client.pods()
        statuses = await client.pod_statuses(pods)
        mine = [p for p in pods.values() if p.metadata.labels.get("app") == APP and not p.terminating]
        ready = {
            p.metadata.name
            for p in mine
            if (s := statuses.get(p.key))
            and s.uid == p.metadata.uid
            and s.ready
            and p.node_name in ready_nodes
        }
        if len(mine) != REPLICAS or len(ready) != REPLICAS:
            return self.no(f"pods: {len(ready)} Ready of {len(mine)}")
        endpoints = (await client.endpoints()).get(f"default.{APP}")
        if endpoints is None or endpoints.ready_pods != ready:
            listed = len(endpoints.ready_pods & ready) if endpoints else 0
            return self.no(f"endpoints: {listed} of the {len(ready)} Ready pods")
        for key in LEASED:
            if await self.lease_pid(key) is None:
                return self.no(f"a live {key} leader")
        try:
            await client.apply([])
        except Exception as err:
            return self.no(f"the API ({type(err).__name__})")
        if healed is not None and not await healed():
            return self.no(what)
        self.serving = ready
        return True

    async def converged(self, healed: Probe | None = None, what: str = "") -> bool:
        try:
            return await asyncio.wait_for(self._converged(healed, what), PROBE_TIMEOUT)
        except TimeoutError:  # nats-server away or hung, or the cluster too busy to answer
            return self.no(f"reads answered within {PROBE_TIMEOUT:.0f}s")
        except Exception as err:  # nats-server away: not converged yet
            return self.no(f"NATS ({type(err).__name__})")

    def counts(self) -> tuple[int, int]:
        """Requests answered and failed so far."""
        return sum(self.load.answers.values()), len(self.load.failures)

    async def settled(self) -> None:
        """Converged, and requests flowing: the state each fault starts from."""
        await wait_for(self.converged, timeout=GIVE_UP, what="the cluster to settle")
        answered = self.counts()[0]
        await wait_for(lambda: self.counts()[0] > answered + 20, timeout=30, what="requests flowing")

    async def run(self, fault: Fault) -> Outcome:
        await self.settled()
        before = self.serving
        answered, failed = self.counts()
        started = time.monotonic()
        healed = await fault.inject(self)
        ended = time.monotonic()
        waits: list[tuple[float, str]] = []

        async def healed_again() -> bool:
            if await self.converged(healed, fault.healed):
                return True
            if not waits or waits[-1][1] != self.waiting:
                waits.append((time.monotonic() - ended, self.waiting))
            return False

        try:
            await wait_for(healed_again, timeout=GIVE_UP, interval=0.1, what=f"{fault.name} healed")
            converged: float | None = time.monotonic() - ended
        except AssertionError:
            converged = None
        await asyncio.sleep(TAIL)  # the tail of the fault window, by definition
        answered_now, failed_now = self.counts()
        times = [t - started for t in self.load.failed_at[failed:failed_now]]
        reasons = collections.Counter(reason[:100] for reason in self.load.failures[failed:failed_now])
        return Outcome(
            fault=fault.name,
            failed=failed_now - failed,
            total=answered_now - answered + failed_now - failed,
            lasted=ended - started,
            converged=converged,
            failing=(min(times), max(times)) if times else None,
            replaced=len(before - self.serving) if converged is not None else 0,
            reasons=reasons,
            waits=waits,
        )


# -- the faults -------------------------------------------------------------------------------------


def role_pattern(shoal: LocalShoal, role: str) -> str:
    return f"shoal {role} --server {shoal.url}( |$)"


def kill_role(role: str) -> Callable[[Chaos], Awaitable[Probe]]:
    async def inject(chaos: Chaos) -> Probe:
        if role == "scheduler":
            victim = await chaos.lease_pid("scheduler")  # the leader
            assert victim is not None, "no scheduler leads"
            assert victim in await pids(role_pattern(chaos.shoal, role)), "the leader is no role of ours"
        else:
            victim = await only_pid(role_pattern(chaos.shoal, role))
        os.kill(victim, signal.SIGKILL)

        async def replaced() -> bool:
            started_again = [p for p in await pids(role_pattern(chaos.shoal, role)) if p != victim]
            if role in LEASED:
                return await chaos.lease_pid(role) in started_again
            return bool(started_again)  # and the API answers, which every check asks

        return replaced

    return inject


def nats_conf(chaos: Chaos) -> Path:
    return chaos.shoal.data_dir / "nats" / "shoal.conf"


def hang_nats(seconds: float) -> Callable[[Chaos], Awaitable[Probe]]:
    async def inject(chaos: Chaos) -> Probe:
        pid = await only_pid(f"nats-server -c {nats_conf(chaos)}")
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)  # the outage itself, not a wait for a condition
        finally:
            os.kill(pid, signal.SIGCONT)

        async def same_server() -> bool:
            return await pids(f"nats-server -c {nats_conf(chaos)}") == [pid]

        return same_server

    return inject


async def kill_nats(chaos: Chaos) -> Probe:
    pid = await only_pid(f"nats-server -c {nats_conf(chaos)}")
    os.kill(pid, signal.SIGKILL)

    async def started_again() -> bool:
        found = await pids(f"nats-server -c {nats_conf(chaos)}")
        return len(found) == 1 and found[0] != pid

    return started_again


async def kill_podman(chaos: Chaos) -> Probe:
    socket_path = chaos.shoal.data_dir / "nodes" / chaos.shoal.node / "podman.sock"
    pattern = f"system service.*{socket_path}"
    pid = await only_pid(pattern)
    os.kill(pid, signal.SIGKILL)

    async def started_again() -> bool:
        found = await pids(pattern)
        return len(found) == 1 and found[0] != pid

    return started_again


def registered_again(chaos: Chaos, names: set[str], since: float) -> Probe:
    async def probe() -> bool:
        nodes = await chaos.client.nodes()
        return all((node := nodes.get(name)) is not None and node.started_at > since for name in names)

    return probe


async def stop_extra_nodes(chaos: Chaos, names: list[str]) -> None:
    processes = [chaos.shoal.roles.pop(name) for name in names]
    for process in processes:
        process.terminate()
    for process in processes:
        code = await asyncio.to_thread(process.wait, 30)
        if code != 0:
            print(f"  note: node actor exited with code {code} on SIGTERM", flush=True)


async def restart_node(chaos: Chaos) -> Probe:
    victim = chaos.extra[0]
    since = time.time()
    await stop_extra_nodes(chaos, [victim])
    chaos.shoal.start_node(victim)
    return registered_again(chaos, {victim}, since)


async def cold_restart(chaos: Chaos) -> Probe:
    since = time.time()
    await stop_extra_nodes(chaos, chaos.extra)
    # LocalShoal.stop() removes the containers of the extra nodes it knows: these keep theirs.
    chaos.shoal.extra_nodes.clear()
    code = await asyncio.to_thread(chaos.shoal.stop)
    if code != 0:
        print(f"  note: shoal up exited with code {code} on SIGTERM", flush=True)
    await asyncio.to_thread(chaos.shoal.start)  # same data dir, same NATS port
    for name in chaos.extra:
        chaos.shoal.start_node(name)
    return registered_again(chaos, chaos.nodes, since)


FAULTS = [
    Fault("kill-api", kill_role("api"), "a new api process"),
    Fault("kill-scheduler", kill_role("scheduler"), "a new scheduler leading", "the leader"),
    Fault("kill-service", kill_role("service"), "a new service process leading"),
    Fault("kill-autoscaler", kill_role("autoscaler"), "a new autoscaler leading"),
    Fault(
        "nats-hang-5s",
        hang_nats(5.0),
        "the same nats-server",
        "a hang: no exit, so shoal up restarts nothing",
    ),
    Fault(
        "nats-hang-15s",
        hang_nats(15.0),
        "the same nats-server",
        "a hang: no exit, so shoal up restarts nothing",
    ),
    Fault("nats-kill", kill_nats, "a new nats-server", "shoal up starts it again on the same store"),
    Fault("podman-kill", kill_podman, "a new Podman service", "the Podman service of the shoal up node"),
    Fault("node-restart", restart_node, "the node registered again", "an extra node actor"),
    Fault("cold-restart", cold_restart, "every node registered again", "shoal up --keep-pods, extra nodes"),
]


# -- printing ---------------------------------------------------------------------------------------


def converged_text(seconds: float | None) -> str:
    return f"{seconds:6.2f}s" if seconds is not None else f"  none in {GIVE_UP:.0f}s"


def line(outcome: Outcome) -> str:
    failing = f"{outcome.failing[0]:.2f}..{outcome.failing[1]:.2f}s" if outcome.failing else "-"
    return (
        f"{outcome.fault:<16} failed {outcome.failed:>5}/{outcome.total:<6} failing {failing:<13}"
        f" fault {outcome.lasted:5.2f}s  converged {converged_text(outcome.converged)}"
        f"  pods replaced {outcome.replaced}"
    )


def medians(name: str, outcomes: list[Outcome]) -> str:
    failed = statistics.median(o.failed for o in outcomes)
    total = statistics.median(o.total for o in outcomes)
    times = [o.converged for o in outcomes if o.converged is not None]
    converged = converged_text(statistics.median(times) if times else None)
    missing = len(outcomes) - len(times)
    return f"{name:<16} failed {failed:>6g}/{total:<6g}  converged {converged}" + (
        f"  ({missing} of {len(outcomes)} did not converge)" if missing else ""
    )


# -- the run ----------------------------------------------------------------------------------------


async def run(shoal: LocalShoal, extra: list[str], faults: list[Fault], trials: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    async with await shoal.connect(reconnect=True) as client:
        await client.apply(documents(web(APP, replicas=REPLICAS)))
        port = await node_port(client, APP)
        async with Load(port) as load:
            chaos = Chaos(shoal, extra, client, load)
            await chaos.settled()
            print(f"{REPLICAS} replicas Ready on {len(chaos.nodes)} nodes; load on node port {port}")
            for trial in range(trials):
                if trials > 1:
                    print(f"trial {trial + 1}", flush=True)
                for fault in faults:
                    outcome = await chaos.run(fault)
                    outcomes.append(outcome)
                    print(line(outcome) + (f"  ({fault.note})" if fault.note else ""), flush=True)
                    for reason, count in outcome.reasons.most_common(3):
                        print(f"{'':<17}{count:>6} x {reason}", flush=True)
                    if outcome.waits:
                        waits = "; ".join(f"+{at:.2f}s {why}" for at, why in outcome.waits)
                        print(f"{'':<17}waited on: {waits}", flush=True)
    return outcomes


async def main(args: argparse.Namespace) -> int:
    faults = [f for f in FAULTS if args.only in (None, f.name)]
    if not faults:
        print(f"no fault named {args.only!r}; there are: {', '.join(f.name for f in FAULTS)}")
        return 2
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-chaos-"))
    shoal = LocalShoal(root, node=unique_name("chaos"), extra_args=["--processes", "--keep-pods"])
    extra = [f"{shoal.node}-b", f"{shoal.node}-c"]
    outcomes: list[Outcome] = []
    code = 0
    try:
        await asyncio.to_thread(shoal.start)
        for name in extra:
            shoal.start_node(name)
        try:
            outcomes = await run(shoal, extra, faults, args.trials)
        except AssertionError as err:
            print(f"FAILED: {err}; the cluster's logs are in {shoal.data_dir / 'logs'}")
            code = 1
    finally:
        try:
            await asyncio.to_thread(shoal.stop)
        finally:
            for name in [shoal.node, *extra]:
                remove_node_containers(name)
            if args.keep or code or any(o.converged is None for o in outcomes):
                print(f"kept {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
    if args.trials > 1 and outcomes:
        print(f"\nmedians over {args.trials} trials")
        for fault in faults:
            mine = [o for o in outcomes if o.fault == fault.name]
            if mine:
                print(medians(fault.name, mine))
    if any(o.converged is None for o in outcomes):
        code = code or 1
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--only", metavar="NAME", help="run one fault: " + ", ".join(f.name for f in FAULTS))
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and its logs")
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main(parser.parse_args())))
