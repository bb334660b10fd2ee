"""``shoal config``: the clusters the context file knows, and which one commands talk to
(kubectl's ``config get-contexts``, ``current-context``, ``use-context``, ``set-context``,
``delete-context``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shoal.cli.context import context_path, read_contexts, write_contexts
from shoal.cli.output import console, table
from shoal.errors import InvalidManifest, NotFound

config_app = typer.Typer(help="Contexts: which cluster commands talk to.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="The context's name (shoal config get-contexts).")]


@config_app.command("get-contexts")
def get_contexts() -> None:
    """Every cluster's context; * marks the current one."""
    current, contexts = read_contexts()
    if not contexts:
        raise NotFound(f"no contexts in {context_path()}: `shoal up` writes one")
    rows = [
        ["*" if name == current else "", name, body.get("server", ""), body.get("dataDir", "")]
        for name, body in contexts.items()
    ]
    table(["CURRENT", "NAME", "SERVER", "DATA DIR"], rows)


@config_app.command("current-context")
def current_context() -> None:
    """The name of the context commands use."""
    current, contexts = read_contexts()
    if current not in contexts:
        raise NotFound(f"no current context in {context_path()}")
    console.print(current)


@config_app.command("use-context")
def use_context(name: NameArgument) -> None:
    """Make commands talk to another cluster."""
    _, contexts = read_contexts()
    _known(name, contexts)
    write_contexts(name, contexts)
    console.print(f'Switched to context "{name}".')


@config_app.command("set-context")
def set_context(
    name: NameArgument,
    server: Annotated[
        str | None, typer.Option("--server", help="NATS URL(s) of the cluster, comma-separated")
    ] = None,
    credentials: Annotated[
        Path | None, typer.Option("--credentials", help="The identity commands connect as")
    ] = None,
    tls_ca: Annotated[Path | None, typer.Option("--tls-ca", help="The cluster's CA certificate")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="The cluster's data dir")] = None,
) -> None:
    """Add a cluster's context, or change fields of one (the current context stays as it is)."""
    current, contexts = read_contexts()
    body = dict(contexts.get(name, {}))
    if server is None and "server" not in body:
        raise InvalidManifest([f"context {name!r} is new: --server is needed"])
    given = {"server": server, "credentials": credentials, "ca": tls_ca, "dataDir": data_dir}
    for field, value in given.items():
        if value is not None:
            # Files by absolute path: the context is read from any working directory.
            body[field] = str(value.resolve()) if isinstance(value, Path) else value
    contexts[name] = body
    write_contexts(current, contexts)
    console.print(f'Context "{name}" set.')


@config_app.command("delete-context")
def delete_context(name: NameArgument) -> None:
    """Forget a cluster's context (the cluster and its data dir stay)."""
    current, contexts = read_contexts()
    _known(name, contexts)
    del contexts[name]
    write_contexts("" if current == name else current, contexts)
    console.print(f"deleted context {name} from {context_path()}")


def _known(name: str, contexts: dict[str, dict[str, str]]) -> None:
    if name not in contexts:
        known = ", ".join(contexts) or "none"
        raise InvalidManifest([f"no context named {name!r} (known: {known})"])
