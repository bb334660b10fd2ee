"""Running the dashboard: its socket, the feed, and uvicorn, in the foreground or on a thread.

``shoal dashboard`` runs it in the foreground (``run``). ``shoal up`` runs it on a thread of
its own (``BackgroundDashboard``), with its own event loop and NATS connection: whatever the
pages cost never holds up the actors' loop, and a dashboard that fails takes no actor with it.
The socket is bound before anything starts, so the address printed is the one in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn

from shoal.dashboard import DEFAULT_ADDRESS, DEFAULT_PORT
from shoal.dashboard.app import Permissions, make_app
from shoal.dashboard.feed import Feed
from shoal.dashboard.hub import Hub
from shoal.dashboard.state import ClusterState
from shoal.errors import ShoalError
from shoal.security.access import Access

log = logging.getLogger(__name__)

STOP_TIMEOUT = 2.0
"""Seconds each part of stopping may take (the web server, then the feed) before it is abandoned."""


def bind(address: str, port: int, *, any_free_port: bool = False) -> socket.socket:
    """A listening socket on ``address:port``; ``any_free_port``: another port if that one is taken."""
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ShoalError(f"--address {address}: {err}") from None
    family, kind, proto, _, where = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            sock.bind(where)
        except OSError as err:
            if not (any_free_port and err.errno == errno.EADDRINUSE):
                raise
            sock.bind((where[0], 0, *where[2:]))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise ShoalError(f"the dashboard cannot listen on {address}:{port}: {err.strerror}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # signals belong to whoever runs the dashboard: it says when to stop


async def serve(
    server_url: str,
    sock: socket.socket,
    stop: asyncio.Event,
    *,
    connect_deadline: float = 60,
    access: Access | None = None,
    permissions: Permissions | None = None,
) -> None:
    """Follow the cluster at ``server_url`` and answer browsers on ``sock`` until ``stop`` is set."""
    hub = Hub(ClusterState())
    feed = Feed(server_url, hub, connect_deadline=connect_deadline, access=access)
    await feed.start()
    config = uvicorn.Config(
        make_app(feed, hub, permissions),
        http="h11",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="dashboard: http")
    stopped = asyncio.create_task(stop.wait(), name="dashboard: stop")
    try:
        await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()  # it ended by itself: say why
    finally:
        stopped.cancel()
        hub.close()  # ends every browser's stream, so uvicorn has nothing to wait for
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, STOP_TIMEOUT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(feed.stop(), STOP_TIMEOUT)  # a server that is gone may not answer


def run(
    server_url: str,
    sock: socket.socket,
    access: Access | None = None,
    permissions: Permissions | None = None,
) -> None:
    """In the foreground, until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(server_url, sock, stop, connect_deadline=10, access=access, permissions=permissions)

    asyncio.run(main())


class BackgroundDashboard:
    """The dashboard on a thread of its own, for ``shoal up``."""

    def __init__(
        self,
        server_url: str,
        address: str = DEFAULT_ADDRESS,
        port: int = DEFAULT_PORT,
        access: Access | None = None,
        permissions: Permissions | None = None,
    ) -> None:
        self.server_url = server_url
        self.access = access
        self.permissions = permissions
        self.sock = bind(address, port, any_free_port=True)
        self.url = url_of(self.sock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shoal-dashboard", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(3 * STOP_TIMEOUT)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._started.set()
            await serve(
                self.server_url, self.sock, self._stop, access=self.access, permissions=self.permissions
            )

        try:
            asyncio.run(main())
        except Exception as err:
            log.error("the dashboard stopped: %s", err, exc_info=err)
        finally:
            self._started.set()
            self.sock.close()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # its loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(3 * STOP_TIMEOUT)


def permissions_for(access: Access | None, *, allow_changes: bool) -> Permissions:
    """What a dashboard connecting with ``access`` may let its pages do. Changes need asking
    for, and an identity the cluster lets change things: with a viewer's, every action would be
    refused by the servers one by one, so the dashboard refuses to start instead."""
    from shoal.security.credentials import read_credentials
    from shoal.security.permissions import ADMIN

    credentials = read_credentials(access.credentials) if access and access.credentials else None
    identity = credentials.identity if credentials is not None else ""
    if allow_changes and credentials is not None and credentials.role != ADMIN:
        raise ShoalError(
            f"--allow-changes: the credentials in {access.credentials if access else ''} are a"
            f" {credentials.role}'s, and only an admin may change the cluster"
        )
    return Permissions(changes=allow_changes, identity=identity)
