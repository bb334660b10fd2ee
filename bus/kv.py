"""JetStream KV buckets: their definitions, and typed, revision-checked access to them.

Every shared key is written with compare-and-swap (``create`` or ``update`` against the
revision the writer read), so two writers never both win. Plain ``put`` is only for keys
with a single owner (a node's lease, a node's pod status).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Generic, TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RePublish, StorageType, StreamConfig
from nats.js.errors import (
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from shoal.bus import subjects
from shoal.bus.batch import allow_batches, create_batched_stream, exists_or_made, stream_subjects
from shoal.bus.codec import decode, encode
from shoal.errors import BadPayload, Conflict
from shoal.models.base import Record, model_at

if TYPE_CHECKING:
    from shoal.models.autoscaling import HorizontalPodAutoscaler, HPAStatus
    from shoal.models.batch import CronJob, CronJobStatus, Job, JobStatus
    from shoal.models.core import (
        ClaimStatus,
        ConfigMap,
        Namespace,
        PersistentVolumeClaim,
        SealedSecret,
        StoredObject,
    )
    from shoal.models.daemonset import DaemonSet, DaemonSetStatus
    from shoal.models.disruption import PodDisruptionBudget, PodDisruptionBudgetStatus
    from shoal.models.metrics import NodeMetrics
    from shoal.models.node import LeaseRecord, Node, NodeCondition, NodeSpec
    from shoal.models.pod import Pod, PodStatus
    from shoal.models.scheduling import PriorityClass
    from shoal.models.service import Endpoints, NodePortClaim, Service
    from shoal.models.statefulset import StatefulSet, StatefulSetStatus
    from shoal.models.workloads import Deployment, DeploymentRevision, DeploymentStatus

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Record)


@dataclass(frozen=True)
class BucketDef(Generic[M]):
    name: str
    model_path: str
    """``module:Class`` under ``shoal.models``: imported on first use, since importing every
    model costs a command that reads one bucket most of its start-up."""
    history: int
    description: str
    memory: bool = False
    """Kept in memory: samples that lose nothing by vanishing with the server."""
    ttl: float | None = None
    republish: tuple[str, str] | None = None
    """(source, destination) subjects: writes also published where plain NATS clients listen."""
    by_node: bool = False
    """Kept under the node that writes each value (``<node>.<namespace>.<pod>``), so that the
    NATS server lets a node write only its own; read by pod key (see ``Bucket.watch``)."""

    @functools.cached_property
    def model(self) -> type[M]:
        return model_at(self.model_path)  # type: ignore[return-value]


DEPLOYMENTS: BucketDef[Deployment] = BucketDef(
    subjects.BUCKET_DEPLOYMENTS, "workloads:Deployment", 5, "Desired deployments"
)
DEPLOYMENT_STATUS: BucketDef[DeploymentStatus] = BucketDef(
    subjects.BUCKET_DEPLOYMENT_STATUS, "workloads:DeploymentStatus", 1, "Deployment status"
)
PODS: BucketDef[Pod] = BucketDef(
    subjects.BUCKET_PODS, "pod:Pod", 1, "Pod records: template copy, binding, deletion"
)
POD_STATUS: BucketDef[PodStatus] = BucketDef(
    subjects.BUCKET_POD_STATUS, "pod:PodStatus", 1, "Pod status reported by nodes", by_node=True
)
NODES: BucketDef[Node] = BucketDef(subjects.BUCKET_NODES, "node:Node", 1, "Node registrations")
NODE_STATUS: BucketDef[NodeCondition] = BucketDef(
    subjects.BUCKET_NODE_STATUS, "node:NodeCondition", 1, "Ready condition of each node"
)
NODE_SPECS: BucketDef[NodeSpec] = BucketDef(
    subjects.BUCKET_NODE_SPECS, "node:NodeSpec", 1, "Cordon and drain requests per node"
)
LEASES: BucketDef[LeaseRecord] = BucketDef(
    subjects.BUCKET_LEASES, "node:LeaseRecord", 1, "Leader leases of replicated actors"
)
REVISIONS: BucketDef[DeploymentRevision] = BucketDef(
    subjects.BUCKET_REVISIONS, "workloads:DeploymentRevision", 1, "Deployment revisions"
)
SERVICES: BucketDef[Service] = BucketDef(subjects.BUCKET_SERVICES, "service:Service", 5, "Service objects")
ENDPOINTS: BucketDef[Endpoints] = BucketDef(
    subjects.BUCKET_ENDPOINTS, "service:Endpoints", 1, "Endpoints of services"
)
NODE_PORTS: BucketDef[NodePortClaim] = BucketDef(
    subjects.BUCKET_NODE_PORTS, "service:NodePortClaim", 1, "Node ports claimed by services"
)
CLUSTER_IPS: BucketDef[NodePortClaim] = BucketDef(
    subjects.BUCKET_CLUSTER_IPS, "service:NodePortClaim", 1, "Cluster IPs claimed by services"
)
PRIORITY_CLASSES: BucketDef[PriorityClass] = BucketDef(
    subjects.BUCKET_PRIORITY_CLASSES, "scheduling:PriorityClass", 5, "PriorityClass objects"
)
HPAS: BucketDef[HorizontalPodAutoscaler] = BucketDef(
    subjects.BUCKET_HPAS, "autoscaling:HorizontalPodAutoscaler", 5, "HorizontalPodAutoscaler objects"
)
HPA_STATUS: BucketDef[HPAStatus] = BucketDef(
    subjects.BUCKET_HPA_STATUS, "autoscaling:HPAStatus", 1, "Autoscaler decisions and readings"
)
NAMESPACES: BucketDef[Namespace] = BucketDef(
    subjects.BUCKET_NAMESPACES, "core:Namespace", 5, "Namespace objects"
)
CONFIGMAPS: BucketDef[ConfigMap] = BucketDef(
    subjects.BUCKET_CONFIGMAPS, "core:ConfigMap", 5, "ConfigMap objects"
)
SECRETS: BucketDef[SealedSecret] = BucketDef(
    subjects.BUCKET_SECRETS, "core:SealedSecret", 5, "Secrets, sealed by the API"
)
CLAIMS: BucketDef[PersistentVolumeClaim] = BucketDef(
    subjects.BUCKET_CLAIMS, "core:PersistentVolumeClaim", 5, "PersistentVolumeClaim objects"
)
CLAIM_STATUS: BucketDef[ClaimStatus] = BucketDef(
    subjects.BUCKET_CLAIM_STATUS, "core:ClaimStatus", 1, "Node and volume of each bound claim"
)
JOBS: BucketDef[Job] = BucketDef(subjects.BUCKET_JOBS, "batch:Job", 5, "Job objects")
JOB_STATUS: BucketDef[JobStatus] = BucketDef(subjects.BUCKET_JOB_STATUS, "batch:JobStatus", 1, "Job status")
CRONJOBS: BucketDef[CronJob] = BucketDef(subjects.BUCKET_CRONJOBS, "batch:CronJob", 5, "CronJob objects")
CRONJOB_STATUS: BucketDef[CronJobStatus] = BucketDef(
    subjects.BUCKET_CRONJOB_STATUS, "batch:CronJobStatus", 1, "CronJob status"
)
DAEMONSETS: BucketDef[DaemonSet] = BucketDef(
    subjects.BUCKET_DAEMONSETS, "daemonset:DaemonSet", 5, "DaemonSet objects"
)
DAEMONSET_STATUS: BucketDef[DaemonSetStatus] = BucketDef(
    subjects.BUCKET_DAEMONSET_STATUS, "daemonset:DaemonSetStatus", 1, "DaemonSet status"
)
PDBS: BucketDef[PodDisruptionBudget] = BucketDef(
    subjects.BUCKET_PDBS, "disruption:PodDisruptionBudget", 5, "PodDisruptionBudget objects"
)
PDB_STATUS: BucketDef[PodDisruptionBudgetStatus] = BucketDef(
    subjects.BUCKET_PDB_STATUS, "disruption:PodDisruptionBudgetStatus", 1, "PodDisruptionBudget status"
)
STATEFULSETS: BucketDef[StatefulSet] = BucketDef(
    subjects.BUCKET_STATEFULSETS, "statefulset:StatefulSet", 5, "StatefulSet objects"
)
STATEFULSET_STATUS: BucketDef[StatefulSetStatus] = BucketDef(
    subjects.BUCKET_STATEFULSET_STATUS, "statefulset:StatefulSetStatus", 1, "StatefulSet status"
)
OBJECTS: BucketDef[StoredObject] = BucketDef(
    subjects.BUCKET_OBJECTS, "core:StoredObject", 5, "Objects stored as written, not acted on"
)
METRICS: BucketDef[NodeMetrics] = BucketDef(
    subjects.BUCKET_METRICS,
    "metrics:NodeMetrics",
    1,
    "Latest usage sample of each node",
    memory=True,
    ttl=120.0,
    republish=(f"$KV.{subjects.BUCKET_METRICS}.>", f"{subjects.METRICS_PREFIX}.node.>"),
)

ALL_BUCKETS: tuple[BucketDef, ...] = (
    DEPLOYMENTS,
    DEPLOYMENT_STATUS,
    PODS,
    POD_STATUS,
    NODES,
    NODE_STATUS,
    NODE_SPECS,
    LEASES,
    PRIORITY_CLASSES,
    REVISIONS,
    SERVICES,
    ENDPOINTS,
    NODE_PORTS,
    CLUSTER_IPS,
    HPAS,
    HPA_STATUS,
    NAMESPACES,
    CONFIGMAPS,
    SECRETS,
    CLAIMS,
    CLAIM_STATUS,
    JOBS,
    JOB_STATUS,
    CRONJOBS,
    CRONJOB_STATUS,
    DAEMONSETS,
    DAEMONSET_STATUS,
    STATEFULSETS,
    STATEFULSET_STATUS,
    PDBS,
    PDB_STATUS,
    OBJECTS,
    METRICS,
)


def connection_of(js: JetStreamContext) -> Client:
    """The connection a JetStream context talks over (nats-py keeps it to itself)."""
    return js._nc


async def ensure_buckets(js: JetStreamContext, replicas: int = 1) -> None:
    """Create any missing bucket, with explicit history and replicas, ready for batched writes."""
    for bucket in ALL_BUCKETS:

        async def exists(name: str = bucket.name) -> bool:
            try:
                await js.key_value(name)
            except BucketNotFoundError:
                return False
            return True

        await exists_or_made(exists, partial(_create, js, bucket, replicas), f"bucket {bucket.name}")
        await allow_batches(connection_of(js), f"KV_{bucket.name}", stream_subjects(bucket.name))


def stream_config(bucket: BucketDef, replicas: int) -> StreamConfig:
    """The stream behind ``bucket``, as nats-py's ``create_key_value`` would make it."""
    duplicate_window = min(bucket.ttl, 120.0) if bucket.ttl else 120.0
    return StreamConfig(
        name=f"KV_{bucket.name}",
        description=bucket.description,
        subjects=[f"$KV.{bucket.name}.>"],
        allow_direct=False,
        allow_rollup_hdrs=True,
        allow_msg_ttl=True,
        deny_delete=True,
        discard=DiscardPolicy.NEW,
        duplicate_window=duplicate_window,
        max_age=bucket.ttl,
        max_consumers=-1,
        max_msgs=-1,
        max_msgs_per_subject=bucket.history,
        num_replicas=replicas,
        storage=StorageType.MEMORY if bucket.memory else StorageType.FILE,
        republish=RePublish(src=bucket.republish[0], dest=bucket.republish[1]) if bucket.republish else None,
    )


async def _create(js: JetStreamContext, bucket: BucketDef, replicas: int) -> None:
    config = stream_config(bucket, replicas)
    await create_batched_stream(connection_of(js), config, stream_subjects(bucket.name))


SNAPSHOT_CONSUMER_LINGER = 1.0
"""Seconds a one-off read's consumer outlives it: frequent readers must not pile consumers up."""

WATCH_CONSUMER_LINGER = 30.0
"""Seconds a long-lived watch's consumer outlives its subscriber (after a reconnect, say)."""


@dataclass(frozen=True, slots=True)
class Entry(Generic[M]):
    key: str
    value: M
    revision: int


@dataclass(frozen=True, slots=True)
class Change(Generic[M]):
    """One update seen by a watch; ``value`` is None when the key was deleted."""

    key: str
    value: M | None
    revision: int
    known: bool = False
    """The watcher already held this revision (its own write): not decoded, value is None."""


def node_and_key(stored: str) -> tuple[str, str]:
    """``<node>.<namespace>.<pod>`` as (node, pod key); a key of two tokens (as kept before
    statuses were kept by node) belongs to no node."""
    if stored.count(".") >= 2:
        node, _, key = stored.partition(".")
        return node, key
    return "", stored


def by_node_key(node: str, key: str) -> str:
    """Where ``node`` keeps its value for the pod ``key`` in a bucket kept by node."""
    return f"{node}.{key}"


def newest(reports: dict[str, Change[M]]) -> Change[M] | None:
    return max(reports.values(), key=lambda change: change.revision, default=None)


class Synced:
    """Marker a watch yields once it has delivered every key that existed when it began."""


SYNCED = Synced()


class Bucket(Generic[M]):
    """Typed access to one bucket."""

    def __init__(self, kv: KeyValue, definition: BucketDef[M], js: JetStreamContext | None = None) -> None:
        self.kv = kv
        self.definition = definition
        self.js = js

    @property
    def model(self) -> type[M]:
        return self.definition.model

    @property
    def connected(self) -> bool:
        return self.js is None or connection_of(self.js).is_connected

    @classmethod
    async def open(cls, js: JetStreamContext, definition: BucketDef[M]) -> Bucket[M]:
        return cls(await js.key_value(definition.name), definition, js)

    async def _last_revision(self) -> int | None:
        """The bucket's newest revision (0 when it holds nothing), if it can be read.

        nats-py marks the end of a watch's initial values from the consumer's pending count,
        which can read 0 while the values are still on their way (the marker comes too
        early), and never reads 0 while writes arrive faster than the watcher takes them (it
        never comes: a busy bucket, such as 1,000 nodes' leases, kept a watcher from ever
        being synced). A watch of the whole bucket knows instead that it has everything once
        it has seen the newest revision, which is always delivered (it is the last of its
        key) — unless it expires first, so expiring buckets take the marker too.
        """
        if self.js is None:
            return None
        # The newest of the bucket's own subjects: its stream also holds writers' fence messages.
        name = self.definition.name
        try:
            return (await self.js.get_msg(f"KV_{name}", subject=f"$KV.{name}.>")).seq or 0
        except NotFoundError:
            return 0

    async def _key_count(self, keys: str) -> int | None:
        """How many keys (deleted ones included) match ``keys``: a filtered watch delivers one
        entry for each, so it holds them all when it has seen that many."""
        if self.js is None or self.definition.ttl is not None:
            return None
        stream = f"KV_{self.definition.name}"
        info = await self.js.stream_info(stream, subjects_filter=f"$KV.{self.definition.name}.{keys}")
        return len(info.state.subjects or {})

    def _decode(self, key: str, data: bytes | None) -> M | None:
        if not data:
            return None
        try:
            return decode(data, self.model, what=f"{self.definition.name}/{key}")
        except BadPayload as err:
            log.warning("ignoring undecodable KV entry: %s", err)
            return None

    async def get(self, key: str) -> Entry[M] | None:
        if self.definition.by_node:
            return (await self.items(f"*.{key}")).get(key)
        try:
            raw = await self.kv.get(key)
        except (KeyNotFoundError, KeyDeletedError, NotFoundError):
            return None
        value = self._decode(key, raw.value)
        return None if value is None else Entry(key, value, raw.revision or 0)

    async def create(self, key: str, value: M) -> int:
        try:
            return await self.kv.create(key, encode(value))
        except KeyWrongLastSequenceError:
            raise Conflict(f"{self.definition.name}/{key} already exists") from None

    async def update(self, key: str, value: M, revision: int) -> int:
        try:
            return await self.kv.update(key, encode(value), last=revision)
        except KeyWrongLastSequenceError:
            raise Conflict(f"{self.definition.name}/{key} changed since revision {revision}") from None

    async def put(self, key: str, value: M) -> int:
        """Unconditional write: only for keys with exactly one writer."""
        return await self.kv.put(key, encode(value))

    async def delete(self, key: str, revision: int | None = None) -> None:
        try:
            await self.kv.delete(key, last=revision)
        except KeyWrongLastSequenceError:
            raise Conflict(f"{self.definition.name}/{key} changed since revision {revision}") from None

    async def keys(self, keys: str = ">") -> list[str]:
        """Every live key (matching ``keys``)."""
        return list(await self.items(keys))

    async def items(self, keys: str = ">") -> dict[str, Entry[M]]:
        """Every live key (matching ``keys``), read through one short-lived watch."""
        result: dict[str, Entry[M]] = {}
        async for change in self.watch(keys, inactive_threshold=SNAPSHOT_CONSUMER_LINGER):
            if isinstance(change, Synced):
                break
            if change.value is None:
                result.pop(change.key, None)
            else:
                result[change.key] = Entry(change.key, change.value, change.revision)
        return result

    async def watch(
        self,
        keys: str = ">",
        *,
        inactive_threshold: float = WATCH_CONSUMER_LINGER,
        known: Callable[[str, int], bool] | None = None,
    ) -> AsyncIterator[Change[M] | Synced]:
        """Current values of every key, then ``SYNCED``, then each change as it happens.

        Each watch is an ephemeral JetStream consumer, which the server deletes
        ``inactive_threshold`` seconds after its subscriber goes away. ``known(key, revision)``
        spares decoding what the watcher holds already (the echo of its own writes).

        A bucket kept by node (``by_node``) is watched by its stored keys (``keys``) and seen by
        pod key: of the values nodes hold for one pod (its old node's, not yet forgotten, and
        its new node's), the newest written, and only values whose ``node_name`` is the node
        they are kept under.
        """
        if not self.definition.by_node:
            async for change in self._watch(keys, inactive_threshold=inactive_threshold, known=known):
                yield change
            return
        held: dict[str, dict[str, Change[M]]] = {}
        async for change in self._watch(keys, inactive_threshold=inactive_threshold):
            if isinstance(change, Synced):
                yield change
                continue
            node, key = node_and_key(change.key)
            reports = held.setdefault(key, {})
            before = newest(reports)
            # A value naming another node than the one it is kept under was not written by
            # that node (the server lets each write only under its own name): not believed.
            forged = change.value is not None and node and getattr(change.value, "node_name", node) != node
            if change.value is None or forged:
                reports.pop(node, None)
            else:
                reports[node] = change
            after = newest(reports)
            if not reports:
                del held[key]
            if after is None:
                if before is not None:
                    yield Change(key, None, change.revision)
            elif before is None or after.revision != before.revision:
                # At the revision of what changed it, so that a value falling back to an older
                # node's (the newer one deleted) still comes after what a cache holds.
                yield Change(key, after.value, change.revision)

    async def _watch(
        self,
        keys: str,
        *,
        inactive_threshold: float,
        known: Callable[[str, int], bool] | None = None,
    ) -> AsyncIterator[Change[M] | Synced]:
        newest = await self._last_revision() if keys == ">" else None
        expected = await self._key_count(keys) if keys != ">" else None
        watcher = await self.kv.watch(keys, inactive_threshold=inactive_threshold)
        trust_marker = self.definition.ttl is not None or (newest is None and expected is None)
        seen: set[str] = set()
        synced = False
        if newest == 0 or expected == 0:
            synced = True
            yield SYNCED
        try:
            async for entry in watcher:
                if entry is None:
                    if trust_marker and not synced:
                        synced = True
                        yield SYNCED
                    continue
                revision = entry.revision or 0
                if entry.operation in (KV_DEL, KV_PURGE):
                    yield Change(entry.key, None, revision)
                elif known is not None and known(entry.key, revision):
                    yield Change(entry.key, None, revision, known=True)
                else:
                    yield Change(entry.key, self._decode(entry.key, entry.value), revision)
                if synced:
                    continue
                if expected is not None:
                    seen.add(entry.key)
                if (newest is not None and revision >= newest) or (
                    expected is not None and len(seen) >= expected
                ):
                    synced = True
                    yield SYNCED
        finally:
            try:
                await watcher.stop()
            except Exception as err:  # the connection may already be gone
                log.debug("stopping a KV watcher failed: %s", err)
