"""Commands on nodes: cordon, uncordon, drain."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer

from shoal.cli.common import ServerOption, with_client
from shoal.cli.output import console
from shoal.client import ShoalClient
from shoal.errors import ShoalError

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
