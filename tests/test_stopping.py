"""Every role stops within 5 s of SIGTERM or SIGINT, whether NATS is up or gone."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.bus.nats_server import NatsServer
from shoal.processes import die_with_parent
from tests.harness import remove_node_containers, unique_name, wait_until

ROLES = {
    "api": ["api"],
    "scheduler": ["scheduler"],
    "service": ["service"],
    "autoscaler": ["autoscaler"],
    "hollow nodes": ["node", "--runtime", "hollow", "--count", "200", "--name", "stop"],
}


def start(argv: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "shoal", *argv, "--server", url],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


def running(log: Path, timeout: float = 30.0) -> None:
    wait_until(
        lambda: b" running" in log.read_bytes(), timeout=timeout, interval=0.05, what="the role running"
    )


@contextlib.contextmanager
def api_for_nodes(role: str, url: str, tmp_path: Path) -> Iterator[None]:
    """Nodes wait for an API actor to record the cluster's id before they run, as a user starts
    them (``shoal api``, then ``shoal node``)."""
    if "node" not in role:
        yield
        return
    log = tmp_path / "api.log"
    api = start(ROLES["api"], url, log)
    try:
        running(log)
        yield
    finally:
        api.kill()
        api.wait()


def cut_off(log: Path) -> None:
    """Until the role has noticed that its NATS server is gone."""
    wait_until(lambda: b"disconnected from NATS" in log.read_bytes(), timeout=10, what="the role cut off")


def stopped_within(process: subprocess.Popen[bytes], sig: signal.Signals, seconds: float, log: Path) -> None:
    started = time.monotonic()
    process.send_signal(sig)
    try:
        code = process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(
            f"still running {seconds:.0f}s after {sig.name}:\n{log.read_text()[-3000:]}"
        ) from None
    assert code in (0, 130), f"exit code {code}"
    assert time.monotonic() - started < seconds
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("nats", ["up", "gone"])
def test_a_role_stops_within_five_seconds(
    role: str, nats: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    log = tmp_path / "role.log"
    with api_for_nodes(role, nats_server.url, tmp_path):
        process = start(ROLES[role], nats_server.url, log)
        try:
            running(log)
            if nats == "gone":
                nats_server.kill()
                cut_off(log)
            stopped_within(process, signal.SIGTERM if role != "api" else signal.SIGINT, 5.0, log)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.parametrize("nats", ["up", "gone"])
def test_a_podman_node_stops_within_five_seconds(
    nats: str, nats_server: NatsServer, tmp_path: Path, podman: str
) -> None:
    name = unique_name("stop")
    log = tmp_path / "node.log"
    with api_for_nodes("node", nats_server.url, tmp_path):
        process = start(["node", "--name", name, "--data-dir", str(tmp_path / "node")], nats_server.url, log)
        try:
            running(log, timeout=60)
            if nats == "gone":
                nats_server.kill()
                cut_off(log)
            stopped_within(process, signal.SIGTERM, 5.0, log)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            remove_node_containers(name)
