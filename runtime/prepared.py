"""What the node resolved for a pod before the runtime creates its containers.

Environment values, mounts and security settings per container, and the files of the pod's
volumes: plain data made by ``actors.node.prepare`` and carried out by a runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Mount:
    kind: Literal["bind", "volume", "tmpfs"]
    source: str
    """A host path (bind), a Podman volume's name (volume); unused for tmpfs."""
    target: str
    read_only: bool = False
    sub_path: str = ""
    size: int | None = None
    """Bytes, for a tmpfs (an emptyDir of medium Memory with a sizeLimit)."""


@dataclass(frozen=True)
class Security:
    """A container's effective security settings (its own context over the pod's)."""

    user: str = ""
    """``UID[:GID]``, or empty for the image's user."""
    run_as_non_root: bool = False
    groups: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    read_only_root: bool = False
    no_new_privileges: bool = False
    seccomp: str = ""
    """``unconfined``, a profile's path, or empty for Podman's default profile."""
    sysctls: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PreparedContainer:
    env: dict[str, str] = field(default_factory=dict)
    pod_ip_env: tuple[str, ...] = ()
    """Variables that take the pod's IP, known only once its network exists."""
    mounts: tuple[Mount, ...] = ()
    security: Security = field(default_factory=Security)


@dataclass(frozen=True)
class VolumeFiles:
    """A volume made of files (configMap, secret, downwardAPI, projected): its contents."""

    volume: str
    files: dict[str, tuple[bytes, int]]
    """Relative path -> (content, mode)."""
    references: frozenset[tuple[str, str]] = frozenset()
    """(``configMap`` or ``secret``, name) whose change rewrites the files."""


@dataclass(frozen=True)
class Dns:
    """The pod's resolv.conf."""

    servers: tuple[str, ...]
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedPod:
    containers: dict[str, PreparedContainer] = field(default_factory=dict)
    files: tuple[VolumeFiles, ...] = ()
    empty_dirs: tuple[str, ...] = ()
    """Volumes that are empty directories of the pod, made on disk."""
    fs_group: int | None = None
    dns: Dns | None = None
    local_images: frozenset[str] = frozenset()
    """Images the node has just checked or brought from the cluster's image store: used as the
    host has them, never looked up or pulled again (whatever the pull policy)."""

    def container(self, name: str) -> PreparedContainer:
        return self.containers.get(name) or PreparedContainer()
