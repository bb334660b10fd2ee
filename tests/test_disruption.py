"""PodDisruptionBudgets, decided without servers: drains and rollouts keep every covered set at
its budget, say who waits, and leave scale-downs alone (``tests/workload_sim.py`` plays the nodes)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shoal.bus import kv
from shoal.errors import InvalidManifest
from shoal.manifests.files import parse_documents
from shoal.manifests.validate import validate_documents
from shoal.models.disruption import PodDisruptionBudgetStatus
from shoal.models.node import NodeSpec
from tests.workload_sim import Cluster, model_of, node_view

DEPLOYMENT_UID = "web-uid"


def deployment(replicas: int = 3, image: str = "web:v1", **strategy: Any) -> Any:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
            **({"strategy": {"type": "RollingUpdate", "rollingUpdate": strategy}} if strategy else {}),
        },
    }
    return model_of(yaml.safe_dump(body), uid=DEPLOYMENT_UID)


def pdb(**spec: Any) -> Any:
    body = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-pdb"},
        "spec": {"selector": {"matchLabels": {"app": spec.pop("app", "web")}}, **spec},
    }
    return model_of(yaml.safe_dump(body), uid="pdb-uid")


def draining(name: str) -> Any:
    return node_view(name, spec=NodeSpec(name=name, unschedulable=True, draining=True))


def ready_all(cluster: Cluster) -> None:
    for entry in list(cluster.pods.values()):
        pod = entry.value
        if pod.node_name and not pod.terminating:
            cluster.report(pod, "Running", ready=True)


def ready_count(cluster: Cluster, uid: str) -> int:
    return sum(
        1
        for pod in cluster.owned(uid)
        if not pod.terminating
        and pod.key in cluster.pod_status
        and cluster.pod_status[pod.key].value.ready
        and cluster.pod_status[pod.key].value.uid == pod.metadata.uid
    )


def budget(cluster: Cluster) -> PodDisruptionBudgetStatus:
    return cluster.status(kv.PDB_STATUS.name, "default.web-pdb")


def settle(cluster: Cluster, rounds: int = 12, *, check: Any = None) -> None:
    for _ in range(rounds):
        ready_all(cluster)
        cluster.stop_terminating()
        commands = cluster.round()
        if check is not None:
            check()
        if not commands:
            return


def test_a_drain_keeps_a_deployment_at_its_min_available_and_finishes() -> None:
    cluster = Cluster([node_view("a"), node_view("b"), node_view("c")])
    cluster.add("deployments", deployment(replicas=3))
    cluster.add("pdbs", pdb(minAvailable=3))
    settle(cluster)
    counts = budget(cluster)
    assert (counts.expected_pods, counts.current_healthy, counts.desired_healthy) == (3, 3, 3)
    assert counts.disruptions_allowed == 0
    drained = next(p.node_name for p in cluster.owned(DEPLOYMENT_UID))
    cluster.nodes[drained] = draining(drained)

    def never_below() -> None:
        assert ready_count(cluster, DEPLOYMENT_UID) >= 3

    settle(cluster, check=never_below)
    assert all(p.node_name != drained for p in cluster.owned(DEPLOYMENT_UID))
    assert len(cluster.live(DEPLOYMENT_UID)) == 3


def test_a_budget_allowing_no_disruption_keeps_a_statefulset_pod_on_a_draining_node_and_says_so() -> None:
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "main", "image": "db"}]},
            },
        },
    }
    cluster = Cluster([node_view("a"), node_view("b")])
    cluster.add("statefulsets", model_of(yaml.safe_dump(sts), uid="db-uid"))
    cluster.add("pdbs", pdb(app="db", maxUnavailable=0))
    settle(cluster)
    on_a = [p.metadata.name for p in cluster.owned("db-uid") if p.node_name == "a"]
    assert on_a
    cluster.nodes["a"] = draining("a")
    settle(cluster)
    assert [p.metadata.name for p in cluster.owned("db-uid") if p.node_name == "a"] == on_a
    assert budget(cluster).waiting == [f"default/{name}" for name in sorted(on_a)]
    # One disruption allowed: the pods leave one at a time, each made again elsewhere
    cluster.add("pdbs", pdb(app="db", maxUnavailable=1))

    def one_down_at_most() -> None:
        assert ready_count(cluster, "db-uid") >= 1

    settle(cluster, rounds=20, check=one_down_at_most)
    assert [p.node_name for p in cluster.owned("db-uid")] == ["b", "b"]
    assert budget(cluster).waiting == []


def test_a_rollout_waits_for_the_budget_and_goes_on_once_it_allows() -> None:
    cluster = Cluster([node_view("a")])
    cluster.add("deployments", deployment(replicas=3, maxSurge=0, maxUnavailable=1))
    cluster.add("pdbs", pdb(minAvailable=3))
    settle(cluster)
    cluster.add("deployments", deployment(replicas=3, image="web:v2", maxSurge=0, maxUnavailable=1))
    settle(cluster)
    images = {p.spec.containers[0].image for p in cluster.owned(DEPLOYMENT_UID)}
    assert images == {"web:v1"}  # no surge, and no pod may go: the rollout waits
    assert len(budget(cluster).waiting) == 1
    cluster.add("pdbs", pdb(minAvailable=2))

    def never_below_two() -> None:
        assert ready_count(cluster, DEPLOYMENT_UID) >= 2

    settle(cluster, rounds=20, check=never_below_two)
    assert {p.spec.containers[0].image for p in cluster.owned(DEPLOYMENT_UID)} == {"web:v2"}


def test_a_scale_down_is_no_disruption_and_does_not_wait() -> None:
    cluster = Cluster([node_view("a")])
    cluster.add("deployments", deployment(replicas=3))
    cluster.add("pdbs", pdb(minAvailable=3))
    settle(cluster)
    cluster.add("deployments", deployment(replicas=1))
    settle(cluster)
    assert len(cluster.live(DEPLOYMENT_UID)) == 1
    assert budget(cluster).expected_pods == 1


def test_percentages_count_the_replicas_the_owner_wants() -> None:
    cluster = Cluster([node_view("a")])
    cluster.add("deployments", deployment(replicas=4))
    cluster.add("pdbs", pdb(maxUnavailable="50%"))
    settle(cluster)
    counts = budget(cluster)
    assert (counts.expected_pods, counts.desired_healthy, counts.disruptions_allowed) == (4, 2, 2)
    cluster.add("pdbs", pdb(minAvailable="30%"))
    settle(cluster)
    assert budget(cluster).desired_healthy == 2  # 1.2 rounded up


def test_a_deleted_budget_loses_its_status() -> None:
    cluster = Cluster([node_view("a")])
    cluster.add("deployments", deployment(replicas=1))
    cluster.add("pdbs", pdb(minAvailable=1))
    settle(cluster)
    assert budget(cluster) is not None
    del cluster.objects["pdbs"]["default.web-pdb"]
    settle(cluster)
    assert budget(cluster) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"minAvailable": 1, "maxUnavailable": 1}, "cannot both be set"),
        ({}, "one of minAvailable or maxUnavailable"),
        ({"minAvailable": "150"}, "percentage"),
    ],
)
def test_a_budget_without_one_clear_limit_is_refused(spec: dict[str, Any], message: str) -> None:
    body = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "b"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, **spec},
    }
    with pytest.raises(InvalidManifest, match=message):
        validate_documents(parse_documents(yaml.safe_dump(body), "b.yaml"))
