"""The API actor against a real nats-server: validation, all-or-nothing, CAS, garbage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import ormsgpack
import pytest
import yaml

import shoal as shoal_package
from shoal.actors.api.actor import AdmissionLimits, ApiActor
from shoal.actors.api.sealing import Keyring, load_keyring
from shoal.actors.api.services import CLAIM_GRACE_SECONDS, claims_in_force
from shoal.bus import kv, subjects
from shoal.bus.connection import connect_actor
from shoal.bus.kv import Bucket
from shoal.client import ShoalClient
from shoal.errors import Conflict, InvalidManifest, RemoteError
from shoal.models.api import ApplyReply, ObjectRef
from shoal.models.service import NodePortClaim, Service
from shoal.models.workloads import Deployment
from tests.harness import deployment, documents


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return load_keyring(tmp_path / "secret-keys.yaml")


@pytest.fixture
async def api(nats_url: str, keyring: Keyring) -> AsyncIterator[ApiActor]:
    actor = ApiActor(await connect_actor(nats_url, "test-api"), keyring)
    await actor.start()
    try:
        yield actor
    finally:
        await actor.stop()
        await actor.nc.close()


@pytest.fixture
async def shoal(nats_url: str, api: ApiActor) -> AsyncIterator[ShoalClient]:
    client = await ShoalClient.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


async def test_apply_creates_then_is_idempotent_then_scales(shoal: ShoalClient) -> None:
    reply = await shoal.apply(documents(deployment("web", replicas=2)))
    assert [(r.name, r.action) for r in reply.results] == [("web", "created")]
    first = (await shoal.deployments())["default.web"]
    assert first.metadata.uid and first.metadata.generation == 1 and first.spec.replicas == 2

    again = await shoal.apply(documents(deployment("web", replicas=2)))
    assert [r.action for r in again.results] == ["unchanged"]
    assert (await shoal.deployments())["default.web"] == first

    scaled = await shoal.apply(documents(deployment("web", replicas=5)))
    assert [r.action for r in scaled.results] == ["configured"]
    stored = (await shoal.deployments())["default.web"]
    assert (stored.spec.replicas, stored.metadata.generation, stored.metadata.uid) == (
        5,
        2,
        first.metadata.uid,
    )


async def test_a_manifest_without_replicas_keeps_the_current_count(shoal: ShoalClient) -> None:
    await shoal.apply(documents(deployment("web", replicas=4)))
    await shoal.scale("default", "web", 7)
    without = deployment("web", replicas=4).replace("  replicas: 4\n", "")
    assert "replicas" not in without
    await shoal.apply(documents(without))
    assert (await shoal.deployments())["default.web"].spec.replicas == 7


@pytest.mark.parametrize(
    "broken",
    [
        deployment("web").replace("image: localhost/busybox:latest", "imagePullPolicy: Never"),
        deployment("web").replace("replicas: 1", "replicas: -1"),
        deployment("web").replace("cpu: 50m", "cpu: abc"),
        "apiVersion: v1\nkind: Gadget\nmetadata: {name: g}\n",
        "just a string",
    ],
    ids=["missing image", "negative replicas", "bad cpu", "unknown kind", "not a mapping"],
)
async def test_invalid_manifests_store_nothing_and_name_the_problem(shoal: ShoalClient, broken: str) -> None:
    text = deployment("good") + "---\n" + broken
    with pytest.raises(RemoteError) as caught:
        await shoal.apply(documents(text, source="app.yaml"))
    assert caught.value.code == "invalid-manifest"
    assert "app.yaml, document 2" in caught.value.message
    assert await shoal.deployments() == {}
    # and the API still serves
    ok = await shoal.apply(documents(deployment("good")))
    assert [r.action for r in ok.results] == ["created"]


async def test_delete_and_scale(shoal: ShoalClient) -> None:
    await shoal.apply(documents(deployment("web")))
    reply = await shoal.scale("default", "web", 3)
    assert reply.results[0].action == "scaled"
    with pytest.raises(RemoteError, match="not found"):
        await shoal.scale("default", "nope", 3)
    deleted = await shoal.delete(documents=documents(deployment("web")))
    assert [r.action for r in deleted.results] == ["deleted"]
    missing = await shoal.delete(documents=documents(deployment("web")))
    assert [r.action for r in missing.results] == ["not found"]
    assert await shoal.deployments() == {}


async def test_writes_are_revision_checked(api: ApiActor, shoal: ShoalClient) -> None:
    await shoal.apply(documents(deployment("web")))
    bucket = await Bucket.open(api.js, kv.DEPLOYMENTS)
    entry = await bucket.get("default.web")
    assert entry is not None
    await bucket.update("default.web", entry.value, entry.revision)
    with pytest.raises(Conflict):
        await bucket.update("default.web", entry.value, entry.revision)  # stale: someone wrote since
    with pytest.raises(Conflict):
        await bucket.create("default.web", entry.value)


async def test_garbage_on_every_request_subject_gets_an_error_and_kills_nothing(
    nats_url: str, shoal: ShoalClient
) -> None:
    nc = await nats.connect(nats_url)
    try:
        garbage = [
            b"",
            b"\x00\xff\xfe",
            b"{not json}",
            ormsgpack.packb([1, 2, 3]),
            ormsgpack.packb({"documents": 5}),
            ormsgpack.packb({"schema": 1, "documents": [{"source": "x", "index": 1, "body": {"kind": 7}}]}),
        ]
        for subject in subjects.API_SUBJECTS:
            for payload in garbage:
                msg = await nc.request(subject, payload, timeout=5)
                raw = ormsgpack.unpackb(msg.data)
                assert raw["error"]["code"] in ("bad-payload", "invalid-manifest"), (subject, payload, raw)
                assert "Traceback" not in raw["error"]["message"]
            await nc.publish(subject, b"\x93no reply wanted")  # no reply subject at all
    finally:
        await nc.close()
    reply = await shoal.apply(documents(deployment("still-alive")))
    assert isinstance(reply, ApplyReply) and reply.results[0].action == "created"


async def test_stored_values_are_language_neutral_messagepack(nats_url: str, shoal: ShoalClient) -> None:
    await shoal.apply(documents(deployment("web", replicas=2)))
    nc = await nats.connect(nats_url)
    try:
        entry = await (await nc.jetstream().key_value(subjects.BUCKET_DEPLOYMENTS)).get("default.web")
        raw = ormsgpack.unpackb(entry.value)
    finally:
        await nc.close()
    assert raw["schema"] == 1 and raw["kind"] == "Deployment"
    assert raw["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "50m",
        "memory": "16Mi",
    }
    assert Deployment.model_validate(raw).spec.replicas == 2


def service_manifest(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
        }
    )


async def test_services_applied_at_once_through_two_api_replicas_get_distinct_node_ports(
    nats_url: str, api: ApiActor, shoal: ShoalClient, keyring: Keyring
) -> None:
    second = ApiActor(await connect_actor(nats_url, "test-api-2"), keyring)
    await second.start()
    try:
        names = [f"svc{i}" for i in range(8)]
        # Both replicas answer the apply subject (a queue group): the applies race each other.
        await asyncio.gather(*(shoal.apply(documents(service_manifest(n))) for n in names))
        services = await shoal.services()
        ports = [services[f"default.{n}"].spec.ports[0].node_port for n in names]
        assert len(set(ports)) == len(names), ports
        claims = await (await Bucket.open(shoal.js, kv.NODE_PORTS)).items()
        assert {int(k) for k in claims} == set(ports)
        # Deleting a service frees its port for the next one.
        freed = ports[0]
        await shoal.delete(refs=[ObjectRef(kind="Service", namespace="default", name=names[0])])
        claims = await (await Bucket.open(shoal.js, kv.NODE_PORTS)).items()
        assert str(freed) not in claims
    finally:
        await second.stop()
        await second.nc.close()


def test_a_fresh_claim_holds_its_port_and_a_lapsed_unused_one_does_not() -> None:
    used = Service.model_validate(yaml.safe_load(service_manifest("a")))
    used = used.model_copy(
        update={
            "spec": used.spec.model_copy(
                update={"ports": [used.spec.ports[0].model_copy(update={"node_port": 30001})]}
            )
        }
    )
    claims = {
        30000: NodePortClaim(
            namespace="default", name="b", claimed_at=1000.0
        ),  # fresh, service not written yet
        30001: NodePortClaim(namespace="default", name="a", claimed_at=0.0),  # old, its service uses it
        30002: NodePortClaim(namespace="default", name="c", claimed_at=0.0),  # old and unused: lapsed
    }
    held = claims_in_force(claims, {"default.a": used}, now=1000.0 + CLAIM_GRACE_SECONDS / 2)
    assert held == {30000: "default/b", 30001: "default/a"}


async def test_requests_beyond_the_admission_limits_are_refused_whole(
    nats_url: str, keyring: Keyring
) -> None:
    actor = ApiActor(
        await connect_actor(nats_url, "limited-api"),
        keyring,
        limits=AdmissionLimits(max_replicas=50, max_objects=3),
    )
    await actor.start()
    try:
        async with await ShoalClient.connect(nats_url) as client:
            with pytest.raises(RemoteError, match=r"spec.replicas: 51 is above this cluster's limit of 50"):
                await client.apply(
                    documents(deployment("ok", replicas=1) + "---\n" + deployment("big", replicas=51))
                )
            with pytest.raises(RemoteError, match=r"at most 3 at once"):
                await client.apply(documents("---\n".join(deployment(f"d{i}") for i in range(4))))
            assert await client.deployments() == {}  # nothing of either stored
            await client.apply(documents(deployment("ok", replicas=50)))
            with pytest.raises(
                InvalidManifest, match=r"replicas: Input should be less than or equal to 2147483647"
            ):
                await client.scale("default", "ok", 2**31)
            with pytest.raises(RemoteError, match=r"replicas: 51 is above"):
                await client.scale("default", "ok", 51)
            assert (await client.deployments())["default.ok"].spec.replicas == 50
    finally:
        await actor.stop()
        await actor.nc.close()


def workload(kind: str, image: str = "busybox:1", **spec: object) -> str:
    body: dict[str, object] = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "w"},
        "spec": {
            "selector": {"matchLabels": {"app": "w"}},
            "template": {
                "metadata": {"labels": {"app": "w"}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
            **spec,
        },
    }
    return yaml.safe_dump(body)


async def test_a_statefulset_mounting_its_claim_templates_keeps_revisions_too(shoal: ShoalClient) -> None:
    def claimed(image: str) -> str:
        body = yaml.safe_load(workload("StatefulSet", image))
        body["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
            {"name": "data", "mountPath": "/d"}
        ]
        body["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}}]
        return yaml.safe_dump(body)

    await shoal.apply(documents(claimed("busybox:1")))
    await shoal.apply(documents(claimed("busybox:2")))
    revisions = await shoal.revisions("default", "w", "StatefulSet")
    assert sorted(revisions) == [1, 2]  # readable, though the template mounts what only claims give
    await shoal.rollout("default", "w", "undo", kind="StatefulSet")
    stored = (await shoal.statefulsets())["default.w"]
    assert stored.spec.template.spec.containers[0].image == "busybox:1"
    assert stored.spec.template.spec.volumes == []  # the claim's stand-in is not left behind
    assert stored.spec.template.hash() == revisions[1].template_hash


@pytest.mark.parametrize("kind", ["DaemonSet", "StatefulSet"])
async def test_daemonsets_and_statefulsets_keep_revisions_to_roll_back_to(
    shoal: ShoalClient, kind: str
) -> None:
    async def stored_image() -> str:
        objects = await (shoal.daemonsets() if kind == "DaemonSet" else shoal.statefulsets())
        return objects["default.w"].spec.template.spec.containers[0].image

    await shoal.apply(documents(workload(kind, "busybox:1")))
    await shoal.apply(documents(workload(kind, "busybox:2")))
    await shoal.apply(documents(workload(kind, "busybox:2")))  # unchanged: no revision
    revisions = await shoal.revisions("default", "w", kind)
    assert {n: r.template.spec.containers[0].image for n, r in revisions.items()} == {
        1: "busybox:1",
        2: "busybox:2",
    }
    assert await shoal.revisions("default", "w") == {}  # not a deployment's

    undone = await shoal.rollout("default", "w", "undo", kind=kind)
    assert [r.action for r in undone.results] == ["rolled back"]
    assert await stored_image() == "busybox:1"
    # The template of revision 1 is revision 3 now, as Kubernetes renumbers it
    assert sorted(await shoal.revisions("default", "w", kind)) == [2, 3]

    await shoal.rollout("default", "w", "set-image", images={"main": "busybox:3"}, kind=kind)
    assert await stored_image() == "busybox:3"
    restarted = await shoal.rollout("default", "w", "restart", kind=kind)
    assert [r.action for r in restarted.results] == ["restarted"]
    assert sorted(await shoal.revisions("default", "w", kind)) == [2, 3, 4, 5]
    with pytest.raises(RemoteError, match="cannot be paused"):
        await shoal.rollout("default", "w", "pause", kind=kind)
    with pytest.raises(RemoteError, match="no container sidecar"):
        await shoal.rollout("default", "w", "set-image", images={"sidecar": "x"}, kind=kind)
    await shoal.delete([ObjectRef(kind=kind, namespace="default", name="w")])
    assert await shoal.revisions("default", "w", kind) == {}  # a new one of that name starts afresh


async def test_a_statefulset_scales_and_an_apply_without_replicas_keeps_the_count(shoal: ShoalClient) -> None:
    await shoal.apply(documents(workload("StatefulSet", replicas=2)))
    reply = await shoal.scale("default", "w", 5, kind="StatefulSet")
    assert [(r.kind, r.action) for r in reply.results] == [("StatefulSet", "scaled")]
    await shoal.apply(documents(workload("StatefulSet")))
    stored = (await shoal.statefulsets())["default.w"]
    assert stored.spec.replicas == 5 and stored.metadata.generation == 2
    with pytest.raises(RemoteError, match='statefulset "nothing" not found'):
        await shoal.scale("default", "nothing", 1, kind="StatefulSet")


async def test_the_system_namespaces_are_recorded_once_and_kube_system_names_the_cluster(
    nats_url: str, keyring: Keyring, shoal: ShoalClient
) -> None:
    recorded = await shoal.namespaces()
    assert {"default", "kube-system", "kube-public"} <= set(recorded)
    cluster_id = recorded["kube-system"].metadata.uid
    assert len(cluster_id) == 32
    # A second API actor (HA, or a restart) keeps the id the first one recorded.
    another = ApiActor(await connect_actor(nats_url, "test-api-2"), keyring)
    await another.start()
    try:
        assert (await shoal.namespaces())["kube-system"].metadata.uid == cluster_id
    finally:
        await another.stop()
        await another.nc.close()


async def test_the_api_says_which_versions_the_cluster_runs(shoal: ShoalClient) -> None:
    reply = await shoal.server_version()
    assert reply.version == shoal_package.__version__
    assert reply.nats_server.startswith("2.") and reply.nats_server.count(".") == 2
