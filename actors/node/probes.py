"""Probes, run by the node itself (Podman's own healthchecks need systemd timers).

Kubernetes semantics: a startup probe, while it has not yet succeeded, holds the other two
off, and failing ``failureThreshold`` times kills the container; a liveness probe failing
``failureThreshold`` times in a row kills the container (which then restarts by its
restart policy, with backoff); a readiness probe decides the container's Ready condition,
turning it on after ``successThreshold`` successes in a row and off after
``failureThreshold`` failures. A container without a readiness probe is ready while it
runs (and its startup probe, if any, has succeeded).

``ProbeTracker`` is the pure threshold logic; ``ContainerProber`` runs the checks for one
container incarnation and reports changes through callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shoal.errors import ShoalError
from shoal.models.workloads import Container, Probe

log = logging.getLogger(__name__)

RESTART_AFTER = 1.0
"""Seconds before probes that crashed are started again."""

REPORT_EVERY = 10.0
"""Seconds between two reports of the same failing probe (events, not a flood)."""

Exec = Callable[[list[str], float], Awaitable[int]]
"""Runs a command in the container with a timeout; returns its exit code."""


@dataclass
class ProbeTracker:
    """Consecutive successes and failures against a probe's thresholds."""

    probe: Probe
    state: bool
    successes: int = 0
    failures: int = 0

    def record(self, ok: bool) -> bool | None:
        """Count one result; returns the new state when it flips, else None."""
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if not self.state and self.successes >= self.probe.success_threshold:
                self.state = True
                return True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.state and self.failures >= self.probe.failure_threshold:
                self.state = False
                return False
        return None


def resolve_port(container: Container, port: int | str) -> int:
    if isinstance(port, int):
        return port
    for declared in container.ports:
        if declared.name == port:
            return declared.container_port
    raise ValueError(f"no port named {port!r}")


async def check(probe: Probe, container: Container, host: str, run: Exec) -> tuple[bool, str]:
    """Run a probe once: (success, what went wrong)."""
    timeout = float(probe.timeout_seconds)
    try:
        if probe.exec is not None:
            code = await asyncio.wait_for(run(probe.exec.command, timeout), timeout + 1)
            return code == 0, f"exit code {code}"
        if probe.tcp_socket is not None:
            port = resolve_port(container, probe.tcp_socket.port)
            target = probe.tcp_socket.host or host
            _, writer = await asyncio.wait_for(asyncio.open_connection(target, port), timeout)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return True, ""
        if probe.grpc is not None:
            return await _grpc_check(host, probe.grpc.port, probe.grpc.service, timeout)
        assert probe.http_get is not None
        action = probe.http_get
        port = resolve_port(container, action.port)
        target = action.host or host
        headers = {h.name: h.value for h in action.http_headers}
        return await asyncio.wait_for(
            _http_get(target, port, action.path, https=action.scheme == "HTTPS", headers=headers), timeout
        )
    except TimeoutError:
        return False, f"timed out after {timeout:.0f}s"
    except ShoalError as err:
        return False, err.message
    except (OSError, ValueError) as err:
        return False, str(err) or type(err).__name__


def _unverified_tls() -> ssl.SSLContext:
    # As the kubelet does: an HTTPS probe checks that the server answers, not who it is.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _http_get(
    host: str, port: int, path: str, *, https: bool = False, headers: dict[str, str] | None = None
) -> tuple[bool, str]:
    reader, writer = await asyncio.open_connection(host, port, ssl=_unverified_tls() if https else None)
    try:
        fields = {"Host": f"{host}:{port}", "User-Agent": "shoal-probe", "Accept": "*/*"}
        # Headers the probe names replace the defaults (a Host header picks a virtual host).
        lowered = {name.lower(): name for name in fields}
        for name, value in (headers or {}).items():
            fields.pop(lowered.get(name.lower(), name), None)
            fields[name] = value
        fields["Connection"] = "close"
        lines = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        writer.write(f"GET {path} HTTP/1.1\r\n{lines}\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f"not an HTTP answer: {status_line[:40]!r}"
    code = int(parts[1])
    # Kubernetes: any code from 200 to 399 is a success.
    return 200 <= code < 400, f"HTTP {code}"


async def _grpc_check(host: str, port: int, service: str, timeout: float) -> tuple[bool, str]:
    """The standard gRPC health check (``grpc.health.v1.Health/Check``), as the kubelet runs it."""
    import grpc.aio  # only nodes that run gRPC probes pay for importing it
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(f"{host}:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.aio.AioRpcError as err:
            return False, f"gRPC {err.code().name}: {err.details() or ''}".rstrip(": ")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return status == "SERVING", f"gRPC health {status}"


class ContainerProber:
    """The probes of one running container incarnation."""

    def __init__(
        self,
        container: Container,
        host: str,
        run: Exec,
        *,
        on_ready: Callable[[bool], None],
        on_kill: Callable[[str], None],
        on_failure: Callable[[str, str], None] | None = None,
    ) -> None:
        self.container = container
        self.host = host
        self.run = run
        self.on_ready = on_ready
        self.on_kill = on_kill
        self.on_failure = on_failure
        self._last_report: dict[str, float] = {}
        self.started = container.startup_probe is None
        self.ready = container.readiness_probe is None
        self._tasks: list[asyncio.Task[None]] = []

    def _failed(self, kind: str, why: str) -> None:
        """Report a probe failure, at most once per REPORT_EVERY seconds per probe kind."""
        now = time.monotonic()
        if self.on_failure is not None and now - self._last_report.get(kind, -REPORT_EVERY) >= REPORT_EVERY:
            self._last_report[kind] = now
            self.on_failure(kind, why)

    @property
    def effective_ready(self) -> bool:
        return self.started and self.ready

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name=f"probes {self.container.name}"))

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _run(self) -> None:
        # A probe that crashes (a bug, an unexpected answer) is started again after a pause:
        # a prober that silently stopped would freeze the container's readiness for good.
        while True:
            try:
                startup = self.container.startup_probe
                if not self.started and startup is not None and not await self._until_started(startup):
                    return
                loops = []
                if self.container.liveness_probe is not None:
                    loops.append(self._liveness(self.container.liveness_probe))
                if self.container.readiness_probe is not None:
                    loops.append(self._readiness(self.container.readiness_probe))
                await asyncio.gather(*loops)
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # a prober must never take the node down
                log.exception("probes of %s crashed; starting them again", self.container.name)
                await asyncio.sleep(RESTART_AFTER)

    async def _until_started(self, probe: Probe) -> bool:
        await asyncio.sleep(probe.initial_delay_seconds)
        tracker = ProbeTracker(probe, state=True)  # counts failures towards the kill
        while True:
            ok, why = await check(probe, self.container, self.host, self.run)
            if ok:
                self.started = True
                self.on_ready(self.effective_ready)
                return True
            self._failed("startup", why)
            if tracker.record(False) is False:
                self.on_kill(f"startup probe failed {probe.failure_threshold} times: {why}")
                return False
            await asyncio.sleep(probe.period_seconds)

    async def _liveness(self, probe: Probe) -> None:
        await asyncio.sleep(probe.initial_delay_seconds)
        tracker = ProbeTracker(probe, state=True)
        while True:
            ok, why = await check(probe, self.container, self.host, self.run)
            if not ok:
                self._failed("liveness", why)
            if tracker.record(ok) is False:
                self.on_kill(f"liveness probe failed {probe.failure_threshold} times: {why}")
                return
            await asyncio.sleep(probe.period_seconds)

    async def _readiness(self, probe: Probe) -> None:
        await asyncio.sleep(probe.initial_delay_seconds)
        tracker = ProbeTracker(probe, state=False)
        while True:
            ok, why = await check(probe, self.container, self.host, self.run)
            if not ok:
                self._failed("readiness", why)
            flipped = tracker.record(ok)
            if flipped is not None:
                self.ready = flipped
                self.on_ready(self.effective_ready)
            await asyncio.sleep(probe.period_seconds)
