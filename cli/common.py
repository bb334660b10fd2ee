"""Pieces every command shares: the --server and --namespace options, and running async work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from shoal.cli import complete
from shoal.cli.context import resolve_access, resolve_server
from shoal.errors import ClusterUnreachable, Forbidden, ShoalError

if TYPE_CHECKING:
    from shoal.client import ShoalClient

T = TypeVar("T")

CredentialsOption = Annotated[
    Path | None,
    typer.Option(
        "--credentials",
        envvar="SHOAL_CREDENTIALS",
        help="Credentials file of this identity [default: the context's]",
        show_default=False,
    ),
]
TLSCAOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        envvar="SHOAL_TLS_CA",
        help="CA of the nats-servers' certificates [default: the context's]",
        show_default=False,
    ),
]
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
KindNameArgument = Annotated[
    str, typer.Argument(help="KIND NAME or KIND/NAME", autocompletion=complete.kind_or_object)
]
NameAfterKindArgument = Annotated[
    str | None,
    typer.Argument(
        help="NAME, when the first argument is just the kind", autocompletion=complete.object_names
    ),
]


class Stopped(Exception):
    """SIGINT or SIGTERM ended a command that follows the cluster."""


def with_client(
    server: str | None, work: Callable[[ShoalClient], Awaitable[T]], *, reconnect: bool = False
) -> T:
    """Connect, run ``work``, disconnect; connection trouble becomes a one-line error, and
    SIGINT/SIGTERM end the work quietly (``Stopped``). ``reconnect``: ride out restarts of
    nats-server (commands that follow, such as ``events -w``)."""

    # Imported here: commands that never connect (and `shoal --help`) skip these imports.
    import asyncio
    import signal

    async def session() -> T:
        from shoal.client import ShoalClient

        client = await ShoalClient.connect(
            resolve_server(server), reconnect=reconnect, access=resolve_access()
        )
        try:
            return await work(client)
        except Exception as err:
            if isinstance(err, ShoalError) and not isinstance(err, ClusterUnreachable):
                raise
            from shoal.bus.connection import denied

            why = denied(client.nc)
            if why:
                raise Forbidden(f"not allowed for these credentials: {why}") from None
            from shoal.retry import is_transient

            if is_transient(err) and not isinstance(err, ShoalError):
                # nats-py's timeouts and lost connections: one line, not a traceback.
                raise ClusterUnreachable(
                    f"the cluster did not answer ({type(err).__name__}: {err}); try again"
                ) from None
            raise
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
