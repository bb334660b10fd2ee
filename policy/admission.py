"""Admission policy: Kubernetes' Pod Security Standards, checked over Shoal's pod specs.

Pure: a pod spec (or a pod template, or any object that carries one) and a level go in, the
violations come out, each naming the field to blame. The API refuses an apply whose pods
would break their namespace's level; a node checks again before it starts a pod, so a pod
record written past the API does not run either (docs/security.md, "Admission policy").

The three levels of https://kubernetes.io/docs/concepts/security/pod-security-standards/:

- ``privileged``: anything goes;
- ``baseline`` (every namespace's level unless its label says otherwise): no privileged
  containers, no hostPath volumes, no capabilities beyond the container runtime's default
  set, no Unconfined seccomp or AppArmor profile, no Unmasked /proc, only safe sysctls;
- ``restricted``: baseline, and containers must not escalate privileges, must run as
  non-root, must drop ALL capabilities (adding back NET_BIND_SERVICE at most), must run
  under a RuntimeDefault or Localhost seccomp profile, and volumes must be of the kinds
  that hold no host resource.

What the standards also check and Shoal's models do not take at all (hostNetwork, hostPID,
hostIPC, hostPorts, ephemeral containers, Windows host processes, hostUsers) is applied
with an "ignored" warning and never granted, at any level; seLinuxOptions are refused by
the models whatever the level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic.alias_generators import to_camel

from shoal.models.workloads import Container, PodSpec, PodTemplate

Level = Literal["privileged", "baseline", "restricted"]
LEVELS: tuple[Level, ...] = get_args(Level)
"""From the least to the most restrictive."""

DEFAULT_LEVEL: Level = "baseline"
"""The level of a namespace whose label does not say, and of one a node cannot look up."""

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
"""The namespace label that sets its level (Kubernetes' Pod Security Admission label)."""

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
"""Capabilities baseline lets a container add: the container runtimes' default set."""

RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
"""All a container may add back under restricted, after dropping ALL."""

SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
"""Sysctls baseline allows: namespaced ones that cannot affect other pods or the node."""

RESTRICTED_VOLUMES = frozenset(
    {"config_map", "downward_api", "empty_dir", "persistent_volume_claim", "projected", "secret"}
)
"""Volume sources restricted allows, of those Shoal has (Kubernetes also lists csi and
ephemeral, which Shoal does not take): every one but hostPath."""

APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
"""Prefix of the annotations that set a container's AppArmor profile, before appArmorProfile."""


@dataclass(frozen=True)
class Violation:
    """One field that breaks a level: where, what is wrong, and the level that refuses it."""

    path: str
    message: str
    level: Level

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (refused by pod security level {self.level!r})"

    def in_namespace(self, namespace: str) -> str:
        """As an apply reports it: whose level refuses it, and how that level is set."""
        return (
            f"{self.path}: {self.message} (refused by pod security level {self.level!r} of namespace"
            f" {namespace!r}; its label {ENFORCE_LABEL} sets the level)"
        )


def level_problem(labels: Mapping[str, str]) -> str | None:
    """What is wrong with a namespace's level label, or None (absent or valid)."""
    value = labels.get(ENFORCE_LABEL)
    if value is None or value in LEVELS:
        return None
    return f"must be one of {', '.join(LEVELS)} (got {value!r})"


def namespace_level(labels: Mapping[str, str] | None) -> Level:
    """A namespace's level from its labels; None (no namespace record) gives the default.

    A value that is no level (only a record written past the API's validation can hold one)
    counts as restricted: unreadable policy fails closed, as Kubernetes' admission does."""
    if labels is None or ENFORCE_LABEL not in labels:
        return DEFAULT_LEVEL
    value = labels[ENFORCE_LABEL]
    for level in LEVELS:
        if value == level:
            return level
    return "restricted"


def _capability(name: str) -> str:
    """``cap_net_admin`` and ``NET_ADMIN`` are the same capability to the runtime."""
    upper = name.upper()
    return upper.removeprefix("CAP_")


def _containers(spec: PodSpec, path: str) -> list[tuple[str, Container]]:
    """Every container once, init containers first (a node's view lists sidecars twice)."""
    found: list[tuple[str, Container]] = []
    seen: set[str] = set()
    for field, containers in (("initContainers", spec.init_containers), ("containers", spec.containers)):
        for index, container in enumerate(containers):
            if container.name not in seen:
                seen.add(container.name)
                found.append((f"{path}.{field}[{index}]", container))
    return found


class _Checker:
    def __init__(self, level: Level) -> None:
        self.level = level
        self.restricted = level == "restricted"
        self.found: list[Violation] = []

    def refuse(self, path: str, message: str) -> None:
        self.found.append(Violation(path, message, self.level))

    def pod(self, spec: PodSpec, path: str, annotations: Mapping[str, str], annotations_path: str) -> None:
        context = spec.security_context
        here = f"{path}.securityContext"
        if context is not None:
            if context.seccomp_profile is not None and context.seccomp_profile.type == "Unconfined":
                self.refuse(f"{here}.seccompProfile.type", "must not be Unconfined")
            if context.app_armor_profile is not None and context.app_armor_profile.type == "Unconfined":
                self.refuse(f"{here}.appArmorProfile.type", "must not be Unconfined")
            for index, sysctl in enumerate(context.sysctls):
                if sysctl.name not in SAFE_SYSCTLS:
                    self.refuse(
                        f"{here}.sysctls[{index}].name",
                        f"{sysctl.name} is not a safe sysctl (allowed: {', '.join(sorted(SAFE_SYSCTLS))})",
                    )
        for key, value in annotations.items():
            if key.startswith(APPARMOR_ANNOTATION) and not (
                value == "runtime/default" or value.startswith("localhost/")
            ):
                self.refuse(
                    f"{annotations_path}[{key!r}]",
                    f"AppArmor profile {value!r} is not allowed (use runtime/default or localhost/NAME)",
                )
        for index, volume in enumerate(spec.volumes):
            source = volume.source
            where = f"{path}.volumes[{index}].{to_camel(source)}"
            if source == "host_path":
                assert volume.host_path is not None
                self.refuse(
                    where,
                    f"hostPath volumes are not allowed (volume {volume.name!r}: {volume.host_path.path})",
                )
            elif self.restricted and source not in RESTRICTED_VOLUMES:
                self.refuse(where, f"{to_camel(source)} volumes are not allowed")

    def container(self, container: Container, path: str) -> None:
        context = container.security_context
        if context is None:
            return
        here = f"{path}.securityContext"
        if context.privileged:
            self.refuse(f"{here}.privileged", "must not be true: privileged containers are not allowed")
        if context.capabilities is not None:
            allowed = RESTRICTED_CAPABILITIES if self.restricted else BASELINE_CAPABILITIES
            for index, name in enumerate(context.capabilities.add):
                if _capability(name) not in allowed:
                    self.refuse(
                        f"{here}.capabilities.add[{index}]",
                        f"{name} may not be added (allowed: {', '.join(sorted(allowed))})",
                    )
        if context.seccomp_profile is not None and context.seccomp_profile.type == "Unconfined":
            self.refuse(f"{here}.seccompProfile.type", "must not be Unconfined")
        if context.app_armor_profile is not None and context.app_armor_profile.type == "Unconfined":
            self.refuse(f"{here}.appArmorProfile.type", "must not be Unconfined")
        if context.proc_mount == "Unmasked":
            self.refuse(f"{here}.procMount", "must not be Unmasked")

    def restricted_pod(self, spec: PodSpec, path: str) -> None:
        pod = spec.security_context
        pod_non_root = pod.run_as_non_root if pod is not None else None
        pod_seccomp = pod.seccomp_profile if pod is not None else None
        here = f"{path}.securityContext"
        if pod_non_root is False:
            self.refuse(f"{here}.runAsNonRoot", "must not be false")
        if pod is not None and pod.run_as_user == 0:
            self.refuse(f"{here}.runAsUser", "must not be 0 (root)")
        for where, container in _containers(spec, path):
            context = container.security_context
            own = f"{where}.securityContext"
            if context is None or context.allow_privilege_escalation is not False:
                self.refuse(f"{own}.allowPrivilegeEscalation", "must be false")
            non_root = context.run_as_non_root if context is not None else None
            if non_root is False:
                self.refuse(f"{own}.runAsNonRoot", "must not be false")
            elif non_root is None and pod_non_root is not True:
                self.refuse(f"{own}.runAsNonRoot", f"must be true (here, or in {here}.runAsNonRoot)")
            if context is not None and context.run_as_user == 0:
                self.refuse(f"{own}.runAsUser", "must not be 0 (root)")
            seccomp = context.seccomp_profile if context is not None else None
            if seccomp is None and pod_seccomp is None:
                self.refuse(
                    f"{own}.seccompProfile.type",
                    f"must be RuntimeDefault or Localhost (here, or in {here}.seccompProfile)",
                )
            capabilities = context.capabilities if context is not None else None
            if capabilities is None or "ALL" not in {_capability(c) for c in capabilities.drop}:
                self.refuse(f"{own}.capabilities.drop", "must include ALL")


def pod_violations(
    spec: PodSpec,
    level: Level,
    *,
    path: str = "spec",
    annotations: Mapping[str, str] | None = None,
    annotations_path: str = "metadata.annotations",
) -> list[Violation]:
    """What in a pod spec breaks ``level``, each field named under ``path``."""
    if level == "privileged":
        return []
    checker = _Checker(level)
    checker.pod(spec, path, annotations or {}, annotations_path)
    for where, container in _containers(spec, path):
        checker.container(container, where)
    if level == "restricted":
        checker.restricted_pod(spec, path)
    return checker.found


def template_violations(
    template: PodTemplate, level: Level, *, path: str = "spec.template"
) -> list[Violation]:
    """What in a pod template breaks ``level``: its spec and its AppArmor annotations."""
    return pod_violations(
        template.spec,
        level,
        path=f"{path}.spec",
        annotations=template.metadata.annotations,
        annotations_path=f"{path}.metadata.annotations",
    )


def object_violations(obj: Any, level: Level) -> list[Violation]:
    """What breaks ``level`` in the pods an object makes: a pod (its spec), a workload (its
    template, a CronJob's job template); nothing for objects that make no pods."""
    spec = getattr(obj, "spec", None)
    if isinstance(spec, PodSpec):
        annotations = getattr(getattr(obj, "metadata", None), "annotations", None)
        return pod_violations(spec, level, annotations=annotations)
    template = getattr(spec, "template", None)
    if isinstance(template, PodTemplate):
        return template_violations(template, level)
    job_template = getattr(spec, "job_template", None)
    nested = getattr(getattr(job_template, "spec", None), "template", None)
    if isinstance(nested, PodTemplate):
        return template_violations(nested, level, path="spec.jobTemplate.spec.template")
    return []
