"""Helpers for tests: a `shoal up` under test control, waiting with deadlines, Podman queries."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from shoal.bus import kv
from shoal.bus.cache import KVCache
from shoal.bus.kv import Bucket, Change, Entry
from shoal.client import ShoalClient
from shoal.models.api import ManifestDocument
from shoal.models.node import LeaseRecord
from shoal.models.pod import Pod
from shoal.security.access import Access
from shoal.security.authority import Authority

T = TypeVar("T")

TEST_IMAGE = "localhost/busybox:latest"
UDP_IMAGE = "localhost/udp-echo:latest"
"""busybox with `udp-echo PORT`: each datagram answered with "<host name> <datagram>"."""


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], grace: float = 30.0) -> None:
    """SIGTERM every process still running, then wait for each; kill one that outlives ``grace``."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def unique_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def wait_for(
    probe: Callable[[], Awaitable[T] | T],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``probe`` (a coroutine function, or a plain predicate) until it returns something
    truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if inspect.isawaitable(last):
            # A probe that hangs fails the wait at its deadline too, saying so.
            remaining = max(deadline - time.monotonic(), interval)
            try:
                last = await asyncio.wait_for(last, remaining + 30.0)
            except TimeoutError:
                raise AssertionError(
                    f"waiting for {what}: the probe itself hung past {timeout:.0f}s"
                ) from None
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last saw: {last!r}")
        await asyncio.sleep(interval)


def wait_until(
    probe: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> T:
    """``wait_for`` for plain (non-async) tests: poll ``probe`` until truthy, fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last saw: {last!r}")
        time.sleep(interval)


async def holds_for(
    probe: Callable[[], Awaitable[bool] | bool], seconds: float, *, what: str = "condition"
) -> None:
    """Assert that ``probe`` stays true for ``seconds`` (that nothing more happens), checking
    it throughout (as ``wait_for`` polls) and failing at the first moment it does not hold."""
    until = time.monotonic() + seconds

    async def still_holding() -> bool:
        held = probe()
        if inspect.isawaitable(held):
            held = await held
        if not held:
            raise AssertionError(f"{what} stopped holding")
        return time.monotonic() > until

    await wait_for(still_holding, timeout=seconds + 30, what=f"{what} to hold for {seconds:g}s")


def documents(text: str, source: str = "test.yaml") -> list[ManifestDocument]:
    return [
        ManifestDocument(source=source, index=i, body=body)
        for i, body in enumerate(yaml.safe_load_all(text), start=1)
        if body is not None
    ]


def deployment(
    name: str,
    *,
    replicas: int = 1,
    command: list[str] | None = None,
    cpu: str = "50m",
    memory: str = "16Mi",
    grace: int = 1,
    extra_container: bool = False,
    restart_policy: str | None = None,
    limits: dict[str, str] | None = None,
    probes: dict[str, Any] | None = None,
) -> str:
    """A Deployment manifest of busybox containers."""
    containers: list[dict[str, Any]] = [
        {
            "name": "main",
            "image": TEST_IMAGE,
            "command": command or ["sh", "-c", "echo started $(hostname); exec httpd -f -p 8080 -h /www"],
            "ports": [{"containerPort": 8080}],
            "resources": {
                "requests": {"cpu": cpu, "memory": memory},
                **({"limits": limits} if limits else {}),
            },
            **(probes or {}),
        }
    ]
    if extra_container:
        containers.append({"name": "sidecar", "image": TEST_IMAGE, "command": ["sleep", "3600"]})
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": grace, "containers": containers}
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
            },
        }
    )


def utilization_metric(resource: str, percent: int) -> dict[str, Any]:
    """An HPA metric: ``resource`` (cpu, memory) at ``percent`` of the pods' requests."""
    target = {"type": "Utilization", "averageUtilization": percent}
    return {"type": "Resource", "resource": {"name": resource, "target": target}}


def backlog_metric(stream: str, consumer: str, per_replica: str) -> dict[str, Any]:
    """An HPA metric: one replica per ``per_replica`` messages pending on a JetStream consumer."""
    selector = {"matchLabels": {"stream": stream, "consumer": consumer}}
    return {
        "type": "External",
        "external": {
            "metric": {"name": "jetstream_consumer_pending", "selector": selector},
            "target": {"type": "AverageValue", "averageValue": per_replica},
        },
    }


def hpa(name: str, metric: dict[str, Any], *, min_replicas: int, max_replicas: int, down: int = 0) -> str:
    """An HPA manifest scaling the deployment of the same name on one metric."""
    return yaml.safe_dump(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "metrics": [metric],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": down}},
            },
        }
    )


async def output(*argv: str, check: bool = False) -> str:
    """A command's standard output, run off the event loop."""
    result = await asyncio.to_thread(subprocess.run, list(argv), capture_output=True, text=True, check=check)
    return result.stdout


def podman_json(*args: str) -> Any:
    out = subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


def node_containers(node: str, **labels: str) -> list[dict[str, Any]]:
    filters = [f"--filter=label=shoal.node={node}"] + [f"--filter=label={k}={v}" for k, v in labels.items()]
    return podman_json("ps", "-a", "--format=json", *filters)


def remove_node_containers(node: str) -> None:
    """Remove whatever a test node left behind in Podman, pods included."""
    for item in node_containers(node):
        subprocess.run(["podman", "rm", "-f", "-t", "0", item["Id"]], capture_output=True, check=False)
    pods = podman_json("pod", "ps", "--format=json", f"--filter=label=shoal.node={node}")
    for pod in pods:
        subprocess.run(["podman", "pod", "rm", "-f", pod["Id"]], capture_output=True, check=False)


class LocalShoal:
    """`shoal up` as a user runs it, in a private data dir, on a free NATS port."""

    def __init__(self, root: Path, node: str, *, extra_args: list[str] | None = None) -> None:
        self.root = root
        self.node = node
        self.data_dir = root / "data"
        self.context = root / "context.yaml"
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = root / "up.log"
        self.roles: dict[str, subprocess.Popen[bytes]] = {}
        self.role_log_offsets: dict[str, int] = {}
        """Where each role's latest process began writing its log."""
        self.extra_nodes: set[str] = set()

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, SHOAL_CONTEXT=str(self.context))

    def start(self, timeout: float = 90.0, manifests: list[Path] | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.context.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "shoal", "up",
            "--data-dir", str(self.data_dir),
            "--nats-port", str(self._port()),
            "--node-name", self.node,
            # The web view only where a test asks for it (a --dashboard-... option): fewer watches.
            *([] if any(a.startswith("--dashboard") for a in self.extra_args) else ["--no-dashboard"]),
            *self.extra_args,
        ]  # fmt: skip
        for manifest in manifests or []:
            argv += ["-f", str(manifest)]
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"shoal up exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            if b"running; press Ctrl-C" in self.log.read_bytes()[offset:]:
                self.url = self.context_entry()["server"]
                return
            time.sleep(0.1)
        raise AssertionError(f"shoal up did not come up within {timeout:.0f}s:\n{self.log.read_text()}")

    def context_entry(self) -> dict[str, str]:
        """The context `shoal up` wrote for this cluster (the current one of its file)."""
        written = yaml.safe_load(self.context.read_text())
        return written["contexts"][written["current"]]

    def _port(self) -> int:
        # Restarts reuse the port the first start got, so clients' URLs stay right.
        return int(self.url.split(",")[0].rsplit(":", 1)[1]) if self.url else 0

    @property
    def access(self) -> Access:
        """The admin's credentials and the CA, as `shoal up` wrote them into its context."""
        context = self.context_entry()
        credentials, ca = context.get("credentials"), context.get("ca")
        return Access(Path(credentials) if credentials else None, Path(ca) if ca else None)

    def access_as(self, role: str, name: str = "") -> Access:
        """Another identity of this cluster (issued if new), as an operator would make it."""
        if self.access.credentials is None:
            return Access()  # an insecure cluster
        authority = Authority(self.data_dir)
        return Access(authority.issue(role, name), authority.ca)

    async def connect(self, *, reconnect: bool = False, access: Access | None = None) -> ShoalClient:
        """A client of this cluster, as the admin unless told otherwise. The command line gives a
        connect 2 s; a test's own client, on a machine busy with the rest of the suite, waits
        longer for the TLS handshake (what it tests comes after)."""
        return await ShoalClient.connect(
            self.url, timeout=10.0, reconnect=reconnect, access=access or self.access
        )

    def role_arguments(self, *args: str) -> list[str]:
        """The credentials a role started by hand needs, as the operator would pass them."""
        role = args[0]
        if role == "node":
            role, name = ("fleet", "") if "--count" in args else ("node", args[args.index("--name") + 1])
        else:
            name = ""
        access = self.access_as(role, name)
        if access.credentials is None or access.ca is None:
            return []
        return ["--credentials", str(access.credentials), "--tls-ca", str(access.ca)]

    def start_role(self, label: str, *args: str, inside: list[str] | None = None) -> subprocess.Popen[bytes]:
        """Run another role process (`shoal node ...`, `shoal scheduler`) against this cluster;
        ``inside``: the command it runs under (a test host's ``ip netns exec NS``)."""
        argv = [
            *(inside or []),
            *(sys.executable, "-m", "shoal", *args, "--server", self.url, *self.role_arguments(*args)),
        ]
        path = self.root / f"{label}.log"
        with path.open("ab") as log:
            self.role_log_offsets[label] = log.tell()
            process = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.roles[label] = process
        return process

    def role_running(self, label: str) -> bool:
        """Whether the latest process started as ``label`` says it is running (its log, since
        it started: records of an earlier process under the same name prove nothing)."""
        log = (self.root / f"{label}.log").read_bytes()[self.role_log_offsets.get(label, 0) :]
        process = self.roles.get(label)
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{label} exited with {process.returncode}:\n{log.decode(errors='replace')}")
        return b" running\n" in log

    def start_node(self, name: str, *extra: str, inside: list[str] | None = None) -> subprocess.Popen[bytes]:
        self.extra_nodes.add(name)
        return self.start_role(
            name, "node", "--name", name, "--data-dir", str(self.root / "nodes" / name), *extra, inside=inside
        )

    def kill_role(self, label: str) -> None:
        process = self.roles.pop(label)
        process.kill()
        process.wait()

    def stop_roles(self) -> None:
        stop_processes(self.roles.values())
        self.roles.clear()
        for node in self.extra_nodes:
            remove_node_containers(node)

    def stop(self, timeout: float = 90.0) -> int | None:
        self.stop_roles()
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"shoal up did not stop within {timeout:.0f}s:\n{self.log.read_text()}"
            ) from None

    def shoal(
        self, *args: str, check: bool = False, timeout: float = 60.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the `shoal` command line against this cluster (``input``: its standard input)."""
        result = subprocess.run(
            [sys.executable, "-m", "shoal", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"shoal {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def shoal_started(self, *args: str) -> subprocess.Popen[str]:
        """The `shoal` command line started, not waited for (a drain to watch while it runs)."""
        return subprocess.Popen(
            [sys.executable, "-m", "shoal", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def web(
    name: str,
    image: str = "localhost/shoal-web:v1",
    *,
    replicas: int = 3,
    surge: int | str = 1,
    unavailable: int | str = 0,
    deadline: int = 600,
    command: list[str] | None = None,
) -> str:
    container = {
        "name": "web",
        "image": image,
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
        "resources": {"requests": {"cpu": "20m", "memory": "8Mi"}},
    }
    if command:
        container["command"] = command
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": deadline,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
            },
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [container]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    return yaml.safe_dump_all([deployment, service])


async def node_port(client: ShoalClient, name: str) -> int:
    service = (await client.services())[f"default.{name}"]
    port = service.spec.ports[0].node_port
    assert port is not None
    return port


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as response:
        return response.read().decode().strip()


class Load:
    """Requests in a loop through the service, counting answers and failures."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self.failed_at: list[float] = []
        """time.monotonic() of each failure."""
        self.last: str = ""
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                self.last = await asyncio.to_thread(get, self.port)
                self.answers[self.last] += 1
            except Exception as err:
                self.failures.append(repr(err))
                self.failed_at.append(time.monotonic())

    async def __aenter__(self) -> Load:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def scheduler_leader(client: ShoalClient) -> LeaseRecord | None:
    """The scheduler's lease as it stands (who leads, in which term)."""
    entry = await (await Bucket.open(client.js, kv.LEASES)).get("scheduler")
    return entry.value if entry else None


class ControlPlaneWatch:
    """While a fault runs: every scheduler lease written by a holder other than ``first``, and
    the most pods of ``app`` (not terminating) that existed at once, both from KV watches."""

    def __init__(self, client: ShoalClient, first: LeaseRecord, app: str) -> None:
        self.client = client
        self.first = first
        self.app = app
        self.takeovers: list[LeaseRecord] = []
        self.most = 0
        self._live: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def _pod_changed(self, key: str, old: Entry[Pod] | None, new: Entry[Pod] | None) -> None:
        if new is not None and new.value.metadata.labels.get("app") == self.app and not new.value.terminating:
            self._live.add(key)
        else:
            self._live.discard(key)
        self.most = max(self.most, len(self._live))

    async def _follow_lease(self) -> None:
        # Every write of the lease, so a standby's very first record (written when it took
        # over, by its own clock) is seen even if a renewal follows at once.
        async for change in (await Bucket.open(self.client.js, kv.LEASES)).watch("scheduler"):
            if (
                isinstance(change, Change)
                and change.value is not None
                and change.value.holder != self.first.holder
            ):
                self.takeovers.append(change.value)

    async def __aenter__(self) -> ControlPlaneWatch:
        pods = KVCache(await Bucket.open(self.client.js, kv.PODS), self._pod_changed)
        self._tasks = [asyncio.create_task(pods.run()), asyncio.create_task(self._follow_lease())]
        await pods.synced.wait()
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in self._tasks:
            task.cancel()
        # A watch that will not stop (its connection wedged) fails the test here, not at the
        # suite's timeout.
        _, pending = await asyncio.wait(self._tasks, timeout=10)
        assert not pending, f"{len(pending)} watch task(s) did not stop within 10s of being cancelled"
