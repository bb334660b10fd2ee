"""A pod's status from what the runtime shows, and whether an exited container comes back.

Pure functions: the node actor observes, these decide what the observation means. The
records are built from values of known types without validating them again (a node may
report thousands of pods).
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.models.base import replace
from shoal.models.pod import ContainerState, ContainerStatus, HostPort, Pod, PodPhase, PodStatus
from shoal.models.workloads import Container, RestartPolicy
from shoal.runtime.interface import ContainerObservation, PodObservation


def should_restart(policy: RestartPolicy, exit_code: int | None) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


@dataclass(frozen=True)
class Waiting:
    """Why a container is not running although it should: shown as its waiting state."""

    reason: str
    message: str = ""


def _terminated(observed: ContainerObservation) -> ContainerState:
    code = observed.exit_code if observed.exit_code is not None else -1
    reason = "OOMKilled" if observed.oom_killed else ("Completed" if code == 0 else "Error")
    return ContainerState.model_construct(
        status="terminated",
        reason=reason,
        exit_code=code,
        started_at=observed.started_at,
        finished_at=observed.finished_at,
    )


def container_status(
    spec: Container,
    observed: ContainerObservation | None,
    policy: RestartPolicy,
    waiting: Waiting | None,
    restart_count: int,
    probed_ready: bool = True,
    started: bool = True,
) -> ContainerStatus:
    last_state = None
    if observed is None:
        state = ContainerState.model_construct(
            status="waiting",
            reason=waiting.reason if waiting else "ContainerCreating",
            message=waiting.message if waiting else "",
        )
    elif observed.state == "running":
        state = ContainerState.model_construct(status="running", started_at=observed.started_at)
    elif observed.state == "exited":
        if should_restart(policy, observed.exit_code):
            last_state = _terminated(observed)
            reason = waiting.reason if waiting else "CrashLoopBackOff"
            state = ContainerState.model_construct(
                status="waiting", reason=reason, message=waiting.message if waiting else ""
            )
        else:
            state = _terminated(observed)
    else:
        state = ContainerState.model_construct(
            status="waiting",
            reason=waiting.reason if waiting else "ContainerCreating",
            message=waiting.message if waiting else "",
        )
    return ContainerStatus.model_construct(
        name=spec.name,
        image=spec.image,
        container_id=observed.container_id if observed else "",
        ready=state.status == "running" and probed_ready,
        started=state.status == "running" and started,
        restart_count=restart_count,
        state=state,
        last_state=last_state,
    )


def pod_phase(statuses: list[ContainerStatus]) -> PodPhase:
    states = [s.state for s in statuses]
    if any(s.status == "running" for s in states):
        return "Running"
    if states and all(s.status == "terminated" for s in states):
        return "Succeeded" if all(s.exit_code == 0 for s in states) else "Failed"
    if any(s.last_state is not None for s in statuses):
        return "Running"  # restarting: Kubernetes keeps such pods Running
    return "Pending"


def pod_status(
    pod: Pod,
    observed: PodObservation | None,
    *,
    node: str,
    host_ip: str,
    waiting: dict[str, Waiting],
    restart_counts: dict[str, int],
    start_time: float | None,
    probed_ready: dict[str, bool] | None = None,
    started: dict[str, bool] | None = None,
) -> PodStatus:
    """``probed_ready`` and ``started``: the verdicts of readiness and startup probes, per container."""
    probed = probed_ready or {}
    started = started or {}
    containers = observed.containers if observed else {}
    statuses = [
        container_status(
            spec,
            containers.get(spec.name),
            pod.spec.restart_policy,
            waiting.get(spec.name),
            restart_counts.get(spec.name, containers[spec.name].attempt if spec.name in containers else 0),
            probed.get(spec.name, True),
            started.get(spec.name, True),
        )
        for spec in pod.spec.containers
    ]
    phase = pod_phase(statuses)
    reason = next((s.state.reason for s in statuses if s.state.status == "waiting" and s.state.reason), "")
    message = next((s.state.message for s in statuses if s.state.status == "waiting" and s.state.message), "")
    return PodStatus.model_construct(
        namespace=pod.metadata.namespace,
        name=pod.metadata.name,
        uid=pod.metadata.uid,
        node_name=node,
        phase=phase,
        ready=phase == "Running" and all(s.ready for s in statuses),
        reason=reason,
        message=message,
        pod_ip=observed.ip if observed else "",
        host_ip=host_ip,
        start_time=start_time,
        ready_since=None,
        ports=[],  # every field given: pydantic's default factories are slow to look up
        container_statuses=statuses,
    )


def report_status(
    pod: Pod,
    observed: PodObservation | None,
    *,
    node: str,
    host_ip: str,
    last: PodStatus | None,
    waiting: dict[str, Waiting],
    probes: dict[str, tuple[bool, bool]],
    now: float,
) -> PodStatus:
    """The status a node reports for ``pod``: what runs, published ports, since when it is Ready.

    ``last`` is what it reported before for this very pod; ``probes`` each probed container's
    (ready, started) verdicts.
    """
    start_time = last.start_time if last is not None else None
    if start_time is None and observed is not None and observed.containers:
        start_time = min((c.started_at for c in observed.containers.values() if c.started_at), default=now)
    status = pod_status(
        pod,
        observed,
        node=node,
        host_ip=host_ip,
        waiting=waiting,
        restart_counts={},
        start_time=start_time,
        probed_ready={name: verdicts[0] for name, verdicts in probes.items()},
        started={name: verdicts[1] for name, verdicts in probes.items()},
    )
    published = {container: host for container, host, _ in (observed.ports if observed else ())}
    ports = [
        HostPort.model_construct(
            container=spec.name,
            container_port=declared.container_port,
            host_port=published[declared.container_port],
            protocol=declared.protocol,
            name=declared.name or "",
        )
        for spec in pod.spec.containers
        for declared in spec.ports
        if declared.container_port in published
    ]
    ready_since = None
    if status.ready:
        ready_since = last.ready_since if last is not None and last.ready and last.ready_since else now
    return replace(status, ports=ports, ready_since=ready_since)
