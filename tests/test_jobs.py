"""Jobs, decided without servers: the Job model, ``jobs.reconcile`` and the planner's Job step,
round after round with a controlled clock (``tests/workload_sim.py`` plays the nodes)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml

from shoal.actors.scheduler import jobs
from shoal.actors.scheduler.commands import CreatePod, DeleteJob, TerminatePod
from shoal.bus import kv
from shoal.errors import InvalidManifest
from shoal.manifests.files import parse_documents
from shoal.manifests.validate import validate_documents
from shoal.models.batch import COMPLETION_INDEX, Job, JobStatus
from shoal.models.node import NodeSpec
from tests.workload_sim import NOW, Cluster, model_of, node_view

JOB_STATUS = kv.JOB_STATUS.name


def job_manifest(restart: str = "Never", **spec: Any) -> str:
    template = {
        "spec": {
            "restartPolicy": restart,
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "exit 0"]}],
        }
    }
    return yaml.safe_dump(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "work"},
            "spec": {**spec, "template": template},
        }
    )


def make_job(**spec: Any) -> Job:
    restart = spec.pop("restart", "Never")
    return model_of(job_manifest(restart, **spec), uid="job-uid")


def started(cluster: Cluster, job: Job, now: float = NOW) -> Cluster:
    cluster.add("jobs", job)
    cluster.round(now)
    return cluster


def status(cluster: Cluster) -> JobStatus:
    return cluster.status(JOB_STATUS)


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidManifest) as caught:
        validate_documents(parse_documents(text, "t"))
    return caught.value.problems


# -- the model ----------------------------------------------------------------------------------


def test_a_job_naming_neither_completions_nor_parallelism_runs_one_pod_once() -> None:
    job = make_job()
    assert (job.spec.completions, job.spec.parallelism, job.spec.backoff_limit) == (1, 1, 6)
    queue = make_job(parallelism=3)
    assert (queue.spec.completions, queue.spec.parallelism) == (None, 3)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"restart": "Always"}, "spec.template.spec.restartPolicy"),
        ({"completionMode": "Indexed", "parallelism": 2}, "completions is required"),
        ({"backoffLimit": -1}, "spec.backoffLimit"),
        ({"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds"),
        ({"completionMode": "Sometimes"}, "spec.completionMode"),
        ({"parallelism": -2}, "spec.parallelism"),
    ],
)
def test_bad_jobs_are_refused_naming_the_field(spec: dict[str, Any], expected: str) -> None:
    restart = spec.pop("restart", "Never")
    assert any(expected in p for p in problems(job_manifest(restart, **spec))), expected


def test_a_job_without_a_restart_policy_is_refused_as_kubernetes_does() -> None:
    text = job_manifest().replace("restartPolicy: Never\n", "")
    [problem] = problems(text)
    assert "spec.template.spec.restartPolicy" in problem and "Never" in problem and "OnFailure" in problem


# -- counting and parallelism -------------------------------------------------------------------


def test_completions_five_parallelism_two_runs_two_at_a_time_until_five_succeeded() -> None:
    cluster = started(Cluster(), make_job(completions=5, parallelism=2))
    now = NOW
    waves = 0
    while live := cluster.live("job-uid"):
        assert len(live) <= 2 and waves < 10
        waves += 1
        for pod in live:
            cluster.report(pod, "Succeeded", at=now)
        now += 1
        cluster.round(now)
    final = status(cluster)
    assert final.succeeded == 5 and final.failed == 0 and final.active == 0
    assert final.finished is not None and final.finished.type == "Complete"
    assert final.completion_time is not None and final.start_time == NOW
    succeeded = [p for p in cluster.owned("job-uid") if cluster.pod_status[p.key].value.phase == "Succeeded"]
    assert len(succeeded) == 5 == len(cluster.owned("job-uid"))  # finished pods are kept
    assert cluster.notes().count("Completed") == 1
    assert waves == 3  # 2 + 2 + 1


def test_job_pods_carry_the_job_labels_and_owner() -> None:
    cluster = started(Cluster(), make_job())
    [pod] = cluster.owned("job-uid")
    assert pod.metadata.owner is not None and pod.metadata.owner.kind == "Job"
    assert pod.metadata.name.startswith("work-") and pod.node_name == "a"
    assert pod.metadata.labels["batch.kubernetes.io/job-name"] == "work"
    assert pod.metadata.labels["batch.kubernetes.io/controller-uid"] == "job-uid"


def test_a_steady_job_writes_nothing_more() -> None:
    cluster = started(Cluster(), make_job(completions=2, parallelism=2))
    for pod in cluster.live("job-uid"):
        cluster.report(pod, "Running", ready=True)
    cluster.round(NOW + 1)
    assert cluster.round(NOW + 2) == []


def test_failed_pods_are_replaced_after_a_doubling_backoff_until_the_backoff_limit() -> None:
    cluster = started(Cluster(), make_job(backoffLimit=2))
    now = NOW
    created_at = []
    for _ in range(3):
        [pod] = cluster.live("job-uid")
        created_at.append(pod.metadata.creation_timestamp)
        cluster.report(pod, "Failed", at=now)
        commands = cluster.round(now)
        assert not [c for c in commands if isinstance(c, CreatePod)]  # backoff first
        if status(cluster).finished:
            break
        wake = commands.wake_keys[("Job", "default.work")]
        assert wake == now + jobs.backoff_delay(status(cluster).failures_after_success)
        now = wake
        cluster.round(now)
    final = status(cluster)
    assert final.failed == 3 and final.succeeded == 0
    assert final.finished is not None and final.finished.reason == "BackoffLimitExceeded"
    assert [b - a for a, b in itertools.pairwise(created_at)] == [10.0, 20.0]
    assert not cluster.live("job-uid") and len(cluster.owned("job-uid")) == 3
    assert cluster.round(now + 1000) == []  # nothing more is started


def test_with_on_failure_container_restarts_count_towards_the_backoff_limit() -> None:
    cluster = started(Cluster(), make_job(backoffLimit=3, restart="OnFailure"))
    [pod] = cluster.live("job-uid")
    cluster.report(pod, "Running", restarts=2)
    cluster.round(NOW + 1)
    assert status(cluster).finished is None
    cluster.report(pod, "Running", restarts=3)
    commands = cluster.round(NOW + 2)
    assert status(cluster).finished is not None and status(cluster).finished.reason == "BackoffLimitExceeded"
    assert [c.pod.metadata.name for c in commands if isinstance(c, TerminatePod)] == [pod.metadata.name]


def test_a_pod_that_vanishes_unfinished_counts_as_failed() -> None:
    cluster = started(Cluster(), make_job())
    [pod] = cluster.live("job-uid")
    del cluster.pods[pod.key]  # its node was lost, say
    cluster.round(NOW + 1)
    assert status(cluster).failed == 1 and status(cluster).active == 0
    cluster.round(NOW + 11)
    assert len(cluster.live("job-uid")) == 1


def test_active_deadline_fails_the_job_and_stops_its_pods() -> None:
    cluster = started(Cluster(), make_job(activeDeadlineSeconds=30, parallelism=2, completions=4))
    commands = cluster.log[-1]
    assert commands.wake_keys[("Job", "default.work")] == NOW + 30
    assert status(cluster).finished is None
    commands = cluster.round(NOW + 30)
    final = status(cluster)
    assert final.finished is not None and final.finished.reason == "DeadlineExceeded"
    assert len([c for c in commands if isinstance(c, TerminatePod)]) == 2
    assert "DeadlineExceeded" in cluster.notes()


def test_suspend_stops_the_pods_without_counting_failures_and_resume_starts_again() -> None:
    job = make_job(completions=3, parallelism=3, activeDeadlineSeconds=100)
    cluster = started(Cluster(), job)
    assert len(cluster.live("job-uid")) == 3
    cluster.add("jobs", job.model_copy(update={"spec": job.spec.model_copy(update={"suspend": True})}))
    cluster.round(NOW + 5)
    cluster.stop_terminating()
    cluster.round(NOW + 6)
    suspended = status(cluster)
    assert suspended.failed == 0 and suspended.active == 0 and suspended.start_time is None
    assert suspended.condition("Suspended") is not None
    cluster.add("jobs", job)
    cluster.round(NOW + 500)
    resumed = status(cluster)
    assert resumed.start_time == NOW + 500 and len(cluster.live("job-uid")) == 3
    assert resumed.condition("Suspended") is None and cluster.notes()[-1:] == ["Resumed"]


def test_a_job_created_suspended_starts_nothing() -> None:
    cluster = started(Cluster(), make_job(suspend=True))
    assert cluster.owned("job-uid") == [] and status(cluster).start_time is None


def test_ttl_after_finished_deletes_the_job_then_its_pods_go() -> None:
    cluster = started(Cluster(), make_job(ttlSecondsAfterFinished=60))
    [pod] = cluster.live("job-uid")
    cluster.report(pod, "Succeeded")
    commands = cluster.round(NOW + 1)
    assert commands.wake_keys[("Job", "default.work")] == NOW + 61
    assert not any(isinstance(c, DeleteJob) for c in cluster.round(NOW + 30))
    assert any(isinstance(c, DeleteJob) for c in cluster.round(NOW + 61))
    commands = cluster.round(NOW + 62)  # the Job is gone: its pod and status follow
    assert [c.reason for c in commands if isinstance(c, TerminatePod)] == ["its job was deleted"]
    assert status(cluster) is None


def test_a_work_queue_job_completes_once_one_pod_succeeded_and_none_runs() -> None:
    cluster = started(Cluster(), make_job(parallelism=3))
    first, second, third = cluster.live("job-uid")
    cluster.report(first, "Succeeded")
    cluster.round(NOW + 1)
    assert status(cluster).finished is None and len(cluster.live("job-uid")) == 2  # no new ones
    cluster.report(second, "Succeeded")
    cluster.report(third, "Succeeded")
    cluster.round(NOW + 2)
    assert status(cluster).finished is not None and status(cluster).succeeded == 3


def test_lower_parallelism_stops_the_surplus_without_counting_it() -> None:
    job = make_job(completions=10, parallelism=4)
    cluster = started(Cluster(), job)
    cluster.add("jobs", job.model_copy(update={"spec": job.spec.model_copy(update={"parallelism": 1})}))
    commands = cluster.round(NOW + 1)
    assert len([c for c in commands if isinstance(c, TerminatePod)]) == 3
    cluster.stop_terminating()
    cluster.round(NOW + 2)
    assert status(cluster).failed == 0 and status(cluster).active == 1


# -- Indexed ------------------------------------------------------------------------------------


def test_indexed_jobs_run_each_index_once_with_its_env_and_annotation() -> None:
    cluster = started(Cluster(), make_job(completions=3, parallelism=2, completionMode="Indexed"))
    pods = cluster.live("job-uid")
    assert sorted(p.metadata.annotations[COMPLETION_INDEX] for p in pods) == ["0", "1"]
    zero = next(p for p in pods if p.metadata.annotations[COMPLETION_INDEX] == "0")
    assert zero.metadata.name.startswith("work-0-") and zero.spec.hostname == "work-0"
    [env] = [e for e in zero.spec.containers[0].env if e.name == "JOB_COMPLETION_INDEX"]
    assert env.value_from is not None and env.value_from.field_ref is not None
    assert env.value_from.field_ref.field_path == f"metadata.annotations['{COMPLETION_INDEX}']"
    cluster.report(zero, "Succeeded")
    cluster.round(NOW + 1)
    assert status(cluster).completed_indexes == "0" and status(cluster).succeeded == 1
    assert sorted(p.metadata.annotations[COMPLETION_INDEX] for p in cluster.live("job-uid")) == ["1", "2"]
    one = next(p for p in cluster.live("job-uid") if p.metadata.annotations[COMPLETION_INDEX] == "1")
    cluster.report(one, "Failed")
    cluster.round(NOW + 2)
    cluster.round(NOW + 20)  # past the backoff: index 1 runs again
    assert sorted(p.metadata.annotations[COMPLETION_INDEX] for p in cluster.live("job-uid")) == ["1", "2"]
    for pod in cluster.live("job-uid"):
        cluster.report(pod, "Succeeded")
    cluster.round(NOW + 21)
    final = status(cluster)
    assert final.completed_indexes == "0-2" and final.succeeded == 3 and final.failed == 1
    assert final.finished is not None and final.finished.type == "Complete"


@pytest.mark.parametrize(
    ("indexes", "text"), [(set(), ""), ({0}, "0"), ({0, 1, 2, 5}, "0-2,5"), ({1, 3, 4, 7, 8, 9}, "1,3-4,7-9")]
)
def test_completed_indexes_are_written_as_kubernetes_writes_them(indexes: set[int], text: str) -> None:
    assert jobs.format_indexes(indexes) == text
    assert jobs.parse_indexes(text) == indexes


# -- drains -------------------------------------------------------------------------------------


def test_a_drain_moves_running_job_pods_counting_them_failed_and_removes_finished_ones() -> None:
    cluster = started(Cluster([node_view("a")]), make_job(completions=2, parallelism=2))
    done, running = cluster.live("job-uid")
    cluster.report(done, "Succeeded")
    cluster.report(running, "Running", ready=True)
    cluster.round(NOW + 1)
    cluster.nodes["a"] = node_view("a", spec=NodeSpec(name="a", unschedulable=True, draining=True))
    cluster.nodes["b"] = node_view("b")
    commands = cluster.round(NOW + 2)
    assert sorted(c.pod.metadata.name for c in commands if isinstance(c, TerminatePod)) == sorted(
        [done.metadata.name, running.metadata.name]
    )
    assert status(cluster).failed == 1 and status(cluster).succeeded == 1
    cluster.stop_terminating()
    cluster.round(NOW + 20)
    [replacement] = cluster.live("job-uid")
    assert replacement.node_name == "b"


@pytest.mark.parametrize("delay", [(1, 10.0), (2, 20.0), (3, 40.0), (6, 320.0), (7, 360.0), (30, 360.0)])
def test_the_pod_backoff_doubles_up_to_six_minutes(delay: tuple[int, float]) -> None:
    failures, seconds = delay
    assert jobs.backoff_delay(failures) == seconds


def failed_without_exit_code(cluster: Cluster, pod: Any) -> None:
    """The node saw the process gone before Podman knew its exit code."""
    cluster.report(pod, "Failed")
    entry = cluster.pod_status[pod.key]
    state = entry.value.container_statuses[0].state.model_copy(update={"exit_code": -1})
    containers = [entry.value.container_statuses[0].model_copy(update={"state": state})]
    cluster.pod_status[pod.key] = entry.__class__(
        pod.key, entry.value.model_copy(update={"container_statuses": containers}), entry.revision + 1
    )


def test_a_failure_reported_without_an_exit_code_waits_for_the_real_outcome() -> None:
    cluster = started(Cluster(), make_job())
    [pod] = cluster.live("job-uid")
    failed_without_exit_code(cluster, pod)
    commands = cluster.round(NOW + 1)
    assert status(cluster).failed == 0 and status(cluster).active == 1
    assert commands.wake_keys[("Job", "default.work")] == NOW + 1 + jobs.DOUBT_SECONDS
    cluster.report(pod, "Succeeded")  # what it really did
    cluster.round(NOW + 2)
    assert status(cluster).succeeded == 1 and status(cluster).failed == 0
    assert status(cluster).finished is not None and status(cluster).doubtful == {}


def test_a_failure_without_an_exit_code_counts_once_it_lasts() -> None:
    cluster = started(Cluster(), make_job(backoffLimit=0))
    [pod] = cluster.live("job-uid")
    failed_without_exit_code(cluster, pod)
    cluster.round(NOW + 1)
    cluster.round(NOW + 1 + jobs.DOUBT_SECONDS)
    assert status(cluster).failed == 1 and status(cluster).finished is not None
