"""Pods as Kubernetes files write them, run for real on Podman: ConfigMaps and Secrets as
environment and files, init containers and sidecars, security contexts, claims, bare pods."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import yaml

from shoal.client import ShoalClient
from shoal.models.pod import PodStatus
from tests.harness import TEST_IMAGE, LocalShoal, documents, get, node_containers, podman_json, wait_for

SHOAL_UP_ARGS = ["--node-option=--backoff-initial=1", "--node-option=--backoff-max=4"]


def manifest(*objects: dict[str, Any]) -> str:
    return yaml.safe_dump_all(objects)


def app(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "test"}},
                "spec": {"terminationGracePeriodSeconds": 1, **spec},
            },
        },
    }


def busybox(name: str = "main", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": TEST_IMAGE, "command": ["sleep", "3600"], **fields}


def run_in(container_id: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "exec", container_id, *command], capture_output=True, text=True, timeout=30
    )


def exec_in(container_id: str, *command: str) -> str:
    done = run_in(container_id, *command)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


def remove_volume(name: str) -> None:
    subprocess.run(["podman", "volume", "rm", "-f", name], capture_output=True)


async def status_of(client: ShoalClient, app_name: str) -> PodStatus | None:
    for pod in (await client.pods()).values():
        if pod.metadata.labels.get("app") == app_name and not pod.terminating:
            _, status = await client.pod(pod.metadata.namespace, pod.metadata.name)
            return status
    return None


async def running(client: ShoalClient, app_name: str, timeout: float = 60) -> PodStatus:
    async def ready() -> PodStatus | None:
        status = await status_of(client, app_name)
        return status if status is not None and status.ready else None

    return await wait_for(ready, timeout=timeout, what=f"a Ready pod of {app_name}")


def container_of(node: str, status: PodStatus, name: str = "main") -> str:
    """The running incarnation (a restarted container's previous one is kept, exited)."""
    found = node_containers(node, **{"shoal.pod": status.name, "shoal.container": name})
    return str(max(found, key=lambda c: int(c["Labels"]["shoal.restarts"]))["Id"])


async def waiting_reason(client: ShoalClient, app_name: str, reason: str) -> str:
    async def shown() -> str | None:
        status = await status_of(client, app_name)
        if status is None:
            return None
        for container in status.container_statuses:
            if container.state.status == "waiting" and container.state.reason == reason:
                return container.state.message or reason
        return None

    return await wait_for(shown, timeout=30, what=f"{app_name} waiting with {reason}")


async def test_config_maps_and_secrets_reach_env_and_files(cluster: LocalShoal, client: ShoalClient) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config"},
        "data": {"GREETING": "hello", "app.conf": "level=1\n"},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "app-secret"},
        "stringData": {"password": "s3cret"},
    }
    container = busybox(
        env=[
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "GREETING"}}},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {
                "name": "MEMORY",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {"name": "MESSAGE", "value": "$(GREETING) from $(POD_NAME)"},
        ],
        envFrom=[{"prefix": "CFG_", "configMapRef": {"name": "app-config"}}],
        resources={"limits": {"memory": "32Mi"}},
        volumeMounts=[
            {"name": "config", "mountPath": "/etc/app"},
            {"name": "secret", "mountPath": "/etc/secret"},
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "info", "mountPath": "/etc/info"},
        ],
    )
    deployment = app(
        "configured",
        {
            "containers": [container],
            "volumes": [
                {"name": "config", "configMap": {"name": "app-config"}},
                {"name": "secret", "secret": {"secretName": "app-secret", "defaultMode": 0o400}},
                {"name": "scratch", "emptyDir": {}},
                {
                    "name": "info",
                    "downwardAPI": {
                        "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
                    },
                },
            ],
        },
    )
    text = manifest(config, secret, deployment)
    try:
        await client.apply(documents(text))
        status = await running(client, "configured")
        container_id = container_of(cluster.node, status)
        env = dict(line.split("=", 1) for line in exec_in(container_id, "env").splitlines() if "=" in line)
        assert env["GREETING"] == "hello" and env["DB_PASSWORD"] == "s3cret"
        assert env["POD_NAME"] == status.name and env["POD_IP"] == status.pod_ip != ""
        assert env["MEMORY"] == "32"
        assert env["MESSAGE"] == f"hello from {status.name}"
        assert env["CFG_GREETING"] == "hello" and "CFG_app.conf" in env
        assert exec_in(container_id, "cat", "/etc/app/app.conf") == "level=1\n"
        assert exec_in(container_id, "cat", "/etc/secret/password") == "s3cret"
        assert exec_in(container_id, "stat", "-L", "-c", "%a", "/etc/secret/password").strip() == "400"
        assert 'app="configured"' in exec_in(container_id, "cat", "/etc/info/labels")
        exec_in(container_id, "sh", "-c", "echo kept > /scratch/f")
        denied = run_in(container_id, "sh", "-c", "echo x > /etc/app/new")
        assert denied.returncode != 0  # configMap volumes are read-only

        # An edit of the ConfigMap reaches the running container's file, without a restart.
        config["data"]["app.conf"] = "level=2\n"
        await client.apply(documents(manifest(config)))

        async def updated() -> bool:
            return exec_in(container_id, "cat", "/etc/app/app.conf") == "level=2\n"

        await wait_for(updated, timeout=30, what="the new app.conf in the running container")
        assert container_of(cluster.node, status) == container_id
        assert exec_in(container_id, "cat", "/scratch/f") == "kept\n"
    finally:
        await client.delete(documents=documents(text))


async def test_a_missing_config_map_waits_as_create_container_config_error(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    container = busybox(
        env=[{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "mode"}}}]
    )
    deployment = app("waits", {"containers": [container]})
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}, "data": {"mode": "on"}}
    try:
        await client.apply(documents(manifest(deployment)))
        message = await waiting_reason(client, "waits", "CreateContainerConfigError")
        assert 'configmap "later" not found' in message
        described = await asyncio.to_thread(cluster.shoal, "get", "pods", check=True)
        assert "CreateContainerConfigError" in described.stdout
        await client.apply(documents(manifest(config)))
        status = await running(client, "waits")
        assert exec_in(container_of(cluster.node, status), "sh", "-c", "echo $MODE").strip() == "on"
    finally:
        await client.delete(documents=documents(manifest(deployment, config)))


async def test_init_containers_run_in_order_before_the_app_and_its_sidecar(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    mount = [{"name": "work", "mountPath": "/work"}]
    deployment = app(
        "initialised",
        {
            "initContainers": [
                busybox("first", command=["sh", "-c", "echo 1 >> /work/log"], volumeMounts=mount),
                busybox("helper", restartPolicy="Always", volumeMounts=mount),
                busybox("second", command=["sh", "-c", "echo 2 >> /work/log"], volumeMounts=mount),
            ],
            "containers": [busybox(volumeMounts=mount)],
            "volumes": [{"name": "work", "emptyDir": {}}],
        },
    )
    failing = app("init-fails", {"initContainers": [busybox("check", command=["sh", "-c", "exit 3"])],
                                 "containers": [busybox()]})  # fmt: skip
    try:
        await client.apply(documents(manifest(deployment, failing)))
        status = await running(client, "initialised")
        assert {c.name for c in status.container_statuses} == {"helper", "main"}
        assert exec_in(container_of(cluster.node, status), "cat", "/work/log") == "1\n2\n"
        assert exec_in(container_of(cluster.node, status, "helper"), "cat", "/work/log") == "1\n2\n"
        message = await waiting_reason(client, "init-fails", "Init:Error")
        assert "init container check exited with code 3" in message
        assert not node_containers(
            cluster.node, **{"shoal.container": "main", "shoal.deployment": "init-fails"}
        )
    finally:
        await client.delete(documents=documents(manifest(deployment, failing)))


async def test_security_contexts_reach_podman(cluster: LocalShoal, client: ShoalClient) -> None:
    container = busybox(
        securityContext={
            "runAsUser": 1000,
            "runAsGroup": 3000,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        },
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
    )
    deployment = app(
        "locked",
        {
            "securityContext": {"fsGroup": 2000, "supplementalGroups": [4000]},
            "containers": [container],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    )
    as_root = app("rooted", {"securityContext": {"runAsNonRoot": True}, "containers": [busybox()]})
    try:
        await client.apply(documents(manifest(deployment, as_root)))
        status = await running(client, "locked")
        container_id = container_of(cluster.node, status)
        [inspected] = podman_json("inspect", container_id)
        assert inspected["Config"]["User"] == "1000:3000"
        host = inspected["HostConfig"]
        assert host["ReadonlyRootfs"] is True
        assert inspected["EffectiveCaps"] == ["CAP_NET_BIND_SERVICE"]
        assert any("no-new-privileges" in option for option in host.get("SecurityOpt") or [])
        assert exec_in(container_id, "id", "-u").strip() == "1000"
        groups = exec_in(container_id, "id", "-G").split()
        assert "2000" in groups and "4000" in groups
        exec_in(container_id, "sh", "-c", "echo ok > /data/f")  # the fsGroup may write its volume
        refused = run_in(container_id, "touch", "/x")
        assert refused.returncode != 0
        message = await waiting_reason(client, "rooted", "CreateContainerConfigError")
        assert "runAsNonRoot and image will run as root" in message
    finally:
        await client.delete(documents=documents(manifest(deployment, as_root)))


async def test_a_claim_keeps_its_data_across_pods_on_its_node(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    deployment = app(
        "stateful",
        {
            "containers": [busybox(volumeMounts=[{"name": "data", "mountPath": "/data"}])],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    )
    try:
        await client.apply(documents(manifest(claim, deployment)))
        first = await running(client, "stateful")
        exec_in(container_of(cluster.node, first), "sh", "-c", "echo kept > /data/f")
        bound = (await client.claim_statuses())["default.data"]
        assert bound.node == cluster.node and bound.volume == "shoal-default-data"
        await client.delete(documents=documents(manifest(deployment)))

        async def gone() -> bool:
            return await status_of(client, "stateful") is None and not node_containers(
                cluster.node, **{"shoal.deployment": "stateful"}
            )

        await wait_for(gone, timeout=30, what="the first pod gone")
        await client.apply(documents(manifest(deployment)))
        second = await running(client, "stateful")
        assert second.name != first.name
        assert exec_in(container_of(cluster.node, second), "cat", "/data/f") == "kept\n"
    finally:
        await client.delete(documents=documents(manifest(deployment, claim)))
        remove_volume("shoal-default-data")


async def test_a_pod_that_names_a_missing_claim_stays_pending(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    deployment = app(
        "claimless",
        {
            "containers": [busybox(volumeMounts=[{"name": "d", "mountPath": "/d"}])],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "nowhere"}}],
        },
    )
    try:
        await client.apply(documents(manifest(deployment)))

        async def pending() -> str | None:
            for pod in (await client.pods()).values():
                if pod.metadata.labels.get("app") == "claimless" and pod.scheduling is not None:
                    return pod.scheduling.message
            return None

        message = await wait_for(pending, timeout=30, what="a Pending pod with a reason")
        assert message == 'persistentvolumeclaim "nowhere" not found'
    finally:
        await client.delete(documents=documents(manifest(deployment)))


async def test_a_bare_pod_runs_keeps_its_spec_and_is_deleted(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "lonely", "labels": {"app": "lonely"}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [busybox()]},
    }
    try:
        await client.apply(documents(manifest(pod)))
        status = await running(client, "lonely")
        assert status.name == "lonely"
        pod["spec"]["containers"][0]["command"] = ["sleep", "10"]
        changed = await asyncio.to_thread(cluster.shoal, "apply", "-f", "-", input=manifest(pod))
        assert changed.returncode != 0
        assert "a pod's spec cannot change once created" in changed.stderr
        await client.delete(documents=documents(manifest(pod)))

        async def gone() -> bool:
            return not node_containers(cluster.node, **{"shoal.pod": "lonely"}) and not await client.pods()

        await wait_for(gone, timeout=30, what="the bare pod removed")
    finally:
        await client.delete(documents=documents(manifest(pod)))


async def test_get_yaml_applies_back_unchanged_for_every_kind(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "shop"},
            "data": {"a": "1"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "pw", "namespace": "shop"},
            "stringData": {"password": "x"},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot", "namespace": "shop"}},
        {
            **app("shop-web", {"containers": [busybox()]}),
            "metadata": {"name": "shop-web", "namespace": "shop"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "shop-web", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "shop-web"}, "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "shop-db", "namespace": "shop"},
            "spec": {
                "serviceName": "shop-db",
                "selector": {"matchLabels": {"app": "shop-db"}},
                "template": {
                    "metadata": {"labels": {"app": "shop-db"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [busybox(volumeMounts=[{"name": "data", "mountPath": "/data"}])],
                    },
                },
                "volumeClaimTemplates": [
                    {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
                ],
            },
        },
    ]
    text = manifest(*objects)
    try:
        first = await asyncio.to_thread(cluster.shoal, "apply", "-f", "-", input=text, check=True)
        assert first.stdout.count("created") == len(objects), first.stdout
        for kind, name in [
            ("namespace", "shop"),
            ("configmap", "cfg"),
            ("secret", "pw"),
            ("pvc", "data"),
            ("serviceaccount", "robot"),
            ("deployment", "shop-web"),
            ("service", "shop-web"),
            ("statefulset", "shop-db"),
        ]:
            shown = await asyncio.to_thread(
                cluster.shoal, "get", kind, name, "-n", "shop", "-o", "yaml", check=True
            )
            again = await asyncio.to_thread(cluster.shoal, "apply", "-f", "-", input=shown.stdout)
            assert again.returncode == 0, f"{kind}: {again.stderr}"
            assert "unchanged" in again.stdout, f"{kind}: {again.stdout}"
        listed = await asyncio.to_thread(cluster.shoal, "get", "services", "-n", "shop", check=True)
        assert "LoadBalancer" in listed.stdout
    finally:
        await asyncio.to_thread(cluster.shoal, "delete", "namespace", "shop")

        async def namespace_gone() -> bool:
            return "default.shop" not in await client.namespaces() and "shop" not in await client.namespaces()

        await wait_for(namespace_gone, timeout=30, what="the namespace deleted")

        async def db_gone() -> bool:
            return "shop.shop-db-0" not in await client.pods()

        await wait_for(db_gone, timeout=30, what="the statefulset's pod gone")
        remove_volume("shoal-shop-data-shop-db-0")


async def test_the_configured_example_runs_as_the_readme_says(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    example = Path(__file__).parent.parent / "examples" / "configured.yaml"
    remove_volume("shoal-demo-data")  # the claim starts empty
    try:
        await asyncio.to_thread(cluster.shoal, "apply", "-f", str(example), check=True)
        status = await running(client, "site")
        # Allocated, not fixed in the example: two clusters on one host may both run it.
        node_port = (await client.services())["demo.site"].spec.ports[0].node_port
        assert node_port is not None

        async def served() -> str | None:
            try:
                return await asyncio.to_thread(get, node_port)
            except OSError:  # the node's proxy learns of the endpoint a moment after it is Ready
                return None

        assert "Served from a ConfigMap" in await wait_for(
            served, timeout=20, what="the page at the node port"
        )
        container_id = container_of(cluster.node, status, "httpd")
        assert exec_in(container_id, "id", "-u").strip() == "1000"
        assert exec_in(container_id, "sh", "-c", "echo $GREETING $PASSWORD").strip() == "hello change-me"
        assert exec_in(container_id, "cat", "/data/starts") == "start\n"
    finally:
        await asyncio.to_thread(cluster.shoal, "delete", "-f", str(example))

        async def gone() -> bool:
            return "demo" not in await client.namespaces() and not node_containers(
                cluster.node, **{"shoal.namespace": "demo"}
            )

        try:
            await wait_for(gone, timeout=60, what="the example deleted")
        finally:
            remove_volume("shoal-demo-data")
