"""An in-memory runtime: "hollow" containers for scale tests, like Kubernetes' kubemark.

It keeps the same books as Podman would (containers with ids, states, exit codes, restart
counts) without running anything, with a configurable start latency and failure rate,
and reports container events the same way. ``crash`` and ``vanish`` let tests break it.

A hollow container runs until stopped, unless its command says how it ends (``fate``), so
Jobs complete on hollow nodes: ``true`` exits 0 at once, ``false`` 1, ``sleep N`` exits 0
after N seconds, ``sh -c "exit K"`` exits K.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from shoal.errors import ShoalError
from shoal.models.pod import Pod
from shoal.runtime.interface import (
    ContainerObservation,
    ContainerUsage,
    PodObservation,
    RuntimeEvent,
    RuntimeInfo,
)
from shoal.runtime.prepared import PreparedPod
from shoal.runtime.terminal import Terminal


@dataclass
class _Pod:
    namespace: str
    name: str
    uid: str
    ip: str
    containers: dict[str, ContainerObservation] = field(default_factory=dict)
    ports: tuple[tuple[int, int, str], ...] = ()
    requests: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Each container's requested (millicores, bytes): hollow usage is a share of them."""


def fate(command: list[str]) -> tuple[float, int] | None:
    """(seconds, exit code) a hollow container with ``command`` lives for, if it ends by itself."""
    match command:
        case ["true"]:
            return 0.0, 0
        case ["false"]:
            return 0.0, 1
        case ["sleep", seconds] if seconds.replace(".", "", 1).isdigit():
            return float(seconds), 0
        case ["sh", "-c", script] if script.startswith("exit ") and script[5:].strip().isdigit():
            return 0.0, int(script[5:].strip())
    return None


class MemoryRuntime:
    _ids = itertools.count(1)

    def __init__(
        self,
        node: str,
        *,
        cpu_millis: int = 32_000,
        memory_bytes: int = 256 * 2**30,
        start_latency: float = 0.0,
        failure_rate: float = 0.0,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` is the time hollow containers live by (tests pass their own)."""
        self.node = node
        self.cluster = ""
        self.clock = clock
        self.cpu_millis = cpu_millis
        self.memory_bytes = memory_bytes
        self.start_latency = start_latency
        self.failure_rate = failure_rate
        self.random = random.Random(seed)
        self.pods: dict[tuple[str, str], _Pod] = {}
        self._events: asyncio.Queue[RuntimeEvent] = asyncio.Queue()
        self.load = 0.5
        """The share of its requests a hollow container uses (``set_load`` per pod)."""
        self.loads: dict[tuple[str, str], float] = {}
        self._cpu_time: dict[str, tuple[float, float]] = {}

    def _container_id(self) -> str:
        return f"hollow{next(self._ids):024x}"

    def _ip(self) -> str:
        n = next(self._ids)
        return f"10.{200 + n // 65536 % 50}.{n // 256 % 256}.{n % 256}"

    async def info(self) -> RuntimeInfo:
        return RuntimeInfo("hollow", "1.0", self.cpu_millis, self.memory_bytes, "linux", "amd64")

    def _observe(self, pod: _Pod) -> PodObservation:
        return PodObservation(
            pod.namespace, pod.name, pod.uid, self.node, dict(pod.containers), pod.ip, pod.ports
        )

    async def list_pods(self) -> list[PodObservation]:
        return [self._observe(pod) for pod in self.pods.values()]

    async def inspect_pod(self, namespace: str, name: str) -> PodObservation | None:
        pod = self.pods.get((namespace, name))
        return self._observe(pod) if pod is not None else None

    async def has_image(self, image: str) -> bool:
        return True  # hollow containers run any image

    async def load_image(self, archive: Path, image: str) -> None:
        return None

    async def start_pod(
        self, pod: Pod, attempts: dict[str, int] | None = None, prepared: PreparedPod | None = None
    ) -> None:
        if self.start_latency:
            await asyncio.sleep(self.start_latency)
        if self.failure_rate and self.random.random() < self.failure_rate:
            raise ShoalError(f"hollow start of {pod.metadata.name} failed (failure rate {self.failure_rate})")
        meta = pod.metadata
        now = self.clock()
        ports = tuple(
            (p.container_port, 20000 + next(self._ids) % 40000, p.protocol)
            for c in pod.spec.containers
            for p in c.ports
        )
        hollow = _Pod(meta.namespace, meta.name, meta.uid, self._ip(), ports=ports)
        for spec in pod.spec.containers:
            requests = spec.resources.requests
            hollow.requests[spec.name] = (requests.cpu or 0, requests.memory or 0)
            hollow.containers[spec.name] = ContainerObservation(
                name=spec.name,
                container_id=self._container_id(),
                image=spec.image,
                state="running",
                attempt=(attempts or {}).get(spec.name, 0),
                started_at=now,
            )
            self._end_as_told(hollow.containers[spec.name].container_id, spec.command)
        self.pods[(meta.namespace, meta.name)] = hollow

    def _end_as_told(self, container_id: str, command: list[str]) -> None:
        ending = fate(command)
        if ending is not None:
            seconds, code = ending
            asyncio.get_running_loop().call_later(seconds, self._exit, container_id, code)

    async def restart_container(
        self, pod: Pod, container: str, attempt: int, prepared: PreparedPod | None = None
    ) -> None:
        hollow = self.pods.get((pod.metadata.namespace, pod.metadata.name))
        if hollow is None:
            raise ShoalError(f"no hollow pod {pod.metadata.name}")
        old = hollow.containers.get(container)
        image = old.image if old else next(c.image for c in pod.spec.containers if c.name == container)
        hollow.containers[container] = ContainerObservation(
            name=container, container_id=self._container_id(), image=image, state="running", attempt=attempt,
            started_at=self.clock(),
        )  # fmt: skip
        spec = next((c for c in pod.spec.containers if c.name == container), None)
        if spec is not None:
            self._end_as_told(hollow.containers[container].container_id, spec.command)

    def _exit(self, container_id: str, code: int) -> None:
        for pod in self.pods.values():
            for name, observed in pod.containers.items():
                if observed.container_id == container_id and observed.state == "running":
                    pod.containers[name] = replace(
                        observed, state="exited", exit_code=code, finished_at=self.clock()
                    )
                    self._events.put_nowait(RuntimeEvent(pod.namespace, pod.name, "died"))

    async def start_again(self, container_id: str) -> None:
        for pod in self.pods.values():
            for name, container in pod.containers.items():
                if container.container_id == container_id:
                    pod.containers[name] = replace(container, state="running", exit_code=None)

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        self._exit(container_id, 143)

    async def exec(self, container_id: str, command: list[str], timeout: float) -> int:
        return 0

    async def open_exec(
        self,
        namespace: str,
        name: str,
        container: str,
        command: list[str],
        *,
        stdin: bool,
        tty: bool,
        size: tuple[int, int] = (0, 0),
    ) -> asyncio.subprocess.Process | Terminal:
        raise ShoalError(f"node {self.node} runs hollow pods: there is no container to run a command in")

    async def remove_pod(self, namespace: str, name: str, grace_seconds: float) -> None:
        if self.pods.pop((namespace, name), None) is not None:
            self._events.put_nowait(RuntimeEvent(namespace, name, "remove"))

    async def logs(
        self,
        namespace: str,
        name: str,
        container: str,
        *,
        follow: bool,
        tail: int | None,
        since: float | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        if (namespace, name) not in self.pods:
            raise ShoalError(f"pod {namespace}/{name} has no containers on node {self.node}")
        return self._no_output()

    async def _no_output(self) -> AsyncIterator[bytes]:
        for chunk in (b"",):
            if chunk:
                yield chunk

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        while True:
            yield await self._events.get()

    async def close(self) -> None:
        return None

    async def usage(self) -> list[ContainerUsage]:
        now = self.clock()
        found = []
        used: dict[str, tuple[float, float]] = {}
        for key, pod in self.pods.items():
            load = self.loads.get(key, self.load)
            for name, observed in pod.containers.items():
                if observed.state != "running":
                    continue
                cpu, memory = pod.requests.get(name, (0, 0))
                # CPU time accrues at the load of each moment, so a new load shows at once.
                seconds, since = self._cpu_time.get(observed.container_id, (0.0, observed.started_at or now))
                seconds += max(0.0, now - since) * cpu / 1000 * load
                used[observed.container_id] = (seconds, now)
                found.append(
                    ContainerUsage(
                        pod.namespace,
                        pod.name,
                        name,
                        observed.container_id,
                        cpu_seconds=seconds,
                        memory_bytes=int(memory * load),
                        at=now,
                    )
                )
        self._cpu_time = used
        return found

    def set_load(self, namespace: str, name: str, load: float) -> None:
        """From now on the pod uses ``load`` times its requests (CPU rate and memory)."""
        self.loads[(namespace, name)] = load

    # -- breaking things, for tests ------------------------------------------------------------

    def crash(self, namespace: str, name: str, code: int = 1) -> None:
        """Every container of the pod exits with ``code``."""
        pod = self.pods.get((namespace, name))
        for observed in list(pod.containers.values()) if pod else []:
            self._exit(observed.container_id, code)

    def vanish(self, namespace: str, name: str) -> None:
        """The pod's containers disappear without a word (as after a host reboot)."""
        self.pods.pop((namespace, name), None)
