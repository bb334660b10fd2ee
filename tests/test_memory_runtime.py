"""The in-memory (hollow) runtime: containers whose commands end, end as the command says."""

from __future__ import annotations

import asyncio

import pytest

from shoal.models.pod import OwnerRef, Pod, PodMeta
from shoal.models.workloads import Container, PodSpec
from shoal.runtime.memory import MemoryRuntime, fate


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["true"], (0.0, 0)),
        (["false"], (0.0, 1)),
        (["sleep", "2"], (2.0, 0)),
        (["sleep", "0.5"], (0.5, 0)),
        (["sh", "-c", "exit 3"], (0.0, 3)),
        (["sleep", "3600x"], None),
        (["sh", "-c", "echo hi"], None),
        ([], None),
    ],
)
def test_a_hollow_container_ends_only_when_its_command_says_how(
    command: list[str], expected: tuple[float, int] | None
) -> None:
    assert fate(command) == expected


async def test_a_hollow_job_pod_exits_and_says_so() -> None:
    runtime = MemoryRuntime("n1")
    spec = PodSpec(
        containers=[Container(name="main", image="x", command=["sleep", "0.05"])], restart_policy="Never"
    )
    pod = Pod(
        metadata=PodMeta(
            name="job-1", namespace="default", uid="u1", owner=OwnerRef(kind="Job", name="job", uid="j")
        ),
        spec=spec,
    )
    await runtime.start_pod(pod)
    [observed] = await runtime.list_pods()
    assert observed.containers["main"].state == "running"
    event = await asyncio.wait_for(runtime.events().__anext__(), timeout=2)
    assert (event.pod, event.action) == ("job-1", "died")
    [observed] = await runtime.list_pods()
    assert (observed.containers["main"].state, observed.containers["main"].exit_code) == ("exited", 0)
