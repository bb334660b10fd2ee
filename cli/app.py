"""The ``shoal`` command: every subcommand, and one place that turns errors into one line."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

import shoal
from shoal.cli.common import ServerOption, Stopped, with_client
from shoal.cli.output import errors
from shoal.errors import InvalidManifest, ShoalError

if TYPE_CHECKING:
    from shoal.client import ShoalClient

app = typer.Typer(
    name="shoal",
    help="Shoal: Kubernetes-style deployments on a small cluster, over NATS and Podman.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS: dict[str, tuple[str, str, str]] = {
    "up": ("Cluster", "up", "up"),
    "apply": ("Objects", "change", "apply"),
    "get": ("Objects", "inspect", "get"),
    "describe": ("Objects", "inspect", "describe"),
    "delete": ("Objects", "change", "delete"),
    "scale": ("Objects", "change", "scale"),
    "wait": ("Objects", "wait", "wait"),
    "create": ("Objects", "change", "create_app"),
    "api-resources": ("Objects", "inspect", "api_resources"),
    "explain": ("Objects", "explain", "explain"),
    "rollout": ("Objects", "rollout", "rollout_app"),
    "set": ("Objects", "rollout", "set_app"),
    "patch": ("Objects", "editing", "patch"),
    "edit": ("Objects", "editing", "edit"),
    "diff": ("Objects", "editing", "diff"),
    "label": ("Objects", "editing", "label"),
    "annotate": ("Objects", "editing", "annotate"),
    "cordon": ("Nodes", "nodes", "cordon"),
    "uncordon": ("Nodes", "nodes", "uncordon"),
    "drain": ("Nodes", "nodes", "drain"),
    "taint": ("Nodes", "nodes", "taint"),
    "logs": ("Observe", "streams", "logs"),
    "exec": ("Observe", "execute", "exec_command"),
    "port-forward": ("Observe", "forward", "port_forward"),
    "events": ("Observe", "streams", "events"),
    "top": ("Observe", "autoscaling", "top"),
    "dashboard": ("Observe", "dashboard", "dashboard"),
    "credentials": ("Cluster", "credentials", "app"),
    "config": ("Cluster", "config", "config_app"),
    "api": ("Roles", "roles", "api"),
    "scheduler": ("Roles", "roles", "scheduler"),
    "node": ("Roles", "roles", "node"),
    "service": ("Roles", "roles", "service"),
    "autoscaler": ("Roles", "roles", "autoscaler"),
}
"""Each subcommand: its help panel, the module under shoal.cli that has it, and the function
(or sub-app) there. A command imports only its own module: importing them all (the Podman
client, every model, the web server) would cost every command most of a second."""


_registered: set[str] = set()


def register(names: list[str]) -> None:
    """Add ``names`` (in the table's order) to the app, importing only the modules they need."""
    for name in [n for n in COMMANDS if n in names and n not in _registered]:
        _registered.add(name)
        panel, module_name, attribute = COMMANDS[name]
        module = importlib.import_module(f"shoal.cli.{module_name}")
        target = getattr(module, attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name, rich_help_panel=panel)
        else:
            app.command(name, rich_help_panel=panel)(target)


def kubectl_flags(argv: list[str]) -> list[str]:
    """kubectl's spellings of Shoal's flags: ``--dry-run=server`` and ``--dry-run=client`` are
    Shoal's ``--dry-run`` (the API validates, nothing is stored); ``--dry-run=none`` is none."""
    spelled = {"--dry-run=server": ["--dry-run"], "--dry-run=client": ["--dry-run"], "--dry-run=none": []}
    return [word for arg in argv for word in spelled.get(arg, [arg])]


def invoked(argv: list[str]) -> str | None:
    """The subcommand ``argv`` asks for, when it is one of the table's (not help or a typo)."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    known = first in COMMANDS or first in ("version", "completion")
    return first if known and not set(argv[: argv.index(first)]) & {"--help", "-h"} else None


@app.command(rich_help_panel="Cluster")
def completion(shell: Annotated[str, typer.Argument(help="bash, zsh or fish")]) -> None:
    """Print a shell completion script: source <(shoal completion bash)."""
    # Typer's own completion (it carries its own copy of click): the script it prints and
    # the answers it gives when the shell asks must come from the same classes.
    from typer._completion_shared import get_completion_script

    if shell not in ("bash", "zsh", "fish"):
        raise InvalidManifest([f"completion: {shell!r} is not a shell Shoal completes for (bash, zsh, fish)"])
    print(get_completion_script(prog_name="shoal", complete_var=COMPLETE_VARIABLE, shell=shell))


COMPLETE_VARIABLE = "_SHOAL_COMPLETE"
"""Set by the completion script when the shell asks what may come next."""


@app.callback()
def root() -> None:
    """Shoal: Kubernetes-style deployments on a small cluster, over NATS and Podman."""
    # A callback keeps `shoal` a group of commands however few of them are registered.


@app.command(rich_help_panel="Cluster")
def version(
    client_only: Annotated[
        bool, typer.Option("--client", help="Only this command's version: ask no cluster.")
    ] = False,
    server: ServerOption = None,
) -> None:
    """Print Shoal's version, and the cluster's: its API actors' and nats-server's."""
    print(f"Client Version: {shoal.__version__}")
    if client_only:
        return

    async def ask(client: ShoalClient) -> None:
        reply = await client.server_version()
        print(f"Server Version: {reply.version}")
        print(f"NATS Server Version: {reply.nats_server}")

    with_client(server, ask)


def main() -> None:
    try:
        command = invoked(sys.argv[1:])
        if COMPLETE_VARIABLE in os.environ:
            from typer.completion import completion_init

            completion_init()
            register(list(COMMANDS))  # the shell asks what may come next: every command may
        elif command not in ("version", "completion"):
            register([command] if command else list(COMMANDS))
        # prog_name: also under `python -m shoal`, usage lines and completion say shoal.
        app(args=kubectl_flags(sys.argv[1:]), prog_name="shoal")
    except ShoalError as err:
        for warning in err.warnings:
            errors.print(f"[yellow]Warning:[/] {escape(warning)}")
        lines = err.message.splitlines() or [type(err).__name__]
        if err.code == "invalid-manifest" and len(lines) > 1:
            errors.print(f"[red]error:[/] {len(lines)} problems, nothing was changed:")
        else:
            errors.print(f"[red]error:[/] {escape(lines.pop(0))}")
        for line in lines:
            errors.print(f"  {escape(line)}")
        sys.exit(1)
    except ValidationError as err:
        # A name or value a command was given that no request may carry: one line each.
        for problem in err.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "value"
            errors.print(f"[red]error:[/] {escape(where)} {problem['input']!r}: {escape(problem['msg'])}")
        sys.exit(1)
    except (KeyboardInterrupt, Stopped):
        sys.exit(130)
