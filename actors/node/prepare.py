"""What a pod needs besides its images, decided before its containers are created.

Environment values from ConfigMaps, Secrets and the pod itself (``valueFrom``, ``envFrom``,
the downward API), the files of its configMap, secret, downwardAPI and projected volumes,
its mounts (emptyDir, hostPath, claims) and each container's security settings, all as
plain data: these functions read models and return a ``PreparedPod``; writing files and
creating containers is the runtime's and ``volumes``' business. A missing ConfigMap,
Secret or key that is not optional raises ``ConfigMissing``, which the node reports as
Kubernetes does (``CreateContainerConfigError``) and retries with backoff.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from shoal.errors import ContainerConfigError
from shoal.models.core import ConfigMap, Secret, claim_volume_name
from shoal.models.pod import Pod
from shoal.models.workloads import (
    Container,
    DownwardItem,
    KeyToPath,
    ObjectFieldSelector,
    ResourceFieldSelector,
    SecurityContext,
)
from shoal.runtime.prepared import Dns, Mount, PreparedContainer, PreparedPod, Security, VolumeFiles

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
"""What Kubernetes accepts as an environment variable name (from envFrom keys too)."""

POD_IP = "status.podIP"


class ConfigMissing(ContainerConfigError):
    """Something the pod refers to is not there (yet)."""


@dataclass(frozen=True)
class PodSources:
    """What the pod's references resolve against: its namespace's objects and its node."""

    config_maps: dict[str, ConfigMap] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    node: str = ""
    host_ip: str = ""
    dns_server: str = ""
    """The node's resolver for its pods (empty: pods keep Podman's default)."""
    cluster_domain: str = "cluster.local"


def prepare(pod: Pod, sources: PodSources, volume_dir: str) -> PreparedPod:
    """Resolve everything ``pod`` refers to. ``volume_dir`` is where its volumes' files live
    on the host (one directory per volume under it)."""
    spec = pod.spec
    files: list[VolumeFiles] = []
    empty_dirs: list[str] = []
    sources_by_volume: dict[str, Mount] = {}
    for volume in spec.volumes:
        path = f"{volume_dir}/{volume.name}"
        if volume.empty_dir is not None:
            if volume.empty_dir.medium == "Memory":
                sources_by_volume[volume.name] = Mount("tmpfs", "", "", size=volume.empty_dir.size_limit)
            else:
                empty_dirs.append(volume.name)
                sources_by_volume[volume.name] = Mount("bind", path, "")
        elif volume.host_path is not None:
            sources_by_volume[volume.name] = Mount("bind", volume.host_path.path, "")
        elif volume.persistent_volume_claim is not None:
            claim = volume.persistent_volume_claim
            sources_by_volume[volume.name] = Mount(
                "volume", claim_volume_name(pod.metadata.namespace, claim.claim_name), "", claim.read_only
            )
        else:
            files.append(volume_files(pod, volume.name, sources))
            # Kubernetes mounts these read-only, whatever the mount says.
            sources_by_volume[volume.name] = Mount("bind", path, "", read_only=True)
    containers = {
        container.name: PreparedContainer(
            *_env(pod, container, sources),
            mounts=tuple(_mounts(container, sources_by_volume)),
            security=security_of(pod, container),
        )
        for container in spec.all_containers()
    }
    fs_group = spec.security_context.fs_group if spec.security_context else None
    return PreparedPod(containers, tuple(files), tuple(empty_dirs), fs_group, dns_of(pod, sources))


def dns_of(pod: Pod, sources: PodSources) -> Dns | None:
    """The pod's resolv.conf, as Kubernetes writes it for its ``dnsPolicy``."""
    policy = pod.spec.dns_policy
    if policy == "Default" or not sources.dns_server:
        return None  # the host's resolvers, as Podman gives them
    if policy == "None":
        config = pod.spec.dns_config
        if config is None:
            return None
        return Dns(tuple(config.nameservers), tuple(config.searches), tuple(config.option_texts()))
    domain = sources.cluster_domain
    searches = (f"{pod.metadata.namespace}.svc.{domain}", f"svc.{domain}", domain)
    options = ["ndots:5"]
    config = pod.spec.dns_config
    if config is not None:  # ClusterFirst with dnsConfig: added to what Kubernetes sets
        return Dns(
            (sources.dns_server, *config.nameservers),
            (*searches, *config.searches),
            tuple(dict.fromkeys([*options, *config.option_texts()])),
        )
    return Dns((sources.dns_server,), searches, tuple(options))


# -- environment ---------------------------------------------------------------------------------


def _env(pod: Pod, container: Container, sources: PodSources) -> tuple[dict[str, str], tuple[str, ...]]:
    env: dict[str, str] = {}
    pod_ip: list[str] = []
    where = f"container {container.name}"
    # envFrom first, then env: as in Kubernetes, a variable in env wins over one from envFrom.
    for source in container.env_from:
        if source.config_map_ref is not None:
            ref = source.config_map_ref
            config_map = sources.config_maps.get(ref.name)
            if config_map is None:
                if ref.optional:
                    continue
                raise ConfigMissing(f'configmap "{ref.name}" not found ({where}, envFrom)')
            values = {k: v.decode("utf-8", "replace") for k, v in config_map.files().items()}
        else:
            assert source.secret_ref is not None
            ref = source.secret_ref
            secret = sources.secrets.get(ref.name)
            if secret is None:
                if ref.optional:
                    continue
                raise ConfigMissing(f'secret "{ref.name}" not found ({where}, envFrom)')
            values = {k: v.decode("utf-8", "replace") for k, v in secret.data.items()}
        for key, value in values.items():
            name = source.prefix + key
            if ENV_NAME.match(name):  # Kubernetes skips (and reports) keys that are no valid name
                env[name] = value
    for var in container.env:
        env.pop(var.name, None)
        if var.name in pod_ip:
            pod_ip.remove(var.name)
        if var.value_from is None:
            env[var.name] = expand(var.value, env)
            continue
        value_from = var.value_from
        if value_from.config_map_key_ref is not None:
            ref = value_from.config_map_key_ref
            config_map = sources.config_maps.get(ref.name)
            data = config_map.files() if config_map is not None else None
            value = _key(data, ref.key, ref.optional, ("configmap", ref.name), where, var.name)
        elif value_from.secret_key_ref is not None:
            ref = value_from.secret_key_ref
            secret = sources.secrets.get(ref.name)
            value = _key(
                secret.data if secret else None, ref.key, ref.optional, ("secret", ref.name), where, var.name
            )
        elif value_from.field_ref is not None:
            if value_from.field_ref.field_path in (POD_IP, "status.podIPs"):
                pod_ip.append(var.name)
                env[var.name] = ""
                continue
            value = field_value(pod, value_from.field_ref, sources)
        else:
            assert value_from.resource_field_ref is not None
            value = resource_value(pod, container.name, value_from.resource_field_ref)
        if value is not None:
            env[var.name] = value
    return env, tuple(pod_ip)


def _key(
    data: dict[str, bytes] | None, key: str, optional: bool, what: tuple[str, str], where: str, var: str
) -> str | None:
    """One key's value; None when it may be missing and is (the variable is then left out)."""
    kind, name = what
    if data is None:
        if optional:
            return None
        raise ConfigMissing(f'{kind} "{name}" not found ({where}, env {var})')
    if key not in data:
        if optional:
            return None
        raise ConfigMissing(f'couldn\'t find key {key} in {kind} "{name}" ({where}, env {var})')
    return data[key].decode("utf-8", "replace")


_REFERENCE = re.compile(r"\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)|\$\$")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion from variables defined before; ``$$`` escapes a ``$``;
    a reference to an unknown variable stays as written."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(one, value)


def field_value(pod: Pod, ref: ObjectFieldSelector, sources: PodSources) -> str:
    """A pod field, as the downward API gives it."""
    meta = pod.metadata
    path = ref.field_path
    if path == "metadata.labels":
        return _lines(meta.labels)
    if path == "metadata.annotations":
        return _lines(meta.annotations)
    match = re.match(r"^metadata\.(labels|annotations)\['([^']+)'\]$", path)
    if match:
        values = meta.labels if match.group(1) == "labels" else meta.annotations
        return values.get(match.group(2), "")
    simple = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "spec.nodeName": pod.node_name or sources.node,
        "spec.serviceAccountName": pod.spec.service_account_name or pod.spec.service_account or "default",
        "status.hostIP": sources.host_ip,
        "status.hostIPs": sources.host_ip,
    }
    return simple.get(path, "")


def _lines(values: dict[str, str]) -> str:
    # The downward API's file format: one key="value" per line, values quoted as JSON strings.
    return "\n".join(f"{key}={json.dumps(value)}" for key, value in sorted(values.items()))


def resource_value(pod: Pod, default_container: str, ref: ResourceFieldSelector) -> str:
    """A container's request or limit in units of ``divisor`` (rounded up, as Kubernetes does).
    An unset limit reads as the node's allocatable in Kubernetes; here as the request, else 0."""
    name = ref.container_name or default_container
    container = next((c for c in pod.spec.all_containers() if c.name == name), None)
    if container is None:
        raise ConfigMissing(f"resourceFieldRef names container {name!r}, which the pod does not have")
    kind, resource = ref.resource.split(".", 1)
    resources = container.resources
    group = resources.limits if kind == "limits" else resources.requests
    if resource == "cpu":
        millis = group.cpu if group.cpu is not None else (resources.requests.cpu or 0)
        divisor = _cpu_divisor(ref.divisor)
        return str(max(1, math.ceil(millis / divisor)) if kind == "limits" or millis else 0)
    if resource == "memory":
        amount = group.memory if group.memory is not None else (resources.requests.memory or 0)
        return str(math.ceil(amount / _memory_divisor(ref.divisor)))
    return "0"  # ephemeral-storage: not accounted


def _cpu_divisor(text: str) -> float:
    from shoal.models.quantity import parse_cpu

    return max(1, parse_cpu(text or "1"))


def _memory_divisor(text: str) -> int:
    from shoal.models.quantity import parse_memory

    return max(1, parse_memory(text or "1"))


# -- volumes -------------------------------------------------------------------------------------


def volume_files(pod: Pod, name: str, sources: PodSources) -> VolumeFiles:
    """The files of a configMap, secret, downwardAPI or projected volume."""
    volume = next(v for v in pod.spec.volumes if v.name == name)
    files: dict[str, tuple[bytes, int]] = {}
    references: set[tuple[str, str]] = set()
    where = f"volume {name}"

    def project(kind: str, ref: str, items: list[KeyToPath], mode: int, optional: bool) -> None:
        references.add((kind, ref))
        if kind == "configMap":
            config_map = sources.config_maps.get(ref)
            data, what = (config_map.files() if config_map else None), f'configmap "{ref}"'
        else:
            secret = sources.secrets.get(ref)
            data, what = (secret.data if secret else None), f'secret "{ref}"'
        _project(files, data, items, mode, optional, what, where)

    if volume.config_map is not None:
        source = volume.config_map
        project("configMap", source.name, source.items, source.default_mode, source.optional)
    elif volume.secret is not None:
        secret_source = volume.secret
        project(
            "secret",
            secret_source.secret_name,
            secret_source.items,
            secret_source.default_mode,
            secret_source.optional,
        )
    elif volume.downward_api is not None:
        _downward(files, pod, volume.downward_api.items, volume.downward_api.default_mode, sources)
    elif volume.projected is not None:
        mode = volume.projected.default_mode
        for projection in volume.projected.sources:
            if projection.config_map is not None:
                ref = projection.config_map
                project("configMap", ref.name, ref.items, mode, ref.optional)
            elif projection.secret is not None:
                secret_ref = projection.secret
                project("secret", secret_ref.name, secret_ref.items, mode, secret_ref.optional)
            elif projection.downward_api is not None:
                _downward(files, pod, projection.downward_api.items, mode, sources)
            # serviceAccountToken: Shoal has no service account tokens; the validator warns.
    return VolumeFiles(name, files, frozenset(references))


def _project(
    files: dict[str, tuple[bytes, int]],
    data: dict[str, bytes] | None,
    items: list[KeyToPath],
    mode: int,
    optional: bool,
    what: str,
    where: str,
) -> None:
    if data is None:
        if optional:
            return
        raise ConfigMissing(f"{what} not found ({where})")
    if not items:
        for key, value in data.items():
            files[key] = (value, mode)
        return
    for item in items:
        if item.key not in data:
            if optional:
                continue
            raise ConfigMissing(f"couldn't find key {item.key} in {what} ({where})")
        files[_safe_path(item.path, where)] = (data[item.key], item.mode if item.mode is not None else mode)


def _downward(
    files: dict[str, tuple[bytes, int]], pod: Pod, items: list[DownwardItem], mode: int, sources: PodSources
) -> None:
    for item in items:
        if item.field_ref is not None:
            value = field_value(pod, item.field_ref, sources)
        elif item.resource_field_ref is not None:
            if not item.resource_field_ref.container_name:
                raise ConfigMissing(f"downwardAPI item {item.path}: resourceFieldRef needs containerName")
            value = resource_value(pod, "", item.resource_field_ref)
        else:
            continue
        files[_safe_path(item.path, "downwardAPI")] = (
            value.encode(),
            item.mode if item.mode is not None else mode,
        )


def _safe_path(path: str, where: str) -> str:
    parts = path.split("/")
    if path.startswith("/") or ".." in parts or any(p.startswith("..") for p in parts):
        raise ConfigMissing(f"{where}: path {path!r} must be relative and may not contain '..'")
    return path


def _mounts(container: Container, sources: dict[str, Mount]) -> list[Mount]:
    mounts = []
    for mount in container.volume_mounts:
        source = sources.get(mount.name)
        if source is None:  # the validator refuses this; a record written by hand might not
            raise ConfigMissing(f"container {container.name}: volumeMount {mount.name!r} names no volume")
        mounts.append(
            Mount(
                source.kind,
                source.source,
                mount.mount_path,
                read_only=mount.read_only or source.read_only,
                sub_path=_safe_path(mount.sub_path, f"volumeMount {mount.name}") if mount.sub_path else "",
                size=source.size,
            )
        )
    return mounts


# -- security ------------------------------------------------------------------------------------


def security_of(pod: Pod, container: Container) -> Security:
    """The container's context over the pod's, as Kubernetes merges them."""
    pod_context = pod.spec.security_context
    own = container.security_context or SecurityContext()
    user = (
        own.run_as_user if own.run_as_user is not None else (pod_context.run_as_user if pod_context else None)
    )
    group = (
        own.run_as_group
        if own.run_as_group is not None
        else (pod_context.run_as_group if pod_context else None)
    )
    non_root = own.run_as_non_root
    if non_root is None and pod_context is not None:
        non_root = pod_context.run_as_non_root
    groups: list[str] = []
    if pod_context is not None:
        if pod_context.fs_group is not None:
            groups.append(str(pod_context.fs_group))
        groups += [str(g) for g in pod_context.supplemental_groups]
    seccomp_profile = own.seccomp_profile or (pod_context.seccomp_profile if pod_context else None)
    seccomp = ""
    if seccomp_profile is not None and seccomp_profile.type == "Unconfined":
        seccomp = "unconfined"
    elif seccomp_profile is not None and seccomp_profile.type == "Localhost":
        seccomp = seccomp_profile.localhost_profile or ""
    capabilities = own.capabilities
    # runAsGroup alone keeps the image's user (Podman cannot name a group without a user).
    user_text = "" if user is None else str(user) if group is None else f"{user}:{group}"
    return Security(
        user=user_text,
        run_as_non_root=bool(non_root),
        groups=tuple(dict.fromkeys(groups)),
        cap_add=tuple(capabilities.add) if capabilities else (),
        cap_drop=tuple(capabilities.drop) if capabilities else (),
        privileged=bool(own.privileged),
        read_only_root=bool(own.read_only_root_filesystem),
        # Kubernetes: allowPrivilegeEscalation false sets no_new_privs (privileged containers may).
        no_new_privileges=own.allow_privilege_escalation is False,
        seccomp=seccomp,
        sysctls=tuple((s.name, s.value) for s in pod_context.sysctls) if pod_context else (),
    )


def _first(own: object, inherited: object) -> object:
    return own if own is not None else inherited


def referenced(pod: Pod) -> set[tuple[str, str]]:
    """(``configMap`` or ``secret``, name) the pod's env and volumes name."""
    return {("configMap", n) for n in pod.spec.referenced("configMap")} | {
        ("secret", n) for n in pod.spec.referenced("secret")
    }


def with_sidecars(pod: Pod) -> Pod:
    """The pod as the node runs it: init containers with ``restartPolicy: Always`` (sidecars)
    keep running beside the app containers, so they are watched, probed and restarted as those
    are; they start first, in their place among the init containers."""
    sidecars = [c for c in pod.spec.init_containers if c.restart_policy == "Always"]
    if not sidecars:
        return pod
    names = {c.name for c in sidecars}
    containers = [*sidecars, *(c for c in pod.spec.containers if c.name not in names)]
    return pod.model_copy(update={"spec": pod.spec.model_copy(update={"containers": containers})})
