"""Commands on nodes: cordon, uncordon, drain, label, taint."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer

from shoal.cli.common import ServerOption, with_client
from shoal.cli.output import console
from shoal.cli.roles import parse_labels, parse_taint
from shoal.client import ShoalClient
from shoal.errors import InvalidManifest, ShoalError
from shoal.models.api import TaintRef
from shoal.models.scheduling import Taint

NodeArgument = Annotated[str, typer.Argument(help="The node's name.")]


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
    server: ServerOption = None,
) -> None:
    """Move a node's pods elsewhere, each replacement Ready before its original stops; leave it cordoned."""

    async def run(client: ShoalClient) -> None:
        await client.update_node(node, unschedulable=True, draining=True)
        console.print(f"node/{node} cordoned")
        deadline = time.monotonic() + timeout
        reported: set[str] = set()
        while True:
            remaining = [p for p in (await client.pods()).values() if p.node_name == node]
            for pod in remaining:
                if pod.terminating and pod.key not in reported:
                    reported.add(pod.key)
                    console.print(f"evicting pod {pod.metadata.namespace}/{pod.metadata.name}")
            if not remaining:
                break
            if time.monotonic() > deadline:
                names = ", ".join(p.metadata.name for p in remaining)
                raise ShoalError(
                    f"node {node} still runs {len(remaining)} pod(s) after {timeout:.0f}s: {names}"
                )
            await asyncio.sleep(0.25)
        console.print(f"node/{node} drained")

    with_client(server, run)


def _node_name(kind: str, name: str) -> str:
    if kind.lower() not in ("node", "nodes", "no"):
        raise InvalidManifest([f"cannot label or taint {kind!r}: Shoal labels and taints nodes"])
    return name


def label(
    kind: Annotated[str, typer.Argument(help="node")],
    name: NodeArgument,
    changes: Annotated[list[str], typer.Argument(help="key=value to set, key- to remove")],
    server: ServerOption = None,
) -> None:
    """Set or remove labels of a node (kubectl syntax)."""
    labels: dict[str, str | None] = {}
    for change in changes:
        if change.endswith("-") and "=" not in change:
            labels[change[:-1]] = None
        else:
            labels.update(parse_labels([change]))
    node = _node_name(kind, name)
    with_client(server, lambda client: client.update_node(node, labels=labels))
    console.print(f"node/{node} labeled")


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
