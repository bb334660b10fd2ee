"""The autoscaler actor: every sync period, each HPA's metrics read and its deployment scaled.

Replicas may run side by side; one leads (``LeaderLease``), the others keep warm caches.
The leader reads pod samples from the metrics bucket (written by node actors), the
backlog of JetStream consumers straight from NATS, decides with ``evaluate`` and changes
replicas through ``shoal.v1.api.scale``, the path ``shoal scale`` takes. Each decision
becomes a ``SuccessfulRescale`` event carrying the readings behind it, and the HPA's
status (readings, recent decisions, the recommendation history the stabilization windows
need) is kept in KV, so a new leader carries on where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js.errors import NotFoundError

from shoal.actors.autoscaler.evaluate import Backlog, Evaluation, evaluate, next_status
from shoal.actors.autoscaler.recommend import TargetPod
from shoal.actors.base import Actor, instance_name
from shoal.bus import kv, subjects
from shoal.bus.batch import BucketWriter
from shoal.bus.cache import KVCache
from shoal.bus.codec import encode
from shoal.bus.events import EventPublisher
from shoal.bus.kv import Bucket, Entry
from shoal.bus.lease import LeaderLease
from shoal.bus.rpc import call
from shoal.errors import Conflict, Deposed, ShoalError
from shoal.models.api import ApplyReply, ScaleRequest
from shoal.models.autoscaling import HorizontalPodAutoscaler, HPAStatus, Recommendation
from shoal.models.metrics import PodMetrics
from shoal.models.pod import pod_key

log = logging.getLogger(__name__)

STATUS_REFRESH_SECONDS = 15.0
"""An unchanged status is still rewritten this often, carrying the recommendation history."""

BACKLOG_READS_AT_ONCE = 32
WRITES_AT_ONCE = 32
"""HPAs whose scale requests and status writes may be in flight together."""


@dataclass(frozen=True)
class AutoscalerSettings:
    sync_period: float = 5.0
    """Seconds between evaluations of every HPA (Kubernetes: 15)."""
    lease_ttl: float = 3.0
    replicas: int = 0


class AutoscalerActor(Actor):
    role = "autoscaler"

    def __init__(self, nc: Client, settings: AutoscalerSettings | None = None) -> None:
        super().__init__(nc)
        self.settings = settings or AutoscalerSettings()
        self.name = instance_name("autoscaler")
        self.events = EventPublisher(nc, self.name)
        self.wake = asyncio.Event()
        self.history: dict[str, tuple[str, list[Recommendation]]] = {}
        """HPA key -> (uid, recommendations): the stabilization windows' memory."""
        self.written_at: dict[str, float] = {}
        self.rounds = 0

    async def start(self) -> None:
        self.js_replicas = self.settings.replicas
        await self.ensure_state()
        self.hpas = self.watch(KVCache(await Bucket.open(self.js, kv.HPAS), self._hpa_changed))
        self.statuses = self.watch(KVCache(await Bucket.open(self.js, kv.HPA_STATUS)))
        self.deployments = self.watch(KVCache(await Bucket.open(self.js, kv.DEPLOYMENTS)))
        self.pods = self.watch(KVCache(await Bucket.open(self.js, kv.PODS)))
        self.pod_status = self.watch(KVCache(await Bucket.open(self.js, kv.POD_STATUS)))
        self.metrics = self.watch(KVCache(await Bucket.open(self.js, kv.METRICS)))
        await asyncio.gather(*(cache.synced.wait() for cache in self.caches))
        self.writer = BucketWriter(self.nc, kv.HPA_STATUS.name, role="autoscaler", holder=self.name)
        self.lease = LeaderLease(
            await Bucket.open(self.js, kv.LEASES),
            "autoscaler",
            self.name,
            ttl=self.settings.lease_ttl,
            on_change=self._leadership_changed,
            prepare=self.writer.take,
        )
        self.spawn(self.lease.run(), "lease")
        self.spawn(self._loop(), "evaluations")
        await super().start()

    async def on_stop(self) -> None:
        await self.lease.release()
        await self.writer.close()

    def _hpa_changed(self, key: str, old: Entry | None, new: Entry | None) -> None:
        if new is not None and (old is None or old.value.spec != new.value.spec):
            self.wake.set()  # a new or changed HPA is looked at now, not a period later

    def _leadership_changed(self, leading: bool) -> None:
        if leading:
            # Carry on from the stored history: what the last leader saw still counts.
            self.history = {
                key: (entry.value.uid, list(entry.value.recommendations))
                for key, entry in self.statuses.entries.items()
            }
            self.wake.set()

    async def _loop(self) -> None:
        while True:
            await self.lease.elected.wait()
            started = time.monotonic()
            self.wake.clear()  # an HPA applied during the round wakes the next one
            try:
                await self.run_round()
            except Exception as err:  # NATS away for a moment: the next round retries
                log.warning("autoscaling round failed: %s", err)
            left = self.settings.sync_period - (time.monotonic() - started)
            if left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), left)

    # -- one round ------------------------------------------------------------------------------

    async def run_round(self) -> None:
        now = time.time()
        for key, entry in list(self.statuses.entries.items()):
            if key not in self.hpas.entries:  # the HPA is gone: so is what it decided
                with contextlib.suppress(Conflict):
                    await self.writer.delete(key, entry.revision)
                self.history.pop(key, None)
        hpas = [entry.value for entry in self.hpas.entries.values()]
        if not hpas:
            return
        pods = self.target_pods(now)
        backlogs = await self.read_backlogs(hpas)
        gate = asyncio.Semaphore(WRITES_AT_ONCE)

        async def evaluate_one(hpa: HorizontalPodAutoscaler) -> None:
            async with gate:
                await self._evaluate(hpa, pods, backlogs, now)

        # Each HPA's writes are its own (its deployment's scale, its status): they may overlap.
        await asyncio.gather(*(evaluate_one(hpa) for hpa in hpas))
        self.rounds += 1

    def samples(self, now: float) -> dict[str, tuple[str, PodMetrics]]:
        """The latest sample of each pod and the node that took it, from nodes reporting lately."""
        found: dict[str, tuple[str, PodMetrics]] = {}
        for entry in self.metrics.entries.values():
            sample = entry.value
            if now - sample.timestamp > max(3 * sample.window, 15.0):
                continue  # a node that stopped reporting: its figures no longer describe anything
            for pod in sample.pods:
                found[pod_key(pod.namespace, pod.name)] = (sample.node, pod)
        return found

    def target_pods(self, now: float) -> dict[str, list[TargetPod]]:
        """Live pods of each deployment (key ``namespace.deployment``) with their samples."""
        samples = self.samples(now)
        grouped: dict[str, list[TargetPod]] = {}
        for key, entry in self.pods.entries.items():
            pod = entry.value
            owner = pod.metadata.owner
            if owner is None or pod.terminating:
                continue
            status_entry = self.pod_status.get(key)
            status = status_entry.value if status_entry is not None else None
            if status is not None and status.uid != pod.metadata.uid:
                status = None  # an earlier pod of the same name
            if status is not None and status.terminal:
                continue  # finished pods are not part of the load
            cpu, memory = pod.spec.requested
            taken = samples.get(key)
            # A sample from another node is of an earlier pod of that name, not of this one.
            sample = taken[1] if taken is not None and taken[0] == pod.node_name else None
            grouped.setdefault(pod_key(pod.metadata.namespace, owner.name), []).append(
                TargetPod(
                    name=pod.metadata.name,
                    ready=status is not None and status.ready,
                    cpu_request=cpu,
                    memory_request=memory,
                    cpu=sample.cpu_millis if sample is not None else None,
                    memory=sample.memory_bytes if sample is not None else None,
                    pending=not pod.node_name or status is None or status.phase == "Pending",
                )
            )
        return grouped

    async def read_backlogs(self, hpas: list[HorizontalPodAutoscaler]) -> dict[tuple[str, str], Backlog]:
        wanted = {
            (m.external.metric.stream, m.external.metric.consumer)
            for hpa in hpas
            for m in hpa.spec.metrics
            if m.external is not None
        }
        gate = asyncio.Semaphore(BACKLOG_READS_AT_ONCE)

        async def read(stream: str, consumer: str) -> tuple[tuple[str, str], Backlog]:
            async with gate:
                try:
                    info = await self.js.consumer_info(stream, consumer, timeout=2.0)
                except NotFoundError:
                    return (stream, consumer), Backlog(None, f"no consumer {consumer!r} on stream {stream!r}")
                except Exception as err:
                    return (stream, consumer), Backlog(
                        None, f"cannot read the consumer: {err or type(err).__name__}"
                    )
            # Waiting and in flight both are work the deployment has not finished.
            return (stream, consumer), Backlog(float((info.num_pending or 0) + (info.num_ack_pending or 0)))

        return dict(await asyncio.gather(*(read(s, c) for s, c in wanted)))

    async def _evaluate(
        self,
        hpa: HorizontalPodAutoscaler,
        pods: dict[str, list[TargetPod]],
        backlogs: dict[tuple[str, str], Backlog],
        now: float,
    ) -> None:
        if not self.lease.is_leader:
            return  # deposed during the round: the new leader decides from here
        meta = hpa.metadata
        key = pod_key(meta.namespace, meta.name)
        status_entry = self.statuses.get(key)
        previous = status_entry.value if status_entry is not None else None
        if previous is not None and previous.uid != meta.uid:
            previous = None  # the HPA was deleted and made again: a fresh start
        target = hpa.spec.scale_target_ref.name
        deployment = self.deployments.get(pod_key(meta.namespace, target))
        uid, history = self.history.get(key, (meta.uid, []))
        if uid != meta.uid:
            history = []
        target_kind = hpa.spec.scale_target_ref.kind
        if target_kind != "Deployment":
            message = f"cannot scale {target_kind} {target!r}: Shoal's autoscaler scales Deployments"
            evaluation = Evaluation(0, 0, [], message, history)
        elif deployment is None:
            message = f"deployment {target!r} not found in namespace {meta.namespace}"
            evaluation = Evaluation(0, 0, [], message, history)
        else:
            current = deployment.value.spec.desired_replicas
            if not history:
                # Kubernetes counts the replicas an HPA finds as its first recommendation, so a
                # new HPA scales down only after the stabilization window.
                history = [Recommendation(at=now, replicas=current)]
            evaluation = evaluate(
                hpa,
                current,
                pods.get(pod_key(meta.namespace, target), []),
                backlogs,
                history,
                previous.changes if previous else [],
                now,
            )
            self.history[key] = (meta.uid, evaluation.recommendations)
            if evaluation.scales and not await self._scale(hpa, evaluation):
                return
        status = next_status(hpa, previous, evaluation, now)
        if (
            previous is not None
            and not evaluation.scales
            and not self._worth_writing(key, previous, status, now)
        ):
            return
        await self._write_status(key, status_entry, status, now)

    def _worth_writing(self, key: str, previous: HPAStatus, status: HPAStatus, now: float) -> bool:
        shown = [(r.shown_current, r.replicas) for r in status.readings]
        before = [(r.shown_current, r.replicas) for r in previous.readings]
        return (
            shown != before
            or status.message != previous.message
            or status.desired_replicas != previous.desired_replicas
            or now - self.written_at.get(key, 0.0) >= STATUS_REFRESH_SECONDS
        )

    async def _scale(self, hpa: HorizontalPodAutoscaler, evaluation: Evaluation) -> bool:
        meta = hpa.metadata
        target = hpa.spec.scale_target_ref.name
        request = ScaleRequest(namespace=meta.namespace, name=target, replicas=evaluation.desired)
        readings = [r.dump() for r in evaluation.readings]
        try:
            await call(self.nc, subjects.API_SCALE, request, ApplyReply)
        except ShoalError as err:
            await self.events.emit(
                "HorizontalPodAutoscaler", meta.namespace, meta.name, "FailedRescale",
                f"could not scale deployment {target} to {evaluation.desired}: {err}",
                type="Warning", readings=readings,
            )  # fmt: skip
            return False
        shown = ", ".join(f"{r.metric} {r.shown_current}/{r.shown_target}" for r in evaluation.readings)
        await self.events.emit(
            "HorizontalPodAutoscaler", meta.namespace, meta.name, "SuccessfulRescale",
            f"deployment {target} scaled from {evaluation.current} to {evaluation.desired}"
            f" ({shown}): {evaluation.message}",
            readings=readings, replicas=evaluation.desired, previous=evaluation.current,
        )  # fmt: skip
        return True

    async def _write_status(
        self, key: str, current: Entry[HPAStatus] | None, status: HPAStatus, now: float
    ) -> None:
        try:
            if current is None:
                revision = await self.writer.create(key, encode(status))
            else:
                revision = await self.writer.update(key, encode(status), current.revision)
        except Conflict as err:
            log.info("status of %s changed under us (%s); next round", key, err)
            return
        except Deposed as err:
            log.warning("%s: %s", self.name, err)
            self.lease.step_down()
            return
        self.statuses.note_written(key, status, revision)
        self.written_at[key] = now
