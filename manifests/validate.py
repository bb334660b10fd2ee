"""Validating manifests: every problem named by document and field path, unsupported fields warned.

Validation is all or nothing: ``validate_documents`` returns objects only when every
document is valid, so an apply never stores part of a file.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from shoal.errors import InvalidManifest
from shoal.kinds import CUSTOM_NOTE, Kind, is_kubernetes_group, registry
from shoal.models.api import ManifestDocument
from shoal.models.batch import CronJob, Job
from shoal.models.core import DEFAULT_NAMESPACE, Namespace, StoredObject
from shoal.models.daemonset import DaemonSet
from shoal.models.service import Service
from shoal.models.statefulset import StatefulSet, claim_name
from shoal.models.workloads import Container, Deployment, PodTemplate
from shoal.policy.admission import ENFORCE_LABEL, level_problem

IGNORED_QUIETLY = {("status",), ("spec", "jobTemplate", "metadata", "name")}
"""Fields that exported manifests carry and that apply rightly ignores (``kubectl create cronjob``
names the job template; Kubernetes names each Job itself)."""


@dataclass(frozen=True)
class ValidObject:
    kind: str
    namespace: str
    name: str
    model: BaseModel
    where: str
    info: Kind

    @property
    def stored_only(self) -> bool:
        """Kept as written (``StoredObject``), not acted on."""
        return self.info.handling == "stored"


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


def _templates(obj: BaseModel) -> list[tuple[str, PodTemplate, tuple[str, ...]]]:
    """(path, pod template, the restart policies its kind allows; empty: any) of a workload."""
    if isinstance(obj, Deployment):
        return [("spec.template", obj.spec.template, ())]
    if isinstance(obj, DaemonSet | StatefulSet):
        return [("spec.template", obj.spec.template, ("Always",))]
    if isinstance(obj, Job):
        return [("spec.template", obj.spec.template, JOB_RESTART_POLICIES)]
    if isinstance(obj, CronJob):
        return [("spec.jobTemplate.spec.template", obj.spec.job_template.spec.template, JOB_RESTART_POLICIES)]
    return []


JOB_RESTART_POLICIES = ("OnFailure", "Never")
"""Kubernetes requires one of these of a Job's pods (Always, the default, is refused)."""


def _semantic_problems(obj: BaseModel) -> list[tuple[str, str]]:
    """Rules that span fields, with the path to blame."""
    problems = []
    if isinstance(obj, Namespace):
        level = level_problem(obj.metadata.labels)
        if level is not None:
            problems.append((field_path(("metadata", "labels", ENFORCE_LABEL)), level))
    if isinstance(obj, Service):
        names = [port.name for port in obj.spec.ports]
        if len(names) > 1 and (None in names or len(set(names)) != len(names)):
            problems.append(("spec.ports", "a service with several ports must name each, uniquely"))
        node_ports = [port.node_port for port in obj.spec.ports if port.node_port]
        if len(set(node_ports)) != len(node_ports):
            problems.append(("spec.ports", "nodePort used twice"))
    for path, template, policies in _templates(obj):
        for index, container in enumerate(template.spec.containers):
            problems += _probe_problems(container, f"{path}.spec.containers[{index}]")
        policy = template.spec.restart_policy
        if policies and policy not in policies:
            shown = " or ".join(repr(p) for p in policies)
            problems.append(
                (f"{path}.spec.restartPolicy", f"must be {shown} in a {obj.kind} (got {policy!r})")
            )  # type: ignore[attr-defined]
    if isinstance(obj, StatefulSet):
        problems += _statefulset_problems(obj)
    if isinstance(obj, Deployment | DaemonSet | StatefulSet):
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


def _statefulset_problems(obj: StatefulSet) -> list[tuple[str, str]]:
    problems = []
    templates = [t.metadata.name for t in obj.spec.volume_claim_templates]
    if len(set(templates)) != len(templates):
        problems.append(("spec.volumeClaimTemplates", "a claim template name is used twice"))
    policy = obj.spec.persistent_volume_claim_retention_policy
    for field, value in (("whenDeleted", policy.when_deleted), ("whenScaled", policy.when_scaled)):
        if value == "Delete":
            problems.append(
                (
                    f"spec.persistentVolumeClaimRetentionPolicy.{field}",
                    "Delete is not supported: Shoal keeps a StatefulSet's claims (Retain)",
                )
            )
    last = obj.spec.first_ordinal + max(obj.spec.desired_replicas - 1, 0)
    for template in templates:
        name = claim_name(template, obj.metadata.name, last)
        if len(name) > 253:
            problems.append(
                (f"spec.volumeClaimTemplates[{template}]", f"its claims' names would be too long ({name!r})")
            )
    return problems


SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
"""Metadata a server sets and exported objects carry (``get -o yaml``): ignored on apply."""


def _without_nulls(value: Any) -> Any:
    """YAML's ``key:`` with nothing after it (null) means "not set" in Kubernetes: drop it."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def without_server_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The document as its author meant it: no status, no server-set metadata, no nulls."""
    cleaned = {k: _without_nulls(v) for k, v in body.items() if k != "status" and v is not None}
    metadata = cleaned.get("metadata")
    if isinstance(metadata, dict):
        cleaned["metadata"] = {k: v for k, v in metadata.items() if k not in SERVER_METADATA}
    return cleaned


def _hpa_v1_as_v2(body: dict[str, Any]) -> dict[str, Any]:
    """``autoscaling/v1`` read as v2, as Kubernetes converts it: the CPU target becomes a metric."""
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return body
    spec = dict(spec)
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        utilization = {"type": "Utilization", "averageUtilization": target}
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": utilization}}]
    return {**body, "apiVersion": "autoscaling/v2", "spec": spec}


def _group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _collapsed(path: str) -> str:
    """``containers[0].env[3].valueFrom`` -> ``containers[*].env[*].valueFrom``: one warning for all."""
    return re.sub(r"\[\d+\]", "[*]", path)


@dataclass
class _Findings:
    problems: list[str]
    warnings: list[str]
    kind_notes: dict[str, str]
    """Kinds not acted on, each with its one warning."""


def _stored_object(body: dict[str, Any], info: Kind) -> StoredObject:
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        raise ValueError("metadata: must be a mapping with a name")
    meta = dict(metadata)
    if info.namespaced:
        meta["namespace"] = meta.get("namespace") or DEFAULT_NAMESPACE
    else:
        meta.pop("namespace", None)
    rest = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    return StoredObject.model_validate(
        {"apiVersion": body["apiVersion"], "kind": info.kind, "metadata": meta, "body": rest}
    )


def _validate_one(document: ManifestDocument, found: _Findings) -> ValidObject | None:
    where = describe(document)
    body = document.body
    if not isinstance(body, dict):
        found.problems.append(
            f"{where}: a manifest must be a mapping with apiVersion, kind, metadata and spec"
            f" (got {type(body).__name__}: {_shown(body)})"
        )
        return None
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        found.problems.append(f"{where}: kind: is required")
        return None
    if not isinstance(api_version, str) or not api_version:
        found.problems.append(f"{where}: apiVersion: is required")
        return None
    info = registry().by_kind(kind)
    if info is None:
        group = _group_of(api_version)
        if is_kubernetes_group(group):
            found.problems.append(
                f"{where}: kind: unknown kind {kind!r} in {api_version!r}"
                " (shoal api-resources lists the kinds Shoal knows)"
            )
        else:
            found.kind_notes.setdefault(f"{kind} ({api_version})", CUSTOM_NOTE)
        return None
    if not info.accepts(api_version):
        versions = " or ".join(repr(v) for v in (info.api_version, *info.older_versions))
        found.problems.append(f"{where}: apiVersion: {kind} needs {versions} (got {_shown(api_version)})")
        return None
    if info.handling == "observed" and info.refuse_apply:
        found.problems.append(f"{where}: kind: {kind} cannot be applied: {info.note}")
        return None
    if info.handling in ("ignored", "observed"):
        found.kind_notes.setdefault(kind, info.note)
        return None
    cleaned = without_server_fields(body)
    if info.handling == "stored":
        try:
            stored = _stored_object(cleaned, info)
        except ValidationError as err:
            for error in err.errors():
                found.problems.append(f"{where}: {field_path(error['loc'])}: {explain(error)}")
            return None
        except ValueError as err:
            found.problems.append(f"{where}: {err}")
            return None
        found.kind_notes.setdefault(kind, info.note)
        meta = stored.metadata
        return ValidObject(kind, meta.namespace, meta.name, stored, where, info)
    if api_version == "autoscaling/v1":
        cleaned = _hpa_v1_as_v2(cleaned)
    elif api_version in info.older_versions:
        cleaned = {**cleaned, "apiVersion": info.api_version}  # the same fields (batch/v1beta1 CronJob)
    model = info.model
    assert model is not None
    try:
        obj = model.model_validate(cleaned)
    except ValidationError as err:
        for error in err.errors():
            found.problems.append(f"{where}: {field_path(error['loc'])}: {explain(error)}")
        return None
    semantic = _semantic_problems(obj)
    for path, problem in semantic:
        found.problems.append(f"{where}: {path}: {problem}")
    if semantic:
        return None
    grouped: dict[str, list[str]] = {}
    for path in unsupported_fields(cleaned, model):
        grouped.setdefault(_collapsed(path), []).append(path)
    for collapsed, paths in grouped.items():
        shown = paths[0] if len(paths) == 1 else f"{collapsed} ({len(paths)} places)"
        found.warnings.append(f"{where}: {shown}: not supported by Shoal yet; ignored")
    found.warnings += [f"{where}: {w}" for w in _advice(obj)]
    metadata = obj.metadata  # type: ignore[attr-defined]
    return ValidObject(kind, getattr(metadata, "namespace", ""), metadata.name, obj, where, info)


def _advice(obj: BaseModel) -> list[str]:
    """Accepted, and run as asked, but worth a word: what ties a pod to one host's files."""
    spec = getattr(obj, "spec", None)
    template = getattr(spec, "template", None)
    pod_spec = template.spec if template is not None else spec
    volumes = getattr(pod_spec, "volumes", None) or []
    return [
        f"volume {v.name}: hostPath {v.host_path.path} is a folder of whichever node runs the pod;"
        " its contents differ from node to node"
        for v in volumes
        if v.host_path is not None
    ]


def validate_documents(documents: list[ManifestDocument]) -> tuple[list[ValidObject], list[str]]:
    """Valid objects and warnings, or InvalidManifest listing every problem (warnings with it)."""
    found = _Findings([], [], {})
    objects = [obj for document in documents if (obj := _validate_one(document, found)) is not None]
    seen: dict[tuple[str, str, str], str] = {}
    for obj in objects:
        key = (obj.kind, obj.namespace, obj.name)
        if key in seen:
            found.problems.append(
                f"{obj.where}: metadata.name: {obj.kind} {obj.namespace}/{obj.name}"
                f" is also defined in {seen[key]}"
            )
        seen[key] = obj.where
    warnings = [f"{kind}: {note}" for kind, note in found.kind_notes.items()] + found.warnings
    if found.problems:
        raise InvalidManifest(found.problems, warnings=warnings)
    return objects, warnings
