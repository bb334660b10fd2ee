"""``shoal image``: container images kept in the cluster itself, for sites without a registry.

``shoal image push IMAGE`` streams ``podman save --format oci-archive IMAGE`` into the
cluster's image store (or an archive made elsewhere, with ``--archive``); a node whose pod needs
an image the host lacks fetches it from there before it would try a registry. ``ls`` lists
what is stored, ``rm`` removes an image (pods already running keep theirs).
"""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from shoal.cli.common import ServerOption, with_client
from shoal.cli.output import age, console, table
from shoal.errors import NotFound, ShoalError
from shoal.policy.images import normalized, store_names

if TYPE_CHECKING:
    from shoal.client import ShoalClient

app = typer.Typer(
    help="Images kept in the cluster for nodes without a registry: push, ls, rm.", no_args_is_help=True
)


class SavedImage:
    """``podman save`` of one image, read as a file: its end is an error if podman failed, so a
    failed save never becomes a stored (truncated) image; the store then keeps what it had."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.process = subprocess.Popen(
            ["podman", "save", "--format", "oci-archive", image],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.stream: IO[bytes] = self.process.stdout

    def readinto(self, buffer: bytearray) -> int:
        read = self.stream.readinto(buffer)  # type: ignore[attr-defined]
        if read:
            return read
        assert self.process.stderr is not None
        why = self.process.stderr.read().decode(errors="replace").strip()
        if self.process.wait() != 0:
            raise ShoalError(
                f"podman save {self.image} failed: {why or 'exit ' + str(self.process.returncode)}"
            )
        return 0

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _local_image(image: str) -> tuple[str, str]:
    """(the name to store it under, its Podman id), from the host's Podman."""
    try:
        found = subprocess.run(
            ["podman", "image", "inspect", "--format", '{{.Id}} {{join .RepoTags ","}}', image],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except FileNotFoundError:
        raise ShoalError("podman is not installed here: push an archive with --archive FILE") from None
    if found.returncode != 0:
        raise NotFound(f"image {image} is not on this host: {found.stderr.strip() or 'podman found nothing'}")
    image_id, _, tags = found.stdout.strip().partition(" ")
    # Pods find it by either name (policy.images.store_names): a short name of an image made on
    # this host (``podman import``) is stored as Podman knows it, ``localhost/NAME:TAG``.
    names = store_names(image)
    return next((n for n in names if n in tags.split(",")), names[0]), image_id[:12]


@app.command("push")
def push(
    image: Annotated[
        str, typer.Argument(help="The image, as pods name it (e.g. localhost/web:1, nginx:1.27)")
    ],
    archive: Annotated[
        Path | None,
        typer.Option(
            "--archive",
            "-i",
            help="An archive `podman save` made (say on another host), stored as IMAGE",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    server: ServerOption = None,
) -> None:
    """Store an image in the cluster: nodes that lack it fetch it from there instead of a registry."""
    if archive is not None:
        name, image_id = normalized(image), ""
    else:
        name, image_id = _local_image(image)

    async def run(client: ShoalClient) -> None:
        from shoal.bus.images import ImageStore, archive_bytes

        store = await ImageStore.open(client.js)
        started = time.monotonic()
        source = archive.open("rb") if archive is not None else SavedImage(image)
        try:
            stored = await store.push(name, source, image_id)  # type: ignore[arg-type]
        finally:
            source.close()
        console.print(
            f"image {stored.name} pushed ({archive_bytes(stored.size)}, {stored.digest})"
            f" in {time.monotonic() - started:.1f}s"
        )

    with_client(server, run)


@app.command("ls")
def list_images(server: ServerOption = None) -> None:
    """The images in the cluster's store: name, size, when pushed, digest."""

    async def run(client: ShoalClient) -> None:
        from shoal.bus.images import ImageStore, archive_bytes

        images = await (await ImageStore.open(client.js)).list()
        if not images:
            console.print("No images in the cluster's store.")
            return
        table(
            ["NAME", "SIZE", "PUSHED", "IMAGE ID", "DIGEST"],
            [
                [i.name, archive_bytes(i.size), age(_epoch(i.modified)), i.image_id or "-", i.digest]
                for i in images
            ],
        )

    with_client(server, run)


def _epoch(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@app.command("rm")
def remove(
    images: Annotated[list[str], typer.Argument(help="The images to remove, as pushed or as pods name them")],
    server: ServerOption = None,
) -> None:
    """Remove images from the cluster's store (pods running them keep their copies)."""

    async def run(client: ShoalClient) -> None:
        from shoal.bus.images import ImageStore

        store = await ImageStore.open(client.js)
        missing = []
        for image in images:
            for name in store_names(image):
                if await store.remove(name):
                    console.print(f"image {name} removed")
                    break
            else:
                missing.append(image)
        if missing:
            raise NotFound(f"not in the cluster's image store: {', '.join(missing)}")

    with_client(server, run)
