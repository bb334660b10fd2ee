"""Commands that change desired state: apply, delete, scale."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shoal.cli.common import NamespaceOption, ServerOption, with_client
from shoal.cli.output import console, errors
from shoal.errors import InvalidManifest
from shoal.manifests.files import read_manifests
from shoal.models.api import ApplyReply, ObjectRef

FilenameOption = Annotated[
    list[Path] | None, typer.Option("--filename", "-f", help="Manifest file or folder (repeatable).")
]

_KINDS = {
    "deployment": "Deployment",
    "deployments": "Deployment",
    "deploy": "Deployment",
    "priorityclass": "PriorityClass",
    "priorityclasses": "PriorityClass",
    "pc": "PriorityClass",
    "service": "Service",
    "services": "Service",
    "svc": "Service",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "hpa": "HorizontalPodAutoscaler",
}


_GROUPS = {
    "Deployment": "apps",
    "PriorityClass": "scheduling.k8s.io",
    "HorizontalPodAutoscaler": "autoscaling",
}


def qualified_kind(kind: str) -> str:
    group = _GROUPS.get(kind)
    return f"{kind.lower()}.{group}" if group else kind.lower()


def _plural(kind: str) -> str:
    group = _GROUPS.get(kind)
    return f"{kind.lower()}s.{group}" if group else kind.lower() + "s"


def _report(reply: ApplyReply, *, suffix: str = "") -> int:
    for warning in reply.warnings:
        errors.print(f"[yellow]Warning:[/] {escape(warning)}")
    missing = 0
    for result in reply.results:
        if result.action == "not found":
            missing += 1
            where = f" in namespace {result.namespace}" if result.namespace else ""
            errors.print(f'Error: {_plural(result.kind)} "{escape(result.name)}" not found{where}')
            continue
        console.print(f"{qualified_kind(result.kind)}/{result.name} {result.action}{suffix}")
    return missing


def apply(
    filename: FilenameOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show what would change; store nothing.")
    ] = False,
    server: ServerOption = None,
) -> None:
    """Create or update the objects of manifest files (all or nothing per apply)."""
    if not filename:
        raise InvalidManifest(["apply needs at least one -f FILE or folder"])
    documents = read_manifests(filename)
    reply = with_client(server, lambda client: client.apply(documents, dry_run=dry_run))
    _report(reply, suffix=" (dry run)" if dry_run else "")


def delete(
    kind: Annotated[str | None, typer.Argument(help="deployment, service, hpa, priorityclass")] = None,
    names: Annotated[list[str] | None, typer.Argument(help="Names of the objects.")] = None,
    filename: FilenameOption = None,
    namespace: NamespaceOption = "default",
    ignore_not_found: Annotated[bool, typer.Option("--ignore-not-found")] = False,
    server: ServerOption = None,
) -> None:
    """Delete objects by kind and name, or those a manifest file describes."""
    refs: list[ObjectRef] = []
    documents = read_manifests(filename) if filename else []
    if kind is not None:
        kind_name, _, slash_name = kind.partition("/")
        resolved = _KINDS.get(kind_name.lower())
        if resolved is None:
            raise InvalidManifest(
                [
                    f"cannot delete {kind_name!r}: Shoal deletes deployments, services,"
                    " horizontalpodautoscalers and priorityclasses"
                ]
            )
        wanted = ([slash_name] if slash_name else []) + (names or [])
        if not wanted:
            raise InvalidManifest([f"delete {kind_name} needs a name"])
        scope = "" if resolved == "PriorityClass" else namespace
        refs = [ObjectRef(kind=resolved, namespace=scope, name=n) for n in wanted]
    if not refs and not documents:
        raise InvalidManifest(["delete needs KIND NAME or -f FILE"])
    reply = with_client(server, lambda client: client.delete(refs=refs, documents=documents))
    if ignore_not_found:
        reply.results = [r for r in reply.results if r.action != "not found"]
    if _report(reply):
        raise typer.Exit(1)


def scale(
    target: Annotated[str, typer.Argument(help="deployment/NAME, or deployment")],
    name: Annotated[str | None, typer.Argument(help="NAME, when the first argument is just the kind")] = None,
    replicas: Annotated[int, typer.Option("--replicas", min=0, help="The new number of replicas.")] = ...,  # type: ignore[assignment]
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Set the number of replicas of a deployment."""
    kind, _, slash_name = target.partition("/")
    if _KINDS.get(kind.lower()) != "Deployment":
        raise InvalidManifest([f"cannot scale {kind!r}: Shoal scales deployments"])
    target_name = slash_name or name
    if not target_name:
        raise InvalidManifest(["scale needs the deployment's name"])
    reply = with_client(server, lambda client: client.scale(namespace, target_name, replicas))
    for result in reply.results:
        console.print(f"deployment.apps/{result.name} {result.action}")
