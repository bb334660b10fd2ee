"""CronJobs, decided without servers and without waiting: schedules, missed runs, concurrency
policies and history limits, each with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from shoal.actors.scheduler.commands import CreateJob, DeleteJob
from shoal.actors.scheduler.cronjobs import CronJobRun, decide, job_name, most_recent
from shoal.bus import kv
from shoal.bus.kv import Entry
from shoal.errors import InvalidManifest
from shoal.manifests.files import parse_documents
from shoal.manifests.validate import validate_documents
from shoal.models.batch import SCHEDULED_AT, CronJob, CronJobStatus, Job, JobCondition, JobStatus
from shoal.models.cron import CronSchedule
from tests.workload_sim import Cluster, model_of

CJ_STATUS = kv.CRONJOB_STATUS.name


def at(text: str, zone: str = "UTC") -> float:
    """``2026-03-02 10:00`` in ``zone``, as Unix seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


CREATED = at("2026-03-02 09:58:30")


def cj_manifest(schedule: str = "*/5 * * * *", **spec: Any) -> str:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}
    body = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "work"},
        "spec": {"schedule": schedule, **spec, "jobTemplate": {"metadata": {"labels": {"run": "nightly"}},
                                                               "spec": {"template": template}}},
    }  # fmt: skip
    return yaml.safe_dump(body)


def make_cj(schedule: str = "*/5 * * * *", **spec: Any) -> CronJob:
    return model_of(cj_manifest(schedule, **spec), uid="cj-uid", created=CREATED)


def run_of(
    cronjob: CronJob, scheduled: float, finished: str = "", finished_at: float | None = None
) -> CronJobRun:
    from shoal.actors.scheduler.cronjobs import job_for

    job = job_for(cronjob, scheduled, f"job-{int(scheduled)}", scheduled + 1)
    return CronJobRun(Entry(f"default.{job.metadata.name}", job, 1), finished, finished_at, scheduled + 1)  # type: ignore[arg-type]


def status(**fields: Any) -> CronJobStatus:
    return CronJobStatus(namespace="default", name="work", uid="cj-uid", **fields)


# -- the schedule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "zone", "after", "expected"),
    [
        ("*/5 * * * *", None, "2026-03-02 09:58:30", "2026-03-02 10:00:00"),
        ("*/5 * * * *", None, "2026-03-02 10:00:00", "2026-03-02 10:05:00"),
        ("@hourly", None, "2026-03-02 10:00:01", "2026-03-02 11:00:00"),
        ("0 9 * * 1-5", None, "2026-03-06 09:30:00", "2026-03-09 09:00:00"),  # Friday -> Monday
        ("0 0 29 2 *", None, "2026-03-01 00:00:00", "2028-02-29 00:00:00"),
    ],
)
def test_next_scheduled_time(schedule: str, zone: str | None, after: str, expected: str) -> None:
    assert CronSchedule(schedule, zone).next_after(at(after)) == at(expected)


def test_a_time_zone_moves_the_schedule_with_daylight_saving_time() -> None:
    schedule = CronSchedule("0 9 * * *", "Europe/Berlin")
    before = schedule.next_after(at("2026-03-27 12:00", "Europe/Berlin"))
    after = schedule.next_after(at("2026-03-30 00:00", "Europe/Berlin"))
    assert datetime.fromtimestamp(before, UTC).hour == 8  # CET: UTC+1
    assert datetime.fromtimestamp(after, UTC).hour == 7  # CEST: UTC+2


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"schedule": "* * * * * *"}, "five fields"),
        ({"schedule": "61 * * * *"}, "not a valid cron schedule"),
        ({"schedule": "TZ=UTC * * * * *"}, "spec.timeZone"),
        ({"schedule": "@reboot"}, "unknown macro"),
        ({"schedule": "0 0 31 2 *"}, "never comes due"),
        ({"timeZone": "Mars/Olympus"}, "unknown time zone"),
        ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy"),
        ({"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds"),
    ],
)
def test_bad_cronjobs_are_refused_naming_the_field(spec: dict[str, Any], expected: str) -> None:
    schedule = spec.pop("schedule", "*/5 * * * *")
    with pytest.raises(InvalidManifest) as caught:
        validate_documents(parse_documents(cj_manifest(schedule, **spec), "t"))
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_a_cronjob_name_leaves_room_for_its_jobs_names() -> None:
    text = cj_manifest().replace("name: work", "name: " + "x" * 53)
    with pytest.raises(InvalidManifest) as caught:
        validate_documents(parse_documents(text, "t"))
    assert "at most 52" in caught.value.problems[0]


@pytest.mark.parametrize(
    ("earliest", "now", "latest", "missed"),
    [
        ("2026-03-02 09:58:30", "2026-03-02 09:59:59", None, 0),
        ("2026-03-02 09:58:30", "2026-03-02 10:00:00", "2026-03-02 10:00:00", 1),
        ("2026-03-02 09:58:30", "2026-03-02 10:04:59", "2026-03-02 10:00:00", 1),
        ("2026-03-02 09:58:30", "2026-03-02 10:17:00", "2026-03-02 10:15:00", 4),
        ("2026-03-02 09:58:30", "2026-03-03 09:58:30", "2026-03-03 09:55:00", 288),
    ],
)
def test_most_recent_missed_time_and_the_count(
    earliest: str, now: str, latest: str | None, missed: int
) -> None:
    found, count = most_recent(CronSchedule("*/5 * * * *"), at(earliest), at(now))
    assert found == (at(latest) if latest else None)
    assert count == missed


# -- decisions ----------------------------------------------------------------------------------


def test_nothing_runs_before_the_first_scheduled_time_and_the_wake_is_set_for_it() -> None:
    decision = decide(make_cj(), None, [], at("2026-03-02 09:59:00"))
    assert decision.start is None and decision.wake_at == at("2026-03-02 10:00:00")


def test_a_due_run_starts_one_job_named_for_its_time() -> None:
    cronjob = make_cj()
    decision = decide(cronjob, None, [], at("2026-03-02 10:00:01"))
    assert decision.start == at("2026-03-02 10:00:00")
    assert job_name(cronjob, decision.start) == f"work-{int(at('2026-03-02 10:00') // 60)}"
    assert decision.wake_at == at("2026-03-02 10:05:00")
    # the next round sees the Job: it is not started again, and lastScheduleTime follows it
    again = decide(cronjob, decision.status, [run_of(cronjob, decision.start)], at("2026-03-02 10:00:02"))
    assert again.start is None
    assert again.status.last_schedule_time == at("2026-03-02 10:00:00")
    assert [r.name for r in again.status.active] == [job_name(cronjob, decision.start)]


def test_after_downtime_only_the_most_recent_missed_run_starts() -> None:
    cronjob = make_cj()
    last = at("2026-03-02 10:00:00")
    decision = decide(cronjob, status(last_schedule_time=last), [], at("2026-03-02 10:42:10"))
    assert decision.start == at("2026-03-02 10:40:00")


def test_a_missed_run_older_than_the_starting_deadline_is_not_started() -> None:
    cronjob = make_cj(startingDeadlineSeconds=60)
    stored = status(last_schedule_time=at("2026-03-02 10:00:00"))
    late = decide(cronjob, stored, [], at("2026-03-02 10:41:30"))
    assert late.start is None and late.wake_at == at("2026-03-02 10:45:00")
    in_time = decide(cronjob, stored, [], at("2026-03-02 10:40:50"))
    assert in_time.start == at("2026-03-02 10:40:00")


def test_more_than_100_missed_runs_warn_and_start_nothing_then_the_schedule_goes_on() -> None:
    cronjob = make_cj()
    stored = status(last_schedule_time=at("2026-03-02 10:00:00"))
    decision = decide(cronjob, stored, [], at("2026-03-03 10:00:10"))  # 288 missed
    assert decision.start is None
    [note] = decision.notes
    assert note.reason == "TooManyMissedTimes" and note.type == "Warning"
    assert decision.status.given_up_through == at("2026-03-03 10:00:00")
    quiet = decide(cronjob, decision.status, [], at("2026-03-03 10:01:00"))
    assert quiet.notes == [] and quiet.start is None
    nxt = decide(cronjob, decision.status, [], at("2026-03-03 10:05:01"))
    assert nxt.start == at("2026-03-03 10:05:00")


def test_a_deadline_keeps_the_missed_count_small_so_the_latest_run_starts() -> None:
    cronjob = make_cj(startingDeadlineSeconds=600)
    stored = status(last_schedule_time=at("2026-03-02 10:00:00"))
    decision = decide(cronjob, stored, [], at("2026-03-03 10:00:10"))
    assert decision.start == at("2026-03-03 10:00:00") and decision.notes == []


def test_forbid_skips_while_a_job_runs_and_starts_the_missed_run_once_it_finished() -> None:
    cronjob = make_cj(concurrencyPolicy="Forbid")
    first = at("2026-03-02 10:00:00")
    stored = status(last_schedule_time=first, active=[])
    running = [run_of(cronjob, first)]
    decision = decide(cronjob, stored, running, at("2026-03-02 10:05:01"))
    assert decision.start is None and [n.reason for n in decision.notes] == ["JobAlreadyActive"]
    again = decide(cronjob, decision.status, running, at("2026-03-02 10:06:00"))
    assert again.notes == []  # said once
    done = [run_of(cronjob, first, "Complete", at("2026-03-02 10:06:30"))]
    after = decide(cronjob, again.status, done, at("2026-03-02 10:06:31"))
    assert after.start == at("2026-03-02 10:05:00")
    assert after.status.last_successful_time == at("2026-03-02 10:06:30")


def test_replace_deletes_the_running_job_before_starting_the_next() -> None:
    cronjob = make_cj(concurrencyPolicy="Replace")
    first = at("2026-03-02 10:00:00")
    running = [run_of(cronjob, first)]
    decision = decide(cronjob, status(last_schedule_time=first), running, at("2026-03-02 10:05:00"))
    assert decision.start == at("2026-03-02 10:05:00")
    assert [run.name for run, _ in decision.delete] == [running[0].name]


def test_allow_runs_side_by_side() -> None:
    cronjob = make_cj()
    first = at("2026-03-02 10:00:00")
    decision = decide(
        cronjob, status(last_schedule_time=first), [run_of(cronjob, first)], at("2026-03-02 10:05:00")
    )
    assert decision.start == at("2026-03-02 10:05:00") and decision.delete == []


def test_suspend_starts_nothing_and_resuming_starts_the_latest_missed_run() -> None:
    stored = status(last_schedule_time=at("2026-03-02 10:00:00"))
    assert decide(make_cj(suspend=True), stored, [], at("2026-03-02 10:31:00")).start is None
    assert decide(make_cj(), stored, [], at("2026-03-02 10:31:00")).start == at("2026-03-02 10:30:00")


def test_history_limits_delete_the_oldest_finished_jobs() -> None:
    cronjob = make_cj(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=0)
    times = [at(f"2026-03-02 10:{m:02d}:00") for m in (0, 5, 10, 15)]
    runs = [run_of(cronjob, t, "Complete", t + 30) for t in times[:3]] + [
        run_of(cronjob, times[3], "Failed", times[3] + 30)
    ]
    decision = decide(cronjob, status(last_schedule_time=times[3]), runs, at("2026-03-02 10:16:00"))
    assert sorted(run.name for run, _ in decision.delete) == sorted([runs[0].name, runs[3].name])


def test_a_job_that_finished_is_reported_once_and_leaves_the_active_list() -> None:
    cronjob = make_cj()
    first = at("2026-03-02 10:00:00")
    running = run_of(cronjob, first)
    stored = decide(cronjob, status(last_schedule_time=first), [running], at("2026-03-02 10:01")).status
    done = run_of(cronjob, first, "Failed", at("2026-03-02 10:02"))
    decision = decide(cronjob, stored, [done], at("2026-03-02 10:02:01"))
    assert [n.reason for n in decision.notes] == ["SawCompletedJob"] and decision.status.active == []
    assert decide(cronjob, decision.status, [done], at("2026-03-02 10:03")).notes == []


def test_a_cronjobs_job_comes_from_its_template_owned_by_it() -> None:
    from shoal.actors.scheduler.cronjobs import job_for

    cronjob = make_cj()
    job = job_for(cronjob, at("2026-03-02 10:00"), "u1", at("2026-03-02 10:00:01"))
    assert job.metadata.owner is not None and job.metadata.owner.kind == "CronJob"
    assert job.metadata.labels == {"run": "nightly"}
    assert job.metadata.annotations[SCHEDULED_AT] == "2026-03-02T10:00:00Z"
    assert job.spec == cronjob.spec.job_template.spec


# -- through the planner ------------------------------------------------------------------------


def test_the_planner_creates_the_job_and_deletes_jobs_whose_cronjob_is_gone() -> None:
    cluster = Cluster()
    cluster.add("cronjobs", make_cj())
    commands = cluster.round(at("2026-03-02 10:00:02"))
    [create] = [c for c in commands if isinstance(c, CreateJob)]
    assert commands.wake_keys[("CronJob", "default.work")] == at("2026-03-02 10:05:00")
    assert [n.reason for n in create.notes] == ["SuccessfulCreate"]
    commands = cluster.round(at("2026-03-02 10:00:03"))
    assert not [c for c in commands if isinstance(c, CreateJob)]
    job_pods = [
        p for p in cluster.pods.values() if p.value.metadata.owner and p.value.metadata.owner.kind == "Job"
    ]
    assert len(job_pods) == 1  # the Job ran its pod
    assert cluster.status(CJ_STATUS).last_schedule_time == at("2026-03-02 10:00:00")
    cluster.objects["cronjobs"].clear()
    commands = cluster.round(at("2026-03-02 10:00:04"))
    assert [c.reason for c in commands if isinstance(c, DeleteJob)] == ["its cronjob was deleted"]


def test_the_planner_marks_finished_jobs_for_the_cronjob() -> None:
    cluster = Cluster()
    cronjob = make_cj(successfulJobsHistoryLimit=0)
    cluster.add("cronjobs", cronjob)
    cluster.round(at("2026-03-02 10:00:02"))
    cluster.round(at("2026-03-02 10:00:03"))
    [job_entry] = cluster.objects["jobs"].values()
    job: Job = job_entry.value
    finished = JobStatus(
        namespace="default", name=job.metadata.name, uid=job.metadata.uid,
        conditions=[JobCondition(type="Complete", last_transition_time=at("2026-03-02 10:00:09"))],
    )  # fmt: skip
    cluster.statuses[kv.JOB_STATUS.name][job_entry.key] = Entry(job_entry.key, finished, 1)
    commands = cluster.round(at("2026-03-02 10:00:10"))
    assert [c.key for c in commands if isinstance(c, DeleteJob)] == [job_entry.key]
    assert cluster.status(CJ_STATUS).last_successful_time == at("2026-03-02 10:00:09")
