"""Who may do what on a real cluster (`shoal up`, secure by default): the impersonation matrix.

Each cell connects as one identity of the cluster (issued as an operator would) and tries
what that identity must not do; nats-server refuses it (its permissions, from the
generated configuration) or, where the server cannot tell, the actor that answers does. A
cell that is refused also shows, on the same connection, that the identity works where it
should: a refusal of everything would prove nothing.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import nats
import nats.errors
import pytest
import yaml

import shoal
from shoal.bus import kv, subjects
from shoal.bus.codec import encode
from shoal.bus.connection import connect_client, denied
from shoal.bus.kv import Bucket
from shoal.bus.rpc import call
from shoal.client import ShoalClient
from shoal.errors import ClusterUnreachable, Forbidden, RemoteInvalid
from shoal.models.api import Ack, NodeSecretRequest, PodReleaseRequest, SecretBundle
from shoal.models.node import NodeHeartbeat
from shoal.security.access import Access
from shoal.security.authority import Credentials, new_seed
from shoal.security.tls import make_ca
from tests.harness import LocalShoal, deployment, documents, unique_name, wait_for
from tests.test_cluster import wait_running

pytestmark = pytest.mark.podman

OTHER_NODE = "other-node"
"""A node whose identity is issued but that runs nowhere: what node A must not pose as."""


async def as_identity(cluster: LocalShoal, role: str, name: str = ""):  # type: ignore[no-untyped-def]
    return await connect_client(cluster.url, f"test-{role}", access=cluster.access_as(role, name))


async def refused(nc: nats.aio.client.Client, subject: str) -> str:
    """Until the server has said it refused ``subject`` to ``nc``; its words."""

    def said() -> str:
        why = denied(nc)
        return why if subject.lower() in why.lower() else ""

    return await wait_for(said, timeout=10, what=f"the server to refuse {subject}")


async def put_refused(nc: nats.aio.client.Client, bucket: str, key: str) -> None:
    kv = await nc.jetstream(timeout=2).key_value(bucket)
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await kv.put(key, b"forged")
    await refused(nc, f"$KV.{bucket}.{key}")


async def test_a_node_writes_only_what_is_its_own(cluster: LocalShoal, client: ShoalClient) -> None:
    nc = await as_identity(cluster, "node", cluster.node)
    try:
        # What a node may: read the pods bucket, and its own registration.
        pods = await nc.jetstream().key_value(subjects.BUCKET_PODS)
        assert await pods.status() is not None
        own = await (await nc.jetstream().key_value(subjects.BUCKET_NODES)).get(cluster.node)
        assert own.value
        # What it may not: another node's registration, lease-like records of the control plane,
        # desired state, other nodes' metrics.
        await put_refused(nc, subjects.BUCKET_NODES, OTHER_NODE)
        await put_refused(nc, subjects.BUCKET_LEASES, "scheduler")
        await put_refused(nc, subjects.BUCKET_DEPLOYMENTS, "default.forged")
        await put_refused(nc, subjects.BUCKET_ENDPOINTS, "default.forged")
        await put_refused(nc, subjects.BUCKET_METRICS, OTHER_NODE)
        # Nor another node's pod status, nor one outside its own name.
        await put_refused(nc, subjects.BUCKET_POD_STATUS, f"{OTHER_NODE}.default.forged")
        await put_refused(nc, subjects.BUCKET_POD_STATUS, "default.forged")
        # Nor a pod record: not even its own pods' (their records go through the API).
        await put_refused(nc, subjects.BUCKET_PODS, "default.forged")
        assert OTHER_NODE not in await client.nodes()
        assert "default.forged" not in await client.pods()
    finally:
        await nc.close()


async def test_a_node_cannot_beat_for_another_node(cluster: LocalShoal) -> None:
    nc = await as_identity(cluster, "node", cluster.node)
    try:
        beat = NodeHeartbeat(node=OTHER_NODE)
        await nc.publish(subjects.node_heartbeat(OTHER_NODE), encode(beat))
        await nc.flush()
        await refused(nc, subjects.node_heartbeat(OTHER_NODE))
    finally:
        await nc.close()


async def test_a_node_reads_neither_desired_state_nor_anyone_s_replies(cluster: LocalShoal) -> None:
    nc = await as_identity(cluster, "node", cluster.node)
    try:
        # It may see how the bucket is set up (every role checks that as it starts), not read it.
        deployments = await nc.jetstream(timeout=2).key_value(subjects.BUCKET_DEPLOYMENTS)
        with pytest.raises(nats.errors.TimeoutError):
            await deployments.get("default.anything")
        await refused(nc, f"KV_{subjects.BUCKET_DEPLOYMENTS}")
        # Requests to the API, and replies meant for others, are not for a node to see.
        await nc.subscribe(subjects.API_APPLY)
        await refused(nc, subjects.API_APPLY)
        await nc.subscribe("_SHOAL_INBOX.admin.>")
        await refused(nc, "_SHOAL_INBOX.admin.>")
    finally:
        await nc.close()


async def test_a_node_has_only_its_own_stopped_pods_records_deleted(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("released")
    await client.apply(documents(deployment(name)))
    other = await as_identity(cluster, "node", OTHER_NODE)
    own = await as_identity(cluster, "node", cluster.node)
    try:
        [(pod, _)] = await wait_running(client, name, 1)
        entry = await (await Bucket.open(client.js, kv.PODS)).get(pod.key)
        assert entry is not None
        ask = {
            "namespace": "default",
            "pod": pod.metadata.name,
            "uid": pod.metadata.uid,
            "revision": entry.revision,
        }
        # Its own node, but the pod is not marked for deletion: refused by the API.
        with pytest.raises(RemoteInvalid, match="not marked for deletion"):
            await call(
                own, subjects.node_release(cluster.node), PodReleaseRequest(node=cluster.node, **ask), Ack
            )
        # Another node, on its own subject: the pod is not bound to it.
        with pytest.raises(RemoteInvalid, match=f"not to {OTHER_NODE}"):
            await call(
                other, subjects.node_release(OTHER_NODE), PodReleaseRequest(node=OTHER_NODE, **ask), Ack
            )
        # Another node posing as the pod's: refused by the server.
        with pytest.raises(Forbidden, match="permissions violation"):
            await call(
                other, subjects.node_release(cluster.node), PodReleaseRequest(node=cluster.node, **ask), Ack,
                timeout=2,
            )  # fmt: skip
        assert pod.key in await client.pods()
        # The real path: deleted, stopped by its node, and its record gone through the API.
        await client.delete(documents=documents(deployment(name)))
        await wait_for(lambda: _gone(client, pod.key), timeout=30, what="the stopped pod's record gone")
    finally:
        await other.close()
        await own.close()
        await client.delete(documents=documents(deployment(name)))


async def _gone(client: ShoalClient, key: str) -> bool:
    return key not in await client.pods()


async def test_a_node_gets_no_secrets_of_pods_bound_elsewhere(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("secretive")
    manifest = f"""
apiVersion: v1
kind: Secret
metadata: {{name: {name}}}
stringData: {{password: s3cret}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: localhost/busybox:latest
        command: [sleep, "3600"]
        env: [{{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: {name}, key: password}}}}}}]
"""
    await client.apply(documents(manifest))
    other = await as_identity(cluster, "node", OTHER_NODE)
    own = await as_identity(cluster, "node", cluster.node)
    try:
        [(pod, _)] = await wait_running(client, name, 1)
        ask = {"namespace": "default", "pod": pod.metadata.name, "uid": pod.metadata.uid}
        # The node the pod is bound to gets its Secret.
        bundle = await call(
            own,
            subjects.node_secrets(cluster.node),
            NodeSecretRequest(node=cluster.node, **ask),
            SecretBundle,
        )
        assert bundle.secrets[name].data["password"] == b"s3cret"
        # Another node asking on its own subject is refused by the API (the pod is not bound to it)...
        with pytest.raises(RemoteInvalid, match="not for that node"):
            await call(
                other,
                subjects.node_secrets(OTHER_NODE),
                NodeSecretRequest(node=OTHER_NODE, **ask),
                SecretBundle,
            )
        # ... and posing as the pod's node is refused by the server, and said so at once.
        with pytest.raises(Forbidden, match="permissions violation"):
            await call(
                other,
                subjects.node_secrets(cluster.node),
                NodeSecretRequest(node=cluster.node, **ask),
                SecretBundle,
                timeout=2,
            )
        await refused(other, subjects.node_secrets(cluster.node))
    finally:
        await other.close()
        await own.close()
        await client.delete(documents=documents(manifest))


def shoal_as(
    cluster: LocalShoal, credentials: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The command line as a user holding ``credentials`` runs it."""
    env = dict(cluster.env, SHOAL_CREDENTIALS=str(credentials))
    return subprocess.run(
        [sys.executable, "-m", "shoal", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_a_viewer_reads_but_changes_nothing_and_sees_no_secrets(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    credentials = cluster.access_as("viewer").credentials
    assert credentials is not None
    listed = await asyncio.to_thread(shoal_as, cluster, credentials, "get", "nodes")
    assert listed.returncode == 0 and cluster.node in listed.stdout
    versions = await asyncio.to_thread(shoal_as, cluster, credentials, "version")
    assert versions.returncode == 0, versions.stderr
    assert versions.stdout.splitlines()[:2] == [
        f"Client Version: {shoal.__version__}",
        f"Server Version: {shoal.__version__}",
    ]
    assert versions.stdout.splitlines()[2].startswith("NATS Server Version: 2.")
    name = unique_name("viewed")
    manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: b}}\n"
    applied = await asyncio.to_thread(shoal_as, cluster, credentials, "apply", "-f", "-", stdin=manifest)
    assert applied.returncode != 0
    assert applied.stderr.strip().count("\n") == 0, applied.stderr  # one line
    assert "not allowed" in applied.stderr and subjects.API_APPLY in applied.stderr
    assert f"default.{name}" not in await client.config_maps()
    for args in (
        ("get", "secrets"),
        ("scale", "deployment", "x", "--replicas", "2"),
        ("cordon", cluster.node),
    ):
        result = await asyncio.to_thread(shoal_as, cluster, credentials, *args)
        assert result.returncode != 0 and "not allowed" in result.stderr, (args, result.stderr)


async def test_strangers_are_turned_away(cluster: LocalShoal, tmp_path: Path) -> None:
    ca = cluster.access.ca
    assert ca is not None
    # No credentials at all.
    with pytest.raises(ClusterUnreachable, match="refused these credentials"):
        await connect_client(cluster.url, access=Access(ca=ca))
    # A key of its own that the cluster never issued.
    stranger = tmp_path / "stranger.yaml"
    stranger.write_bytes(Credentials("admin", "", new_seed()).dump())
    with pytest.raises(ClusterUnreachable, match="refused these credentials"):
        await connect_client(cluster.url, access=Access(credentials=stranger, ca=ca))
    # Real credentials, but trusting another CA: the server is not who it says.
    make_ca(tmp_path / "other-ca.pem", tmp_path / "other-ca-key.pem")
    with pytest.raises(ClusterUnreachable, match="TLS failed"):
        await connect_client(
            cluster.url, access=Access(cluster.access.credentials, tmp_path / "other-ca.pem")
        )
    # Plaintext to a server that speaks only TLS.
    plain = cluster.url.replace("tls://", "nats://")
    with pytest.raises(Exception):  # noqa: B017 (nats-py says it in several ways; none connects)
        nc = await nats.connect(plain, connect_timeout=2, max_reconnect_attempts=1, allow_reconnect=False)
        await nc.close()


async def test_credentials_are_private_and_the_config_is_generated(cluster: LocalShoal) -> None:
    security = cluster.data_dir / "security"
    for secret in [
        *security.glob("credentials/*.yaml"),
        security / "ca-key.pem",
        *security.glob("servers/*-key.pem"),
    ]:
        assert secret.stat().st_mode & 0o077 == 0, f"{secret} is readable by others"
    context = cluster.context_entry()
    assert context["server"].startswith("tls://") and Path(context["credentials"]).name == "admin.yaml"
    conf = (cluster.data_dir / "nats" / "shoal.conf").read_text()
    assert "tls {" in conf and "include" in conf


async def test_a_new_host_joins_with_credentials_made_for_it(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("joiner")
    made = await asyncio.to_thread(
        cluster.shoal, "credentials", "create", "node", name, "--data-dir", str(cluster.data_dir), check=True
    )
    path = Path(made.stdout.strip())
    assert yaml.safe_load(await asyncio.to_thread(path.read_text))["role"] == "node"
    process = cluster.start_node(name, "--cpu", "1", "--memory", "1Gi")
    try:
        await wait_for(lambda: cluster.role_running(name), timeout=60, what=f"node {name} running")
        await wait_for(lambda: _ready(client, name), timeout=30, what=f"node {name} Ready")
        # Its credentials are its own: it cannot register under another name.
        nc = await as_identity(cluster, "node", name)
        try:
            await put_refused(nc, subjects.BUCKET_NODES, cluster.node)
        finally:
            await nc.close()
    finally:
        process.terminate()
        process.wait(30)
        cluster.roles.pop(name, None)


async def _ready(client: ShoalClient, name: str) -> bool:
    conditions = await client.node_conditions()
    condition = conditions.get(name)
    return condition is not None and condition.ready
