"""The Podman runtime: Shoal pods as Podman containers, driven over Podman's REST API.

A single-container pod is one container on Podman's default bridge; a pod with several
containers is a Podman pod whose containers share its network namespace. A restart
replaces the exited container by a new one whose ``shoal.restarts`` label counts the
restarts, so the count survives a restart of the node actor; the exited one stays until the
next restart, for ``logs --previous``. Several clusters' nodes may share one Podman: each
takes only containers labelled with its node name and its cluster's id. podman-py is synchronous, so
every call runs on a thread pool of its own; the event stream has a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import podman.api
import podman.errors
import requests
from podman import PodmanClient

from shoal.errors import (
    ContainerConfigError,
    ImageUnavailable,
    InitContainerFailed,
    RuntimeUnavailable,
    ShoalError,
)
from shoal.models.pod import Pod
from shoal.models.workloads import Container
from shoal.retry import retrying
from shoal.runtime import labels
from shoal.runtime.interface import (
    ContainerObservation,
    ContainerRunState,
    ContainerUsage,
    PodObservation,
    RuntimeEvent,
    RuntimeInfo,
)
from shoal.runtime.podman_service import PodmanService, service_pid
from shoal.runtime.prepared import Mount, PreparedContainer, PreparedPod, Security
from shoal.runtime.terminal import Terminal

log = logging.getLogger(__name__)

T = TypeVar("T")

_STATES: dict[str, ContainerRunState] = {
    "running": "running",
    "paused": "running",
    "stopping": "running",
    "exited": "exited",
    "stopped": "exited",
    "dead": "exited",
    "created": "created",
    "configured": "created",
    "initialized": "created",
}

_INTERESTING_EVENTS = {"died", "start", "remove", "oom", "kill"}

READ_RETRY_SECONDS = 5.0

VANISHED_SECONDS = 2.0
"""A running container whose process is gone this long has exited unseen (its conmon died)."""


def container_name(namespace: str, pod: str, container: str, attempt: int, cluster: str = "") -> str:
    """Podman's name for one incarnation of a pod's container; with the cluster's id in it, two
    clusters on one host may both run a pod called ``db-0``."""
    return f"{podman_pod_name(namespace, pod, cluster)}_{container}_{attempt}"


def podman_pod_name(namespace: str, pod: str, cluster: str = "") -> str:
    return f"shoal_{labels.short(cluster)}_{namespace}_{pod}" if cluster else f"shoal_{namespace}_{pod}"


def _attempt(item: dict[str, Any]) -> int:
    """Which incarnation of its container a listed container is (0: the first)."""
    return int((item.get("Labels") or {}).get(labels.RESTARTS, "0") or 0)


def _epoch(value: Any) -> float | None:
    # The list endpoint reports Go's zero time as a large negative number.
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return None


def _give_group(path: Path, gid: int) -> None:
    """fsGroup on a claim's volume, as Kubernetes' OnRootMismatch: its top folder is made
    group-owned, group-writable and setgid, once (files made in it inherit the group)."""
    try:
        if path.stat().st_gid != gid:
            os.chown(path, -1, gid)
            path.chmod(0o2775)
    except OSError as err:  # a Podman on another host: its paths are not ours to change
        log.warning("fsGroup %d on %s: %s", gid, path, err)


def _interrupt(response: requests.Response) -> None:
    """Wake a thread blocked reading ``response``: shut its socket down (it then closes it)."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class PodmanRuntime:
    def __init__(
        self,
        node: str,
        url: str,
        *,
        workers: int = 16,
        service: PodmanService | None = None,
        publish_address: str = "127.0.0.1",
    ) -> None:
        self.node = node
        self.cluster = ""
        """The id of the node's cluster (set by the node once the API has recorded it): only
        containers of this cluster are this node's, on a host other clusters' nodes may share."""
        self.url = url
        self.publish_address = publish_address
        """Where container ports are published (on random host ports) for services to reach."""
        self.service = service
        """The Podman service this node started, if it did: started again should it die."""
        self.client = PodmanClient(base_url=url, max_pool_size=workers + 4, timeout=120)
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix=f"podman-{node}")
        self._ips: dict[str, str] = {}
        self._closed = False
        self._pids_visible: bool | None = None
        self._vanished: dict[str, float] = {}

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, partial(fn, *args, **kwargs))
        except requests.exceptions.ConnectionError as err:
            self._revive_service()
            raise RuntimeUnavailable(f"the Podman service at {self.url} does not answer: {err}") from None
        except podman.errors.APIError as err:
            if not isinstance(err.__cause__, OSError):
                raise
            # podman-py wraps a refused or broken connection in an APIError: the service is away.
            self._revive_service()
            raise RuntimeUnavailable(f"the Podman service at {self.url} does not answer: {err}") from None

    def _revive_service(self) -> None:
        """Start our Podman service again if it died (containers live on without it)."""
        if self.service is None or self.service.alive():
            return
        log.warning("the Podman service exited; starting it again")
        try:
            # On the event loop's thread on purpose: the service must die with this process.
            self.service.start()
        except ShoalError as err:
            log.error("could not start the Podman service again: %s", err)

    # -- observing ----------------------------------------------------------------------------

    async def info(self) -> RuntimeInfo:
        # Info carries the version too; Podman's /version endpoint takes 0.5 s more.
        data = await self._call(self.client.info)
        host = data.get("host", {})
        return RuntimeInfo(
            name="podman",
            version=str((data.get("version") or {}).get("Version", "")),
            cpu_millis=int(host.get("cpus", 1)) * 1000,
            memory_bytes=int(host.get("memTotal", 0)),
            os=str(host.get("os", "linux")),
            architecture=str(host.get("arch", "")),
            service_address=await self._call(self._gateway),
        )

    def _gateway(self) -> str:
        try:
            subnets = self.client.networks.get("podman").attrs.get("subnets") or []
        except (podman.errors.APIError, podman.errors.NotFound):
            return ""
        return next((str(s.get("gateway")) for s in subnets if s.get("gateway")), "")

    def _list_raw(self, label_filters: list[str]) -> list[dict[str, Any]]:
        # podman-py mangles list-valued filters, so the query is built here.
        response = self.client.api.get(
            "/containers/json",
            params={"all": "true", "filters": json.dumps({"label": label_filters})},
        )
        response.raise_for_status()
        return [item for item in response.json() or [] if self._ours(item.get("Labels") or {})]

    def _ours(self, item_labels: dict[str, str]) -> bool:
        return labels.ours(item_labels, self.node, self.cluster)

    def _observe(self, raw: list[dict[str, Any]]) -> list[PodObservation]:
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        published: dict[tuple[str, str], set[tuple[int, int, str]]] = {}
        for item in raw:
            item_labels = item.get("Labels") or {}
            key = (item_labels.get(labels.NAMESPACE, ""), item_labels.get(labels.POD, ""))
            for port in item.get("Ports") or []:
                protocol = str(port.get("protocol", "tcp")).upper()
                published.setdefault(key, set()).add(
                    (int(port["container_port"]), int(port["host_port"]), protocol)
                )
            if item.get("IsInfra") or labels.CONTAINER not in item_labels:
                continue
            grouped.setdefault(key, []).append(item)
        pods = []
        for (namespace, name), items in grouped.items():
            containers: dict[str, ContainerObservation] = {}
            uid = ""
            infra_pod = ""
            for item in items:
                item_labels = item["Labels"]
                uid = item_labels.get(labels.UID, uid)
                infra_pod = item.get("Pod") or infra_pod
                state = _STATES.get(str(item.get("State", "")), "unknown")
                exit_code = item.get("ExitCode") if item.get("Exited") else None
                if state == "running" and self._vanished_for(item["Id"], item.get("Pid")) > VANISHED_SECONDS:
                    # Its conmon was killed, so Podman never learnt that it exited. (Checked
                    # over a moment: a process that just exited is gone before Podman says so.)
                    state, exit_code = "exited", -1
                observed = ContainerObservation(
                    name=item_labels[labels.CONTAINER],
                    container_id=item["Id"],
                    image=item.get("Image", ""),
                    state=state,
                    attempt=int(item_labels.get(labels.RESTARTS, "0") or 0),
                    exit_code=exit_code,
                    started_at=_epoch(item.get("StartedAt")),
                    finished_at=_epoch(item.get("ExitedAt")),
                )
                current = containers.get(observed.name)
                # Leftovers of an interrupted restart: the newest incarnation is the container.
                if current is None or observed.attempt > current.attempt:
                    containers[observed.name] = observed
            ip = self._pod_ip(infra_pod, containers)
            ports = tuple(sorted(published.get((namespace, name), ())))
            pods.append(PodObservation(namespace, name, uid, self.node, containers, ip, ports))
        return pods

    def _vanished_for(self, container_id: str, pid: object) -> float:
        """Seconds the container's process has been seen gone while Podman says it runs."""
        if not self._process_vanished(pid):
            self._vanished.pop(container_id, None)
            return 0.0
        since = self._vanished.setdefault(container_id, time.monotonic())
        return time.monotonic() - since

    def _process_vanished(self, pid: object) -> bool:
        """Podman says running, but the process is gone (only checkable when we share its PID space)."""
        if self._pids_visible is None:
            local = self.url.startswith("unix://")
            service = service_pid(Path(self.url.removeprefix("unix://"))) if local else None
            self._pids_visible = service is not None and Path(f"/proc/{service}").exists()
        if not self._pids_visible or not isinstance(pid, int) or pid <= 0:
            return False
        return not Path(f"/proc/{pid}").exists()

    def _pod_ip(
        self, podman_pod: str, containers: dict[str, ContainerObservation], *, force: bool = False
    ) -> str:
        """The pod's address on the bridge; ``force``: ask even before any container runs."""
        running = [c for c in containers.values() if c.state == "running"]
        if not running and not force:
            return ""
        cache_key = podman_pod or running[0].container_id
        if cache_key in self._ips:
            return self._ips[cache_key]
        try:
            if podman_pod:
                target = self.client.pods.get(podman_pod).attrs.get("InfraContainerID", "")
            else:
                target = running[0].container_id
            networks = (
                self.client.containers.get(target).attrs.get("NetworkSettings", {}).get("Networks") or {}
            )
        except podman.errors.NotFound:
            return ""
        ip = next((n.get("IPAddress", "") for n in networks.values() if n.get("IPAddress")), "")
        if ip:
            if len(self._ips) > 10_000:
                self._ips.clear()
            self._ips[cache_key] = ip
        return ip

    async def _observe_retrying(self, filters: list[str]) -> list[PodObservation]:
        # Reads are idempotent: ride out a Podman service restart for a few seconds.
        async for attempt in retrying(deadline=READ_RETRY_SECONDS, cap=1.0):
            with attempt:
                return await self._call(lambda: self._observe(self._list_raw(filters)))
        raise AssertionError("unreachable")

    async def list_pods(self) -> list[PodObservation]:
        return await self._observe_retrying([f"{labels.NODE}={self.node}"])

    def _usage(self) -> list[ContainerUsage]:
        ours = {
            item["Id"]: item.get("Labels") or {}
            for item in self._list_raw([f"{labels.NODE}={self.node}"])
            if item.get("State") == "running" and not item.get("IsInfra")
        }
        if not ours:
            return []
        # Without a list of containers the stats endpoint answers for every running one,
        # so a container that exits in between cannot fail the whole request.
        response = self.client.api.get("/containers/stats", params={"stream": "false"})
        response.raise_for_status()
        at = time.monotonic()
        found = []
        for stats in (response.json() or {}).get("Stats") or []:
            item_labels = ours.get(stats.get("ContainerID", ""))
            if item_labels is None or labels.CONTAINER not in item_labels:
                continue
            found.append(
                ContainerUsage(
                    namespace=item_labels.get(labels.NAMESPACE, ""),
                    pod=item_labels.get(labels.POD, ""),
                    container=item_labels[labels.CONTAINER],
                    container_id=stats["ContainerID"],
                    cpu_seconds=int(stats.get("CPUNano") or 0) / 1e9,
                    memory_bytes=int(stats.get("MemUsage") or 0),
                    at=at,
                )
            )
        return found

    async def usage(self) -> list[ContainerUsage]:
        return await self._call(self._usage)

    async def inspect_pod(self, namespace: str, name: str) -> PodObservation | None:
        filters = [f"{labels.NODE}={self.node}", f"{labels.NAMESPACE}={namespace}", f"{labels.POD}={name}"]
        pods = await self._observe_retrying(filters)
        return pods[0] if pods else None

    # -- acting -------------------------------------------------------------------------------

    async def has_image(self, image: str) -> bool:
        return await self._call(self.client.images.exists, image)

    def _load_image(self, archive: Path, image: str) -> None:
        with archive.open("rb") as body:  # streamed from the file: never read whole
            response = self.client.api.post(
                "/images/load", data=body, headers={"Content-Type": "application/x-tar"}, timeout=600
            )
        response.raise_for_status()
        names = response.json().get("Names") or []
        if not names:
            raise ImageUnavailable(f"image {image!r}: podman loaded nothing from the archive")
        if "@" not in image and not self.client.images.exists(image):
            # Stored under another spelling of the same image: give it the pod's name too.
            last = image.rsplit("/", 1)[-1]
            repository, tag = image.rsplit(":", 1) if ":" in last else (image, "latest")
            self.client.images.get(names[0]).tag(repository, tag)

    async def load_image(self, archive: Path, image: str) -> None:
        try:
            await self._call(self._load_image, archive, image)
        except podman.errors.APIError as err:
            why = err.explanation or err
            raise ImageUnavailable(f"image {image!r}: podman could not load it: {why}") from None

    def _ensure_image(self, container: Container, local: frozenset[str] = frozenset()) -> None:
        image = container.image
        policy = container.image_pull_policy
        if image in local:
            return
        present = self.client.images.exists(image)
        if present and policy != "Always":
            return
        if policy == "Never":
            raise ImageUnavailable(f"image {image!r} is not present and imagePullPolicy is Never")
        try:
            self.client.images.pull(image)
            error = "" if self.client.images.exists(image) else "the pull brought nothing"
        except (podman.errors.APIError, podman.errors.ImageNotFound) as err:
            error = str(err)
        if error and present:
            log.warning("pull of %s failed, using the local copy: %s", image, error)
        elif error:
            raise ImageUnavailable(f"image {image!r} is not present and could not be pulled: {error}")

    def _labels(self, pod: Pod, container: str, attempt: int) -> dict[str, str]:
        owner = pod.metadata.owner
        return {
            labels.POD: pod.metadata.name,
            labels.NAMESPACE: pod.metadata.namespace,
            labels.DEPLOYMENT: owner.name if owner else "",
            labels.NODE: self.node,
            **({labels.CLUSTER: self.cluster} if self.cluster else {}),
            labels.CONTAINER: container,
            labels.UID: pod.metadata.uid,
            labels.RESTARTS: str(attempt),
        }

    def _container_spec(
        self,
        pod: Pod,
        container: Container,
        attempt: int,
        podman_pod: str | None,
        prepared: PreparedContainer | None,
        pod_ip: str,
    ) -> dict[str, Any]:
        """The Podman create arguments of one container."""
        if prepared is None:
            env = {env.name: env.value for env in container.env}
        else:
            env = dict(prepared.env) | dict.fromkeys(prepared.pod_ip_env, pod_ip)
        kwargs: dict[str, Any] = {
            "name": container_name(
                pod.metadata.namespace, pod.metadata.name, container.name, attempt, self.cluster
            ),
            "labels": self._labels(pod, container.name, attempt),
            "environment": env,
            "restart_policy": {"Name": "no"},
        }
        # Kubernetes: command replaces the image's entrypoint, args replace its cmd.
        if container.command:
            kwargs["entrypoint"] = container.command
            kwargs["command"] = container.args
        elif container.args:
            kwargs["command"] = container.args
        if container.working_dir:
            kwargs["working_dir"] = container.working_dir
        limits, requests_ = container.resources.limits, container.resources.requests
        if limits.memory:
            kwargs["mem_limit"] = limits.memory
        if limits.cpu:
            kwargs["cpu_period"] = 100_000
            kwargs["cpu_quota"] = limits.cpu * 100
        if requests_.cpu:
            kwargs["cpu_shares"] = max(2, requests_.cpu * 1024 // 1000)
        if container.tty:
            kwargs["tty"] = True
        if container.stdin:
            kwargs["stdin_open"] = True
        if podman_pod:
            kwargs["pod"] = podman_pod  # its ports, hostname and hosts are the Podman pod's
        else:
            kwargs["hostname"] = pod.spec.hostname or pod.metadata.name
            if pod.spec.host_aliases:
                kwargs["extra_hosts"] = {
                    name: alias.ip for alias in pod.spec.host_aliases for name in alias.hostnames
                }
            if container.ports:
                kwargs["ports"] = {
                    f"{p.container_port}/{p.protocol.lower()}": (self.publish_address, 0)
                    for p in container.ports
                }
        if prepared is not None:
            named = [m for m in prepared.mounts if m.kind == "volume" and not m.sub_path]
            kwargs["mounts"] = [self._mount(m, pod) for m in prepared.mounts if m not in named]
            # Named volumes go by name (Podman's API takes them apart from other mounts).
            kwargs["volumes"] = {
                m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
                for m in named
                if self._claim_volume(m.source, pod)
            }
            self._secure(kwargs, container, prepared.security, in_pod=podman_pod is not None)
        return kwargs

    def _mount(self, mount: Mount, pod: Pod) -> dict[str, Any]:
        if mount.kind == "tmpfs":
            spec: dict[str, Any] = {"type": "tmpfs", "source": "tmpfs", "target": mount.target}
            if mount.size:
                spec["size"] = str(mount.size)
            return spec
        # A claim's volume under a subPath is bound by its path on this host.
        source = self._claim_volume(mount.source, pod) if mount.kind == "volume" else mount.source
        if mount.sub_path:
            source = f"{source}/{mount.sub_path}"
            if not Path(source).exists():
                Path(source).mkdir(parents=True, mode=0o777)  # as the kubelet makes a missing subPath
        return {"type": "bind", "source": source, "target": mount.target, "read_only": mount.read_only}

    def _claim_volume(self, name: str, pod: Pod) -> str:
        """The named volume of a claim, made on first use; its path on this host.

        A volume of that name made by another cluster's node on this host is not used: its data
        is that cluster's."""
        if not self.client.volumes.exists(name):
            with contextlib.suppress(podman.errors.APIError):  # made meanwhile by another start
                made_by = {labels.NODE: self.node, labels.NAMESPACE: pod.metadata.namespace}
                if self.cluster:
                    made_by[labels.CLUSTER] = self.cluster
                self.client.volumes.create(name, labels=made_by)
        attrs = self.client.volumes.get(name).attrs
        volume_labels = attrs.get("Labels") or {}
        if not labels.ours({labels.NODE: self.node, **volume_labels}, self.node, self.cluster):
            raise ShoalError(
                f"Podman volume {name} belongs to another Shoal cluster on this host"
                f" (cluster {volume_labels.get(labels.CLUSTER, '')}); remove it or use another claim name"
            )
        mountpoint = str(attrs.get("Mountpoint", ""))
        context = pod.spec.security_context
        if context is not None and context.fs_group is not None and mountpoint:
            _give_group(Path(mountpoint), context.fs_group)
        return mountpoint

    def _secure(
        self, kwargs: dict[str, Any], container: Container, security: Security, *, in_pod: bool
    ) -> None:
        if security.run_as_non_root:
            self._check_non_root(container, security)
        if security.user:
            kwargs["user"] = security.user
        if security.groups:
            kwargs["group_add"] = list(security.groups)
        if security.cap_add:
            kwargs["cap_add"] = list(security.cap_add)
        if security.cap_drop:
            kwargs["cap_drop"] = list(security.cap_drop)
        if security.privileged:
            kwargs["privileged"] = True
        if security.read_only_root:
            kwargs["read_only"] = True
        if security.no_new_privileges:
            kwargs["no_new_privileges"] = True
        if security.seccomp:
            kwargs["seccomp_profile_path"] = security.seccomp
        if security.sysctls and not in_pod:  # a pod's are set on the Podman pod
            kwargs["sysctls"] = dict(security.sysctls)

    def _check_non_root(self, container: Container, security: Security) -> None:
        """Kubernetes' runAsNonRoot: refuse to start a container that would run as root."""
        user = security.user.split(":", 1)[0]
        if not user:
            user = str((self.client.images.get(container.image).attrs.get("Config") or {}).get("User") or "")
            user = user.split(":", 1)[0]
            if user and not user.isdigit():
                raise ContainerConfigError(
                    f"container {container.name}: image has non-numeric user ({user}),"
                    " cannot verify user is non-root (runAsNonRoot)"
                )
        if user in ("", "0"):
            raise ContainerConfigError(
                f"container {container.name} has runAsNonRoot and image will run as root"
            )

    def _create_container(
        self,
        pod: Pod,
        container: Container,
        attempt: int,
        podman_pod: str | None,
        prepared: PreparedPod | None = None,
        pod_ip: str = "",
    ) -> None:
        kwargs = self._container_spec(
            pod,
            container,
            attempt,
            podman_pod,
            prepared.container(container.name) if prepared else None,
            pod_ip,
        )
        if podman_pod is None and prepared is not None and prepared.dns is not None:
            kwargs["dns"] = list(prepared.dns.servers)
            kwargs["dns_search"] = list(prepared.dns.searches)
            kwargs["dns_opt"] = list(prepared.dns.options)
        name = kwargs["name"]
        try:
            created = self.client.containers.create(container.image, **kwargs)
        except podman.errors.APIError as err:
            if "already in use" not in str(err):
                raise
            # A leftover of an interrupted start or restart holds the name: replace it.
            self.client.containers.remove(name, force=True)
            created = self.client.containers.create(container.image, **kwargs)
        created.start()

    def _run_init(
        self, pod: Pod, container: Container, podman_pod: str, prepared: PreparedPod | None, pod_ip: str
    ) -> None:
        """Run an init container to its end; InitContainerFailed unless it exits 0."""
        kwargs = self._container_spec(
            pod, container, 0, podman_pod, prepared.container(container.name) if prepared else None, pod_ip
        )
        kwargs["name"] = podman_pod + f"_init-{container.name}"
        # Without the container label the node never takes it for one of the pod's containers.
        kwargs["labels"] = {k: v for k, v in kwargs["labels"].items() if k != labels.CONTAINER}
        kwargs["labels"][labels.INIT] = container.name
        with contextlib.suppress(podman.errors.NotFound):
            self.client.containers.remove(kwargs["name"], force=True)
        created = self.client.containers.create(container.image, **kwargs)
        try:
            created.start()
            code = created.wait(condition=["exited", "stopped"])
            if code != 0:
                tail = (
                    b"".join(created.logs(stdout=True, stderr=True, tail=3)).decode(errors="replace").strip()
                )
                raise InitContainerFailed(
                    f"init container {container.name} exited with code {code}"
                    + (f": {tail[-200:]}" if tail else "")
                )
        finally:
            with contextlib.suppress(podman.errors.NotFound, podman.errors.APIError):
                created.remove(force=True)

    def _start_pod(self, pod: Pod, attempts: dict[str, int], prepared: PreparedPod | None) -> None:
        local = prepared.local_images if prepared is not None else frozenset()
        for container in [*pod.spec.init_containers, *pod.spec.containers]:
            self._ensure_image(container, local)
        try:
            self._create_pod(pod, attempts, prepared)
        except Exception:
            # All or nothing: a half-started pod would look adoptable after a restart.
            self._remove_pod(pod.metadata.namespace, pod.metadata.name, 0)
            raise

    def _needs_podman_pod(self, pod: Pod, prepared: PreparedPod | None) -> bool:
        # Containers sharing a network, init containers before them, or the pod's IP in an
        # environment variable (known only once the network exists) need a Podman pod.
        pod_ip = prepared is not None and any(c.pod_ip_env for c in prepared.containers.values())
        return len(pod.spec.containers) > 1 or bool(pod.spec.init_containers) or pod_ip

    def _create_pod(self, pod: Pod, attempts: dict[str, int], prepared: PreparedPod | None) -> None:
        podman_pod = None
        pod_ip = ""
        if self._needs_podman_pod(pod, prepared):
            podman_pod = podman_pod_name(pod.metadata.namespace, pod.metadata.name, self.cluster)
            if self.client.pods.exists(podman_pod):
                self.client.pods.remove(podman_pod, force=True)
            pod_labels = self._labels(pod, "", 0)
            del pod_labels[labels.CONTAINER]
            mappings = [
                {
                    "container_port": p.container_port,
                    "host_ip": self.publish_address,
                    "host_port": 0,
                    "protocol": p.protocol.lower(),
                }
                for c in pod.spec.containers
                for p in c.ports
            ]
            options: dict[str, Any] = {
                "labels": pod_labels,
                "portmappings": mappings,
                "hostname": pod.spec.hostname or pod.metadata.name,
            }
            if pod.spec.host_aliases:
                options["hostadd"] = [f"{n}:{a.ip}" for a in pod.spec.host_aliases for n in a.hostnames]
            if prepared is not None and prepared.dns is not None:  # the containers share the pod's
                options["dns_server"] = list(prepared.dns.servers)
                options["dns_search"] = list(prepared.dns.searches)
                options["dns_option"] = list(prepared.dns.options)
            context = pod.spec.security_context
            if context is not None and context.sysctls:
                options["sysctl"] = {s.name: s.value for s in context.sysctls}
            created = self.client.pods.create(podman_pod, **options)
            if pod.spec.init_containers or (
                prepared and any(c.pod_ip_env for c in prepared.containers.values())
            ):
                created.start()  # its infra container: the network, and so the pod's IP, exist now
                pod_ip = self._pod_ip(podman_pod, {}, force=True)
        started: set[str] = set()
        for init in pod.spec.init_containers:
            assert podman_pod is not None
            if init.restart_policy == "Always":  # a sidecar: starts now and keeps running
                self._create_container(pod, init, attempts.get(init.name, 0), podman_pod, prepared, pod_ip)
                started.add(init.name)
            else:
                self._run_init(pod, init, podman_pod, prepared, pod_ip)
        for container in pod.spec.containers:
            if container.name not in started:
                self._create_container(
                    pod, container, attempts.get(container.name, 0), podman_pod, prepared, pod_ip
                )

    async def start_pod(
        self, pod: Pod, attempts: dict[str, int] | None = None, prepared: PreparedPod | None = None
    ) -> None:
        try:
            await self._call(self._start_pod, pod, attempts or {}, prepared)
        except podman.errors.APIError as err:
            raise ShoalError(
                f"podman refused to start pod {pod.metadata.name}: {err.explanation or err}"
            ) from None

    def _restart_container(self, pod: Pod, name: str, attempt: int, prepared: PreparedPod | None) -> None:
        filters = [
            f"{labels.NODE}={self.node}",
            f"{labels.UID}={pod.metadata.uid}",
            f"{labels.CONTAINER}={name}",
        ]
        podman_pod = None
        incarnations = self._list_raw(filters)
        # The newest earlier incarnation stays, exited, for ``logs --previous`` (as the kubelet
        # keeps one); older ones, and a new one an interrupted restart left, go.
        earlier = [item for item in incarnations if _attempt(item) < attempt]
        kept = max(earlier, key=_attempt)["Id"] if earlier else None
        for item in incarnations:
            podman_pod = item.get("Pod") or podman_pod
            if item["Id"] != kept:
                self.client.containers.remove(item["Id"], force=True)
        spec = next(c for c in pod.spec.containers if c.name == name)
        self._ensure_image(spec, prepared.local_images if prepared is not None else frozenset())
        pod_ip = self._pod_ip(podman_pod, {}, force=True) if podman_pod else ""
        self._create_container(pod, spec, attempt, podman_pod or None, prepared, pod_ip)

    async def restart_container(
        self, pod: Pod, container: str, attempt: int, prepared: PreparedPod | None = None
    ) -> None:
        try:
            await self._call(self._restart_container, pod, container, attempt, prepared)
        except podman.errors.APIError as err:
            raise ShoalError(
                f"podman refused to restart {pod.metadata.name}/{container}: {err.explanation or err}"
            ) from None

    async def start_again(self, container_id: str) -> None:
        # A container of a Podman pod starts its pod's infra container first (a dependency).
        try:
            await self._call(lambda: self.client.containers.get(container_id).start())
        except podman.errors.APIError as err:
            raise ShoalError(
                f"podman could not start container {container_id[:12]}: {err.explanation or err}"
            ) from None

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        await self._call(self._stop_quietly, container_id, grace_seconds)

    def _exec(self, container_id: str, command: list[str]) -> int:
        code, _ = self.client.containers.get(container_id).exec_run(command)
        return int(code if code is not None else -1)

    async def exec(self, container_id: str, command: list[str], timeout: float) -> int:
        try:
            return await asyncio.wait_for(self._call(self._exec, container_id, command), timeout)
        except podman.errors.APIError as err:
            raise ShoalError(f"exec in {container_id[:12]} failed: {err.explanation or err}") from None

    def _remove_pod(self, namespace: str, name: str, grace_seconds: float) -> None:
        filters = [f"{labels.NODE}={self.node}", f"{labels.NAMESPACE}={namespace}", f"{labels.POD}={name}"]
        items = self._list_raw(filters)
        running = [item for item in items if item.get("State") in ("running", "paused", "stopping")]
        # Stop in parallel so a pod's grace period is spent once, not once per container.
        threads = [
            threading.Thread(target=self._stop_quietly, args=(item["Id"], grace_seconds), daemon=True)
            for item in running
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pods_seen = set()
        for item in items:
            pods_seen.add(item.get("Pod") or "")
            if item.get("IsInfra"):
                continue  # carries the pod's labels; goes with the pod
            with contextlib.suppress(podman.errors.NotFound):
                self.client.containers.remove(item["Id"], force=True)
            self._ips.pop(item["Id"], None)
        for podman_pod in pods_seen - {""}:
            self._ips.pop(podman_pod, None)
            with contextlib.suppress(podman.errors.NotFound):
                self.client.pods.remove(podman_pod, force=True)

    def _stop_quietly(self, container_id: str, grace_seconds: float) -> None:
        try:
            self.client.containers.get(container_id).stop(timeout=int(max(0, round(grace_seconds))))
        except (podman.errors.NotFound, podman.errors.APIError) as err:
            log.debug("stopping %s: %s", container_id, err)

    async def remove_pod(self, namespace: str, name: str, grace_seconds: float) -> None:
        await self._call(self._remove_pod, namespace, name, grace_seconds)

    # -- streams ------------------------------------------------------------------------------

    async def _container_id(self, namespace: str, name: str, container: str) -> str:
        """The Podman id of one container of a pod (``container`` empty: its only one)."""
        _, observed = await self._container(namespace, name, container)
        return observed.container_id

    async def _container(
        self, namespace: str, name: str, container: str
    ) -> tuple[PodObservation, ContainerObservation]:
        pod = await self.inspect_pod(namespace, name)
        if pod is None or not pod.containers:
            raise ShoalError(f"pod {namespace}/{name} has no containers on node {self.node}")
        if not container:
            container = next(iter(sorted(pod.containers)))
            if len(pod.containers) > 1:
                raise ShoalError(
                    f"pod {name} has several containers ({', '.join(sorted(pod.containers))}):"
                    " choose one with -c"
                )
        observed = pod.containers.get(container)
        if observed is None:
            raise ShoalError(f"pod {name} has no container {container!r}")
        return pod, observed

    def _previous_id(self, pod: PodObservation, current: ContainerObservation) -> str:
        """The incarnation of a container kept from before its last restart."""
        filters = [
            f"{labels.NODE}={self.node}",
            f"{labels.UID}={pod.uid}",
            f"{labels.CONTAINER}={current.name}",
        ]
        earlier = [item for item in self._list_raw(filters) if _attempt(item) < current.attempt]
        if not earlier:
            raise ShoalError(f'previous terminated container "{current.name}" in pod "{pod.name}" not found')
        return str(max(earlier, key=_attempt)["Id"])

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
        container_id = await self._container_id(namespace, name, container)
        # Podman's own client, over this node's service: it speaks Podman's exec protocol
        # (attach, terminal, exit code) so Shoal does not have to.
        flags = [*(["-i"] if stdin else []), *(["-t"] if tty else [])]
        if tty:
            # On a terminal of its own, whose size is the user's: Podman passes it on.
            argv = ["podman", "--url", self.url, "exec", *flags, container_id, *command]
            return await Terminal.spawn(argv, *size)
        return await asyncio.create_subprocess_exec(
            "podman", "--url", self.url, "exec", *flags, container_id, *command,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

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
        pod, observed = await self._container(namespace, name, container)
        container_id = observed.container_id
        if previous:
            container_id = await self._call(self._previous_id, pod, observed)
        params: dict[str, Any] = {"stdout": "true", "stderr": "true", "follow": "true" if follow else "false"}
        if tail is not None:
            params["tail"] = str(tail)
        if since is not None:
            params["since"] = str(int(since))  # whole seconds, as Podman's API takes it
        response = await self._call(
            self.client.api.get, f"/containers/{container_id}/logs", params=params, stream=True
        )
        return self._frames(response, name)

    async def _frames(self, response: requests.Response, name: str) -> AsyncIterator[bytes]:
        """A streamed log response's frames, read by a thread of their own. Only that thread
        touches the response: closing it from here while the thread waits in a read would
        block the event loop until the container next writes (forever, for a quiet one)."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)
        loop = asyncio.get_running_loop()
        stopped = threading.Event()

        def hand_over(item: bytes | None) -> bool:
            """Queue ``item`` for the reader; False once it has gone (or the loop has)."""
            try:
                future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            except RuntimeError:  # the event loop is gone already
                return False
            while not stopped.is_set():
                with contextlib.suppress(TimeoutError):
                    future.result(timeout=0.5)
                    return True
            future.cancel()
            return False

        def pump() -> None:
            try:
                for frame in podman.api.stream_frames(response):
                    if not hand_over(bytes(frame)):
                        return
            except Exception as err:  # the socket is shut down when the reader stops
                log.debug("log stream of %s ended: %s", name, err)
            finally:
                with contextlib.suppress(Exception):
                    response.close()
                if not stopped.is_set():
                    hand_over(None)

        threading.Thread(target=pump, daemon=True, name=f"logs-{name}").start()
        try:
            while (chunk := await queue.get()) is not None:
                yield chunk
        finally:
            stopped.set()
            _interrupt(response)

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        """Container events for this node's pods; the stream is reopened whenever it drops."""
        queue: asyncio.Queue[RuntimeEvent | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        stopping = threading.Event()

        def hand_over(event: RuntimeEvent | None) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, event)
            except RuntimeError:  # the event loop is gone: the node has stopped
                return False
            return True

        def pump() -> None:
            while not stopping.is_set() and not self._closed:
                try:
                    response = self.client.api.get(
                        "/events",
                        params={
                            "stream": "true",
                            "filters": json.dumps(
                                {"type": ["container"], "label": [f"{labels.NODE}={self.node}"]}
                            ),
                        },
                        stream=True,
                    )
                    for line in response.iter_lines():
                        if stopping.is_set():
                            return
                        event = self._parse_event(line)
                        if event is not None and not hand_over(event):
                            return
                except Exception as err:
                    log.debug("podman event stream dropped: %s", err)
                # Tell the consumer to re-list: events may have been missed while disconnected.
                if not hand_over(None):
                    return
                stopping.wait(1.0)

        thread = threading.Thread(target=pump, daemon=True, name=f"podman-events-{self.node}")
        thread.start()
        try:
            while True:
                event = await queue.get()
                yield event if event is not None else RuntimeEvent("", "", "resync")
        finally:
            stopping.set()

    def _parse_event(self, line: bytes) -> RuntimeEvent | None:
        if not line:
            return None
        try:
            data = json.loads(line)
        except ValueError:
            return None
        action = data.get("Action") or data.get("status") or ""
        if action not in _INTERESTING_EVENTS:
            return None
        attributes = (data.get("Actor") or {}).get("Attributes") or {}
        pod, namespace = attributes.get(labels.POD), attributes.get(labels.NAMESPACE)
        if not pod or not namespace or not self._ours(attributes):
            return None
        return RuntimeEvent(namespace, pod, action)

    async def close(self) -> None:
        self._closed = True
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.client.close()
