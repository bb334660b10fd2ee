"""Images without a registry: `shoal image push|ls|rm`, and nodes that fetch what they lack.

The rules (how references are read, where a node gets an image from) are tables; the rest runs
on a real `shoal up` with Podman: an image pushed, removed from the host, and run again by a
pod, fetched from the cluster's store.
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest
import yaml

from shoal.bus.connection import connect_client
from shoal.bus.images import ImageStore
from shoal.client import ShoalClient
from shoal.errors import Forbidden
from shoal.policy.images import Source, image_source, needs_lookup, normalized, store_names
from tests.harness import TEST_IMAGE, LocalShoal, deployment, unique_name
from tests.test_cluster import wait_running
from tests.test_security import shoal_as


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("team/app", "docker.io/team/app:latest"),
        ("docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27"),
        ("localhost/web:1", "localhost/web:1"),
        ("localhost/web", "localhost/web:latest"),
        ("registry.example.org:5000/a/b", "registry.example.org:5000/a/b:latest"),
        ("registry.example.org:5000/a/b:2", "registry.example.org:5000/a/b:2"),
        ("quay.io/org/x@sha256:abc", "quay.io/org/x@sha256:abc"),
        ("redis@sha256:abc", "docker.io/library/redis@sha256:abc"),
    ],
)
def test_references_are_read_as_podman_and_docker_read_them(reference: str, expected: str) -> None:
    assert normalized(reference) == expected


@pytest.mark.parametrize(
    ("reference", "names"),
    [
        ("busybox:1", ["docker.io/library/busybox:1", "localhost/busybox:1"]),
        ("web", ["docker.io/library/web:latest", "localhost/web:latest"]),
        ("team/app:2", ["docker.io/team/app:2", "localhost/team/app:2"]),
        ("localhost/web:1", ["localhost/web:1"]),
        ("quay.io/x/y:3", ["quay.io/x/y:3"]),
    ],
)
def test_a_pod_s_image_is_looked_up_under_each_name_it_may_be_stored_as(
    reference: str, names: list[str]
) -> None:
    assert store_names(reference) == names


@pytest.mark.parametrize(
    ("policy", "present", "stored", "loaded", "source"),
    [
        ("IfNotPresent", False, "d1", None, Source.STORE),  # the host lacks it: fetched
        ("IfNotPresent", True, "d1", None, Source.RUNTIME),  # present: used, no fetch
        ("IfNotPresent", False, None, None, Source.RUNTIME),  # not stored: a registry, as ever
        ("Always", True, "d1", None, Source.STORE),  # never loaded here: fetched again
        ("Always", True, "d1", "d1", Source.LOCAL),  # the same push: no registry asked
        ("Always", True, "d2", "d1", Source.STORE),  # pushed again since: fetched
        ("Always", False, "d1", "d1", Source.STORE),  # removed from the host: fetched
        ("Always", True, None, None, Source.RUNTIME),
        ("Never", False, "d1", None, Source.RUNTIME),  # never fetched: the runtime refuses it
        ("Never", True, "d1", None, Source.RUNTIME),
    ],
)
def test_where_a_node_gets_an_image(
    policy: str, present: bool, stored: str | None, loaded: str | None, source: Source
) -> None:
    assert image_source(policy, present, stored, loaded) is source


@pytest.mark.parametrize(
    ("policy", "present", "asks"),
    [
        ("IfNotPresent", True, False),
        ("IfNotPresent", False, True),
        ("Always", True, True),
        ("Never", False, False),
    ],
)
def test_the_store_is_asked_only_when_it_can_change_something(policy: str, present: bool, asks: bool) -> None:
    assert needs_lookup(policy, present) is asks


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=False)


def one_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done
    assert all(w in lines[0] for w in words), done.stderr


@pytest.mark.podman
async def test_a_pushed_image_runs_on_a_node_whose_host_lacks_it(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("pushed")
    image = f"localhost/shoal-{name}:1"
    assert podman("tag", TEST_IMAGE, image).returncode == 0
    try:
        pushed = await asyncio.to_thread(cluster.shoal, "image", "push", image)
        assert pushed.returncode == 0, pushed.stderr
        assert pushed.stdout.startswith(f"image {image} pushed ("), pushed.stdout
        listed = await asyncio.to_thread(cluster.shoal, "image", "ls")
        row = next(line for line in listed.stdout.splitlines() if line.startswith(image))
        assert "SHA-256=" in row, listed.stdout
        assert podman("rmi", image).returncode == 0
        assert podman("image", "exists", image).returncode == 1  # the host has it no more

        manifest = yaml.safe_load(deployment(name))
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        container |= {"image": image, "imagePullPolicy": "IfNotPresent"}
        applied = await asyncio.to_thread(cluster.shoal, "apply", "-f", "-", input=yaml.safe_dump(manifest))
        assert applied.returncode == 0, applied.stderr
        await wait_running(client, name, 1)
        assert podman("image", "exists", image).returncode == 0  # loaded from the store
        pulled = [
            e.message async for e in client.events() if e.name.startswith(name) and e.reason == "Pulled"
        ]
        assert len(pulled) == 1 and f"image {image} loaded from the cluster's image store" in pulled[0]

        removed = await asyncio.to_thread(cluster.shoal, "image", "rm", image)
        assert removed.returncode == 0 and removed.stdout.strip() == f"image {image} removed", removed
        listed = await asyncio.to_thread(cluster.shoal, "image", "ls")
        assert image not in listed.stdout, listed.stdout
        one_error(
            await asyncio.to_thread(cluster.shoal, "image", "rm", image), "not in the cluster's image store"
        )
    finally:
        await asyncio.to_thread(cluster.shoal, "delete", "deployment", name)
        await asyncio.to_thread(cluster.shoal, "image", "rm", image)
        podman("rmi", image)


@pytest.mark.podman
async def test_pushing_what_the_host_does_not_have_stores_nothing(cluster: LocalShoal) -> None:
    image = f"localhost/{unique_name('absent')}:1"
    one_error(await asyncio.to_thread(cluster.shoal, "image", "push", image), image, "is not on this host")
    listed = await asyncio.to_thread(cluster.shoal, "image", "ls")
    assert listed.returncode == 0 and image not in listed.stdout


@pytest.mark.podman
async def test_only_an_admin_pushes_and_nodes_only_read(cluster: LocalShoal) -> None:
    image = f"localhost/shoal-{unique_name('viewed')}:1"
    assert podman("tag", TEST_IMAGE, image).returncode == 0
    viewer = cluster.access_as("viewer").credentials
    assert viewer is not None
    try:
        done = await asyncio.to_thread(shoal_as, cluster, viewer, "image", "push", image)
        one_error(done, "not allowed")
        listed = await asyncio.to_thread(shoal_as, cluster, viewer, "image", "ls")
        assert listed.returncode == 0 and image not in listed.stdout, listed
        # A node reads the store (to fetch) but may not put an image in it.
        nc = await connect_client(cluster.url, "test-node", access=cluster.access_as("node", cluster.node))
        try:
            store = await ImageStore.open(nc.jetstream(timeout=2))
            assert await store.find(image) is None
            with pytest.raises(Forbidden, match=r"(?i)publish to \"\$O\.shoal_images\.C\."):
                await store.push(image, _Bytes(b"forged"))
        finally:
            await nc.close()
        assert image not in (await asyncio.to_thread(cluster.shoal, "image", "ls")).stdout
    finally:
        podman("rmi", image)


class _Bytes:
    """A small archive read as a file."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readinto(self, buffer: bytearray) -> int:
        n = min(len(buffer), len(self.data))
        buffer[:n], self.data = self.data[:n], self.data[n:]
        return n
