"""Connecting to NATS: patient for actors, quick and clear for the command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import nats
from nats.aio.client import Client

from shoal.errors import ClusterUnreachable, CredentialsRefused
from shoal.security.access import Access

log = logging.getLogger(__name__)


class _ClosedTLSNoise(logging.Filter):
    """asyncio warns that "returning true from eof_received() has no effect when using ssl" each
    time a TLS connection of nats-py's ends: nothing is wrong, and nothing to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "eof_received() has no effect" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_ClosedTLSNoise())

_reconnect_hooks: dict[int, list[Callable[[], None]]] = {}
_denied: dict[int, tuple[str, float]] = {}
"""The last refusal the server sent each connection: its words and when (monotonic)."""
"""The last permission the server refused each client connection (by id), in its words."""


def denied(nc: Client) -> str:
    """What the server last refused ``nc`` ("" if nothing): a request it refused goes unanswered
    and times out, and this says why."""
    return _denied.get(id(nc), ("", 0.0))[0]


def denied_since(nc: Client, since: float) -> str:
    """What the server refused ``nc`` at or after ``since`` (time.monotonic()), or ""."""
    text, when = _denied.get(id(nc), ("", 0.0))
    return text if when >= since else ""


def _note_denial(holder: list[Client], err: BaseException) -> None:
    text = str(err)
    if holder and "permissions violation" in text.lower():
        _denied[id(holder[0])] = (text.removeprefix("nats: ").strip(), time.monotonic())


def on_reconnect(nc: Client, hook: Callable[[], None]) -> None:
    """Call ``hook`` each time ``nc`` (from connect_actor) reconnects.

    JetStream consumers do not survive a restart of nats-server, and nats-py's ordered
    consumers do not notice: watches must be started again (with a replay) on reconnect.
    """
    _reconnect_hooks.setdefault(id(nc), []).append(hook)


def servers_of(url: str) -> list[str]:
    """``nats://a:4222,nats://b:4222``: every server of a cluster, tried in turn and failed over."""
    return [part.strip() for part in url.split(",") if part.strip()]


def replicas_for(nc: Client) -> int:
    """JetStream replicas for new state: 3 on a cluster of three servers or more, else 1 (a lone
    server cannot replicate). The cluster's size is what the server tells clients of it."""
    urls = (getattr(nc, "_server_info", None) or {}).get("connect_urls") or []
    return 3 if len(urls) >= 3 else 1


def refused(err: BaseException) -> str:
    """Why a server turned a connection away, in words a user acts on; "" if it did not."""
    text = str(err).lower()
    if "authorization violation" in text or "authentication" in text:
        return "the server refused these credentials (or needs some: --credentials / the context file)"
    if "certificate" in text or "ssl" in text or "tls" in text:
        return f"TLS failed ({err}): is --tls-ca the cluster's CA?"
    return ""


AUTH_ATTEMPTS = 3
"""Tries of a connect the server refused as unauthenticated, before saying so."""

HOW_TO_START = "start one with `shoal up`, or point at one with --server / SHOAL_SERVER"


async def connect_actor(
    url: str, name: str, *, deadline: float = 60.0, access: Access | None = None
) -> Client:
    """Connect an actor: retry until ``deadline`` seconds, then reconnect forever.

    A short ping interval lets an actor notice a dead server within seconds, and
    unlimited reconnects let it ride out a restart of nats-server.
    """

    holder: list[Client] = []
    joined: list[str] = []  # the server it is on (host:port), for the logs
    options = (access or Access()).options()
    last_error: list[BaseException] = []

    async def errored(err: Exception) -> None:
        last_error[:] = [err]
        _note_denial(holder, err)
        if "permissions violation" in str(err).lower():
            log.error("the NATS server refused %s: %s", name, err)

    async def disconnected() -> None:
        if holder and (holder[0].is_closed or holder[0].is_draining):
            return  # our own shutdown
        log.warning("%s disconnected from NATS at %s", name, joined[0] if joined else url)

    async def reconnected() -> None:
        server = getattr(holder[0].connected_url, "netloc", "") if holder else ""
        joined[:] = [server] if server else []
        log.info("%s reconnected to NATS at %s", name, server or url)
        for hook in _reconnect_hooks.get(id(holder[0]), []) if holder else []:
            hook()

    try:
        nc = await asyncio.wait_for(
            nats.connect(
                servers=servers_of(url),
                name=name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                ping_interval=2,
                max_outstanding_pings=3,
                error_cb=errored,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                **options,
            ),
            timeout=deadline,
        )
    except (TimeoutError, OSError, nats.errors.Error) as err:
        why = refused(last_error[0]) if last_error else ""
        if why:
            raise CredentialsRefused(f"NATS at {url}: {why}") from None
        raise ClusterUnreachable(f"no NATS server answered at {url} within {deadline:.0f}s ({err})") from None
    holder.append(nc)
    # Which server of a cluster it joined (they are tried in random order, spreading the load).
    joined[:] = [getattr(nc.connected_url, "netloc", "")]
    log.info("%s connected to NATS at %s", name, joined[0] or url)
    return nc


CLOSE_TIMEOUT = 1.0
"""Seconds a failed connect's socket is given to close."""


async def connect_client(
    url: str,
    name: str = "shoal-cli",
    *,
    timeout: float = 2.0,
    reconnect: bool = False,
    access: Access | None = None,
) -> Client:
    """Connect the command line: one quick try, then a one-line explanation. With ``reconnect``,
    a connection that drops later is made again for as long as it takes (``events -w``)."""
    options = (access or Access()).options()
    last_error: list[BaseException] = []
    holder: list[Client] = []

    async def errored(err: Exception) -> None:
        last_error[:] = [err]
        _note_denial(holder, err)

    for attempt in range(AUTH_ATTEMPTS):
        nc = Client()
        try:
            await nc.connect(
                servers=servers_of(url),
                name=name,
                connect_timeout=timeout,
                allow_reconnect=reconnect,
                max_reconnect_attempts=-1 if reconnect else 1,
                reconnect_time_wait=0.25 if reconnect else 0.05,
                ping_interval=2 if reconnect else 120,
                max_outstanding_pings=3 if reconnect else 2,
                error_cb=errored,
                **options,
            )
            break
        except (TimeoutError, OSError, nats.errors.Error) as err:
            why = refused(last_error[0] if last_error else err)
            # A connect that fails after its socket opened (a server dying mid-handshake)
            # leaves that socket to the client: close it, or it leaks. (After reading why:
            # closing reports errors of its own; and a TLS socket that never finished its
            # handshake may never finish closing either: give it a moment, not forever.)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), CLOSE_TIMEOUT)
            if why and "credentials" in why and attempt + 1 < AUTH_ATTEMPTS:
                # A nats-server reloading its users (an identity was just issued) refuses the
                # connects it is checking at that instant: a moment later they pass.
                last_error.clear()
                await asyncio.sleep(0.2)
                continue
            if why:
                raise ClusterUnreachable(f"the Shoal cluster at {url}: {why}") from None
            raise ClusterUnreachable(f"no Shoal cluster answered at {url}: {HOW_TO_START}") from None
    holder.append(nc)
    return nc
