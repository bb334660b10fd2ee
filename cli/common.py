"""Pieces every command shares: the --server and --namespace options, and running async work."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from shoal.cli.context import resolve_server

if TYPE_CHECKING:
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


class Stopped(Exception):
    """SIGINT or SIGTERM ended a command that follows the cluster."""


def with_client(
    server: str | None, work: Callable[[ShoalClient], Awaitable[T]], *, reconnect: bool = False
) -> T:
    """Connect, run ``work``, disconnect; connection trouble becomes a one-line error, and
    SIGINT/SIGTERM end the work quietly (``Stopped``). ``reconnect``: ride out restarts of
    nats-server (commands that follow, such as ``events -w``)."""

    async def session() -> T:
        from shoal.client import ShoalClient  # here: commands that never connect skip its imports

        client = await ShoalClient.connect(resolve_server(server), reconnect=reconnect)
        try:
            return await work(client)
        finally:
            await client.close()

    async def main() -> T:
        task = asyncio.create_task(session())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            raise Stopped() from None

    return asyncio.run(main())
