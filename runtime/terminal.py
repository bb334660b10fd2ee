"""A process on a pseudo-terminal of the node: ``shoal exec -t`` runs Podman's client on one, so
the size of the user's terminal reaches the container. Podman's client passes its terminal's
size to the exec session when it starts and again on every change (SIGWINCH, which the
kernel sends when the size of the terminal is set), as it does for a user at a console.

It looks like an ``asyncio.subprocess.Process`` to the exec service: ``stdin`` to write to,
``stdout`` to read (a terminal has one output stream), ``wait``, ``kill``, plus ``resize``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
import tty

READ_SIZE = 32 * 1024


def set_size(fd: int, rows: int, columns: int) -> None:
    """The terminal's size; the kernel tells its foreground processes (SIGWINCH)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _take_terminal() -> None:
    """In the child: a session of its own, with the terminal (its standard input) as its
    controlling one, so that size changes reach it."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class _Input:
    """What the command reads: bytes written to the terminal's master side."""

    def __init__(self, master: int) -> None:
        self._master = master
        self._pending = b""

    def write(self, data: bytes) -> None:
        self._pending += data

    async def drain(self) -> None:
        while pending := self._pending:
            try:
                written = os.write(self._master, pending)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            self._pending = pending[written:]

    def close(self) -> None:
        # A terminal has no end of input to send: the command ends as the user ends it.
        pass


class Terminal:
    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self._master = master
        self.stdin = _Input(master)
        self.stdout = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None
        loop = asyncio.get_running_loop()
        os.set_blocking(master, False)
        loop.add_reader(master, self._readable)

    @classmethod
    async def spawn(cls, argv: list[str], rows: int = 0, columns: int = 0) -> Terminal:
        master, slave = os.openpty()
        try:
            # Raw: the bytes pass as they are (the container's own terminal does the line
            # editing and echoing).
            tty.setraw(slave)
            if rows and columns:
                set_size(slave, rows, columns)
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=slave, stdout=slave, stderr=slave, preexec_fn=_take_terminal
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(process, master)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: the command and everything holding the terminal are gone
            data = b""
        if data:
            self.stdout.feed_data(data)
            return
        asyncio.get_running_loop().remove_reader(self._master)
        self.stdout.feed_eof()

    def resize(self, rows: int, columns: int) -> None:
        with contextlib.suppress(OSError):
            set_size(self._master, rows, columns)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait(self) -> int:
        code = await self.process.wait()
        self.close()
        return code

    def kill(self) -> None:
        self.process.kill()

    def close(self) -> None:
        if self._master >= 0:
            asyncio.get_running_loop().remove_reader(self._master)
            if not self.stdout.at_eof():
                self.stdout.feed_eof()
            os.close(self._master)
            self._master = -1
