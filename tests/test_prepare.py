"""What a node resolves for a pod before starting it: tables of pods and sources, no servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shoal.actors.node.prepare import ConfigMissing, PodSources, expand, prepare, security_of, with_sidecars
from shoal.actors.node.volumes import VolumeStore, current_files
from shoal.models.core import ConfigMap, Secret
from shoal.models.pod import Pod, PodMeta
from shoal.models.workloads import PodSpec

SOURCES = PodSources(
    config_maps={
        "cfg": ConfigMap.model_validate(
            {"metadata": {"name": "cfg"}, "data": {"mode": "fast", "app.conf": "a=1"}}
        )
    },
    secrets={
        "pw": Secret.model_validate(
            {"metadata": {"name": "pw"}, "stringData": {"password": "hunter2", "9lives": "x"}}
        )
    },
    node="n1",
    host_ip="192.0.2.1",
)


def pod(**spec: Any) -> Pod:
    containers = spec.pop("containers", None) or [{"name": "main", "image": "busybox"}]
    return Pod(
        metadata=PodMeta(name="web-1", namespace="shop", labels={"app": "web"}, uid="u-1"),
        spec=PodSpec.model_validate({"containers": containers, **spec}),
        node_name="n1",
    )


def env_of(*env: dict[str, Any], env_from: list[dict[str, Any]] | None = None) -> dict[str, str]:
    container = {"name": "main", "image": "busybox", "env": list(env), "envFrom": env_from or []}
    return prepare(pod(containers=[container]), SOURCES, "/v").container("main").env


@pytest.mark.parametrize(
    ("var", "expected"),
    [
        ({"name": "A", "value": "plain"}, "plain"),
        ({"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}}, "fast"),
        ({"name": "A", "valueFrom": {"secretKeyRef": {"name": "pw", "key": "password"}}}, "hunter2"),
        ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, "web-1"),
        ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}, "shop"),
        ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}, "web"),
        ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}, "n1"),
        ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}, "192.0.2.1"),
        ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}, "default"),
    ],
)
def test_env_values(var: dict[str, Any], expected: str) -> None:
    assert env_of(var)["A"] == expected


@pytest.mark.parametrize(
    ("var", "message"),
    [
        (
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}},
            'configmap "nope" not found (container main, env A)',
        ),
        (
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
            'couldn\'t find key k in configmap "cfg" (container main, env A)',
        ),
        (
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}},
            'secret "gone" not found (container main, env A)',
        ),
    ],
)
def test_missing_references_name_what_is_missing(var: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigMissing) as caught:
        env_of(var)
    assert caught.value.message == message


def test_optional_references_leave_the_variable_out() -> None:
    env = env_of(
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "pw", "key": "other", "optional": True}}},
        env_from=[{"configMapRef": {"name": "absent", "optional": True}}],
    )
    assert "A" not in env and "B" not in env


def test_env_from_is_prefixed_skips_invalid_names_and_loses_to_env() -> None:
    env = env_of(
        {"name": "CFG_mode", "value": "mine"},
        env_from=[{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "pw"}}],
    )
    assert env == {"CFG_app.conf": "a=1", "CFG_mode": "mine", "password": "hunter2"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("$(A)-$(B)", "1-2"), ("$$(A)", "$(A)"), ("$(MISSING)", "$(MISSING)"), ("no refs", "no refs")],
)
def test_expansion(value: str, expected: str) -> None:
    assert expand(value, {"A": "1", "B": "2"}) == expected


def test_pod_ip_and_resources() -> None:
    container = {
        "name": "main",
        "image": "busybox",
        "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "64Mi"}},
        "env": [
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {"name": "CORES", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ],
    }
    prepared = prepare(pod(containers=[container]), SOURCES, "/v").container("main")
    assert prepared.pod_ip_env == ("IP",)
    assert prepared.env["CPU"] == "250" and prepared.env["MEM"] == "64" and prepared.env["CORES"] == "1"


def test_volumes_become_files_and_mounts() -> None:
    container = {
        "name": "main",
        "image": "busybox",
        "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/cfg"},
            {"name": "pw", "mountPath": "/etc/pw", "readOnly": False},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "mem", "mountPath": "/cache"},
            {"name": "data", "mountPath": "/data", "subPath": "db"},
        ],
    }
    spec = {
        "containers": [container],
        "volumes": [
            {
                "name": "cfg",
                "configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "conf/app.conf"}]},
            },
            {"name": "pw", "secret": {"secretName": "pw", "defaultMode": 0o400}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "db"}},
        ],
    }
    prepared = prepare(pod(**spec), SOURCES, "/v/u-1")
    files = {v.volume: v.files for v in prepared.files}
    assert files == {
        "cfg": {"conf/app.conf": (b"a=1", 0o644)},
        "pw": {"password": (b"hunter2", 0o400), "9lives": (b"x", 0o400)},
    }
    assert prepared.empty_dirs == ("tmp",)
    mounts = {m.target: m for m in prepared.container("main").mounts}
    assert mounts["/etc/cfg"].source == "/v/u-1/cfg" and mounts["/etc/cfg"].read_only
    assert mounts["/etc/pw"].read_only  # secret volumes are read-only whatever the mount says
    assert mounts["/cache"].kind == "tmpfs" and mounts["/cache"].size == 8 * 2**20
    assert mounts["/data"].kind == "volume" and mounts["/data"].source == "shoal-shop-db"
    assert mounts["/data"].sub_path == "db"


def test_a_path_escaping_its_volume_is_refused() -> None:
    items = [{"key": "mode", "path": "../x"}]
    spec = {"volumes": [{"name": "cfg", "configMap": {"name": "cfg", "items": items}}]}
    with pytest.raises(ValueError, match="path must be relative"):
        pod(**spec)


@pytest.mark.parametrize(
    ("pod_context", "own", "expected"),
    [
        ({}, {}, {"user": "", "groups": ()}),
        ({"runAsUser": 1000}, {}, {"user": "1000"}),
        ({"runAsUser": 1000, "runAsGroup": 5}, {"runAsUser": 7}, {"user": "7:5"}),
        ({"fsGroup": 2000, "supplementalGroups": [3, 2000]}, {}, {"groups": ("2000", "3")}),
        ({"runAsNonRoot": True}, {"runAsNonRoot": False}, {"run_as_non_root": False}),
        ({"runAsNonRoot": True}, {}, {"run_as_non_root": True}),
        ({}, {"allowPrivilegeEscalation": False}, {"no_new_privileges": True}),
        (
            {},
            {"capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}},
            {"cap_drop": ("ALL",), "cap_add": ("NET_ADMIN",)},
        ),
        ({"seccompProfile": {"type": "Unconfined"}}, {}, {"seccomp": "unconfined"}),
        (
            {"seccompProfile": {"type": "Unconfined"}},
            {"seccompProfile": {"type": "RuntimeDefault"}},
            {"seccomp": ""},
        ),
        (
            {},
            {"readOnlyRootFilesystem": True, "privileged": True},
            {"read_only_root": True, "privileged": True},
        ),
    ],
)
def test_security_contexts_merge(pod_context: dict, own: dict, expected: dict) -> None:
    container = {"name": "main", "image": "busybox", "securityContext": own}
    subject = pod(containers=[container], securityContext=pod_context)
    security = security_of(subject, subject.spec.containers[0])
    assert {key: getattr(security, key) for key in expected} == expected


def test_sidecars_run_beside_the_app_containers() -> None:
    subject = pod(
        initContainers=[
            {"name": "setup", "image": "busybox"},
            {"name": "proxy", "image": "busybox", "restartPolicy": "Always"},
        ]
    )
    assert [c.name for c in with_sidecars(subject).spec.containers] == ["proxy", "main"]
    assert with_sidecars(pod()) == pod()


def test_volume_files_are_swapped_atomically(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    spec = {"volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "tmp", "emptyDir": {}}]}
    prepared = prepare(pod(**spec), SOURCES, str(store.pod_dir("u-1")))
    store.write("u-1", prepared)
    volume = tmp_path / "u-1" / "cfg"
    assert (volume / "mode").read_text() == "fast" and (volume / "mode").is_symlink()
    assert (tmp_path / "u-1" / "tmp").is_dir()
    first = (volume / "..data").resolve()

    changed = PodSources(
        config_maps={"cfg": ConfigMap.model_validate({"metadata": {"name": "cfg"}, "data": {"mode": "slow"}})}
    )
    store.write("u-1", prepare(pod(**spec), changed, str(store.pod_dir("u-1"))))
    assert (volume / "mode").read_text() == "slow"
    assert not (volume / "app.conf").exists()  # a key that went is gone from the volume
    assert not first.exists()  # the old generation is removed
    assert current_files(volume) == {"mode": (b"slow", 0o644)}
    assert store.uids() == {"u-1"}
    store.remove("u-1")
    assert store.uids() == set()
