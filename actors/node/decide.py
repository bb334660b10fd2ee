"""What a node does about one pod: from what it was asked and what it sees, the actions to take.

Pure: the record bound to the node (or none), what the runtime shows, what the node last
reported, how its last start failed, the crash backoff and the clock go in; a list of
actions comes out, which the node's executor (``syncer.py``) carries out. The executor then
looks again and decides again, until only a report is left: level-triggered, as the kubelet.

One pod, as a node sees it::

    not bound here ──seen in the runtime──▶ RemovePod, Forget
    bound, terminating ──▶ Terminate (preStop hooks, stop, remove, delete the record)
    bound, nothing running ──▶ StartPod (all containers; restart counts kept if they vanished)
          breaks its namespace's pod security level ──▶ Refuse (Failed, Forbidden; for good)
          start failed ──▶ StartFailed ──backoff──▶ StartPod again
    bound, running ──container exited, policy says restart──▶ RestartContainer (after backoff)
                   ──a container never started──▶ ReplaceContainer
    converged ──▶ Report (the status, when it changed)
    cut off from NATS (and told to stop pods then) ──▶ nothing, until back
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.actors.node.status import Waiting, should_restart
from shoal.models.pod import Pod, PodStatus
from shoal.policy.admission import DEFAULT_LEVEL, Level, pod_violations
from shoal.runtime.interface import PodObservation

FORBIDDEN = "Forbidden"
"""The reason of a pod the node refused to start: it breaks its namespace's pod security level."""

ORPHAN_GRACE_SECONDS = 5.0
"""Grace for containers whose pod record is gone, so their own grace is unknown."""


@dataclass(frozen=True)
class StartFailure:
    """A pod that could not start, and when to try again (image pulls back off too)."""

    waiting: Waiting
    attempts: int
    retry_at: float


@dataclass(frozen=True)
class CrashWait:
    """What the crash backoff says about one exited container."""

    remaining: float
    wait: float
    """The current backoff step, for the event."""


@dataclass(frozen=True)
class PodFacts:
    key: str
    pod: Pod | None
    """The record, if it is bound to this node."""
    revision: int
    observed: PodObservation | None
    last: PodStatus | None
    """What this node last reported for this very pod (same uid)."""
    failure: StartFailure | None
    now: float
    cut_off: bool = False
    crash_waits: dict[str, CrashWait] = field(default_factory=dict)
    """For each exited container that its policy restarts: what the backoff says."""
    announced: frozenset[str] = frozenset()
    """Backoff markers (``key/container/container id``) already announced by an event."""
    level: Level = DEFAULT_LEVEL
    """The pod security level of the pod's namespace, as the node knows it."""


# -- actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemovePod:
    grace: float
    announce: bool = True
    """Say so with a Removed event (a stale incarnation of the pod goes quietly)."""


@dataclass(frozen=True)
class Forget:
    """Drop what the node remembers of the pod, and its status record."""


@dataclass(frozen=True)
class Terminate:
    """preStop hooks within the grace period, then stop and remove, then delete the record."""

    grace: float
    running: bool


@dataclass(frozen=True)
class StartPod:
    attempts: dict[str, int]
    """Restart counts to keep when containers that vanished are recreated."""
    recreated: bool


@dataclass(frozen=True)
class Refuse:
    """Start nothing: report the pod Failed (``Forbidden``, with why) and say so once."""

    message: str


@dataclass(frozen=True)
class RestartContainer:
    container: str
    attempt: int
    exit_code: int | None
    crashed: bool = True
    """False: it never started (a start interrupted), replaced with the same attempt number."""


@dataclass(frozen=True)
class BackOff:
    container: str
    marker: str
    wait: float
    exit_code: int | None
    announce: bool


@dataclass(frozen=True)
class RequeueAfter:
    seconds: float


@dataclass(frozen=True)
class Report:
    """Probes for what runs, and the pod's status, written when it changed."""


Action = (
    RemovePod | Forget | Terminate | StartPod | Refuse | RestartContainer | BackOff | RequeueAfter | Report
)


def decide(facts: PodFacts) -> list[Action]:
    pod, observed, now = facts.pod, facts.observed, facts.now
    if observed is not None and pod is not None and observed.uid != pod.metadata.uid:
        return [RemovePod(ORPHAN_GRACE_SECONDS, announce=False)]  # an earlier pod of that name
    if pod is None:
        return ([RemovePod(ORPHAN_GRACE_SECONDS)] if observed is not None else []) + [Forget()]
    if pod.terminating:
        running = observed is not None
        return [Terminate(float(pod.spec.termination_grace_period_seconds), running)]
    if facts.cut_off:
        return []  # pods stay stopped until NATS is back
    failure = facts.failure
    backing_off = failure is not None and failure.retry_at > now
    if observed is None or not observed.containers:
        last = facts.last
        if last is not None and last.terminal:
            if last.reason == FORBIDDEN:
                return []  # refused for good, as the kubelet's admission refuses a pod
            return [Report()]  # finished for good: nothing to bring back
        # Checked before any start, whoever wrote the record: the API checks too, but a
        # record written straight into the bucket has passed no API.
        violations = pod_violations(pod.spec, facts.level, annotations=pod.metadata.annotations)
        if violations:
            return [Refuse("; ".join(str(v) for v in violations))]
        if backing_off:
            assert failure is not None
            return [RequeueAfter(failure.retry_at - now), Report()]
        vanished = last is not None and any(c.state.status == "running" for c in last.container_statuses)
        attempts = (
            {c.name: c.restart_count + (1 if vanished else 0) for c in last.container_statuses}
            if last
            else {}
        )
        return [StartPod(attempts, vanished)]
    if backing_off:
        assert failure is not None
        return [RequeueAfter(failure.retry_at - now), Report()]
    actions: list[Action] = []
    for spec in pod.spec.containers:
        current = observed.containers.get(spec.name)
        if current is None:
            attempt = _restart_count(facts.last, spec.name) + 1
            actions.append(RestartContainer(spec.name, attempt, None))
            continue
        if current.state in ("created", "unknown"):
            # Created but never started (a start interrupted): replace it, same attempt.
            actions.append(RestartContainer(spec.name, current.attempt, None, crashed=False))
            continue
        if current.state != "exited" or not should_restart(pod.spec.restart_policy, current.exit_code):
            continue
        crash = facts.crash_waits.get(spec.name)
        if crash is not None and crash.remaining > 0:
            marker = f"{facts.key}/{spec.name}/{current.container_id}"
            actions.append(
                BackOff(spec.name, marker, crash.wait, current.exit_code, marker not in facts.announced)
            )
            actions.append(RequeueAfter(crash.remaining))
            continue
        actions.append(RestartContainer(spec.name, current.attempt + 1, current.exit_code))
    if any(isinstance(a, RestartContainer) for a in actions):
        return [a for a in actions if isinstance(a, RestartContainer)]
    return [*actions, Report()]


def _restart_count(last: PodStatus | None, container: str) -> int:
    if last is None:
        return 0
    return next((c.restart_count for c in last.container_statuses if c.name == container), 0)


def start_failed(
    previous: StartFailure | None, waiting: Waiting, now: float, backoff_for: float
) -> StartFailure:
    """A failed start, and when to try again: the crash backoff's steps, at least half a second."""
    attempts = previous.attempts + 1 if previous else 1
    return StartFailure(waiting, attempts, now + max(backoff_for, 0.5))


def shown_waiting(failure: StartFailure | None, containers: list[str]) -> dict[str, Waiting]:
    """What each container waits on while a start fails (ImagePullBackOff between pull attempts)."""
    if failure is None:
        return {}
    shown = failure.waiting
    if shown.reason == "ErrImagePull" and failure.attempts > 1:
        shown = Waiting("ImagePullBackOff", shown.message)  # Kubernetes' name while waiting to retry
    return dict.fromkeys(containers, shown)


REMOVAL_SECONDS = 1.0
"""What stopping and removing one container takes the Podman service when many go at once:
they barely overlap (30 pods of 1 s grace that ignore SIGTERM took 28 s on two busy cores)."""

MAX_REMOVAL_SECONDS = 200.0


def exit_deadline(base: float, graces: list[float], containers: int, max_grace: float) -> float:
    """How long a node that stops its pods as it exits may take: its usual ``base``, the
    longest grace period of its pods (capped at ``max_grace``: they stop in parallel) and
    time to stop and remove each of its ``containers`` (at most ``MAX_REMOVAL_SECONDS`` in
    all). Cut short, the Podman service dies with the node mid-removal and leaves containers
    running."""
    if containers <= 0:
        return base
    grace = min(max(graces, default=0.0), max_grace)
    return base + grace + min(containers * REMOVAL_SECONDS, MAX_REMOVAL_SECONDS)
