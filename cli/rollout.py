"""``shoal rollout ...`` and ``shoal set image``: watching and steering deployment rollouts."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn

from shoal.cli.common import NamespaceOption, ServerOption, with_client
from shoal.cli.output import age, console, table
from shoal.client import ShoalClient
from shoal.errors import InvalidManifest, NotFound
from shoal.models.api import ApplyReply

rollout_app = typer.Typer(help="Watch and steer rollouts of deployments.", no_args_is_help=True)
set_app = typer.Typer(help="Change one field of an object.", no_args_is_help=True)

TargetArgument = Annotated[str, typer.Argument(help="deployment/NAME")]


def deployment_name(target: str) -> str:
    kind, _, name = target.partition("/")
    if kind.lower() not in ("deployment", "deployments", "deploy") or not name:
        raise InvalidManifest([f"{target!r}: name a deployment as deployment/NAME"])
    return name


def _report(reply: ApplyReply) -> None:
    for result in reply.results:
        console.print(f"deployment.apps/{result.name} {result.action}")


@rollout_app.command()
def status(
    target: TargetArgument,
    namespace: NamespaceOption = "default",
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds.")] = 600.0,
    watch: Annotated[
        bool, typer.Option("--watch/--no-watch", "-w", help="Wait for the rollout to end.")
    ] = True,
    server: ServerOption = None,
) -> None:
    """Follow a rollout until it completes (exit 0) or fails its progress deadline (exit 1)."""
    name = deployment_name(target)
    key = f"{namespace}.{name}"

    async def follow(client: ShoalClient) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        progress = Progress(
            TextColumn("{task.description:<12}"), BarColumn(), TextColumn("{task.completed}/{task.total}")
        )
        updated_bar = progress.add_task("updated", total=1)
        available_bar = progress.add_task("available", total=1)
        with Live(progress, console=console, transient=True, auto_refresh=console.is_terminal):
            while True:
                deployment = (await client.deployments()).get(key)
                if deployment is None:
                    raise NotFound(f'deployment "{name}" not found in namespace {namespace}')
                state = (await client.deployment_statuses()).get(key)
                want = deployment.spec.desired_replicas
                if state is not None and state.uid == deployment.metadata.uid:
                    progress.update(updated_bar, total=max(want, 1), completed=state.updated_replicas)
                    progress.update(available_bar, total=max(want, 1), completed=state.available_replicas)
                    current = state.observed_generation >= deployment.metadata.generation
                    if current and state.failed:
                        return (
                            False,
                            f'deployment "{name}" exceeded its progress deadline: '
                            + state.progressing_message,
                        )
                    if current and state.progressing_reason == "NewReplicaSetAvailable":
                        return (
                            True,
                            f'deployment "{name}" successfully rolled out (revision {state.revision})',
                        )
                    if current and deployment.spec.paused:
                        return False, f'deployment "{name}" is paused: resume it with shoal rollout resume'
                    waiting = (
                        f"Waiting for deployment {name!r} rollout to finish:"
                        f" {state.updated_replicas} of {want} updated, {state.available_replicas} available"
                    )
                else:
                    waiting = f"Waiting for deployment {name!r} to be observed"
                if not console.is_terminal:
                    console.print(waiting)
                if not watch:
                    return False, waiting
                if time.monotonic() > deadline:
                    return False, f"timed out after {timeout:.0f}s: {waiting}"
                await asyncio.sleep(0.5 if console.is_terminal else 2.0)

    done, message = with_client(server, follow)
    console.print(message)
    if not done:
        raise typer.Exit(1)


@rollout_app.command()
def history(
    target: TargetArgument, namespace: NamespaceOption = "default", server: ServerOption = None
) -> None:
    """The revisions kept for a deployment."""
    name = deployment_name(target)

    async def gather(client: ShoalClient) -> tuple[int, dict]:  # type: ignore[type-arg]
        deployment = (await client.deployments()).get(f"{namespace}.{name}")
        if deployment is None:
            raise NotFound(f'deployment "{name}" not found in namespace {namespace}')
        return deployment.revision, await client.revisions(namespace, name)

    current, revisions = with_client(server, gather)
    now = time.time()
    table(
        ["REVISION", "CHANGE-CAUSE", "IMAGES", "AGE", ""],
        [
            [
                str(number),
                record.change_cause or "<none>",
                ",".join(c.image for c in record.template.spec.containers),
                age(record.created, now),
                "(current)" if number == current else "",
            ]
            for number, record in sorted(revisions.items())
        ],
    )


@rollout_app.command()
def undo(
    target: TargetArgument,
    to_revision: Annotated[
        int | None, typer.Option("--to-revision", help="Default: the previous revision.")
    ] = None,
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Go back to an earlier revision of the pod template."""
    name = deployment_name(target)
    _report(with_client(server, lambda c: c.rollout(namespace, name, "undo", to_revision=to_revision)))


@rollout_app.command()
def pause(
    target: TargetArgument, namespace: NamespaceOption = "default", server: ServerOption = None
) -> None:
    """Stop rolling out template changes (scaling still works)."""
    name = deployment_name(target)
    _report(with_client(server, lambda c: c.rollout(namespace, name, "pause")))


@rollout_app.command()
def resume(
    target: TargetArgument, namespace: NamespaceOption = "default", server: ServerOption = None
) -> None:
    """Continue a paused rollout."""
    name = deployment_name(target)
    _report(with_client(server, lambda c: c.rollout(namespace, name, "resume")))


@rollout_app.command()
def restart(
    target: TargetArgument, namespace: NamespaceOption = "default", server: ServerOption = None
) -> None:
    """Replace every pod, by the deployment's strategy."""
    name = deployment_name(target)
    _report(with_client(server, lambda c: c.rollout(namespace, name, "restart")))


@set_app.command()
def image(
    target: TargetArgument,
    images: Annotated[list[str], typer.Argument(help="CONTAINER=IMAGE (repeatable)")],
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Set container images of a deployment: a new revision, rolled out by its strategy."""
    name = deployment_name(target)
    wanted = {}
    for pair in images:
        container, sep, ref = pair.partition("=")
        if not sep or not container or not ref:
            raise InvalidManifest([f"{pair!r}: use CONTAINER=IMAGE"])
        wanted[container] = ref
    _report(with_client(server, lambda c: c.rollout(namespace, name, "set-image", images=wanted)))
