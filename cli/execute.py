"""``shoal exec``: run a command in a pod's container, on whatever node runs it, as
``kubectl exec`` does: output as it comes, standard input with ``-i``, a terminal with ``-t``,
and the command's exit code as the command's own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import termios
import threading
import tty
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from shoal.cli import complete
from shoal.cli.common import NamespaceOption, ServerOption, with_client
from shoal.errors import InvalidManifest

if TYPE_CHECKING:
    from shoal.client import ShoalClient

READ_SIZE = 32 * 1024


def exec_command(
    pod: Annotated[
        str,
        typer.Argument(
            help="The pod's name, or KIND/NAME of what made it (deploy/web).", autocompletion=complete.pods
        ),
    ],
    command: Annotated[
        list[str] | None, typer.Argument(help="The command and its arguments, after --.")
    ] = None,
    container: Annotated[
        str, typer.Option("--container", "-c", help="Container, when the pod has several.")
    ] = "",
    stdin: Annotated[bool, typer.Option("--stdin", "-i", help="Pass standard input to the command.")] = False,
    terminal: Annotated[bool, typer.Option("--tty", "-t", help="Give the command a terminal.")] = False,
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Run a command in a container of a pod: shoal exec -it POD -- sh."""
    if not command:
        raise InvalidManifest([f"exec {pod}: give the command after --, as in shoal exec {pod} -- ls /"])

    async def run(client: ShoalClient) -> int:
        from shoal.cli.streams import pod_of

        name = await pod_of(client, namespace, pod)
        source = _standard_input() if stdin else None
        size = _terminal_size() if terminal else None
        return await client.exec(
            namespace,
            name,
            command,
            container=container,
            stdin=source,
            tty=terminal,
            size=size or (0, 0),
            resizes=_resizes() if size else None,
            output=_write,
        )

    with _raw_terminal(terminal and stdin):
        code = with_client(server, run)
    raise typer.Exit(code)


def _write(fd: int, data: bytes) -> None:
    stream = sys.stdout.buffer if fd == 1 else sys.stderr.buffer
    stream.write(data)
    stream.flush()


async def _standard_input() -> AsyncIterator[bytes]:
    """This process's standard input as it is typed or piped, until its end."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    fd = sys.stdin.fileno()

    def read() -> None:
        # A thread, not the event loop: a terminal or a pipe blocks, and the output must flow.
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except OSError:
                data = b""
            loop.call_soon_threadsafe(chunks.put_nowait, data)
            if not data:
                return

    threading.Thread(target=read, daemon=True, name="exec-stdin").start()
    while data := await chunks.get():
        yield data


def _terminal_size() -> tuple[int, int] | None:
    """(rows, columns) of the terminal this command runs in, if it runs in one."""
    for stream in (sys.stdin, sys.stdout):
        if stream.isatty():
            size = os.get_terminal_size(stream.fileno())
            return size.lines, size.columns
    return None


async def _resizes() -> AsyncIterator[tuple[int, int]]:
    """The terminal's size each time it changes (SIGWINCH), for the remote terminal to follow."""
    loop = asyncio.get_running_loop()
    changed: asyncio.Queue[None] = asyncio.Queue()
    loop.add_signal_handler(signal.SIGWINCH, changed.put_nowait, None)
    try:
        while True:
            await changed.get()
            size = _terminal_size()
            if size:
                yield size
    finally:
        loop.remove_signal_handler(signal.SIGWINCH)


@contextlib.contextmanager
def _raw_terminal(wanted: bool) -> Iterator[None]:
    """The local terminal in raw mode while a remote one is used (keys, Ctrl-C included, go to
    the command), restored however the session ends."""
    if not wanted or not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
