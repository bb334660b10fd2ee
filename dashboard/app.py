"""The web application: the pages, a snapshot, the live stream and one object's YAML.

| path | answer |
| --- | --- |
| ``/`` | the single page (``static/index.html``); the rest of the pages are routes after ``#`` |
| ``/static/...`` | its scripts and style |
| ``/api/snapshot`` | every table's views, the newest events, and ``seq`` (JSON) |
| ``/api/stream`` | server-sent events: ``snapshot`` once, then ``patch`` (a list of patches) |
| ``/api/objects/{kind}/{namespace}/{name}`` | ``{kind, namespace, name, yaml}`` (nodes: namespace ``_``) |
| ``/api/logs/{namespace}/{pod}?container=C`` | server-sent events: ``chunk`` (text) as written, ``end`` |
| ``/api/session`` | ``{changes, identity, actions, token}``: what the page may change, and how |
| ``POST /api/actions`` | one change (``actions``), answered ``{message}`` or ``{error}`` |
| ``/healthz`` | ``{synced, browsers}`` |

Only ``POST /api/actions`` changes the cluster, and only on a dashboard started with
``--allow-changes``. It is guarded as a page that can change things must be against other
sites the same browser visits: the request must name a host that is not a name another site
could point here (an address, ``localhost`` or this host's own name: no DNS rebinding),
come from this page's origin, and carry the token ``/api/session`` gives to this page only
(a custom header, which no form or cross-origin request without a preflight can send).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoal.bus import kv
from shoal.client import ShoalClient
from shoal.dashboard import actions, detail
from shoal.dashboard.feed import Feed
from shoal.dashboard.hub import Hub
from shoal.errors import ShoalError

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"

KEEPALIVE = 10.0
"""Seconds between comments on a quiet stream (proxies and browsers drop silent ones)."""

RECONNECT_MS = 1000
"""How soon a browser's EventSource connects again after the stream ends."""

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Pure ASGI middleware (it leaves streamed responses alone): nothing but our own files runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


LOG_TAIL = 200
"""Lines of a pod's log a page starts with, before it follows what comes."""

TOKEN_HEADER = "x-shoal-token"


@dataclass(frozen=True)
class Permissions:
    """What this dashboard lets a page do, and who it is to the cluster."""

    changes: bool = False
    identity: str = ""
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    """Given only to this dashboard's page; kept out of reprs, so no log line shows it."""


def trusted_host(host: str, own_names: tuple[str, ...]) -> bool:
    """Whether a request's Host header names this server in a way no other site could: an IP
    address, ``localhost``, or one of this host's own names. A page of another site whose
    name was pointed at this address (DNS rebinding) sends its own name and is refused."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name == "localhost" or name in own_names


def own_host_names() -> tuple[str, ...]:
    return tuple({socket.gethostname().lower(), socket.getfqdn().lower()})


def refusal(
    allowed: Permissions, headers: Mapping[str, str], scheme: str, own_names: tuple[str, ...]
) -> str | None:
    """Why a request to change the cluster is refused (None: it may go on)."""
    host = headers.get("host", "")
    if not allowed.changes:
        return "this dashboard is read-only: start it with --allow-changes and an admin's credentials"
    if not trusted_host(host, own_names):
        return f"refused: the host {host!r} is not an address or a name of this host"
    if headers.get("origin") != f"{scheme}://{host}":
        return "refused: the request does not come from this dashboard's page"
    token = headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(token.encode(), allowed.token.encode()):
        return "refused: the request lacks this dashboard's token (reload the page)"
    return None


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


def make_app(feed: Feed, hub: Hub, permissions: Permissions | None = None) -> ASGIApp:
    allowed = permissions or Permissions()
    names = own_host_names()

    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def snapshot(_: Request) -> Response:
        return Response(hub.state.snapshot_json(), media_type="application/json")

    async def stream(_: Request) -> Response:
        subscriber = hub.subscribe()

        async def body() -> AsyncIterator[str]:
            try:
                yield f"retry: {RECONNECT_MS}\n" + sse("snapshot", subscriber.snapshot)
                while True:
                    try:
                        message = await asyncio.wait_for(subscriber.queue.get(), KEEPALIVE)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if message is None:
                        return
                    yield sse("patch", message)
            finally:
                hub.unsubscribe(subscriber)

        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    async def one(request: Request) -> Response:
        kind = request.path_params["kind"]
        namespace = request.path_params["namespace"]
        name = request.path_params["name"]
        if kind not in detail.KINDS:
            return JSONResponse({"error": f"unknown kind {kind!r}"}, status_code=404)
        obj = detail.render(kind, "" if namespace == "_" else namespace, name, feed.get, feed.values)
        if obj is None:
            return JSONResponse({"error": f"{kind} {namespace}/{name} not found"}, status_code=404)
        body = {"kind": kind, "namespace": namespace, "name": name, "yaml": detail.as_yaml(obj)}
        return JSONResponse(body, headers={"cache-control": "no-cache"})

    async def healthz(_: Request) -> Response:
        return JSONResponse({"synced": feed.synced, "browsers": len(hub.subscribers)})

    def client() -> ShoalClient:
        assert feed.nc is not None  # started before the server is
        return ShoalClient(feed.nc)

    async def session(request: Request) -> Response:
        changes = allowed.changes and trusted_host(request.headers.get("host", ""), names)
        body = {
            "changes": changes,
            "identity": allowed.identity,
            "actions": actions.ACTIONS if changes else {},
            "token": allowed.token if changes else None,
        }
        return JSONResponse(body, headers={"cache-control": "no-store"})

    async def act(request: Request) -> Response:
        why = refusal(allowed, request.headers, request.url.scheme, names)
        if why is not None:
            return JSONResponse({"error": why}, status_code=403)
        try:
            asked = json.loads(await request.body())
        except ValueError:  # not JSON, or not UTF-8
            return JSONResponse({"error": "action: the request is not JSON"}, status_code=400)
        try:
            change = actions.parse(asked)
        except ShoalError as err:
            return JSONResponse({"error": err.message}, status_code=400)
        peer = request.client.host if request.client else "?"
        try:
            message = await actions.perform(client(), change, feed.values(kv.PODS.name))
        except ShoalError as err:
            log.info("dashboard: %s (from %s) refused: %s", change.describe(), peer, err.message)
            return JSONResponse({"error": err.message}, status_code=409)
        except TimeoutError:
            return JSONResponse({"error": "the cluster did not answer in time"}, status_code=504)
        log.info("dashboard: %s (from %s)", change.describe(), peer)
        return JSONResponse({"message": message})

    async def logs(request: Request) -> Response:
        namespace = request.path_params["namespace"]
        name = request.path_params["name"]
        container = request.query_params.get("container", "")

        async def body() -> AsyncIterator[str]:
            # aclosing: a browser that leaves ends the node's stream at once, not when collected.
            chunks = client().logs(namespace, name, container=container, follow=True, tail=LOG_TAIL)
            try:
                async with contextlib.aclosing(chunks):
                    async for chunk in chunks:
                        yield sse("chunk", json.dumps(chunk.decode(errors="replace")))
                yield sse("end", json.dumps("the log ended"))
            except ShoalError as err:
                yield sse("end", json.dumps(err.message))
            except TimeoutError:
                yield sse("end", json.dumps(f"the node of pod {name} did not answer"))

        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/snapshot", snapshot),
            Route("/api/stream", stream),
            Route("/api/objects/{kind}/{namespace}/{name}", one),
            Route("/api/logs/{namespace}/{name}", logs),
            Route("/api/session", session),
            Route("/api/actions", act, methods=["POST"]),
            Route("/healthz", healthz),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    return SecurityHeaders(app)
