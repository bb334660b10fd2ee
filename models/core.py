"""Core ``v1`` kinds that configure workloads: Namespace, ConfigMap, Secret, PersistentVolumeClaim.

Secrets arrive and leave as Kubernetes shows them (``data`` base64, ``stringData`` plain,
merged into ``data`` on apply) but are stored sealed (``SealedSecret``): only the API,
holding the key, turns one back into a ``Secret``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from shoal.models.base import Labels, Memory, Name, ObjectMeta, Record, SegmentName, ShoalModel, SubdomainName

MAX_DATA_BYTES = 1024 * 1024
"""Kubernetes' limit on the data of one ConfigMap or Secret."""

_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def check_data_key(key: str) -> str:
    if not key or len(key) > 253 or not _DATA_KEY.match(key) or key in (".", ".."):
        raise ValueError(f"data key {key!r} is invalid: use letters, digits, '-', '_' or '.' (at most 253)")
    return key


def _text(value: Any) -> Any:
    # Kubernetes wants strings; YAML makes `port: 8080` a number. The intent is clear.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _from_base64(value: Any) -> Any:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be base64 text (got {type(value).__name__})")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None


DataKey = Annotated[str, BeforeValidator(check_data_key)]
Text = Annotated[str, BeforeValidator(_text)]
Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(lambda b: base64.b64encode(b).decode(), return_type=str),
]
"""Bytes written as base64, as Kubernetes shows Secret data and ConfigMap binaryData."""


class NamedMeta(ObjectMeta):
    """Identity of an object whose name may be a DNS subdomain (``app.config``)."""

    name: SubdomainName  # type: ignore[assignment]


class NamespaceMeta(ShoalModel):
    name: Name
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str = ""
    generation: int = 0
    creation_timestamp: float = 0.0


class Namespace(Record):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Namespace"] = "Namespace"
    metadata: NamespaceMeta


DEFAULT_NAMESPACE = "default"
"""Always there; it cannot be deleted (as in Kubernetes)."""

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public")
"""Namespaces that exist in every cluster without being created, so manifests naming them apply."""

CLUSTER_ID_NAMESPACE = "kube-system"
"""The uid of this namespace's record, made once by the API, is the cluster's id (as tools read a
Kubernetes cluster's id): nodes label what they create with it."""


def _size_check(data: dict[str, bytes], text: dict[str, str], what: str) -> None:
    size = sum(len(v) for v in data.values()) + sum(len(v.encode()) for v in text.values())
    if size > MAX_DATA_BYTES:
        raise ValueError(f"{what} holds {size} bytes; at most {MAX_DATA_BYTES} (1 MiB) are allowed")


class ConfigMap(Record):
    api_version: Literal["v1"] = "v1"
    kind: Literal["ConfigMap"] = "ConfigMap"
    metadata: NamedMeta
    data: dict[DataKey, Text] = Field(default_factory=dict)
    binary_data: dict[DataKey, Base64Bytes] = Field(default_factory=dict)
    immutable: bool | None = None

    @model_validator(mode="after")
    def _keys_and_size(self) -> ConfigMap:
        both = sorted(set(self.data) & set(self.binary_data))
        if both:
            raise ValueError(f"key {both[0]!r} is in both data and binaryData")
        _size_check(self.binary_data, self.data, "the config map")
        return self

    def files(self) -> dict[str, bytes]:
        """Every key as the bytes of the file a volume makes of it."""
        return {**{k: v.encode() for k, v in self.data.items()}, **self.binary_data}


SECRET_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}
"""Keys a Secret of a given type must have (Kubernetes' validation)."""


class Secret(Record):
    """A Secret as written and read: values in the clear, inside Shoal's memory only."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Secret"] = "Secret"
    metadata: NamedMeta
    type: str = "Opaque"
    data: dict[DataKey, Base64Bytes] = Field(default_factory=dict)
    string_data: dict[DataKey, Text] = Field(default_factory=dict)
    """Write-only, as in Kubernetes: merged into ``data`` (winning over it) on apply."""
    immutable: bool | None = None

    @field_validator("type")
    @classmethod
    def _type_given(cls, value: str) -> str:
        return value or "Opaque"

    @model_validator(mode="after")
    def _merge_string_data(self) -> Secret:
        if self.string_data:
            self.data = {**self.data, **{k: v.encode() for k, v in self.string_data.items()}}
            self.string_data = {}
        _size_check(self.data, {}, "the secret")
        missing = [key for key in SECRET_REQUIRED_KEYS.get(self.type, ()) if key not in self.data]
        if missing:
            raise ValueError(f"a secret of type {self.type} needs the keys {', '.join(missing)}")
        return self


class SealedSecret(Record):
    """How a Secret is stored: its values encrypted (AES-GCM) under one of the API's keys."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Secret"] = "Secret"
    metadata: NamedMeta
    type: str = "Opaque"
    immutable: bool | None = None
    sizes: dict[str, int] = Field(default_factory=dict)
    """Each key and the length of its value: what listings show without the key."""
    key_id: str
    nonce: bytes
    sealed: bytes


AccessMode = Literal["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]


class StorageRequest(ShoalModel):
    storage: Memory | None = None


class ClaimResources(ShoalModel):
    requests: StorageRequest = Field(default_factory=StorageRequest)
    limits: StorageRequest = Field(default_factory=StorageRequest)


class ClaimSpec(ShoalModel):
    access_modes: list[AccessMode] = Field(default_factory=lambda: ["ReadWriteOnce"])
    resources: ClaimResources = Field(default_factory=ClaimResources)
    storage_class_name: str | None = None
    volume_mode: Literal["Filesystem"] = "Filesystem"
    volume_name: str | None = None


class PersistentVolumeClaim(Record):
    """A claim on storage: a Podman named volume on the node where its first pod runs.

    Like k3s' local-path provisioner (binding mode WaitForFirstConsumer), the claim binds to
    the node of the first pod that uses it, and every later pod using it goes to that node.
    """

    api_version: Literal["v1"] = "v1"
    kind: Literal["PersistentVolumeClaim"] = "PersistentVolumeClaim"
    metadata: NamedMeta
    spec: ClaimSpec = Field(default_factory=ClaimSpec)


class ClaimStatus(Record):
    """Where a claim's volume lives; written once, by the scheduler, when it binds the claim."""

    namespace: str
    name: str
    uid: str
    node: str
    volume: str
    """The Podman volume's name on that node."""
    bound_at: float


def claim_volume_name(namespace: str, claim: str) -> str:
    """The Podman volume holding a claim's data on its node."""
    return f"shoal-{namespace}-{claim}"


class StoredMeta(ShoalModel):
    """Identity of an object Shoal keeps but does not act on."""

    name: SegmentName
    namespace: str = ""
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str = ""
    generation: int = 0
    creation_timestamp: float = 0.0


class StoredObject(Record):
    """Any object Shoal stores as written and does not act on (RBAC, NetworkPolicy, Ingress...)."""

    api_version: str
    kind: str
    metadata: StoredMeta
    body: dict[str, Any] = Field(default_factory=dict)
    """Every top-level field but apiVersion, kind, metadata and status."""

    def manifest(self) -> dict[str, Any]:
        head = {"apiVersion": self.api_version, "kind": self.kind, "metadata": self.metadata.dump()}
        return {**head, **self.body}
