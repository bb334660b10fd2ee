"""The contract between a node actor and whatever runs its containers.

Like Nomad's task drivers, a runtime knows a few verbs: start a pod, restart one of its
containers, remove a pod, observe pods (which is also how a restarted node recovers what
it started before), read logs, and report container events. Podman implements it for real
hosts; an in-memory runtime implements it for scale tests. Runtimes know nothing of NATS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from shoal.models.pod import Pod
from shoal.runtime.prepared import PreparedPod
from shoal.runtime.terminal import Terminal

ContainerRunState = Literal["created", "running", "exited", "unknown"]


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    version: str
    cpu_millis: int
    memory_bytes: int
    os: str
    architecture: str
    service_address: str = ""
    """An address of this host that its containers can reach (the bridge's gateway), if any."""


@dataclass(frozen=True)
class ContainerObservation:
    name: str
    """The container's name in the pod spec."""
    container_id: str
    image: str
    state: ContainerRunState
    attempt: int
    """How many times this container was restarted before this incarnation."""
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    oom_killed: bool = False


@dataclass(frozen=True)
class PodObservation:
    namespace: str
    name: str
    uid: str
    node: str
    containers: dict[str, ContainerObservation] = field(default_factory=dict)
    ip: str = ""
    ports: tuple[tuple[int, int, str], ...] = ()
    """(container port, host port, protocol) for each published port."""


@dataclass(frozen=True)
class ContainerUsage:
    """One running container's cumulative CPU time and current memory, at one moment."""

    namespace: str
    pod: str
    container: str
    container_id: str
    cpu_seconds: float
    """CPU time used since the container started."""
    memory_bytes: int
    at: float
    """When it was read, in seconds on the runtime's own clock: only differences count."""


@dataclass(frozen=True)
class RuntimeEvent:
    """Something happened to a container of a pod: the node actor re-syncs that pod."""

    namespace: str
    pod: str
    action: str


class Runtime(Protocol):
    cluster: str
    """The id of the node's cluster: a runtime shared by several clusters' nodes holds only this
    cluster's pods for it."""

    async def info(self) -> RuntimeInfo:
        """Name, version and capacity of the host."""
        ...

    async def list_pods(self) -> list[PodObservation]:
        """Every pod this node's runtime holds, found by label (adoption after a restart)."""
        ...

    async def inspect_pod(self, namespace: str, name: str) -> PodObservation | None: ...

    async def has_image(self, image: str) -> bool:
        """Whether the host holds ``image`` (as the runtime resolves the reference)."""
        ...

    async def load_image(self, archive: Path, image: str) -> None:
        """Load an image archive (as ``podman save`` writes it) and make sure it answers to
        ``image``, the reference a pod names it by."""
        ...

    async def start_pod(
        self, pod: Pod, attempts: dict[str, int] | None = None, prepared: PreparedPod | None = None
    ) -> None:
        """Run ``pod``'s init containers in order, then create and start its containers.

        ``attempts`` carries restart counts to keep when a vanished pod is recreated;
        ``prepared`` their resolved environment, mounts and security settings.
        Raises ImageUnavailable when an image cannot be found or pulled, InitContainerFailed
        when an init container fails, ContainerConfigError when a container cannot be set up.
        """
        ...

    async def restart_container(
        self, pod: Pod, container: str, attempt: int, prepared: PreparedPod | None = None
    ) -> None:
        """Replace an exited container by a new one numbered ``attempt``."""
        ...

    async def start_again(self, container_id: str) -> None:
        """Start an exited container as it is (a node cut off from NATS after a reboot)."""
        ...

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after the grace period; the container stays, exited."""
        ...

    async def exec(self, container_id: str, command: list[str], timeout: float) -> int:
        """Run ``command`` in a running container; its exit code (exec probes)."""
        ...

    async def open_exec(
        self,
        namespace: str,
        name: str,
        container: str,
        command: list[str],
        *,
        stdin: bool,
        tty: bool,
        size: tuple[int, int] = (0, 0),
    ) -> asyncio.subprocess.Process | Terminal:
        """Start ``command`` in a running container of a pod (``shoal exec``): a process whose
        pipes are the command's (stdin only with ``stdin``) and whose exit code is its; with
        ``tty``, on a terminal of ``size`` (rows, columns; 0: unknown) that ``resize`` changes."""
        ...

    async def remove_pod(self, namespace: str, name: str, grace_seconds: float) -> None:
        """SIGTERM, wait up to ``grace_seconds``, SIGKILL, then remove everything of the pod."""
        ...

    def logs(
        self,
        namespace: str,
        name: str,
        container: str,
        *,
        follow: bool,
        tail: int | None,
        since: float | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        """Raw output of one container (``since``: only what it wrote from then on;
        ``previous``: of its incarnation before the running one)."""
        ...

    def events(self) -> AsyncIterator[RuntimeEvent]:
        """Container events of this node's pods, forever (reconnecting as needed)."""
        ...

    async def usage(self) -> list[ContainerUsage]:
        """CPU time and memory of every running container of this node's pods."""
        ...

    async def close(self) -> None: ...
