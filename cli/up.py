"""``shoal up``: a whole cluster on this machine, in the foreground.

It starts its own nats-server with JetStream (store under the data dir), then every role
as a child process (API, scheduler, one node actor per node on the local Podman), writes
the context file so other commands find the cluster, applies any manifests given, and
supervises: a role that dies is started again. SIGINT or SIGTERM stops everything in
order: nodes first (they stop their pods), then the control plane, then NATS. Starting
again on the same data dir brings every deployment back, because the desired state lives
in the JetStream store.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from shoal.actors.host import ActorHost, Hosted
from shoal.bus.nats_server import ClusterConfig, NatsServer, NatsServerConfig, ServerTLS
from shoal.cli import roles
from shoal.cli.change import qualified_kind
from shoal.cli.context import default_data_dir, write_context
from shoal.cli.output import errors, table
from shoal.client import ShoalClient
from shoal.errors import ShoalError
from shoal.manifests.files import read_manifests
from shoal.models.base import check_dns_label
from shoal.processes import die_with_parent
from shoal.security.access import Access
from shoal.security.authority import Authority
from shoal.security.permissions import CLUSTER_IDENTITIES

if TYPE_CHECKING:
    from shoal.dashboard.server import BackgroundDashboard

READY_TIMEOUT = 90.0
NODE_STOP_TIMEOUT = 120.0
ROLE_STOP_TIMEOUT = 15.0


@dataclass
class Role:
    name: str
    argv: list[str]
    stop_timeout: float = ROLE_STOP_TIMEOUT
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    output: asyncio.Task[None] | None = field(default=None, repr=False)


def say(message: str) -> None:
    errors.print(f"[bold cyan]shoal[/] {message}")


def nats_servers(
    data_dir: Path, port: int, count: int, authority: Authority | None, host: str = "127.0.0.1"
) -> list[NatsServer]:
    """One nats-server, or ``count`` clustered ones (routes to each other, each its own store;
    client ports from ``port`` up, or free ones when ``port`` is 0), listening on ``host``. With
    an ``authority``, each speaks TLS with a certificate of its own (valid for ``host``) and lets
    in only the identities it issued."""
    servers = _nats_servers(data_dir, port, count, host)
    if authority is not None:
        for server in servers:
            name = server.config.server_name
            cert, key = authority.server_cert(name, [server.config.host, "localhost", socket.gethostname()])
            server.config.tls = ServerTLS(cert=cert, key=key, ca=authority.ca)
            server.config.authorization = authority.authorization
    return servers


def _nats_servers(data_dir: Path, port: int, count: int, host: str) -> list[NatsServer]:
    if count == 1:
        config = NatsServerConfig(store_dir=data_dir / "jetstream", port=port, server_name="shoal", host=host)
        return [NatsServer(config, run_dir=data_dir / "nats")]
    cluster_ports = free_ports(count, host)
    routes = [f"nats://{host}:{p}" for p in cluster_ports]
    servers = []
    for index in range(count):
        config = NatsServerConfig(
            store_dir=data_dir / f"jetstream-{index}",
            port=port + index if port else 0,
            server_name=f"shoal-{index}",
            host=host,
            cluster=ClusterConfig(name="shoal", port=cluster_ports[index], routes=routes),
        )
        servers.append(NatsServer(config, run_dir=data_dir / f"nats-{index}"))
    return servers


async def jetstream_ready(url: str, access: Access, servers: int, deadline: float = 60.0) -> None:
    """Until JetStream is up (a cluster's meta leader elected), nothing can be stored; then the
    buckets and the event stream are made, replicated on three of the ``servers`` started where
    there are three. Their count is known here: what the first server to answer tells of its
    cluster may not list a third that is still joining, and state made then would stay single."""
    import nats
    import nats.errors
    import nats.js.errors

    from shoal.bus.connection import servers_of
    from shoal.bus.state import ensure_state

    nc = await nats.connect(
        servers=servers_of(url),
        connect_timeout=2,
        max_reconnect_attempts=-1,
        error_cb=_quiet,
        **access.options(),
    )
    try:
        started = time.monotonic()
        while True:
            try:
                await nc.jetstream().account_info()
                # Made once, here: every role making (three-way replicated) state at once is slow.
                await ensure_state(nc.jetstream(), 3 if servers >= 3 else 1)
                return
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as err:
                if time.monotonic() - started > deadline:
                    raise ShoalError(
                        f"the nats-server cluster has no JetStream leader after {deadline:.0f}s: {err}"
                    ) from None
                await asyncio.sleep(0.25)
    finally:
        await nc.close()


async def _quiet(_: Exception) -> None:
    return None  # nats-py logs a traceback per failed connect; failing for good is said once


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports no process listens on now (the routes of a cluster must be known before it starts)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalCluster:
    def __init__(
        self,
        data_dir: Path,
        nats_port: int,
        node_names: list[str],
        *,
        keep_pods: bool,
        verbose: bool,
        node_options: list[str],
        autoscaler_options: list[str] | None = None,
        processes: bool = False,
        nats_cluster: int = 1,
        dashboard_port: int | None = None,
        dashboard_changes: bool = False,
        secure: bool = True,
        nats_host: str = "127.0.0.1",
    ) -> None:
        self.data_dir = data_dir
        self.authority = Authority(data_dir) if secure else None
        """Where identities and certificates come from; None: plaintext, and anyone may do anything."""
        self.node_names = node_names
        self.keep_pods = keep_pods
        self.verbose = verbose
        self.node_options = node_options
        self.autoscaler_options = autoscaler_options or []
        self.processes = processes
        """Each role in a child process of its own, instead of all of them in this one."""
        self.host: ActorHost | None = None
        self.closers: list[Callable[[], None]] = []
        self.failed: Hosted | None = None
        self.servers = nats_servers(data_dir, nats_port, nats_cluster, self.authority, nats_host)
        self.stopping = asyncio.Event()
        self.ready = False
        self.early_exit: Role | None = None
        self.roles: list[Role] = []
        self.dashboard_port = dashboard_port
        """Where ``shoal dashboard`` runs beside the cluster (another port if taken); None: not at all."""
        self.dashboard: BackgroundDashboard | None = None
        self.dashboard_changes = dashboard_changes
        """Whether the web view offers scale, rollout, cordon/drain and delete (as the admin)."""
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)

    def access(self, role: str, name: str = "") -> Access:
        """The credentials (made on first use) and CA one role connects with."""
        if self.authority is None:
            return Access()
        return Access(credentials=self.authority.issue(role, name), ca=self.authority.ca)

    def _access_args(self, role: str, name: str = "") -> list[str]:
        access = self.access(role, name)
        if access.credentials is None or access.ca is None:
            return []
        return ["--credentials", str(access.credentials), "--tls-ca", str(access.ca)]

    def _roles(self, url: str) -> list[Role]:
        base = [sys.executable, "-m", "shoal"]
        roles = [
            Role(
                "api",
                [
                    *base, "api", "--server", url, *self._access_args("api"),
                    "--secret-keys", str(self.data_dir / "secret-keys.yaml"),
                ],
            ),
            Role("scheduler", [*base, "scheduler", "--server", url, *self._access_args("scheduler")]),
            Role("service", [*base, "service", "--server", url, *self._access_args("service")]),
            Role(
                "autoscaler",
                [
                    *base, "autoscaler", "--server", url, *self._access_args("autoscaler"),
                    *self.autoscaler_options,
                ],
            ),
        ]  # fmt: skip
        for name in self.node_names:
            argv = [
                *base,
                "node",
                "--server",
                url,
                "--name",
                name,
                "--data-dir",
                str(self.data_dir / "nodes" / name),
                *self._access_args("node", name),
            ]
            if not self.keep_pods:
                argv.append("--stop-pods-on-exit")
            roles.append(Role(f"node/{name}", argv + self.node_options, stop_timeout=NODE_STOP_TIMEOUT))
        return roles

    async def run(self, manifests: list[Path]) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        documents = read_manifests(manifests) if manifests else []
        admin = self.access("admin")
        self._issue_identities()
        for server in self.servers:
            server.start()
        url = ",".join(server.url for server in self.servers)
        # The state is made once, here, before any role starts: roles making it all at once
        # race each other's stream updates (see create_batched_stream).
        await jetstream_ready(url, admin, len(self.servers))
        context = write_context(url, self.data_dir, admin)
        if len(self.servers) == 1:
            say(f"NATS with JetStream at [bold]{url}[/] (store {self.data_dir / 'jetstream'})")
        else:
            say(
                f"a cluster of {len(self.servers)} nats-servers with JetStream at [bold]{url}[/] (replicas 3)"
            )
        self._start_dashboard(url)
        if self.authority is not None:
            say(f"TLS and an identity per role (CA {self.authority.ca}; admin credentials in the context)")
        else:
            say("[yellow]insecure: plaintext, and anyone who reaches the port may do anything[/]")
        say(f"context written to {context}")
        supervisors = [asyncio.create_task(self._supervise_nats(server)) for server in self.servers]
        if self.processes:
            self.roles = self._roles(url)
            supervisors += [asyncio.create_task(self._supervise(role)) for role in self.roles]
        else:
            self._log_to_files()
            self.host = ActorHost(url, self._hosted(), on_restart=self._restarted)
            self.host.start()
        try:
            ready = asyncio.create_task(self._wait_ready(url, documents))
            stop = asyncio.create_task(self.stopping.wait())
            await asyncio.wait({ready, stop}, return_when=asyncio.FIRST_COMPLETED)
            if ready.done():
                ready.result()
                self.ready = True
                say("running; press Ctrl-C to stop")
                await self.stopping.wait()
            else:
                ready.cancel()
                if self.early_exit is not None:
                    raise ShoalError(self._early_exit_report(self.early_exit))
                if self.failed is not None:
                    raise ShoalError(
                        f"{self.failed.name} failed while the cluster was starting: {self.failed.failure}"
                        f" (its log: {self.data_dir / 'logs' / 'shoal.log'})"
                    )
        finally:
            self.stopping.set()
            await self._shutdown()
            for task in supervisors:
                task.cancel()
        return 0

    def _issue_identities(self) -> None:
        """Every identity this cluster's roles use, made before the servers read the list."""
        for role in CLUSTER_IDENTITIES:
            self.access(role)
        for name in self.node_names:
            self.access("node", name)

    def _start_dashboard(self, url: str) -> None:
        """The web view on a thread of this process: one that cannot start is reported, not fatal."""
        if self.dashboard_port is None:
            return
        from shoal.dashboard.server import BackgroundDashboard, permissions_for

        # An admin's identity only when changes were asked for: a view needs no more than a viewer's.
        access = self.access("admin" if self.dashboard_changes else "viewer")
        try:
            permissions = permissions_for(access, allow_changes=self.dashboard_changes)
            self.dashboard = BackgroundDashboard(
                url, port=self.dashboard_port, access=access, permissions=permissions
            )
        except ShoalError as err:
            say(f"[yellow]no dashboard: {escape(err.message)}[/]")
            return
        self.dashboard.start()
        mode = "changes allowed, each confirmed" if self.dashboard_changes else "read-only"
        say(f"dashboard at [bold]{self.dashboard.url}[/] ({mode})")

    async def _wait_ready(self, url: str, documents: list) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        client = await ShoalClient.connect(url, access=self.access("admin"))
        try:
            while True:
                nodes = await client.nodes()
                try:
                    await client.apply([])
                    api_ready = True
                except ShoalError:
                    api_ready = False
                if api_ready and all(name in nodes for name in self.node_names):
                    break
                if time.monotonic() > deadline:
                    raise ShoalError(
                        f"the cluster did not come up within {READY_TIMEOUT:.0f}s;"
                        f" see the logs in {self.data_dir / 'logs'}"
                    )
                await asyncio.sleep(0.2)
            say(f"{len(self.node_names)} node(s) ready: {', '.join(self.node_names)}")
            if documents:
                reply = await client.apply(documents)
                for warning in reply.warnings:
                    say(f"[yellow]warning:[/] {escape(warning)}")
                for result in reply.results:
                    say(f"{qualified_kind(result.kind)}/{result.name} {result.action}")
                await self._wait_pods(client, deadline)
        finally:
            await client.close()

    async def _wait_pods(self, client: ShoalClient, deadline: float) -> None:
        """Until every deployment is fully ready (or the deadline passes), then show the pods."""
        while time.monotonic() < deadline:
            deployments = await client.deployments()
            statuses = await client.deployment_statuses()
            if all(
                (s := statuses.get(key)) is not None and s.ready_replicas >= d.spec.desired_replicas
                for key, d in deployments.items()
            ):
                break
            await asyncio.sleep(0.25)
        pods = await client.pods()
        pod_statuses = await client.pod_statuses()
        rows = []
        for pod in sorted(pods.values(), key=lambda p: p.key):
            status = pod_statuses.get(pod.key)
            rows.append(
                [
                    pod.metadata.namespace,
                    pod.metadata.name,
                    status.phase if status else "Pending",
                    (status.pod_ip if status else "") or "-",
                    pod.node_name or "-",
                ]
            )
        table(["NAMESPACE", "POD", "PHASE", "IP", "NODE"], rows)

    async def _supervise_nats(self, server: NatsServer) -> None:
        """nats-server is a role too: should it die, start it again on the same port and store."""
        restarts = 0
        while not self.stopping.is_set():
            await asyncio.sleep(0.25)
            if self.stopping.is_set() or server.running():
                continue
            restarts += 1
            code = server.process.returncode if server.process else None
            say(f"[yellow]nats-server exited (code {code}); starting it again on the same store[/]")
            try:
                server.start()
            except ShoalError as err:
                say(f"[red]could not start nats-server again: {escape(err.message)}[/]")
                await asyncio.sleep(min(0.5 * 2**restarts, 10.0))

    async def _supervise(self, role: Role) -> None:
        while not self.stopping.is_set():
            await self._spawn(role)
            assert role.process is not None
            code = await role.process.wait()
            if role.output is not None:
                with contextlib.suppress(Exception):
                    await role.output
            if self.stopping.is_set():
                return
            if not self.ready:
                # Dying before the cluster is even up is a set-up problem: report it, don't loop.
                self.early_exit = role
                self.stopping.set()
                return
            role.restarts += 1
            delay = min(0.5 * 2 ** (role.restarts - 1), 10.0)
            say(f"[yellow]{role.name} exited with code {code}; starting it again in {delay:.1f}s[/]")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)

    def _hosted(self) -> list[Hosted]:
        """The roles as actors of this process, from the same options their commands take."""
        from shoal.cli.app import app, register

        register(["api", "scheduler", "service", "autoscaler", "node"])
        commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]

        def options(command: str, argv: list[str]) -> dict:
            try:
                return commands[command].make_context(command, argv).params
            except typer.TyperException as err:
                raise ShoalError(f"options for the {command} role: {err.format_message()}") from None

        hosted = [
            Hosted(
                "api",
                roles.api_role(
                    **options("api", ["--secret-keys", str(self.data_dir / "secret-keys.yaml")])
                ).make,
                access=self.access("api"),
            ),
            Hosted(
                "scheduler",
                roles.scheduler_role(**options("scheduler", [])).make,
                access=self.access("scheduler"),
            ),
            Hosted(
                "service", roles.service_role(**options("service", [])).make, access=self.access("service")
            ),
            Hosted(
                "autoscaler",
                roles.autoscaler_role(**options("autoscaler", self.autoscaler_options)).make,
                access=self.access("autoscaler"),
            ),
        ]
        for name in self.node_names:
            argv = ["--name", name, "--data-dir", str(self.data_dir / "nodes" / name)]
            if not self.keep_pods:
                argv.append("--stop-pods-on-exit")
            role = roles.node_role(**options("node", [*argv, *self.node_options]))
            if role.close is not None:
                self.closers.append(role.close)
            hosted.append(Hosted(f"node/{name}", role.make, group="nodes", access=self.access("node", name)))
        return hosted

    def _restarted(self, hosted: Hosted, why: str) -> None:
        if not self.ready:
            # Failing before the cluster is even up is a set-up problem: report it, don't loop.
            self.failed = hosted
            self.stopping.set()
            return
        say(f"[yellow]{hosted.name} failed ({escape(why)}); starting it again[/]")

    def _log_to_files(self) -> None:
        """The actors' logs in <data dir>/logs/shoal.log; warnings and errors here too (-v: all)."""
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        to_file = logging.FileHandler(self.data_dir / "logs" / "shoal.log")
        to_file.setFormatter(formatter)
        to_terminal = logging.StreamHandler(sys.stderr)
        to_terminal.setFormatter(formatter)
        to_terminal.setLevel(logging.INFO if self.verbose else logging.WARNING)
        logging.basicConfig(level=logging.INFO, handlers=[to_file, to_terminal], force=True)
        for noisy in ("nats", "urllib3", "podman"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    def _early_exit_report(self, role: Role) -> str:
        log_path = self._log_path(role)
        lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
        tail = [line for line in lines if line.strip()][-8:]
        return (
            f"{role.name} exited while the cluster was starting; its last words ({log_path}):\n"
            + "\n".join(tail)
        )

    def _log_path(self, role: Role) -> Path:
        return self.data_dir / "logs" / f"{role.name.replace('/', '-')}.log"

    async def _spawn(self, role: Role) -> None:
        role.process = await asyncio.create_subprocess_exec(
            *role.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches `shoal up` alone; it stops the roles in order
            preexec_fn=die_with_parent,
        )
        role.output = asyncio.create_task(self._relay(role))

    async def _relay(self, role: Role) -> None:
        """Keep each role's log in a file, and show its warnings and errors here."""
        assert role.process is not None and role.process.stdout is not None
        with self._log_path(role).open("a") as log_file:
            async for raw in role.process.stdout:
                line = raw.decode(errors="replace").rstrip()
                log_file.write(line + "\n")
                log_file.flush()
                if self.verbose or " WARNING " in line or " ERROR " in line or " CRITICAL " in line:
                    errors.print(f"[dim]{role.name:>12} |[/] {escape(line)}")

    async def _shutdown(self) -> None:
        say("stopping")
        if self.dashboard is not None:
            await asyncio.to_thread(self.dashboard.stop)
        if self.host is not None:
            await self.host.stop(order=["nodes", "control"])
            for close in self.closers:
                close()
        nodes = [r for r in self.roles if r.name.startswith("node/")]
        control = [r for r in self.roles if not r.name.startswith("node/")]
        await asyncio.gather(*(self._stop_role(r) for r in nodes))
        await asyncio.gather(*(self._stop_role(r) for r in control))
        await asyncio.gather(*(asyncio.to_thread(server.stop) for server in self.servers))
        say("stopped")

    async def _stop_role(self, role: Role) -> None:
        process = role.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), role.stop_timeout)
        except TimeoutError:
            say(f"[yellow]{role.name} did not stop within {role.stop_timeout:.0f}s; killing it[/]")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def up(
    filename: Annotated[
        list[Path] | None, typer.Option("--filename", "-f", help="Manifests to apply once the cluster is up.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="SHOAL_DATA_DIR",
            help="State of this cluster [default: ~/.local/share/shoal]",
        ),
    ] = None,
    nats_port: Annotated[
        int,
        typer.Option("--nats-port", envvar="SHOAL_NATS_PORT", help="NATS client port; 0 picks a free one"),
    ] = 4222,
    nats_host: Annotated[
        str,
        typer.Option(
            "--nats-host",
            envvar="SHOAL_NATS_HOST",
            help="Address nats-server listens on: one other hosts' roles reach (TLS only); default loopback",
        ),
    ] = "127.0.0.1",
    nodes: Annotated[int, typer.Option("--nodes", min=1, help="Node actors to run on the local Podman.")] = 1,
    node_name: Annotated[
        str | None, typer.Option("--node-name", help="Name of the (first) node [default: host name]")
    ] = None,
    keep_pods: Annotated[
        bool, typer.Option("--keep-pods", help="Leave pods running when the cluster stops.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every role's log, not just warnings.")
    ] = False,
    node_option: Annotated[
        list[str] | None,
        typer.Option("--node-option", help="Extra option for every node actor, e.g. --node-option=--lease=5"),
    ] = None,
    autoscaler_option: Annotated[
        list[str] | None,
        typer.Option(
            "--autoscaler-option",
            help="Extra option for the autoscaler, e.g. --autoscaler-option=--sync-period=1",
        ),
    ] = None,
    processes: Annotated[
        bool,
        typer.Option(
            "--processes",
            envvar="SHOAL_UP_PROCESSES",
            help="Run each role as a child process of its own (default: all of them in this one).",
        ),
    ] = False,
    nats_cluster: Annotated[
        int,
        typer.Option(
            "--nats-cluster",
            min=1,
            max=7,
            help="Clustered nats-servers to run (3: every bucket and stream kept on three)",
        ),
    ] = 1,
    no_dashboard: Annotated[
        bool, typer.Option("--no-dashboard", help="Do not serve the web view (shoal dashboard).")
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Plaintext NATS that lets anyone in (loopback only; default: TLS, an identity per role).",
        ),
    ] = False,
    dashboard_port: Annotated[
        int,
        typer.Option(
            "--dashboard-port",
            envvar="SHOAL_DASHBOARD_PORT",
            min=0,
            max=65535,
            help="Port of the web view, on loopback; a free one if it is taken.",
        ),
    ] = 8080,
    dashboard_allow_changes: Annotated[
        bool,
        typer.Option(
            "--dashboard-allow-changes",
            help="Let the web view scale, roll out, cordon/drain and delete, each confirmed (as the admin).",
        ),
    ] = False,
) -> None:
    """Start a local cluster in the foreground: nats-server, the control plane and a node on Podman."""
    base = node_name or roles.default_node_name()
    try:
        check_dns_label(base)
    except ValueError as err:
        raise ShoalError(f"--node-name: {err}") from None
    try:
        address = ipaddress.ip_address(nats_host)
    except ValueError:
        raise ShoalError(f"--nats-host: {nats_host!r} is not an IP address of this host") from None
    if insecure and not address.is_loopback:
        raise ShoalError(
            f"--nats-host {nats_host}: --insecure (plaintext, no users) listens on loopback only"
        )
    names = [base] if nodes == 1 else [f"{base}-{i}" for i in range(1, nodes + 1)]
    cluster = LocalCluster(
        (data_dir or default_data_dir()).resolve(),
        nats_port,
        names,
        keep_pods=keep_pods,
        verbose=verbose,
        node_options=node_option or [],
        autoscaler_options=autoscaler_option or [],
        processes=processes,
        nats_cluster=nats_cluster,
        dashboard_port=None if no_dashboard else dashboard_port,
        dashboard_changes=dashboard_allow_changes,
        secure=not insecure,
        nats_host=nats_host,
    )
    code = asyncio.run(cluster.run(filename or []))
    raise typer.Exit(code)
