"""Image references, as Podman and Docker read them, and where a node gets a pod's image from.

Pure: the CLI names what it pushes with ``normalized``, and a node decides with
``image_source`` whether an image comes from the cluster's image store, from what the host
already has, or from a registry as the pull policy says.
"""

from __future__ import annotations

from enum import Enum

DEFAULT_REGISTRY = "docker.io"
OFFICIAL_IMAGES = "library"
LOCAL = "localhost"
"""Podman's name for images made on the host (``podman import``, ``podman build``)."""


def _split_tag(reference: str) -> tuple[str, str]:
    """(name, ``:tag`` or ``@digest``), the tag ``:latest`` when there is none."""
    if "@" in reference:
        name, _, digest = reference.partition("@")
        return name, f"@{digest}"
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:  # a colon before the last slash is a registry's port
        return reference[:colon], reference[colon:]
    return reference, ":latest"


def _has_registry(first: str) -> bool:
    return "." in first or ":" in first or first == LOCAL


def normalized(reference: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``; ``localhost/app:1`` stays as it is.

    As Docker reads references: a first part without ``.``, ``:`` or ``localhost`` is not a
    registry, so the image is Docker Hub's (its official ones under ``library/``)."""
    name, tag = _split_tag(reference.strip())
    parts = name.split("/")
    if len(parts) == 1 or not _has_registry(parts[0]):
        if len(parts) == 1:
            parts.insert(0, OFFICIAL_IMAGES)
        parts.insert(0, DEFAULT_REGISTRY)
    return "/".join(parts) + tag


def short_name(reference: str) -> bool:
    """A reference that names no registry (``busybox``, ``team/app:2``): Podman looks it up
    among local images of any registry before it pulls."""
    first = reference.strip().split("/")[0]
    return "/" not in reference.strip() or not _has_registry(first)


def store_names(reference: str) -> list[str]:
    """The image store's names that stand for what a pod asks for, best first: the same
    normalized reference, then for a short name the image pushed from the host's own images
    (``busybox:1`` → ``localhost/busybox:1``, as Podman finds short names among local images)."""
    names = [normalized(reference)]
    if short_name(reference):
        name, tag = _split_tag(reference.strip())
        names.append(f"{LOCAL}/{name}{tag}")
    return names


def needs_lookup(policy: str, present: bool) -> bool:
    """Whether the store must be asked at all: only for an image the host lacks, or one the
    policy says to pull every time (``image_source`` then decides)."""
    return policy != "Never" and (not present or policy == "Always")


class Source(Enum):
    STORE = "store"
    """Fetch it from the cluster's image store and load it into the runtime."""
    LOCAL = "local"
    """Use the host's copy as it is: it is what the store holds (no registry is asked)."""
    RUNTIME = "runtime"
    """Leave it to the runtime and the pull policy (present, or pulled from a registry)."""


def image_source(policy: str, present: bool, stored_digest: str | None, loaded_digest: str | None) -> Source:
    """Where a container's image comes from.

    ``stored_digest``: the digest of the store's copy (None: the store has none);
    ``loaded_digest``: the digest of the store's copy this node loaded last (None: none yet).
    The store stands in for a registry: ``Never`` never fetches; ``IfNotPresent`` fetches only
    what the host lacks; ``Always`` fetches again when the store's copy changed (a new push of
    the same tag), and uses the host's copy without asking a registry when it did not."""
    if stored_digest is None or policy == "Never":
        return Source.RUNTIME
    if not present:
        return Source.STORE
    if policy != "Always":
        return Source.RUNTIME
    return Source.LOCAL if loaded_digest == stored_digest else Source.STORE
