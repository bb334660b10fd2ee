"""``batch/v1`` Job and CronJob: pods that run to completion, once or on a schedule.

The models take the Kubernetes YAML people already have, with Kubernetes' defaults. Their
statuses (``JobStatus``, ``CronJobStatus``) are the scheduler's, each in its own bucket.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from shoal.models.base import INT32_MAX, ObjectMeta, Record, ShoalModel, check_dns_label
from shoal.models.cron import check_schedule, check_time_zone
from shoal.models.pod import OwnerRef
from shoal.models.scheduling import PodSelector
from shoal.models.workloads import PodTemplate, TemplateMeta

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
"""The annotation (and label) giving an Indexed Job's pod its index."""
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
"""The annotation a CronJob's Job carries: the scheduled time it runs for (RFC 3339)."""
MAX_INDEXED = 100_000
"""Kubernetes' limit on completions and parallelism of an Indexed Job."""


class JobMeta(ObjectMeta):
    owner: OwnerRef | None = None
    """The CronJob that made the Job, if one did (set by Shoal, never taken from a manifest)."""


class JobSpec(ShoalModel):
    parallelism: int = Field(default=1, ge=0, le=INT32_MAX)
    completions: int | None = Field(default=None, ge=0, le=INT32_MAX)
    """None: a work queue (the Job is done once any pod succeeded and none is left running)."""
    completion_mode: Literal["NonIndexed", "Indexed"] = "NonIndexed"
    backoff_limit: int = Field(default=6, ge=0, le=INT32_MAX)
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0, le=INT32_MAX)
    suspend: bool = False
    template: PodTemplate
    selector: PodSelector | None = None
    """Accepted; pods are selected by the Job's uid, as Kubernetes does without manualSelector."""
    manual_selector: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, value: Any) -> Any:
        # Kubernetes: a Job that names neither runs one pod to one completion.
        if isinstance(value, dict) and value.get("completions") is None and value.get("parallelism") is None:
            value = {**value, "completions": 1}
        return value

    @model_validator(mode="after")
    def _indexed_needs_completions(self) -> JobSpec:
        if self.completion_mode == "Indexed":
            if self.completions is None:
                raise ValueError("completions is required when completionMode is Indexed")
            if self.completions > MAX_INDEXED or self.parallelism > MAX_INDEXED:
                raise ValueError(f"an Indexed Job takes at most {MAX_INDEXED} completions and parallelism")
        return self

    @property
    def indexed(self) -> bool:
        return self.completion_mode == "Indexed"


class Job(Record):
    api_version: Literal["batch/v1"] = "batch/v1"
    kind: Literal["Job"] = "Job"
    metadata: JobMeta
    spec: JobSpec


ConditionType = Literal["Complete", "Failed", "Suspended"]


class JobCondition(ShoalModel):
    type: ConditionType
    status: Literal["True", "False"] = "True"
    reason: str = ""
    message: str = ""
    last_transition_time: float = 0.0


class JobStatus(Record):
    """What the scheduler observed of a Job's pods, and what it concluded."""

    namespace: str
    name: str
    uid: str
    active: int = 0
    ready: int = 0
    terminating: int = 0
    succeeded: int = 0
    failed: int = 0
    start_time: float | None = None
    completion_time: float | None = None
    conditions: list[JobCondition] = Field(default_factory=list)
    completed_indexes: str = ""
    """Indexed Jobs: the indexes done, as Kubernetes writes them (``0-2,5``)."""
    tracked: list[str] = Field(default_factory=list)
    """Uids of the pods running or about to run: one that vanishes unfinished counts as failed
    (what Kubernetes' job-tracking finalizers are for)."""
    counted: list[str] = Field(default_factory=list)
    """Uids of pods still stored that are counted already (or were removed by the Job itself)."""
    doubtful: dict[str, float] = Field(default_factory=dict)
    """Uids of pods reported Failed without an exit code, and since when: counted only if that
    lasts (a process that just ended is first seen gone, before Podman has its exit code)."""
    failures_after_success: int = 0
    """Failures since the last success: the pod backoff doubles with each (10 s, 20 s... 6 min)."""
    last_failure_time: float | None = None

    def condition(self, kind: ConditionType) -> JobCondition | None:
        return next((c for c in self.conditions if c.type == kind and c.status == "True"), None)

    @property
    def finished(self) -> JobCondition | None:
        """The Complete or Failed condition, once the Job has one."""
        return self.condition("Complete") or self.condition("Failed")


class JobTemplate(ShoalModel):
    metadata: TemplateMeta = Field(default_factory=TemplateMeta)
    spec: JobSpec


def _cronjob_name(value: str) -> str:
    # The Jobs it makes are named <cronjob>-<minutes since 1970>: 11 characters more.
    if len(value) > 52:
        raise ValueError(f"{value!r} is too long for a CronJob: at most 52 characters")
    return value


class CronJobMeta(ObjectMeta):
    name: Annotated[str, AfterValidator(check_dns_label), AfterValidator(_cronjob_name)]  # type: ignore[assignment]


ConcurrencyPolicy = Literal["Allow", "Forbid", "Replace"]


class CronJobSpec(ShoalModel):
    schedule: Annotated[str, AfterValidator(check_schedule)]
    time_zone: Annotated[str, AfterValidator(check_time_zone)] | None = None
    starting_deadline_seconds: int | None = Field(default=None, ge=0)
    concurrency_policy: ConcurrencyPolicy = "Allow"
    suspend: bool = False
    successful_jobs_history_limit: int = Field(default=3, ge=0, le=INT32_MAX)
    failed_jobs_history_limit: int = Field(default=1, ge=0, le=INT32_MAX)
    job_template: JobTemplate


class CronJob(Record):
    api_version: Literal["batch/v1"] = "batch/v1"
    kind: Literal["CronJob"] = "CronJob"
    metadata: CronJobMeta
    spec: CronJobSpec


class JobRef(ShoalModel):
    name: str
    uid: str


class CronJobStatus(Record):
    """What the scheduler keeps of a CronJob: its running Jobs and when it last started one."""

    namespace: str
    name: str
    uid: str
    active: list[JobRef] = Field(default_factory=list)
    last_schedule_time: float | None = None
    last_successful_time: float | None = None
    noted: float | None = None
    """The scheduled time last reported as not started (so each is reported once)."""
    given_up_through: float | None = None
    """Runs due up to here were given up on (more than 100 missed): counting starts after it."""
