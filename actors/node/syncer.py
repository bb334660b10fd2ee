"""The node's executor: carries out what ``decide`` says about a pod, then looks again.

It holds what a node remembers between syncs (what it last reported, how starts failed, the
crash backoff, the probers of running containers) and does the I/O: the runtime for
containers, a ``NodeLink`` for everything that leaves the node (status, events, the pod
record). Knowing nothing of NATS, it runs the same over Podman, over the in-memory runtime,
and in tests that record what it would send.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

from shoal.actors.node.backoff import CrashBackoff
from shoal.actors.node.decide import (
    FORBIDDEN,
    BackOff,
    CrashWait,
    Forget,
    PodFacts,
    Refuse,
    RemovePod,
    Report,
    RequeueAfter,
    RestartContainer,
    StartFailure,
    StartPod,
    Terminate,
    decide,
    shown_waiting,
    start_failed,
)
from shoal.actors.node.probes import ContainerProber, check
from shoal.actors.node.status import Waiting, report_status, should_restart
from shoal.errors import ContainerConfigError, ImageUnavailable, InitContainerFailed, ShoalError
from shoal.models.base import replace
from shoal.models.pod import Pod, PodStatus, split_key
from shoal.models.workloads import Container, LifecycleHandler, Probe
from shoal.policy.admission import DEFAULT_LEVEL, Level
from shoal.runtime.interface import PodObservation, Runtime
from shoal.runtime.prepared import PreparedPod

log = logging.getLogger(__name__)

MAX_STEPS = 4
"""Decisions per sync: act, look again, act... then report."""


class NodeLink(Protocol):
    """What a sync sends beyond the node."""

    async def report(self, key: str, status: PodStatus) -> None:
        """Write the pod's status (it changed)."""

    async def forget(self, key: str) -> None:
        """Delete the pod's status record (retried until it is gone)."""

    async def delete_record(self, key: str, revision: int) -> bool:
        """Delete a terminated pod's record (compare-and-swap); False if it changed meanwhile."""

    def emit(self, pod: Pod | tuple[str, str], reason: str, message: str, **fields: Any) -> None:
        """Publish an event about the pod (``type="Warning"`` among ``fields`` for warnings)."""


Prepare = Callable[[Pod], Awaitable[PreparedPod | None]]
"""Resolves a pod's environment, volumes and security settings just before it starts."""


POST_START_TIMEOUT = 30.0
"""Seconds a postStart hook may take (Kubernetes waits for it without a limit)."""


def _waiting_for(err: ShoalError) -> Waiting:
    """Why a pod could not start, in the reasons Kubernetes shows."""
    if isinstance(err, ImageUnavailable):
        return Waiting("ErrImagePull", err.message)
    if isinstance(err, ContainerConfigError):
        return Waiting("CreateContainerConfigError", err.message)
    if isinstance(err, InitContainerFailed):
        return Waiting("Init:Error", err.message)
    return Waiting("CreateContainerError", err.message)


class PodSyncer:
    def __init__(
        self,
        node: str,
        host_ip: str,
        runtime: Runtime,
        link: NodeLink,
        backoff: CrashBackoff,
        *,
        requeue: Callable[[str, float], None],
        clock: Callable[[], float] = time.time,
        prepare: Prepare | None = None,
        unserve: Callable[[Pod, float], Awaitable[None]] | None = None,
    ) -> None:
        self.node = node
        self.host_ip = host_ip
        self.runtime = runtime
        self.link = link
        self.backoff = backoff
        self.requeue = requeue
        """Look at a pod again after so many seconds (0: soon)."""
        self.clock = clock
        self.prepare = prepare
        self.unserve = unserve
        """Waits (up to the grace period) until no service sends the pod new connections."""
        self.written: dict[str, PodStatus] = {}
        self.start_failures: dict[str, StartFailure] = {}
        self.announced: set[str] = set()
        self.probers: dict[tuple[str, str], tuple[str, ContainerProber]] = {}
        self.kills: list[asyncio.Future[None]] = []

    def last(self, key: str, pod: Pod | None) -> PodStatus | None:
        last = self.written.get(key)
        return last if last is not None and pod is not None and last.uid == pod.metadata.uid else None

    def facts(
        self,
        key: str,
        pod: Pod | None,
        revision: int,
        observed: PodObservation | None,
        cut_off: bool,
        level: Level = DEFAULT_LEVEL,
    ) -> PodFacts:
        now = self.clock()
        waits: dict[str, CrashWait] = {}
        if pod is not None and observed is not None:
            for spec in pod.spec.containers:
                current = observed.containers.get(spec.name)
                if current is None or current.state != "exited":
                    continue
                if not should_restart(pod.spec.restart_policy, current.exit_code):
                    continue
                ran_for = (
                    current.finished_at - current.started_at
                    if current.finished_at and current.started_at
                    else None
                )
                remaining = self.backoff.remaining(
                    pod.metadata.uid,
                    spec.name,
                    exited_at=current.finished_at or now,
                    ran_for=ran_for,
                    now=now,
                )
                waits[spec.name] = CrashWait(
                    remaining, self.backoff.current_wait(pod.metadata.uid, spec.name)
                )
        return PodFacts(
            key=key,
            pod=pod,
            revision=revision,
            observed=observed,
            last=self.last(key, pod),
            failure=self.start_failures.get(key),
            now=now,
            cut_off=cut_off,
            crash_waits=waits,
            announced=frozenset(m for m in self.announced if m.startswith(key + "/")),
            level=level,
        )

    async def sync(
        self,
        key: str,
        pod: Pod | None,
        revision: int,
        *,
        cut_off: bool = False,
        level: Level = DEFAULT_LEVEL,
    ) -> None:
        """Bring one pod from what the runtime shows to what its record (bound here, or None) asks;
        ``level`` is the pod security level of its namespace."""
        namespace, name = split_key(key)
        for _ in range(MAX_STEPS):
            observed = await self.runtime.inspect_pod(namespace, name)
            actions = decide(self.facts(key, pod, revision, observed, cut_off, level))
            again = False
            for action in actions:
                again = await self._carry_out(key, pod, revision, observed, action) or again
            if not again:
                return
        self.requeue(key, 0.0)  # still moving: another sync will see to the rest

    async def _carry_out(
        self, key: str, pod: Pod | None, revision: int, observed: PodObservation | None, action: object
    ) -> bool:
        """Do one action; True when the pod must be looked at again at once."""
        namespace, name = split_key(key)
        match action:
            case RemovePod(grace=grace, announce=announce):
                self._sync_probers(key, None, None)
                await self.runtime.remove_pod(namespace, name, grace)
                if announce:
                    self.link.emit((namespace, name), "Removed", f"removed from {self.node}: not bound here")
                return not announce  # a stale incarnation went: now start the right one
            case Forget():
                self._sync_probers(key, None, None)
                await self._forget(key)
            case Terminate(grace=grace, running=running):
                assert pod is not None
                self._sync_probers(key, None, None)
                if running and observed is not None:
                    self.link.emit(pod, "Killing", f"stopping (grace {grace:g}s)")
                    started = time.monotonic()
                    if self.unserve is not None:
                        # Out of every service's endpoints first, so no new connection comes.
                        await self.unserve(pod, grace)
                    await self._pre_stop(pod, observed, max(0.0, grace - (time.monotonic() - started)))
                    spent = time.monotonic() - started
                    await self.runtime.remove_pod(namespace, name, max(0.0, grace - spent))
                await self._forget(key)
                if await self.link.delete_record(key, revision):
                    self.link.emit(pod, "Removed", f"pod stopped and removed from {self.node}")
            case StartPod(attempts=attempts, recreated=recreated):
                assert pod is not None
                try:
                    prepared = await self.prepare(pod) if self.prepare else None
                    await self.runtime.start_pod(pod, attempts, prepared)
                except ShoalError as err:
                    self._start_failed(key, pod, _waiting_for(err))
                    return True
                self.start_failures.pop(key, None)
                if recreated:
                    self.link.emit(pod, "Recreated", "containers had vanished; recreated", node=self.node)
                else:
                    self.link.emit(pod, "Started", f"started on {self.node}", node=self.node)
                await self._post_start(pod, None)
                return True
            case Refuse(message=message):
                assert pod is not None
                await self._refuse(key, pod, observed, message)
            case RestartContainer(container=container, attempt=attempt, exit_code=code, crashed=crashed):
                assert pod is not None
                try:
                    prepared = await self.prepare(pod) if self.prepare else None
                    await self.runtime.restart_container(pod, container, attempt, prepared)
                except ShoalError as err:
                    self._start_failed(key, pod, _waiting_for(err))
                    return True
                self.start_failures.pop(key, None)
                await self._post_start(pod, container)
                if crashed and code is not None:
                    self.backoff.restarted(pod.metadata.uid, container)
                    self.link.emit(
                        pod,
                        "Restarted",
                        f"container {container} exited with code {code}; restart {attempt}",
                        container=container,
                        exitCode=code,
                        restartCount=attempt,
                    )
                return True
            case BackOff(container=container, marker=marker, wait=wait, exit_code=code, announce=announce):
                assert pod is not None
                if announce:
                    self.announced.add(marker)
                    self.link.emit(
                        pod,
                        "BackOff",
                        f"back-off {wait:.0f}s restarting failed container {container} (exit code {code})",
                        type="Warning",
                        container=container,
                        exitCode=code,
                    )
            case RequeueAfter(seconds=seconds):
                self.requeue(key, seconds)
            case Report():
                assert pod is not None
                self._sync_probers(key, pod, observed)
                await self._report(key, pod, observed)
        return False

    async def _refuse(self, key: str, pod: Pod, observed: PodObservation | None, message: str) -> None:
        """The pod breaks its namespace's pod security level: Failed, and no container made."""
        forbidden = Waiting(FORBIDDEN, message)
        status = report_status(
            pod,
            observed,
            node=self.node,
            host_ip=self.host_ip,
            last=None,
            waiting=dict.fromkeys((c.name for c in pod.spec.containers), forbidden),
            probes={},
            now=self.clock(),
        )
        status = replace(status, phase="Failed", ready=False, reason=FORBIDDEN, message=message)
        await self.link.report(key, status)
        self.written[key] = status
        self.link.emit(pod, FORBIDDEN, f"not started on {self.node}: {message}", type="Warning")

    def _start_failed(self, key: str, pod: Pod, waiting: Waiting) -> None:
        """A failed start backs off as crash loops do: 10 s doubling to the cap."""
        previous = self.start_failures.get(key)
        attempts = previous.attempts + 1 if previous else 1
        failure = start_failed(previous, waiting, self.clock(), self.backoff.wait_for(attempts))
        self.start_failures[key] = failure
        delay = failure.retry_at - self.clock()
        self.requeue(key, delay)
        self.link.emit(
            pod,
            "Failed",
            f"{waiting.reason}: {waiting.message} (attempt {failure.attempts}; next in {delay:.0f}s)",
            type="Warning",
            attempts=failure.attempts,
        )

    async def _report(self, key: str, pod: Pod, observed: PodObservation | None) -> None:
        last = self.last(key, pod)
        probes = {
            name: (p.effective_ready, p.started) for (k, name), (_, p) in self.probers.items() if k == key
        }
        status = report_status(
            pod,
            observed,
            node=self.node,
            host_ip=self.host_ip,
            last=last,
            waiting=shown_waiting(self.start_failures.get(key), [c.name for c in pod.spec.containers]),
            probes=probes,
            now=self.clock(),
        )
        if last is not None and last == status:
            return
        await self.link.report(key, status)
        self.written[key] = status
        if status.terminal and (last is None or not last.terminal):
            reason = "Completed" if status.phase == "Succeeded" else "Failed"
            self.link.emit(
                pod,
                reason,
                f"pod {status.phase.lower()}",
                type="Normal" if reason == "Completed" else "Warning",
            )

    async def _forget(self, key: str) -> None:
        status = self.written.pop(key, None)
        self.start_failures.pop(key, None)
        self.announced = {m for m in self.announced if not m.startswith(key + "/")}
        if status is not None:
            self.backoff.forget(status.uid)
            await self.link.forget(key)

    async def _run_hook(
        self, handler: LifecycleHandler, spec: Container, container_id: str, ip: str, timeout: float
    ) -> None:
        """One lifecycle handler: exec, httpGet or sleep; raises ShoalError on failure."""
        if handler.sleep is not None:
            await asyncio.sleep(min(handler.sleep.seconds, timeout))
            return
        if handler.exec is not None:
            code = await self.runtime.exec(container_id, handler.exec.command, timeout)
            if code != 0:
                raise ShoalError(f"exec {handler.exec.command[0]} exited with code {code}")
            return
        if handler.http_get is None:
            return  # tcpSocket: deprecated and never run by Kubernetes; not here either
        probe = Probe(http_get=handler.http_get, timeout_seconds=max(1, int(timeout)))
        ok, why = await check(probe, spec, ip or "127.0.0.1", partial(self.runtime.exec, container_id))
        if not ok:
            raise ShoalError(why)

    async def _post_start(self, pod: Pod, only: str | None) -> None:
        """postStart hooks of the containers just started; a failing hook kills its container
        (which restarts by the pod's restart policy), as on Kubernetes."""
        hooks = [
            c
            for c in pod.spec.containers
            if c.lifecycle and c.lifecycle.post_start and only in (None, c.name)
        ]
        if not hooks:
            return
        observed = await self.runtime.inspect_pod(pod.metadata.namespace, pod.metadata.name)
        if observed is None:
            return
        for spec in hooks:
            current = observed.containers.get(spec.name)
            if current is None or current.state != "running":
                continue
            assert spec.lifecycle is not None and spec.lifecycle.post_start is not None
            try:
                await self._run_hook(
                    spec.lifecycle.post_start, spec, current.container_id, observed.ip, POST_START_TIMEOUT
                )
            except (ShoalError, OSError, TimeoutError) as err:
                self.link.emit(
                    pod,
                    "FailedPostStartHook",
                    f"postStart hook of {spec.name} failed: {err}; killing the container",
                    type="Warning",
                    container=spec.name,
                )
                await self.runtime.stop_container(current.container_id, 0)

    async def _pre_stop(self, pod: Pod, observed: PodObservation, grace: float) -> float:
        """Run the preStop hooks of running containers, within the grace period; seconds spent."""
        started = time.monotonic()
        hooks = []
        for spec in pod.spec.containers:
            current = observed.containers.get(spec.name)
            hook = spec.lifecycle.pre_stop if spec.lifecycle else None
            if hook is not None and current is not None and current.state == "running":
                hooks.append(self._run_hook(hook, spec, current.container_id, observed.ip, grace))
        if hooks:
            results = await asyncio.gather(
                *(asyncio.wait_for(h, grace) for h in hooks), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    log.warning("preStop hook of %s: %s", pod.metadata.name, result)
        return time.monotonic() - started

    # -- probes -------------------------------------------------------------------------------------

    def _sync_probers(self, key: str, pod: Pod | None, observed: PodObservation | None) -> None:
        """One prober per running container incarnation that has probes; none for anything else."""
        wanted: dict[tuple[str, str], tuple[str, Container]] = {}
        if pod is not None and observed is not None:
            for spec in pod.spec.containers:
                current = observed.containers.get(spec.name)
                has_probes = spec.liveness_probe or spec.readiness_probe or spec.startup_probe
                if has_probes and current is not None and current.state == "running":
                    wanted[(key, spec.name)] = (current.container_id, spec)
        for probe_key in [k for k in self.probers if k[0] == key]:
            container_id, prober = self.probers[probe_key]
            if probe_key not in wanted or wanted[probe_key][0] != container_id:
                prober.stop()
                del self.probers[probe_key]
        for probe_key, (container_id, spec) in wanted.items():
            if probe_key in self.probers:
                continue
            assert pod is not None and observed is not None
            prober = ContainerProber(
                spec,
                observed.ip or "127.0.0.1",
                partial(self.runtime.exec, container_id),
                on_ready=lambda _ready, key=key: self.requeue(key, 0.0),
                on_kill=partial(self._kill_unhealthy, key, pod, spec.name, container_id),
                on_failure=partial(self._probe_failed, pod, spec.name),
            )
            self.probers[probe_key] = (container_id, prober)
            prober.start()

    def stop(self) -> None:
        """Stop every prober and pending kill (the node is stopping)."""
        for _, prober in self.probers.values():
            prober.stop()
        self.probers.clear()
        for kill in self.kills:
            kill.cancel()

    def _probe_failed(self, pod: Pod, container: str, kind: str, why: str) -> None:
        self.link.emit(
            pod,
            "Unhealthy",
            f"{kind} probe of {container} failed: {why}",
            type="Warning",
            container=container,
            probe=kind,
        )

    def _kill_unhealthy(self, key: str, pod: Pod, container: str, container_id: str, why: str) -> None:
        self.link.emit(
            pod,
            "Unhealthy",
            f"container {container}: {why}; restarting it",
            type="Warning",
            container=container,
        )
        self.kills.append(
            asyncio.ensure_future(
                self.runtime.stop_container(container_id, pod.spec.termination_grace_period_seconds)
            )
        )
        self.kills[-1].add_done_callback(lambda done: self._killed(key, done))

    def _killed(self, key: str, done: asyncio.Future[None]) -> None:
        self.kills.remove(done)
        if not done.cancelled() and done.exception() is not None:
            log.warning("stopping an unhealthy container of %s: %s", key, done.exception())
        self.requeue(key, 0.0)
