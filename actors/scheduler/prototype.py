"""The one pod every new pod of a workload is copied from.

A round may create thousands of pods: each is this prototype with its own name and uid,
built once per workload and never validated again (the template was validated on apply).
"""

from __future__ import annotations

from collections.abc import Mapping

from shoal.models.pod import OwnerRef, Pod, PodMeta
from shoal.models.workloads import PodSpec


def pod_prototype(
    *,
    namespace: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    owner: tuple[str, str, str],
    template_hash: str,
    spec: PodSpec,
    now: float,
) -> Pod:
    """``owner``: (kind, name, uid) of the workload the pods belong to."""
    kind, name, uid = owner
    return Pod.model_construct(
        metadata=PodMeta.model_construct(
            name="",
            namespace=namespace,
            labels=dict(labels),
            annotations=dict(annotations),
            uid="",
            generation=0,
            creation_timestamp=now,
            owner=OwnerRef.model_construct(kind=kind, name=name, uid=uid),
            template_hash=template_hash,
            deletion_timestamp=None,
        ),
        spec=spec,
        node_name="",
        scheduling=None,
        required_node="",
    )
