"""StatefulSets, decided without servers: ordered and parallel creation, claims per ordinal,
scale-down from the top, failed pods made again under their names, rolling updates with a
partition, OnDelete (``tests/workload_sim.py`` plays the nodes)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shoal.bus import kv
from shoal.bus.codec import decode, encode
from shoal.errors import InvalidManifest
from shoal.manifests.files import parse_documents
from shoal.manifests.validate import validate_documents
from shoal.models.statefulset import POD_INDEX_LABEL, POD_NAME_LABEL, StatefulSetStatus
from tests.workload_sim import NOW, Cluster, model_of, node_view

UID = "sts-uid"


def sts_manifest(*, replicas: int = 3, image: str = "db:v1", claims: bool = True, **spec: Any) -> str:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}] if claims else [],
                        }
                    ]
                },
            },
            **spec,
        },
    }
    if claims:
        body["spec"]["volumeClaimTemplates"] = [
            {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
        ]
    return yaml.safe_dump(body)


def cluster_with(**kwargs: Any) -> Cluster:
    cluster = Cluster([node_view("a"), node_view("b")])
    cluster.add("statefulsets", model_of(sts_manifest(**kwargs), uid=UID))
    return cluster


def names(cluster: Cluster) -> list[str]:
    return [p.metadata.name for p in cluster.owned(UID) if not p.terminating]


def ready_all(cluster: Cluster) -> None:
    """Every placed pod reports Running and Ready."""
    for pod in cluster.owned(UID):
        if pod.node_name and not pod.terminating:
            cluster.report(pod, "Running", ready=True)


def settle(cluster: Cluster, rounds: int = 10) -> None:
    """Rounds with every pod turning Ready and every terminating pod gone, until nothing changes."""
    for _ in range(rounds):
        ready_all(cluster)
        cluster.stop_terminating()
        if not cluster.round():
            return


def status(cluster: Cluster) -> StatefulSetStatus:
    """The stored status, as a reader decodes it (the stored claim templates' mounts included)."""
    found = cluster.status(kv.STATEFULSET_STATUS.name, "default.db")
    return None if found is None else decode(encode(found), StatefulSetStatus)


def update(cluster: Cluster, **kwargs: Any) -> None:
    old = cluster.objects["statefulsets"]["default.db"].value
    new = model_of(sts_manifest(**kwargs), uid=UID)
    meta = new.metadata.model_copy(update={"generation": old.metadata.generation + 1})
    cluster.add("statefulsets", new.model_copy(update={"metadata": meta}))


def test_ordered_ready_makes_one_ordinal_at_a_time_each_with_its_claim_and_name() -> None:
    cluster = cluster_with()
    cluster.round()
    assert names(cluster) == ["db-0"]
    assert list(cluster.claims) == ["default.data-db-0"]
    [pod] = cluster.owned(UID)
    assert (pod.spec.hostname, pod.spec.subdomain) == ("db-0", "db")
    assert pod.metadata.labels[POD_NAME_LABEL] == "db-0" and pod.metadata.labels[POD_INDEX_LABEL] == "0"
    assert pod.spec.claims() == {"data-db-0"}
    assert pod.node_name  # placed in the same round as its claim was made
    cluster.round()
    assert names(cluster) == ["db-0"]  # db-0 is not Ready: nothing more
    cluster.report(pod, "Running", ready=False)
    cluster.round()
    assert names(cluster) == ["db-0"]
    cluster.report(pod, "Running", ready=True)
    cluster.round()
    assert names(cluster) == ["db-0", "db-1"]
    settle(cluster)
    assert names(cluster) == ["db-0", "db-1", "db-2"]
    assert sorted(cluster.claims) == ["default.data-db-0", "default.data-db-1", "default.data-db-2"]
    counts = status(cluster)
    assert (counts.replicas, counts.ready_replicas, counts.updated_replicas) == (3, 3, 3)
    assert counts.current_revision == counts.update_revision


def test_parallel_makes_every_ordinal_at_once() -> None:
    cluster = cluster_with(podManagementPolicy="Parallel", claims=False)
    cluster.round()
    assert names(cluster) == ["db-0", "db-1", "db-2"]
    assert cluster.claims == {}


def test_scale_down_removes_the_highest_ordinal_first_and_keeps_its_claim() -> None:
    cluster = cluster_with(replicas=3)
    settle(cluster)
    update(cluster, replicas=1)
    cluster.round()
    assert names(cluster) == ["db-0", "db-1"]  # db-2 terminating, db-1 waits for it to be gone
    cluster.round()
    assert names(cluster) == ["db-0", "db-1"]
    settle(cluster)
    assert names(cluster) == ["db-0"]
    assert len(cluster.claims) == 3  # Retain: the claims outlive the scale-down
    update(cluster, replicas=2)
    settle(cluster)
    assert names(cluster) == ["db-0", "db-1"]
    assert len(cluster.claims) == 3  # db-1 came back to its own claim


def test_parallel_scale_down_removes_every_surplus_ordinal_at_once() -> None:
    cluster = cluster_with(replicas=3, podManagementPolicy="Parallel", claims=False)
    settle(cluster)
    update(cluster, replicas=1, podManagementPolicy="Parallel", claims=False)
    cluster.round()
    assert names(cluster) == ["db-0"]


def test_a_failed_pod_is_made_again_under_its_name_once_it_is_gone() -> None:
    cluster = cluster_with(replicas=2, claims=False)
    settle(cluster)
    failed = next(p for p in cluster.owned(UID) if p.metadata.name == "db-1")
    cluster.report(failed, "Failed")
    cluster.round()
    assert names(cluster) == ["db-0"]
    cluster.round()  # still terminating: its name is taken
    assert names(cluster) == ["db-0"]
    settle(cluster)
    [again] = [p for p in cluster.owned(UID) if p.metadata.name == "db-1"]
    assert again.metadata.uid != failed.metadata.uid


def test_rolling_update_replaces_from_the_highest_ordinal_one_ready_pod_at_a_time() -> None:
    cluster = cluster_with(replicas=3, claims=False)
    settle(cluster)
    update(cluster, replicas=3, claims=False, image="db:v2")
    replaced: list[str] = []
    for _ in range(20):
        for command in cluster.round():
            pod = getattr(command, "pod", None)
            if pod is not None and type(command).__name__ == "TerminatePod":
                replaced.append(pod.metadata.name)
        terminating = [p for p in cluster.owned(UID) if p.terminating]
        assert len(terminating) <= 1
        ready_all(cluster)
        cluster.stop_terminating()
    assert replaced == ["db-2", "db-1", "db-0"]
    images = {p.metadata.name: p.spec.containers[0].image for p in cluster.owned(UID)}
    assert images == {"db-0": "db:v2", "db-1": "db:v2", "db-2": "db:v2"}
    assert status(cluster).current_revision == status(cluster).update_revision


def test_a_partition_updates_only_the_ordinals_at_or_above_it_and_remakes_those_below_as_they_were() -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    cluster = cluster_with(replicas=3, claims=False, updateStrategy=strategy)
    settle(cluster)
    update(cluster, replicas=3, claims=False, image="db:v2", updateStrategy=strategy)
    settle(cluster)
    images = {p.metadata.name: p.spec.containers[0].image for p in cluster.owned(UID)}
    assert images == {"db-0": "db:v1", "db-1": "db:v1", "db-2": "db:v2"}
    counts = status(cluster)
    assert (counts.current_replicas, counts.updated_replicas) == (2, 1)
    assert counts.current_revision != counts.update_revision
    assert counts.current is not None and counts.current.template.spec.containers[0].image == "db:v1"
    # db-0 deleted by hand comes back from the template it had, not the new one
    db0 = next(p for p in cluster.owned(UID) if p.metadata.name == "db-0")
    del cluster.pods[db0.key]
    settle(cluster)
    images = {p.metadata.name: p.spec.containers[0].image for p in cluster.owned(UID)}
    assert images["db-0"] == "db:v1"


def test_on_delete_replaces_only_the_pods_deleted_by_hand() -> None:
    strategy = {"type": "OnDelete"}
    cluster = cluster_with(replicas=2, claims=False, updateStrategy=strategy)
    settle(cluster)
    update(cluster, replicas=2, claims=False, image="db:v2", updateStrategy=strategy)
    settle(cluster)
    assert {p.spec.containers[0].image for p in cluster.owned(UID)} == {"db:v1"}
    db1 = next(p for p in cluster.owned(UID) if p.metadata.name == "db-1")
    del cluster.pods[db1.key]
    settle(cluster)
    images = {p.metadata.name: p.spec.containers[0].image for p in cluster.owned(UID)}
    assert images == {"db-0": "db:v1", "db-1": "db:v2"}


def test_a_deleted_statefulset_loses_its_pods_and_status_but_not_its_claims() -> None:
    cluster = cluster_with(replicas=2)
    settle(cluster)
    del cluster.objects["statefulsets"]["default.db"]
    settle(cluster)
    assert cluster.owned(UID) == []
    assert status(cluster) is None
    assert len(cluster.claims) == 2


def test_ordinals_start_where_asked() -> None:
    cluster = cluster_with(replicas=2, claims=False, podManagementPolicy="Parallel", ordinals={"start": 5})
    cluster.round()
    assert names(cluster) == ["db-5", "db-6"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"}}, "whenScaled"),
        ({"podManagementPolicy": "Random"}, "podManagementPolicy"),
        ({"replicas": -1}, "replicas"),
    ],
)
def test_a_statefulset_shoal_cannot_honour_is_refused_naming_the_field(
    change: dict[str, Any], path: str
) -> None:
    body = yaml.safe_load(sts_manifest())
    body["spec"].update(change)
    with pytest.raises(InvalidManifest) as refused:
        validate_documents(parse_documents(yaml.safe_dump(body), "db.yaml"))
    assert path in str(refused.value)


def test_a_pod_template_that_does_not_restart_always_is_refused() -> None:
    body = yaml.safe_load(sts_manifest())
    body["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    with pytest.raises(InvalidManifest, match="restartPolicy"):
        validate_documents(parse_documents(yaml.safe_dump(body), "db.yaml"))


def test_nothing_changes_once_settled() -> None:
    cluster = cluster_with()
    settle(cluster)
    ready_all(cluster)
    assert cluster.round(NOW + 5) == []
