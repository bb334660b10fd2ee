"""Each placement rule, and the placer's choices, on hand-built nodes: no servers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from shoal.actors.scheduler import filters
from shoal.actors.scheduler.placement import NodeState, Placer, PodClass, Resident
from shoal.models.scheduling import NodeSelector, SelectorRequirement, Taint, Toleration
from shoal.models.workloads import PodSpec

GI = 2**30
ONE_PER_HOST = {
    "podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "a"}}, "topologyKey": "kubernetes.io/hostname"}
        ]
    }
}


def spec(**fields: Any) -> PodSpec:
    base: dict[str, Any] = {
        "containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
        ]
    }
    return PodSpec.model_validate(base | fields)


def node(name: str, cpu: int = 4000, memory: int = 8 * GI, **fields: Any) -> NodeState:
    labels = {"kubernetes.io/hostname": name, **fields.pop("labels", {})}
    return NodeState(
        name,
        labels,
        fields.pop("taints", []),
        fields.pop("ready", True),
        fields.pop("schedulable", True),
        cpu,
        memory,
        **fields,
    )


def place(
    nodes: list[NodeState],
    pod_spec: PodSpec,
    count: int = 1,
    labels: dict[str, str] | None = None,
    strategy: str = "spread",
    priority: int = 0,
    preempts: bool = False,
):  # type: ignore[no-untyped-def]
    placer = Placer({n.name: n for n in nodes}, strategy)  # type: ignore[arg-type]
    cls = PodClass("default", labels or {"app": "a"}, pod_spec, priority, preempts)
    run = placer.run_for("class", cls)
    return [run.place(f"default.p{i}", float(i)) for i in range(count)]


# -- single rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", ["a", "b"], {"k": "a"}, True),
        ("In", ["a"], {"k": "c"}, False),
        ("In", ["a"], {}, False),
        ("NotIn", ["a"], {"k": "b"}, True),
        ("NotIn", ["a"], {}, True),
        ("NotIn", ["a"], {"k": "a"}, False),
        ("Exists", [], {"k": ""}, True),
        ("Exists", [], {}, False),
        ("DoesNotExist", [], {}, True),
        ("DoesNotExist", [], {"k": "x"}, False),
        ("Gt", ["3"], {"k": "4"}, True),
        ("Lt", ["3"], {"k": "4"}, False),
    ],
)
def test_selector_operators(operator: str, values: list[str], labels: dict[str, str], expected: bool) -> None:
    requirement = SelectorRequirement(key="k", operator=operator, values=values)  # type: ignore[arg-type]
    assert requirement.matches(labels) is expected


def test_node_selector_terms_are_ored_and_expressions_anded() -> None:
    selector = NodeSelector.model_validate(
        {"nodeSelectorTerms": [
            {"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]}, {"key": "gpu", "operator": "Exists"}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
        ]}
    )  # fmt: skip
    assert selector.matches({"zone": "a", "gpu": "1"})
    assert not selector.matches({"zone": "a"})
    assert selector.matches({"zone": "b"})


def test_tolerations() -> None:
    taint = Taint(key="dedicated", value="gpu", effect="NoSchedule")
    assert Toleration(key="dedicated", value="gpu").tolerates(taint)
    assert Toleration(key="dedicated", operator="Exists").tolerates(taint)
    assert Toleration(operator="Exists").tolerates(taint)
    assert not Toleration(key="dedicated", value="cpu").tolerates(taint)
    assert not Toleration(key="dedicated", operator="Exists", effect="NoExecute").tolerates(taint)


def test_resource_scores_for_each_strategy() -> None:
    empty = filters.resource_score("spread", 1000, GI, 0, 0, 4000, 4 * GI)
    busy = filters.resource_score("spread", 1000, GI, 2000, 2 * GI, 4000, 4 * GI)
    assert empty == 0.75 and busy == 0.25
    assert filters.resource_score("binpack", 1000, GI, 2000, 2 * GI, 4000, 4 * GI) == 0.75


# -- the placer -----------------------------------------------------------------------------


def test_spread_levels_nodes_and_binpack_fills_one_first() -> None:
    spread = place([node("a"), node("b"), node("c")], spec(), count=6)
    assert Counter(d.node for d in spread) == {"a": 2, "b": 2, "c": 2}
    packed = place(
        [node("a", cpu=300), node("b", cpu=300), node("c", cpu=300)], spec(), count=6, strategy="binpack"
    )
    assert [d.node for d in packed] == ["a", "a", "a", "b", "b", "b"]


def test_node_selector_and_required_affinity_filter_nodes() -> None:
    nodes = [node("a", labels={"disk": "ssd"}), node("b", labels={"disk": "hdd"})]
    assert {d.node for d in place(nodes, spec(nodeSelector={"disk": "ssd"}), count=3)} == {"a"}
    not_ssd = {"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}
    affinity = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [not_ssd]}}
    }
    assert {d.node for d in place(nodes, spec(affinity=affinity), count=3)} == {"b"}
    [none] = place(nodes, spec(nodeSelector={"disk": "nvme"}))
    assert none.node is None
    assert none.message == "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."


def test_preferred_node_affinity_wins_over_spreading() -> None:
    z2 = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}
    affinity = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "preference": z2}]
        }
    }
    nodes = [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})]
    assert [d.node for d in place(nodes, spec(affinity=affinity), count=3)] == ["b", "b", "b"]


def test_taints_keep_out_pods_without_tolerations() -> None:
    tainted = node("gpu", taints=[Taint(key="dedicated", value="gpu", effect="NoSchedule")])
    nodes = [tainted, node("plain", cpu=200)]
    decisions = place(nodes, spec(), count=3)
    assert [d.node for d in decisions] == ["plain", "plain", None]
    assert (
        "1 node(s) had untolerated taint(s)" in decisions[2].message
        and "1 Insufficient cpu" in decisions[2].message
    )
    tolerant = spec(
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    )
    assert "gpu" in {d.node for d in place([tainted, node("plain")], tolerant, count=4)}


def test_prefer_no_schedule_is_avoided_while_there_is_room_elsewhere() -> None:
    soft = node("soft", taints=[Taint(key="spot", effect="PreferNoSchedule")])
    small = node("small", cpu=200)
    assert [d.node for d in place([soft, small], spec(), count=3)] == ["small", "small", "soft"]


def test_max_pods_per_node() -> None:
    decisions = place([node("a", max_pods=2)], spec(), count=3)
    assert [d.node for d in decisions] == ["a", "a", None]
    assert decisions[2].message == "0/1 nodes are available: 1 Too many pods."


def test_required_anti_affinity_puts_one_pod_per_host() -> None:
    anti = ONE_PER_HOST
    decisions = place([node("a"), node("b"), node("c")], spec(affinity=anti), count=4)
    assert sorted(d.node for d in decisions if d.node) == ["a", "b", "c"]
    assert decisions[3].message == "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."


def test_anti_affinity_counts_pods_already_there() -> None:
    busy = node("busy")
    busy.add(Resident("default.x", "default", {"app": "a"}, 0, 100, 2**20, 0.0))
    anti = ONE_PER_HOST
    assert [d.node for d in place([busy, node("free")], spec(affinity=anti))] == ["free"]


def test_topology_spread_keeps_max_skew_exactly() -> None:
    zones = [node(f"n{i}", labels={"zone": f"z{i % 3}"}, cpu=100_000, memory=100 * GI) for i in range(7)]
    constraint = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                  "labelSelector": {"matchLabels": {"app": "a"}}}  # fmt: skip
    decisions = place(zones, spec(topologySpreadConstraints=[constraint]), count=50)
    per_zone = Counter(next(n.labels["zone"] for n in zones if n.name == d.node) for d in decisions)
    assert sum(per_zone.values()) == 50 and max(per_zone.values()) - min(per_zone.values()) <= 1


def test_topology_spread_leaves_pods_pending_rather_than_skewing() -> None:
    full = node("full", cpu=100, labels={"zone": "z1"})
    roomy = node("roomy", labels={"zone": "z2"})
    constraint = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                  "labelSelector": {"matchLabels": {"app": "a"}}}  # fmt: skip
    decisions = place([full, roomy], spec(topologySpreadConstraints=[constraint]), count=4)
    # z1 is full after one pod, so z2 may get only one more than z1
    assert [d.node for d in decisions] == ["full", "roomy", "roomy", None]
    assert "didn't match pod topology spread constraints" in (decisions[3].message or "")


def test_soft_spread_and_soft_anti_affinity_only_steer() -> None:
    soft = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "a"}}}  # fmt: skip
    nodes = [node("a", labels={"zone": "z1"}, cpu=300), node("b", labels={"zone": "z2"}, cpu=100)]
    decisions = place(nodes, spec(topologySpreadConstraints=[soft]), count=4)
    assert [d.node for d in decisions] == ["a", "b", "a", "a"]


def test_preemption_evicts_the_fewest_lowest_priority_pods() -> None:
    a, b = node("a", cpu=1000), node("b", cpu=1000)
    for i, priority in enumerate((10, 10, 10, 10, 10)):
        a.add(Resident(f"default.a{i}", "default", {}, priority, 200, 2**20, float(i)))
    for i, priority in enumerate((1, 1, 50, 50, 50)):
        b.add(Resident(f"default.b{i}", "default", {}, priority, 200, 2**20, float(i)))
    big = spec(containers=[{"name": "c", "image": "i", "resources": {"requests": {"cpu": "400m"}}}])
    [decision] = place([a, b], big, priority=100, preempts=True)
    assert decision.node is None and decision.nominated == "b"
    assert sorted(v.key for v in decision.victims) == ["default.b0", "default.b1"]
    # no preemption without the right, nor of pods that matter as much
    [decision] = place([a, b], big, priority=100, preempts=False)
    assert not decision.victims
    [decision] = place([a, b], big, priority=1, preempts=True)
    assert not decision.victims
