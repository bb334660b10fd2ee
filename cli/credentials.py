"""``shoal credentials``: identities for a cluster's roles, users and new hosts.

``shoal up`` issues the identities of the roles it runs. An operator issues more here, on the
host that keeps the cluster's data dir (where its CA and authorization live), and copies the
file to the host or person it is for: ``shoal credentials create node edge-2`` for a new node,
``admin alice`` or ``viewer bob`` for people. Running nats-servers of the data dir reload
their authorization at once, so the new identity connects without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shoal.cli.context import default_data_dir, read_context
from shoal.cli.output import errors

app = typer.Typer(help="Identities for roles, people and new hosts.", no_args_is_help=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="SHOAL_DATA_DIR",
        help="The cluster's data dir [default: the context's, else ~/.local/share/shoal]",
        show_default=False,
    ),
]


def _data_dir(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    from_context = read_context().get("dataDir")
    return Path(from_context) if from_context else default_data_dir()


@app.command("init")
def init(
    server: Annotated[
        list[str] | None,
        typer.Option("--server", help="A nats-server to make a certificate for (repeatable)"),
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="A name or address every server's certificate is valid for (repeatable)"),
    ] = None,
    node: Annotated[
        list[str] | None, typer.Option("--node", help="A node to issue an identity for (repeatable)")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make a cluster's CA, server certificates, API secret keys and identities (hosts laid out by hand)."""
    from shoal.actors.api.sealing import load_keyring
    from shoal.security.authority import Authority
    from shoal.security.permissions import CLUSTER_IDENTITIES

    root = _data_dir(data_dir)
    authority = Authority(root)
    for name in server or []:
        # Each server's certificate names the server itself (its host name on a compose
        # network, say) and whatever else clients reach every server by.
        authority.server_cert(name, [name, *(host or ["localhost", "127.0.0.1"])])
    if not server:
        authority.make_ca()
    for role in CLUSTER_IDENTITIES:
        authority.issue(role)
    for name in node or []:
        authority.issue("node", name)
    # API replicas must share one key ring, or one cannot read the secrets another sealed.
    load_keyring(root / "secret-keys.yaml")
    print(authority.root)
    errors.print(
        f"[dim]CA {authority.ca}; identities under {authority.root / 'credentials'};"
        f" the API's secret keys in {root / 'secret-keys.yaml'}[/]"
    )


@app.command("create")
def create(
    role: Annotated[
        str, typer.Argument(help="admin, viewer, node, app, api, scheduler, service, autoscaler, fleet")
    ],
    name: Annotated[str, typer.Argument(help="The node's name (for node), or whose it is")] = "",
    data_dir: DataDirOption = None,
) -> None:
    """Issue an identity (or show the one already issued): prints its credentials file."""
    from shoal.security.authority import Authority

    authority = Authority(_data_dir(data_dir))
    if not authority.ca.exists():
        from shoal.security.authority import CredentialsError

        raise CredentialsError(
            f"{authority.root} has no cluster CA: run `shoal up` with this data dir first, or pass --data-dir"
        )
    path = authority.issue(role, name)
    print(path)
    errors.print(
        f"[dim]use it with --credentials {path} --tls-ca {authority.ca}"
        " (or SHOAL_CREDENTIALS / SHOAL_TLS_CA); keep it secret, it is who you are to the cluster[/]"
    )


@app.command("list")
def list_identities(data_dir: DataDirOption = None) -> None:
    """The identities issued for this cluster: role, name and public key."""
    from shoal.cli.output import table
    from shoal.security.authority import Authority

    issued = Authority(_data_dir(data_dir)).issued()
    table(
        ["IDENTITY", "ROLE", "NAME", "PUBLIC KEY"],
        [[c.identity, c.role, c.name or "-", c.public_key] for c in issued],
    )
