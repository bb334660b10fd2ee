"""A Python client of a Shoal cluster: what the CLI, the tests and your scripts use.

Reads go straight to the KV buckets (any NATS client may read them); writes go through
the API actor, which validates them and stores them before answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Literal, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import BucketNotFoundError, NotFoundError
from pydantic import ValidationError

from shoal import keys
from shoal.bus import kv, subjects
from shoal.bus.codec import decode, encode
from shoal.bus.connection import connect_client
from shoal.bus.events import read_events
from shoal.bus.kv import Bucket, BucketDef
from shoal.bus.rpc import call
from shoal.errors import BadPayload, InvalidManifest, NotFound, ShoalError
from shoal.models.api import (
    Ack,
    ApplyReply,
    ApplyRequest,
    DeleteRequest,
    ExecChunk,
    ExecInput,
    ExecRequest,
    ForwardRequest,
    LogChunk,
    LogsRequest,
    ManifestDocument,
    NodeUpdateRequest,
    ObjectRef,
    ProcessStats,
    ResolveRequest,
    RolloutRequest,
    ScaleRequest,
    SecretReadRequest,
    TaintRef,
    VersionReply,
    VersionRequest,
)
from shoal.models.base import Record
from shoal.models.core import Secret
from shoal.security.access import Access

if TYPE_CHECKING:
    from shoal.kinds import Kind
    from shoal.models.autoscaling import HorizontalPodAutoscaler, HPAStatus
    from shoal.models.batch import CronJob, CronJobStatus, Job, JobStatus
    from shoal.models.core import (
        ClaimStatus,
        ConfigMap,
        Namespace,
        PersistentVolumeClaim,
        SealedSecret,
        Secret,
        StoredObject,
    )
    from shoal.models.daemonset import DaemonSet, DaemonSetStatus
    from shoal.models.disruption import PodDisruptionBudget, PodDisruptionBudgetStatus
    from shoal.models.event import Event
    from shoal.models.metrics import NodeMetrics
    from shoal.models.node import Node, NodeCondition, NodeSpec
    from shoal.models.pod import Pod, PodStatus
    from shoal.models.scheduling import PriorityClass, Taint
    from shoal.models.service import Endpoints, Service
    from shoal.models.statefulset import StatefulSet, StatefulSetStatus
    from shoal.models.workloads import Deployment, DeploymentRevision, DeploymentStatus

M = TypeVar("M", bound=Record)
ScalableKind = Literal["Deployment", "StatefulSet"]


def error_line(err: ValidationError) -> str:
    """The first problem of a validation error, as ``field: what is wrong``."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(request)"
    return f"{where}: {first['msg']}"


KEEPALIVE_INTERVAL = 5.0


class ShoalClient:
    def __init__(self, nc: Client, url: str = "") -> None:
        self.nc = nc
        self.url = url
        self.js = nc.jetstream(timeout=10)

    @classmethod
    async def connect(
        cls, url: str, *, timeout: float = 2.0, reconnect: bool = False, access: Access | None = None
    ) -> ShoalClient:
        """``reconnect``: ride out restarts of nats-server (for commands that follow the cluster);
        ``access``: the credentials and CA to connect with (none: plaintext, as no one)."""
        return cls(await connect_client(url, timeout=timeout, reconnect=reconnect, access=access), url)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.nc.close()

    async def __aenter__(self) -> ShoalClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- writes, through the API actor ----------------------------------------------------------

    async def apply(
        self, documents: list[ManifestDocument], *, dry_run: bool = False, prune: str | None = None
    ) -> ApplyReply:
        """``prune``: a label selector; objects it selects that ``documents`` do not name go."""
        return await call(
            self.nc,
            subjects.API_APPLY,
            ApplyRequest(documents=documents, dry_run=dry_run, prune=prune),
            ApplyReply,
            timeout=30,
        )

    async def delete(
        self, refs: list[ObjectRef] | None = None, documents: list[ManifestDocument] | None = None
    ) -> ApplyReply:
        request = DeleteRequest(refs=refs or [], documents=documents or [])
        return await call(self.nc, subjects.API_DELETE, request, ApplyReply, timeout=30)

    async def scale(
        self, namespace: str, name: str, replicas: int, kind: ScalableKind = "Deployment"
    ) -> ApplyReply:
        try:
            request = ScaleRequest(namespace=namespace, name=name, replicas=replicas, kind=kind)
        except ValidationError as err:
            raise InvalidManifest([f"scale: {error_line(err)}"]) from None
        return await call(self.nc, subjects.API_SCALE, request, ApplyReply)

    async def rollout(
        self,
        namespace: str,
        name: str,
        action: str,
        *,
        to_revision: int | None = None,
        images: dict[str, str] | None = None,
        kind: str = "Deployment",
    ) -> ApplyReply:
        """undo (to_revision), pause, resume, restart or set-image (images) a deployment; undo,
        restart or set-image a DaemonSet or StatefulSet (``kind``)."""
        request = RolloutRequest(
            namespace=namespace,
            name=name,
            action=action,  # type: ignore[arg-type]
            to_revision=to_revision,
            images=images or {},
            kind=kind,  # type: ignore[arg-type]
        )
        return await call(self.nc, subjects.API_ROLLOUT, request, ApplyReply)

    async def resolve(self, namespace: str, name: str) -> Endpoints:
        """Where a service's traffic goes, computed now by a service actor."""
        from shoal.models.service import Endpoints

        return await call(
            self.nc, subjects.API_RESOLVE, ResolveRequest(namespace=namespace, name=name), Endpoints
        )

    async def server_version(self) -> VersionReply:
        """The versions an API actor of the cluster runs, and its nats-server's."""
        return await call(self.nc, subjects.API_VERSION, VersionRequest(), VersionReply, timeout=5.0)

    async def update_node(
        self,
        name: str,
        *,
        unschedulable: bool | None = None,
        draining: bool | None = None,
        labels: dict[str, str | None] | None = None,
        add_taints: list[Taint] | None = None,
        remove_taints: list[TaintRef] | None = None,
    ) -> NodeSpec:
        """Cordon, drain, label (a None value removes the label) or taint a node."""
        from shoal.models.node import NodeSpec

        request = NodeUpdateRequest(
            name=name,
            unschedulable=unschedulable,
            draining=draining,
            labels=labels or {},
            add_taints=add_taints or [],
            remove_taints=remove_taints or [],
        )
        return await call(self.nc, subjects.API_NODE, request, NodeSpec)

    # -- reads, straight from KV ----------------------------------------------------------------

    async def _items(self, definition: BucketDef[M]) -> dict[str, M]:
        try:
            bucket = await Bucket.open(self.js, definition)
        except (BucketNotFoundError, NotFoundError):
            return {}  # a cluster that never stored anything of this kind
        return {key: entry.value for key, entry in (await bucket.items()).items()}

    async def _get(self, definition: BucketDef[M], key: str) -> M | None:
        try:
            bucket = await Bucket.open(self.js, definition)
        except (BucketNotFoundError, NotFoundError):
            return None
        entry = await bucket.get(key)
        return entry.value if entry else None

    async def deployments(self) -> dict[str, Deployment]:
        return await self._items(kv.DEPLOYMENTS)

    async def deployment_statuses(self) -> dict[str, DeploymentStatus]:
        return await self._items(kv.DEPLOYMENT_STATUS)

    async def jobs(self) -> dict[str, Job]:
        return await self._items(kv.JOBS)

    async def job_statuses(self) -> dict[str, JobStatus]:
        return await self._items(kv.JOB_STATUS)

    async def cronjobs(self) -> dict[str, CronJob]:
        return await self._items(kv.CRONJOBS)

    async def cronjob_statuses(self) -> dict[str, CronJobStatus]:
        return await self._items(kv.CRONJOB_STATUS)

    async def daemonsets(self) -> dict[str, DaemonSet]:
        return await self._items(kv.DAEMONSETS)

    async def daemonset_statuses(self) -> dict[str, DaemonSetStatus]:
        return await self._items(kv.DAEMONSET_STATUS)

    async def pdbs(self) -> dict[str, PodDisruptionBudget]:
        return await self._items(kv.PDBS)

    async def pdb_statuses(self) -> dict[str, PodDisruptionBudgetStatus]:
        return await self._items(kv.PDB_STATUS)

    async def statefulsets(self) -> dict[str, StatefulSet]:
        return await self._items(kv.STATEFULSETS)

    async def statefulset_statuses(self) -> dict[str, StatefulSetStatus]:
        return await self._items(kv.STATEFULSET_STATUS)

    async def pods(self) -> dict[str, Pod]:
        return await self._items(kv.PODS)

    async def pod_statuses(self) -> dict[str, PodStatus]:
        return await self._items(kv.POD_STATUS)

    async def nodes(self) -> dict[str, Node]:
        return await self._items(kv.NODES)

    async def services(self) -> dict[str, Service]:
        return await self._items(kv.SERVICES)

    async def endpoints(self) -> dict[str, Endpoints]:
        return await self._items(kv.ENDPOINTS)

    async def hpas(self) -> dict[str, HorizontalPodAutoscaler]:
        return await self._items(kv.HPAS)

    async def hpa_statuses(self) -> dict[str, HPAStatus]:
        return await self._items(kv.HPA_STATUS)

    async def node_metrics(self) -> dict[str, NodeMetrics]:
        """The latest usage sample of every node that sent one lately."""
        return await self._items(kv.METRICS)

    async def revisions(
        self, namespace: str, name: str, kind: str = "Deployment"
    ) -> dict[int, DeploymentRevision]:
        try:
            bucket = await Bucket.open(self.js, kv.REVISIONS)
        except (BucketNotFoundError, NotFoundError):
            return {}
        owner = keys.revision_owner(kind, name)
        entries = await bucket.items(keys.revisions_of(namespace, owner))
        return {entry.value.revision: entry.value for entry in entries.values()}

    async def priority_classes(self) -> dict[str, PriorityClass]:
        return await self._items(kv.PRIORITY_CLASSES)

    async def node_conditions(self) -> dict[str, NodeCondition]:
        """Each node's Ready condition, as the leading scheduler judged it."""
        return await self._items(kv.NODE_STATUS)

    async def ready_nodes(self) -> set[str]:
        """The registered nodes the leading scheduler judges Ready."""
        nodes, conditions = await self.nodes(), await self.node_conditions()
        return {name for name in nodes if (c := conditions.get(name)) is not None and c.ready}

    async def node_specs(self) -> dict[str, NodeSpec]:
        return await self._items(kv.NODE_SPECS)

    async def namespaces(self) -> dict[str, Namespace]:
        return await self._items(kv.NAMESPACES)

    async def config_maps(self) -> dict[str, ConfigMap]:
        return await self._items(kv.CONFIGMAPS)

    async def sealed_secrets(self) -> dict[str, SealedSecret]:
        """Secrets as stored: names, types and key sizes; the values stay sealed."""
        return await self._items(kv.SECRETS)

    async def secret(self, namespace: str, name: str) -> Secret:
        """A Secret's values, unsealed by an API actor."""
        return await call(
            self.nc, subjects.API_SECRET_READ, SecretReadRequest(namespace=namespace, name=name), Secret
        )

    async def claims(self) -> dict[str, PersistentVolumeClaim]:
        return await self._items(kv.CLAIMS)

    async def claim_statuses(self) -> dict[str, ClaimStatus]:
        return await self._items(kv.CLAIM_STATUS)

    async def stored_objects(self, plural: str) -> dict[str, StoredObject]:
        """Objects of a kind Shoal stores without acting on it, by their key."""
        try:
            bucket = await Bucket.open(self.js, kv.OBJECTS)
        except (BucketNotFoundError, NotFoundError):
            return {}
        return {key: entry.value for key, entry in (await bucket.items(f"{plural}.>")).items()}

    async def stored(self, info: Kind, namespace: str, name: str) -> Record | None:
        """One object as stored, of any kind a manifest can write (None: there is none).
        A Secret comes with its values, unsealed by an API actor for those allowed to read them."""
        scope = namespace if info.namespaced else ""
        if info.kind == "Secret":
            try:
                return await self.secret(scope, name)
            except NotFound:
                return None
        if info.handling == "stored":
            return await self._get(kv.OBJECTS, keys.stored_key(info.plural, scope, name))
        if info.bucket is None:
            return None
        return await self._get(info.bucket, keys.object_key(scope, name))

    async def pod(self, namespace: str, name: str) -> tuple[Pod, PodStatus | None]:
        from shoal.models.pod import pod_key

        pod = await self._get(kv.PODS, pod_key(namespace, name))
        if pod is None:
            raise NotFound(f'pod "{name}" not found in namespace {namespace}')
        status = await self._get(kv.POD_STATUS, pod_key(namespace, name))
        if status is not None and status.uid != pod.metadata.uid:
            status = None
        return pod, status

    async def process_stats(self, wait: float = 0.5) -> list[ProcessStats]:
        """Every Shoal process's stats (roles, longest event-loop stall), as many as answer in ``wait``."""
        inbox = self.nc.new_inbox()
        replies: list[ProcessStats] = []

        async def received(msg: Msg) -> None:
            with contextlib.suppress(BadPayload):
                replies.append(decode(msg.data, ProcessStats, what="process stats"))

        subscription = await self.nc.subscribe(inbox, cb=received)
        try:
            await self.nc.publish(subjects.PROCESS_STATS, b"", reply=inbox)
            await asyncio.sleep(wait)
        finally:
            await subscription.unsubscribe()
        return replies

    # -- streams --------------------------------------------------------------------------------

    async def events(
        self, *, follow: bool = False, last: int | None = None, subject: str = subjects.EVENTS_ALL
    ) -> AsyncIterator[Event]:
        try:
            async for event in read_events(self.js, follow=follow, last=last, subject=subject):
                yield event
        except NotFoundError:
            return  # no events stream yet: nothing has happened

    async def logs(
        self,
        namespace: str,
        name: str,
        *,
        container: str = "",
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        pod, _ = await self.pod(namespace, name)
        if not pod.node_name:
            raise ShoalError(f"pod {name} is not scheduled yet: it has no logs")
        stream_id = uuid.uuid4().hex
        stream = subjects.logs_stream(stream_id)
        chunks: asyncio.Queue[LogChunk] = asyncio.Queue()

        async def received(msg: Msg) -> None:
            try:
                chunks.put_nowait(decode(msg.data, LogChunk, what="log chunk"))
            except BadPayload as err:
                chunks.put_nowait(LogChunk(end=True, error=str(err)))

        subscription = await self.nc.subscribe(stream, cb=received)
        keepalive: asyncio.Task[None] | None = None
        try:
            request = LogsRequest(
                namespace=namespace,
                pod=name,
                container=container,
                follow=follow,
                tail=tail,
                since=since,
                previous=previous,
                stream=stream,
            )
            await call(self.nc, subjects.node_logs(pod.node_name), request, Ack)
            if follow:
                keepalive = asyncio.create_task(self._keep_alive(stream))
            while True:
                chunk = await chunks.get()
                if chunk.data:
                    yield chunk.data
                if chunk.end:
                    if chunk.error:
                        raise ShoalError(f"log stream ended: {chunk.error}")
                    return
        finally:
            if keepalive is not None:
                keepalive.cancel()
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def exec(
        self,
        namespace: str,
        name: str,
        command: list[str],
        *,
        container: str = "",
        stdin: AsyncIterator[bytes] | None = None,
        tty: bool = False,
        size: tuple[int, int] = (0, 0),
        resizes: AsyncIterator[tuple[int, int]] | None = None,
        output: Callable[[int, bytes], None],
    ) -> int:
        """Run ``command`` in the pod's container, on its node; ``output(fd, data)`` gets what it
        prints (fd 1 or 2), ``stdin`` (if given) feeds it. With ``tty``, its terminal is ``size``
        (rows, columns) and follows what ``resizes`` yields. The command's exit code."""
        pod, _ = await self.pod(namespace, name)
        if not pod.node_name:
            raise ShoalError(f"pod {name} is not scheduled yet: there is no container to run in")
        stream, chunks, subscription = await self._session(pod.node_name, "exec output")
        helpers: list[asyncio.Task[None]] = []
        try:
            request = ExecRequest(
                namespace=namespace, pod=name, container=container, command=command,
                stdin=stdin is not None, tty=tty, rows=size[0], columns=size[1], stream=stream,
            )  # fmt: skip
            await call(self.nc, subjects.node_exec(pod.node_name), request, Ack)
            helpers.append(asyncio.create_task(self._keep_alive(stream, subjects.exec_keepalive)))
            if stdin is not None:
                helpers.append(asyncio.create_task(self._feed(stream, stdin)))
            if tty and resizes is not None:
                helpers.append(asyncio.create_task(self._resize(stream, resizes)))
            while True:
                chunk = await chunks.get()
                if chunk.data:
                    output(chunk.fd, chunk.data)
                if chunk.end:
                    if chunk.error or chunk.exit_code is None:
                        raise ShoalError(f"exec in pod {name} ended: {chunk.error or 'no exit code'}")
                    return chunk.exit_code
        finally:
            for helper in helpers:
                helper.cancel()
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def forward(
        self, namespace: str, name: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Relay one local connection to ``port`` of the pod, through its node, until either side
        closes it (``shoal port-forward``)."""
        pod, _ = await self.pod(namespace, name)
        if not pod.node_name:
            raise ShoalError(f"pod {name} is not scheduled yet: it has no port to connect to")
        stream, chunks, subscription = await self._session(pod.node_name, "forwarded data")

        async def sent() -> AsyncIterator[bytes]:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(32 * 1024):
                    yield data

        helpers: list[asyncio.Task[None]] = []
        try:
            request = ForwardRequest(namespace=namespace, pod=name, port=port, stream=stream)
            await call(self.nc, subjects.node_forward(pod.node_name), request, Ack)
            helpers.append(asyncio.create_task(self._keep_alive(stream, subjects.exec_keepalive)))
            helpers.append(asyncio.create_task(self._feed(stream, sent())))
            while not (chunk := await chunks.get()).end:
                writer.write(chunk.data)
                await writer.drain()
            if chunk.error:
                raise ShoalError(f"port-forward to pod {name} ended: {chunk.error}")
        finally:
            for helper in helpers:
                helper.cancel()
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            writer.close()

    async def _session(self, node: str, what: str) -> tuple[str, asyncio.Queue[ExecChunk], Subscription]:
        """A new exec-style session with ``node``: its subject, and a queue of what arrives on it."""
        stream = subjects.exec_stream(node, uuid.uuid4().hex)
        chunks: asyncio.Queue[ExecChunk] = asyncio.Queue()

        async def received(msg: Msg) -> None:
            try:
                chunks.put_nowait(decode(msg.data, ExecChunk, what=what))
            except BadPayload as err:
                chunks.put_nowait(ExecChunk(end=True, error=str(err)))

        return stream, chunks, await self.nc.subscribe(stream, cb=received)

    async def _feed(self, stream: str, source: AsyncIterator[bytes]) -> None:
        """Send what ``source`` yields as the session's input, then its end."""
        async for data in source:
            await self.nc.publish(subjects.exec_input(stream), encode(ExecInput(data=data)))
        await self.nc.publish(subjects.exec_input(stream), encode(ExecInput(eof=True)))

    async def _resize(self, stream: str, resizes: AsyncIterator[tuple[int, int]]) -> None:
        async for rows, columns in resizes:
            await self.nc.publish(subjects.exec_input(stream), encode(ExecInput(rows=rows, columns=columns)))

    async def _keep_alive(
        self, stream: str, subject_of: Callable[[str], str] = subjects.logs_keepalive
    ) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_INTERVAL)
            with contextlib.suppress(Exception):
                await self.nc.publish(subject_of(stream), encode(Ack()))
