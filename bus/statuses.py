"""Pod statuses as readers believe them: from the node each pod is bound to, and no other.

Nodes write a pod's status under ``<node>.<namespace>.<name>`` (``keys.status_key``), and the
NATS server lets each node write only under its own name. A status another node wrote about a
pod, or one a pod's former node left behind, is not the pod's status: readers look statuses up
through the pod's binding, by pod key, as they did when statuses were keyed by pod alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from shoal import keys
from shoal.bus.kv import Entry
from shoal.models.pod import Pod, PodStatus


class BoundStatuses(Mapping[str, Entry[PodStatus]]):
    """The statuses of ``pods`` (by pod key), each as the pod's own node reported it.

    A live view over two caches' entries (``KVCache.entries``): nothing is copied, so it stays
    true as both caches change.
    """

    def __init__(self, statuses: Mapping[str, Entry[PodStatus]], pods: Mapping[str, Entry[Pod]]) -> None:
        self.statuses = statuses
        self.pods = pods

    def __getitem__(self, pod_key: str) -> Entry[PodStatus]:
        pod = self.pods.get(pod_key)
        node = pod.value.node_name if pod is not None else ""
        entry = self.statuses.get(keys.status_key(node, pod_key)) if node else None
        if entry is None:
            raise KeyError(pod_key)
        return entry

    def __iter__(self) -> Iterator[str]:
        return (key for key in self.pods if key in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, pod_key: object) -> bool:
        return isinstance(pod_key, str) and self.get(pod_key) is not None

    def get(self, pod_key: str, default: Entry[PodStatus] | None = None) -> Entry[PodStatus] | None:  # type: ignore[override]
        try:
            return self[pod_key]
        except KeyError:
            return default


def believed(status_key: str, pods: Mapping[str, Entry[Pod]]) -> str | None:
    """The pod key a status written at ``status_key`` is about, if it comes from the node that pod
    is bound to (else None: not the pod's status, whatever it says)."""
    node, pod_key = keys.split_status_key(status_key)
    pod = pods.get(pod_key)
    return pod_key if pod is not None and pod.value.node_name == node else None


def by_pod(statuses: Mapping[str, PodStatus], pods: Mapping[str, Pod]) -> dict[str, PodStatus]:
    """Plain records (a client's one-off read): each pod's status from its own node, by pod key."""
    found = {}
    for pod_key, pod in pods.items():
        status = statuses.get(keys.status_key(pod.node_name, pod_key)) if pod.node_name else None
        if status is not None:
            found[pod_key] = status
    return found
