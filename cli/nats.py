"""``shoal nats``: one nats-server of a Shoal cluster, for clusters laid out by hand or by compose.

``shoal up`` starts its own servers. On hosts of their own (or compose's containers), each
server is this command: it writes the server's configuration from the cluster's data dir (its
certificate, the CA its routes must be signed by, the ``authorization`` block of every issued
identity, JetStream with ``sync_interval: always``) and then becomes that nats-server, so the
process a supervisor watches is the server itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from shoal.cli.context import default_data_dir
from shoal.errors import ShoalError


def nats(
    name: Annotated[str, typer.Option("--name", help="This server's name (its certificate's too)")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="SHOAL_DATA_DIR",
            help="Where the cluster's security folder is [default: ~/.local/share/shoal]",
            show_default=False,
        ),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="This server's store, config and log [default: data dir/nats-NAME]"),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address clients and routes connect to")] = "0.0.0.0",
    port: Annotated[int, typer.Option("--port", help="Client port")] = 4222,
    cluster_port: Annotated[int, typer.Option("--cluster-port", help="Route port (with --route)")] = 6222,
    route: Annotated[
        list[str] | None,
        typer.Option(
            "--route", help="A peer's route URL, nats://HOST:PORT (repeatable; this one may be among them)"
        ),
    ] = None,
) -> None:
    """Run one nats-server of a cluster: TLS, the cluster's identities and JetStream, routed to its peers."""
    from shoal.bus.nats_server import ClusterConfig, NatsServerConfig, ServerTLS, nats_server_binary
    from shoal.security.authority import Authority

    authority = Authority(data_dir or default_data_dir())
    cert, key = authority.server_paths(name)
    missing = [p for p in (authority.ca, cert, key, authority.authorization) if not p.exists()]
    if missing:
        raise ShoalError(
            f"nats server {name}: {', '.join(str(p) for p in missing)} missing:"
            f" run `shoal credentials init --server {name}` on this data dir first"
        )
    where = run_dir or authority.root.parent / f"nats-{name}"
    config = NatsServerConfig(
        store_dir=where / "jetstream",
        host=host,
        port=port,
        server_name=name,
        cluster=ClusterConfig(name="shoal", port=cluster_port, routes=route) if route else None,
        tls=ServerTLS(cert=cert, key=key, ca=authority.ca),
        authorization=authority.authorization,
    )
    ports_dir = where / "ports"
    ports_dir.mkdir(parents=True, exist_ok=True)
    conf = where / f"{name}.conf"
    conf.write_text(config.render(ports_dir, port))
    binary = nats_server_binary()
    os.execv(binary, [binary, "-c", str(conf)])
