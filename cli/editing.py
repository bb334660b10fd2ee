"""Commands that change one live object in place, as kubectl's do: patch, label, annotate and
edit; and diff, which shows what applying files would change.

Each reads the object as stored, changes its authored form (``manifests/patching.py``) and
applies the result through the API like any manifest: the API validates it, refuses it
whole, or stores it. Nodes are not applied from manifests: their labels go through the API's
node updates, as ``shoal label node`` always has.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from shoal.cli.change import FilenameOption, qualified_kind
from shoal.cli.common import (
    KindNameArgument,
    NameAfterKindArgument,
    NamespaceOption,
    ServerOption,
    with_client,
)
from shoal.cli.inspect import resolve_kind
from shoal.cli.output import console
from shoal.errors import InvalidManifest, NotFound
from shoal.kinds import Kind
from shoal.manifests import patching
from shoal.models.api import ApplyReply, ManifestDocument

if TYPE_CHECKING:
    from shoal.client import ShoalClient

DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Validate and show the result; store nothing.")]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Change keys that already have another value.")
]

NODE_KINDS = ("node", "nodes", "no")


def target_of(kind: str, rest: list[str]) -> tuple[Kind, str, list[str]]:
    """``KIND NAME ARGS...`` or ``KIND/NAME ARGS...``: the kind, the name and what follows."""
    kind_name, _, slash_name = kind.partition("/")
    if slash_name:
        name, args = slash_name, rest
    elif rest:
        name, args = rest[0], rest[1:]
    else:
        raise InvalidManifest([f"{kind}: which one? give KIND NAME or KIND/NAME"])
    info = resolve_kind(kind_name)
    if info.handling == "observed" and info.kind != "Node":
        raise InvalidManifest([f"{info.plural} are kept by Shoal itself: {info.note}"])
    return info, name, args


async def live_form(client: ShoalClient, info: Kind, namespace: str, name: str) -> dict[str, Any]:
    """The object's authored form as stored, or NotFound as kubectl says it."""
    model = await client.stored(info, namespace, name)
    if model is None:
        where = f" in namespace {namespace}" if info.namespaced else ""
        raise NotFound(f'{info.qualified_plural} "{name}" not found{where}')
    owner = getattr(getattr(model, "metadata", None), "owner", None)
    if info.kind == "Pod" and owner is not None:
        raise InvalidManifest(
            [
                f"pod {name} is made by {owner.kind} {owner.name} from its template:"
                f" change the {owner.kind.lower()} instead"
            ]
        )
    return patching.authored(model, info.api_version, info.kind)


def _apply_changed(
    server: str | None,
    info: Kind,
    namespace: str,
    name: str,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    dry_run: bool,
) -> ApplyReply:
    """Read the object, change it, apply it (all on one connection)."""

    async def run(client: ShoalClient) -> ApplyReply:
        changed = change(await live_form(client, info, namespace, name))
        document = ManifestDocument(source=f"{info.singular}/{name}", index=1, body=changed)
        return await client.apply([document], dry_run=dry_run)

    return with_client(server, run)


def _report(reply: ApplyReply, verb: str, *, dry_run: bool) -> None:
    for result in reply.results:
        unchanged = " (no change)" if result.action == "unchanged" else ""
        console.print(
            f"{qualified_kind(result.kind)}/{result.name} {verb}{unchanged}{' (dry run)' if dry_run else ''}"
        )


def patch(
    kind: KindNameArgument,
    name: NameAfterKindArgument = None,
    patch_text: Annotated[
        str,
        typer.Option("--patch", "-p", help="The patch, as JSON or YAML."),
    ] = ...,  # type: ignore[assignment]
    patch_type: Annotated[
        str, typer.Option("--type", help="strategic (read as merge), merge (RFC 7386) or json (RFC 6902).")
    ] = "strategic",
    namespace: NamespaceOption = "default",
    dry_run: DryRunOption = False,
    server: ServerOption = None,
) -> None:
    """Change fields of an object with a merge patch or a JSON patch."""
    info, target, extra = target_of(kind, [name] if name else [])
    if extra or info.kind == "Node":
        raise InvalidManifest(
            ["patch takes one object" if extra else "nodes are changed with label, taint and cordon"]
        )
    parsed = patching.parse_patch(patch_text, patch_type)
    reply = _apply_changed(
        server,
        info,
        namespace,
        target,
        lambda obj: patching.apply_patch(obj, parsed, patch_type),
        dry_run=dry_run,
    )
    _report(reply, "patched", dry_run=dry_run)


def _metadata_command(field: str, verb: str) -> Callable[..., None]:
    def command(
        kind: KindNameArgument,
        rest: Annotated[
            list[str], typer.Argument(help="NAME (unless KIND/NAME), then key=value to set, key- to remove")
        ],
        overwrite: OverwriteOption = False,
        namespace: NamespaceOption = "default",
        dry_run: DryRunOption = False,
        server: ServerOption = None,
    ) -> None:
        info, name, args = target_of(kind, rest)
        changes = patching.parse_changes(args, field[:-1])
        if info.kind == "Node":
            _node_metadata(server, name, field, changes, overwrite=overwrite)
            return
        reply = _apply_changed(
            server,
            info,
            namespace,
            name,
            lambda obj: patching.change_metadata(obj, field, changes, overwrite=overwrite),
            dry_run=dry_run,
        )
        _report(reply, verb, dry_run=dry_run)

    command.__doc__ = f"Set or remove {field} of any object (kubectl syntax: key=value, key-)."
    return command


def _node_metadata(
    server: str | None, node: str, field: str, changes: dict[str, str | None], *, overwrite: bool
) -> None:
    if field != "labels":
        raise InvalidManifest(["nodes carry labels and taints, not annotations, in Shoal"])

    async def run(client: ShoalClient) -> None:
        nodes = await client.nodes()
        if node not in nodes:
            raise NotFound(f'nodes "{node}" not found')
        from shoal.cli.listing import node_labels

        current = node_labels(nodes[node], await client.node_specs())
        patching.change_metadata(
            {"metadata": {"name": node, "labels": current}}, field, changes, overwrite=overwrite
        )
        await client.update_node(node, labels=changes)

    with_client(server, run)
    console.print(f"node/{node} labeled")


label = _metadata_command("labels", "labeled")
annotate = _metadata_command("annotations", "annotated")


EDIT_HEADER = """\
# Edit the object below; lines starting with '#' are ignored. Save and quit to apply it;
# an empty file, or quitting without a change, changes nothing.
"""


def edit(
    kind: KindNameArgument,
    name: NameAfterKindArgument = None,
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Open an object in $KUBE_EDITOR or $EDITOR (else vi), and apply what is saved."""
    info, target, extra = target_of(kind, [name] if name else [])
    if extra or info.kind == "Node":
        raise InvalidManifest(
            ["edit takes one object" if extra else "nodes are changed with label, taint and cordon"]
        )
    live = with_client(server, lambda client: live_form(client, info, namespace, target))
    original = yaml.safe_dump(live, sort_keys=False)
    with tempfile.NamedTemporaryFile(
        "w", prefix=f"shoal-edit-{target}-", suffix=".yaml", delete=False
    ) as file:
        file.write(EDIT_HEADER + original)
        path = Path(file.name)
    editor = os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi"
    finished = subprocess.run([*shlex.split(editor), str(path)], check=False)
    if finished.returncode != 0:
        raise InvalidManifest(
            [f"the editor {editor!r} exited with {finished.returncode}; nothing was changed (kept: {path})"]
        )
    text = path.read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    if not body.strip():
        path.unlink()
        console.print("Edit cancelled, saved file was empty.")
        return
    if yaml.safe_load(body) == live:
        path.unlink()
        console.print("Edit cancelled, no changes made.")
        return
    from shoal.manifests.files import parse_documents

    try:
        documents = parse_documents(text, str(path))
        if len(documents) != 1:
            raise InvalidManifest([f"{path}: edit takes back one object, not {len(documents)}"])
        reply = with_client(server, lambda client: client.apply(documents))
    except Exception as err:
        if hasattr(err, "warnings"):
            err.warnings.append(f"your changes are kept in {path}")  # type: ignore[attr-defined]
        raise
    path.unlink()
    _report(reply, "edited", dry_run=False)


def diff(filename: FilenameOption = None, server: ServerOption = None) -> None:
    """Show what applying manifest files would change, as a unified diff (exit 1 if anything would)."""
    if not filename:
        raise InvalidManifest(["diff needs at least one -f FILE or folder"])
    from shoal.manifests.files import read_manifests
    from shoal.manifests.validate import validate_documents

    objects, _ = validate_documents(read_manifests(filename))

    async def live(client: ShoalClient) -> list[dict[str, Any] | None]:
        found = []
        for obj in objects:
            model = await client.stored(obj.info, obj.namespace, obj.name)
            found.append(patching.authored(model, obj.info.api_version, obj.info.kind) if model else None)
        return found

    lives = with_client(server, live)
    shown = []
    for obj, before in zip(objects, lives, strict=True):
        wanted = patching.with_server_defaults(
            patching.authored(obj.model, obj.info.api_version, obj.info.kind), before
        )
        before, wanted = patching.masked_secrets(before, wanted)
        where = f"{obj.namespace}." if obj.info.namespaced else ""
        shown.append(
            patching.unified_diff(
                before, wanted, f"{obj.info.api_version.replace('/', '.')}.{obj.info.kind}.{where}{obj.name}"
            )
        )
    text = "".join(shown)
    sys.stdout.write(text)
    if text:
        raise typer.Exit(1)
