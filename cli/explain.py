"""``shoal explain KIND[.FIELD...]``: the fields Shoal reads of a kind, with their types and
documentation, as ``kubectl explain`` prints them (``manifests/explain.py``)."""

from __future__ import annotations

from typing import Annotated

import typer

from shoal.cli.inspect import resolve_kind
from shoal.cli.output import console
from shoal.errors import InvalidManifest


def explain(
    target: Annotated[str, typer.Argument(help="A kind, or a field of one: deployment.spec.strategy")],
) -> None:
    """What a kind's fields are, as Shoal reads them."""
    from shoal.manifests.explain import explain as explained

    kind, *path = target.split(".")
    info = resolve_kind(kind)
    if info.model is None:
        raise InvalidManifest([f"{info.plural}: {info.note or 'Shoal has no model of this kind'}"])
    found = explained(info.model, info.kind, path)
    lines = [f"KIND:       {info.kind}", f"VERSION:    {info.api_version}", ""]
    if path:
        lines += [f"FIELD:      {path[-1]} <{found.type_name}>", ""]
    lines += ["DESCRIPTION:", *(f"    {line}" for line in (found.doc or "<empty>").splitlines()), ""]
    if found.fields:
        lines.append("FIELDS:")
        for field in found.fields:
            lines.append(f"  {field.name}\t<{field.type_name}>")
            lines += [f"    {line}" for line in field.doc.splitlines()]
            lines.append("")
    console.print("\n".join(lines).rstrip(), markup=False, highlight=False)
