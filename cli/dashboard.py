"""``shoal dashboard``: serve the live, read-only web view of a cluster."""

from __future__ import annotations

from typing import Annotated

import typer

from shoal.cli.common import CredentialsOption, ServerOption, TLSCAOption
from shoal.cli.context import resolve_access, resolve_server
from shoal.cli.output import errors
from shoal.cli.roles import LogLevelOption, setup_logging
from shoal.dashboard import DEFAULT_ADDRESS, DEFAULT_PORT


def dashboard(
    address: Annotated[
        str,
        typer.Option(
            "--address", envvar="SHOAL_DASHBOARD_ADDRESS", help="Address to listen on (loopback unless told)."
        ),
    ] = DEFAULT_ADDRESS,
    port: Annotated[
        int,
        typer.Option(
            "--port", envvar="SHOAL_DASHBOARD_PORT", min=0, max=65535, help="Port; 0 picks a free one."
        ),
    ] = DEFAULT_PORT,
    server: ServerOption = None,
    credentials: CredentialsOption = None,
    tls_ca: TLSCAOption = None,
    log_level: LogLevelOption = "warning",
) -> None:
    """Serve a live web view of the cluster (read-only): nodes and pods, deployments, events, HPAs."""
    from shoal.dashboard.server import bind, run, url_of  # the web stack is loaded for this command only

    setup_logging(log_level)
    url = resolve_server(server)
    sock = bind(address, port)
    errors.print(f"[bold cyan]shoal[/] dashboard of {url} at [bold]{url_of(sock)}[/] (read-only)")
    if not sock.getsockname()[0].startswith("127.") and sock.getsockname()[0] != "::1":
        errors.print("[yellow]warning:[/] anyone who can reach this address sees the whole cluster")
    run(url, sock, resolve_access(credentials, tls_ca))
