"""The node as a pure shell: its decisions in tables, and its executor on the in-memory runtime.

No NATS and no Podman: ``decide`` is fed facts, and the ``PodSyncer`` drives a MemoryRuntime
(broken with its ``crash`` and ``vanish`` helpers) and reports to a link that records.
"""

from __future__ import annotations

from typing import Any

import pytest

from shoal.actors.node.backoff import CrashBackoff
from shoal.actors.node.decide import (
    BackOff,
    CrashWait,
    Forget,
    PodFacts,
    RemovePod,
    Report,
    RequeueAfter,
    RestartContainer,
    StartFailure,
    StartPod,
    Terminate,
    decide,
    exit_deadline,
)
from shoal.actors.node.status import Waiting
from shoal.actors.node.syncer import PodSyncer
from shoal.models.pod import ContainerState, ContainerStatus, Pod, PodMeta, PodStatus
from shoal.models.workloads import Container, PodSpec
from shoal.runtime.interface import ContainerObservation, PodObservation
from shoal.runtime.memory import MemoryRuntime

NOW = 1_000.0
KEY = "default.p"


def pod(policy: str = "Always", containers: int = 1, *, uid: str = "u1", terminating: bool = False) -> Pod:
    return Pod(
        metadata=PodMeta(name="p", uid=uid, deletion_timestamp=NOW if terminating else None),
        spec=PodSpec(
            containers=[Container(name=f"c{i}", image="img") for i in range(containers)],
            restart_policy=policy,  # type: ignore[arg-type]
            termination_grace_period_seconds=7,
        ),
        node_name="n",
    )


def seen(*states: tuple[str, int | None], uid: str = "u1", attempt: int = 2) -> PodObservation:
    containers = {
        f"c{i}": ContainerObservation(
            name=f"c{i}", container_id=f"id{i}", image="img", state=state, attempt=attempt, exit_code=code
        )  # type: ignore[arg-type]
        for i, (state, code) in enumerate(states)
    }
    return PodObservation("default", "p", uid, "n", containers)


def reported(phase: str, state: str = "running", restarts: int = 0) -> PodStatus:
    return PodStatus(
        namespace="default",
        name="p",
        uid="u1",
        node_name="n",
        phase=phase,  # type: ignore[arg-type]
        container_statuses=[
            ContainerStatus(
                name="c0",
                image="img",
                restart_count=restarts,
                state=ContainerState(status=state, exit_code=0 if state == "terminated" else None),  # type: ignore[arg-type]
            )
        ],
    )


def with_(base: PodFacts, **changes: Any) -> PodFacts:
    return PodFacts(**{**base.__dict__, **changes})


def given(record: Pod | None, observed: PodObservation | None, **changes: Any) -> PodFacts:
    base = PodFacts(key=KEY, pod=record, revision=4, observed=observed, last=None, failure=None, now=NOW)
    return with_(base, **changes)


FAILED_START = StartFailure(Waiting("ErrImagePull", "no such image"), attempts=1, retry_at=NOW + 10)


@pytest.mark.parametrize(
    "case, facts_, actions",
    [
        ("not bound, nothing here", given(None, None), [Forget()]),
        ("not bound, containers here", given(None, seen(("running", None))), [RemovePod(5.0), Forget()]),
        (
            "an earlier pod of that name",
            given(pod(), seen(("running", None), uid="old")),
            [RemovePod(5.0, False)],
        ),
        (
            "terminating, running",
            given(pod(terminating=True), seen(("running", None))),
            [Terminate(7.0, True)],
        ),
        ("terminating, gone already", given(pod(terminating=True), None), [Terminate(7.0, False)]),
        ("cut off from NATS", given(pod(), None, cut_off=True), []),
        ("new", given(pod(), None), [StartPod({}, False)]),
        (
            "vanished while running: counts kept, one more",
            given(pod(), None, last=reported("Running", restarts=3)),
            [StartPod({"c0": 4}, True)],
        ),
        (
            "finished for good",
            given(pod("Never"), None, last=reported("Succeeded", "terminated")),
            [Report()],
        ),
        ("start backing off", given(pod(), None, failure=FAILED_START), [RequeueAfter(10.0), Report()]),
        ("running", given(pod(), seen(("running", None))), [Report()]),
        (
            "crashed, no wait",
            given(pod(), seen(("exited", 1)), crash_waits={"c0": CrashWait(0.0, 0.0)}),
            [RestartContainer("c0", 3, 1)],
        ),
        (
            "crashed, backing off",
            given(pod(), seen(("exited", 1)), crash_waits={"c0": CrashWait(8.0, 10.0)}),
            [BackOff("c0", f"{KEY}/c0/id0", 10.0, 1, True), RequeueAfter(8.0), Report()],
        ),
        (
            "crashed, backing off, said so already",
            given(
                pod(),
                seen(("exited", 1)),
                crash_waits={"c0": CrashWait(8.0, 10.0)},
                announced=frozenset({f"{KEY}/c0/id0"}),
            ),
            [BackOff("c0", f"{KEY}/c0/id0", 10.0, 1, False), RequeueAfter(8.0), Report()],
        ),
        ("exited 0, OnFailure", given(pod("OnFailure"), seen(("exited", 0))), [Report()]),
        ("never started", given(pod(), seen(("created", None))), [RestartContainer("c0", 2, None, False)]),
        (
            "one of two containers missing",
            given(pod(containers=2), seen(("running", None)), last=reported("Running", restarts=1)),
            [RestartContainer("c1", 1, None)],
        ),
    ],
)
def test_decisions(case: str, facts_: PodFacts, actions: list[object]) -> None:
    assert decide(facts_) == actions, case


class RecordingLink:
    """Stands in for NATS: what the node would send."""

    def __init__(self) -> None:
        self.statuses: dict[str, PodStatus] = {}
        self.forgotten: list[str] = []
        self.deleted: list[tuple[str, int]] = []
        self.events: list[tuple[str, str]] = []

    async def report(self, key: str, status: PodStatus) -> None:
        self.statuses[key] = status

    async def forget(self, key: str) -> None:
        self.forgotten.append(key)
        self.statuses.pop(key, None)

    async def delete_record(self, key: str, revision: int) -> bool:
        self.deleted.append((key, revision))
        return True

    def emit(self, pod: Any, reason: str, message: str, **fields: Any) -> None:
        self.events.append((reason, message))

    def reasons(self) -> list[str]:
        return [reason for reason, _ in self.events]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def node() -> tuple[PodSyncer, MemoryRuntime, RecordingLink, Clock, list[tuple[str, float]]]:
    clock = Clock()
    runtime = MemoryRuntime("n", clock=clock)
    link = RecordingLink()
    requeued: list[tuple[str, float]] = []
    syncer = PodSyncer(
        "n",
        "127.0.0.1",
        runtime,
        link,
        CrashBackoff(initial=10.0, cap=300.0),
        requeue=lambda key, after: requeued.append((key, after)),
        clock=clock,
    )
    return syncer, runtime, link, clock, requeued


def memory_pod(name: str = "p", uid: str = "u1") -> Pod:
    return Pod(
        metadata=PodMeta(name=name, uid=uid),
        spec=PodSpec(containers=[Container(name="c0", image="img")], termination_grace_period_seconds=1),
        node_name="n",
    )


async def test_a_new_pod_is_started_and_reported(node) -> None:  # type: ignore[no-untyped-def]
    syncer, runtime, link, _, _ = node
    await syncer.sync(KEY, memory_pod(), 1)
    assert link.reasons() == ["Started"]
    assert link.statuses[KEY].phase == "Running" and link.statuses[KEY].ready
    assert (await runtime.inspect_pod("default", "p")) is not None


async def test_a_restarted_node_adopts_what_runs_without_starting_it_again(node) -> None:  # type: ignore[no-untyped-def]
    syncer, runtime, link, _, _ = node
    await runtime.start_pod(memory_pod())  # started before the node actor restarted
    before = (await runtime.inspect_pod("default", "p")).containers["c0"].container_id  # type: ignore[union-attr]
    await syncer.sync(KEY, memory_pod(), 1)
    assert link.reasons() == []  # nothing started, nothing removed
    assert (await runtime.inspect_pod("default", "p")).containers["c0"].container_id == before  # type: ignore[union-attr]
    assert link.statuses[KEY].ready


async def test_vanished_containers_are_recreated_keeping_their_restart_count(node) -> None:  # type: ignore[no-untyped-def]
    syncer, runtime, link, _, _ = node
    await syncer.sync(KEY, memory_pod(), 1)
    runtime.vanish("default", "p")
    await syncer.sync(KEY, memory_pod(), 1)
    assert link.reasons() == ["Started", "Recreated"]
    assert link.statuses[KEY].restarts == 1


async def test_a_crash_loop_restarts_at_once_then_backs_off(node) -> None:  # type: ignore[no-untyped-def]
    syncer, runtime, link, clock, requeued = node
    await syncer.sync(KEY, memory_pod(), 1)
    runtime.crash("default", "p", code=3)
    clock.now += 1
    await syncer.sync(KEY, memory_pod(), 1)
    assert link.reasons()[-1] == "Restarted" and link.statuses[KEY].restarts == 1
    runtime.crash("default", "p", code=3)
    clock.now += 1
    await syncer.sync(KEY, memory_pod(), 1)
    assert link.reasons()[-1] == "BackOff"
    assert requeued[-1] == (KEY, pytest.approx(9.0))  # 10 s from the exit, a second ago
    assert link.statuses[KEY].container_statuses[0].state.reason == "CrashLoopBackOff"
    await syncer.sync(KEY, memory_pod(), 1)  # looked at again too soon: said once only
    assert link.reasons().count("BackOff") == 1
    clock.now += 10
    await syncer.sync(KEY, memory_pod(), 1)
    assert link.reasons()[-1] == "Restarted" and link.statuses[KEY].restarts == 2


async def test_a_start_that_fails_is_shown_and_tried_again_later(node) -> None:  # type: ignore[no-untyped-def]
    syncer, runtime, link, clock, requeued = node
    runtime.failure_rate = 1.0
    await syncer.sync(KEY, memory_pod(), 1)
    assert link.reasons() == ["Failed"]
    assert link.statuses[KEY].container_statuses[0].state.reason == "CreateContainerError"
    assert requeued[-1][1] >= 0.5
    runtime.failure_rate = 0.0
    await syncer.sync(KEY, memory_pod(), 1)  # too soon: still waiting
    assert link.reasons() == ["Failed"]
    clock.now += 30
    await syncer.sync(KEY, memory_pod(), 1)
    assert link.reasons()[-1] == "Started" and link.statuses[KEY].ready


async def test_a_terminating_pod_is_stopped_removed_and_its_record_deleted(node) -> None:  # type: ignore[no-untyped-def]
    syncer, runtime, link, _, _ = node
    await syncer.sync(KEY, memory_pod(), 1)
    going = memory_pod().model_copy(update={"metadata": PodMeta(name="p", uid="u1", deletion_timestamp=NOW)})
    await syncer.sync(KEY, going, 9)
    assert await runtime.inspect_pod("default", "p") is None
    assert link.deleted == [(KEY, 9)] and link.forgotten == [KEY]
    assert link.reasons()[-2:] == ["Killing", "Removed"]


async def test_pods_no_longer_bound_here_and_earlier_incarnations_are_removed(node) -> None:  # type: ignore[no-untyped-def]
    syncer, runtime, link, _, _ = node
    await syncer.sync(KEY, memory_pod(uid="old"), 1)
    await syncer.sync(KEY, memory_pod(uid="new"), 2)  # the old one goes quietly, the new one starts
    assert (await runtime.inspect_pod("default", "p")).uid == "new"  # type: ignore[union-attr]
    await syncer.sync(KEY, None, 0)  # bound elsewhere now
    assert await runtime.inspect_pod("default", "p") is None
    assert link.reasons()[-1] == "Removed" and KEY in link.forgotten


async def test_a_node_cut_off_from_nats_changes_nothing(node) -> None:  # type: ignore[no-untyped-def]
    syncer, runtime, link, _, _ = node
    await syncer.sync(KEY, memory_pod(), 1, cut_off=True)
    assert await runtime.inspect_pod("default", "p") is None and link.events == []


@pytest.mark.parametrize(
    ("graces", "containers", "deadline"),
    [
        ([], 0, 3.0),  # nothing to stop: the usual deadline
        ([30.0], 1, 34.0),  # one pod: its grace and its removal
        ([1.0] * 30, 30, 34.0),  # 30 quick pods: their removals barely overlap
        ([500.0], 1, 104.0),  # a huge grace period is capped
        ([1.0], 10_000, 204.0),  # and so is the time to remove a host full of containers
    ],
)
def test_a_node_stopping_its_pods_as_it_exits_gives_them_time(
    graces: list[float], containers: int, deadline: float
) -> None:
    assert exit_deadline(3.0, graces, containers, max_grace=100.0) == deadline


@pytest.mark.parametrize(
    ("node", "terminating", "refusal"),
    [
        ("n", True, ""),
        ("n", False, "not marked for deletion"),
        ("m", True, "bound to n, not to m"),
        ("m", False, "bound to n, not to m"),
    ],
)
def test_the_api_deletes_only_a_stopped_pods_record_for_the_node_it_is_bound_to(
    node: str, terminating: bool, refusal: str
) -> None:
    from shoal.actors.api.actor import release_refusal
    from shoal.models.api import PodReleaseRequest

    request = PodReleaseRequest(node=node, namespace="default", pod="p", uid="u1", revision=3)
    said = release_refusal(pod(terminating=terminating), request)
    assert (refusal in said) if refusal else said == ""
