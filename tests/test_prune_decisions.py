"""What apply --prune deletes: the labelled objects the files no longer name, and nothing Shoal
made itself."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.actors.api.prune import Candidate, ClaimTemplates, prune_namespaces, to_prune
from shoal.label_selectors import parse_selector
from shoal.models.statefulset import MADE_BY_STATEFULSET

SHOP = {"app": "shop"}


def obj(
    kind: str, name: str, namespace: str = "default", labels: dict[str, str] | None = None, **kw: Any
) -> Candidate:
    return Candidate(kind, namespace, name, SHOP if labels is None else labels, **kw)


APPLIED = {("Deployment", "default", "web"), ("Service", "default", "web")}
DB = ClaimTemplates("default", "db", ("data",))


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ([obj("Deployment", "web"), obj("Service", "web")], []),  # both still in the files
        ([obj("Deployment", "old")], ["Deployment/default/old"]),
        ([obj("ConfigMap", "old", labels={"app": "blog"})], []),  # another set
        ([obj("ConfigMap", "old", labels={})], []),
        ([obj("Deployment", "old", namespace="other")], []),  # a namespace the apply did not touch
        ([obj("Pod", "debug")], ["Pod/default/debug"]),  # a bare pod of the set
        ([obj("Pod", "web-abc12", owned=True)], []),  # a deployment's pod
        ([obj("Job", "nightly-1", owned=True)], []),  # a CronJob's Job
        ([obj("PersistentVolumeClaim", "data-db-0")], []),  # a StatefulSet's claim, by its name
        ([obj("PersistentVolumeClaim", "data-db-x")], ["PersistentVolumeClaim/default/data-db-x"]),
        ([obj("PersistentVolumeClaim", "data-gone-0", annotations={MADE_BY_STATEFULSET: "gone"})], []),
        ([obj("PersistentVolumeClaim", "scratch")], ["PersistentVolumeClaim/default/scratch"]),
        ([obj("Namespace", "default", namespace="")], []),  # a system namespace
        ([obj("Namespace", "shop-old", namespace="")], ["Namespace//shop-old"]),
        ([obj("PriorityClass", "shop-high", namespace="")], ["PriorityClass//shop-high"]),
        (
            [obj("Namespace", "shop-old", namespace=""), obj("Service", "old"), obj("ConfigMap", "a")],
            ["ConfigMap/default/a", "Service/default/old", "Namespace//shop-old"],  # namespaces last
        ),
    ],
)
def test_what_a_prune_deletes(stored: list[Candidate], expected: list[str]) -> None:
    chosen = to_prune(stored, APPLIED, parse_selector("app=shop"), {"default"}, [DB])
    assert [f"{o.kind}/{o.namespace}/{o.name}" for o in chosen] == expected


def test_a_bare_pod_of_the_set_is_pruned_and_a_namespace_written_into_is_not() -> None:
    applied = {("Deployment", "shop", "web")}
    stored = [obj("Pod", "debug", namespace="shop"), obj("Namespace", "shop", namespace="")]
    chosen = to_prune(stored, applied, parse_selector("app=shop"), {"shop"})
    assert [(o.kind, o.name) for o in chosen] == [("Pod", "debug")]


@pytest.mark.parametrize(
    ("applied", "expected"),
    [
        ([("Deployment", True, "shop"), ("Service", True, "shop")], {"shop"}),
        ([("Deployment", True, "a"), ("Namespace", False, ""), ("ConfigMap", True, "b")], {"a", "b"}),
        ([("Namespace", False, ""), ("PriorityClass", False, "")], {"default"}),  # as kubectl: -n's
    ],
)
def test_the_namespaces_a_prune_looks_in(applied: list[tuple[str, bool, str]], expected: set[str]) -> None:
    assert prune_namespaces(applied) == expected
