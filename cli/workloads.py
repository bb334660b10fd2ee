"""``get`` and ``describe`` of Jobs, CronJobs, DaemonSets, StatefulSets and PodDisruptionBudgets:
what to read, tables and details.

Registered in ``cli/listing.py`` (``LISTERS``) and ``cli/inspect.py`` (describers), as every
kind is; the columns are kubectl's.
"""

from __future__ import annotations

from typing import Any

from shoal import keys
from shoal.cli.listing import Lister, Listing, Scope, _columns, _row, pod_status_of, selected, together
from shoal.cli.output import age, console, fields, table
from shoal.client import ShoalClient
from shoal.manifests.render import pod_display_status
from shoal.manifests.render_workloads import (
    cronjob_object,
    daemonset_object,
    job_object,
    pdb_object,
    statefulset_object,
)
from shoal.models.batch import CronJob, CronJobStatus, Job, JobStatus
from shoal.models.daemonset import DaemonSet, DaemonSetStatus
from shoal.models.disruption import PodDisruptionBudget, PodDisruptionBudgetStatus
from shoal.models.pod import Pod, PodStatus
from shoal.models.statefulset import StatefulSet, StatefulSetStatus, claim_name
from shoal.models.workloads import PodTemplate


def human_duration(seconds: float) -> str:
    """kubectl's HumanDuration: ``42s``, ``3m20s``, ``47m``, ``5h10m``, ``30h``, ``3d4h``, ``120d``."""
    s = int(seconds)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def _status(statuses: dict[str, Any], obj: Any) -> Any:
    meta = obj.metadata
    status = statuses.get(keys.object_key(meta.namespace, meta.name))
    return status if status is not None and status.uid == meta.uid else None


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _owned(pods: dict[str, Pod], uid: str) -> list[Pod]:
    return sorted(
        (p for p in pods.values() if p.metadata.owner and p.metadata.owner.uid == uid),
        key=lambda p: p.metadata.name,
    )


def _pods_table(pods: list[Pod], statuses: dict[str, PodStatus]) -> None:
    console.print("Pods:" + ("          <none>" if not pods else ""))
    if pods:
        rows = [
            [p.metadata.name, pod_display_status(p, pod_status_of(p, statuses)), p.node_name or "<none>"]
            for p in pods
        ]
        table(["NAME", "STATUS", "NODE"], rows)


def _template(template: PodTemplate) -> None:
    console.print("Pod Template:")
    fields([("Labels", _labels(template.metadata.labels))], indent=2)
    console.print("  Containers:")
    for container in template.spec.containers:
        command = " ".join([*container.command, *container.args]) or "<image default>"
        console.print(f"    {container.name}: {container.image} ({command})")


# -- jobs -----------------------------------------------------------------------------------------


async def gather_jobs(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    data: dict[str, Any] = {"jobs": await client.jobs(), "status": await client.job_statuses()}
    if scope.name is not None:
        data["pods"], data["pod_status"] = await client.pods(), await client.pod_statuses()
    return data


def completions(job: Job, status: JobStatus | None) -> str:
    """kubectl's COMPLETIONS: ``3/5``, or ``1/1 of 3`` for a work queue."""
    succeeded = status.succeeded if status else 0
    if job.spec.completions is None:
        return f"{succeeded}/1 of {job.spec.parallelism}"
    return f"{succeeded}/{job.spec.completions}"


def duration(status: JobStatus | None, now: float) -> str:
    if status is None or status.start_time is None:
        return ""
    return human_duration((status.completion_time or now) - status.start_time)


def show_jobs(data: dict[str, Any], scope: Scope) -> Listing:
    columns = ["NAME", "COMPLETIONS", "DURATION", "AGE"]
    if scope.wide:
        columns += ["CONTAINERS", "IMAGES", "SELECTOR"]
    rows, objects = [], []
    for job in selected(data["jobs"].values(), scope):
        status = _status(data["status"], job)
        objects.append(job_object(job, status))
        meta = job.metadata
        cells = [
            meta.name,
            completions(job, status),
            duration(status, scope.now),
            age(meta.creation_timestamp, scope.now),
        ]
        if scope.wide:
            containers = job.spec.template.spec.containers
            cells += [
                ",".join(c.name for c in containers),
                ",".join(c.image for c in containers),
                f"batch.kubernetes.io/controller-uid={meta.uid}",
            ]
        rows.append(_row(scope, job, cells))
    return _columns(scope, columns), rows, objects


def describe_job(data: dict[str, Any], key: str, scope: Scope) -> bool:
    job: Job | None = data["jobs"].get(key)
    if job is None:
        return False
    status: JobStatus | None = _status(data["status"], job)
    meta, spec = job.metadata, job.spec
    pairs = [
        ("Name", meta.name),
        ("Namespace", meta.namespace),
        ("Selector", f"batch.kubernetes.io/controller-uid={meta.uid}"),
        ("Labels", _labels(meta.labels)),
        ("Annotations", _labels(meta.annotations)),
        ("Controlled By", f"{meta.owner.kind}/{meta.owner.name}" if meta.owner else "<none>"),
        ("Parallelism", str(spec.parallelism)),
        ("Completions", "<unset>" if spec.completions is None else str(spec.completions)),
        ("Completion Mode", spec.completion_mode),
        ("Suspend", str(spec.suspend).lower()),
        ("Backoff Limit", str(spec.backoff_limit)),
    ]
    if spec.ttl_seconds_after_finished is not None:
        pairs.append(("TTL Seconds After Finished", str(spec.ttl_seconds_after_finished)))
    if spec.active_deadline_seconds is not None:
        pairs.append(("Active Deadline Seconds", f"{spec.active_deadline_seconds}s"))
    if status is not None and status.start_time is not None:
        pairs.append(("Start Time", age(status.start_time, scope.now) + " ago"))
    if status is not None and status.completion_time is not None:
        pairs.append(("Completed At", age(status.completion_time, scope.now) + " ago"))
    if status is not None and status.start_time is not None:
        pairs.append(("Duration", duration(status, scope.now)))
    counts = (status.active, status.ready, status.succeeded, status.failed) if status else (0, 0, 0, 0)
    pairs.append(("Pods Statuses", "{} Active ({} Ready) / {} Succeeded / {} Failed".format(*counts)))
    if spec.indexed:
        pairs.append(("Completed Indexes", (status.completed_indexes if status else "") or "<none>"))
    fields(pairs)
    conditions = status.conditions if status else []
    console.print("Conditions:" + ("     <none>" if not conditions else ""))
    for condition in conditions:
        detail = f"{condition.reason}: {condition.message}" if condition.reason else condition.message
        since = age(condition.last_transition_time, scope.now)
        fields([(condition.type, f"{condition.status} ({detail}, {since} ago)")], indent=2)
    _template(spec.template)
    _pods_table(_owned(data["pods"], meta.uid), data["pod_status"])
    return True


# -- cron jobs ------------------------------------------------------------------------------------


async def gather_cronjobs(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    data: dict[str, Any] = {"cronjobs": await client.cronjobs(), "status": await client.cronjob_statuses()}
    if scope.name is not None:
        data["jobs"], data["job_status"] = await client.jobs(), await client.job_statuses()
    return data


def show_cronjobs(data: dict[str, Any], scope: Scope) -> Listing:
    columns = ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    rows, objects = [], []
    for cronjob in selected(data["cronjobs"].values(), scope):
        status: CronJobStatus | None = _status(data["status"], cronjob)
        objects.append(cronjob_object(cronjob, status))
        spec = cronjob.spec
        last = status.last_schedule_time if status else None
        cells = [
            cronjob.metadata.name,
            spec.schedule,
            spec.time_zone or "<none>",
            str(spec.suspend),
            str(len(status.active) if status else 0),
            age(last, scope.now) if last else "<none>",
            age(cronjob.metadata.creation_timestamp, scope.now),
        ]
        rows.append(_row(scope, cronjob, cells))
    return _columns(scope, columns), rows, objects


def describe_cronjob(data: dict[str, Any], key: str, scope: Scope) -> bool:
    cronjob: CronJob | None = data["cronjobs"].get(key)
    if cronjob is None:
        return False
    status: CronJobStatus | None = _status(data["status"], cronjob)
    meta, spec = cronjob.metadata, cronjob.spec
    last = status.last_schedule_time if status else None
    fields(
        [
            ("Name", meta.name),
            ("Namespace", meta.namespace),
            ("Labels", _labels(meta.labels)),
            ("Annotations", _labels(meta.annotations)),
            ("Schedule", spec.schedule),
            ("Time Zone", spec.time_zone or "<unset> (UTC)"),
            ("Concurrency Policy", spec.concurrency_policy),
            ("Suspend", str(spec.suspend)),
            ("Successful Job History Limit", str(spec.successful_jobs_history_limit)),
            ("Failed Job History Limit", str(spec.failed_jobs_history_limit)),
            (
                "Starting Deadline Seconds",
                f"{spec.starting_deadline_seconds}s"
                if spec.starting_deadline_seconds is not None
                else "<unset>",
            ),
            ("Last Schedule Time", age(last, scope.now) + " ago" if last else "<unset>"),
            (
                "Active Jobs",
                ", ".join(r.name for r in status.active) if status and status.active else "<none>",
            ),
        ]
    )
    _template(spec.job_template.spec.template)
    owned = sorted(
        (j for j in data["jobs"].values() if j.metadata.owner and j.metadata.owner.uid == meta.uid),
        key=lambda j: j.metadata.name,
    )
    console.print("Jobs:" + ("          <none>" if not owned else ""))
    if owned:
        rows = []
        for job in owned:
            job_status = _status(data["job_status"], job)
            finished = job_status.finished if job_status else None
            rows.append(
                [job.metadata.name, completions(job, job_status), finished.type if finished else "Running"]
            )
        table(["NAME", "COMPLETIONS", "STATUS"], rows)
    return True


# -- daemon sets ----------------------------------------------------------------------------------


async def gather_daemonsets(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    data: dict[str, Any] = {
        "daemonsets": await client.daemonsets(),
        "status": await client.daemonset_statuses(),
    }
    if scope.name is not None:
        data["pods"], data["pod_status"] = await client.pods(), await client.pod_statuses()
    return data


PHASES = ("Running", "Pending", "Succeeded", "Failed")


def _node_selector(daemonset: DaemonSet) -> str:
    selector = daemonset.spec.template.spec.node_selector
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


def show_daemonsets(data: dict[str, Any], scope: Scope) -> Listing:
    columns = ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"]
    if scope.wide:
        columns += ["CONTAINERS", "IMAGES", "SELECTOR"]
    rows, objects = [], []
    for daemonset in selected(data["daemonsets"].values(), scope):
        status: DaemonSetStatus | None = _status(data["status"], daemonset)
        objects.append(daemonset_object(daemonset, status))
        numbers = (
            [
                status.desired_number_scheduled,
                status.current_number_scheduled,
                status.number_ready,
                status.updated_number_scheduled,
                status.number_available,
            ]
            if status
            else [0] * 5
        )
        meta = daemonset.metadata
        cells = [
            meta.name,
            *map(str, numbers),
            _node_selector(daemonset),
            age(meta.creation_timestamp, scope.now),
        ]
        if scope.wide:
            containers = daemonset.spec.template.spec.containers
            selector = daemonset.spec.selector.match_labels
            cells += [
                ",".join(c.name for c in containers),
                ",".join(c.image for c in containers),
                ",".join(f"{k}={v}" for k, v in selector.items()),
            ]
        rows.append(_row(scope, daemonset, cells))
    return _columns(scope, columns), rows, objects


def describe_daemonset(data: dict[str, Any], key: str, scope: Scope) -> bool:
    daemonset: DaemonSet | None = data["daemonsets"].get(key)
    if daemonset is None:
        return False
    status: DaemonSetStatus | None = _status(data["status"], daemonset)
    meta, spec = daemonset.metadata, daemonset.spec
    pods = _owned(data["pods"], meta.uid)
    counts = status or DaemonSetStatus(namespace=meta.namespace, name=meta.name, uid=meta.uid)
    phases = [s.phase if (s := pod_status_of(p, data["pod_status"])) else "Pending" for p in pods]
    strategy = spec.update_strategy
    if strategy.type == "RollingUpdate":
        surge, unavailable = strategy.limits(status.desired_number_scheduled if status else 0)
        shown = f"RollingUpdate (max unavailable {unavailable}, max surge {surge})"
    else:
        shown = "OnDelete"
    fields(
        [
            ("Name", meta.name),
            ("Namespace", meta.namespace),
            ("Selector", _labels(spec.selector.match_labels)),
            ("Node-Selector", _node_selector(daemonset)),
            ("Labels", _labels(meta.labels)),
            ("Annotations", _labels(meta.annotations)),
            ("Desired Number of Nodes Scheduled", str(counts.desired_number_scheduled)),
            ("Current Number of Nodes Scheduled", str(counts.current_number_scheduled)),
            ("Number of Nodes Scheduled with Up-to-date Pods", str(counts.updated_number_scheduled)),
            ("Number of Nodes Scheduled with Available Pods", str(counts.number_available)),
            ("Number of Nodes Misscheduled", str(counts.number_misscheduled)),
            ("Pods Status", " / ".join(f"{phases.count(p)} {p}" for p in PHASES)),
            ("Update Strategy", shown),
            ("Min Ready Seconds", str(spec.min_ready_seconds)),
        ]
    )
    _template(spec.template)
    _pods_table(pods, data["pod_status"])
    return True


# -- stateful sets --------------------------------------------------------------------------------


async def gather_statefulsets(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    data: dict[str, Any] = {
        "statefulsets": await client.statefulsets(),
        "status": await client.statefulset_statuses(),
    }
    if scope.name is not None:
        data["pods"], data["pod_status"] = await client.pods(), await client.pod_statuses()
        data["claims"] = await client.claims()
    return data


def show_statefulsets(data: dict[str, Any], scope: Scope) -> Listing:
    columns = ["NAME", "READY", "AGE"]
    if scope.wide:
        columns += ["CONTAINERS", "IMAGES"]
    rows, objects = [], []
    for statefulset in selected(data["statefulsets"].values(), scope):
        status: StatefulSetStatus | None = _status(data["status"], statefulset)
        objects.append(statefulset_object(statefulset, status))
        meta = statefulset.metadata
        ready = status.ready_replicas if status else 0
        cells = [
            meta.name,
            f"{ready}/{statefulset.spec.desired_replicas}",
            age(meta.creation_timestamp, scope.now),
        ]
        if scope.wide:
            containers = statefulset.spec.template.spec.containers
            cells += [",".join(c.name for c in containers), ",".join(c.image for c in containers)]
        rows.append(_row(scope, statefulset, cells))
    return _columns(scope, columns), rows, objects


def describe_statefulset(data: dict[str, Any], key: str, scope: Scope) -> bool:
    statefulset: StatefulSet | None = data["statefulsets"].get(key)
    if statefulset is None:
        return False
    status: StatefulSetStatus | None = _status(data["status"], statefulset)
    meta, spec = statefulset.metadata, statefulset.spec
    pods = _owned(data["pods"], meta.uid)
    phases = [s.phase if (s := pod_status_of(p, data["pod_status"])) else "Pending" for p in pods]
    strategy = spec.update_strategy
    shown = (
        f"RollingUpdate (partition {strategy.partition})" if strategy.type == "RollingUpdate" else "OnDelete"
    )
    claims = sorted(
        claim_name(t.metadata.name, meta.name, ordinal)
        for t in spec.volume_claim_templates
        for ordinal in range(spec.first_ordinal, spec.first_ordinal + spec.desired_replicas)
    )
    fields(
        [
            ("Name", meta.name),
            ("Namespace", meta.namespace),
            ("CreationTimestamp", age(meta.creation_timestamp, scope.now) + " ago"),
            ("Selector", _labels(spec.selector.match_labels)),
            ("Labels", _labels(meta.labels)),
            ("Annotations", _labels(meta.annotations)),
            ("Replicas", f"{spec.desired_replicas} desired | {status.replicas if status else 0} total"),
            ("Service", spec.service_name or "<none>"),
            ("Pod Management Policy", spec.pod_management_policy),
            ("Update Strategy", shown),
            ("Pods Status", " / ".join(f"{phases.count(p)} {p}" for p in PHASES)),
            ("Volume Claims", ", ".join(claims) or "<none>"),
            ("Current Revision", status.current_revision if status else "<none>"),
            ("Update Revision", status.update_revision if status else "<none>"),
        ]
    )
    _template(spec.template)
    _pods_table(pods, data["pod_status"])
    return True


# -- disruption budgets ---------------------------------------------------------------------------


async def gather_pdbs(client: ShoalClient, scope: Scope) -> dict[str, Any]:
    return await together(pdbs=client.pdbs(), status=client.pdb_statuses())


def show_pdbs(data: dict[str, Any], scope: Scope) -> Listing:
    columns = ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]
    rows, objects = [], []
    for pdb in selected(data["pdbs"].values(), scope):
        status: PodDisruptionBudgetStatus | None = _status(data["status"], pdb)
        objects.append(pdb_object(pdb, status))
        spec, meta = pdb.spec, pdb.metadata
        shown = [
            "N/A" if spec.min_available is None else str(spec.min_available),
            "N/A" if spec.max_unavailable is None else str(spec.max_unavailable),
            str(status.disruptions_allowed if status else 0),
        ]
        rows.append(_row(scope, pdb, [meta.name, *shown, age(meta.creation_timestamp, scope.now)]))
    return _columns(scope, columns), rows, objects


def describe_pdb(data: dict[str, Any], key: str, scope: Scope) -> bool:
    pdb: PodDisruptionBudget | None = data["pdbs"].get(key)
    if pdb is None:
        return False
    status: PodDisruptionBudgetStatus | None = _status(data["status"], pdb)
    meta, spec = pdb.metadata, pdb.spec
    limit = ("Min available", spec.min_available) if spec.min_available is not None else (
        "Max unavailable", spec.max_unavailable)  # fmt: skip
    counts = status or PodDisruptionBudgetStatus(namespace=meta.namespace, name=meta.name, uid=meta.uid)
    fields(
        [
            ("Name", meta.name),
            ("Namespace", meta.namespace),
            (limit[0], str(limit[1])),
            ("Selector", _labels(spec.selector.match_labels)),
            ("Status", ""),
            ("    Allowed disruptions", str(counts.disruptions_allowed)),
            ("    Current", str(counts.current_healthy)),
            ("    Desired", str(counts.desired_healthy)),
            ("    Total", str(counts.expected_pods)),
            ("Waiting", ", ".join(counts.waiting) or "<none>"),
        ]
    )
    return True


LISTERS = {
    "PodDisruptionBudget": Lister(gather_pdbs, show_pdbs),
    "Job": Lister(gather_jobs, show_jobs),
    "CronJob": Lister(gather_cronjobs, show_cronjobs),
    "DaemonSet": Lister(gather_daemonsets, show_daemonsets),
    "StatefulSet": Lister(gather_statefulsets, show_statefulsets),
}
DESCRIBERS = {
    "PodDisruptionBudget": describe_pdb,
    "Job": describe_job,
    "CronJob": describe_cronjob,
    "DaemonSet": describe_daemonset,
    "StatefulSet": describe_statefulset,
}
