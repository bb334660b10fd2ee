"""Probe logic: thresholds, and real exec/HTTP/TCP checks against local servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shoal.actors.node.probes import ProbeTracker, check
from shoal.models.workloads import Container, ContainerPort, Probe


def probe(**fields) -> Probe:  # type: ignore[no-untyped-def]
    return Probe.model_validate(fields)


def test_readiness_needs_consecutive_successes_and_failures() -> None:
    tracker = ProbeTracker(
        probe(exec={"command": ["x"]}, successThreshold=2, failureThreshold=3), state=False
    )
    assert [tracker.record(ok) for ok in (True, False, True, True)] == [None, None, None, True]
    assert [tracker.record(ok) for ok in (False, False, True, False, False, False)] == [None] * 5 + [False]


def test_liveness_fails_after_the_threshold_only() -> None:
    tracker = ProbeTracker(probe(exec={"command": ["x"]}, failureThreshold=2), state=True)
    assert [tracker.record(ok) for ok in (False, True, False, False)] == [None, None, None, False]


@pytest.fixture
async def http_server() -> AsyncIterator[int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        status = b"200 OK" if b"/healthy" in request else b"503 Service Unavailable"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_http_and_tcp_checks_against_a_real_server(http_server: int) -> None:
    container = Container(name="c", image="i", ports=[ContainerPort(container_port=http_server, name="web")])

    async def no_exec(command: list[str], timeout: float) -> int:
        raise AssertionError("not an exec probe")

    assert await check(
        probe(httpGet={"path": "/healthy", "port": "web"}), container, "127.0.0.1", no_exec
    ) == (True, "HTTP 200")
    ok, why = await check(
        probe(httpGet={"path": "/sick", "port": http_server}), container, "127.0.0.1", no_exec
    )
    assert not ok and why == "HTTP 503"
    assert (await check(probe(tcpSocket={"port": http_server}), container, "127.0.0.1", no_exec))[0]
    ok, why = await check(probe(tcpSocket={"port": 1}), container, "127.0.0.1", no_exec)
    assert not ok and why


async def test_exec_checks_use_the_exit_code_and_the_timeout() -> None:
    container = Container(name="c", image="i")

    async def run(command: list[str], timeout: float) -> int:
        if command == ["hang"]:
            await asyncio.sleep(10)
        return 0 if command == ["ok"] else 1

    assert await check(probe(exec={"command": ["ok"]}), container, "", run) == (True, "exit code 0")
    assert await check(probe(exec={"command": ["bad"]}), container, "", run) == (False, "exit code 1")
    ok, why = await check(probe(exec={"command": ["hang"]}, timeoutSeconds=1), container, "", run)
    assert not ok and "timed out" in why
