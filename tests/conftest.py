"""Fixtures: real nats-servers and real Shoal clusters, each on free ports and private dirs.

Nothing here is faked: a test that says it exercises NATS or Podman runs the real thing,
and fails (never skips) when Podman is missing. Every process, container and pod a
fixture starts is stopped and removed at teardown, also when the test failed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shoal.bus.nats_server import NatsServer, NatsServerConfig
from shoal.client import ShoalClient
from tests.browser import browser, page  # noqa: F401 (fixtures of the dashboard tests)
from tests.harness import TEST_IMAGE, UDP_IMAGE, LocalShoal, remove_node_containers, unique_name, wait_for


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test using a cluster or podman fixture is a podman test; one using NATS, a nats test.
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & {"cluster", "podman", "fresh_cluster"}:
            item.add_marker(pytest.mark.podman)
        if fixtures & {"cluster", "nats_server", "fresh_cluster", "nats_url"}:
            item.add_marker(pytest.mark.nats)


@pytest.fixture(scope="session")
def podman() -> str:
    """Podman, and the local test image: their absence is a failure, not a skip."""
    binary = shutil.which("podman")
    if binary is None:
        pytest.fail("podman is not installed: run `make setup` (scripts/install-system.sh)")
    for image in (TEST_IMAGE, "localhost/shoal-web:v1", "localhost/shoal-web:v2", UDP_IMAGE):
        if subprocess.run([binary, "image", "exists", image], check=False).returncode != 0:
            pytest.fail(f"test image {image} is missing: run scripts/build-images.sh")
    return binary


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server with JetStream on a free port, with its store in a temporary dir."""
    server = NatsServer(
        NatsServerConfig(store_dir=tmp_path / "js", port=0, server_name="test"), run_dir=tmp_path
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture(scope="module")
def cluster(
    podman: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LocalShoal]:
    """One `shoal up` for the whole module: NATS, API, scheduler and a node on Podman.

    A module may set ``SHOAL_UP_ARGS`` (e.g. shorter backoffs) for its cluster.
    """
    extra = list(getattr(request.module, "SHOAL_UP_ARGS", []))
    shoal = LocalShoal(tmp_path_factory.mktemp("cluster"), node=unique_name("t"), extra_args=extra)
    try:
        shoal.start()
        yield shoal
    finally:
        shoal.stop()
        remove_node_containers(shoal.node)


@pytest.fixture
def fresh_cluster(podman: str, tmp_path: Path) -> Iterator[LocalShoal]:
    """A `shoal up` of the test's own, for tests that stop or break the cluster."""
    shoal = LocalShoal(tmp_path / "cluster", node=unique_name("f"))
    try:
        yield shoal
    finally:
        shoal.stop()
        remove_node_containers(shoal.node)


@pytest.fixture
async def client(cluster: LocalShoal) -> AsyncIterator[ShoalClient]:
    shoal_client = await cluster.connect()
    try:
        yield shoal_client
    finally:
        await shoal_client.close()


@pytest.fixture(autouse=True)
def _isolated_context(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never read or overwrite the developer's own context file.
    if "SHOAL_CONTEXT" not in os.environ or not os.environ["SHOAL_CONTEXT"].startswith(
        str(tmp_path_factory.getbasetemp())
    ):
        monkeypatch.setenv("SHOAL_CONTEXT", str(tmp_path_factory.getbasetemp() / "context.yaml"))
    monkeypatch.delenv("SHOAL_SERVER", raising=False)


@pytest.fixture(autouse=True)
async def _no_leaked_tasks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """An async test (and its fixtures) leaves no task running behind it."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()

    def leaked() -> set[asyncio.Task]:
        return {
            t
            for t in asyncio.all_tasks() - before
            if t is not current and not t.done() and not _of_nats_py(t)
        }

    try:  # tasks being cancelled need a few turns of the loop to finish
        await wait_for(lambda: not leaked(), timeout=1.0, interval=0.02, what="no task left running")
    except AssertionError:
        names = sorted(t.get_name() + " " + repr(t.get_coro())[:80] for t in leaked())
        pytest.fail(f"{request.node.name} left {len(names)} task(s) running: {names[:5]}")


def _of_nats_py(task: asyncio.Task) -> bool:
    # nats-py's own housekeeping (an ordered consumer's activity check ends its next idle beat).
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "/nats/" in code.co_filename
