"""The changes the web view may make: each is one request the command line also sends.

They are offered only by a dashboard started with ``--allow-changes`` under an identity that
may change the cluster (an admin's), each is confirmed in the page first, and each request
must carry the server's token and come from the page's own origin (``app``). Checking what a
browser asked for is pure (``parse``); carrying it out (``perform``) is the client's request.

| table | actions | as |
| --- | --- | --- |
| deployments | scale, restart, undo, delete | ``shoal scale``, ``rollout restart``/``undo``, ``delete`` |
| pods, services, hpas | delete | ``shoal delete`` |
| nodes | cordon, uncordon, drain | ``shoal cordon``, ``uncordon``, ``drain --ignore-daemonsets`` |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shoal.client import ShoalClient
from shoal.errors import ShoalError
from shoal.models.api import ObjectRef
from shoal.models.pod import Pod
from shoal.policy.drain import drain_refusals

ACTIONS: dict[str, tuple[str, ...]] = {
    "deployments": ("scale", "restart", "undo", "delete"),
    "pods": ("delete",),
    "services": ("delete",),
    "hpas": ("delete",),
    "nodes": ("cordon", "uncordon", "drain"),
}
"""What may be done to the objects of each of the pages' tables."""

KINDS = {
    "deployments": ("Deployment", "deployment.apps"),
    "pods": ("Pod", "pod"),
    "services": ("Service", "service"),
    "hpas": ("HorizontalPodAutoscaler", "horizontalpodautoscaler.autoscaling"),
    "nodes": ("Node", "node"),
}
"""Each table's kind, and the name ``shoal`` prints it under (``deployment.apps/web scaled``)."""

MAX_REPLICAS = 2_147_483_647
MAX_NAME = 253


class ActionError(ShoalError):
    code = "bad-action"


@dataclass(frozen=True)
class Change:
    """One action a browser asked for, checked."""

    action: str
    table: str
    namespace: str
    name: str
    replicas: int | None = None

    @property
    def target(self) -> str:
        qualified = KINDS[self.table][1]
        if self.table == "nodes":
            return f"{qualified}/{self.name}"
        return f"{qualified} {self.namespace}/{self.name}"

    def describe(self) -> str:
        """For the log: ``scale deployment.apps default/web to 3``."""
        return f"{self.action} {self.target}" + (f" to {self.replicas}" if self.action == "scale" else "")


def _text(body: dict[str, Any], field: str, *, required: bool = True) -> str:
    value = body.get(field, "")
    if not isinstance(value, str):
        raise ActionError(f"action: {field} must be a string")
    if required and not value:
        raise ActionError(f"action: {field} is required")
    if len(value) > MAX_NAME:
        raise ActionError(f"action: {field} is longer than {MAX_NAME} characters")
    return value


def parse(body: object) -> Change:
    """The change ``body`` (the page's JSON) asks for, or one line naming the field that is wrong."""
    if not isinstance(body, dict):
        raise ActionError("action: the request must be a JSON object")
    table = _text(body, "table")
    if table not in ACTIONS:
        raise ActionError(f"action: table {table!r} has no actions (one of {', '.join(ACTIONS)})")
    action = _text(body, "action")
    if action not in ACTIONS[table]:
        raise ActionError(f"action: {table} cannot be given {action!r} (only {', '.join(ACTIONS[table])})")
    name = _text(body, "name")
    namespace = "" if table == "nodes" else _text(body, "namespace")
    replicas = None
    if action == "scale":
        replicas = body.get("replicas")
        # bool is an int to Python, never to a user.
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
            raise ActionError(f"action: replicas must be a whole number from 0 to {MAX_REPLICAS}")
    return Change(action, table, namespace, name, replicas)


async def perform(client: ShoalClient, change: Change, pods: Iterable[Pod]) -> str:
    """Send ``change``'s request; what ``shoal`` would print for it. ``pods``: the cluster's pods
    as last seen (a drain is refused, as kubectl refuses it, while pods no controller manages
    are on the node)."""
    qualified = KINDS[change.table][1]
    shown = f"{qualified}/{change.name}"
    if change.action == "scale":
        assert change.replicas is not None
        await client.scale(change.namespace, change.name, change.replicas)
        return f"{shown} scaled to {change.replicas}"
    if change.action in ("restart", "undo"):
        reply = await client.rollout(change.namespace, change.name, change.action)
        return "; ".join(f"{shown} {r.action}" for r in reply.results) or f"{shown} {change.action}"
    if change.action == "delete":
        ref = ObjectRef(kind=KINDS[change.table][0], namespace=change.namespace, name=change.name)
        reply = await client.delete(refs=[ref])
        if any(r.action == "not found" for r in reply.results):
            raise ActionError(f"{change.target} not found")
        return f'{shown} deleted from namespace "{change.namespace}"'
    if change.action == "cordon":
        await client.update_node(change.name, unschedulable=True)
        return f"{shown} cordoned"
    if change.action == "uncordon":
        await client.update_node(change.name, unschedulable=False, draining=False)
        return f"{shown} uncordoned"
    assert change.action == "drain"
    on_node = [p for p in pods if p.node_name == change.name and not p.terminating]
    refusals = drain_refusals(on_node, ignore_daemonsets=True, force=False)
    if refusals:
        raise ActionError(f"unable to drain node {change.name}: {'; '.join(refusals)}")
    await client.update_node(change.name, unschedulable=True, draining=True)
    return f"{shown} cordoned and draining: its pods move elsewhere"
