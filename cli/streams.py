"""Commands that follow the cluster: logs and events."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from shoal.bus import subjects
from shoal.cli import complete
from shoal.cli.common import NamespaceOption, ServerOption, Stopped, with_client
from shoal.cli.output import age, errors
from shoal.client import ShoalClient
from shoal.errors import NotFound
from shoal.models.event import Event


def logs(
    pod: Annotated[
        str,
        typer.Argument(
            help="The pod's name, or KIND/NAME of what made it (deploy/web)", autocompletion=complete.pods
        ),
    ],
    container: Annotated[
        str, typer.Option("--container", "-c", help="Container, when the pod has several.")
    ] = "",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new output.")] = False,
    tail: Annotated[int | None, typer.Option("--tail", help="Only the last N lines.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only output newer than this: 10s, 5m, 1h.")
    ] = None,
    previous: Annotated[
        bool,
        typer.Option("--previous", "-p", help="The output of the container's run before the current one."),
    ] = False,
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Print a container's output, fetched from the node that runs it."""
    from shoal.cli.wait import parse_duration

    since_time = time.time() - parse_duration(since, "--since") if since else None

    async def stream(client: ShoalClient) -> None:
        name = await pod_of(client, namespace, pod)
        async for chunk in client.logs(
            namespace,
            name,
            container=container,
            follow=follow,
            tail=tail,
            since=since_time,
            previous=previous,
        ):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()

    try:
        with_client(server, stream)
    except Stopped:
        raise typer.Exit(0) from None


async def pod_of(client: ShoalClient, namespace: str, target: str) -> str:
    """The pod ``target`` names: itself, or for ``KIND/NAME`` (deploy/web, job/x) one of the
    pods it made, as kubectl picks one (the first by name) and says so on stderr when it had
    several to choose from."""
    kind, _, name = target.partition("/")
    if not name:
        return target
    from shoal.cli.inspect import resolve_kind

    info = resolve_kind(kind)
    if info.kind == "Pod":
        return name
    made = sorted(
        p.metadata.name
        for p in (await client.pods()).values()
        if p.metadata.namespace == namespace
        and p.metadata.owner is not None
        and p.metadata.owner.kind == info.kind
        and p.metadata.owner.name == name
        and not p.terminating
    )
    if not made:
        raise NotFound(f"{info.qualified}/{name} has no pods in namespace {namespace}")
    if len(made) > 1:
        errors.print(f"Found {len(made)} pods, using pod/{made[0]}")
    return made[0]


def format_event(event: Event, now: float) -> str:
    scope = f"{event.namespace}/" if event.namespace else ""
    target = f"{event.kind.lower()}/{scope}{event.name}"
    return f"{age(event.time, now):>6}  {event.type:<7}  {event.reason:<17}  {target:<48}  {event.message}"


def events(
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="After the past events, follow new ones.")
    ] = False,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Only this namespace.")] = None,
    last: Annotated[int | None, typer.Option("--last", help="Only the newest N past events.")] = None,
    server: ServerOption = None,
) -> None:
    """Show the cluster's events (from the SHOAL_EVENTS stream), and follow them with -w."""
    subject = subjects.EVENTS_ALL if namespace is None else f"{subjects.EVENTS_PREFIX}.*.{namespace}.>"

    async def stream(client: ShoalClient) -> None:
        print(f"{'AGE':>6}  {'TYPE':<7}  {'REASON':<17}  {'OBJECT':<48}  MESSAGE", flush=True)
        async for event in client.events(follow=watch, last=last, subject=subject):
            print(format_event(event, time.time()), flush=True)

    try:
        with_client(server, stream, reconnect=watch)
    except Stopped:
        raise typer.Exit(0) from None
