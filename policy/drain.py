"""What a drain may take off a node, as kubectl decides it: pure, for the CLI and the web view.

Pods a DaemonSet keeps there are left in place only when asked (they tolerate the cordon and
would come back at once); pods no controller manages are deleted only when forced (nothing
makes them again). Either kind of pod without its permission refuses the drain, naming them.
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal.models.pod import Pod


def daemon_pod(pod: Pod) -> bool:
    """Pods a DaemonSet keeps on the node whatever a drain does (they tolerate the cordon)."""
    return pod.metadata.owner is not None and pod.metadata.owner.kind == "DaemonSet"


def bare_pod(pod: Pod) -> bool:
    """Pods no controller manages: a drain that deletes them loses them."""
    return pod.metadata.owner is None


def pod_names(pods: Iterable[Pod]) -> str:
    return ", ".join(f"{p.metadata.namespace}/{p.metadata.name}" for p in pods)


def drain_refusals(on_node: list[Pod], *, ignore_daemonsets: bool, force: bool) -> list[str]:
    """Why a drain of the node running ``on_node`` is refused, in kubectl's words (none: it may go)."""
    daemon = [p for p in on_node if daemon_pod(p)]
    bare = [p for p in on_node if bare_pod(p)]
    refusals = []
    if daemon and not ignore_daemonsets:
        refusals.append(
            f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {pod_names(daemon)}"
        )
    if bare and not force:
        refusals.append(
            f"cannot delete Pods that declare no controller (use --force to override): {pod_names(bare)}"
        )
    return refusals
