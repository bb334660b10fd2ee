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
    allow_changes: Annotated[
        bool,
        typer.Option(
            "--allow-changes",
            help="Offer scale, rollout, cordon/drain and delete, each confirmed (an admin's credentials).",
        ),
    ] = False,
    server: ServerOption = None,
    credentials: CredentialsOption = None,
    tls_ca: TLSCAOption = None,
    log_level: LogLevelOption = "warning",
) -> None:
    """Serve a live web view of the cluster: nodes and pods, deployments, events, HPAs, logs."""
    # The web stack is loaded for this command only.
    from shoal.dashboard.server import bind, permissions_for, run, url_of

    setup_logging(log_level)
    url = resolve_server(server)
    access = resolve_access(credentials, tls_ca)
    permissions = permissions_for(access, allow_changes=allow_changes)
    sock = bind(address, port)
    mode = "changes allowed, each confirmed" if allow_changes else "read-only"
    errors.print(f"[bold cyan]shoal[/] dashboard of {url} at [bold]{url_of(sock)}[/] ({mode})")
    if not sock.getsockname()[0].startswith("127.") and sock.getsockname()[0] != "::1":
        change = "and change " if allow_changes else ""
        errors.print(f"[yellow]warning:[/] anyone who can reach this address sees {change}the whole cluster")
    run(url, sock, access, permissions)
