"""The ``shoal`` command: every subcommand, and one place that turns errors into one line."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from rich.markup import escape

import shoal
from shoal.cli import autoscaling, change, dashboard, inspect, nodes, roles, rollout, streams, up
from shoal.cli.common import Stopped
from shoal.cli.output import errors
from shoal.errors import ShoalError

app = typer.Typer(
    name="shoal",
    help="Shoal: Kubernetes-style deployments on a small cluster, over NATS and Podman.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command(rich_help_panel="Cluster")(up.up)
app.command(rich_help_panel="Objects")(change.apply)
app.command(rich_help_panel="Objects")(inspect.get)
app.command(rich_help_panel="Objects")(inspect.describe)
app.command(rich_help_panel="Objects")(change.delete)
app.command(rich_help_panel="Objects")(change.scale)
app.add_typer(change.create_app, name="create", rich_help_panel="Objects")
app.command("api-resources", rich_help_panel="Objects")(inspect.api_resources)
app.add_typer(rollout.rollout_app, name="rollout", rich_help_panel="Objects")
app.add_typer(rollout.set_app, name="set", rich_help_panel="Objects")
app.command(rich_help_panel="Nodes")(nodes.cordon)
app.command(rich_help_panel="Nodes")(nodes.uncordon)
app.command(rich_help_panel="Nodes")(nodes.drain)
app.command(rich_help_panel="Nodes")(nodes.label)
app.command(rich_help_panel="Nodes")(nodes.taint)
app.command(rich_help_panel="Observe")(streams.logs)
app.command(rich_help_panel="Observe")(streams.events)
app.command(rich_help_panel="Observe")(autoscaling.top)
app.command(rich_help_panel="Observe")(dashboard.dashboard)
app.command(rich_help_panel="Roles")(roles.api)
app.command(rich_help_panel="Roles")(roles.scheduler)
app.command(rich_help_panel="Roles")(roles.node)
app.command(rich_help_panel="Roles")(roles.service)
app.command(rich_help_panel="Roles")(roles.autoscaler)


@app.command(rich_help_panel="Cluster")
def version() -> None:
    """Print Shoal's version."""
    print(f"shoal {shoal.__version__}")


def main() -> None:
    try:
        app()
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
