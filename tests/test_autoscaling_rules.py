"""Autoscaling decisions without servers: HPA manifests, the replica calculator, behavior."""

from __future__ import annotations

import pytest
import yaml

from shoal.actors.autoscaler.behavior import normalize
from shoal.actors.autoscaler.evaluate import Backlog, evaluate, next_status
from shoal.actors.autoscaler.recommend import TargetPod, external_replicas, resource_replicas
from shoal.actors.node.metrics import UsageRates
from shoal.manifests.files import parse_documents
from shoal.manifests.validate import validate_documents
from shoal.models.autoscaling import (
    HorizontalPodAutoscaler,
    HPASpec,
    Recommendation,
    ScaleChange,
)
from shoal.models.pod import Pod, PodMeta
from shoal.models.workloads import Deployment
from shoal.runtime.memory import MemoryRuntime
from tests.harness import backlog_metric, deployment, utilization_metric
from tests.test_manifests import problems_of


def hpa_text(**spec: object) -> str:
    body = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 10,
        "metrics": [utilization_metric("cpu", 50)],
    }
    body.update(spec)
    body = {k: v for k, v in body.items() if v is not None}
    return yaml.safe_dump(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": body,
        }
    )


def hpa(**spec: object) -> HorizontalPodAutoscaler:
    objects, _ = validate_documents(parse_documents(hpa_text(**spec), "hpa.yaml"))
    model = objects[0].model
    assert isinstance(model, HorizontalPodAutoscaler)
    return model


PENDING = backlog_metric("JOBS", "w", "5")


# -- manifests ----------------------------------------------------------------------------------


def test_a_valid_hpa_gets_kubernetes_defaults() -> None:
    model = hpa(metrics=None, minReplicas=None)
    assert model.spec.min_replicas == 1
    assert [m.label for m in model.spec.metrics] == ["cpu"]
    assert model.spec.metrics[0].target.amount == 80
    assert model.spec.behavior.down().stabilization_window_seconds == 300
    assert model.spec.behavior.up().stabilization_window_seconds == 0
    assert [(p.type, p.value, p.period_seconds) for p in model.spec.behavior.up().policies or []] == [
        ("Pods", 4, 15),
        ("Percent", 100, 15),
    ]


def resource(name: str, kind: str, **target: object) -> list[dict[str, object]]:
    return [{"type": "Resource", "resource": {"name": name, "target": {"type": kind, **target}}}]


NO_CONSUMER = {"name": "jetstream_consumer_pending", "selector": {"matchLabels": {"stream": "JOBS"}}}


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        ({"scaleTargetRef": None}, "spec.scaleTargetRef", "is required"),
        (
            {"minReplicas": 5, "maxReplicas": 2},
            "spec",
            "minReplicas (5) must not be greater than maxReplicas (2)",
        ),
        ({"metrics": [{"type": "Pods", "pods": {}}]}, "spec.metrics[0].type", "'Resource' or 'External'"),
        (
            {"metrics": resource("cpu", "Utilization", averageUtilization=0)},
            "spec.metrics[0].resource.target.averageUtilization",
            "must be >= 1",
        ),
        (
            {"metrics": resource("memory", "AverageValue", averageValue="0")},
            "spec.metrics[0].resource.target",
            "averageValue must be greater than 0",
        ),
        (
            {"metrics": resource("gpu", "Utilization", averageUtilization=5)},
            "spec.metrics[0].resource.name",
            "'cpu' or 'memory'",
        ),
        ({"metrics": [{"type": "Resource"}]}, "spec.metrics[0]", "needs the resource field"),
        ({"minReplicas": 0}, "spec", "minReplicas 0 needs an External metric"),
        ({"maxReplicas": None}, "spec.maxReplicas", "is required"),
        (
            {"metrics": [{**PENDING, "external": {**PENDING["external"], "metric": NO_CONSUMER}}]},
            "spec.metrics[0].external.metric",
            "needs consumer",
        ),
    ],
)
def test_each_invalid_hpa_is_refused_naming_the_field(spec: dict[str, object], path: str, words: str) -> None:
    problems = problems_of(hpa_text(**spec))
    assert len(problems) == 1, problems
    assert f"{path}:" in problems[0] and words in problems[0], problems[0]


def test_scale_to_zero_is_allowed_with_a_backlog_metric() -> None:
    model = hpa(minReplicas=0, metrics=[PENDING])
    assert model.spec.min_replicas == 0
    assert model.spec.metrics[0].label == "pending JOBS/w"


# -- the replica calculator ---------------------------------------------------------------------


def pods(*cpu: int | None, ready: bool = True, request: int = 100) -> list[TargetPod]:
    return [
        TargetPod(f"p{i}", ready, request, 64 << 20, c, 32 << 20 if c is not None else None)
        for i, c in enumerate(cpu)
    ]


def cpu_at(percent: int):  # type: ignore[no-untyped-def]
    return hpa(metrics=[utilization_metric("cpu", percent)]).spec.metrics[0].resource


def test_desired_is_current_times_metric_over_target_rounded_up() -> None:
    # 3 pods at 90% of their request against a 50% target: ceil(3 * 90 / 50) = 6
    result = resource_replicas(cpu_at(50), pods(90, 90, 90), current=3)
    assert result.replicas == 6 and result.current == pytest.approx(90)
    # at 20%: ceil(3 * 20 / 50) = 2
    assert resource_replicas(cpu_at(50), pods(20, 20, 20), current=3).replicas == 2


def test_changes_within_the_tolerance_do_nothing() -> None:
    assert resource_replicas(cpu_at(50), pods(54, 54), current=2).replicas == 2  # ratio 1.08
    assert resource_replicas(cpu_at(50), pods(46, 46), current=2).replicas == 2  # ratio 0.92
    assert resource_replicas(cpu_at(50), pods(56, 56), current=2).replicas == 3  # ratio 1.12


def test_pods_without_samples_damp_a_change_rather_than_cause_one() -> None:
    # Scaling down: the unmeasured pod counts as 100% of its request, so less is removed:
    # (10 + 10 + 100) / 3 = 40% against 50% asks for 3, where the two alone would ask for 1.
    unmeasured = TargetPod("new", True, 100, 1, None, None)
    assert resource_replicas(cpu_at(50), pods(10, 10), current=2).replicas == 1
    assert resource_replicas(cpu_at(50), [*pods(10, 10), unmeasured], current=3).replicas == 3
    # Scaling up: the unmeasured pod counts as 0, so fewer are added.
    measured = pods(100, 100)
    with_new = [*measured, unmeasured]
    assert resource_replicas(cpu_at(50), measured, current=2).replicas == 4
    assert resource_replicas(cpu_at(50), with_new, current=3).replicas == 4  # ceil(200/3/50 * 3)


def test_not_ready_pods_count_as_idle_when_scaling_up_on_cpu() -> None:
    starting = [TargetPod("s", False, 100, 1, 400, 1)]  # a starting pod's burst is not load
    assert resource_replicas(cpu_at(50), [*pods(100), *starting], current=2).replicas == 2


def test_average_value_targets_and_memory() -> None:
    source = (
        hpa(
            metrics=[
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "16Mi"},
                    },
                }
            ]
        )
        .spec.metrics[0]
        .resource
    )
    result = resource_replicas(source, pods(1, 1), current=2)  # 32Mi each against 16Mi
    assert result.replicas == 4
    assert result.current == 32 << 20


def test_backlog_asks_for_pending_over_per_replica_target_even_from_zero() -> None:
    source = hpa(minReplicas=0, metrics=[PENDING]).spec.metrics[0].external
    assert external_replicas(source, 23, current=0, ready=0).replicas == 5
    assert external_replicas(source, 0, current=0, ready=0).replicas == 0
    assert external_replicas(source, 0, current=3, ready=3).replicas == 0
    assert external_replicas(source, 16, current=3, ready=3).replicas == 3  # 16/15 within tolerance


# -- behavior -------------------------------------------------------------------------------------


def spec(**fields: object) -> HPASpec:
    return hpa(**fields).spec


def test_scale_up_is_limited_by_the_default_policies() -> None:
    # 4 pods or 100% per 15 s, whichever allows more: from 2, at most 4; from 10, at most 20.
    assert normalize(spec(maxReplicas=50), 2, 40, 1000.0, [], []).replicas == 6
    assert normalize(spec(maxReplicas=50), 10, 40, 1000.0, [], []).replicas == 20
    # changes already made in the period count against it: 4 added 5 s ago, so the period
    # started at 2 and allows 2 + 4 = 6 (Pods) or 2 * 2 = 4 (Percent): no more than 6
    recent = [ScaleChange(at=995.0, delta=4)]
    assert normalize(spec(maxReplicas=50), 6, 40, 1000.0, [], recent).replicas == 6
    # once the period is over, the policies allow again from the current count
    assert normalize(spec(maxReplicas=50), 6, 40, 1011.0, [], recent).replicas == 12


def test_scale_down_waits_for_the_stabilization_window() -> None:
    rules = {"scaleDown": {"stabilizationWindowSeconds": 60}}
    history = [Recommendation(at=950.0, replicas=5)]
    held = normalize(spec(behavior=rules), 5, 1, 1000.0, history, [])
    assert held.replicas == 5 and "stabilization" in held.reason
    later = normalize(
        spec(behavior=rules), 5, 1, 1011.0, [*history, Recommendation(at=1000.0, replicas=1)], []
    )
    assert later.replicas == 1


def test_min_and_max_bound_every_decision() -> None:
    assert normalize(spec(minReplicas=2, maxReplicas=4), 3, 100, 0.0, [], []).replicas == 4
    assert (
        normalize(
            spec(minReplicas=2, maxReplicas=4, behavior={"scaleDown": {"stabilizationWindowSeconds": 0}}),
            3,
            0,
            0.0,
            [],
            [],
        ).replicas
        == 2
    )
    assert normalize(spec(minReplicas=2, maxReplicas=4), 9, 9, 0.0, [], []).replicas == 4
    assert normalize(spec(minReplicas=2, maxReplicas=4), 1, 1, 0.0, [], []).replicas == 2


def test_disabled_and_min_select_policies() -> None:
    off = {"scaleDown": {"selectPolicy": "Disabled", "stabilizationWindowSeconds": 0}}
    assert normalize(spec(behavior=off), 5, 1, 0.0, [], []).replicas == 5
    gentle = {
        "scaleUp": {
            "selectPolicy": "Min",
            "policies": [
                {"type": "Pods", "value": 1, "periodSeconds": 60},
                {"type": "Percent", "value": 50, "periodSeconds": 60},
            ],
        }
    }
    assert normalize(spec(behavior=gentle), 4, 10, 0.0, [], []).replicas == 5


def test_an_evaluation_records_its_decision_and_readings() -> None:
    model = hpa(minReplicas=0, maxReplicas=3, metrics=[PENDING])
    model = model.model_copy(update={"metadata": model.metadata.model_copy(update={"uid": "u1"})})
    result = evaluate(model, 0, [], {("JOBS", "w"): Backlog(40.0)}, [], [], 100.0)
    assert (result.current, result.desired) == (0, 3)
    assert result.readings[0].shown_current == "40" and result.readings[0].replicas == 8
    status = next_status(model, None, result, 100.0)
    assert status.decisions[0].to_replicas == 3 and status.changes[0].delta == 3
    missing = evaluate(model, 2, [], {("JOBS", "w"): Backlog(None, "no consumer")}, [], [], 101.0)
    assert missing.desired == 2 and "no consumer" in missing.message


# -- metrics sampling -----------------------------------------------------------------------------


async def test_cpu_rates_come_from_two_readings_and_follow_the_load() -> None:
    clock = [1000.0]
    runtime = MemoryRuntime("n", clock=lambda: clock[0])
    template = Deployment.model_validate(yaml.safe_load(deployment("x", cpu="200m", memory="64Mi")))
    pod = Pod(metadata=PodMeta(name="x-1", uid="u"), spec=template.spec.template.spec)
    await runtime.start_pod(pod)
    rates = UsageRates()
    assert rates.pods(await runtime.usage()) == []  # one reading gives no rate yet
    runtime.set_load("default", "x-1", 2.0)
    clock[0] += 2.0
    (sample,) = rates.pods(await runtime.usage())
    assert sample.name == "x-1"
    assert sample.cpu_millis == 400  # twice its 200m request
    assert sample.memory_bytes == 128 << 20


def test_bounds_hold_and_scale_down_waits_when_a_metric_cannot_be_read() -> None:
    cpu_only = hpa(minReplicas=2, maxReplicas=4)
    assert evaluate(cpu_only, 0, [], {}, [], [], 0.0).desired == 2  # nothing to measure, min holds
    assert evaluate(cpu_only, 7, [], {}, [], [], 0.0).desired == 4
    both = hpa(
        maxReplicas=10,
        metrics=[*resource("cpu", "Utilization", averageUtilization=50), PENDING],
        behavior={"scaleDown": {"stabilizationWindowSeconds": 0}},
    )
    idle = pods(5, 5, 5, 5, 5, 5)
    unread = {("JOBS", "w"): Backlog(None, "timed out")}
    kept = evaluate(both, 6, idle, unread, [], [], 0.0)
    assert kept.desired == 6 and "cannot be read" in kept.message
    assert evaluate(both, 6, idle, {("JOBS", "w"): Backlog(0.0)}, [], [], 0.0).desired == 1


def test_pending_pods_are_set_aside() -> None:
    waiting = [TargetPod(f"w{i}", False, 100, 1, None, None, pending=True) for i in range(5)]
    # 5 pods at 10% against 50%, 5 more not started: 1 replica, as if the 5 were not there
    assert resource_replicas(cpu_at(50), [*pods(10, 10, 10, 10, 10), *waiting], current=10).replicas == 1


def test_a_metric_takes_exactly_one_source_and_policies_are_not_empty() -> None:
    mixed = [{**PENDING, "resource": resource("cpu", "Utilization", averageUtilization=5)[0]["resource"]}]
    (problem,) = problems_of(hpa_text(metrics=mixed))
    assert "spec.metrics[0]:" in problem and "only the external field" in problem
    (problem,) = problems_of(hpa_text(behavior={"scaleUp": {"policies": []}}))
    assert "spec.behavior.scaleUp.policies:" in problem


def test_a_backlog_value_target_from_zero_and_while_replicas_start() -> None:
    value = {**PENDING, "external": {**PENDING["external"], "target": {"type": "Value", "value": "10"}}}
    source = hpa(minReplicas=0, metrics=[value]).spec.metrics[0].external
    assert external_replicas(source, 25, current=0, ready=0).replicas == 3  # ceil(25 / 10)
    assert external_replicas(source, 25, current=3, ready=0).replicas == 3  # none Ready yet: keep
    assert external_replicas(source, 40, current=2, ready=2).replicas == 8  # ceil(2 * 40 / 10)
    assert external_replicas(source, 0, current=2, ready=0).replicas == 0
