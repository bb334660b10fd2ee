"""``shoal rollout ...`` and ``shoal set image``: watching and steering the rollouts of
deployments, DaemonSets and StatefulSets."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn

from shoal.cli import complete
from shoal.cli.common import NameAfterKindArgument, NamespaceOption, ServerOption, with_client
from shoal.cli.output import age, console, table
from shoal.client import ShoalClient
from shoal.errors import InvalidManifest, NotFound
from shoal.kinds import registry
from shoal.models.api import ApplyReply
from shoal.retry import is_transient

rollout_app = typer.Typer(
    help="Watch and steer rollouts of deployments, DaemonSets and StatefulSets.", no_args_is_help=True
)
set_app = typer.Typer(help="Change one field of an object.", no_args_is_help=True)

TargetArgument = Annotated[
    str,
    typer.Argument(
        help="deployment/NAME, daemonset/NAME or statefulset/NAME (or the kind, then NAME)",
        autocompletion=complete.kind_or_object,
    ),
]

ROLLED = ("Deployment", "DaemonSet", "StatefulSet")


def workload_target(target: str, given: str | None = None) -> tuple[str, str]:
    """(kind, name) of ``KIND/NAME`` or ``KIND NAME``: a deployment, DaemonSet or StatefulSet."""
    kind, _, name = target.partition("/")
    if given is not None:
        if name:
            raise InvalidManifest([f"{target!r} names the object already; {given!r} is one name too many"])
        name = given
    resolved = registry().resolve(kind)
    if resolved is None or resolved.kind not in ROLLED or not name:
        raise InvalidManifest([f"{target!r}: name a deployment, daemonset or statefulset as KIND/NAME"])
    return resolved.kind, name


def deployment_name(target: str, given: str | None = None) -> str:
    kind, name = workload_target(target, given)
    if kind != "Deployment":
        raise InvalidManifest([f"{target!r}: only deployments can be paused and resumed"])
    return name


def _report(reply: ApplyReply) -> None:
    for result in reply.results:
        found = registry().by_kind(result.kind)
        console.print(f"{found.qualified if found else result.kind}/{result.name} {result.action}")


@rollout_app.command()
def status(
    target: TargetArgument,
    name: NameAfterKindArgument = None,
    namespace: NamespaceOption = "default",
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds.")] = 600.0,
    watch: Annotated[
        bool, typer.Option("--watch/--no-watch", "-w", help="Wait for the rollout to end.")
    ] = True,
    server: ServerOption = None,
) -> None:
    """Follow a rollout until it completes (exit 0) or fails its progress deadline (exit 1)."""
    kind, name = workload_target(target, name)
    key = f"{namespace}.{name}"
    if kind != "Deployment":
        done, message = with_client(server, lambda c: _follow_workload(c, kind, key, name, timeout, watch))
        console.print(message)
        if not done:
            raise typer.Exit(1)
        return

    async def follow(client: ShoalClient) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        progress = Progress(
            TextColumn("{task.description:<12}"), BarColumn(), TextColumn("{task.completed}/{task.total}")
        )
        updated_bar = progress.add_task("updated", total=1)
        available_bar = progress.add_task("available", total=1)
        with Live(progress, console=console, transient=True, auto_refresh=console.is_terminal):
            while True:
                try:
                    deployment = (await client.deployments()).get(key)
                    state = (await client.deployment_statuses()).get(key)
                except Exception as err:
                    # A server of the cluster lost, its streams electing leaders: ask again.
                    if not is_transient(err) or not watch or time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
                    continue
                if deployment is None:
                    raise NotFound(f'deployment "{name}" not found in namespace {namespace}')
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


async def _workload_state(client: ShoalClient, kind: str, key: str, name: str) -> tuple[bool, str]:
    """(done, what to say) of a DaemonSet's or StatefulSet's rollout, as kubectl says it."""
    if kind == "DaemonSet":
        return await _daemonset_state(client, key, name)
    statefulset = (await client.statefulsets()).get(key)
    state = (await client.statefulset_statuses()).get(key)
    if statefulset is None:
        raise NotFound(f'statefulset "{name}" not found')
    if state is None or state.uid != statefulset.metadata.uid:
        return False, f"Waiting for statefulset {name!r} to be observed"
    if state.observed_generation < statefulset.metadata.generation:
        return False, "Waiting for statefulset spec update to be observed..."
    want = statefulset.spec.desired_replicas
    if state.ready_replicas < want:
        return False, f"Waiting for {want - state.ready_replicas} pods to be ready..."
    updated, revision = state.updated_replicas, f"{name}-{state.update_revision}"
    partition = statefulset.spec.update_strategy.partition
    if partition:
        if updated < want - partition:
            progress = f"{updated} out of {want - partition} new pods have been updated..."
            return False, f"Waiting for partitioned roll out to finish: {progress}"
        return True, f"partitioned roll out complete: {updated} new pods have been updated..."
    if state.update_revision != state.current_revision:
        return (
            False,
            f"waiting for statefulset rolling update to complete {updated} pods at revision {revision}...",
        )
    return True, f"statefulset rolling update complete {want} pods at revision {revision}..."


async def _daemonset_state(client: ShoalClient, key: str, name: str) -> tuple[bool, str]:
    daemonset = (await client.daemonsets()).get(key)
    state = (await client.daemonset_statuses()).get(key)
    if daemonset is None:
        raise NotFound(f'daemonset "{name}" not found')
    if state is None or state.uid != daemonset.metadata.uid:
        return False, f"Waiting for daemon set {name!r} to be observed"
    if state.observed_generation < daemonset.metadata.generation:
        return False, "Waiting for daemon set spec update to be observed..."
    want, waiting = state.desired_number_scheduled, f"Waiting for daemon set {name!r} rollout to finish:"
    if state.updated_number_scheduled < want:
        return (
            False,
            f"{waiting} {state.updated_number_scheduled} out of {want} new pods have been updated...",
        )
    if state.number_available < want:
        return False, f"{waiting} {state.number_available} of {want} updated pods are available..."
    return True, f'daemon set "{name}" successfully rolled out'


async def _follow_workload(
    client: ShoalClient, kind: str, key: str, name: str, timeout: float, watch: bool
) -> tuple[bool, str]:
    deadline = time.monotonic() + timeout
    said = ""
    while True:
        done, message = await _workload_state(client, kind, key, name)
        if done or not watch:
            return done, message
        if message != said:
            console.print(message)
            said = message
        if time.monotonic() > deadline:
            return False, f"timed out after {timeout:.0f}s: {message}"
        await asyncio.sleep(0.5)


@rollout_app.command()
def history(
    target: TargetArgument,
    name: NameAfterKindArgument = None,
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """The revisions kept for a deployment, DaemonSet or StatefulSet."""
    kind, name = workload_target(target, name)

    async def gather(client: ShoalClient) -> tuple[int, dict]:  # type: ignore[type-arg]
        if kind == "Deployment":
            deployment = (await client.deployments()).get(f"{namespace}.{name}")
            if deployment is None:
                raise NotFound(f'deployment "{name}" not found in namespace {namespace}')
            return deployment.revision, await client.revisions(namespace, name)
        objects = await (client.daemonsets() if kind == "DaemonSet" else client.statefulsets())
        workload = objects.get(f"{namespace}.{name}")
        if workload is None:
            raise NotFound(f'{kind.lower()} "{name}" not found in namespace {namespace}')
        revisions = await client.revisions(namespace, name, kind)
        template_hash = workload.spec.template.hash()
        current = max((n for n, r in revisions.items() if r.template_hash == template_hash), default=0)
        return current, revisions

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
    name: NameAfterKindArgument = None,
    to_revision: Annotated[
        int | None, typer.Option("--to-revision", help="Default: the previous revision.")
    ] = None,
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Go back to an earlier revision of the pod template."""
    kind, name = workload_target(target, name)
    _report(
        with_client(server, lambda c: c.rollout(namespace, name, "undo", to_revision=to_revision, kind=kind))
    )


@rollout_app.command()
def pause(
    target: TargetArgument,
    name: NameAfterKindArgument = None,
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Stop rolling out template changes (scaling still works)."""
    name = deployment_name(target, name)
    _report(with_client(server, lambda c: c.rollout(namespace, name, "pause")))


@rollout_app.command()
def resume(
    target: TargetArgument,
    name: NameAfterKindArgument = None,
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Continue a paused rollout."""
    name = deployment_name(target, name)
    _report(with_client(server, lambda c: c.rollout(namespace, name, "resume")))


@rollout_app.command()
def restart(
    target: TargetArgument,
    name: NameAfterKindArgument = None,
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Replace every pod, by the workload's update strategy."""
    kind, name = workload_target(target, name)
    _report(with_client(server, lambda c: c.rollout(namespace, name, "restart", kind=kind)))


@set_app.command()
def image(
    target: TargetArgument,
    images: Annotated[list[str], typer.Argument(help="CONTAINER=IMAGE (repeatable)")],
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Set container images of a deployment, DaemonSet or StatefulSet: a new revision, rolled out
    by its strategy."""
    given = None if "/" in target or not images or "=" in images[0] else images.pop(0)
    kind, name = workload_target(target, given)
    wanted = {}
    for pair in images:
        container, sep, ref = pair.partition("=")
        if not sep or not container or not ref:
            raise InvalidManifest([f"{pair!r}: use CONTAINER=IMAGE"])
        wanted[container] = ref
    _report(with_client(server, lambda c: c.rollout(namespace, name, "set-image", images=wanted, kind=kind)))
