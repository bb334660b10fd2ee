"""A CronJob's decisions, pure: from the CronJob, its Jobs and the time to what changes.

Kubernetes' CronJob controller (``syncCronJob``), with the clock given:

1. *active*: its Jobs not finished; a Job that finished since the last look is reported
   (``SawCompletedJob``) and a Complete one sets ``lastSuccessfulTime``;
2. *history*: finished Jobs beyond ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit``
   are deleted, oldest first;
3. *suspend*: nothing new starts;
4. *due*: the most recent scheduled time since the last one (or the CronJob's creation), no
   older than ``startingDeadlineSeconds`` when that is set; runs missed while the control
   plane was down are not made up, only the most recent starts. More than 100 missed: a
   ``TooManyMissedTimes`` warning and no start (the next schedule runs as usual);
5. *concurrency*: ``Forbid`` skips a run while a Job is active (it starts once that finishes,
   if still within the deadline); ``Replace`` deletes the active Jobs first; ``Allow`` runs
   them side by side;
6. *start*: a Job ``<cronjob>-<scheduled time in minutes>`` from the template, so a run is
   never started twice; then wait for the next scheduled time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from shoal.actors.scheduler.commands import Note
from shoal.bus.kv import Entry
from shoal.manifests.render import timestamp
from shoal.models.batch import SCHEDULED_AT, CronJob, CronJobStatus, Job, JobMeta, JobRef
from shoal.models.cron import CronSchedule, NeverDue
from shoal.models.pod import OwnerRef

MANY_MISSED = 100


@dataclass(frozen=True)
class CronJobRun:
    """One Job of the CronJob, and how it ended, if it did."""

    entry: Entry[Job]
    finished: Literal["", "Complete", "Failed"] = ""
    finished_at: float | None = None
    started_at: float | None = None

    @property
    def name(self) -> str:
        return self.entry.value.metadata.name

    def scheduled_for(self, cronjob: CronJob) -> float | None:
        """The scheduled time the Job runs for, from its name (``<cronjob>-<minutes>``)."""
        prefix = f"{cronjob.metadata.name}-"
        minutes = self.name[len(prefix) :] if self.name.startswith(prefix) else ""
        return int(minutes) * 60.0 if minutes.isdigit() else None

    @property
    def uid(self) -> str:
        return self.entry.value.metadata.uid


@dataclass
class CronDecision:
    status: CronJobStatus
    start: float | None = None
    """The scheduled time to start a Job for (``job_for`` makes it)."""
    delete: list[tuple[CronJobRun, str]] = field(default_factory=list)
    """Jobs to delete, and why (each reported as ``SuccessfulDelete`` once gone)."""
    notes: list[Note] = field(default_factory=list)
    """Published with the status write."""
    start_notes: list[Note] = field(default_factory=list)
    """Published once the Job is created."""
    wake_at: float | None = None


def job_name(cronjob: CronJob, scheduled: float) -> str:
    """``<cronjob>-<minutes since 1970>``: Kubernetes' name, one per scheduled time."""
    return f"{cronjob.metadata.name}-{int(scheduled // 60)}"


def most_recent(schedule: CronSchedule, earliest: float, now: float) -> tuple[float | None, int]:
    """(the latest scheduled time in (earliest, now], how many fell due): Kubernetes'
    mostRecentScheduleTime, including its estimate of the count."""
    first = schedule.next_after(earliest)
    if now < first:
        return None, 0
    second = schedule.next_after(first)
    if now < second:
        return first, 1
    between = round(second - first)
    missed = int(now - first) // max(between, 1) + 1
    latest = None
    moment = schedule.next_after(first + (missed - 2) * between)
    while moment <= now:
        latest = moment
        moment = schedule.next_after(moment)
    return latest, missed


def decide(
    cronjob: CronJob, stored: CronJobStatus | None, runs: Sequence[CronJobRun], now: float
) -> CronDecision:
    meta, spec = cronjob.metadata, cronjob.spec
    base = stored if stored is not None and stored.uid == meta.uid else None
    base = base or CronJobStatus(namespace=meta.namespace, name=meta.name, uid=meta.uid)
    decision = CronDecision(base)
    notes = decision.notes
    last_success = base.last_successful_time
    # A Job started in an earlier round counts from when its write landed, whatever the status says.
    started = [t for run in runs if (t := run.scheduled_for(cronjob)) is not None]
    last_schedule = max([*started, base.last_schedule_time or 0.0]) or None
    noted, given_up = base.noted, base.given_up_through
    was_active = {ref.uid for ref in base.active}
    active = [run for run in runs if not run.finished]
    for run in runs:
        if run.finished and run.uid in was_active:
            notes.append(
                note(cronjob, "SawCompletedJob", f"Saw completed job: {run.name}, condition: {run.finished}")
            )
        if run.finished == "Complete" and run.finished_at is not None:
            last_success = max(last_success or 0.0, run.finished_at)
    for outcome, limit in (
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ):
        done = sorted(
            (r for r in runs if r.finished == outcome),
            key=lambda r: (r.started_at or r.entry.value.metadata.creation_timestamp, r.name),
        )
        for run in done[: max(0, len(done) - limit)]:
            decision.delete.append((run, f"beyond the cronjob's history limit ({limit} {outcome.lower()})"))
    schedule = CronSchedule(spec.schedule, spec.time_zone)
    try:
        decision.wake_at = schedule.next_after(now)
        due, missed = (None, 0) if spec.suspend else _due(cronjob, schedule, last_schedule, given_up, now)
    except NeverDue:
        due, missed = None, 0
    if due is not None and missed > MANY_MISSED:
        if noted != due:
            notes.append(
                note(
                    cronjob,
                    "TooManyMissedTimes",
                    f"too many missed start times ({missed}): not starting any; set or decrease"
                    " .spec.startingDeadlineSeconds or check clock skew",
                    warning=True,
                )
            )
        given_up, noted, due = due, due, None
    deadline = spec.starting_deadline_seconds
    if due is not None and deadline is not None and due + deadline < now:
        if noted != due:
            message = f"Missed scheduled time to start a job: {timestamp(due)}"
            notes.append(note(cronjob, "MissSchedule", message, warning=True))
        noted, due = due, None
    names = {run.name for run in runs}
    if due is not None and (last_schedule == due or job_name(cronjob, due) in names):
        due = None  # started already
    if due is not None and spec.concurrency_policy == "Forbid" and active:
        if noted != due:
            message = "Not starting job because prior execution is running and concurrency policy is Forbid"
            notes.append(note(cronjob, "JobAlreadyActive", message))
        noted, due = due, None
    if due is not None:
        if spec.concurrency_policy == "Replace":
            for run in active:
                decision.delete.append(
                    (run, "replaced by the next scheduled run (concurrencyPolicy Replace)")
                )
            active = []
        # lastScheduleTime moves once the Job is stored (the next round sees it): a start whose
        # write fails is tried again.
        decision.start = due
        decision.start_notes.append(
            note(cronjob, "SuccessfulCreate", f"Created job {job_name(cronjob, due)}")
        )
    deleted = {run.uid for run, _ in decision.delete}
    refs = [JobRef(name=run.name, uid=run.uid) for run in active if run.uid not in deleted]
    decision.status = CronJobStatus(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        active=refs,
        last_schedule_time=last_schedule,
        last_successful_time=last_success,
        noted=noted,
        given_up_through=given_up,
    )
    return decision


def _due(
    cronjob: CronJob, schedule: CronSchedule, last: float | None, given_up: float | None, now: float
) -> tuple[float | None, int]:
    earliest = max(last or 0.0, given_up or 0.0) or cronjob.metadata.creation_timestamp
    deadline = cronjob.spec.starting_deadline_seconds
    if deadline is not None:
        earliest = max(earliest, now - deadline)
    return most_recent(schedule, earliest, now)


def job_for(cronjob: CronJob, scheduled: float, uid: str, now: float) -> Job:
    """The Job a CronJob starts for one scheduled time, owned by it."""
    meta = cronjob.metadata
    template = cronjob.spec.job_template
    annotations = {**template.metadata.annotations, SCHEDULED_AT: timestamp(scheduled) or ""}
    return Job(
        metadata=JobMeta(
            name=job_name(cronjob, scheduled),
            namespace=meta.namespace,
            labels=dict(template.metadata.labels),
            annotations=annotations,
            uid=uid,
            generation=1,
            creation_timestamp=now,
            owner=OwnerRef(kind="CronJob", name=meta.name, uid=meta.uid),
        ),
        spec=template.spec,
    )


def note(cronjob: CronJob, reason: str, message: str, *, warning: bool = False) -> Note:
    meta = cronjob.metadata
    return Note("CronJob", meta.namespace, meta.name, reason, message, "Warning" if warning else "Normal")
