"""Commands on nodes: cordon, uncordon, drain, taint (labels: ``cli/editing.py``)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer

from shoal.cli import complete
from shoal.cli.common import ServerOption, with_client
from shoal.cli.output import console
from shoal.cli.roles import parse_taint
from shoal.client import ShoalClient
from shoal.errors import InvalidManifest, ShoalError
from shoal.models.api import ObjectRef, TaintRef
from shoal.models.pod import Pod
from shoal.models.scheduling import Taint
from shoal.policy.drain import bare_pod, daemon_pod, drain_refusals, pod_names

NodeArgument = Annotated[str, typer.Argument(help="The node's name.", autocompletion=complete.nodes)]


def cordon(node: NodeArgument, server: ServerOption = None) -> None:
    """Mark a node unschedulable: its pods stay, new pods go elsewhere."""
    with_client(server, lambda client: client.update_node(node, unschedulable=True))
    console.print(f"node/{node} cordoned")


def uncordon(node: NodeArgument, server: ServerOption = None) -> None:
    """Let a cordoned or drained node take pods again."""
    with_client(server, lambda client: client.update_node(node, unschedulable=False, draining=False))
    console.print(f"node/{node} uncordoned")


def drain(
    node: NodeArgument,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the node to empty.")
    ] = 300.0,
    ignore_daemonsets: Annotated[
        bool,
        typer.Option(
            "--ignore-daemonsets", help="Leave DaemonSet pods on the node (without it, drain refuses)."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Also delete pods no controller manages (they are not made again)."),
    ] = False,
    delete_emptydir_data: Annotated[
        bool,
        typer.Option(
            "--delete-emptydir-data",
            help="Accepted for kubectl's scripts: a pod's emptyDir volumes always go with the pod.",
        ),
    ] = False,
    server: ServerOption = None,
) -> None:
    """Move a node's pods elsewhere, each replacement Ready before its original stops; leave it cordoned."""

    async def run(client: ShoalClient) -> None:
        on_node = [p for p in (await client.pods()).values() if p.node_name == node and not p.terminating]
        daemon = [p for p in on_node if daemon_pod(p)]
        bare = [p for p in on_node if bare_pod(p)]
        refusals = drain_refusals(on_node, ignore_daemonsets=ignore_daemonsets, force=force)
        if refusals:
            # As kubectl: cordoned, and the drain refused, naming the pods.
            await client.update_node(node, unschedulable=True)
            console.print(f"node/{node} cordoned")
            raise ShoalError(f"unable to drain node {node}: {'; '.join(refusals)}")
        await client.update_node(node, unschedulable=True, draining=True)
        console.print(f"node/{node} cordoned")
        if daemon:
            console.print(f"Warning: ignoring DaemonSet-managed Pods: {pod_names(daemon)}")
        if bare:
            console.print(f"Warning: deleting Pods that declare no controller: {pod_names(bare)}")
            refs = [ObjectRef(kind="Pod", namespace=p.metadata.namespace, name=p.metadata.name) for p in bare]
            await client.delete(refs=refs)
        deadline = time.monotonic() + timeout
        reported: set[str] = set()
        held: dict[str, str] = {}
        while True:
            remaining = [
                p for p in (await client.pods()).values() if p.node_name == node and not daemon_pod(p)
            ]
            for pod in remaining:
                if pod.terminating and pod.key not in reported:
                    reported.add(pod.key)
                    console.print(f"evicting pod {pod.metadata.namespace}/{pod.metadata.name}")
            if not remaining:
                break
            waiting = await _budget_waits(client, remaining)
            for name, why in waiting.items():
                if held.get(name) != why:
                    console.print(f"waiting to evict pod {name}: {why}")
            held = waiting
            if time.monotonic() > deadline:
                names = ", ".join(p.metadata.name for p in remaining)
                because = f" ({'; '.join(sorted(set(waiting.values())))})" if waiting else ""
                raise ShoalError(
                    f"node {node} still runs {len(remaining)} pod(s) after {timeout:.0f}s: {names}{because}"
                )
            await asyncio.sleep(0.25)
        console.print(f"node/{node} drained")

    with_client(server, run)


async def _budget_waits(client: ShoalClient, pods: list[Pod]) -> dict[str, str]:
    """``namespace/name`` -> why, for the pods a disruption budget keeps on the node for now."""
    wanted = {f"{p.metadata.namespace}/{p.metadata.name}" for p in pods if not p.terminating}
    found = {}
    for status in (await client.pdb_statuses()).values():
        for name in set(status.waiting) & wanted:
            found[name] = (
                f"it would violate the disruption budget {status.namespace}/{status.name}"
                f" ({status.current_healthy} healthy, {status.desired_healthy} needed)"
            )
    return found


def _node_name(kind: str, name: str) -> str:
    if kind.lower() not in ("node", "nodes", "no"):
        raise InvalidManifest([f"cannot taint {kind!r}: Shoal taints nodes"])
    return name


def taint(
    kind: Annotated[str, typer.Argument(help="node")],
    name: NodeArgument,
    changes: Annotated[
        list[str], typer.Argument(help="key=value:Effect to add, key:Effect- or key- to remove")
    ],
    server: ServerOption = None,
) -> None:
    """Add or remove taints of a node (kubectl syntax)."""
    add: list[Taint] = []
    remove: list[TaintRef] = []
    for change in changes:
        if change.endswith("-"):
            key, _, effect = change[:-1].partition(":")
            remove.append(TaintRef(key=key.partition("=")[0], effect=effect))
        else:
            add.append(parse_taint(change))
    node = _node_name(kind, name)
    with_client(server, lambda client: client.update_node(node, add_taints=add, remove_taints=remove))
    console.print(f"node/{node} {'tainted' if add else 'untainted'}")
