"""The cluster's image store: container images kept in a JetStream object store, for sites
with no registry.

An image is stored under its normalized reference (``docker.io/library/busybox:1.36``) as the
OCI archive ``podman save`` makes. nats-server keeps it in chunks with its SHA-256, which every
fetch checks before the archive is used. Pushes and fetches stream between a file (or a pipe)
and the server: an image is never held whole in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ObjectMeta, ObjectMetaOptions, ObjectStoreConfig, StorageType
from nats.js.object_store import ObjectStore

from shoal.bus import subjects
from shoal.bus.batch import exists_or_made
from shoal.bus.kv import connection_of
from shoal.bus.rpc import refusable
from shoal.errors import ImageUnavailable, NotFound

CHUNK_BYTES = 960 * 1024
"""Chunk size of stored images: just under nats-server's default 1 MB payload limit, so a 100 MB
image is about 100 messages (each waits for its acknowledgement: fewer, larger ones push faster;
256 kB chunks took 10% longer in bench/images.py)."""

IMAGE_ID_HEADER = "Shoal-Image-Id"
"""The Podman image id of what was pushed (``shoal image ls`` shows it)."""


class ImageDamaged(ImageUnavailable):
    """What the store gave back does not match the digest it was stored with."""

    code = "image-damaged"


@dataclass(frozen=True)
class StoredImage:
    name: str
    size: int
    digest: str
    """``SHA-256=<base64url>``, as nats-server's object store keeps it."""
    modified: str
    """When it was pushed (ISO 8601, UTC)."""
    image_id: str = ""


def _stored(info: object) -> StoredImage:
    headers = getattr(info, "headers", None) or {}
    image_id = headers.get(IMAGE_ID_HEADER, "")
    if isinstance(image_id, list):  # nats-py keeps header values as lists
        image_id = image_id[0] if image_id else ""
    return StoredImage(
        name=str(getattr(info, "name", "")),
        size=int(getattr(info, "size", 0) or 0),
        digest=str(getattr(info, "digest", "") or ""),
        modified=str(getattr(info, "mtime", "") or ""),
        image_id=str(image_id),
    )


async def ensure_image_store(js: JetStreamContext, replicas: int = 1) -> None:
    """Make the image store if it is missing (on disk, with ``replicas`` copies)."""

    async def exists() -> bool:
        try:
            await js.stream_info(subjects.IMAGE_STREAM)
        except nats.js.errors.NotFoundError:
            return False
        return True

    async def make() -> None:
        config = ObjectStoreConfig(
            bucket=subjects.IMAGE_STORE,
            description="Shoal's container images, pushed with `shoal image push`",
            storage=StorageType.FILE,
            replicas=replicas,
        )
        await js.create_object_store(subjects.IMAGE_STORE, config=config)

    await exists_or_made(exists, make, "the image store")


class ImageStore:
    """Push, find, fetch, list and remove images in the cluster's image store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @classmethod
    async def open(cls, js: JetStreamContext) -> ImageStore:
        try:
            return cls(await js.object_store(subjects.IMAGE_STORE))
        except nats.js.errors.NotFoundError:
            raise NotFound("the cluster has no image store yet (its control plane makes it)") from None

    async def push(self, name: str, archive: BinaryIO, image_id: str = "") -> StoredImage:
        """Store the archive read from ``archive`` (read in chunks, to its end) as ``name``."""
        meta = ObjectMeta(
            name=name,
            headers={IMAGE_ID_HEADER: image_id} if image_id else None,
            options=ObjectMetaOptions(max_chunk_size=CHUNK_BYTES),
        )
        # A push the server refuses (an identity that may only read) fails at once.
        stored = await refusable(
            connection_of(self.store._js),
            f"$O.{subjects.IMAGE_STORE}",
            self.store.put(name, archive, meta=meta),
        )
        return _stored(stored)

    async def find(self, name: str) -> StoredImage | None:
        try:
            return _stored(await self.store.get_info(name))
        except nats.js.errors.ObjectNotFoundError:
            return None

    async def fetch(self, name: str, into: BinaryIO) -> StoredImage:
        """Write the image's archive into ``into`` as it arrives; raises ``ImageDamaged`` (and the
        caller throws the file away) when its digest is not the one it was stored with."""
        try:
            result = await self.store.get(name, writeinto=into)  # type: ignore[arg-type]
        except nats.js.errors.ObjectNotFoundError:
            raise NotFound(f"image {name} is not in the cluster's image store") from None
        except nats.js.errors.DigestMismatchError:
            raise ImageDamaged(
                f"image {name} from the cluster's image store does not match its digest"
            ) from None
        return _stored(result.info)

    async def list(self) -> list[StoredImage]:
        try:
            found = await self.store.list(ignore_deletes=True)
        except nats.js.errors.NotFoundError:
            return []
        return sorted((_stored(info) for info in found), key=lambda image: image.name)

    async def remove(self, name: str) -> bool:
        """Delete ``name`` and its chunks; False if it was not there."""
        try:
            await self.store.delete(name)
        except nats.js.errors.ObjectNotFoundError:
            return False
        return True


def archive_bytes(size: int) -> str:
    """``12.3 MB``: an archive's size for people."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
