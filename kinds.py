"""Every kind Shoal knows, in one registry: what Kubernetes' scheme and RESTMapper are to it.

A kind's entry says how manifests name it (apiVersion, kind), how commands name it (plural,
short names), whether it lives in a namespace, and what Shoal does with it:

- ``acted``: Shoal validates it with its model, stores it in its bucket and acts on it;
- ``stored``: kept as written (``kubectl get`` of it works) but nothing acts on it; applying
  it warns once per kind with ``note``, which says what that means;
- ``ignored``: not stored; applying it warns once per kind with ``note``;
- ``observed``: made by Shoal itself (nodes, endpoints): listed, never applied.

Kinds of a group nobody registered (custom resources) are ignored with a warning; unknown
kinds of Kubernetes' own groups are refused, since they are most likely a typo.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from shoal.bus.kv import BucketDef
    from shoal.models.base import Record

Handling = Literal["acted", "stored", "ignored", "observed"]


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    """API group; ``""`` for the core group (apiVersion ``v1``)."""
    version: str
    plural: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    handling: Handling = "acted"
    note: str = ""
    """For stored and ignored kinds: what applying one means, said once per apply."""
    refuse_apply: bool = True
    """For observed kinds: an apply of one is refused (else ignored with ``note``)."""
    older_versions: tuple[str, ...] = ()
    """apiVersions also accepted (and converted by the model's reader)."""
    model_path: str = ""
    """``module:Class`` under ``shoal.models``: the model a manifest of an acted kind is
    validated with, imported when first asked for (``model``)."""
    bucket: BucketDef[Any] | None = field(default=None, compare=False)
    """Where objects of an acted kind are stored (stored kinds share ``kv.OBJECTS``)."""

    @functools.cached_property
    def model(self) -> type[Record] | None:
        if not self.model_path:
            return None
        from shoal.models.base import model_at  # here: the registry itself needs no pydantic

        return model_at(self.model_path)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """``deployment.apps``: how kubectl names a kind in what it prints."""
        return f"{self.singular}.{self.group}" if self.group else self.singular

    @property
    def qualified_plural(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def accepts(self, api_version: str) -> bool:
        if self.handling == "stored":
            # Kept as written: any version of its group (older manifests use v1beta1).
            return api_version.rpartition("/")[0] == self.group if self.group else api_version == "v1"
        return api_version == self.api_version or api_version in self.older_versions


def _acted() -> list[Kind]:
    from shoal.bus import kv

    return [
        Kind("Namespace", "", "v1", "namespaces", ("ns",), namespaced=False, model_path="core:Namespace",
             bucket=kv.NAMESPACES),
        Kind("ConfigMap", "", "v1", "configmaps", ("cm",), model_path="core:ConfigMap", bucket=kv.CONFIGMAPS),
        Kind("Secret", "", "v1", "secrets", model_path="core:Secret", bucket=kv.SECRETS),
        Kind("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", ("pvc",),
             model_path="core:PersistentVolumeClaim", bucket=kv.CLAIMS),
        Kind("Pod", "", "v1", "pods", ("po",), model_path="pod:BarePod", bucket=kv.PODS),
        Kind("Service", "", "v1", "services", ("svc",), model_path="service:Service", bucket=kv.SERVICES),
        Kind("Deployment", "apps", "v1", "deployments", ("deploy",), model_path="workloads:Deployment",
             bucket=kv.DEPLOYMENTS),
        Kind("DaemonSet", "apps", "v1", "daemonsets", ("ds",), model_path="daemonset:DaemonSet",
             bucket=kv.DAEMONSETS),
        Kind("StatefulSet", "apps", "v1", "statefulsets", ("sts",), model_path="statefulset:StatefulSet",
             bucket=kv.STATEFULSETS),
        Kind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", ("pdb",),
             older_versions=("policy/v1beta1",), model_path="disruption:PodDisruptionBudget", bucket=kv.PDBS),
        Kind("Job", "batch", "v1", "jobs", model_path="batch:Job", bucket=kv.JOBS),
        Kind("CronJob", "batch", "v1", "cronjobs", ("cj",), older_versions=("batch/v1beta1",),
             model_path="batch:CronJob", bucket=kv.CRONJOBS),
        Kind(
            "HorizontalPodAutoscaler",
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            ("hpa",),
            older_versions=("autoscaling/v1",),
            model_path="autoscaling:HorizontalPodAutoscaler",
            bucket=kv.HPAS,
        ),
        Kind("PriorityClass", "scheduling.k8s.io", "v1", "priorityclasses", ("pc",), namespaced=False,
             model_path="scheduling:PriorityClass", bucket=kv.PRIORITY_CLASSES),
    ]  # fmt: skip


_NOT_RUN = "stored, not run: Shoal does not run {plural} yet, so no pods start for it"
_RBAC = "stored, not enforced: pods get no Kubernetes API, so there is nothing for it to grant"

_OTHERS = [
    Kind("Node", "", "v1", "nodes", ("no",), namespaced=False, handling="observed",
         note="nodes register themselves (shoal node); label, taint or cordon them instead"),
    Kind("Endpoints", "", "v1", "endpoints", ("ep",), handling="observed", refuse_apply=False,
         note="ignored: Shoal keeps every service's endpoints itself from its selector"),
    Kind("Event", "", "v1", "events", ("ev",), handling="ignored", note="ignored: events are Shoal's own"),
    Kind("ServiceAccount", "", "v1", "serviceaccounts", ("sa",), handling="stored",
         note="stored; pods run without a service account token (Shoal has no Kubernetes API to call)"),
    Kind("LimitRange", "", "v1", "limitranges", ("limits",), handling="stored",
         note="stored, not enforced: pods get no default requests or limits from it"),
    Kind("ResourceQuota", "", "v1", "resourcequotas", ("quota",), handling="stored",
         note="stored, not enforced: the namespace may use more than it says"),
    Kind("PersistentVolume", "", "v1", "persistentvolumes", ("pv",), namespaced=False, handling="stored",
         note="stored; claims are served by Podman volumes on their node, not by these volumes"),
    Kind("ReplicationController", "", "v1", "replicationcontrollers", ("rc",), handling="stored",
         note=_NOT_RUN.format(plural="replication controllers")),
    Kind("ReplicaSet", "apps", "v1", "replicasets", ("rs",), handling="stored",
         note=_NOT_RUN.format(plural="bare replica sets (use a Deployment)")),
    Kind("ControllerRevision", "apps", "v1", "controllerrevisions", handling="ignored",
         note="ignored: Shoal keeps its own revisions"),
    Kind("Role", "rbac.authorization.k8s.io", "v1", "roles", handling="stored", note=_RBAC),
    Kind("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", handling="stored", note=_RBAC),
    Kind("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False,
         handling="stored", note=_RBAC),
    Kind("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False,
         handling="stored", note=_RBAC),
    Kind("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", ("netpol",), handling="stored",
         note="stored, not enforced: traffic between pods is NOT restricted by it"),
    Kind("Ingress", "networking.k8s.io", "v1", "ingresses", ("ing",), handling="stored",
         note="stored, not served: Shoal has no ingress controller; reach services by NodePort or"
              " LoadBalancer"),
    Kind("IngressClass", "networking.k8s.io", "v1", "ingressclasses", namespaced=False, handling="stored",
         note="stored; Shoal has no ingress controller"),
    Kind("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", handling="ignored",
         note="ignored: Shoal keeps every service's endpoints itself from its selector"),
    Kind("StorageClass", "storage.k8s.io", "v1", "storageclasses", ("sc",), namespaced=False,
         handling="stored", note="stored; every claim gets a Podman volume on its node whatever its class"),
    Kind("CSIDriver", "storage.k8s.io", "v1", "csidrivers", namespaced=False, handling="stored",
         note="stored, not used: claims are served by Podman volumes"),
    Kind("CustomResourceDefinition", "apiextensions.k8s.io", "v1", "customresourcedefinitions",
         ("crd", "crds"), namespaced=False, handling="stored",
         note="stored; objects of the kinds it defines are ignored (Shoal runs no custom controllers)"),
    Kind("APIService", "apiregistration.k8s.io", "v1", "apiservices", namespaced=False, handling="stored",
         note="stored, not served: Shoal has no Kubernetes API to extend"),
    Kind("ValidatingWebhookConfiguration", "admissionregistration.k8s.io", "v1",
         "validatingwebhookconfigurations", namespaced=False, handling="stored",
         note="stored, not called: Shoal's API does not call admission webhooks"),
    Kind("MutatingWebhookConfiguration", "admissionregistration.k8s.io", "v1",
         "mutatingwebhookconfigurations", namespaced=False, handling="stored",
         note="stored, not called: Shoal's API does not call admission webhooks"),
    Kind("Lease", "coordination.k8s.io", "v1", "leases", handling="stored",
         note="stored; Shoal's own leases live in NATS"),
    Kind("RuntimeClass", "node.k8s.io", "v1", "runtimeclasses", namespaced=False, handling="stored",
         note="stored; every pod runs on Podman"),
    Kind("PodTemplate", "", "v1", "podtemplates", handling="stored", note="stored; nothing uses it"),
    Kind("FlowSchema", "flowcontrol.apiserver.k8s.io", "v1", "flowschemas", namespaced=False,
         handling="ignored", note="ignored: Shoal's API has no priority and fairness"),
    Kind("PriorityLevelConfiguration", "flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations",
         namespaced=False, handling="ignored", note="ignored: Shoal's API has no priority and fairness"),
]  # fmt: skip

KUBERNETES_GROUPS = frozenset({"", "apps", "batch", "autoscaling", "policy", "extensions"})
"""Groups whose kinds Kubernetes defines itself (with every ``*.k8s.io`` group)."""

CUSTOM_NOTE = "ignored, not stored: a custom resource; Shoal runs no controller for it"


class Registry:
    """Lookups over the kinds: by manifest kind, by any name a command may use."""

    def __init__(self, kinds: list[Kind]) -> None:
        self.kinds = kinds
        self._by_kind = {k.kind: k for k in kinds}
        self._by_name: dict[str, Kind] = {}
        for k in kinds:
            for name in (k.singular, k.plural, *k.short_names, k.qualified, k.qualified_plural):
                self._by_name.setdefault(name.lower(), k)

    def by_kind(self, kind: str) -> Kind | None:
        return self._by_kind.get(kind)

    def resolve(self, name: str) -> Kind | None:
        """A kind from what a command line says: ``deploy``, ``deployments.apps``, ``Pod``..."""
        return self._by_name.get(name.lower())

    def names(self) -> list[str]:
        return sorted(k.plural for k in self.kinds if k.handling != "ignored")

    def acted(self) -> list[Kind]:
        return [k for k in self.kinds if k.handling == "acted"]


def is_kubernetes_group(group: str) -> bool:
    return group in KUBERNETES_GROUPS or group.endswith(".k8s.io")


_registry: Registry | None = None


def registry() -> Registry:
    """The registry (built on first use: models import slowly, the CLI not always needs them)."""
    global _registry
    if _registry is None:
        _registry = Registry(_acted() + _OTHERS)
    return _registry
