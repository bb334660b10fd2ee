"""Validating manifests: every problem named by document and field path, unsupported fields warned.

Validation is all or nothing: ``validate_documents`` returns objects only when every
document is valid, so an apply never stores part of a file.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from shoal.errors import InvalidManifest
from shoal.models.api import ManifestDocument
from shoal.models.autoscaling import HorizontalPodAutoscaler
from shoal.models.scheduling import PriorityClass
from shoal.models.service import Service
from shoal.models.workloads import Container, Deployment

SUPPORTED_KINDS: dict[str, tuple[str, type[BaseModel]]] = {
    "Deployment": ("apps/v1", Deployment),
    "PriorityClass": ("scheduling.k8s.io/v1", PriorityClass),
    "Service": ("v1", Service),
    "HorizontalPodAutoscaler": ("autoscaling/v2", HorizontalPodAutoscaler),
}
"""kind -> (apiVersion, model). More kinds join as Shoal learns them."""

IGNORED_QUIETLY = {("status",)}
"""Fields that exported manifests carry and that apply rightly ignores."""


@dataclass(frozen=True)
class ValidObject:
    kind: str
    namespace: str
    name: str
    model: BaseModel
    where: str


def describe(document: ManifestDocument) -> str:
    """``app.yaml, document 2 (Deployment "web")``: how messages name a document."""
    body = document.body
    label = f"{document.source}, document {document.index}"
    if isinstance(body, dict):
        kind = body.get("kind")
        metadata = body.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(kind, str) and isinstance(name, str):
            return f'{label} ({kind} "{name}")'
        if isinstance(kind, str):
            return f"{label} ({kind})"
    return label


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            continue
        elif path and (" " in part or "/" in part or "." in part):
            path += f"[{part!r}]"
        else:
            path += f".{part}" if path else part
    return path or "(document)"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def explain(error: dict[str, Any]) -> str:
    """One pydantic error in words a manifest author can act on."""
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')} (got {_shown(given)})"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')} (got {_shown(given)})"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "value_error":
        message = str(error["msg"])
        return message.removeprefix("Value error, ")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be an integer (got {_shown(given)})"
    if kind in ("string_type",):
        return f"must be a string (got {_shown(given)})"
    if kind in ("list_type",):
        return f"must be a list (got {_shown(given)})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping (got {_shown(given)})"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false (got {_shown(given)})"
    return f"{str(error['msg']).rstrip('.')} (got {_shown(given)})"


def _unwrap(annotation: Any) -> Any:
    """The model class inside ``X | None``, ``list[X]``, ``Annotated[X, ...]``; else the type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        candidates = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(candidates[0]) if len(candidates) == 1 else annotation
    return annotation


def unsupported_fields(body: Any, model: type[BaseModel], path: tuple[int | str, ...] = ()) -> list[str]:
    """Field paths present in ``body`` that ``model`` does not know."""
    if not isinstance(body, dict):
        return []
    by_alias = {(field.alias or name): field for name, field in model.model_fields.items()}
    found = []
    for key, value in body.items():
        field = by_alias.get(key) or model.model_fields.get(key)
        here = (*path, str(key))
        if field is None:
            if here not in IGNORED_QUIETLY:
                found.append(field_path(here))
            continue
        annotation = field.annotation
        target = _unwrap(annotation)
        if typing.get_origin(target) is list:
            item = _unwrap(typing.get_args(target)[0])
            if isinstance(item, type) and issubclass(item, BaseModel) and isinstance(value, list):
                for index, element in enumerate(value):
                    found += unsupported_fields(element, item, (*here, index))
        elif isinstance(target, type) and issubclass(target, BaseModel):
            found += unsupported_fields(value, target, here)
    return found


def _probe_problems(container: Container, path: str) -> list[tuple[str, str]]:
    problems = []
    port_names = {p.name for p in container.ports if p.name}
    for field in ("liveness_probe", "readiness_probe", "startup_probe"):
        probe = getattr(container, field)
        if probe is None:
            continue
        where = f"{path}.{to_camel(field)}"
        if field != "readiness_probe" and probe.success_threshold != 1:
            problems.append((f"{where}.successThreshold", "must be 1 for liveness and startup probes"))
        action = probe.http_get or probe.tcp_socket
        if action is not None and isinstance(action.port, str) and action.port not in port_names:
            kind = "httpGet" if probe.http_get else "tcpSocket"
            problems.append((f"{where}.{kind}.port", f"no port of this container is named {action.port!r}"))
    return problems


def _semantic_problems(obj: BaseModel) -> list[tuple[str, str]]:
    """Rules that span fields, with the path to blame."""
    problems = []
    if isinstance(obj, Service):
        names = [port.name for port in obj.spec.ports]
        if len(names) > 1 and (None in names or len(set(names)) != len(names)):
            problems.append(("spec.ports", "a service with several ports must name each, uniquely"))
        node_ports = [port.node_port for port in obj.spec.ports if port.node_port]
        if len(set(node_ports)) != len(node_ports):
            problems.append(("spec.ports", "nodePort used twice"))
    if isinstance(obj, Deployment):
        for index, container in enumerate(obj.spec.template.spec.containers):
            problems += _probe_problems(container, f"spec.template.spec.containers[{index}]")
        selector = obj.spec.selector.match_labels
        labels = obj.spec.template.metadata.labels
        if any(labels.get(key) != value for key, value in selector.items()):
            problems.append(
                (
                    "spec.template.metadata.labels",
                    f"must include every label of spec.selector.matchLabels {selector} (has {labels})",
                )
            )
    return problems


def validate_documents(documents: list[ManifestDocument]) -> tuple[list[ValidObject], list[str]]:
    """Valid objects and warnings, or InvalidManifest listing every problem."""
    problems: list[str] = []
    warnings: list[str] = []
    objects: list[ValidObject] = []
    supported = ", ".join(f"{kind} ({api})" for kind, (api, _) in SUPPORTED_KINDS.items())
    for document in documents:
        where = describe(document)
        body = document.body
        if not isinstance(body, dict):
            problems.append(
                f"{where}: a manifest must be a mapping with apiVersion, kind, metadata and spec"
                f" (got {type(body).__name__}: {_shown(body)})"
            )
            continue
        kind = body.get("kind")
        if not isinstance(kind, str) or not kind:
            problems.append(f"{where}: kind: is required (Shoal supports {supported})")
            continue
        if kind not in SUPPORTED_KINDS:
            problems.append(f"{where}: kind: unknown kind {kind!r} (Shoal supports {supported})")
            continue
        api_version, model = SUPPORTED_KINDS[kind]
        if body.get("apiVersion") != api_version:
            problems.append(
                f"{where}: apiVersion: {kind} needs {api_version!r} (got {_shown(body.get('apiVersion'))})"
            )
            continue
        try:
            obj = model.model_validate(body)
        except ValidationError as err:
            for error in err.errors():
                problems.append(f"{where}: {field_path(error['loc'])}: {explain(error)}")
            continue
        semantic = _semantic_problems(obj)
        for path, problem in semantic:
            problems.append(f"{where}: {path}: {problem}")
        if semantic:
            continue
        for path in unsupported_fields(body, model):
            warnings.append(f"{where}: {path}: not supported by Shoal yet; ignored")
        metadata = obj.metadata  # type: ignore[attr-defined]
        objects.append(ValidObject(kind, getattr(metadata, "namespace", ""), metadata.name, obj, where))
    seen: dict[tuple[str, str, str], str] = {}
    for obj in objects:
        key = (obj.kind, obj.namespace, obj.name)
        if key in seen:
            problems.append(
                f"{obj.where}: metadata.name: {obj.kind} {obj.namespace}/{obj.name}"
                f" is also defined in {seen[key]}"
            )
        seen[key] = obj.where
    if problems:
        raise InvalidManifest(problems)
    return objects, warnings
