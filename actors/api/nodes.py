"""What an operator's request does to a node's spec, decided without I/O.

Labels and taints a node registered with hold until an operator first changes them; from
then on the node spec holds the whole set (as the kubelet's ``--node-labels`` apply only
at registration in Kubernetes).
"""

from __future__ import annotations

from shoal.models.api import NodeUpdateRequest
from shoal.models.node import Node, NodeSpec


def updated_spec(spec: NodeSpec, node: Node, request: NodeUpdateRequest, now: float) -> NodeSpec:
    changes: dict[str, object] = {}
    if request.unschedulable is not None:
        changes["unschedulable"] = request.unschedulable
    if request.draining is not None:
        changes["draining"] = request.draining
    if request.labels:
        labels = dict(spec.labels if spec.labels is not None else node.labels)
        for key, value in request.labels.items():
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = value
        changes["labels"] = labels
    if request.add_taints or request.remove_taints:
        taints = list(spec.taints if spec.taints is not None else node.taints)
        for ref in request.remove_taints:
            taints = [
                t for t in taints if not (t.key == ref.key and (not ref.effect or t.effect == ref.effect))
            ]
        for taint in request.add_taints:
            taints = [t for t in taints if not (t.key == taint.key and t.effect == taint.effect)]
            taints.append(taint.model_copy(update={"time_added": now}))
        changes["taints"] = taints
    return spec.model_copy(update=changes)
