"""Requests and replies of the ``shoal.v1.api...`` and node subjects."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from shoal.models.base import INT32_MAX, LabelKey, Name, Record, ShoalModel, SubdomainName, check_label_value
from shoal.models.core import Secret
from shoal.models.scheduling import Taint


class ManifestDocument(ShoalModel):
    """One YAML document as the client parsed it, with where it came from."""

    source: str
    index: int
    body: Any


class ApplyRequest(Record):
    documents: list[ManifestDocument]
    dry_run: bool = False
    prune: str | None = None
    """A label selector: the documents are the whole of the set it selects, and objects of the
    set that they do not name are deleted (``apply --prune -l``)."""


class ObjectResult(ShoalModel):
    kind: str
    namespace: str
    name: str
    action: Literal[
        "created",
        "configured",
        "unchanged",
        "deleted",
        "not found",
        "scaled",
        "rolled back",
        "paused",
        "resumed",
        "restarted",
        "image updated",
        "pruned",
    ]


class ApplyReply(Record):
    results: list[ObjectResult] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ObjectRef(ShoalModel):
    kind: str
    namespace: str = "default"
    name: str


class DeleteRequest(Record):
    refs: list[ObjectRef] = Field(default_factory=list)
    documents: list[ManifestDocument] = Field(default_factory=list)


class ScaleRequest(Record):
    namespace: Name = "default"
    name: Name
    replicas: int = Field(ge=0, le=INT32_MAX)
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"


class TaintRef(ShoalModel):
    """Which taints to remove: those with this key (and this effect, if given)."""

    key: str
    effect: str = ""


class NodeUpdateRequest(Record):
    """Cordon, drain, label or taint a node; fields left unset change nothing."""

    name: Name
    unschedulable: bool | None = None
    draining: bool | None = None
    labels: dict[LabelKey, Annotated[str, AfterValidator(check_label_value)] | None] = Field(
        default_factory=dict
    )
    """Labels to set; a None value removes the label."""
    add_taints: list[Taint] = Field(default_factory=list)
    remove_taints: list[TaintRef] = Field(default_factory=list)


class RolloutRequest(Record):
    namespace: Name = "default"
    name: Name
    action: Literal["undo", "pause", "resume", "restart", "set-image"]
    kind: Literal["Deployment", "DaemonSet", "StatefulSet"] = "Deployment"
    to_revision: int | None = None
    """For undo: the revision to go back to (default: the one before the current)."""
    images: dict[str, str] = Field(default_factory=dict)
    """For set-image: container name -> image."""


class ResolveRequest(Record):
    namespace: Name = "default"
    name: Name


class VersionRequest(Record):
    """What versions the cluster runs (``shoal version``)."""


class VersionReply(Record):
    version: str
    """The answering API actor's Shoal version."""
    nats_server: str = ""
    """The version of the nats-server it is connected to."""


class SecretReadRequest(Record):
    namespace: Name = "default"
    name: SubdomainName


class NodeSecretRequest(Record):
    """A node asks for the Secrets of one pod bound to it."""

    node: Name
    namespace: Name
    pod: Name
    uid: str


class PodReleaseRequest(Record):
    """A node has stopped a pod marked for deletion: its record may go, if it is still the
    revision the node stopped (a record changed meanwhile is looked at again)."""

    node: Name
    namespace: Name
    pod: Name
    uid: str
    revision: int


class SecretBundle(Record):
    secrets: dict[str, Secret] = Field(default_factory=dict)


class ErrorBody(ShoalModel):
    code: str
    message: str
    warnings: list[str] = Field(default_factory=list)


class ErrorReply(Record):
    error: ErrorBody


class LogsRequest(Record):
    namespace: Name
    pod: Name
    container: str = ""
    follow: bool = False
    tail: int | None = None
    since: float | None = None
    """Only output written at or after this time (epoch seconds)."""
    previous: bool = False
    """The output of the container's previous incarnation, the one that exited before the
    running one started (as ``kubectl logs --previous``)."""
    stream: str
    """Subject the node publishes ``LogChunk`` messages to."""


class Ack(Record):
    """A request was accepted; what it asked for follows elsewhere (e.g. a log stream)."""

    ok: bool = True


class LogChunk(Record):
    data: bytes = b""
    end: bool = False
    error: str = ""


class ExecRequest(Record):
    """Run ``command`` in a container of a pod; output streams to ``stream``."""

    namespace: Name
    pod: Name
    container: str = ""
    command: list[str] = Field(min_length=1)
    stdin: bool = False
    """Keep the command's standard input open, fed by ExecInput on ``exec_input(stream)``."""
    tty: bool = False
    """Give the command a terminal (its output then comes on one stream)."""
    rows: int = Field(default=0, ge=0, le=10_000)
    columns: int = Field(default=0, ge=0, le=10_000)
    """The terminal's size, with ``tty`` (0: unknown)."""
    stream: str


class ForwardRequest(Record):
    """Open a TCP connection to ``port`` of a pod (``shoal port-forward``): the bytes the pod
    sends come as ExecChunk on ``stream``, the client's as ExecInput on ``exec_input(stream)``."""

    namespace: Name
    pod: Name
    port: int = Field(ge=1, le=65535)
    stream: str


class ExecChunk(Record):
    data: bytes = b""
    fd: Literal[1, 2] = 1
    """1: standard output, 2: standard error."""
    end: bool = False
    exit_code: int | None = None
    error: str = ""


class ExecInput(Record):
    data: bytes = b""
    eof: bool = False
    rows: int = Field(default=0, ge=0, le=10_000)
    columns: int = Field(default=0, ge=0, le=10_000)
    """Set (without data): the user's terminal has this size now."""


class ProcessStats(Record):
    """How a Shoal process is doing: for benchmarks, tests and operators."""

    name: str
    roles: list[str]
    pid: int
    uptime: float
    max_stall: float
    """The longest the event loop was kept from running, in seconds, since the process started."""
    stalls: int
    """How many times it was kept for more than ``STALL_REPORTED`` seconds."""
