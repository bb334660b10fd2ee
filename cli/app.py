"""The ``shoal`` command: every subcommand, and one place that turns errors into one line."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer
from rich.markup import escape

# Typer carries its own copy of click: its usage errors are not click's.
from typer._click.exceptions import UsageError

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


class Command(NamedTuple):
    panel: str
    module: str
    attribute: str
    summary: str


COMMANDS: dict[str, Command] = {
    "up": Command(
        "Cluster",
        "up",
        "up",
        "Start a local cluster in the foreground: nats-server, the control plane and a node on Podman.",
    ),
    "apply": Command(
        "Objects",
        "change",
        "apply",
        "Create or update the objects of manifest files (all or nothing per apply).",
    ),
    "get": Command(
        "Objects", "inspect", "get", "List objects as a table, or as Kubernetes-shaped JSON or YAML."
    ),
    "describe": Command(
        "Objects", "inspect", "describe", "Everything about one object, with its recent events."
    ),
    "delete": Command(
        "Objects",
        "change",
        "delete",
        "Delete objects by kind and name, or those a manifest file describes (a namespace with all in it).",
    ),
    "scale": Command(
        "Objects", "change", "scale", "Set the number of replicas of a deployment or a stateful set."
    ),
    "wait": Command("Objects", "wait", "wait", "Wait until objects meet a condition, or are deleted."),
    "create": Command("Objects", "change", "create_app", "Create an object from the command line."),
    "api-resources": Command(
        "Objects",
        "inspect",
        "api_resources",
        "The kinds Shoal knows, their short names, and what it does with each.",
    ),
    "explain": Command("Objects", "explain", "explain", "What a kind's fields are, as Shoal reads them."),
    "rollout": Command(
        "Objects",
        "rollout",
        "rollout_app",
        "Watch and steer rollouts of deployments, DaemonSets and StatefulSets.",
    ),
    "set": Command("Objects", "rollout", "set_app", "Change one field of an object."),
    "patch": Command(
        "Objects", "editing", "patch", "Change fields of an object with a merge patch or a JSON patch."
    ),
    "edit": Command(
        "Objects",
        "editing",
        "edit",
        "Open an object in $KUBE_EDITOR or $EDITOR (else vi), and apply what is saved.",
    ),
    "diff": Command(
        "Objects",
        "editing",
        "diff",
        "Show what applying manifest files would change, as a unified diff (exit 1 if anything would).",
    ),
    "label": Command(
        "Objects", "editing", "label", "Set or remove labels of any object (kubectl syntax: key=value, key-)."
    ),
    "annotate": Command(
        "Objects",
        "editing",
        "annotate",
        "Set or remove annotations of any object (kubectl syntax: key=value, key-).",
    ),
    "cordon": Command(
        "Nodes", "nodes", "cordon", "Mark a node unschedulable: its pods stay, new pods go elsewhere."
    ),
    "uncordon": Command("Nodes", "nodes", "uncordon", "Let a cordoned or drained node take pods again."),
    "drain": Command(
        "Nodes",
        "nodes",
        "drain",
        "Move a node's pods elsewhere, each replacement Ready before its original stops; leave it cordoned.",
    ),
    "taint": Command("Nodes", "nodes", "taint", "Add or remove taints of a node (kubectl syntax)."),
    "logs": Command(
        "Observe", "streams", "logs", "Print a container's output, fetched from the node that runs it."
    ),
    "exec": Command(
        "Observe",
        "execute",
        "exec_command",
        "Run a command in a container of a pod: shoal exec -it POD -- sh.",
    ),
    "port-forward": Command(
        "Observe",
        "forward",
        "port_forward",
        "Forward local ports to a pod's, until Ctrl-C: shoal port-forward deploy/web 8080:80.",
    ),
    "events": Command(
        "Observe",
        "streams",
        "events",
        "Show the cluster's events (from the SHOAL_EVENTS stream), and follow them with -w.",
    ),
    "top": Command(
        "Observe",
        "autoscaling",
        "top",
        "CPU and memory in use, from the nodes' latest samples (like kubectl top).",
    ),
    "dashboard": Command(
        "Observe",
        "dashboard",
        "dashboard",
        "Serve a live web view of the cluster: nodes and pods, deployments, events, HPAs, logs.",
    ),
    "credentials": Command("Cluster", "credentials", "app", "Identities for roles, people and new hosts."),
    "image": Command(
        "Cluster", "images", "app", "Images kept in the cluster for nodes without a registry: push, ls, rm."
    ),
    "config": Command("Cluster", "config", "config_app", "Contexts: which cluster commands talk to."),
    "nats": Command(
        "Roles",
        "nats",
        "nats",
        "Run one nats-server of a cluster: TLS, the cluster's identities and JetStream, routed to its peers.",
    ),
    "api": Command("Roles", "roles", "api", "Run the API actor: validates and stores what clients apply."),
    "scheduler": Command(
        "Roles",
        "roles",
        "scheduler",
        "Run the scheduler actor: keeps every deployment's pods and places them on nodes"
        " (one replica leads).",
    ),
    "node": Command(
        "Roles",
        "roles",
        "node",
        "Run a node actor: registers this host and runs the pods bound to it with Podman.",
    ),
    "service": Command(
        "Roles",
        "roles",
        "service",
        "Run the service actor: keeps each service's endpoints and answers discovery by name.",
    ),
    "autoscaler": Command(
        "Roles",
        "roles",
        "autoscaler",
        "Run the autoscaler actor: scales deployments from pod metrics and NATS backlogs (HPAs).",
    ),
}
"""Each subcommand: its help panel, the module under shoal.cli that has it, the function (or
sub-app) there, and the line ``shoal --help`` shows for it. A command imports only its own
module: importing them all (the Podman client, every model, the web server) would cost every
command most of a second, ``shoal --help`` included, which lists them from this table alone."""


_registered: set[str] = set()


def register(names: list[str]) -> None:
    """Add ``names`` (in the table's order) to the app, importing only the modules they need."""
    for name in [n for n in COMMANDS if n in names and n not in _registered]:
        _registered.add(name)
        command = COMMANDS[name]
        target = getattr(importlib.import_module(f"shoal.cli.{command.module}"), command.attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name, rich_help_panel=command.panel)
        else:
            app.command(name, rich_help_panel=command.panel)(target)


def register_summaries() -> None:
    """Add every command as its line of ``shoal --help`` only: what the list of commands needs,
    without importing any command's module."""
    for name, command in COMMANDS.items():
        app.command(name, help=command.summary, rich_help_panel=command.panel)(_listed_only)


def _listed_only() -> None:
    """Never run: ``register_summaries`` is only called when the command line names no command."""


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
        elif command is None:
            register_summaries()
        elif command not in ("version", "completion"):
            register([command])
        # prog_name: also under `python -m shoal`, usage lines and completion say shoal.
        # Not standalone: usage errors come here, to be said in one line as kubectl does.
        code = app(args=kubectl_flags(sys.argv[1:]), prog_name="shoal", standalone_mode=False)
        if type(code) is int and code:
            sys.exit(code)
    except (KeyboardInterrupt, Stopped, typer.Abort):
        sys.exit(130)
    except BrokenPipeError:
        # `shoal get pods | head`: the reader left. Say nothing, and let the exit's flush of
        # stdout write nowhere rather than fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as err:
        sys.exit(report(err))


def report(err: Exception) -> int:
    """Say what went wrong in one line (a line per problem) and give the exit status, or raise
    ``err`` again when it is a bug (a traceback is then what helps)."""
    if isinstance(err, ShoalError):
        for warning in err.warnings:
            errors.print(f"[yellow]Warning:[/] {escape(warning)}")
        lines = err.message.splitlines() or [type(err).__name__]
        if err.code == "invalid-manifest" and len(lines) > 1:
            errors.print(f"[red]error:[/] {len(lines)} problems, nothing was changed:")
        else:
            errors.print(f"[red]error:[/] {escape(lines.pop(0))}")
        for line in lines:
            errors.print(f"  {escape(line)}")
        return 1
    if isinstance(err, UsageError):
        where = err.ctx.command_path if err.ctx is not None else "shoal"
        errors.print(f"[red]error:[/] {escape(err.format_message())} (see '{where} --help')")
        return 2
    # pydantic is not imported by commands that never build a model: look it up, not import it.
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(err, pydantic.ValidationError):
        # A name or value a command was given that no request may carry: one line each.
        for problem in err.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "value"
            errors.print(f"[red]error:[/] {escape(where)} {problem['input']!r}: {escape(problem['msg'])}")
        return 1
    raise err
