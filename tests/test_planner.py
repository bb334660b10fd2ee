"""The scheduler's pure decisions: feed a view, compare the commands. No servers involved."""

from __future__ import annotations

from shoal.actors.scheduler.commands import (
    BindPod,
    CreatePod,
    DeleteDeploymentStatus,
    DeletePod,
    EvictPod,
    MarkUnschedulable,
    TerminatePod,
    WriteDeploymentStatus,
)
from shoal.actors.scheduler.planner import plan
from shoal.actors.scheduler.view import ClusterView, NodeView
from shoal.bus.kv import Entry
from shoal.manifests.files import parse_documents
from shoal.manifests.validate import validate_documents
from shoal.models.node import Node, NodeSpec
from shoal.models.pod import ContainerState, ContainerStatus, Pod, PodStatus
from shoal.models.scheduling import ClusterObjectMeta, PriorityClass, Taint
from shoal.models.workloads import Deployment, DeploymentStatus, DeploymentStrategy, PodSpec, ResourceList
from tests.harness import deployment
from tests.workload_sim import NOW, CountingIds


def make_deployment(
    name: str = "web", replicas: int = 3, cpu: str = "100m", memory: str = "64Mi"
) -> Deployment:
    [obj], _ = validate_documents(
        parse_documents(deployment(name, replicas=replicas, cpu=cpu, memory=memory), "t")
    )
    model = obj.model
    assert isinstance(model, Deployment)
    meta = model.metadata.model_copy(update={"uid": f"dep-{name}", "generation": 1})
    return Deployment(metadata=meta, spec=model.spec)


def node(name: str, cpu: int = 2000, memory: int = 4 * 2**30) -> NodeView:
    resources = ResourceList.of(cpu, memory)
    return NodeView(Node(name=name, capacity=resources, allocatable=resources), ready=True)


def view(deployments=(), pods=(), statuses=(), nodes=(), dep_status=()) -> ClusterView:  # type: ignore[no-untyped-def]
    return ClusterView(
        deployments={
            f"default.{d.metadata.name}": Entry(f"default.{d.metadata.name}", d, 1) for d in deployments
        },
        pods={p.key: Entry(p.key, p, 10) for p in pods},
        pod_status={s.namespace + "." + s.name: Entry(s.namespace + "." + s.name, s, 1) for s in statuses},
        nodes={n.node.name: n for n in nodes},
        deployment_status={f"default.{s.name}": Entry(f"default.{s.name}", s, 3) for s in dep_status},
    )


def creates(commands) -> list[Pod]:  # type: ignore[no-untyped-def]
    return [c.pod for c in commands if isinstance(c, CreatePod)]


def run_to_pods(dep: Deployment, nodes: list[NodeView]) -> list[Pod]:
    return creates(plan(view([dep], nodes=nodes), NOW, CountingIds()))


def running(pod: Pod, ready: bool = True, restarts: int = 0) -> PodStatus:
    return PodStatus(
        namespace="default",
        name=pod.metadata.name,
        uid=pod.metadata.uid,
        node_name=pod.node_name,
        phase="Running",
        ready=ready,
        container_statuses=[
            ContainerStatus(
                name="main",
                image="x",
                ready=ready,
                restart_count=restarts,
                state=ContainerState(status="running"),
            )
        ],
    )


def test_creates_replicas_bound_and_spread_over_nodes() -> None:
    pods = run_to_pods(make_deployment(replicas=4), [node("a"), node("b")])
    assert len(pods) == 4
    assert sorted(p.node_name for p in pods) == ["a", "a", "b", "b"]
    for pod in pods:
        assert pod.metadata.name.startswith("web-" + pod.metadata.template_hash + "-")
        assert pod.metadata.owner is not None and pod.metadata.owner.uid == "dep-web"
        assert pod.metadata.labels["app"] == "web"


def test_a_steady_deployment_needs_nothing() -> None:
    dep = make_deployment(replicas=2)
    pods = run_to_pods(dep, [node("a")])
    statuses = [running(p) for p in pods]
    [write] = [
        c
        for c in plan(view([dep], pods, statuses, [node("a")]), NOW, CountingIds())
        if isinstance(c, WriteDeploymentStatus)
    ]
    assert write.status.progressing_reason == "NewReplicaSetAvailable"
    again = plan(view([dep], pods, statuses, [node("a")], [write.status]), NOW + 5, CountingIds())
    assert again == []


def test_scale_down_removes_unready_and_newest_first() -> None:
    dep = make_deployment(replicas=3)
    pods = run_to_pods(dep, [node("a")])
    aged = [
        p.model_copy(update={"metadata": p.metadata.model_copy(update={"creation_timestamp": NOW - i})})
        for i, p in enumerate(pods)
    ]
    statuses = [running(aged[0]), running(aged[1], ready=False), running(aged[2])]
    smaller = dep.model_copy(update={"spec": dep.spec.model_copy(update={"replicas": 1})})
    commands = plan(view([smaller], aged, statuses, [node("a")]), NOW, CountingIds())
    terminated = {c.pod.metadata.name for c in commands if isinstance(c, TerminatePod)}
    # the unready one goes first, then the newest of the ready ones
    assert terminated == {aged[1].metadata.name, aged[0].metadata.name}


def test_pods_that_fit_nowhere_stay_pending_with_a_reason() -> None:
    pods = run_to_pods(make_deployment(replicas=1, cpu="64"), [node("a"), node("b")])
    [pod] = pods
    assert pod.node_name == ""
    assert pod.scheduling is not None
    assert pod.scheduling.reason == "Unschedulable"
    assert pod.scheduling.message == "0/2 nodes are available: 2 Insufficient cpu."


def test_capacity_accounts_for_pods_placed_in_the_same_round() -> None:
    pods = run_to_pods(make_deployment(replicas=3, cpu="1"), [node("a", cpu=2000)])
    assert sorted(p.node_name for p in pods) == ["", "a", "a"]


def test_pending_pods_are_bound_when_a_node_appears() -> None:
    dep = make_deployment(replicas=1)
    [pending] = run_to_pods(dep, [])
    assert pending.scheduling is not None and "no nodes" in pending.scheduling.message
    commands = plan(view([dep], [pending], nodes=[node("late")]), NOW, CountingIds())
    [bind] = [c for c in commands if isinstance(c, BindPod)]
    assert bind.node == "late" and bind.pod.scheduling is None


def test_pending_reason_is_not_rewritten_when_unchanged() -> None:
    dep = make_deployment(replicas=1, cpu="64")
    [pending] = run_to_pods(dep, [node("a")])
    commands = plan(view([dep], [pending], nodes=[node("a")]), NOW, CountingIds())
    assert not [c for c in commands if isinstance(c, MarkUnschedulable | CreatePod | BindPod)]


def test_not_ready_nodes_get_no_pods() -> None:
    sick = NodeView(node("a").node, ready=False)
    [pod] = run_to_pods(make_deployment(replicas=1), [sick])
    assert pod.node_name == "" and pod.scheduling is not None
    assert "1 node(s) were not ready" in pod.scheduling.message


def test_deleted_deployment_terminates_bound_and_deletes_unbound_pods() -> None:
    dep = make_deployment(replicas=2, cpu="1500m")
    pods = run_to_pods(dep, [node("a")])
    assert sorted(bool(p.node_name) for p in pods) == [False, True]
    commands = plan(
        view(
            [],
            pods,
            nodes=[node("a")],
            dep_status=[DeploymentStatus(namespace="default", name="web", uid="dep-web")],
        ),
        NOW,
        CountingIds(),
    )
    assert {type(c) for c in commands} == {TerminatePod, DeletePod, DeleteDeploymentStatus}


def test_template_change_rolls_within_surge_and_unavailability() -> None:
    ids = CountingIds()
    dep = make_deployment(replicas=4)
    pods = creates(plan(view([dep], nodes=[node("a")]), NOW, ids))
    changed = make_deployment(replicas=4, memory="32Mi")
    # 25% surge and unavailability of 4: one extra pod, one fewer available
    first = plan(view([changed], pods, [running(p) for p in pods], [node("a")]), NOW, ids)
    new = creates(first)
    terminated = [c for c in first if isinstance(c, TerminatePod)]
    assert len(new) == 1 and len(terminated) == 1  # 5 pods at most, 3 available at least
    assert all(p.metadata.template_hash == changed.spec.template.hash() for p in new)


def test_a_new_template_that_never_gets_ready_stops_within_max_unavailable() -> None:
    ids = CountingIds()
    dep = make_deployment(replicas=4)
    pods = creates(plan(view([dep], nodes=[node("a")]), NOW, ids))
    changed = make_deployment(replicas=4, memory="32Mi")
    old_hash = dep.spec.template.hash()
    stored: list[DeploymentStatus] = []
    for second in range(5):  # carry the commands out, round after round, never getting Ready
        statuses = [running(p) for p in pods if p.metadata.template_hash == old_hash]
        commands = plan(view([changed], pods, statuses, [node("a")], stored), NOW + second, ids)
        gone = {c.key for c in commands if isinstance(c, TerminatePod)}
        pods = [p for p in pods if p.key not in gone] + creates(commands)
        stored = [c.status for c in commands if isinstance(c, WriteDeploymentStatus)] or stored
    old = [p for p in pods if p.metadata.template_hash == old_hash]
    assert len(old) == 3 and len(pods) == 5  # 4 - maxUnavailable available; 4 + maxSurge in all
    statuses = [running(p) for p in old]
    failed = plan(view([changed], pods, statuses, [node("a")], stored), NOW + 700, ids)
    [status] = [c.status for c in failed if isinstance(c, WriteDeploymentStatus)]
    assert status.failed and status.available_replicas == 3
    assert not [c for c in failed if isinstance(c, TerminatePod | CreatePod)]


def test_max_unavailable_zero_keeps_every_replica_available() -> None:
    ids = CountingIds()
    dep = make_deployment(replicas=3)
    pods = creates(plan(view([dep], nodes=[node("a")]), NOW, ids))
    changed = with_spec(make_deployment(replicas=3, memory="32Mi"))
    changed = changed.model_copy(
        update={
            "spec": changed.spec.model_copy(
                update={
                    "strategy": DeploymentStrategy.model_validate(
                        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
                    )
                }
            )
        }
    )
    first = plan(view([changed], pods, [running(p) for p in pods], [node("a")]), NOW, ids)
    assert len(creates(first)) == 1 and not [c for c in first if isinstance(c, TerminatePod)]


def test_recreate_stops_everything_before_starting_the_new_template() -> None:
    ids = CountingIds()
    dep = make_deployment(replicas=2)
    pods = creates(plan(view([dep], nodes=[node("a")]), NOW, ids))
    changed = make_deployment(replicas=2, memory="32Mi")
    changed = changed.model_copy(
        update={"spec": changed.spec.model_copy(update={"strategy": DeploymentStrategy(type="Recreate")})}
    )
    first = plan(view([changed], pods, [running(p) for p in pods], [node("a")]), NOW, ids)
    assert len([c for c in first if isinstance(c, TerminatePod)]) == 2 and not creates(first)
    dying = [
        p.model_copy(update={"metadata": p.metadata.model_copy(update={"deletion_timestamp": NOW})})
        for p in pods
    ]
    assert not creates(plan(view([changed], dying, [], [node("a")]), NOW, ids))  # old ones still stopping
    assert len(creates(plan(view([changed], [], [], [node("a")]), NOW, ids))) == 2


def test_terminating_pods_do_not_count_but_still_hold_resources() -> None:
    dep = make_deployment(replicas=1, cpu="1500m")
    [pod] = run_to_pods(dep, [node("a")])
    dying = pod.model_copy(update={"metadata": pod.metadata.model_copy(update={"deletion_timestamp": NOW})})
    commands = plan(view([dep], [dying], nodes=[node("a")]), NOW, CountingIds())
    [replacement] = creates(commands)
    assert replacement.node_name == ""  # the dying pod's 1.5 CPU are not free yet


def test_deployment_status_counts_ready_pods() -> None:
    dep = make_deployment(replicas=2)
    pods = run_to_pods(dep, [node("a")])
    commands = plan(view([dep], pods, [running(pods[0])], [node("a")]), NOW, CountingIds())
    [status] = [c.status for c in commands if isinstance(c, WriteDeploymentStatus)]
    assert (status.replicas, status.ready_replicas, status.unavailable_replicas) == (2, 1, 1)


def lost(view_: NodeView, lost: bool) -> NodeView:
    return NodeView(view_.node, ready=False, lost=lost)


def test_pods_of_a_lost_node_are_evicted_and_replaced() -> None:
    dep = make_deployment(replicas=2)
    pods = run_to_pods(dep, [node("a"), node("b")])
    on_a = [p for p in pods if p.node_name == "a"]
    statuses = [running(p) for p in pods]
    # NotReady, but not lost yet (the eviction rules decide when): nothing moves yet
    waiting = plan(view([dep], pods, statuses, [lost(node("a"), False), node("b")]), NOW, CountingIds())
    assert not [c for c in waiting if isinstance(c, EvictPod | CreatePod)]
    commands = plan(view([dep], pods, statuses, [lost(node("a"), True), node("b")]), NOW, CountingIds())
    evicted = [c.pod.metadata.name for c in commands if isinstance(c, EvictPod)]
    assert evicted == [p.metadata.name for p in on_a]
    replacements = creates(commands)
    assert len(replacements) == len(on_a) and all(p.node_name == "b" for p in replacements)


def test_pods_bound_to_a_node_that_no_longer_exists_are_evicted() -> None:
    dep = make_deployment(replicas=1)
    [pod] = run_to_pods(dep, [node("gone")])
    commands = plan(view([dep], [pod], nodes=[node("other")]), NOW, CountingIds())
    assert [type(c) for c in commands if isinstance(c, EvictPod | CreatePod)] == [EvictPod, CreatePod]


def test_cordoned_nodes_keep_their_pods_but_get_no_new_ones() -> None:
    dep = make_deployment(replicas=1)
    cordoned = NodeView(node("a").node, ready=True, spec=NodeSpec(name="a", unschedulable=True))
    [pod] = run_to_pods(dep, [cordoned])
    assert pod.node_name == "" and pod.scheduling is not None
    assert "1 node(s) were unschedulable" in pod.scheduling.message


def test_drain_replaces_first_and_stops_the_original_once_the_replacement_is_ready() -> None:
    ids = CountingIds()
    dep = make_deployment(replicas=1)
    [original] = creates(plan(view([dep], nodes=[node("a")]), NOW, ids))
    draining = NodeView(
        node("a").node, ready=True, spec=NodeSpec(name="a", unschedulable=True, draining=True)
    )
    nodes = [draining, node("b")]
    first = plan(view([dep], [original], [running(original)], nodes), NOW, ids)
    [replacement] = creates(first)
    assert replacement.node_name == "b"
    assert not [c for c in first if isinstance(c, TerminatePod)]  # the original waits
    # replacement created but not Ready yet: still waiting
    second = plan(view([dep], [original, replacement], [running(original)], nodes), NOW, ids)
    assert not [c for c in second if isinstance(c, TerminatePod | CreatePod)]
    # replacement Ready: the original goes
    statuses = [running(original), running(replacement)]
    third = plan(view([dep], [original, replacement], statuses, nodes), NOW, ids)
    assert [c.pod.metadata.name for c in third if isinstance(c, TerminatePod)] == [original.metadata.name]


def test_drain_without_room_elsewhere_stops_the_original_anyway() -> None:
    ids = CountingIds()
    dep = make_deployment(replicas=1, cpu="1500m")
    [original] = creates(plan(view([dep], nodes=[node("a")]), NOW, ids))
    draining = NodeView(node("a").node, ready=True, spec=NodeSpec(name="a", draining=True))
    full = node("b", cpu=1000)
    [pending] = creates(plan(view([dep], [original], [running(original)], [draining, full]), NOW, ids))
    assert pending.scheduling is not None
    commands = plan(
        view([dep], [original, pending], [running(original)], [draining, full]), NOW, CountingIds()
    )
    assert [c.pod.metadata.name for c in commands if isinstance(c, TerminatePod)] == [original.metadata.name]


def test_pods_on_unready_nodes_do_not_count_as_ready() -> None:
    dep = make_deployment(replicas=1)
    [pod] = run_to_pods(dep, [node("a")])
    commands = plan(view([dep], [pod], [running(pod)], [lost(node("a"), 0.1)]), NOW, CountingIds())
    [status] = [c.status for c in commands if isinstance(c, WriteDeploymentStatus)]
    assert status.ready_replicas == 0


def with_spec(dep: Deployment, **fields) -> Deployment:  # type: ignore[no-untyped-def]
    template = dep.spec.template
    spec = PodSpec.model_validate(template.spec.dump() | fields)
    new_template = template.model_copy(update={"spec": spec})
    return dep.model_copy(update={"spec": dep.spec.model_copy(update={"template": new_template})})


def tainted(view_: NodeView, *taints: Taint) -> NodeView:
    return NodeView(view_.node, ready=True, spec=NodeSpec(name=view_.node.name, taints=list(taints)))


def test_no_execute_taints_evict_at_once_or_after_toleration_seconds() -> None:
    ids = CountingIds()
    plain = make_deployment("plain", replicas=1)
    patient = with_spec(
        make_deployment("patient", replicas=1),
        tolerations=[
            {"key": "maintenance", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
        ],
    )
    pods = creates(plan(view([plain, patient], nodes=[node("a")]), NOW, ids))
    taint = Taint(key="maintenance", effect="NoExecute", time_added=NOW)
    nodes = [tainted(node("a"), taint)]
    soon = plan(view([plain, patient], pods, [running(p) for p in pods], nodes), NOW + 10, ids)
    assert [c.pod.metadata.owner.name for c in soon if isinstance(c, TerminatePod)] == ["plain"]  # type: ignore[union-attr]
    assert soon.wake_at == NOW + 60  # the planner asks to look again when the toleration ends
    later = plan(view([plain, patient], pods, [running(p) for p in pods], nodes), NOW + 61, ids)
    assert {c.pod.metadata.owner.name for c in later if isinstance(c, TerminatePod)} == {"plain", "patient"}  # type: ignore[union-attr]


def unreachable(seconds: int | None) -> list[dict]:  # type: ignore[type-arg]
    toleration = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    return [toleration | ({"tolerationSeconds": seconds} if seconds is not None else {})]


def test_pods_that_tolerate_their_node_s_loss_wait_for_it_as_long_as_they_say() -> None:
    ids = CountingIds()
    plain = make_deployment("plain", replicas=1)
    patient = with_spec(make_deployment("patient", replicas=1), tolerations=unreachable(30))
    loyal = with_spec(make_deployment("loyal", replicas=1), tolerations=unreachable(None))
    deployments = [plain, patient, loyal]
    pods = creates(plan(view(deployments, nodes=[node("a")]), NOW, ids))
    statuses = [running(p) for p in pods]
    gone = NodeView(node("a").node, ready=False, lost=True, lost_since=NOW)
    nodes = [gone, node("b")]

    def owners(commands, kind) -> set[str]:  # type: ignore[no-untyped-def]
        return {c.pod.metadata.owner.name for c in commands if isinstance(c, kind)}

    soon = plan(view(deployments, pods, statuses, nodes), NOW + 1, ids)
    assert owners(soon, EvictPod) == {"plain"}  # the rest stay bound to their lost node
    assert {p.metadata.owner.name for p in creates(soon)} == {"plain"}  # type: ignore[union-attr]
    assert soon.wake_at == NOW + 30
    later = plan(view(deployments, pods, statuses, nodes), NOW + 31, ids)
    assert owners(later, EvictPod) == {"plain", "patient"}  # "loyal" waits for its node for good


def test_priority_classes_set_pod_priority_and_preempt_lower_pods() -> None:
    ids = CountingIds()
    low = make_deployment("low", replicas=2, cpu="900m")
    pods = creates(plan(view([low], nodes=[node("a", cpu=2000)]), NOW, ids))
    assert [p.spec.priority for p in pods] == [0, 0] and all(p.node_name == "a" for p in pods)
    critical = PriorityClass(metadata=ClusterObjectMeta(name="critical"), value=1000)
    high = with_spec(make_deployment("high", replicas=1, cpu="900m"), priorityClassName="critical")
    cluster = ClusterView(
        deployments={d.metadata.name: Entry(d.metadata.name, d, 1) for d in (low, high)},
        pods={p.key: Entry(p.key, p, 10) for p in pods},
        pod_status={p.key: Entry(p.key, running(p), 1) for p in pods},
        nodes={"a": node("a", cpu=2000)},
        priority_classes={"critical": critical},
    )
    commands = plan(cluster, NOW, ids)
    [pending] = creates(commands)
    assert pending.spec.priority == 1000 and pending.node_name == ""
    assert pending.scheduling is not None and pending.scheduling.nominated_node == "a"
    victims = [c for c in commands if isinstance(c, TerminatePod)]
    assert len(victims) == 1 and "preempted by" in victims[0].reason
    # the victim's replacement is created too, and has to wait: it cannot preempt anything
    assert all(p.node_name == "" for p in creates(commands))


def test_an_unknown_priority_class_leaves_the_pod_pending_with_the_reason() -> None:
    dep = with_spec(make_deployment("x", replicas=1), priorityClassName="nope")
    [pod] = run_to_pods(dep, [node("a")])
    assert pod.scheduling is not None and 'priority class "nope" not found' in pod.scheduling.message


def test_min_ready_seconds_counts_from_when_the_scheduler_saw_readiness() -> None:
    dep = make_deployment(replicas=2)
    dep = dep.model_copy(update={"spec": dep.spec.model_copy(update={"min_ready_seconds": 10})})
    pods = run_to_pods(dep, [node("a")])
    # The node's clock says Ready long ago; the scheduler saw it a second ago.
    statuses = [running(p).model_copy(update={"ready_since": NOW - 100}) for p in pods]
    base = view([dep], pods, statuses, [node("a")])

    def available(cluster: ClusterView) -> int:
        (status,) = [
            c.status for c in plan(cluster, NOW, CountingIds()) if isinstance(c, WriteDeploymentStatus)
        ]
        return status.available_replicas

    assert available(base) == 2  # only the node's figure: available
    seen = ClusterView(**{**base.__dict__, "ready_seen": {p.key: NOW - 1 for p in pods}})
    assert available(seen) == 0  # by the scheduler's own clock: not for 9 s more


def bare_pod(name: str, **spec: object) -> Pod:
    from shoal.models.pod import PodMeta

    containers = [{"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]
    return Pod(
        metadata=PodMeta(name=name, uid=f"uid-{name}", creation_timestamp=NOW, template_hash=name),
        spec=PodSpec.model_validate({"containers": containers, **spec}),
    )


def with_claims(view_: ClusterView, claims: set[str], bound: dict[str, str]) -> ClusterView:
    from dataclasses import replace as dc_replace

    return dc_replace(view_, claims=frozenset(claims), claim_nodes=bound)


def claimed(name: str, claim: str = "data") -> Pod:
    volumes = [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]
    return bare_pod(name, volumes=volumes)


def test_a_bare_pod_is_bound_and_never_removed_as_an_orphan() -> None:
    pod = bare_pod("lonely")
    [command] = plan(view(pods=[pod], nodes=[node("a")]), NOW, CountingIds())
    assert isinstance(command, BindPod) and command.node == "a"
    bound = pod.model_copy(update={"node_name": "a"})
    assert plan(view(pods=[bound], statuses=[running(bound)], nodes=[node("a")]), NOW, CountingIds()) == []


def test_the_first_pod_of_a_claim_binds_it_and_the_next_follow() -> None:
    from shoal.actors.scheduler.commands import BindClaim

    first, second = claimed("one"), claimed("two")
    nodes = [node("a"), node("b")]
    commands = plan(
        with_claims(view(pods=[first, second], nodes=nodes), {"default.data"}, {}), NOW, CountingIds()
    )
    binds = [c for c in commands if isinstance(c, BindPod)]
    [claim] = [c for c in commands if isinstance(c, BindClaim)]
    assert claim.key == "default.data" and claim.status.volume == "shoal-default-data"
    assert {b.node for b in binds} == {claim.status.node}  # both on the claim's node, not spread


def test_a_bound_claim_pins_its_pods_to_its_node() -> None:
    pod = claimed("one")
    nodes = [node("a"), node("b", cpu=64_000)]
    commands = plan(
        with_claims(view(pods=[pod], nodes=nodes), {"default.data"}, {"default.data": "a"}),
        NOW,
        CountingIds(),
    )
    assert [(type(c).__name__, getattr(c, "node", None)) for c in commands] == [("BindPod", "a")]


def test_a_missing_claim_keeps_the_pod_pending_with_its_name() -> None:
    [command] = plan(
        with_claims(view(pods=[claimed("one", "nope")], nodes=[node("a")]), set(), {}), NOW, CountingIds()
    )
    assert isinstance(command, MarkUnschedulable)
    assert command.scheduling.message == 'persistentvolumeclaim "nope" not found'
