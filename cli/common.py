"""Pieces every command shares: the --server and --namespace options, and running async work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from shoal.cli.context import resolve_server
from shoal.client import ShoalClient

T = TypeVar("T")

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        "-s",
        help="NATS URL of the cluster [default: $SHOAL_SERVER, else the context `shoal up` wrote]",
        show_default=False,
    ),
]
NamespaceOption = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the objects.")]


def with_client(server: str | None, work: Callable[[ShoalClient], Awaitable[T]]) -> T:
    """Connect, run ``work``, disconnect; connection trouble becomes a one-line error."""

    async def session() -> T:
        client = await ShoalClient.connect(resolve_server(server))
        try:
            return await work(client)
        finally:
            await client.close()

    return asyncio.run(session())
