"""Changing a live object as kubectl does: merge and JSON patches, labels and annotations, and
the difference between what is stored and what a file says.

Every function here is pure: from an object (the Kubernetes-shaped dict ``get -o yaml``
prints) and a change to the changed object, or to a problem naming what is wrong. The
commands in ``cli/editing.py`` read the live object, call these, and apply the result
through the API as any manifest is applied.
"""

from __future__ import annotations

import base64
import copy
import difflib
from typing import Any

import jsonpatch
import yaml
from pydantic import BaseModel

from shoal.errors import InvalidManifest
from shoal.manifests.validate import without_server_fields
from shoal.models.core import Secret, StoredObject
from shoal.models.pod import Pod

PATCH_TYPES = ("strategic", "merge", "json")
"""``--type`` of ``shoal patch``, as kubectl names them."""

SERVER_SET = ("schema", "revision")
"""Top-level fields of Shoal's records that no manifest sets (a deployment's rollout revision)."""

_IDENTITY = (("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace"))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, ``null`` removes a key, anything
    else (lists included) replaces what was there."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def parse_patch(text: str, patch_type: str) -> Any:
    """The patch a user typed (JSON or YAML), checked for the shape its type needs."""
    if patch_type not in PATCH_TYPES:
        raise InvalidManifest([f"--type: {patch_type!r} is not a patch type (use {', '.join(PATCH_TYPES)})"])
    try:
        patch = yaml.safe_load(text)  # JSON is YAML; kubectl takes both
    except yaml.YAMLError as err:
        problem = str(err).splitlines()[0]
        raise InvalidManifest([f"--patch: not JSON or YAML: {problem}"]) from None
    if patch_type == "json":
        if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
            raise InvalidManifest(
                ['--patch: a JSON patch is a list of operations ([{"op": ..., "path": ...}])']
            )
    elif not isinstance(patch, dict):
        raise InvalidManifest(
            [f"--patch: a {patch_type} patch is an object ({{...}}), not {type(patch).__name__}"]
        )
    return patch


def apply_patch(obj: dict[str, Any], patch: Any, patch_type: str) -> dict[str, Any]:
    """``obj`` with ``patch`` applied. A strategic merge patch is applied as a merge patch:
    lists are replaced whole (Shoal keeps no per-field merge keys)."""
    if patch_type == "json":
        try:
            patched = jsonpatch.JsonPatch(patch).apply(obj)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as err:
            raise InvalidManifest([f"--patch: {err}"]) from None
    else:
        patched = merge_patch(obj, patch)
    if not isinstance(patched, dict):
        raise InvalidManifest(["--patch: the patched object is no longer an object"])
    for path in _IDENTITY:
        if _at(patched, path) != _at(obj, path):
            raise InvalidManifest([f"--patch: may not change {'.'.join(path)} (it names the object)"])
    return patched


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def parse_changes(changes: list[str], what: str) -> dict[str, str | None]:
    """``key=value`` to set and ``key-`` to remove, as ``kubectl label|annotate`` take them."""
    parsed: dict[str, str | None] = {}
    for change in changes:
        if "=" not in change:
            if not change.endswith("-") or len(change) == 1:
                raise InvalidManifest([f"{what} {change!r}: use key=value to set or key- to remove"])
            parsed[change[:-1]] = None
        else:
            key, _, value = change.partition("=")
            if not key:
                raise InvalidManifest([f"{what} {change!r}: the key is empty"])
            parsed[key] = value
    if not parsed:
        raise InvalidManifest([f"at least one {what} to set (key=value) or remove (key-)"])
    return parsed


def change_metadata(
    obj: dict[str, Any], field: str, changes: dict[str, str | None], *, overwrite: bool
) -> dict[str, Any]:
    """``obj`` with its ``metadata.<field>`` (labels or annotations) changed. As kubectl, a key
    that already has another value is changed only with ``overwrite``."""
    metadata = dict(obj.get("metadata") or {})
    current = dict(metadata.get(field) or {})
    name = metadata.get("name", "")
    for key, value in changes.items():
        if value is None:
            current.pop(key, None)
        elif key in current and current[key] != value and not overwrite:
            raise InvalidManifest(
                [
                    f"{name}: {field[:-1]} {key!r} already has a value ({current[key]!r}),"
                    " and --overwrite is false"
                ]
            )
        else:
            current[key] = value
    metadata[field] = current
    return {**obj, "metadata": metadata}


def unified_diff(live: dict[str, Any] | None, wanted: dict[str, Any] | None, name: str) -> str:
    """``diff -u`` of two objects as YAML: ``live`` as stored (None: not there yet) against
    ``wanted`` (None: to be deleted). Empty when they are the same."""
    # Keys sorted, as kubectl prints objects: the same object always reads the same.
    before = yaml.safe_dump(live, sort_keys=True).splitlines(keepends=True) if live is not None else []
    after = yaml.safe_dump(wanted, sort_keys=True).splitlines(keepends=True) if wanted is not None else []
    return "".join(difflib.unified_diff(before, after, f"live/{name}", f"merged/{name}"))


def masked_secrets(live: dict[str, Any] | None, wanted: dict[str, Any] | None) -> tuple[Any, Any]:
    """Secrets' values replaced by ``***`` (``*** (before)``/``*** (after)`` where they differ),
    as ``kubectl diff`` shows them: a diff must not print what a Secret holds."""
    if not _is_secret(live) and not _is_secret(wanted):
        return live, wanted
    before = dict((live or {}).get("data") or {})
    after = dict((wanted or {}).get("data") or {})
    masked_before, masked_after = {}, {}
    for key in sorted(before.keys() | after.keys()):
        same = before.get(key) == after.get(key)
        if key in before:
            masked_before[key] = "***" if same else "*** (before)"
        if key in after:
            masked_after[key] = "***" if same else "*** (after)"
    return (
        {**live, "data": masked_before} if live is not None else None,
        {**wanted, "data": masked_after} if wanted is not None else None,
    )


def _is_secret(obj: dict[str, Any] | None) -> bool:
    return obj is not None and obj.get("kind") == "Secret"


def authored(model: BaseModel, api_version: str, kind: str) -> dict[str, Any]:
    """An object as its author would write it: what is stored of it, without what the server
    sets (uid, generation, timestamps, status), and without unset (null or empty) fields. The
    form ``edit`` opens, ``patch`` changes and ``diff`` compares; apply takes it back as is."""
    if isinstance(model, StoredObject):
        body = model.manifest()
    elif isinstance(model, Pod):
        # A pod record holds what the scheduler and nodes add; its manifest is metadata and spec.
        meta = model.metadata
        metadata = {"name": meta.name, "namespace": meta.namespace, "labels": meta.labels}
        body = {"metadata": {**metadata, "annotations": meta.annotations}, "spec": model.spec.dump()}
    else:
        body = model.dump()
        for field in SERVER_SET:
            body.pop(field, None)
    if isinstance(model, Secret):
        body["data"] = {key: base64.b64encode(value).decode() for key, value in model.data.items()}
        body.pop("stringData", None)
    body = without_server_fields(body)
    head = {"apiVersion": body.pop("apiVersion", api_version), "kind": body.pop("kind", kind)}
    return _tidy({**head, **body})


def with_server_defaults(wanted: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """``wanted`` as the API would store it over ``live``: what the API keeps or fills in when
    a manifest leaves it out (a scaled replica count, a service's cluster IP and node ports)
    taken from ``live``, so a diff shows only what applying would change."""
    if live is None:
        return wanted
    spec, live_spec = dict(wanted.get("spec") or {}), live.get("spec") or {}
    if (
        wanted.get("kind") in ("Deployment", "StatefulSet")
        and "replicas" not in spec
        and "replicas" in live_spec
    ):
        spec["replicas"] = live_spec["replicas"]
    if wanted.get("kind") == "Service":
        for field in ("clusterIP", "clusterIPs"):
            if field not in spec and field in live_spec:
                spec[field] = live_spec[field]
        live_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in live_spec.get("ports") or []}
        ports = []
        for port in spec.get("ports") or []:
            same = live_ports.get((port.get("port"), port.get("protocol", "TCP")), {})
            if "nodePort" not in port and "nodePort" in same:
                port = {**port, "nodePort": same["nodePort"]}
            ports.append(port)
        if ports:
            spec["ports"] = ports
    return {**wanted, "spec": spec} if spec else wanted


def _tidy(value: Any) -> Any:
    if isinstance(value, dict):
        tidied = {k: _tidy(v) for k, v in value.items()}
        return {k: v for k, v in tidied.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value
