"""Pod security admission: the rules in tables, the API refusing applies, the node refusing records.

Most tests here are pure (no NATS, no Podman). The API tests start a nats-server and an API
actor of their own, and no node. The one end-to-end test at the end
(``test_end_to_end_a_forged_privileged_pod_never_gets_a_container``) runs a whole cluster on
Podman (the ``cluster`` fixture, so it carries the ``podman`` mark).
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml

from shoal.actors.api.actor import ApiActor
from shoal.actors.api.sealing import Keyring, load_keyring
from shoal.actors.node.backoff import CrashBackoff
from shoal.actors.node.decide import FORBIDDEN, PodFacts, Refuse, Report, StartPod, decide
from shoal.actors.node.syncer import PodSyncer
from shoal.bus import kv
from shoal.bus.connection import connect_actor
from shoal.bus.kv import Bucket
from shoal.client import ShoalClient
from shoal.errors import InvalidManifest, RemoteError
from shoal.manifests.files import read_manifests
from shoal.manifests.validate import validate_documents
from shoal.models.pod import ContainerState, ContainerStatus, Pod, PodMeta, PodStatus
from shoal.models.workloads import PodSpec, PodTemplate
from shoal.policy.admission import (
    DEFAULT_LEVEL,
    ENFORCE_LABEL,
    Level,
    level_problem,
    namespace_level,
    object_violations,
    pod_violations,
    template_violations,
)
from shoal.runtime.memory import MemoryRuntime
from tests.harness import TEST_IMAGE, LocalShoal, documents, holds_for, node_containers, unique_name, wait_for

# -- the rules -------------------------------------------------------------------------------------


def spec(**fields: Any) -> PodSpec:
    """A pod spec of one container ``main``; ``container`` holds fields of that container."""
    container = {"name": "main", "image": "img", **fields.pop("container", {})}
    return PodSpec.model_validate({"containers": [container], **fields})


def secured(**context: Any) -> PodSpec:
    return spec(container={"securityContext": context})


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""A container's security context that keeps to every level."""


def restricted(**overrides: Any) -> PodSpec:
    context = {**RESTRICTED_CONTAINER, **overrides}
    return spec(container={"securityContext": {k: v for k, v in context.items() if v is not None}})


C = "spec.containers[0].securityContext"

CASES: list[tuple[str, PodSpec, dict[Level, list[str]]]] = [
    # (case, pod spec, the paths refused at each level; privileged refuses nothing, ever)
    (
        "plain pod",
        spec(),
        {
            "baseline": [],
            "restricted": [
                f"{C}.allowPrivilegeEscalation",
                f"{C}.runAsNonRoot",
                f"{C}.seccompProfile.type",
                f"{C}.capabilities.drop",
            ],
        },
    ),
    ("restricted pod", restricted(), {"baseline": [], "restricted": []}),
    (
        "privileged container",
        restricted(privileged=True, allowPrivilegeEscalation=None),
        {"baseline": [f"{C}.privileged"], "restricted": [f"{C}.privileged", f"{C}.allowPrivilegeEscalation"]},
    ),
    ("privileged: false", restricted(privileged=False), {"baseline": [], "restricted": []}),
    (
        "privileged init container",
        spec(initContainers=[{"name": "init", "image": "img", "securityContext": {"privileged": True}}]),
        {"baseline": ["spec.initContainers[0].securityContext.privileged"]},
    ),
    (
        "a capability of the default set",
        secured(capabilities={"add": ["CHOWN", "cap_kill"]}),
        {"baseline": []},
    ),
    (
        "a capability beyond it",
        restricted(capabilities={"drop": ["ALL"], "add": ["CHOWN", "NET_ADMIN"]}),
        {
            "baseline": [f"{C}.capabilities.add[1]"],
            "restricted": [f"{C}.capabilities.add[0]", f"{C}.capabilities.add[1]"],
        },
    ),
    (
        "NET_BIND_SERVICE after dropping ALL",
        restricted(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
        {"restricted": []},
    ),
    (
        "dropping less than ALL",
        restricted(capabilities={"drop": ["NET_RAW"]}),
        {"baseline": [], "restricted": [f"{C}.capabilities.drop"]},
    ),
    (
        "hostPath volume",
        spec(volumes=[{"name": "v", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/etc"}}]),
        {"baseline": ["spec.volumes[1].hostPath"]},
    ),
    (
        "restricted's volumes",
        spec(
            containers=[{"name": "main", "image": "img", "securityContext": RESTRICTED_CONTAINER}],
            volumes=[
                {"name": "e", "emptyDir": {}},
                {"name": "c", "configMap": {"name": "cm"}},
                {"name": "s", "secret": {"secretName": "s"}},
                {"name": "p", "persistentVolumeClaim": {"claimName": "c"}},
                {"name": "d", "downwardAPI": {}},
                {"name": "j", "projected": {}},
            ],
        ),
        {"restricted": []},
    ),
    (
        "seccomp Unconfined, pod",
        spec(securityContext={"seccompProfile": {"type": "Unconfined"}}),
        {"baseline": ["spec.securityContext.seccompProfile.type"]},
    ),
    (
        "seccomp Unconfined, container",
        restricted(seccompProfile={"type": "Unconfined"}),
        {"baseline": [f"{C}.seccompProfile.type"], "restricted": [f"{C}.seccompProfile.type"]},
    ),
    (
        "seccomp of the pod serves its containers",
        spec(
            securityContext={"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
            container={"securityContext": {**RESTRICTED_CONTAINER, "seccompProfile": None}},
        ),
        {"restricted": []},
    ),
    (
        "procMount Unmasked",
        restricted(procMount="Unmasked"),
        {"baseline": [f"{C}.procMount"], "restricted": [f"{C}.procMount"]},
    ),
    ("procMount Default", restricted(procMount="Default"), {"baseline": [], "restricted": []}),
    (
        "sysctls",
        spec(
            securityContext={
                "sysctls": [
                    {"name": "net.ipv4.tcp_keepalive_time", "value": "60"},
                    {"name": "kernel.msgmax", "value": "1"},
                ]
            }
        ),
        {"baseline": ["spec.securityContext.sysctls[1].name"]},
    ),
    (
        "AppArmor Unconfined, pod",
        spec(securityContext={"appArmorProfile": {"type": "Unconfined"}}),
        {"baseline": ["spec.securityContext.appArmorProfile.type"]},
    ),
    (
        "AppArmor Unconfined, container",
        secured(appArmorProfile={"type": "Unconfined"}),
        {"baseline": [f"{C}.appArmorProfile.type"]},
    ),
    (
        "allowPrivilegeEscalation unset",
        restricted(allowPrivilegeEscalation=None),
        {"baseline": [], "restricted": [f"{C}.allowPrivilegeEscalation"]},
    ),
    (
        "runAsNonRoot of the pod serves its containers",
        spec(
            securityContext={"runAsNonRoot": True},
            container={"securityContext": {**RESTRICTED_CONTAINER, "runAsNonRoot": None}},
        ),
        {"restricted": []},
    ),
    (
        "a container saying false against the pod's true",
        spec(
            securityContext={"runAsNonRoot": True},
            container={"securityContext": {**RESTRICTED_CONTAINER, "runAsNonRoot": False}},
        ),
        {"baseline": [], "restricted": [f"{C}.runAsNonRoot"]},
    ),
    (
        "the pod saying false",
        spec(
            securityContext={"runAsNonRoot": False},
            container={"securityContext": {**RESTRICTED_CONTAINER, "runAsNonRoot": None}},
        ),
        {"restricted": ["spec.securityContext.runAsNonRoot", f"{C}.runAsNonRoot"]},
    ),
    ("runAsUser 0", restricted(runAsUser=0), {"baseline": [], "restricted": [f"{C}.runAsUser"]}),
    ("runAsUser 1000", restricted(runAsUser=1000), {"restricted": []}),
]


@pytest.mark.parametrize(
    "case, pod_spec, level, paths",
    [(case, s, level, paths) for case, s, by_level in CASES for level, paths in by_level.items()]
    + [(case, s, "privileged", []) for case, s, _ in CASES],
    ids=lambda value: value if isinstance(value, str) and " " in value else None,
)
def test_rules(case: str, pod_spec: PodSpec, level: Level, paths: list[str]) -> None:
    found = pod_violations(pod_spec, level)
    assert [v.path for v in found] == paths, case
    assert all(v.level == level for v in found)


def test_a_message_names_the_field_and_the_level() -> None:
    template = PodTemplate(spec=secured(privileged=True))
    [violation] = template_violations(template, "baseline")
    assert str(violation) == (
        "spec.template.spec.containers[0].securityContext.privileged: must not be true: privileged"
        " containers are not allowed (refused by pod security level 'baseline')"
    )
    assert "namespace 'default'" in violation.in_namespace("default")
    assert ENFORCE_LABEL in violation.in_namespace("default")


def test_the_apparmor_annotations_count_too() -> None:
    template = PodTemplate.model_validate(
        {
            "metadata": {
                "annotations": {"container.apparmor.security.beta.kubernetes.io/main": "unconfined"}
            },
            "spec": {"containers": [{"name": "main", "image": "img"}]},
        }
    )
    [violation] = template_violations(template, "baseline")
    assert violation.path == (
        "spec.template.metadata.annotations['container.apparmor.security.beta.kubernetes.io/main']"
    )
    allowed = template.model_copy(
        update={
            "metadata": template.metadata.model_copy(
                update={
                    "annotations": {"container.apparmor.security.beta.kubernetes.io/main": "runtime/default"}
                }
            )
        }
    )
    assert template_violations(allowed, "baseline") == []


PRIVILEGED_TEMPLATE = {
    "metadata": {"labels": {"app": "x"}},
    "spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "img", "securityContext": {"privileged": True}}],
    },
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "x"},
    "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": PRIVILEGED_TEMPLATE},
}


def _always(template: dict[str, Any]) -> dict[str, Any]:
    return {**template, "spec": {**template["spec"], "restartPolicy": "Always"}}


@pytest.mark.parametrize(
    "body, path",
    [
        (
            {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "template": _always(PRIVILEGED_TEMPLATE)}},
            "spec.template.spec",
        ),
        (
            {
                **DEPLOYMENT,
                "kind": "DaemonSet",
                "spec": {**DEPLOYMENT["spec"], "template": _always(PRIVILEGED_TEMPLATE)},
            },
            "spec.template.spec",
        ),
        (
            {
                **DEPLOYMENT,
                "kind": "StatefulSet",
                "spec": {**DEPLOYMENT["spec"], "template": _always(PRIVILEGED_TEMPLATE)},
            },
            "spec.template.spec",
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "x"},
                "spec": {"template": PRIVILEGED_TEMPLATE},
            },
            "spec.template.spec",
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "x"},
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": PRIVILEGED_TEMPLATE}}},
            },
            "spec.jobTemplate.spec.template.spec",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "x"},
                "spec": _always(PRIVILEGED_TEMPLATE)["spec"],
            },
            "spec",
        ),
    ],
    ids=["Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod"],
)
def test_every_kind_that_makes_pods_is_checked_at_its_own_path(body: dict[str, Any], path: str) -> None:
    [obj], _ = validate_documents(documents(yaml.safe_dump(body)))
    [violation] = object_violations(obj.model, "baseline")
    assert violation.path == f"{path}.containers[0].securityContext.privileged"
    assert object_violations(obj.model, "privileged") == []


def test_a_namespace_level_comes_from_its_label() -> None:
    assert DEFAULT_LEVEL == "baseline"
    assert namespace_level(None) == "baseline"  # no record: the default
    assert namespace_level({}) == "baseline"
    assert namespace_level({ENFORCE_LABEL: "privileged"}) == "privileged"
    assert namespace_level({ENFORCE_LABEL: "restricted"}) == "restricted"
    assert namespace_level({ENFORCE_LABEL: "Privileged"}) == "restricted"  # unreadable: fails closed
    assert level_problem({ENFORCE_LABEL: "baseline"}) is None
    assert "must be one of privileged, baseline, restricted" in (level_problem({ENFORCE_LABEL: "lax"}) or "")


def test_a_bad_level_label_is_refused_naming_the_label() -> None:
    text = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: lab\n  labels: {{{ENFORCE_LABEL}: lax}}\n"
    with pytest.raises(InvalidManifest) as caught:
        validate_documents(documents(text, source="ns.yaml"))
    [problem] = caught.value.problems
    assert problem.startswith(
        f"ns.yaml, document 1 (Namespace \"lab\"): metadata.labels['{ENFORCE_LABEL}']: "
    )
    assert "(got 'lax')" in problem


REAL = Path(__file__).parent / "fixtures" / "real"
REFUSED_UNDER_BASELINE = {
    # A log collector reading the node's own log folders: it needs a privileged namespace.
    "k8s-io-controllers-daemonset.yaml": [
        "spec.template.spec.volumes[0].hostPath",
        "spec.template.spec.volumes[1].hostPath",
    ],
    # Cassandra locks its memory (IPC_LOCK), beyond the runtime's default capabilities.
    "cassandra-statefulset.yaml": ["spec.template.spec.containers[0].securityContext.capabilities.add[0]"],
}
KEPT_UNDER_RESTRICTED = {"argo-cd-install.yaml", "ingress-nginx-cloud-deploy.yaml"}


@pytest.mark.parametrize("path", sorted(REAL.glob("*.yaml")), ids=lambda p: p.name)
def test_real_manifests_under_each_level(path: Path) -> None:
    """What public projects' manifests meet: all but two keep to baseline, and two to restricted."""
    objects, _ = validate_documents(read_manifests([path]))

    def refused(level: Level) -> list[str]:
        return [v.path for obj in objects for v in object_violations(obj.model, level)]

    assert refused("privileged") == []
    assert refused("baseline") == REFUSED_UNDER_BASELINE.get(path.name, [])
    makes_pods = any(obj.info.handling == "acted" and _makes_pods(obj.model) for obj in objects)
    assert (refused("restricted") == []) == (path.name in KEPT_UNDER_RESTRICTED or not makes_pods)


def _makes_pods(model: Any) -> bool:
    inner = getattr(model, "spec", None)
    return isinstance(inner, PodSpec) or hasattr(inner, "template") or hasattr(inner, "job_template")


# -- the node -------------------------------------------------------------------------------------

NOW = 1_000.0
KEY = "default.p"


def record(pod_spec: PodSpec, namespace: str = "default") -> Pod:
    return Pod(metadata=PodMeta(name="p", namespace=namespace, uid="u1"), spec=pod_spec, node_name="n")


def facts(pod: Pod, level: Level, **changes: Any) -> PodFacts:
    base = {
        "key": KEY,
        "pod": pod,
        "revision": 1,
        "observed": None,
        "last": None,
        "failure": None,
        "now": NOW,
    }
    return PodFacts(**{**base, "level": level, **changes})


def refused_status(phase: str = "Failed", reason: str = FORBIDDEN) -> PodStatus:
    waiting = ContainerState(status="waiting", reason=reason)
    return PodStatus(
        namespace="default",
        name="p",
        uid="u1",
        node_name="n",
        phase=phase,
        reason=reason,  # type: ignore[arg-type]
        container_statuses=[ContainerStatus(name="main", image="img", state=waiting)],
    )


PRIVILEGED = secured(privileged=True)
REFUSAL = (
    "spec.containers[0].securityContext.privileged: must not be true: privileged containers are not"
    " allowed (refused by pod security level 'baseline')"
)


@pytest.mark.parametrize(
    "case, facts_, actions",
    [
        (
            "a forged privileged record, default level",
            facts(record(PRIVILEGED), DEFAULT_LEVEL),
            [Refuse(REFUSAL)],
        ),
        (
            "the same in a privileged namespace",
            facts(record(PRIVILEGED), "privileged"),
            [StartPod({}, False)],
        ),
        ("a plain pod under baseline", facts(record(spec()), "baseline"), [StartPod({}, False)]),
        (
            "a plain pod under restricted",
            facts(record(spec()), "restricted"),
            [Refuse("; ".join(str(v) for v in pod_violations(spec(), "restricted")))],
        ),
        (
            "a hostPath pod under baseline",
            facts(record(spec(volumes=[{"name": "h", "hostPath": {"path": "/"}}])), "baseline"),
            [
                Refuse(
                    "spec.volumes[0].hostPath: hostPath volumes are not allowed (volume 'h': /)"
                    " (refused by pod security level 'baseline')"
                )
            ],
        ),
        (
            "refused already: nothing more to do",
            facts(record(PRIVILEGED), "baseline", last=refused_status()),
            [],
        ),
        (
            "refused, then the namespace allows it: still refused for good",
            facts(record(PRIVILEGED), "privileged", last=refused_status()),
            [],
        ),
        (
            "finished otherwise: reported as before",
            facts(record(PRIVILEGED), "baseline", last=refused_status("Succeeded", "")),
            [Report()],
        ),
        ("cut off from NATS: nothing, as always", facts(record(PRIVILEGED), "baseline", cut_off=True), []),
    ],
)
def test_node_decisions(case: str, facts_: PodFacts, actions: list[object]) -> None:
    assert decide(facts_) == actions, case


class RecordingLink:
    def __init__(self) -> None:
        self.statuses: dict[str, PodStatus] = {}
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    async def report(self, key: str, status: PodStatus) -> None:
        self.statuses[key] = status

    async def forget(self, key: str) -> None:
        self.statuses.pop(key, None)

    async def delete_record(self, key: str, revision: int) -> bool:
        return True

    def emit(self, pod: Any, reason: str, message: str, **fields: Any) -> None:
        self.events.append((reason, message, fields))


async def test_the_node_reports_a_forged_record_failed_and_creates_no_container() -> None:
    runtime = MemoryRuntime("n", clock=lambda: NOW)
    link = RecordingLink()
    syncer = PodSyncer(
        "n", "127.0.0.1", runtime, link, CrashBackoff(10.0, 300.0), requeue=lambda *_: None, clock=lambda: NOW
    )
    await syncer.sync(KEY, record(PRIVILEGED), 1)  # the level it is given: baseline, the default
    assert await runtime.inspect_pod("default", "p") is None
    status = link.statuses[KEY]
    assert (status.phase, status.reason, status.ready) == ("Failed", FORBIDDEN, False)
    assert "securityContext.privileged" in status.message and "'baseline'" in status.message
    [(reason, message, fields)] = link.events
    assert reason == FORBIDDEN and fields == {"type": "Warning"} and "securityContext.privileged" in message
    await syncer.sync(KEY, record(PRIVILEGED), 1, level="privileged")  # looked at again: stays refused
    assert await runtime.inspect_pod("default", "p") is None and len(link.events) == 1
    await syncer.sync(
        "default.q",
        record(PRIVILEGED).model_copy(update={"metadata": PodMeta(name="q", uid="u2")}),
        1,
        level="privileged",
    )
    assert await runtime.inspect_pod("default", "q") is not None  # allowed where the level allows it


# -- the API (a nats-server and an API actor; no node) ---------------------------------------------


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return load_keyring(tmp_path / "secret-keys.yaml")


@pytest.fixture
async def shoal(nats_url: str, keyring: Keyring) -> AsyncIterator[ShoalClient]:
    actor = ApiActor(await connect_actor(nats_url, "test-api"), keyring)
    await actor.start()
    client = await ShoalClient.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()
        await actor.stop()
        await actor.nc.close()


def privileged_deployment(namespace: str = "default") -> str:
    body = copy.deepcopy(DEPLOYMENT)
    body["metadata"] = {"name": "x", "namespace": namespace}
    body["spec"]["template"] = _always(PRIVILEGED_TEMPLATE)
    return yaml.safe_dump(body)


def namespace(name: str, level: str | None) -> str:
    labels = {ENFORCE_LABEL: level} if level else {}
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    )


async def test_the_api_refuses_a_privileged_deployment_in_a_default_namespace(shoal: ShoalClient) -> None:
    text = namespace("lab", None) + "---\n" + privileged_deployment("lab")
    with pytest.raises(RemoteError) as caught:
        await shoal.apply(documents(text, source="app.yaml"))
    assert caught.value.code == "invalid-manifest"
    assert (
        'app.yaml, document 2 (Deployment "x"): spec.template.spec.containers[0].securityContext.privileged:'
        " must not be true: privileged containers are not allowed (refused by pod security level 'baseline'"
        f" of namespace 'lab'; its label {ENFORCE_LABEL} sets the level)"
    ) in caught.value.message
    assert await shoal.deployments() == {}  # nothing of the apply stored: not the namespace either
    with pytest.raises(RemoteError, match="pod security level 'baseline' of namespace 'default'"):
        await shoal.apply(documents(privileged_deployment()))


async def test_the_api_accepts_it_in_a_namespace_labelled_privileged_in_the_same_apply(
    shoal: ShoalClient,
) -> None:
    reply = await shoal.apply(
        documents(privileged_deployment("lab") + "---\n" + namespace("lab", "privileged"))
    )
    assert sorted((r.kind, r.action) for r in reply.results) == [
        ("Deployment", "created"),
        ("Namespace", "created"),
    ]
    # A stricter label later refuses new applies and leaves what is stored alone (no eviction).
    await shoal.apply(documents(namespace("lab", "baseline")))
    assert "lab.x" in await shoal.deployments()
    with pytest.raises(RemoteError, match="refused by pod security level 'baseline' of namespace 'lab'"):
        await shoal.apply(documents(privileged_deployment("lab").replace("image: img", "image: img2")))


async def test_the_api_refuses_a_bad_level_label(shoal: ShoalClient) -> None:
    with pytest.raises(
        RemoteError, match=r"metadata.labels\['pod-security.kubernetes.io/enforce'\]: must be"
    ):
        await shoal.apply(documents(namespace("lab", "everything")))


# -- end to end: a whole cluster on Podman ----------------------------------------------------------


@pytest.mark.podman
async def test_end_to_end_a_forged_privileged_pod_never_gets_a_container(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    """A pod record with a privileged container, written straight into the pods bucket and bound
    to the node (past the API, which would refuse it: as a role that may write pods, such as a
    scheduler gone bad), is reported Failed (Forbidden) by the node, which never creates a
    container for it."""
    name = unique_name("forged")
    forged = Pod(
        metadata=PodMeta(name=name, uid=f"uid-{name}", creation_timestamp=time.time()),
        spec=spec(
            container={
                "image": TEST_IMAGE,
                "command": ["sleep", "3600"],
                "securityContext": {"privileged": True},
            }
        ),
        node_name=cluster.node,
    )
    nc = await nats.connect(cluster.url, **cluster.access_as("scheduler").options())
    pods = await Bucket.open(nc.jetstream(), kv.PODS)
    try:
        await pods.create(forged.key, forged)

        async def refused() -> bool:
            status = (await client.pod_statuses()).get(forged.key)
            return status is not None and status.phase == "Failed" and status.reason == FORBIDDEN

        await wait_for(refused, timeout=30, what="the node to refuse the forged pod")
        status = (await client.pod_statuses())[forged.key]
        assert "securityContext.privileged" in status.message

        async def still_refused() -> bool:
            # No container, then or later (the label runtime/labels.py sets), and the verdict stands.
            status = (await client.pod_statuses())[forged.key]
            return not node_containers(cluster.node, **{"shoal.pod": name}) and status.reason == FORBIDDEN

        await holds_for(still_refused, 3, what="no container for the forged pod")
    finally:
        await pods.delete(forged.key)
        await nc.close()
