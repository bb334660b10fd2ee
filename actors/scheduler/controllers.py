"""The planner's steps for CronJobs, Jobs, DaemonSets and StatefulSets.

Each feeds a pure decision (``cronjobs.py``, ``jobs.py``, ``daemonsets.py``,
``statefulsets.py``) from the round's view and turns what it decides into commands: pods to
place, pods to remove, Jobs and claims to create or delete, statuses to write (with the
events they bring). CronJobs go first, so the Jobs
they delete are not reconciled in the same round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from shoal import keys
from shoal.actors.scheduler import cronjobs, daemonsets, jobs, statefulsets
from shoal.actors.scheduler.commands import CreateClaim, CreateJob, DeleteJob, DeleteStatus, Note, WriteStatus
from shoal.bus import kv
from shoal.bus.kv import Entry
from shoal.models.base import Record, replace
from shoal.models.pod import Pod

if TYPE_CHECKING:
    from shoal.actors.scheduler.planner import _Round

Placements = list[tuple[Pod, None]]


def _write_status(
    round_: _Round, bucket: str, key: str, stored: Entry[Record] | None, status: Record, notes: list[Note]
) -> None:
    if stored is not None and stored.value == status:
        return
    round_.commands.append(
        WriteStatus(bucket, key, stored.revision if stored else None, status, tuple(notes))
    )


def plan_cronjobs(round_: _Round) -> set[str]:
    """Start, replace and prune each CronJob's Jobs; delete Jobs whose CronJob is gone. Returns
    the keys of the Jobs deleted."""
    view, live = round_.view, round_.view.owners
    deleted: set[str] = set()
    by_owner: dict[str, list[Entry]] = {}
    for key, entry in view.jobs.items():
        owner = entry.value.metadata.owner
        if owner is None:
            continue
        if owner.uid not in live:
            round_.commands.append(DeleteJob(key, entry.revision, entry.value, "its cronjob was deleted"))
            deleted.add(key)
        else:
            by_owner.setdefault(owner.uid, []).append(entry)
    for key, entry in view.cronjobs.items():
        cronjob = entry.value
        runs = [_run(round_, job) for job in by_owner.get(cronjob.metadata.uid, [])]
        stored = view.cronjob_status.get(key)
        decision = cronjobs.decide(cronjob, stored.value if stored else None, runs, round_.now)
        for run, reason in decision.delete:
            done = cronjobs.note(cronjob, "SuccessfulDelete", f"Deleted job {run.name}")
            round_.commands.append(
                DeleteJob(run.entry.key, run.entry.revision, run.entry.value, reason, (done,))
            )
            deleted.add(run.entry.key)
        if decision.start is not None:
            job = cronjobs.job_for(cronjob, decision.start, round_.ids.uid(), round_.now)
            job_key = keys.object_key(job.metadata.namespace, job.metadata.name)
            round_.commands.append(CreateJob(job_key, job, tuple(decision.start_notes)))
        if decision.wake_at is not None:
            round_.wake_key("CronJob", key, decision.wake_at)
        _write_status(round_, kv.CRONJOB_STATUS.name, key, stored, decision.status, decision.notes)
    return deleted


def _run(round_: _Round, entry: Entry) -> cronjobs.CronJobRun:
    job = entry.value
    stored = round_.view.job_status.get(entry.key)
    status = stored.value if stored is not None and stored.value.uid == job.metadata.uid else None
    finished = status.finished if status is not None else None
    return cronjobs.CronJobRun(
        entry,
        finished.type if finished is not None else "",  # type: ignore[arg-type]
        finished.last_transition_time if finished is not None else None,
        status.start_time if status is not None else None,
    )


def _job_pod(round_: _Round, entry: Entry[Pod]) -> jobs.JobPod:
    pod = entry.value
    status = round_.view.status_of(pod)
    finished = [
        c.state.finished_at for c in (status.container_statuses if status else []) if c.state.finished_at
    ]
    return jobs.JobPod(
        entry,
        phase=status.phase if status is not None else None,
        ready=round_.ready(pod),
        restarts=status.restarts if status is not None else 0,
        finished_at=max(finished) if finished else None,
        draining=bool(pod.node_name) and round_.draining(pod.node_name),
        exit_unknown=status is not None
        and any(
            c.state.status == "terminated" and (c.state.exit_code or 0) < 0 for c in status.container_statuses
        ),
    )


def plan_jobs(round_: _Round, owned: Mapping[str, list[Entry[Pod]]], deleted: set[str]) -> Placements:
    """Each Job's pods kept to what it needs; its status, and its deletion once past its TTL."""
    view, now = round_.view, round_.now
    placements: Placements = []
    for key, entry in view.jobs.items():
        if key in deleted:
            continue
        job = entry.value
        pods = [_job_pod(round_, pod) for pod in owned.get(job.metadata.uid, [])]
        stored = view.job_status.get(key)
        decision = jobs.reconcile(job, pods, stored.value if stored else None, now)
        for pod_entry, reason in decision.remove:
            round_.remove(pod_entry, reason)
        create = decision.create
        if len(create) > round_.policy.burst:
            create = create[: round_.policy.burst]
            round_.commands.more.add(key)
        if create:
            make = jobs.pod_maker(job, job.spec.template.hash(), now, round_.priority(job.spec.template.spec))
            for index in create:
                pod = round_.unique_pod(lambda ids, i=index, m=make: m(i, ids.suffix(), ids.uid()))  # type: ignore[misc]
                placements.append((pod, None))
            # Tracked from the start: a pod that vanishes before the next round counts as failed.
            tracked = sorted([*decision.status.tracked, *(pod.metadata.uid for pod, _ in placements)])
            decision.status = replace(decision.status, tracked=tracked)
        if decision.wake_at is not None:
            round_.wake_key("Job", key, decision.wake_at)
        if decision.expired:
            ttl = job.spec.ttl_seconds_after_finished
            message = f"finished more than ttlSecondsAfterFinished ({ttl}s) ago: deleted with its pods"
            note = Note("Job", job.metadata.namespace, job.metadata.name, "Deleted", message)
            round_.commands.append(
                DeleteJob(key, entry.revision, job, "ttlSecondsAfterFinished passed", (note,))
            )
        _write_status(round_, kv.JOB_STATUS.name, key, stored, decision.status, decision.notes)
    return placements


def plan_daemonsets(round_: _Round, owned: Mapping[str, list[Entry[Pod]]]) -> Placements:
    """A pod on every eligible node, updates rolled by the DaemonSet's strategy, and its status."""
    view, now = round_.view, round_.now
    placements: Placements = []
    if not view.daemonsets:
        return placements
    nodes = [
        daemonsets.DaemonNode(name, dict(node.labels), node.taints, node.ready, node.lost)
        for name, node in view.nodes.items()
    ]
    for key, entry in view.daemonsets.items():
        daemonset = entry.value
        template_hash = daemonset.spec.template.hash()
        spec = daemonsets.daemon_spec(daemonset.spec.template.spec)
        min_ready = daemonset.spec.min_ready_seconds
        pods = []
        for pod_entry in owned.get(daemonset.metadata.uid, []):
            pod = pod_entry.value
            status = view.status_of(pod)
            pods.append(
                daemonsets.DaemonPod(
                    pod_entry,
                    updated=pod.metadata.template_hash == template_hash,
                    ready=round_.ready(pod),
                    available=round_.available(pod, min_ready),
                    failed=status is not None and status.phase == "Failed",
                )
            )
        decision = daemonsets.reconcile(daemonset, nodes, pods, spec)
        for pod_entry, reason in decision.remove:
            round_.remove(pod_entry, reason)
        if decision.create:
            make = daemonsets.pod_maker(daemonset, spec, template_hash, now, round_.priority(spec))
            for node in decision.create:
                pod = round_.unique_pod(lambda ids, n=node, m=make: m(n, ids.suffix(), ids.uid()))  # type: ignore[misc]
                placements.append((pod, None))
        _write_status(
            round_, kv.DAEMONSET_STATUS.name, key, view.daemonset_status.get(key), decision.status, []
        )
    return placements


def plan_statefulsets(round_: _Round, owned: Mapping[str, list[Entry[Pod]]]) -> Placements:
    """Each StatefulSet's ordinals, its claims, its updates, and its status."""
    view, now = round_.view, round_.now
    placements: Placements = []
    for key, entry in view.statefulsets.items():
        statefulset = entry.value
        meta = statefulset.metadata
        min_ready = statefulset.spec.min_ready_seconds
        pods = []
        for pod_entry in owned.get(meta.uid, []):
            pod = pod_entry.value
            status = view.status_of(pod)
            pods.append(
                statefulsets.StatefulPod(
                    pod_entry,
                    revision=pod.metadata.template_hash,
                    running_ready=round_.ready(pod) and status is not None and status.phase == "Running",
                    available=round_.available(pod, min_ready),
                    failed=status is not None and status.phase == "Failed",
                    draining=bool(pod.node_name) and round_.draining(pod.node_name),
                )
            )
        stored = view.statefulset_status.get(key)
        claims = view.claims | round_.new_claims
        decision = statefulsets.reconcile(statefulset, pods, claims, stored.value if stored else None, now)
        for pod_entry, reason in decision.remove:
            round_.remove(pod_entry, reason)
        for pod_entry, reason in decision.disrupt:
            round_.disrupt(pod_entry, reason)
        for claim in decision.claims:
            claim_meta = replace(claim.metadata, uid=round_.ids.uid(), creation_timestamp=now)
            claim = replace(claim, metadata=claim_meta)
            claim_key = statefulsets.claim_key(claim)
            if claim_key in round_.new_claims:
                continue
            round_.new_claims.add(claim_key)
            note = Note("StatefulSet", meta.namespace, meta.name, "SuccessfulCreate",
                        f"create Claim {claim_meta.name} in StatefulSet {meta.name} success")  # fmt: skip
            round_.commands.append(CreateClaim(claim_key, claim, (note,)))
        if decision.create:
            make = statefulsets.pod_maker(statefulset, now, round_.priority(statefulset.spec.template.spec))
            for ordinal, template in decision.create:
                pod = make(ordinal, template, round_.ids.uid())
                if pod.key in round_.named or view.pod(pod.key) is not None:
                    continue  # the ordinal's previous pod is still there (being removed)
                round_.named.add(pod.key)
                placements.append((pod, None))
        _write_status(round_, kv.STATEFULSET_STATUS.name, key, stored, decision.status, [])
    return placements


def budget_statuses(round_: _Round) -> None:
    """Each PodDisruptionBudget's counts, and the pods waiting for it; those of budgets gone go."""
    view = round_.view
    if view.pdbs:
        for budget in round_.budget_list():
            stored = view.pdb_status.get(budget.key)
            _write_status(round_, kv.PDB_STATUS.name, budget.key, stored, budget.status(), [])
    for key, entry in view.pdb_status.items():
        if key not in view.pdbs:
            round_.commands.append(DeleteStatus(kv.PDB_STATUS.name, key, entry.revision))


def forget_statuses(round_: _Round, live: frozenset[str]) -> None:
    """Statuses of Jobs, CronJobs, DaemonSets and StatefulSets that are gone are deleted."""
    view = round_.view
    for bucket, statuses, objects in (
        (kv.JOB_STATUS.name, view.job_status, view.jobs),
        (kv.CRONJOB_STATUS.name, view.cronjob_status, view.cronjobs),
        (kv.DAEMONSET_STATUS.name, view.daemonset_status, view.daemonsets),
        (kv.STATEFULSET_STATUS.name, view.statefulset_status, view.statefulsets),
    ):
        for key, entry in statuses.items():
            if key not in objects and entry.value.uid not in live:  # type: ignore[attr-defined]
                round_.commands.append(DeleteStatus(bucket, key, entry.revision))
