"""The actor roles as commands: ``shoal api``, ``shoal scheduler``, ``shoal node``.

Each joins an existing NATS URL, so roles can run as separate processes on separate hosts.
Every setting is an option with a ``SHOAL_*`` environment variable and a default.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shoal.cli.common import CredentialsOption, ServerOption, TLSCAOption
from shoal.cli.context import default_data_dir, resolve_access, resolve_server
from shoal.errors import ClusterUnreachable, CredentialsRefused, InvalidManifest
from shoal.models.base import check_dns_label, check_label_key, check_label_value
from shoal.models.quantity import parse_cpu, parse_memory
from shoal.models.scheduling import Taint

if TYPE_CHECKING:  # the actors, Podman and NATS are imported when a role runs, not for every command
    from nats.aio.client import Client

    from shoal.actors.base import Actor
    from shoal.runtime.podman import PodmanRuntime
    from shoal.security.access import Access

log = logging.getLogger(__name__)

LogLevelOption = Annotated[
    str, typer.Option("--log-level", envvar="SHOAL_LOG_LEVEL", help="debug, info, warning")
]
ReplicasOption = Annotated[
    int,
    typer.Option(
        "--js-replicas",
        envvar="SHOAL_JS_REPLICAS",
        min=0,
        help="JetStream replicas of buckets it creates; 0: 3 on a cluster of three or more servers, else 1",
    ),
]


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("nats", "urllib3", "podman"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


@dataclass
class Role:
    """How to make a role's actor on a connection, and what to release when it is done."""

    client_name: str
    make: Callable[[Client], Awaitable[Actor]]
    close: Callable[[], None] | None = None
    offline: Callable[[], Awaitable[None]] | None = None
    """What the role does while it cannot reach NATS at start (a node: keep its pods running);
    with it, the role waits for the servers for as long as it takes instead of giving up."""


OFFLINE_AFTER = 5.0
"""Seconds without NATS at start after which a role with an offline mode goes into it."""


async def _connect(url: str, role: Role, access: Access) -> Client:
    """The role's connection; a role with an offline mode runs it while none can be made."""
    from shoal.bus.connection import connect_actor

    if role.offline is None:
        return await connect_actor(url, role.client_name, access=access)

    async def patiently() -> Client:
        while True:
            try:
                return await connect_actor(url, role.client_name, access=access)
            except CredentialsRefused:
                raise
            except ClusterUnreachable as err:
                log.warning("%s; still trying", err)

    connecting = asyncio.ensure_future(patiently())
    done, _ = await asyncio.wait({connecting}, timeout=OFFLINE_AFTER)
    if done:
        return connecting.result()
    keeper = asyncio.ensure_future(role.offline())
    try:
        return await connecting
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await keeper


def run_role(
    server: str | None, role: Role, credentials: Path | None = None, tls_ca: Path | None = None
) -> None:
    """Run one role in this process until it is signalled to stop."""
    from shoal.actors.base import run_until_signalled

    url = resolve_server(server)
    access = resolve_access(credentials, tls_ca)

    async def main() -> int:
        nc = await _connect(url, role, access)
        actor = await role.make(nc)
        return await run_until_signalled(actor)

    try:
        code = asyncio.run(main())
    finally:
        if role.close is not None:
            role.close()
    raise typer.Exit(code)


def api(
    server: ServerOption = None,
    credentials: CredentialsOption = None,
    tls_ca: TLSCAOption = None,
    max_replicas: Annotated[
        int,
        typer.Option(
            "--max-replicas", envvar="SHOAL_MAX_REPLICAS", min=0, help="Replicas one workload may ask"
        ),
    ] = 100_000,
    max_objects: Annotated[
        int,
        typer.Option("--max-objects", envvar="SHOAL_MAX_OBJECTS", min=1, help="Objects one apply may hold"),
    ] = 1_000,
    secret_keys: Annotated[
        Path | None,
        typer.Option(
            "--secret-keys",
            envvar="SHOAL_SECRET_KEYS",
            help="Keyring sealing Secrets at rest, made if missing [default: data dir/secret-keys.yaml]",
        ),
    ] = None,
    rotate_secret_key: Annotated[
        bool,
        typer.Option(
            "--rotate-secret-key", help="Put a new sealing key first in the keyring and reseal every Secret"
        ),
    ] = False,
    service_range: Annotated[
        str,
        typer.Option(
            "--service-cidr", envvar="SHOAL_SERVICE_CIDR", help="The range services' cluster IPs come from"
        ),
    ] = "10.96.0.0/16",
    js_replicas: ReplicasOption = 0,
    log_level: LogLevelOption = "info",
) -> None:
    """Run the API actor: validates and stores what clients apply."""
    setup_logging(log_level)
    run_role(
        server,
        credentials=credentials,
        tls_ca=tls_ca,
        role=api_role(
            max_replicas=max_replicas,
            max_objects=max_objects,
            secret_keys=secret_keys,
            rotate_secret_key=rotate_secret_key,
            service_range=service_range,
            js_replicas=js_replicas,
        ),
    )


def api_role(
    *,
    max_replicas: int,
    max_objects: int,
    secret_keys: Path | None = None,
    rotate_secret_key: bool = False,
    service_range: str = "10.96.0.0/16",
    js_replicas: int = 0,
    **_: Any,
) -> Role:
    # Read (or made) before connecting: a bad keyring is a set-up error, said at once.
    import ipaddress

    from shoal.actors.api.sealing import load_keyring

    try:
        network = ipaddress.IPv4Network(service_range)
    except ValueError as err:
        raise InvalidManifest([f"--service-cidr: {err}"]) from None
    if network.num_addresses < 16:
        raise InvalidManifest([f"--service-cidr: {network} is too small (at least a /28)"])

    keyring = load_keyring(secret_keys or default_data_dir() / "secret-keys.yaml", rotate=rotate_secret_key)

    async def make(nc: Client) -> Actor:
        from shoal.actors.api.actor import AdmissionLimits, ApiActor

        limits = AdmissionLimits(max_replicas=max_replicas, max_objects=max_objects)
        return ApiActor(nc, keyring, replicas=js_replicas, limits=limits, service_range=str(network))

    return Role("shoal-api", make)


def scheduler(
    server: ServerOption = None,
    credentials: CredentialsOption = None,
    tls_ca: TLSCAOption = None,
    lease_ttl: Annotated[
        float,
        typer.Option(
            "--lease-ttl", envvar="SHOAL_SCHEDULER_LEASE_TTL", help="Seconds before a standby leads"
        ),
    ] = 0.6,
    eviction_delay: Annotated[
        float,
        typer.Option(
            "--eviction-delay", envvar="SHOAL_EVICTION_DELAY", help="Seconds NotReady before pods move"
        ),
    ] = 0.5,
    eviction_rate: Annotated[
        float,
        typer.Option(
            "--eviction-rate", envvar="SHOAL_EVICTION_RATE", help="Nodes whose pods move per second and zone"
        ),
    ] = 1.0,
    startup_grace: Annotated[
        float,
        typer.Option(
            "--startup-grace",
            envvar="SHOAL_STARTUP_GRACE",
            help="Seconds after start before nodes not heard yet lose their pods",
        ),
    ] = 10.0,
    forget_nodes_after: Annotated[
        float,
        typer.Option(
            "--forget-nodes-after",
            envvar="SHOAL_FORGET_NODES_AFTER",
            help="Seconds silent before a node's registration is deleted (0: never)",
        ),
    ] = 3600.0,
    burst: Annotated[
        int,
        typer.Option(
            "--burst", envvar="SHOAL_SCHEDULER_BURST", min=1, help="Pods a deployment changes per round"
        ),
    ] = 2000,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy", envvar="SHOAL_SCHEDULER_STRATEGY", help="spread (least allocated) or binpack"
        ),
    ] = "spread",
    js_replicas: ReplicasOption = 0,
    log_level: LogLevelOption = "info",
) -> None:
    """Run the scheduler actor: keeps every deployment's pods and places them on nodes (one replica leads)."""
    setup_logging(log_level)
    run_role(
        server,
        scheduler_role(
            lease_ttl=lease_ttl,
            eviction_delay=eviction_delay,
            eviction_rate=eviction_rate,
            startup_grace=startup_grace,
            forget_nodes_after=forget_nodes_after,
            burst=burst,
            strategy=strategy,
            js_replicas=js_replicas,
        ),
        credentials,
        tls_ca,
    )


def scheduler_role(
    *,
    lease_ttl: float,
    eviction_delay: float,
    eviction_rate: float,
    startup_grace: float,
    forget_nodes_after: float,
    burst: int,
    strategy: str,
    js_replicas: int = 0,
    **_: Any,
) -> Role:
    if strategy not in ("spread", "binpack"):
        raise InvalidManifest([f"--strategy: {strategy!r} is neither spread nor binpack"])

    async def make(nc: Client) -> Actor:
        from shoal.actors.scheduler.actor import SchedulerActor, SchedulerSettings
        from shoal.actors.scheduler.eviction import EvictionPolicy

        settings = SchedulerSettings(
            replicas=js_replicas,
            lease_ttl=lease_ttl,
            eviction=EvictionPolicy(
                delay=eviction_delay,
                rate=eviction_rate,
                startup_grace=startup_grace,
                forget_after=forget_nodes_after,
            ),
            strategy=strategy,  # type: ignore[arg-type]
            burst=burst,
        )
        return SchedulerActor(nc, settings)

    return Role("shoal-scheduler", make)


def service(
    server: ServerOption = None,
    credentials: CredentialsOption = None,
    tls_ca: TLSCAOption = None,
    lease_ttl: Annotated[
        float,
        typer.Option("--lease-ttl", envvar="SHOAL_SERVICE_LEASE_TTL", help="Seconds before a standby leads"),
    ] = 1.5,
    js_replicas: ReplicasOption = 0,
    log_level: LogLevelOption = "info",
) -> None:
    """Run the service actor: keeps each service's endpoints and answers discovery by name."""
    setup_logging(log_level)
    run_role(server, service_role(lease_ttl=lease_ttl, js_replicas=js_replicas), credentials, tls_ca)


def service_role(*, lease_ttl: float, js_replicas: int = 0, **_: Any) -> Role:
    async def make(nc: Client) -> Actor:
        from shoal.actors.service.actor import ServiceActor

        return ServiceActor(nc, replicas=js_replicas, lease_ttl=lease_ttl)

    return Role("shoal-service", make)


def autoscaler(
    server: ServerOption = None,
    credentials: CredentialsOption = None,
    tls_ca: TLSCAOption = None,
    sync_period: Annotated[
        float,
        typer.Option(
            "--sync-period",
            envvar="SHOAL_AUTOSCALER_SYNC_PERIOD",
            min=0.1,
            help="Seconds between evaluations of every HPA",
        ),
    ] = 5.0,
    lease_ttl: Annotated[
        float,
        typer.Option(
            "--lease-ttl", envvar="SHOAL_AUTOSCALER_LEASE_TTL", help="Seconds before a standby leads"
        ),
    ] = 3.0,
    js_replicas: ReplicasOption = 0,
    log_level: LogLevelOption = "info",
) -> None:
    """Run the autoscaler actor: scales deployments from pod metrics and NATS backlogs (HPAs)."""
    setup_logging(log_level)
    run_role(
        server,
        autoscaler_role(sync_period=sync_period, lease_ttl=lease_ttl, js_replicas=js_replicas),
        credentials,
        tls_ca,
    )


def autoscaler_role(*, sync_period: float, lease_ttl: float, js_replicas: int = 0, **_: Any) -> Role:
    async def make(nc: Client) -> Actor:
        from shoal.actors.autoscaler.actor import AutoscalerActor, AutoscalerSettings

        settings = AutoscalerSettings(sync_period=sync_period, lease_ttl=lease_ttl, replicas=js_replicas)
        return AutoscalerActor(nc, settings)

    return Role("shoal-autoscaler", make)


def default_node_name() -> str:
    """This host's name as a DNS label (``Edge-1.example.org`` becomes ``edge-1``)."""
    label = socket.gethostname().split(".")[0].lower()
    label = re.sub(r"[^a-z0-9-]", "-", label).strip("-")[:63]
    return label or "node"


def parse_taint(text: str) -> Taint:
    """kubectl syntax: ``key=value:Effect`` or ``key:Effect``."""
    body, sep, effect = text.rpartition(":")
    key, _, value = body.partition("=")
    try:
        if not sep:
            raise ValueError("no effect")
        return Taint(key=key, value=value, effect=effect)  # type: ignore[arg-type]
    except ValueError:
        effects = "NoSchedule, PreferNoSchedule or NoExecute"
        problem = f"taint {text!r}: use key=value:Effect or key:Effect, Effect {effects}"
        raise InvalidManifest([problem]) from None


def parse_labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError(f"{pair!r} is not key=value")
            labels[check_label_key(key)] = check_label_value(value)
        except ValueError as err:
            raise InvalidManifest([f"--label: {err}"]) from None
    return labels


def node(
    server: ServerOption = None,
    credentials: CredentialsOption = None,
    tls_ca: TLSCAOption = None,
    name: Annotated[
        str | None, typer.Option("--name", envvar="SHOAL_NODE_NAME", help="Node name [default: host name]")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", envvar="SHOAL_NODE_DATA_DIR", help="Node state [default: data dir/nodes/NAME]"
        ),
    ] = None,
    podman_url: Annotated[
        str | None,
        typer.Option(
            "--podman-url", envvar="SHOAL_PODMAN_URL", help="Podman API socket; else one is started"
        ),
    ] = None,
    cpu: Annotated[
        str | None, typer.Option("--cpu", envvar="SHOAL_NODE_CPU", help="CPU to offer, e.g. 2 or 1500m")
    ] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", envvar="SHOAL_NODE_MEMORY", help="Memory to offer, e.g. 4Gi")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="Node label key=value (repeatable)")
    ] = None,
    address: Annotated[
        str, typer.Option("--address", envvar="SHOAL_NODE_ADDRESS", help="Address of this host")
    ] = "127.0.0.1",
    heartbeat: Annotated[
        float,
        typer.Option("--heartbeat", envvar="SHOAL_NODE_HEARTBEAT", help="Seconds between heartbeats"),
    ] = 0.5,
    lease: Annotated[
        float,
        typer.Option("--lease", envvar="SHOAL_NODE_LEASE", help="Seconds silent before the node is NotReady"),
    ] = 2.0,
    backoff_initial: Annotated[
        float,
        typer.Option(
            "--backoff-initial", envvar="SHOAL_BACKOFF_INITIAL", help="First crash-restart delay (s)"
        ),
    ] = 10.0,
    backoff_max: Annotated[
        float,
        typer.Option("--backoff-max", envvar="SHOAL_BACKOFF_MAX", help="Longest crash-restart delay (s)"),
    ] = 300.0,
    workers: Annotated[
        int, typer.Option("--workers", envvar="SHOAL_NODE_WORKERS", min=1, help="Pods synced at once")
    ] = 8,
    stop_pods_on_exit: Annotated[
        bool,
        typer.Option(
            "--stop-pods-on-exit",
            envvar="SHOAL_STOP_PODS_ON_EXIT",
            help="Stop this node's pods when it stops",
        ),
    ] = False,
    stop_pods_after_disconnect: Annotated[
        float | None,
        typer.Option(
            "--stop-pods-after-disconnect",
            envvar="SHOAL_STOP_PODS_AFTER_DISCONNECT",
            help="Stop this node's pods after this many seconds cut off from NATS [default: never]",
        ),
    ] = None,
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime", envvar="SHOAL_NODE_RUNTIME", help="podman, or hollow (in memory, for scale tests)"
        ),
    ] = "podman",
    count: Annotated[int, typer.Option("--count", min=1, help="Hollow nodes to run in this process")] = 1,
    start_latency: Annotated[
        float, typer.Option("--start-latency", help="Hollow: seconds to start a pod")
    ] = 0.0,
    failure_rate: Annotated[
        float, typer.Option("--failure-rate", help="Hollow: share of pod starts that fail")
    ] = 0.0,
    max_pods: Annotated[
        int, typer.Option("--max-pods", envvar="SHOAL_NODE_MAX_PODS", min=1, help="Pods per node")
    ] = 110,
    taint: Annotated[
        list[str] | None, typer.Option("--taint", help="Taint key=value:Effect (repeatable)")
    ] = None,
    balancing: Annotated[
        str,
        typer.Option(
            "--balancing", envvar="SHOAL_BALANCING", help="Service proxy: round-robin or least-connections"
        ),
    ] = "round-robin",
    metrics_interval: Annotated[
        float,
        typer.Option(
            "--metrics-interval",
            envvar="SHOAL_METRICS_INTERVAL",
            min=0,
            help="Seconds between samples of pod CPU and memory (0: none)",
        ),
    ] = 5.0,
    cluster_domain: Annotated[
        str, typer.Option("--cluster-domain", envvar="SHOAL_CLUSTER_DOMAIN", help="Services' DNS domain")
    ] = "cluster.local",
    dns_upstream: Annotated[
        list[str] | None,
        typer.Option(
            "--dns-upstream",
            help="Resolver for names outside the cluster, HOST[:PORT] (repeatable) [default: the host's]",
        ),
    ] = None,
    dns: Annotated[bool, typer.Option("--dns/--no-dns", help="Answer DNS for this node's pods")] = True,
    cluster_ips: Annotated[
        bool,
        typer.Option("--cluster-ips/--no-cluster-ips", help="Serve cluster IPs in the kernel (nftables)"),
    ] = True,
    js_replicas: ReplicasOption = 0,
    log_level: LogLevelOption = "info",
) -> None:
    """Run a node actor: registers this host and runs the pods bound to it with Podman.

    With --runtime hollow, runs --count in-memory nodes in this process instead (for scale tests).
    """
    setup_logging(log_level)
    params = dict(locals())
    run_role(server, node_role(**params), credentials, tls_ca)


def node_role(
    *,
    name: str | None,
    data_dir: Path | None,
    podman_url: str | None,
    cpu: str | None,
    memory: str | None,
    label: list[str] | None,
    address: str,
    heartbeat: float,
    lease: float,
    backoff_initial: float,
    backoff_max: float,
    workers: int,
    stop_pods_on_exit: bool,
    stop_pods_after_disconnect: float | None,
    runtime: str,
    count: int,
    start_latency: float,
    failure_rate: float,
    max_pods: int,
    taint: list[str] | None,
    balancing: str,
    metrics_interval: float,
    cluster_domain: str = "cluster.local",
    dns_upstream: list[str] | None = None,
    dns: bool = True,
    cluster_ips: bool = True,
    js_replicas: int = 0,
    **_: Any,
) -> Role:
    from shoal.actors.node.actor import NodeSettings

    node_name = name or default_node_name()
    try:
        check_dns_label(node_name)
        settings = NodeSettings(
            name=node_name,
            labels=parse_labels(label or []),
            address=address,
            cpu_millis=parse_cpu(cpu) if cpu else None,
            memory_bytes=parse_memory(memory) if memory else None,
            heartbeat_interval=heartbeat,
            lease_seconds=lease,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            workers=workers,
            stop_pods_on_exit=stop_pods_on_exit,
            stop_pods_after_disconnect=stop_pods_after_disconnect,
            replicas=js_replicas,
            max_pods=max_pods,
            balancing=balancing,  # type: ignore[arg-type]
            metrics_interval=metrics_interval,
            taints=[parse_taint(t) for t in taint or []],
            cluster_domain=cluster_domain.strip(".").lower(),
            dns=dns,
            dns_upstream=list(dns_upstream or []),
            cluster_ips=cluster_ips,
        )
    except ValueError as err:
        raise InvalidManifest([f"node settings: {err}"]) from None
    if runtime == "hollow":
        hollow_cpu = settings.cpu_millis or 32_000
        hollow_memory = settings.memory_bytes or 256 * 2**30

        async def make_fleet(nc: Client) -> Actor:
            from shoal.actors.node.fleet import NodeFleet
            from shoal.runtime.memory import MemoryRuntime

            def hollow(node_name: str) -> MemoryRuntime:
                return MemoryRuntime(
                    node_name, cpu_millis=hollow_cpu, memory_bytes=hollow_memory,
                    start_latency=start_latency, failure_rate=failure_rate,
                )  # fmt: skip

            return NodeFleet(nc, settings, count, hollow)

        return Role(f"shoal-fleet-{node_name}", make_fleet)
    if balancing not in ("round-robin", "least-connections"):
        raise InvalidManifest([f"--balancing: {balancing!r} is neither round-robin nor least-connections"])
    if runtime != "podman":
        raise InvalidManifest([f"--runtime: {runtime!r} is neither podman nor hollow"])
    from shoal.runtime.podman_service import PodmanService

    node_dir = data_dir or default_data_dir() / "nodes" / node_name
    settings.data_dir = node_dir
    service = None if podman_url else PodmanService(node_dir)

    def podman_runtime() -> PodmanRuntime:
        from shoal.runtime.podman import PodmanRuntime

        url = podman_url
        if service is not None:
            # On the event loop's thread on purpose: the service dies with the thread that
            # started it (PR_SET_PDEATHSIG), and this one lives as long as the process.
            # It is reused, quickly, when it already answers (the offline keeper started it).
            service.start()
            url = service.url
        assert url is not None
        # Ports are published on the address endpoints advertise, so other hosts reach them.
        return PodmanRuntime(node_name, url, service=service, publish_address=address)

    async def make(nc: Client) -> Actor:
        from shoal.actors.node.actor import NodeActor

        return NodeActor(nc, podman_runtime(), settings)

    async def offline() -> None:
        from shoal.actors.node.offline import ASSIGNMENTS_DIR, Assignments, OfflineKeeper

        runtime = podman_runtime()
        try:
            await OfflineKeeper(runtime, Assignments(node_dir / ASSIGNMENTS_DIR)).run()
        finally:
            await runtime.close()

    return Role(
        f"shoal-node-{node_name}", make, service.stop if service is not None else None, offline=offline
    )
