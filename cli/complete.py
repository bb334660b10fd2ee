"""What the shell completes after a command: kinds, then the names of that kind's objects in
the cluster (``shoal get pods <TAB>``, ``shoal logs deploy/<TAB>``), as kubectl's completion
does. A completion never prints an error: a cluster that does not answer within a second
completes nothing."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from shoal.kinds import Kind, Registry


def registry() -> Registry:
    """The kinds' registry, imported when a completion is asked for: every command declares
    its completions, few are ever asked, and the registry imports every model."""
    from shoal.kinds import registry as kinds_registry

    return kinds_registry()


ASK_SECONDS = 1.0
"""At most this long a completion waits for the cluster (the shell waits with it)."""


def _names_of(kind: Kind, namespace: str, server: str | None) -> list[str]:
    from shoal.cli.context import resolve_access, resolve_server
    from shoal.cli.listing import Scope, lister_of
    from shoal.client import ShoalClient
    from shoal.label_selectors import Selector

    async def ask() -> list[str]:
        client = await ShoalClient.connect(
            resolve_server(server), timeout=ASK_SECONDS, access=resolve_access()
        )
        try:
            scope = Scope(
                kind, None, namespace if kind.namespaced else "", False, Selector(), "", time.time()
            )
            lister = lister_of(kind)
            _, rows, _ = lister.show(await lister.gather(client, scope), scope)
            return [row[0] for row in rows]
        finally:
            await client.close()

    async def bounded() -> list[str]:
        return await asyncio.wait_for(ask(), ASK_SECONDS * 2)

    try:
        return asyncio.run(bounded())
    except Exception:
        return []


def _params(ctx: typer.Context) -> dict[str, Any]:
    return ctx.params or {}


def kinds(incomplete: str) -> list[str]:
    """A kind's names: ``po`` completes to ``pods``; ``deploy/`` goes on to names of it."""
    names = {k.plural for k in registry().kinds if k.handling != "ignored"}
    names |= {short for k in registry().kinds if k.handling != "ignored" for short in k.short_names}
    return sorted(n for n in names if n.startswith(incomplete))


def kind_or_object(ctx: typer.Context, incomplete: str) -> list[str]:
    """A kind, or with ``KIND/`` typed, the names of that kind's objects as ``KIND/NAME``."""
    kind_name, slash, partial = incomplete.partition("/")
    if not slash:
        return kinds(incomplete)
    kind = registry().resolve(kind_name)
    if kind is None:
        return []
    params = _params(ctx)
    names = _names_of(kind, params.get("namespace") or "default", params.get("server"))
    return [f"{kind_name}/{n}" for n in names if n.startswith(partial)]


def object_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Names of the objects of the kind the command's first argument gave."""
    params = _params(ctx)
    kind = registry().resolve(str(params.get("kind") or params.get("target") or "").partition("/")[0])
    if kind is None:
        return []
    names = _names_of(kind, params.get("namespace") or "default", params.get("server"))
    return [n for n in names if n.startswith(incomplete)]


def pods(ctx: typer.Context, incomplete: str) -> list[str]:
    """Pod names (or, with ``KIND/`` typed, what made them: ``deploy/web``)."""
    if "/" in incomplete:
        return kind_or_object(ctx, incomplete)
    params = _params(ctx)
    pod = registry().resolve("pods")
    assert pod is not None
    names = _names_of(pod, params.get("namespace") or "default", params.get("server"))
    return [n for n in names if n.startswith(incomplete)]


def nodes(ctx: typer.Context, incomplete: str) -> list[str]:
    node = registry().resolve("nodes")
    assert node is not None
    names = _names_of(node, "", _params(ctx).get("server"))
    return [n for n in names if n.startswith(incomplete)]
