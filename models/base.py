"""Base classes and field types shared by every Shoal model.

Models are pydantic classes with snake_case attributes and camelCase wire names, so
stored objects and bus payloads read like Kubernetes objects. Top-level payloads
(``Record``) carry a ``schema`` version number.
"""

from __future__ import annotations

import importlib
import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic.alias_generators import to_camel

from shoal.models.quantity import format_cpu, format_memory, parse_cpu, parse_memory

SCHEMA_VERSION = 1
"""Version of every payload Shoal writes; readers refuse payloads from a newer schema."""


class ShoalModel(BaseModel):
    """Base of all models: camelCase on the wire, unknown wire fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        validate_assignment=False,
        # Validators are built on a model's first use, not at import: a command that reads
        # pods never pays for the hundred-odd other models (most of its start-up otherwise).
        defer_build=True,
    )

    def dump(self) -> dict[str, Any]:
        """The wire form: camelCase keys, quantities as Kubernetes strings."""
        return self.model_dump(by_alias=True)


M = TypeVar("M", bound=BaseModel)


def replace(model: M, **changes: Any) -> M:
    """A shallow copy of ``model`` with some fields replaced, not validated again.

    What ``model_copy(update=...)`` does, at a fraction of its cost, for the hot paths that
    build thousands of records from parts already validated. Models are never changed in
    place, so the copy may share what it does not replace.
    """
    new = model.__class__.__new__(model.__class__)
    values = {**model.__dict__, **changes}
    fields = model.__class__.__pydantic_fields__
    if len(values) != len(fields):
        # Cached properties live in __dict__ too; they may not hold for the copy.
        values = {name: values[name] for name in fields}
    object.__setattr__(new, "__dict__", values)
    object.__setattr__(new, "__pydantic_fields_set__", model.__pydantic_fields_set__ | changes.keys())
    object.__setattr__(new, "__pydantic_extra__", model.__pydantic_extra__)
    object.__setattr__(new, "__pydantic_private__", model.__pydantic_private__)
    return new


class Record(ShoalModel):
    """A top-level payload: a KV value, an event, a request or a reply."""

    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema")


def model_at(path: str) -> type[Record]:
    """The model ``module:Class`` under ``shoal.models``, imported now: buckets and kinds name
    their models so, since importing every model costs a short command most of its start-up."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(f"shoal.models.{module}"), name)  # type: ignore[no-any-return]


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def check_dns_label(value: str) -> str:
    """Names of objects, namespaces, nodes and containers: one DNS label.

    Shoal is stricter than Kubernetes here (no dots in object names) because names
    become single tokens of NATS subjects and KV keys.
    """
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use at most 63 lowercase letters, digits and '-',"
            " starting and ending with a letter or digit"
        )
    return value


def check_label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(f"label key {value!r} has an invalid prefix {prefix!r}")
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        raise ValueError(
            f"label key {value!r} is invalid: at most 63 letters, digits, '-', '_' or '.',"
            " starting and ending with a letter or digit"
        )
    return value


def check_label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValueError(
            f"label value {value!r} is invalid: at most 63 letters, digits, '-', '_' or '.',"
            " starting and ending with a letter or digit"
        )
    return value


def _label_value_from_scalar(value: Any) -> Any:
    # YAML turns `version: 2` or `enabled: true` into numbers and booleans; Kubernetes
    # rejects those, but the intent is unambiguous, so accept them as their text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def check_dns_subdomain(value: str) -> str:
    """Names of ConfigMaps, Secrets and claims: a DNS subdomain, as Kubernetes allows."""
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use at most 253 lowercase letters, digits, '-' and '.',"
            " starting and ending with a letter or digit"
        )
    return value


def check_path_segment(value: str) -> str:
    """Names of objects Shoal only stores (RBAC names hold ``:``): what Kubernetes puts in a URL."""
    if not value or len(value) > 253 or value in (".", "..") or "/" in value or "%" in value:
        raise ValueError(f"{value!r} is not a valid name: at most 253 characters, no '/' or '%'")
    if not value.isprintable() or value != value.strip():
        raise ValueError(f"{value!r} is not a valid name: no spaces or control characters at either end")
    return value


Name = Annotated[str, AfterValidator(check_dns_label)]
SubdomainName = Annotated[str, AfterValidator(check_dns_subdomain)]
SegmentName = Annotated[str, AfterValidator(check_path_segment)]
LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, BeforeValidator(_label_value_from_scalar), AfterValidator(check_label_value)]
_SHARED_LABELS: dict[tuple[tuple[Any, Any], ...], dict[str, str]] = {}
_SHARED_LABELS_MAX = 4096


def _shared_labels(value: Any, handler: ValidatorFunctionWrapHandler) -> dict[str, str]:
    """Thousands of pods carry the same few label sets: validate each set once and share it
    (models are never changed in place, so sharing is safe)."""
    if not isinstance(value, dict):
        return handler(value)
    key = tuple(value.items())
    try:
        shared = _SHARED_LABELS.get(key)
    except TypeError:  # unhashable values: let validation say what is wrong
        return handler(value)
    if shared is None:
        shared = handler(value)
        if len(_SHARED_LABELS) >= _SHARED_LABELS_MAX:
            _SHARED_LABELS.clear()
        _SHARED_LABELS[key] = shared
    return shared


Labels = Annotated[dict[LabelKey, LabelValue], WrapValidator(_shared_labels)]

Cpu = Annotated[int, BeforeValidator(parse_cpu), PlainSerializer(format_cpu, return_type=str)]
"""CPU in millicores; written as a Kubernetes quantity (``250m``)."""

Memory = Annotated[int, BeforeValidator(parse_memory), PlainSerializer(format_memory, return_type=str)]
"""Memory in bytes; written as a Kubernetes quantity (``64Mi``)."""


INT32_MAX = 2**31 - 1
"""The largest count Kubernetes' int32 fields (replicas, parallelism...) hold."""


class ObjectMeta(ShoalModel):
    """Identity of a namespaced object. ``uid``, ``generation`` and ``creationTimestamp``
    are set by Shoal, never taken from manifests."""

    name: Name
    namespace: Name = "default"
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str = ""
    generation: int = 0
    creation_timestamp: float = 0.0
