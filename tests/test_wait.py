"""``shoal wait``'s decisions, without servers: what --for means, when a condition holds."""

from __future__ import annotations

import pytest

from shoal.cli.wait import Wanted, condition_of, parse_duration, parse_for
from shoal.errors import InvalidManifest
from shoal.kinds import registry
from shoal.models.batch import JobCondition, JobStatus
from shoal.models.node import NodeCondition
from shoal.models.pod import PodStatus
from shoal.models.workloads import DeploymentStatus
from tests.harness import deployment
from tests.workload_sim import model_of


def kind(name: str):  # type: ignore[no-untyped-def]
    found = registry().resolve(name)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("text", "kind_name", "expected"),
    [
        ("delete", "pods", Wanted("delete")),
        ("condition=Ready", "pod", Wanted("Ready")),
        ("condition=ready", "po", Wanted("Ready")),
        ("condition=Ready=false", "nodes", Wanted("Ready", False)),
        ("condition=Available", "deploy", Wanted("Available")),
        ("condition=complete", "jobs", Wanted("Complete")),
    ],
)
def test_for_names_a_condition_of_the_kind_or_delete(text: str, kind_name: str, expected: Wanted) -> None:
    assert parse_for(text, kind(kind_name)) == expected


@pytest.mark.parametrize(
    ("text", "kind_name", "message"),
    [
        ("condition=Available", "pods", "pods have the conditions Ready"),
        ("condition=Ready", "statefulsets", "only --for=delete"),
        ("jsonpath={.status}", "pods", "use --for=condition=NAME or --for=delete"),
        ("condition=Ready=maybe", "pods", "true or false"),
    ],
)
def test_a_for_that_cannot_hold_is_refused_in_one_line(text: str, kind_name: str, message: str) -> None:
    with pytest.raises(InvalidManifest, match=message):
        parse_for(text, kind(kind_name))


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("12", 12), ("1.5s", 1.5)]
)
def test_durations_read_as_kubectl_reads_them(text: str, seconds: float) -> None:
    assert parse_duration(text, "--timeout") == seconds


def test_conditions_hold_only_for_the_object_they_were_reported_for() -> None:
    web = model_of(deployment("web", replicas=2), uid="d1")
    status = DeploymentStatus(
        namespace="default", name="web", uid="d1", observed_generation=1, available_replicas=2
    )
    assert condition_of("Deployment", "Available", web, status)
    assert not condition_of(
        "Deployment", "Available", web, status.model_copy(update={"available_replicas": 1})
    )
    assert not condition_of("Deployment", "Available", web, status.model_copy(update={"uid": "old"}))
    assert not condition_of(
        "Deployment", "Available", web, status.model_copy(update={"observed_generation": 0})
    )
    assert not condition_of("Deployment", "Progressing", web, status)
    assert condition_of("Deployment", "Progressing", web, status.model_copy(update={"progressing": "True"}))

    class Meta:
        uid = "p1"

    class Pod:
        metadata = Meta()

    ready = PodStatus(namespace="default", name="p", uid="p1", node_name="n", phase="Running", ready=True)
    assert condition_of("Pod", "Ready", Pod(), ready)
    assert not condition_of("Pod", "Ready", Pod(), ready.model_copy(update={"ready": False}))
    assert not condition_of("Pod", "Ready", Pod(), ready.model_copy(update={"uid": "earlier-pod"}))
    assert not condition_of("Pod", "Ready", Pod(), None)
    assert condition_of("Node", "Ready", None, NodeCondition(node="n", ready=True, since=0))

    class Job:
        metadata = Meta()

    done = JobStatus(
        namespace="default", name="j", uid="p1", conditions=[JobCondition(type="Complete", status="True")]
    )
    assert condition_of("Job", "Complete", Job(), done)
    assert not condition_of("Job", "Failed", Job(), done)
