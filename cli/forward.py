"""``shoal port-forward``: local ports that lead to a pod's, through the node that runs it, as
``kubectl port-forward`` does (a pod, KIND/NAME of what made it, or svc/NAME)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from shoal import keys
from shoal.cli import complete
from shoal.cli.common import NamespaceOption, ServerOption, Stopped, with_client
from shoal.cli.output import errors
from shoal.errors import InvalidManifest, NotFound, ShoalError

if TYPE_CHECKING:
    from shoal.client import ShoalClient


def port_pair(text: str) -> tuple[int, int]:
    """``LOCAL:REMOTE``, ``REMOTE`` (the same port here) or ``:REMOTE`` (any free one here:
    0) as (local, remote)."""
    local, colon, remote = text.rpartition(":")
    if not colon:
        local = remote
    try:
        pair = (int(local) if local else 0, int(remote))
    except ValueError:
        pair = (-1, -1)
    if not (0 <= pair[0] <= 65535 and 1 <= pair[1] <= 65535):
        raise InvalidManifest(
            [f"port-forward: {text!r} is not a port pair: LOCAL:REMOTE, REMOTE or :REMOTE (ports 1-65535)"]
        )
    return pair


def port_forward(
    target: Annotated[
        str,
        typer.Argument(
            help="A pod, KIND/NAME of what made one (deploy/web), or svc/NAME", autocompletion=complete.pods
        ),
    ],
    ports: Annotated[
        list[str], typer.Argument(help="LOCAL:REMOTE, REMOTE (the same port here) or :REMOTE (a free one)")
    ],
    address: Annotated[str, typer.Option("--address", help="The local address to listen on.")] = "127.0.0.1",
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Forward local ports to a pod's, until Ctrl-C: shoal port-forward deploy/web 8080:80."""
    pairs = [port_pair(text) for text in ports]

    async def run(client: ShoalClient) -> None:
        pod, remotes = await _pod_and_ports(client, namespace, target, [remote for _, remote in pairs])
        listeners = []
        for (local, _), remote in zip(pairs, remotes, strict=True):

            async def relay(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, remote: int = remote
            ) -> None:
                print(f"Handling connection for {writer.get_extra_info('sockname')[1]}", flush=True)
                try:
                    await client.forward(namespace, pod, remote, reader, writer)
                except ShoalError as err:  # this connection fails; the others go on
                    errors.print(f"[red]error:[/] {escape(err.message)}")
                    writer.close()

            try:
                listener = await asyncio.start_server(relay, address, local)
            except OSError as err:
                raise ShoalError(
                    f"port-forward: cannot listen on {address}:{local}: {err.strerror}"
                ) from None
            listeners.append(listener)
            print(f"Forwarding from {address}:{listener.sockets[0].getsockname()[1]} -> {remote}", flush=True)
        await asyncio.Event().wait()  # until SIGINT or SIGTERM

    try:
        with_client(server, run)
    except Stopped:
        raise typer.Exit(0) from None


async def _pod_and_ports(
    client: ShoalClient, namespace: str, target: str, remotes: list[int]
) -> tuple[str, list[int]]:
    """The pod to connect to, and its port for each asked for: for svc/NAME a Ready pod of the
    service and the target port of each service port, as kubectl does."""
    kind, _, name = target.partition("/")
    if kind.lower() not in ("svc", "service", "services") or not name:
        from shoal.cli.streams import pod_of

        return await pod_of(client, namespace, target), remotes
    endpoints = (await client.endpoints()).get(keys.object_key(namespace, name))
    if endpoints is None:
        raise NotFound(f'services "{name}" not found in namespace {namespace}')
    pod, ports = "", []
    for remote in remotes:
        port = next((p for p in endpoints.ports if p.port == remote), None)
        if port is None:
            served = ", ".join(str(p.port) for p in endpoints.ports) or "none"
            raise NotFound(f"service {name} has no port {remote} (its ports: {served})")
        target_of = {t.pod: t for t in port.targets}
        pod = pod or min(target_of, default="")
        if not pod or pod not in target_of:
            raise ShoalError(f"service {name} has no Ready pod to forward port {remote} to")
        ports.append(target_of[pod].container_port or remote)
    return pod, ports
