"""Labels Shoal puts on everything it creates in a runtime; how a node finds its own again."""

POD = "shoal.pod"
NAMESPACE = "shoal.namespace"
DEPLOYMENT = "shoal.deployment"
NODE = "shoal.node"
CLUSTER = "shoal.cluster"
"""The id of the cluster whose node made it: several clusters may share one host's Podman, and
a node touches only its own cluster's containers (and those made before clusters had ids)."""
CONTAINER = "shoal.container"
UID = "shoal.uid"
RESTARTS = "shoal.restarts"
"""How many times the container was restarted before this incarnation."""
INIT = "shoal.init"
"""On an init container, which runs to its end before the pod's containers start: its name."""


def short(cluster: str) -> str:
    """The part of a cluster id that goes into container, pod and table names."""
    return cluster[:8]


def ours(item_labels: dict[str, str], node: str, cluster: str) -> bool:
    """Whether a container, pod or volume with these labels belongs to ``node`` of ``cluster``.

    One without a cluster label was made before clusters had ids: its node takes it as its own,
    so an upgraded node adopts the pods it already runs instead of starting them twice."""
    if item_labels.get(NODE) != node:
        return False
    made_by = item_labels.get(CLUSTER, "")
    return not made_by or not cluster or made_by == cluster
