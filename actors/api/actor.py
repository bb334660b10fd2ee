"""The API actor: answers ``shoal.v1.api.*``, validating before storing anything.

Several replicas may run; they share a queue group and write with compare-and-swap, so
concurrent applies of the same object never both win. A request is answered only after
its writes are stored in JetStream.
"""

from __future__ import annotations

import logging
import time
import uuid

from nats.aio.client import Client
from nats.aio.subscription import Subscription

from shoal.actors.api.apply import PlannedWrite, plan_deployment, scaled
from shoal.actors.base import Actor
from shoal.bus import kv, subjects
from shoal.bus.events import EventPublisher, ensure_events_stream
from shoal.bus.kv import Bucket
from shoal.bus.rpc import serve
from shoal.errors import InvalidManifest, NotFound
from shoal.manifests.validate import ValidObject, validate_documents
from shoal.models.api import (
    ApplyReply,
    ApplyRequest,
    DeleteRequest,
    NodeUpdateRequest,
    ObjectRef,
    ObjectResult,
    ScaleRequest,
)
from shoal.models.node import NodeSpec
from shoal.models.workloads import Deployment
from shoal.retry import retrying

log = logging.getLogger(__name__)

_EVENT_REASON = {"created": "Created", "configured": "Updated"}


class ApiActor(Actor):
    role = "api"

    def __init__(self, nc: Client, *, replicas: int = 1) -> None:
        super().__init__(nc)
        self.replicas = replicas
        self.events = EventPublisher(nc, "api")
        self._subscriptions: list[Subscription] = []
        self.deployments: Bucket[Deployment]

    async def start(self) -> None:
        await kv.ensure_buckets(self.js, self.replicas)
        await ensure_events_stream(self.js, self.replicas)
        self.deployments = await Bucket.open(self.js, kv.DEPLOYMENTS)
        self.nodes = await Bucket.open(self.js, kv.NODES)
        self.node_specs = await Bucket.open(self.js, kv.NODE_SPECS)
        for subject, model, handler in (
            (subjects.API_APPLY, ApplyRequest, self.apply),
            (subjects.API_DELETE, DeleteRequest, self.delete),
            (subjects.API_SCALE, ScaleRequest, self.scale),
            (subjects.API_NODE, NodeUpdateRequest, self.update_node),
        ):
            self._subscriptions.append(
                await serve(self.nc, subject, model, handler, queue=subjects.API_QUEUE, owner="the API actor")
            )
        await super().start()

    async def on_stop(self) -> None:
        for subscription in self._subscriptions:
            try:
                await subscription.unsubscribe()
            except Exception as err:
                log.debug("unsubscribe: %s", err)

    # -- apply ----------------------------------------------------------------------------------

    async def apply(self, request: ApplyRequest) -> ApplyReply:
        objects, warnings = validate_documents(request.documents)
        # Conflicts mean someone wrote in between: re-read and re-plan, a few times.
        async for attempt in retrying(deadline=10):
            with attempt:
                plans = [await self._plan(obj) for obj in objects]
                if not request.dry_run:
                    await self._write(plans)
        for plan in plans:
            reason = _EVENT_REASON.get(plan.action)
            if reason and not request.dry_run:
                meta = plan.value.metadata
                await self.events.emit(
                    "Deployment",
                    meta.namespace,
                    meta.name,
                    reason,
                    f"deployment {meta.name} {plan.action} (generation {meta.generation},"
                    f" {plan.value.spec.desired_replicas} replicas)",
                    generation=meta.generation,
                    replicas=plan.value.spec.desired_replicas,
                )
        results = [
            ObjectResult(
                kind="Deployment",
                namespace=p.value.metadata.namespace,
                name=p.value.metadata.name,
                action=p.action,
            )
            for p in plans
        ]
        return ApplyReply(results=results, warnings=warnings)

    async def _plan(self, obj: ValidObject) -> PlannedWrite:
        assert isinstance(obj.model, Deployment)
        current = await self.deployments.get(f"{obj.namespace}.{obj.name}")
        return plan_deployment(obj.model, current, now=time.time(), new_uid=uuid.uuid4().hex)

    async def _write(self, plans: list[PlannedWrite]) -> None:
        for plan in plans:
            if plan.action == "unchanged":
                continue
            if plan.revision is None:
                await self.deployments.create(plan.key, plan.value)
            else:
                await self.deployments.update(plan.key, plan.value, plan.revision)

    # -- delete ---------------------------------------------------------------------------------

    async def delete(self, request: DeleteRequest) -> ApplyReply:
        refs = list(request.refs)
        warnings: list[str] = []
        if request.documents:
            objects, warnings = validate_documents(request.documents)
            refs += [ObjectRef(kind=o.kind, namespace=o.namespace, name=o.name) for o in objects]
        results = []
        for ref in refs:
            if ref.kind != "Deployment":
                raise InvalidManifest([f"kind: cannot delete {ref.kind!r} objects (Shoal knows Deployment)"])
            key = f"{ref.namespace}.{ref.name}"
            action = "not found"
            async for attempt in retrying(deadline=10):
                with attempt:
                    current = await self.deployments.get(key)
                    if current is not None:
                        await self.deployments.delete(key, current.revision)
                        action = "deleted"
            if action == "deleted":
                await self.events.emit(
                    "Deployment", ref.namespace, ref.name, "Deleted", f"deployment {ref.name} deleted"
                )
            results.append(ObjectResult(kind=ref.kind, namespace=ref.namespace, name=ref.name, action=action))
        return ApplyReply(results=results, warnings=warnings)

    # -- scale ----------------------------------------------------------------------------------

    async def scale(self, request: ScaleRequest) -> ApplyReply:
        key = f"{request.namespace}.{request.name}"
        action = "unchanged"
        async for attempt in retrying(deadline=10):
            with attempt:
                current = await self.deployments.get(key)
                if current is None:
                    raise NotFound(f'deployment "{request.name}" not found in namespace {request.namespace}')
                before = current.value.spec.desired_replicas
                if before != request.replicas:
                    await self.deployments.update(
                        key, scaled(current.value, request.replicas), current.revision
                    )
                    action = "scaled"
        if action == "scaled":
            await self.events.emit(
                "Deployment",
                request.namespace,
                request.name,
                "Scaled",
                f"deployment {request.name} scaled from {before} to {request.replicas} replicas",
                replicas=request.replicas,
                previous=before,
            )
        return ApplyReply(
            results=[
                ObjectResult(kind="Deployment", namespace=request.namespace, name=request.name, action=action)
            ]
        )

    # -- nodes ----------------------------------------------------------------------------------

    async def update_node(self, request: NodeUpdateRequest) -> NodeSpec:
        if await self.nodes.get(request.name) is None:
            raise NotFound(f'node "{request.name}" not found')
        spec = NodeSpec(name=request.name)
        async for attempt in retrying(deadline=10):
            with attempt:
                current = await self.node_specs.get(request.name)
                spec = current.value if current else NodeSpec(name=request.name)
                changes = {
                    field: value
                    for field, value in (
                        ("unschedulable", request.unschedulable),
                        ("draining", request.draining),
                    )
                    if value is not None
                }
                updated = spec.model_copy(update=changes)
                if updated == spec and current is not None:
                    return spec
                if current is None:
                    await self.node_specs.create(request.name, updated)
                else:
                    await self.node_specs.update(request.name, updated, current.revision)
                spec = updated
        reason = "Draining" if spec.draining else ("Cordoned" if spec.unschedulable else "Uncordoned")
        await self.events.emit("Node", "", request.name, reason, f"node {request.name}: {reason.lower()}")
        return spec
