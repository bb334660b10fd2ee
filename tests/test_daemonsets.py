"""DaemonSets, decided without servers: eligibility, pods following nodes, rolling updates and
OnDelete, round after round (``tests/workload_sim.py`` plays the nodes)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shoal.actors.scheduler.commands import CreatePod, DeletePod, EvictPod, TerminatePod
from shoal.actors.scheduler.daemonsets import DAEMON_TOLERATIONS
from shoal.bus import kv
from shoal.errors import InvalidManifest
from shoal.manifests.files import parse_documents
from shoal.manifests.validate import validate_documents
from shoal.models.daemonset import DaemonSet, DaemonSetStatus
from shoal.models.node import NodeSpec
from shoal.models.scheduling import Taint
from tests.workload_sim import NOW, Cluster, model_of, node_view

DS_STATUS = kv.DAEMONSET_STATUS.name


def ds_manifest(*, image: str = "agent:v1", strategy: dict[str, Any] | None = None, **pod: Any) -> str:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {
                "containers": [{"name": "main", "image": image, "resources": {"requests": {"cpu": "100m"}}}],
                **pod,
            },
        },
    }
    if strategy is not None:
        spec["updateStrategy"] = strategy
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "work"}, "spec": spec}
    return yaml.safe_dump(body)


def make_ds(**kwargs: Any) -> DaemonSet:
    return model_of(ds_manifest(**kwargs), uid="ds-uid")


def status(cluster: Cluster) -> DaemonSetStatus:
    return cluster.status(DS_STATUS)


def run_ready(cluster: Cluster, now: float = NOW) -> None:
    """Every pod reports Running and Ready."""
    for pod in cluster.owned("ds-uid"):
        if pod.node_name and not pod.terminating:
            cluster.report(pod, "Running", ready=True)
    cluster.round(now)


def placed(cluster: Cluster) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in cluster.owned("ds-uid"):
        if not pod.terminating:
            counts[pod.target_node] = counts.get(pod.target_node, 0) + 1
    return counts


def test_one_pod_on_every_node_bound_to_it() -> None:
    cluster = Cluster([node_view(n) for n in "abc"])
    cluster.add("daemonsets", make_ds())
    cluster.round()
    pods = cluster.owned("ds-uid")
    assert sorted(p.node_name for p in pods) == ["a", "b", "c"]
    assert all(p.required_node == p.node_name for p in pods)
    assert all(p.metadata.owner is not None and p.metadata.owner.kind == "DaemonSet" for p in pods)
    tolerated = {(t.key, t.effect) for t in pods[0].spec.tolerations}
    assert set(DAEMON_TOLERATIONS) <= tolerated
    run_ready(cluster)
    counts = status(cluster)
    assert (counts.desired_number_scheduled, counts.number_ready, counts.number_available) == (3, 3, 3)
    assert cluster.round(NOW + 1) == []


def test_a_node_that_joins_gets_its_pod_and_one_that_is_lost_loses_it() -> None:
    cluster = Cluster([node_view("a"), node_view("b")])
    cluster.add("daemonsets", make_ds())
    cluster.round()
    cluster.nodes["c"] = node_view("c")
    commands = cluster.round(NOW + 1)
    assert [c.pod.node_name for c in commands if isinstance(c, CreatePod)] == ["c"]
    cluster.nodes["b"] = node_view("b", ready=False, lost=True)
    commands = cluster.round(NOW + 2)
    assert [c.pod.node_name for c in commands if isinstance(c, EvictPod)] == ["b"]
    assert not [c for c in commands if isinstance(c, CreatePod)]
    assert placed(cluster) == {"a": 1, "c": 1}
    del cluster.nodes["c"]  # its registration deleted
    commands = cluster.round(NOW + 3)
    assert [c.pod.node_name for c in commands if isinstance(c, EvictPod)] == ["c"]
    assert placed(cluster) == {"a": 1}


def test_a_not_ready_node_keeps_its_pod_but_gets_none_new() -> None:
    cluster = Cluster([node_view("a"), node_view("b", ready=False)])
    cluster.add("daemonsets", make_ds())
    cluster.round()
    assert placed(cluster) == {"a": 1}
    cluster.nodes["a"] = node_view("a", ready=False)
    assert not [c for c in cluster.round(NOW + 1) if isinstance(c, TerminatePod | DeletePod | EvictPod)]


def test_node_selector_required_affinity_and_taints_choose_the_nodes() -> None:
    nodes = [
        node_view("edge-1", labels={"role": "edge"}),
        node_view("edge-2", labels={"role": "edge", "gpu": "yes"}),
        node_view("core", labels={"role": "core"}),
    ]
    cluster = Cluster(nodes)
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]}}}  # fmt: skip
    cluster.add("daemonsets", make_ds(nodeSelector={"role": "edge"}, affinity=affinity))
    cluster.round()
    assert placed(cluster) == {"edge-1": 1}
    assert status(cluster).desired_number_scheduled == 1
    # a NoSchedule taint keeps new pods out but lets the running one stay; NoExecute removes it
    taint = Taint(key="maintenance", effect="NoSchedule")
    cluster.nodes["edge-1"] = node_view("edge-1", labels={"role": "edge"},
                                        spec=NodeSpec(name="edge-1", taints=[taint]))  # fmt: skip
    assert not [c for c in cluster.round(NOW + 1) if isinstance(c, TerminatePod)]
    evict = Taint(key="maintenance", effect="NoExecute")
    cluster.nodes["edge-1"] = node_view("edge-1", labels={"role": "edge"},
                                        spec=NodeSpec(name="edge-1", taints=[evict]))  # fmt: skip
    assert [c.pod.node_name for c in cluster.round(NOW + 2) if isinstance(c, TerminatePod)] == ["edge-1"]
    # relabelled away from the selector: the pod goes
    cluster = Cluster([node_view("edge-1", labels={"role": "edge"})])
    cluster.add("daemonsets", make_ds(nodeSelector={"role": "edge"}))
    cluster.round()
    cluster.nodes["edge-1"] = node_view("edge-1", labels={"role": "core"})
    [removed] = [c for c in cluster.round(NOW + 1) if isinstance(c, TerminatePod)]
    assert "node selector" in removed.reason


def test_tolerations_let_daemon_pods_onto_tainted_nodes() -> None:
    taint = Taint(key="dedicated", value="infra", effect="NoSchedule")
    cluster = Cluster([node_view("a", spec=NodeSpec(name="a", taints=[taint])), node_view("b")])
    cluster.add("daemonsets", make_ds())
    cluster.round()
    assert placed(cluster) == {"b": 1}
    cluster = Cluster([node_view("a", spec=NodeSpec(name="a", taints=[taint])), node_view("b")])
    toleration = {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}
    cluster.add("daemonsets", make_ds(tolerations=[toleration]))
    cluster.round()
    assert placed(cluster) == {"a": 1, "b": 1}


@pytest.mark.parametrize("draining", [False, True])
def test_cordoned_and_draining_nodes_keep_and_get_daemon_pods(draining: bool) -> None:
    spec = NodeSpec(name="a", unschedulable=True, draining=draining)
    cluster = Cluster([node_view("a", spec=spec), node_view("b")])
    cluster.add("daemonsets", make_ds())
    cluster.round()
    assert placed(cluster) == {"a": 1, "b": 1}
    assert all(p.node_name for p in cluster.owned("ds-uid"))
    run_ready(cluster)
    assert not [c for c in cluster.round(NOW + 1) if isinstance(c, TerminatePod)]


def test_a_daemon_pod_that_does_not_fit_stays_pending_on_its_node_with_the_reason() -> None:
    cluster = Cluster([node_view("a", cpu=50), node_view("b")])
    cluster.add("daemonsets", make_ds())
    cluster.round()
    pending = [p for p in cluster.owned("ds-uid") if not p.node_name]
    assert [p.required_node for p in pending] == ["a"]
    assert pending[0].scheduling is not None
    assert pending[0].scheduling.message == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector."
    )
    assert not [c for c in cluster.round(NOW + 1) if isinstance(c, CreatePod)]  # no second one


def updated(cluster: Cluster, **kwargs: Any) -> None:
    cluster.add("daemonsets", make_ds(**kwargs))


def test_rolling_update_replaces_one_node_at_a_time_by_default() -> None:
    cluster = Cluster([node_view(n) for n in "abcd"])
    cluster.add("daemonsets", make_ds())
    cluster.round()
    run_ready(cluster)
    updated(cluster, image="agent:v2")
    now = NOW + 1
    for _ in range(12):
        commands = cluster.round(now)
        assert len([c for c in commands if isinstance(c, TerminatePod)]) <= 1
        cluster.stop_terminating()
        run_ready(cluster, now)
        live = cluster.owned("ds-uid")
        # never more than one node without an available pod
        assert len([p for p in live if cluster.pod_status.get(p.key) is None]) <= 1
        now += 1
    images = sorted(p.spec.containers[0].image for p in cluster.owned("ds-uid"))
    assert images == ["agent:v2"] * 4
    assert status(cluster).updated_number_scheduled == 4


def test_max_unavailable_two_replaces_two_at_once() -> None:
    cluster = Cluster([node_view(n) for n in "abcd"])
    cluster.add("daemonsets", make_ds())
    cluster.round()
    run_ready(cluster)
    updated(
        cluster, image="agent:v2", strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}
    )
    commands = cluster.round(NOW + 1)
    assert len([c for c in commands if isinstance(c, TerminatePod)]) == 2


def test_max_surge_starts_the_new_pod_beside_the_old_one() -> None:
    cluster = Cluster([node_view(n) for n in "ab"])
    cluster.add("daemonsets", make_ds())
    cluster.round()
    run_ready(cluster)
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    updated(cluster, image="agent:v2", strategy=strategy)
    commands = cluster.round(NOW + 1)
    [new] = [c.pod for c in commands if isinstance(c, CreatePod)]
    assert not [c for c in commands if isinstance(c, TerminatePod)]
    assert placed(cluster) == {new.node_name: 2, ("b" if new.node_name == "a" else "a"): 1}
    cluster.report(new, "Running", ready=True)
    commands = cluster.round(NOW + 2)
    [old] = [c.pod for c in commands if isinstance(c, TerminatePod)]
    assert old.node_name == new.node_name and old.spec.containers[0].image == "agent:v1"


def test_on_delete_replaces_only_pods_deleted_by_hand() -> None:
    cluster = Cluster([node_view(n) for n in "ab"])
    cluster.add("daemonsets", make_ds(strategy={"type": "OnDelete"}))
    cluster.round()
    run_ready(cluster)
    updated(cluster, image="agent:v2", strategy={"type": "OnDelete"})
    assert not [c for c in cluster.round(NOW + 1) if isinstance(c, TerminatePod | CreatePod)]
    victim = cluster.owned("ds-uid")[0]
    del cluster.pods[victim.key]
    [created] = [c.pod for c in cluster.round(NOW + 2) if isinstance(c, CreatePod)]
    assert created.node_name == victim.node_name and created.spec.containers[0].image == "agent:v2"


def test_a_deleted_daemonset_takes_its_pods_and_status_with_it() -> None:
    cluster = Cluster([node_view("a")])
    cluster.add("daemonsets", make_ds())
    cluster.round()
    cluster.objects["daemonsets"].clear()
    commands = cluster.round(NOW + 1)
    assert [c.reason for c in commands if isinstance(c, TerminatePod)] == ["its daemonset was deleted"]
    assert status(cluster) is None


def test_bad_daemonsets_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidManifest) as caught:
        validate_documents(parse_documents(ds_manifest(restartPolicy="Never"), "t"))
    assert any("spec.template.spec.restartPolicy" in p for p in caught.value.problems)
    text = ds_manifest().replace("app: agent\n  template", "app: other\n  template")
    with pytest.raises(InvalidManifest) as caught:
        validate_documents(parse_documents(text, "t"))
    assert any("spec.template.metadata.labels" in p for p in caught.value.problems)


def test_only_pods_tolerating_the_cordon_go_to_a_cordoned_node_and_only_daemon_pods_to_a_draining_one() -> (
    None
):
    from shoal.actors.scheduler.filters import UNSCHEDULABLE, admits
    from shoal.models.scheduling import Toleration

    spec = make_ds().spec.template.spec
    tolerant = spec.model_copy(
        update={"tolerations": [Toleration(key="node.kubernetes.io/unschedulable", operator="Exists")]}
    )
    assert admits(spec, True, False, False) is None
    assert admits(spec, False, False, False) == UNSCHEDULABLE
    assert admits(tolerant, False, False, False) is None
    assert admits(tolerant, False, True, False) == UNSCHEDULABLE  # being moved off: not back on
    assert admits(tolerant, False, True, True) is None
