"""Commands that change desired state: apply, delete, scale."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from shoal.cli import complete
from shoal.cli.common import NameAfterKindArgument, NamespaceOption, ServerOption, with_client
from shoal.cli.output import console, errors
from shoal.errors import InvalidManifest
from shoal.kinds import registry
from shoal.label_selectors import parse_selector
from shoal.manifests.files import read_manifests
from shoal.models.api import ApplyReply, ManifestDocument, ObjectRef

FilenameOption = Annotated[
    list[Path] | None, typer.Option("--filename", "-f", help="Manifest file or folder (repeatable).")
]


def qualified_kind(kind: str) -> str:
    info = registry().by_kind(kind)
    return info.qualified if info else kind.lower()


def _plural(kind: str) -> str:
    info = registry().by_kind(kind)
    return info.qualified_plural if info else kind.lower() + "s"


def _report(reply: ApplyReply, *, suffix: str = "") -> int:
    for warning in reply.warnings:
        errors.print(f"[yellow]Warning:[/] {escape(warning)}")
    missing = 0
    for result in reply.results:
        if result.action == "not found":
            missing += 1
            where = f" in namespace {result.namespace}" if result.namespace else ""
            errors.print(f'[red]error:[/] {_plural(result.kind)} "{escape(result.name)}" not found{where}')
            continue
        console.print(f"{qualified_kind(result.kind)}/{result.name} {result.action}{suffix}")
    return missing


def apply(
    filename: FilenameOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show what would change; store nothing.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="The files are the whole of the set -l selects: delete its objects they do not name.",
        ),
    ] = False,
    selector: Annotated[
        str | None,
        typer.Option(
            "--selector",
            "-l",
            help="Apply only the files' objects with these labels (and with --prune, the set it keeps).",
        ),
    ] = None,
    server: ServerOption = None,
) -> None:
    """Create or update the objects of manifest files (all or nothing per apply)."""
    if not filename:
        raise InvalidManifest(["apply needs at least one -f FILE or folder"])
    if prune and not selector:
        raise InvalidManifest(["apply --prune needs -l SELECTOR: the labelled set the files are all of"])
    chosen = parse_selector(selector)  # a bad selector is said before anything is read or sent
    documents = read_manifests(filename)
    if chosen:
        documents = [d for d in documents if chosen.matches(labels_of(d))]
        if not documents:
            raise InvalidManifest([f"no object of the files has the labels {selector}: nothing to apply"])
    wanted = selector if prune else None
    reply = with_client(server, lambda client: client.apply(documents, dry_run=dry_run, prune=wanted))
    _report(reply, suffix=" (dry run)" if dry_run else "")


def delete(
    kind: Annotated[
        str | None,
        typer.Argument(
            help="A kind (deployment, pod, configmap, ns...) or KIND/NAME",
            autocompletion=complete.kind_or_object,
        ),
    ] = None,
    names: Annotated[
        list[str] | None, typer.Argument(help="Names of the objects.", autocompletion=complete.object_names)
    ] = None,
    filename: FilenameOption = None,
    namespace: NamespaceOption = "default",
    ignore_not_found: Annotated[bool, typer.Option("--ignore-not-found")] = False,
    server: ServerOption = None,
) -> None:
    """Delete objects by kind and name, or those a manifest file describes (a namespace with all in it)."""
    refs: list[ObjectRef] = []
    documents = read_manifests(filename) if filename else []
    if kind is not None:
        kind_name, _, slash_name = kind.partition("/")
        resolved = registry().resolve(kind_name)
        if resolved is None or resolved.handling not in ("acted", "stored"):
            raise InvalidManifest(
                [f"cannot delete {kind_name!r}: not a kind Shoal stores (shoal api-resources lists them)"]
            )
        wanted = ([slash_name] if slash_name else []) + (names or [])
        if not wanted:
            raise InvalidManifest([f"delete {kind_name} needs a name"])
        scope = namespace if resolved.namespaced else ""
        refs = [ObjectRef(kind=resolved.kind, namespace=scope, name=n) for n in wanted]
    if not refs and not documents:
        raise InvalidManifest(["delete needs KIND NAME or -f FILE"])
    reply = with_client(server, lambda client: client.delete(refs=refs, documents=documents))
    if ignore_not_found:
        reply.results = [r for r in reply.results if r.action != "not found"]
    if _report(reply):
        raise typer.Exit(1)


create_app = typer.Typer(help="Create an object from the command line.", no_args_is_help=True)


@create_app.command("namespace")
def create_namespace(
    name: Annotated[str, typer.Argument(help="The namespace's name.")],
    server: ServerOption = None,
) -> None:
    """Create a namespace (as ``kubectl create namespace``)."""
    document = ManifestDocument(
        source="create namespace",
        index=1,
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    reply = with_client(server, lambda client: client.apply([document]))
    if any(r.action == "unchanged" for r in reply.results):
        raise InvalidManifest([f'namespaces "{name}" already exists'])
    _report(reply)


def scale(
    target: Annotated[
        str,
        typer.Argument(
            help="deployment/NAME or statefulset/NAME, or just the kind",
            autocompletion=complete.kind_or_object,
        ),
    ],
    name: NameAfterKindArgument = None,
    replicas: Annotated[int, typer.Option("--replicas", min=0, help="The new number of replicas.")] = ...,  # type: ignore[assignment]
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Set the number of replicas of a deployment or a stateful set."""
    kind, _, slash_name = target.partition("/")
    resolved = registry().resolve(kind)
    if resolved is None or resolved.kind not in ("Deployment", "StatefulSet"):
        raise InvalidManifest([f"cannot scale {kind!r}: Shoal scales deployments and stateful sets"])
    target_name = slash_name or name
    if not target_name:
        raise InvalidManifest([f"scale needs the {resolved.singular}'s name"])
    scaled_kind: Literal["Deployment", "StatefulSet"] = (
        "StatefulSet" if resolved.kind == "StatefulSet" else "Deployment"
    )
    reply = with_client(server, lambda client: client.scale(namespace, target_name, replicas, scaled_kind))
    for result in reply.results:
        console.print(f"{resolved.qualified}/{result.name} {result.action}")


def labels_of(document: ManifestDocument) -> dict[str, str]:
    """A manifest's metadata.labels as a selector reads them (what is not a string map: none;
    the API says what is wrong with it if it is applied)."""
    metadata = document.body.get("metadata") if isinstance(document.body, dict) else None
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}
