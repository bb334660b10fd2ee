"""Starting a Podman API service of our own, configured for the host it runs on.

Some hosts need adjustments that an ordinary workstation does not, and both are detected,
never assumed: on cgroups v1 (or hybrid) crun refuses to run, so runc is chosen, in a
containers.conf of our own that ``CONTAINERS_CONF`` points the service at (nothing under
/etc changes); and without CAP_SYS_RESOURCE Podman's default ulimits exceed what the
service may grant, so containers get the service's own limits as default ulimits
(``container_ulimits``), learned from the service itself and written to that same file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

from shoal.errors import RuntimeUnavailable
from shoal.processes import die_with_parent

log = logging.getLogger(__name__)

PODMAN_DEFAULT_ULIMIT = 1048576
"""What rootful Podman asks for, for both nofile and nproc, unless told otherwise."""


def cgroups_v2_unified() -> bool:
    return Path("/sys/fs/cgroup/cgroup.controllers").exists()


def choose_oci_runtime() -> str | None:
    """runc where crun cannot work (no unified cgroups v2) or is missing; else Podman's default."""
    has_crun, has_runc = shutil.which("crun") is not None, shutil.which("runc") is not None
    if has_runc and (not has_crun or not cgroups_v2_unified()):
        return "runc"
    return None


def render_containers_conf(ulimits: dict[str, int] | None = None) -> str:
    lines = []
    if ulimits:
        values = ", ".join(f'"{name}={value}:{value}"' for name, value in sorted(ulimits.items()))
        lines += ["[containers]", f"default_ulimits = [{values}]", ""]
    lines.append("[engine]")
    # The file logger works with or without systemd; the node actor follows it over the API.
    lines.append('events_logger = "file"')
    runtime = choose_oci_runtime()
    if runtime:
        lines.append(f'runtime = "{runtime}"')
    return "\n".join(lines) + "\n"


def service_pid(path: Path) -> int | None:
    """PID of the process serving a local unix socket (SO_PEERCRED), if it can be learned."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return None
    pid, _, _ = struct.unpack("3i", creds)
    return pid or None


def container_ulimits(path: Path) -> dict[str, int]:
    """Ulimits containers must be given explicitly, read off the running Podman service.

    Rootful Podman asks for nofile and nproc of 1048576 for every container (infra
    containers of pods included); where the service's own hard limits are lower (no
    CAP_SYS_RESOURCE), runc is refused. The service's limits are what its containers can
    have. On an ordinary host they are high enough and nothing needs setting.
    """
    pid = service_pid(path)
    if pid is None:
        return {}
    try:
        text = Path(f"/proc/{pid}/limits").read_text()
    except OSError:
        return {}
    wanted = {"Max open files": "nofile", "Max processes": "nproc"}
    limits = {}
    for line in text.splitlines():
        for title, name in wanted.items():
            if line.startswith(title):
                hard = line[len(title) :].split()[1]
                if hard != "unlimited" and int(hard) < PODMAN_DEFAULT_ULIMIT:
                    limits[name] = int(hard)
    return limits


def socket_answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.")
        except OSError:
            return False


class PodmanService:
    """``podman system service`` on a socket in ``run_dir``; reused if one already answers there."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.socket_path = run_dir / "podman.sock"
        self.conf_path = run_dir / "containers.conf"
        self.ulimits_path = run_dir / "ulimits.json"
        """The container ulimits the service was found to need, for the next start."""
        self.process: subprocess.Popen[bytes] | None = None
        self.ulimits: dict[str, int] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 20.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if socket_answers(self.socket_path):
            log.info("reusing the Podman service already answering on %s", self.socket_path)
            return
        podman = shutil.which("podman")
        if podman is None:
            raise RuntimeUnavailable("podman is not installed on this host (apt-get install podman runc)")
        if self.ulimits is not None:
            self._launch(podman, render_containers_conf(self.ulimits), timeout)
            return
        # What an earlier start of this node learned: a restarted node (after a crash, say)
        # starts its service once, not twice, and is back within its lease.
        remembered = self._remembered_ulimits()
        self._launch(podman, render_containers_conf(remembered), timeout)
        self.ulimits = container_ulimits(self.socket_path)
        if self.ulimits != (remembered or {}):
            # Learned from the service itself; it reads containers.conf only when it starts.
            log.info(
                "this host needs explicit container ulimits %s; restarting the Podman service", self.ulimits
            )
            self.stop()
            self._launch(podman, render_containers_conf(self.ulimits), timeout)
        with contextlib.suppress(OSError):
            self.ulimits_path.write_text(json.dumps(self.ulimits))

    def _remembered_ulimits(self) -> dict[str, int] | None:
        try:
            found = json.loads(self.ulimits_path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(found, dict) or not all(isinstance(v, int) for v in found.values()):
            return None
        return {str(k): v for k, v in found.items()}

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and socket_answers(self.socket_path)

    def _launch(self, podman: str, conf: str, timeout: float) -> None:
        self.conf_path.write_text(conf)
        self.socket_path.unlink(missing_ok=True)
        env = dict(os.environ, CONTAINERS_CONF=str(self.conf_path))
        with (self.run_dir / "podman-service.log").open("ab") as log_file:
            self.process = subprocess.Popen(
                [podman, "system", "service", "--time=0", f"unix://{self.socket_path}"],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: a Ctrl-C meant for `shoal up` must not kill it before the
                # node actor has stopped its pods through it.
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeUnavailable(
                    f"podman system service exited with code {self.process.returncode};"
                    f" see {self.run_dir / 'podman-service.log'}"
                )
            if socket_answers(self.socket_path):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeUnavailable(
            f"podman system service did not answer on {self.socket_path} within {timeout:.0f}s"
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
