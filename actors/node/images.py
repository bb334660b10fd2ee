"""Images a node's pods need, brought from the cluster's image store when the store has them.

Just before a pod starts, each of its images is weighed (``policy.images.image_source``): the
store's copy is fetched into a file of the node's data dir, digest-checked, loaded into the
runtime and the file removed. However many pods wait for an image, it is fetched once. What
came from the store is then used as the host has it, without asking a registry.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext

from shoal.bus.images import ImageStore, StoredImage, archive_bytes
from shoal.errors import ImageUnavailable, NotFound
from shoal.models.pod import Pod
from shoal.policy.images import Source, image_source, needs_lookup, store_names
from shoal.runtime.interface import Runtime

log = logging.getLogger(__name__)

Emit = Callable[[Pod, str, str], None]
"""Publish an event about a pod: (pod, reason, message)."""


def images_of(pod: Pod) -> dict[str, str]:
    """Each image the pod's containers run, with the pull policy of the first that names it."""
    wanted: dict[str, str] = {}
    for container in [*pod.spec.init_containers, *pod.spec.containers]:
        wanted.setdefault(container.image, container.image_pull_policy)
    return wanted


class ImageSupply:
    def __init__(self, js: JetStreamContext, runtime: Runtime, workdir: Path, emit: Emit) -> None:
        self.js = js
        self.runtime = runtime
        self.workdir = workdir
        """Where archives are written while they are fetched (removed once loaded)."""
        self.emit = emit
        self._store: ImageStore | None = None
        self._loaded: dict[str, str] = {}
        """Image reference → digest of the store's copy this node loaded for it."""
        self._locks: dict[str, asyncio.Lock] = {}

    async def supply(self, pod: Pod) -> frozenset[str]:
        """Bring what the store must give for ``pod``; the images to use as the host has them
        (brought from the store, or present and not to be pulled again)."""
        local: set[str] = set()
        for image, policy in images_of(pod).items():
            present = await self.runtime.has_image(image)
            if not needs_lookup(policy, present):
                if present:
                    local.add(image)  # what the runtime would find again: it need not look
                continue
            async with self._locks.setdefault(image, asyncio.Lock()):
                present = present or await self.runtime.has_image(image)  # another pod's fetch
                stored = await self._find(image)
                digest = stored.digest if stored is not None else None
                source = image_source(policy, present, digest, self._loaded.get(image))
                if source is Source.STORE:
                    assert stored is not None
                    await self._fetch(pod, image, stored)
                if source is not Source.RUNTIME:
                    local.add(image)
        return frozenset(local)

    async def _find(self, image: str) -> StoredImage | None:
        """The store's copy of ``image``; None when it has none, or cannot be asked now (cut off
        from NATS, or a cluster without a store): the runtime's own pull policy then goes on."""
        try:
            if self._store is None:
                self._store = await ImageStore.open(self.js)
            for name in store_names(image):
                found = await self._store.find(name)
                if found is not None:
                    return found
        except (NotFound, nats.errors.Error, nats.js.errors.Error, TimeoutError) as err:
            log.debug("the image store cannot be asked for %s: %s", image, err)
        return None

    def _archive_file(self) -> BinaryIO:
        """A new file to fetch an archive into (the node's data dir: large images fit there)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        return tempfile.NamedTemporaryFile(dir=self.workdir, prefix="image-", suffix=".tar", delete=False)

    async def _fetch(self, pod: Pod, image: str, stored: StoredImage) -> None:
        assert self._store is not None
        size = archive_bytes(stored.size)
        self.emit(pod, "Pulling", f"fetching image {image} from the cluster's image store ({size})")
        started = time.monotonic()
        into = await asyncio.to_thread(self._archive_file)
        path = Path(into.name)
        try:
            try:
                fetched = await self._store.fetch(stored.name, into)
            finally:
                await asyncio.to_thread(into.close)
            await self.runtime.load_image(path, image)
        except (NotFound, nats.errors.Error, nats.js.errors.Error, TimeoutError) as err:
            raise ImageUnavailable(
                f"image {image!r}: fetching it from the cluster's image store failed: {err}"
            ) from None
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        self._loaded[image] = fetched.digest
        seconds = time.monotonic() - started
        self.emit(
            pod,
            "Pulled",
            f"image {image} loaded from the cluster's image store"
            f" ({archive_bytes(fetched.size)} in {seconds:.1f}s)",
        )
