"""What ``shoal get`` does to a listing once it is read: ``--field-selector``, ``--sort-by`` and
``--show-labels``, as kubectl does them, over the rows and the Kubernetes-shaped objects
they were made from (one object per row)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal.cli.templates import values_at
from shoal.errors import InvalidManifest


@dataclass(frozen=True)
class FieldRequirement:
    path: tuple[str, ...]
    value: str
    equal: bool


def parse_field_selector(text: str | None) -> list[FieldRequirement]:
    """``status.phase=Running,spec.nodeName!=a``: ``=``, ``==`` and ``!=`` on dotted paths."""
    if not text:
        return []
    found = []
    for part in text.split(","):
        if "!=" in part:
            path, _, value = part.partition("!=")
            equal = False
        elif "=" in part:
            path, _, value = part.partition("==") if "==" in part else part.partition("=")
            equal = True
        else:
            raise InvalidManifest([f"--field-selector {part!r}: use FIELD=VALUE or FIELD!=VALUE"])
        fields = tuple(p for p in path.strip().split(".") if p)
        if not fields:
            raise InvalidManifest([f"--field-selector {part!r}: the field is empty"])
        found.append(FieldRequirement(fields, value.strip(), equal))
    return found


def field_value(obj: Any, path: tuple[str, ...]) -> str:
    """The field as kubectl compares it: a string, empty when the object has no such field."""
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    if obj is None or isinstance(obj, (dict, list)):
        return ""
    if isinstance(obj, bool):
        return "true" if obj else "false"
    return str(obj)


def fields_match(obj: dict[str, Any], wanted: list[FieldRequirement]) -> bool:
    return all((field_value(obj, r.path) == r.value) == r.equal for r in wanted)


def _sort_key(value: Any) -> tuple[int, Any]:
    """Missing first, then numbers by value, then everything else as text."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


def refined(
    rows: list[list[str]],
    objects: list[dict[str, Any]],
    *,
    field_selector: str | None,
    sort_by: str | None,
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """The rows and objects that match the field selector, ordered by ``sort_by`` (a JSONPath
    such as ``.metadata.creationTimestamp``; kubectl's order otherwise)."""
    wanted = parse_field_selector(field_selector)
    pairs = [(row, obj) for row, obj in zip(rows, objects, strict=True) if fields_match(obj, wanted)]
    if sort_by:
        pairs.sort(key=lambda pair: _sort_key(next(iter(values_at(sort_by, pair[1], "--sort-by")), None)))
    return [row for row, _ in pairs], [obj for _, obj in pairs]


def labels_cell(obj: dict[str, Any]) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "<none>"
