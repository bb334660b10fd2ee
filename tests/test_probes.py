"""Probe logic: thresholds, and real exec/HTTP/TCP checks against local servers."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

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


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, made with the cryptography library."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert, private = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, private


async def test_https_probes_skip_verification_and_send_their_headers(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        requests.append(head)
        status = b"200 OK" if b"Host: app.example\r\n" in head else b"404 Not Found"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    container = Container(name="c", image="i")

    async def no_exec(command: list[str], timeout: float) -> int:
        raise AssertionError("not an exec probe")

    try:
        headers = [{"name": "Host", "value": "app.example"}, {"name": "X-Probe", "value": "1"}]
        action = {"path": "/healthz", "port": port, "scheme": "HTTPS", "httpHeaders": headers}
        assert await check(probe(httpGet=action), container, "127.0.0.1", no_exec) == (True, "HTTP 200")
        assert b"X-Probe: 1\r\n" in requests[-1] and requests[-1].count(b"Host:") == 1
        plain = {"path": "/healthz", "port": port, "scheme": "HTTPS"}
        assert await check(probe(httpGet=plain), container, "127.0.0.1", no_exec) == (False, "HTTP 404")
    finally:
        server.close()
        await server.wait_closed()


async def test_grpc_probes_ask_the_standard_health_service() -> None:
    import grpc.aio
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    container = Container(name="c", image="i")

    async def no_exec(command: list[str], timeout: float) -> int:
        raise AssertionError("not an exec probe")

    try:
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        await servicer.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await check(probe(grpc={"port": port}), container, "127.0.0.1", no_exec) == (
            True,
            "gRPC health SERVING",
        )
        assert await check(probe(grpc={"port": port, "service": "db"}), container, "127.0.0.1", no_exec) == (
            False,
            "gRPC health NOT_SERVING",
        )
        ok, why = await check(probe(grpc={"port": port, "service": "other"}), container, "127.0.0.1", no_exec)
        assert not ok and why.startswith("gRPC NOT_FOUND")
    finally:
        await server.stop(None)
    ok, why = await check(probe(grpc={"port": port}), container, "127.0.0.1", no_exec)
    assert not ok and why.startswith("gRPC UNAVAILABLE")
