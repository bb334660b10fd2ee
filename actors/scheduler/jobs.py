"""A Job's decisions, pure: from the Job, its pods and its stored status to what changes.

Kubernetes' Job controller, one Job at a time, without I/O or a clock of its own:

1. *count*: pods that reached Succeeded or Failed are added to the status (each once: their
   uids are kept in ``counted``); a tracked pod that vanished unfinished (its node lost, a
   drain, a delete by hand) counts as failed, as Kubernetes counts deleted pods;
2. *drain*: pods on a draining node are removed (a running one counts as failed, as an
   eviction does in Kubernetes; finished ones were counted already);
3. *finished already*: nothing runs; once ``ttlSecondsAfterFinished`` has passed the Job is
   deleted (its pods with it);
4. *suspend*: running pods are removed (not counted as failures), ``startTime`` cleared;
   resuming sets it again;
5. *fail*: more failures than ``backoffLimit`` (with OnFailure, container restarts count
   too), or active longer than ``activeDeadlineSeconds``: condition Failed, pods removed;
6. *complete*: ``completions`` pods succeeded (every index, for Indexed Jobs; one, for a work
   queue without completions, once none runs): condition Complete, the rest removed;
7. *run*: keep ``min(parallelism, what is left to do)`` pods running; after failures new pods
   wait 10 s, doubling with each failure since the last success, up to 6 minutes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shoal.actors.scheduler.commands import Note
from shoal.actors.scheduler.prototype import pod_prototype
from shoal.bus.kv import Entry
from shoal.models.base import replace
from shoal.models.batch import (
    COMPLETION_INDEX,
    CONTROLLER_UID_LABEL,
    JOB_NAME_LABEL,
    ConditionType,
    Job,
    JobCondition,
    JobStatus,
)
from shoal.models.pod import Pod, PodPhase
from shoal.models.workloads import Container, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec

DOUBT_SECONDS = 5.0
BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0
INDEX_ENV = "JOB_COMPLETION_INDEX"


@dataclass(frozen=True)
class JobPod:
    """One pod of the Job, with what its node reported."""

    entry: Entry[Pod]
    phase: PodPhase | None = None
    """None: no report from its node yet."""
    ready: bool = False
    restarts: int = 0
    finished_at: float | None = None
    draining: bool = False
    """Its node is being drained."""
    exit_unknown: bool = False
    """Reported Failed without its exit code (the node saw the process gone before Podman knew
    how it ended): believed only once that lasts ``DOUBT_SECONDS``."""

    @property
    def uid(self) -> str:
        return self.entry.value.metadata.uid

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def index(self) -> int | None:
        text = self.entry.value.metadata.annotations.get(COMPLETION_INDEX, "")
        return int(text) if text.isdigit() else None


@dataclass
class JobDecision:
    status: JobStatus
    create: list[int | None] = field(default_factory=list)
    """One entry per pod to create: its completion index (None for NonIndexed Jobs)."""
    remove: list[tuple[Entry[Pod], str]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    wake_at: float | None = None
    expired: bool = False
    """Finished longer than ttlSecondsAfterFinished ago: delete the Job."""


def parse_indexes(text: str) -> set[int]:
    """``0-2,5`` -> {0, 1, 2, 5}."""
    found: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return found


def format_indexes(indexes: set[int]) -> str:
    """{0, 1, 2, 5} -> ``0-2,5``, as Kubernetes writes completedIndexes."""
    parts: list[str] = []
    ordered = sorted(indexes)
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] != ordered[i - 1] + 1:
            first, last = ordered[start], ordered[i - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = i
    return ",".join(parts)


def backoff_delay(failures: int) -> float:
    """Seconds new pods wait after ``failures`` failures since the last success."""
    return 0.0 if failures <= 0 else min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)


@dataclass
class _Tally:
    """The counts as they stand, updated as the steps go."""

    status: JobStatus
    counted: set[str]
    succeeded: int
    failed: int
    done: set[int]
    failures_after: int
    last_failure: float | None
    notes: list[Note] = field(default_factory=list)
    remove: list[tuple[Entry[Pod], str]] = field(default_factory=list)

    def failure(self, at: float) -> None:
        self.failed += 1
        self.failures_after += 1
        self.last_failure = at if self.last_failure is None else max(self.last_failure, at)

    def take_out(self, pod: JobPod, reason: str) -> None:
        """The Job removes the pod itself: counted from now on, whatever it reports."""
        self.counted.add(pod.uid)
        self.remove.append((pod.entry, reason))


def _condition(
    conditions: list[JobCondition], kind: ConditionType, status: str, reason: str, message: str, now: float
) -> list[JobCondition]:
    kept = [c for c in conditions if c.type != kind]
    return [*kept, JobCondition(type=kind, status=status, reason=reason, message=message,  # type: ignore[arg-type]
                                last_transition_time=now)]  # fmt: skip


def _count(job: Job, pods: Sequence[JobPod], stored: JobStatus | None, now: float) -> _Tally:
    meta = job.metadata
    base = stored if stored is not None and stored.uid == meta.uid else None
    base = base or JobStatus(namespace=meta.namespace, name=meta.name, uid=meta.uid)
    tally = _Tally(
        status=base,
        counted=set(base.counted),
        succeeded=base.succeeded,
        failed=base.failed,
        done=parse_indexes(base.completed_indexes),
        failures_after=base.failures_after_success,
        last_failure=base.last_failure_time,
    )
    completions = job.spec.completions
    finished: list[tuple[float, bool]] = []
    for pod in pods:
        if pod.uid in tally.counted or not pod.terminal:
            continue
        tally.counted.add(pod.uid)
        at = pod.finished_at or now
        if pod.phase == "Failed":
            finished.append((at, False))
            continue
        finished.append((at, True))
        index = pod.index
        if not job.spec.indexed:
            tally.succeeded += 1
        elif index is not None and completions is not None and index < completions:
            tally.done.add(index)
    present = {pod.uid for pod in pods}
    finished += [(now, False) for uid in base.tracked if uid not in present and uid not in tally.counted]
    for at, success in sorted(finished):
        if success:
            tally.failures_after = 0
        else:
            tally.failure(at)
    if job.spec.indexed:
        tally.succeeded = len(tally.done)
    return tally


def _live(pods: Sequence[JobPod], tally: _Tally) -> list[JobPod]:
    return [
        p for p in pods if p.uid not in tally.counted and not p.terminal and not p.entry.value.terminating
    ]


def _failure_reason(
    job: Job, tally: _Tally, live: list[JobPod], start: float | None, now: float
) -> tuple[str, str, float | None]:
    """(reason, message) the Job fails for now, if any, and when to look again for the deadline."""
    spec = job.spec
    limit = spec.backoff_limit
    restarts = sum(p.restarts for p in live) if spec.template.spec.restart_policy == "OnFailure" else 0
    past_on_failure = spec.template.spec.restart_policy == "OnFailure" and (
        restarts > 0 if limit == 0 else restarts >= limit
    )
    if tally.failed > limit or past_on_failure:
        return "BackoffLimitExceeded", "Job has reached the specified backoff limit", None
    deadline = spec.active_deadline_seconds
    if deadline is not None and start is not None:
        if now - start >= deadline:
            return "DeadlineExceeded", "Job was active longer than specified deadline", None
        return "", "", start + deadline
    return "", "", None


def _removal_rank(pod: JobPod) -> tuple[int, int, float]:
    """Which surplus pods go first: unscheduled, then not ready, then the newest."""
    value = pod.entry.value
    return (1 if value.node_name else 0, 1 if pod.ready else 0, -value.metadata.creation_timestamp)


def _doubts(
    pods: Sequence[JobPod], stored: JobStatus | None, uid: str, now: float, wake: list[float]
) -> tuple[list[JobPod], dict[str, float]]:
    """Failures reported without an exit code are taken as still running for a few seconds: the
    next report usually has the real outcome (and a zero exit code is a success)."""
    known = stored.doubtful if stored is not None and stored.uid == uid else {}
    doubtful: dict[str, float] = {}
    seen: list[JobPod] = []
    for pod in pods:
        if pod.phase == "Failed" and pod.exit_unknown and pod.uid not in (stored.counted if stored else ()):
            since = known.get(pod.uid, now)
            if now - since < DOUBT_SECONDS:
                doubtful[pod.uid] = since
                wake.append(since + DOUBT_SECONDS)
                pod = dataclasses.replace(pod, phase="Running")
        seen.append(pod)
    return seen, doubtful


def reconcile(job: Job, pods: Sequence[JobPod], stored: JobStatus | None, now: float) -> JobDecision:
    spec, meta = job.spec, job.metadata
    wake: list[float] = []
    pods, doubtful = _doubts(pods, stored, meta.uid, now, wake)
    tally = _count(job, pods, stored, now)
    conditions = list(tally.status.conditions)
    start = tally.status.start_time
    completion_time = tally.status.completion_time
    create: list[int | None] = []
    expired = False
    notes = tally.notes

    for pod in pods:
        if pod.draining and not pod.entry.value.terminating:
            if not pod.terminal and pod.uid not in tally.counted:
                tally.failure(now)
            tally.take_out(pod, f"node {pod.entry.value.node_name} is being drained")
    live = _live(pods, tally)
    finished = tally.status.finished
    if finished is not None:
        for pod in live:
            tally.take_out(pod, "the job has finished")
        ttl = spec.ttl_seconds_after_finished
        if ttl is not None:
            due = finished.last_transition_time + ttl
            expired = now >= due
            if not expired:
                wake.append(due)
    elif spec.suspend:
        for pod in live:
            tally.take_out(pod, "the job is suspended")
        if tally.status.condition("Suspended") is None:
            conditions = _condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", now)
            notes.append(_note(job, "Suspended", "Job suspended"))
        start = None
    else:
        if tally.status.condition("Suspended") is not None:
            conditions = _condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", now)
            notes.append(_note(job, "Resumed", "Job resumed"))
            start = None
        start = start if start is not None else now
        reason, message, deadline_at = _failure_reason(job, tally, live, start, now)
        if deadline_at is not None:
            wake.append(deadline_at)
        if reason:
            for pod in live:
                tally.take_out(pod, message.lower())
            conditions = _condition(conditions, "Failed", "True", reason, message, now)
            notes.append(_note(job, reason, message, warning=True))
            ttl = spec.ttl_seconds_after_finished
            if ttl is not None:
                wake.append(now + ttl)
        elif _complete(job, tally, live):
            for pod in live:
                tally.take_out(pod, "the job has completed")
            completion_time = now
            message = "Reached expected number of succeeded pods"
            conditions = _condition(conditions, "Complete", "True", "CompletionsReached", message, now)
            notes.append(_note(job, "Completed", "Job completed"))
            ttl = spec.ttl_seconds_after_finished
            if ttl is not None:
                wake.append(now + ttl)
        else:
            create = _run(job, tally, live, now, wake)

    live = _live(pods, tally)
    counted = tally.counted & {pod.uid for pod in pods}
    status = JobStatus(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        active=len(live),
        ready=sum(1 for p in live if p.ready),
        terminating=sum(
            1 for p in pods if not p.terminal and (p.entry.value.terminating or p.uid in counted)
        ),
        succeeded=tally.succeeded,
        failed=tally.failed,
        start_time=start,
        completion_time=completion_time,
        conditions=conditions,
        completed_indexes=format_indexes(tally.done) if spec.indexed else "",
        tracked=sorted(p.uid for p in live),
        counted=sorted(counted),
        failures_after_success=tally.failures_after,
        last_failure_time=tally.last_failure,
        doubtful=doubtful,
    )
    return JobDecision(status, create, tally.remove, notes, min(wake) if wake else None, expired)


def _complete(job: Job, tally: _Tally, live: list[JobPod]) -> bool:
    completions = job.spec.completions
    if completions is None:
        return tally.succeeded > 0 and not live
    if job.spec.indexed:
        return len(tally.done) >= completions
    return tally.succeeded >= completions


def _run(job: Job, tally: _Tally, live: list[JobPod], now: float, wake: list[float]) -> list[int | None]:
    """Remove what is too much, return the pods to start (their indexes)."""
    spec = job.spec
    completions = spec.completions
    if spec.indexed:
        assert completions is not None
        by_index: dict[int, list[JobPod]] = {}
        for pod in live:
            index = pod.index
            if index is None or index >= completions or index in tally.done:
                tally.take_out(pod, "its completion index is done or not valid")
            else:
                by_index.setdefault(index, []).append(pod)
        for index, same in by_index.items():
            keep = max(same, key=lambda p: (p.ready, -p.entry.value.metadata.creation_timestamp))
            for pod in same:
                if pod is not keep:
                    tally.take_out(pod, f"another pod runs completion index {index}")
        running = sorted(by_index)
        for index in running[spec.parallelism :][::-1]:
            tally.take_out(by_index[index][0], f"parallelism is {spec.parallelism}")
        active = min(len(running), spec.parallelism)
        pending = [i for i in range(completions) if i not in tally.done and i not in by_index]
        wanted: list[int | None] = list(pending[: max(0, spec.parallelism - active)])
    else:
        if completions is None:
            # A work queue: once one pod succeeded, what runs may finish, nothing new starts.
            want = min(len(live), spec.parallelism) if tally.succeeded > 0 else spec.parallelism
        else:
            want = min(spec.parallelism, completions - tally.succeeded)
        if len(live) > want:
            for pod in sorted(live, key=_removal_rank)[: len(live) - want]:
                tally.take_out(pod, f"parallelism is {spec.parallelism}")
        wanted = [None] * max(0, want - len(live))
    if wanted and tally.failures_after > 0 and tally.last_failure is not None:
        ready_at = tally.last_failure + backoff_delay(tally.failures_after)
        if now < ready_at:
            wake.append(ready_at)
            return []
    return wanted


def _note(job: Job, reason: str, message: str, *, warning: bool = False) -> Note:
    meta = job.metadata
    return Note("Job", meta.namespace, meta.name, reason, message, "Warning" if warning else "Normal")


def pod_maker(
    job: Job, template_hash: str, now: float, priority: int = 0
) -> Callable[[int | None, str, str], Pod]:
    """New pods of a Job: ``make(index, suffix, uid)``, each a copy of one prototype (as Kubernetes
    names them: ``<job>-<suffix>``, ``<job>-<index>-<suffix>`` for Indexed Jobs)."""
    meta = job.metadata
    template = job.spec.template
    spec = template.spec if template.spec.priority == priority else replace(template.spec, priority=priority)
    labels = {
        **template.metadata.labels,
        CONTROLLER_UID_LABEL: meta.uid,
        JOB_NAME_LABEL: meta.name,
        "controller-uid": meta.uid,
        "job-name": meta.name,
    }
    prototype = pod_prototype(
        namespace=meta.namespace,
        labels=labels,
        annotations=template.metadata.annotations,
        owner=("Job", meta.name, meta.uid),
        template_hash=template_hash,
        spec=spec,
        now=now,
    )
    indexed_spec = _with_index_env(spec) if job.spec.indexed else spec

    def make(index: int | None, suffix: str, uid: str) -> Pod:
        if index is None:
            name = f"{meta.name[:57].rstrip('-')}-{suffix}"
            metadata = replace(prototype.metadata, name=name, uid=uid)
            return replace(prototype, metadata=metadata)
        marker = f"-{index}-"
        name = f"{meta.name[: 58 - len(marker)].rstrip('-')}{marker}{suffix}"
        metadata = replace(
            prototype.metadata,
            name=name,
            uid=uid,
            labels={**labels, COMPLETION_INDEX: str(index)},
            annotations={**prototype.metadata.annotations, COMPLETION_INDEX: str(index)},
        )
        pod_spec = indexed_spec
        if not pod_spec.hostname:
            pod_spec = replace(pod_spec, hostname=f"{meta.name}-{index}"[:63].rstrip("-"))
        return replace(prototype, metadata=metadata, spec=pod_spec)

    return make


def _with_index_env(spec: PodSpec) -> PodSpec:
    """Every container gets JOB_COMPLETION_INDEX from the pod's annotation (as in Kubernetes)."""
    source = EnvVarSource.model_construct(
        config_map_key_ref=None,
        secret_key_ref=None,
        field_ref=ObjectFieldSelector.model_construct(
            field_path=f"metadata.annotations['{COMPLETION_INDEX}']", api_version="v1"
        ),
        resource_field_ref=None,
    )
    variable = EnvVar.model_construct(name=INDEX_ENV, value="", value_from=source)

    def add(containers: list[Container]) -> list[Container]:
        return [
            c if any(e.name == INDEX_ENV for e in c.env) else replace(c, env=[*c.env, variable])
            for c in containers
        ]

    return replace(spec, containers=add(spec.containers), init_containers=add(spec.init_containers))
