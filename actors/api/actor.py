"""The API actor: answers ``shoal.v1.api.*``, validating before storing anything.

Several replicas may run; they share a queue group and write with compare-and-swap, so
concurrent applies of the same object never both win. A request is answered only after
its writes are stored in JetStream.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.aio.subscription import Subscription

import shoal
from shoal import keys
from shoal.actors.api.apply import (
    CHANGE_CAUSE,
    Action,
    PlannedWrite,
    bucket_of,
    class_priority,
    immutable_problem,
    key_filter,
    key_of,
    missing_namespaces,
    plan_bare_pod,
    plan_object,
    restarted,
    scaled,
    terminating,
    with_images,
    with_paused,
    with_template,
)
from shoal.actors.api.nodes import updated_spec
from shoal.actors.api.prune import Candidate, ClaimTemplates, prune_namespaces, to_prune
from shoal.actors.api.sealing import Keyring, KeyringError, seal, unseal
from shoal.actors.api.services import (
    CLAIM_GRACE_SECONDS,
    DEFAULT_SERVICE_RANGE,
    assign_cluster_ip,
    assign_node_ports,
    claims_in_force,
    cluster_ips_in_force,
    owner,
)
from shoal.actors.base import Actor
from shoal.bus import kv, subjects
from shoal.bus.events import EventPublisher
from shoal.bus.kv import Bucket, Entry
from shoal.bus.rpc import serve
from shoal.errors import Conflict, InvalidManifest, NotFound, PermanentError
from shoal.kinds import Kind, registry
from shoal.label_selectors import Selector, parse_selector
from shoal.manifests.validate import ValidObject, validate_documents
from shoal.models.api import (
    Ack,
    ApplyReply,
    ApplyRequest,
    DeleteRequest,
    NodeSecretRequest,
    NodeUpdateRequest,
    ObjectRef,
    ObjectResult,
    PodReleaseRequest,
    RolloutRequest,
    ScaleRequest,
    SecretBundle,
    SecretReadRequest,
    VersionReply,
    VersionRequest,
)
from shoal.models.batch import CronJob, Job
from shoal.models.core import SYSTEM_NAMESPACES, Namespace, NamespaceMeta, Secret
from shoal.models.daemonset import DaemonSet, DaemonSetSpec
from shoal.models.node import NodeSpec
from shoal.models.pod import BarePod, Pod
from shoal.models.service import NodePortClaim, Service
from shoal.models.statefulset import (
    StatefulSet,
    StatefulSetSpec,
    with_claim_stand_ins,
    without_claim_stand_ins,
)
from shoal.models.workloads import Deployment, DeploymentRevision, DeploymentSpec, PodTemplate
from shoal.policy.admission import Level, namespace_level, object_violations, template_violations
from shoal.retry import retrying

log = logging.getLogger(__name__)

_EVENT_REASON = {"created": "Created", "configured": "Updated"}


@dataclass(frozen=True)
class AdmissionLimits:
    """What one request may ask of the cluster; beyond it, one clear error and nothing stored."""

    max_replicas: int = 100_000
    """Replicas of one workload (Kubernetes allows any int32; a small cluster wants less)."""
    max_objects: int = 1_000
    """Objects in one apply."""

    def check_documents(self, count: int) -> None:
        if count > self.max_objects:
            raise InvalidManifest(
                [f"the apply holds {count} documents; this cluster takes at most {self.max_objects} at once"
                 " (shoal api --max-objects)"]
            )  # fmt: skip

    def check_replicas(self, replicas: int | None, where: str) -> None:
        if replicas is not None and replicas > self.max_replicas:
            raise InvalidManifest(
                [f"{where}: {replicas} is above this cluster's limit of {self.max_replicas} replicas"
                 " (shoal api --max-replicas)"]
            )  # fmt: skip

    def check_objects(self, objects: list[ValidObject]) -> None:
        problems = []
        for obj in objects:
            counts: list[tuple[int | None, str]] = []
            if isinstance(obj.model, Deployment | StatefulSet):
                counts.append((obj.model.spec.replicas, "spec.replicas"))
            elif isinstance(obj.model, Job):
                counts.append((obj.model.spec.parallelism, "spec.parallelism"))
            elif isinstance(obj.model, CronJob):
                counts.append(
                    (obj.model.spec.job_template.spec.parallelism, "spec.jobTemplate.spec.parallelism")
                )
            for count, path in counts:
                try:
                    self.check_replicas(count, f"{obj.where}: {path}")
                except InvalidManifest as err:
                    problems += err.problems
        if problems:
            raise InvalidManifest(problems)


def asked_by_its_node(subject: str, request: NodeSecretRequest | PodReleaseRequest) -> None:
    """A node asks on its own subject (``...node-secrets.<node>``, ``...node-release.<node>``),
    which the NATS server lets only that node's identity publish to; a request naming another
    node is refused."""
    if subject.rsplit(".", 1)[-1] != request.node:
        raise PermanentError(f"a request on {subject} speaks for node {request.node}")


def release_refusal(pod: Pod, request: PodReleaseRequest) -> str:
    """Why a node may not have this pod's record deleted ("" if it may): the pod must be bound
    to it and marked for deletion, which only the API and the scheduler do."""
    if pod.node_name != request.node:
        return (
            f"pod {request.namespace}/{request.pod} is bound to {pod.node_name or 'no node'},"
            f" not to {request.node}: that node cannot release it"
        )
    if not pod.terminating:
        return f"pod {request.namespace}/{request.pod} is not marked for deletion: its node cannot release it"
    return ""


def _is_address(key: str) -> bool:
    try:
        ipaddress.IPv4Address(key)
    except ValueError:
        return False
    return True


class ApiActor(Actor):
    role = "api"

    def __init__(
        self,
        nc: Client,
        keyring: Keyring,
        *,
        replicas: int = 0,
        limits: AdmissionLimits | None = None,
        service_range: str = DEFAULT_SERVICE_RANGE,
    ) -> None:
        super().__init__(nc)
        self.keyring = keyring
        self.service_range = service_range
        self.replicas = replicas
        self.limits = limits or AdmissionLimits()
        self.events = EventPublisher(nc, "api")
        self._subscriptions: list[Subscription] = []
        self.deployments: Bucket[Deployment]

    async def start(self) -> None:
        self.js_replicas = self.replicas
        await self.ensure_state()
        opened: dict[str, Bucket[Any]] = {}
        self.buckets: dict[str, Bucket[Any]] = {}
        for info in registry().kinds:
            if info.handling not in ("acted", "stored"):
                continue
            definition = bucket_of(info)
            if definition.name not in opened:
                opened[definition.name] = await Bucket.open(self.js, definition)
            self.buckets[info.kind] = opened[definition.name]
        self.deployments = self.buckets["Deployment"]
        self.pods = self.buckets["Pod"]
        self.secrets = self.buckets["Secret"]
        self.revisions = await Bucket.open(self.js, kv.REVISIONS)
        self.node_ports = await Bucket.open(self.js, kv.NODE_PORTS)
        self.cluster_ips = await Bucket.open(self.js, kv.CLUSTER_IPS)
        self.nodes = await Bucket.open(self.js, kv.NODES)
        self.node_specs = await Bucket.open(self.js, kv.NODE_SPECS)
        await self._reseal_secrets()
        await self._record_system_namespaces()
        for subject, model, handler in (
            (subjects.API_APPLY, ApplyRequest, self.apply),
            (subjects.API_DELETE, DeleteRequest, self.delete),
            (subjects.API_SCALE, ScaleRequest, self.scale),
            (subjects.API_NODE, NodeUpdateRequest, self.update_node),
            (subjects.API_ROLLOUT, RolloutRequest, self.rollout),
            (subjects.API_SECRET_READ, SecretReadRequest, self.read_secret),
            (subjects.API_VERSION, VersionRequest, self.version),
        ):
            self._subscriptions.append(
                await serve(self.nc, subject, model, handler, queue=subjects.API_QUEUE, owner="the API actor")
            )
        # Nodes' requests are independent of each other: a node stopping 1,000 pods at once
        # is answered many at a time.
        for subject, model, handler in (
            (subjects.NODE_SECRETS_ALL, NodeSecretRequest, self.node_secrets),
            (subjects.NODE_RELEASE_ALL, PodReleaseRequest, self.release_pod),
        ):
            self._subscriptions.append(
                await serve(
                    self.nc,
                    subject,
                    model,
                    handler,
                    queue=subjects.API_QUEUE,
                    owner="the API actor",
                    check=asked_by_its_node,
                    at_once=64,
                )
            )
        await super().start()

    async def _record_system_namespaces(self) -> None:
        """Give the system namespaces records, once: ``get namespaces`` lists them, and the uid of
        kube-system's is the cluster's id, which nodes label their containers with. Several API
        actors may start at once: the first create wins and the others keep it."""
        bucket = self.buckets["Namespace"]
        for name in SYSTEM_NAMESPACES:
            key = keys.object_key("", name)
            # Retried: on a NATS cluster a new bucket's stream may still be electing its leader.
            async for attempt in retrying(deadline=60, cap=2.0):
                with attempt:
                    if await bucket.get(key) is None:
                        record = Namespace(
                            metadata=NamespaceMeta(
                                name=name, uid=uuid.uuid4().hex, generation=1, creation_timestamp=time.time()
                            )
                        )
                        with contextlib.suppress(Conflict):
                            await bucket.create(key, record)

    async def on_stop(self) -> None:
        for subscription in self._subscriptions:
            try:
                await subscription.unsubscribe()
            except Exception as err:
                log.debug("unsubscribe: %s", err)

    # -- apply ----------------------------------------------------------------------------------

    async def apply(self, request: ApplyRequest) -> ApplyReply:
        self.limits.check_documents(len(request.documents))
        prune = None
        if request.prune is not None:
            prune = parse_selector(request.prune)
            if not prune:
                need = "apply --prune needs a label selector (-l KEY=VALUE): the set the files are all of"
                raise InvalidManifest([need])
        objects, warnings = validate_documents(request.documents)
        try:
            self.limits.check_objects(objects)
            # Conflicts mean someone wrote in between: re-read and re-plan, a few times.
            async for attempt in retrying(deadline=10):
                with attempt:
                    await self._check_namespaces(objects)
                    await self._check_pod_security(objects)
                    plans = [(obj, await self._plan(obj)) for obj in objects]
                    if not request.dry_run:
                        await self._write(plans)
        except InvalidManifest as err:
            raise InvalidManifest(err.problems, warnings=warnings + err.warnings) from None
        for obj, plan in plans:
            reason = _EVENT_REASON.get(plan.action)
            if reason and not request.dry_run:
                await self._applied_event(obj, plan, reason)
        results = [
            ObjectResult(kind=obj.kind, namespace=obj.namespace, name=obj.name, action=plan.action)
            for obj, plan in plans
        ]
        if prune is not None:
            results += await self._prune(objects, prune, request.dry_run)
        return ApplyReply(results=results, warnings=warnings)

    async def _prune(
        self, objects: list[ValidObject], selector: Selector, dry_run: bool
    ) -> list[ObjectResult]:
        """Delete the objects of the selected set that the apply did not name (see prune.py)."""
        applied = {(o.kind, o.namespace if o.info.namespaced else "", o.name) for o in objects}
        namespaces = prune_namespaces((o.kind, o.info.namespaced, o.namespace) for o in objects)
        stored: list[Candidate] = []
        makers: list[ClaimTemplates] = []
        for info in registry().kinds:
            if info.kind not in self.buckets or info.handling not in ("acted", "stored"):
                continue
            for namespace in sorted(namespaces) if info.namespaced else [""]:
                for entry in (await self.buckets[info.kind].items(key_filter(info, namespace))).values():
                    value = entry.value
                    meta = value.metadata
                    stored.append(
                        Candidate(
                            info.kind,
                            namespace,
                            meta.name,
                            meta.labels,
                            meta.annotations,
                            owned=getattr(meta, "owner", None) is not None,
                        )
                    )
                    if isinstance(value, StatefulSet):
                        templates = tuple(t.metadata.name for t in value.spec.volume_claim_templates)
                        makers.append(ClaimTemplates(namespace, meta.name, templates))
        results = []
        for obj in to_prune(stored, applied, selector, namespaces, makers):
            info = self._kind(obj.kind)
            if not dry_run:
                if obj.kind == "Namespace":
                    await self._empty_namespace(obj.name)
                if await self._delete_one(info, obj.namespace, obj.name) != "deleted":
                    continue  # gone meanwhile
            results.append(
                ObjectResult(kind=obj.kind, namespace=obj.namespace, name=obj.name, action="pruned")
            )
        return results

    async def _check_namespaces(self, objects: list[ValidObject]) -> None:
        wanted = [(o.where, o.namespace) for o in objects if o.info.namespaced]
        if not wanted:
            return
        existing = {keys.cluster_name(key) for key in await self.buckets["Namespace"].keys()}
        created = {o.name for o in objects if o.kind == "Namespace"}
        problems = missing_namespaces(wanted, existing, created)
        if problems:
            raise InvalidManifest(problems)

    async def _level(self, namespace: str, applied: dict[str, Namespace]) -> Level:
        """A namespace's pod security level: as this apply writes it, else as stored."""
        record = applied.get(namespace)
        if record is None:
            entry = await self.buckets["Namespace"].get(keys.object_key("", namespace))
            record = entry.value if entry is not None else None
        return namespace_level(record.metadata.labels if record is not None else None)

    async def _check_pod_security(self, objects: list[ValidObject]) -> None:
        """Every pod an object of the apply makes must keep to its namespace's level: one line
        per field that does not, and nothing of the apply stored."""
        applied = {o.name: o.model for o in objects if isinstance(o.model, Namespace)}
        levels: dict[str, Level] = {}
        problems = []
        for obj in objects:
            if not obj.info.namespaced or obj.info.handling != "acted":
                continue
            if obj.namespace not in levels:
                levels[obj.namespace] = await self._level(obj.namespace, applied)
            level = levels[obj.namespace]
            problems += [
                f"{obj.where}: {v.in_namespace(obj.namespace)}" for v in object_violations(obj.model, level)
            ]
        if problems:
            raise InvalidManifest(problems)

    async def _admit_template(self, namespace: str, template: PodTemplate, what: str) -> None:
        """A template a rollout brings back must keep to the namespace's level as it is now."""
        level = await self._level(namespace, {})
        problems = [f"{what}: {v.in_namespace(namespace)}" for v in template_violations(template, level)]
        if problems:
            raise InvalidManifest(problems)

    async def _applied_event(self, obj: ValidObject, plan: PlannedWrite, reason: str) -> None:
        meta = plan.value.metadata
        fields: dict[str, int] = {"generation": meta.generation}
        detail = f"generation {meta.generation}"
        if isinstance(plan.value, Deployment):
            fields["replicas"] = plan.value.spec.desired_replicas
            detail += f", {plan.value.spec.desired_replicas} replicas"
        await self.events.emit(
            obj.kind,
            obj.namespace,
            obj.name,
            reason,
            f"{obj.kind.lower()} {obj.name} {plan.action} ({detail})",
            **fields,
        )

    async def _current(self, info: Kind, key: str) -> Entry[Any] | None:
        current = await self.buckets[info.kind].get(key)
        if current is not None and info.kind == "Secret":
            # Compared in the clear: sealing the same data twice gives different bytes.
            return Entry(current.key, unseal(current.value, self.keyring), current.revision)
        return current

    async def _plan(self, obj: ValidObject) -> PlannedWrite:
        key = key_of(obj.info, obj.namespace, obj.name)
        current = await self._current(obj.info, key)
        desired = obj.model
        now, uid = time.time(), uuid.uuid4().hex
        if isinstance(desired, BarePod):
            priority = None
            if current is None:
                classes = {
                    e.value.metadata.name: e.value
                    for e in (await self.buckets["PriorityClass"].items()).values()
                }
                try:
                    priority = class_priority(desired.spec.priority_class_name, classes)
                except InvalidManifest as err:
                    raise InvalidManifest([f"{obj.where}: {p}" for p in err.problems]) from None
            try:
                return plan_bare_pod(desired, current, now=now, new_uid=uid, priority=priority)
            except InvalidManifest as err:
                raise InvalidManifest([f"{obj.where}: {p}" for p in err.problems]) from None
        if isinstance(desired, Service):
            me = owner(obj.namespace, obj.name)
            services = {key: entry.value for key, entry in (await self.buckets["Service"].items()).items()}
            taken = {
                port.node_port: owner(service.metadata.namespace, service.metadata.name)
                for service in services.values()
                for port in service.spec.ports
                if port.node_port
            }
            taken.update(claims_in_force(await self._claims(), services, time.time()))
            taken = {port: who for port, who in taken.items() if who != me}
            desired = assign_node_ports(desired, current.value if current else None, taken)
            addresses = cluster_ips_in_force(await self._cluster_ip_claims(), services, time.time())
            addresses.update(
                {
                    service.spec.cluster_ip: owner(service.metadata.namespace, service.metadata.name)
                    for service in services.values()
                    if service.spec.cluster_ip and service.spec.cluster_ip != "None"
                }
            )
            addresses = {address: who for address, who in addresses.items() if who != me}
            desired = assign_cluster_ip(
                desired, current.value if current else None, addresses, self.service_range
            )
        problem = immutable_problem(desired, current.value if current else None)  # type: ignore[arg-type]
        if problem:
            raise InvalidManifest([f"{obj.where}: {problem}"])
        return plan_object(desired, current, key=key, now=now, new_uid=uid)  # type: ignore[arg-type]

    async def _write(self, plans: list[tuple[ValidObject, PlannedWrite]]) -> None:
        # Namespaces first: a node that sees a pod of a namespace created by the same apply
        # finds the namespace's pod security level already stored.
        for obj, plan in sorted(plans, key=lambda written: written[0].kind != "Namespace"):
            bucket = self.buckets[obj.kind]
            if plan.action == "unchanged":
                continue
            if isinstance(plan.value, Service):
                await self._claim_ports(plan.value)
            value = seal(plan.value, self.keyring) if isinstance(plan.value, Secret) else plan.value
            if plan.revision is None:
                await bucket.create(plan.key, value)
            else:
                await bucket.update(plan.key, value, plan.revision)
            if isinstance(plan.value, Service):
                meta = plan.value.metadata
                await self._release_ports(meta.namespace, meta.name, plan.value)
            if plan.new_template:
                cause = plan.value.metadata.annotations.get(CHANGE_CAUSE, "")
                await self._record_revision(plan.value, cause)
            if isinstance(plan.value, DaemonSet | StatefulSet):
                cause = plan.value.metadata.annotations.get(CHANGE_CAUSE, "")
                await self._record_workload_revision(plan.value, cause)

    # -- secrets --------------------------------------------------------------------------------

    async def _reseal_secrets(self) -> None:
        """Every Secret sealed under an older key is sealed again under the active one (rotation)."""
        resealed = 0
        for key, entry in (await self.secrets.items()).items():
            if entry.value.key_id == self.keyring.active:
                continue
            try:
                secret = unseal(entry.value, self.keyring)
                await self.secrets.update(key, seal(secret, self.keyring), entry.revision)
                resealed += 1
            except Conflict:
                continue  # another API replica resealed it
            except KeyringError as err:
                log.error("%s", err)
        if resealed:
            log.info("resealed %d secrets under key %s", resealed, self.keyring.active)

    async def _unsealed(self, namespace: str, name: str) -> Secret | None:
        entry = await self.secrets.get(keys.object_key(namespace, name))
        return unseal(entry.value, self.keyring) if entry is not None else None

    async def version(self, request: VersionRequest) -> VersionReply:
        server = self.nc.connected_server_version
        return VersionReply(
            version=shoal.__version__, nats_server=f"{server.major}.{server.minor}.{server.patch}"
        )

    async def read_secret(self, request: SecretReadRequest) -> Secret:
        """A Secret's values, for ``get secret -o yaml`` (an operator's read)."""
        secret = await self._unsealed(request.namespace, request.name)
        if secret is None:
            raise NotFound(f'secrets "{request.name}" not found in namespace {request.namespace}')
        return secret

    async def node_secrets(self, request: NodeSecretRequest) -> SecretBundle:
        """The Secrets one pod uses, for the node it is bound to, and for no one else."""
        entry = await self.pods.get(keys.object_key(request.namespace, request.pod))
        if entry is None or entry.value.metadata.uid != request.uid:
            raise NotFound(f"pod {request.namespace}/{request.pod} ({request.uid}) not found")
        pod: Pod = entry.value
        if pod.node_name != request.node:
            raise PermanentError(
                f"pod {request.namespace}/{request.pod} is bound to {pod.node_name or 'no node'},"
                f" not to {request.node}: its secrets are not for that node"
            )
        found: dict[str, Secret] = {}
        for name in sorted(pod.spec.referenced("secret")):
            secret = await self._unsealed(request.namespace, name)
            if secret is not None:
                found[name] = secret
        return SecretBundle(secrets=found)

    async def release_pod(self, request: PodReleaseRequest) -> Ack:
        """Delete the record of a pod its node has stopped: only a pod bound to that node, marked
        for deletion, at the revision the node stopped (Conflict if it changed meanwhile)."""
        key = keys.object_key(request.namespace, request.pod)
        entry = await self.pods.get(key)
        if entry is None or entry.value.metadata.uid != request.uid:
            return Ack()  # gone already (another API replica answered an earlier try)
        verdict = release_refusal(entry.value, request)
        if verdict:
            raise PermanentError(verdict)
        if entry.revision != request.revision:
            raise Conflict(f"pod {request.namespace}/{request.pod} changed since its node stopped it")
        await self.pods.delete(key, request.revision)
        return Ack()

    # -- node port claims -----------------------------------------------------------------------

    async def _claims(self) -> dict[int, NodePortClaim]:
        return {
            int(key): entry.value for key, entry in (await self.node_ports.items()).items() if key.isdigit()
        }

    async def _cluster_ip_claims(self) -> dict[str, NodePortClaim]:
        return {
            key: entry.value for key, entry in (await self.cluster_ips.items()).items() if _is_address(key)
        }

    async def _claim_ports(self, service: Service) -> None:
        """Claim each node port and the cluster IP the service is about to use; Conflict if
        another got there first (the apply then plans again and picks others)."""
        wanted = [(self.node_ports, str(p.node_port), "node port") for p in service.spec.ports if p.node_port]
        if service.spec.cluster_ip and service.spec.cluster_ip != "None":
            wanted.append((self.cluster_ips, service.spec.cluster_ip, "cluster IP"))
        meta = service.metadata
        me = owner(meta.namespace, meta.name)
        claim = NodePortClaim(namespace=meta.namespace, name=meta.name, claimed_at=time.time())
        for bucket, key, what in wanted:
            current = await bucket.get(key)
            if current is None:
                await bucket.create(key, claim)
            elif owner(current.value.namespace, current.value.name) != me:
                if time.time() - current.value.claimed_at < CLAIM_GRACE_SECONDS:
                    raise Conflict(
                        f"{what} {key} was just claimed by {current.value.namespace}/{current.value.name}"
                    )
                # A lapsed claim the plan found unused: take it over.
                await bucket.update(key, claim, current.revision)

    async def _release_ports(self, namespace: str, name: str, service: Service | None = None) -> None:
        """Drop the service's claims on node ports and cluster IPs it no longer uses (all of
        them when ``service`` is None: it was deleted)."""
        me = owner(namespace, name)
        keep: set[str] = set()
        if service is not None:
            keep = {str(p.node_port) for p in service.spec.ports if p.node_port}
            keep.add(service.spec.cluster_ip or "")
        for bucket in (self.node_ports, self.cluster_ips):
            for key, entry in (await bucket.items()).items():
                if owner(entry.value.namespace, entry.value.name) != me or key in keep:
                    continue
                with contextlib.suppress(Conflict):
                    await bucket.delete(key, entry.revision)

    # -- revisions and rollouts -----------------------------------------------------------------

    async def _revisions(self, namespace: str, name: str) -> dict[int, DeploymentRevision]:
        entries = await self.revisions.items(keys.revisions_of(namespace, name))
        return {entry.value.revision: entry.value for entry in entries.values()}

    async def _record_revision(self, deployment: Deployment, cause: str) -> None:
        meta = deployment.metadata
        await self._keep_revision(meta.namespace, meta.name, deployment.revision, deployment.spec, cause)

    async def _record_workload_revision(self, workload: DaemonSet | StatefulSet, cause: str) -> None:
        """A DaemonSet's or StatefulSet's template, as a new revision when it is not the latest
        (Kubernetes' ControllerRevisions), so ``rollout history`` and ``undo`` work for them too."""
        meta = workload.metadata
        owner = keys.revision_owner(workload.kind, meta.name)
        revisions = await self._revisions(meta.namespace, owner)
        latest = max(revisions, default=0)
        if latest and revisions[latest].template_hash == workload.spec.template.hash():
            return
        await self._keep_revision(meta.namespace, owner, latest + 1, workload.spec, cause, meta.name)

    async def _keep_revision(
        self,
        namespace: str,
        owner: str,
        number: int,
        spec: DeploymentSpec | DaemonSetSpec | StatefulSetSpec,
        cause: str,
        name: str = "",
    ) -> None:
        """Keep a new template as revision ``number`` of ``owner`` (a deployment's name, or a
        workload's revision token); drop older copies of it and the oldest beyond the limit."""
        template_hash = spec.template.hash()
        record = DeploymentRevision(
            namespace=namespace,
            name=name or owner,
            revision=number,
            template_hash=template_hash,
            template=with_claim_stand_ins(spec),
            created=time.time(),
            change_cause=cause,
        )
        await self.revisions.put(keys.revision_key(namespace, owner, number), record)
        revisions = await self._revisions(namespace, owner)
        # An older copy of the same template is this revision now (Kubernetes renumbers it too).
        older = sorted(n for n, r in revisions.items() if n < number and r.template_hash != template_hash)
        limit = spec.revision_history_limit
        keep = set(older[-limit:]) if limit else set()
        for old in revisions:
            if old < number and old not in keep:
                await self.revisions.delete(keys.revision_key(namespace, owner, old))

    async def rollout(self, request: RolloutRequest) -> ApplyReply:
        if request.kind != "Deployment":
            return await self._rollout_workload(request)
        key = keys.object_key(request.namespace, request.name)
        action: str = "unchanged"
        note = ""
        async for attempt in retrying(deadline=10):
            with attempt:
                current = await self.deployments.get(key)
                if current is None:
                    raise NotFound(f'deployment "{request.name}" not found in namespace {request.namespace}')
                deployment = current.value
                updated: Deployment | None = None
                match request.action:
                    case "pause" | "resume":
                        paused = request.action == "pause"
                        if deployment.spec.paused != paused:
                            updated, action = with_paused(deployment, paused), f"{request.action}d"
                    case "restart":
                        updated = with_template(deployment, restarted(deployment.spec.template, time.time()))
                        action, note = "restarted", "restarted"
                    case "set-image":
                        template = with_images(deployment, request.images)
                        if template.hash() != deployment.spec.template.hash():
                            updated = with_template(deployment, template)
                            action = "image updated"
                            note = "image " + ", ".join(f"{c}={i}" for c, i in sorted(request.images.items()))
                    case "undo":
                        revisions = await self._revisions(request.namespace, request.name)
                        earlier = [r for r in revisions if r < deployment.revision]
                        target = request.to_revision or (max(earlier) if earlier else None)
                        if target is None or target not in revisions:
                            have = ", ".join(map(str, sorted(revisions))) or "none"
                            wanted = f"revision {target}" if target else "an earlier revision"
                            raise NotFound(f"deployment {request.name} has no {wanted} (revisions: {have})")
                        if revisions[target].template_hash == deployment.spec.template.hash():
                            # kubectl: "skipped rollback (current template already matches revision N)"
                            note = f"current template already matches revision {target}"
                        else:
                            await self._admit_template(
                                request.namespace, revisions[target].template, f"deployment {request.name}"
                            )
                            updated = with_template(deployment, revisions[target].template)
                            action, note = "rolled back", f"rolled back to revision {target}"
                if updated is not None:
                    await self.deployments.update(key, updated, current.revision)
                    if updated.revision != deployment.revision:
                        await self._record_revision(updated, note)
        if action != "unchanged":
            reason = {
                "rolled back": "RolledBack",
                "paused": "Paused",
                "resumed": "Resumed",
                "restarted": "Restarted",
                "image updated": "ImageUpdated",
            }[action]
            await self.events.emit(
                "Deployment",
                request.namespace,
                request.name,
                reason,
                f"deployment {request.name}: {note or action}",
            )
        return ApplyReply(
            results=[
                ObjectResult(kind="Deployment", namespace=request.namespace, name=request.name, action=action)
            ]  # type: ignore[arg-type]
        )

    # -- delete ---------------------------------------------------------------------------------

    async def delete(self, request: DeleteRequest) -> ApplyReply:
        refs = [(ref, self._kind(ref.kind)) for ref in request.refs]
        warnings: list[str] = []
        if request.documents:
            objects, warnings = validate_documents(request.documents)
            refs += [(ObjectRef(kind=o.kind, namespace=o.namespace, name=o.name), o.info) for o in objects]
        results = []
        for ref, info in refs:
            namespace = ref.namespace if info.namespaced else ""
            if info.kind == "Namespace" and ref.name in SYSTEM_NAMESPACES:
                raise InvalidManifest(
                    [f'namespace "{ref.name}" cannot be deleted: it is one of the system\'s']
                )
            if info.kind == "Namespace":
                await self._empty_namespace(ref.name)
            action = await self._delete_one(info, namespace, ref.name)
            results.append(ObjectResult(kind=info.kind, namespace=namespace, name=ref.name, action=action))
        return ApplyReply(results=results, warnings=warnings)

    def _kind(self, name: str) -> Kind:
        info = registry().by_kind(name) or registry().resolve(name)
        if info is None or info.kind not in self.buckets:
            known = ", ".join(registry().names())
            raise InvalidManifest([f"kind: cannot delete {name!r} objects (Shoal deletes {known})"])
        return info

    async def _delete_one(self, info: Kind, namespace: str, name: str) -> Action:
        bucket = self.buckets[info.kind]
        key = key_of(info, namespace, name)
        action: Action = "not found"
        async for attempt in retrying(deadline=10):
            with attempt:
                current = await bucket.get(key)
                if current is None:
                    continue
                if info.kind == "Pod":
                    # The node stops it first (grace period, preStop), then removes the record.
                    pod: Pod = current.value
                    if not pod.terminating:
                        await bucket.update(key, terminating(pod, time.time()), current.revision)
                else:
                    await bucket.delete(key, current.revision)
                action = "deleted"
        if action == "deleted" and info.kind == "Service":
            await self._release_ports(namespace, name)
        if action == "deleted" and info.kind in ("Deployment", "DaemonSet", "StatefulSet"):
            # Its revisions go with it: a new one of that name starts its own history.
            owner = keys.revision_owner(info.kind, name)
            for revision_key in await self.revisions.items(keys.revisions_of(namespace, owner)):
                with contextlib.suppress(Conflict):
                    await self.revisions.delete(revision_key)
        if action == "deleted":
            await self.events.emit(info.kind, namespace, name, "Deleted", f"{info.singular} {name} deleted")
        return action

    async def _empty_namespace(self, namespace: str) -> None:
        """Deleting a namespace deletes what is in it: workloads first, so their pods go too."""
        workloads = ("Deployment", "HorizontalPodAutoscaler", "CronJob", "Job", "DaemonSet", "StatefulSet")
        order = sorted(
            (info for info in registry().kinds if info.namespaced and info.kind in self.buckets),
            key=lambda info: info.kind not in workloads,
        )
        for info in order:
            bucket = self.buckets[info.kind]
            for key in await bucket.keys(key_filter(info, namespace)):
                name = keys.split_stored_key(key)[2] if info.bucket is None else keys.split_key(key)[1]
                await self._delete_one(info, namespace, name)

    async def _rollout_workload(self, request: RolloutRequest) -> ApplyReply:
        """restart, set-image and undo of a DaemonSet or StatefulSet (which cannot be paused)."""
        kind = registry().by_kind(request.kind)
        assert kind is not None
        if request.action in ("pause", "resume"):
            raise InvalidManifest([f"{kind.plural} cannot be paused or resumed (only deployments can)"])
        bucket = self.buckets[request.kind]
        key = keys.object_key(request.namespace, request.name)
        owner = keys.revision_owner(request.kind, request.name)
        action, note = "unchanged", ""
        async for attempt in retrying(deadline=10):
            with attempt:
                current = await bucket.get(key)
                if current is None:
                    where = f"namespace {request.namespace}"
                    raise NotFound(f'{kind.singular} "{request.name}" not found in {where}')
                workload = current.value
                template = None
                match request.action:
                    case "restart":
                        template = restarted(workload.spec.template, time.time())
                        action, note = "restarted", "restarted"
                    case "set-image":
                        changed = with_images(workload, request.images)
                        if changed.hash() != workload.spec.template.hash():
                            template, action = changed, "image updated"
                            note = "image " + ", ".join(f"{c}={i}" for c, i in sorted(request.images.items()))
                    case "undo":
                        revisions = await self._revisions(request.namespace, owner)
                        now_hash = workload.spec.template.hash()
                        current_number = max(
                            (n for n, r in revisions.items() if r.template_hash == now_hash), default=0
                        )
                        earlier = [n for n in revisions if n < current_number]
                        target = request.to_revision or (max(earlier) if earlier else None)
                        if target is None or target not in revisions:
                            have = ", ".join(map(str, sorted(revisions))) or "none"
                            wanted = f"revision {target}" if target else "an earlier revision"
                            raise NotFound(
                                f"{kind.singular} {request.name} has no {wanted} (revisions: {have})"
                            )
                        if revisions[target].template_hash == now_hash:
                            note = f"current template already matches revision {target}"
                        else:
                            template = without_claim_stand_ins(revisions[target].template, workload.spec)
                            await self._admit_template(
                                request.namespace, template, f"{kind.singular} {request.name}"
                            )
                            action = "rolled back"
                            note = f"rolled back to revision {target}"
                if template is not None:
                    spec = workload.spec.model_copy(update={"template": template})
                    generation = workload.metadata.generation + 1
                    metadata = workload.metadata.model_copy(update={"generation": generation})
                    updated = workload.model_copy(update={"spec": spec, "metadata": metadata})
                    await bucket.update(key, updated, current.revision)
                    await self._record_workload_revision(updated, note)
        if action != "unchanged":
            reason = {"rolled back": "RolledBack", "restarted": "Restarted", "image updated": "ImageUpdated"}
            await self.events.emit(
                request.kind,
                request.namespace,
                request.name,
                reason[action],
                f"{kind.singular} {request.name}: {note or action}",
            )
        return ApplyReply(
            results=[
                ObjectResult(kind=request.kind, namespace=request.namespace, name=request.name, action=action)
            ]
        )

    # -- scale ----------------------------------------------------------------------------------

    async def scale(self, request: ScaleRequest) -> ApplyReply:
        self.limits.check_replicas(request.replicas, "replicas")
        key = keys.object_key(request.namespace, request.name)
        kind = registry().by_kind(request.kind)
        assert kind is not None
        bucket = self.buckets[request.kind]
        action = "unchanged"
        async for attempt in retrying(deadline=10):
            with attempt:
                current = await bucket.get(key)
                if current is None:
                    where = f"namespace {request.namespace}"
                    raise NotFound(f'{kind.singular} "{request.name}" not found in {where}')
                before = current.value.spec.desired_replicas
                if before != request.replicas:
                    await bucket.update(key, scaled(current.value, request.replicas), current.revision)
                    action = "scaled"
        if action == "scaled":
            await self.events.emit(
                request.kind,
                request.namespace,
                request.name,
                "Scaled",
                f"{kind.singular} {request.name} scaled from {before} to {request.replicas} replicas",
                replicas=request.replicas,
                previous=before,
            )
        return ApplyReply(
            results=[
                ObjectResult(kind=request.kind, namespace=request.namespace, name=request.name, action=action)
            ]
        )

    # -- nodes ----------------------------------------------------------------------------------

    async def update_node(self, request: NodeUpdateRequest) -> NodeSpec:
        node = await self.nodes.get(request.name)
        if node is None:
            raise NotFound(f'node "{request.name}" not found')
        before = updated = NodeSpec(name=request.name)
        async for attempt in retrying(deadline=10):
            with attempt:
                current = await self.node_specs.get(request.name)
                before = current.value if current else NodeSpec(name=request.name)
                updated = updated_spec(before, node.value, request, time.time())
                if updated == before and current is not None:
                    return before
                if current is None:
                    await self.node_specs.create(request.name, updated)
                else:
                    await self.node_specs.update(request.name, updated, current.revision)
        for reason, changed in (
            (
                "Draining" if updated.draining else "Cordoned" if updated.unschedulable else "Uncordoned",
                (updated.draining, updated.unschedulable) != (before.draining, before.unschedulable),
            ),
            ("Labelled", updated.labels != before.labels),
            ("Tainted", updated.taints != before.taints),
        ):
            if changed:
                await self.events.emit(
                    "Node", "", request.name, reason, f"node {request.name}: {reason.lower()}"
                )
        return updated
