"""The web application: the pages, a snapshot, the live stream and one object's YAML.

| path | answer |
| --- | --- |
| ``/`` | the single page (``static/index.html``); the rest of the pages are routes after ``#`` |
| ``/static/...`` | its scripts and style |
| ``/api/snapshot`` | every table's views, the newest events, and ``seq`` (JSON) |
| ``/api/stream`` | server-sent events: ``snapshot`` once, then ``patch`` (a list of patches) |
| ``/api/objects/{kind}/{namespace}/{name}`` | ``{kind, namespace, name, yaml}`` (nodes: namespace ``_``) |
| ``/healthz`` | ``{synced, browsers}`` |

Everything is read-only: no route changes the cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoal.dashboard import detail
from shoal.dashboard.feed import Feed
from shoal.dashboard.hub import Hub

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


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


def make_app(feed: Feed, hub: Hub) -> ASGIApp:
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

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/snapshot", snapshot),
            Route("/api/stream", stream),
            Route("/api/objects/{kind}/{namespace}/{name}", one),
            Route("/healthz", healthz),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    return SecurityHeaders(app)
