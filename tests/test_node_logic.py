"""The node's pure decisions: pod phase and readiness, restart policy, crash backoff."""

from __future__ import annotations

from shoal.actors.node.backoff import CrashBackoff
from shoal.actors.node.status import Waiting, pod_status, should_restart
from shoal.models.pod import Pod, PodMeta
from shoal.models.workloads import Container, PodSpec
from shoal.runtime.interface import ContainerObservation, PodObservation


def pod(policy: str = "Always", containers: int = 1) -> Pod:
    return Pod(
        metadata=PodMeta(name="p", uid="u1"),
        spec=PodSpec(
            containers=[Container(name=f"c{i}", image="img") for i in range(containers)],
            restart_policy=policy,  # type: ignore[arg-type]
        ),
        node_name="n",
    )


def observed(*states: tuple[str, int | None]) -> PodObservation:
    containers = {
        f"c{i}": ContainerObservation(
            name=f"c{i}", container_id=f"id{i}", image="img", state=state, attempt=2, exit_code=code
        )  # type: ignore[arg-type]
        for i, (state, code) in enumerate(states)
    }
    return PodObservation("default", "p", "u1", "n", containers, ip="10.88.0.9")


def status_of(p: Pod, obs: PodObservation | None, waiting: dict[str, Waiting] | None = None):  # type: ignore[no-untyped-def]
    return pod_status(
        p, obs, node="n", host_ip="127.0.0.1", waiting=waiting or {}, restart_counts={}, start_time=None
    )


def test_running_pod_is_ready_with_its_ip_and_restart_count() -> None:
    status = status_of(pod(), observed(("running", None)))
    assert (status.phase, status.ready, status.pod_ip) == ("Running", True, "10.88.0.9")
    assert status.container_statuses[0].restart_count == 2


def test_one_container_down_makes_the_pod_unready() -> None:
    status = status_of(pod(containers=2), observed(("running", None), ("exited", 1)))
    assert status.phase == "Running" and not status.ready
    assert status.container_statuses[1].state.reason == "CrashLoopBackOff"
    assert status.container_statuses[1].last_state is not None
    assert status.container_statuses[1].last_state.exit_code == 1


def test_terminal_phases_follow_the_restart_policy() -> None:
    assert status_of(pod("Never"), observed(("exited", 0))).phase == "Succeeded"
    assert status_of(pod("Never"), observed(("exited", 3))).phase == "Failed"
    assert status_of(pod("OnFailure"), observed(("exited", 0))).phase == "Succeeded"
    assert status_of(pod("OnFailure"), observed(("exited", 3))).phase == "Running"
    assert status_of(pod("Always"), observed(("exited", 0))).phase == "Running"


def test_pods_not_started_yet_are_pending_with_the_reason() -> None:
    assert status_of(pod(), None).phase == "Pending"
    failed = status_of(pod(), None, {"c0": Waiting("ErrImagePull", "no such image")})
    assert (failed.phase, failed.reason, failed.message) == ("Pending", "ErrImagePull", "no such image")


def test_restart_policy() -> None:
    assert should_restart("Always", 0) and should_restart("Always", 1)
    assert should_restart("OnFailure", 2) and not should_restart("OnFailure", 0)
    assert not should_restart("Never", 1)


def test_backoff_is_immediate_then_doubles_to_the_cap_and_resets_after_a_long_run() -> None:
    backoff = CrashBackoff(initial=10, cap=40, reset_after=600)
    waits = []
    for _ in range(5):
        waits.append(backoff.remaining("u", "c", exited_at=100.0, ran_for=1.0, now=100.0))
        backoff.restarted("u", "c")
    assert waits == [0.0, 10.0, 20.0, 40.0, 40.0]
    assert backoff.remaining("u", "c", exited_at=100.0, ran_for=1.0, now=125.0) == 15.0
    assert backoff.remaining("u", "c", exited_at=900.0, ran_for=700.0, now=900.0) == 0.0
    backoff.forget("u")
    assert backoff.current_wait("u", "c") == 0.0
