"""What ``apply --prune -l SELECTOR`` deletes, decided without I/O.

The files applied are the whole of a labelled set: an object that carries the set's labels,
lives where the apply wrote (the namespaces of its objects; cluster-scoped kinds anywhere) and
is not among the applied objects goes. What Shoal made itself is never pruned, whatever its
labels: pods of workloads and Jobs of CronJobs (they have an owner), a StatefulSet's claims
(its data outlives it, as on Kubernetes), the system namespaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shoal.label_selectors import Selector
from shoal.models.core import SYSTEM_NAMESPACES
from shoal.models.statefulset import MADE_BY_STATEFULSET

_LAST = ("Namespace",)
"""Kinds pruned after the rest: a namespace's deletion takes what is in it."""


@dataclass(frozen=True)
class Candidate:
    """What prune needs to know of one stored object."""

    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    owned: bool = False
    """Made by a controller (a pod of a Deployment, a Job of a CronJob)."""


@dataclass(frozen=True)
class ClaimTemplates:
    """A StatefulSet's claim templates: the claims it makes are ``TEMPLATE-NAME-ORDINAL``."""

    namespace: str
    name: str
    templates: tuple[str, ...]

    def made(self, namespace: str, claim: str) -> bool:
        if namespace != self.namespace:
            return False
        for template in self.templates:
            prefix = f"{template}-{self.name}-"
            if claim.startswith(prefix) and claim[len(prefix) :].isdigit():
                return True
        return False


def prune_namespaces(applied: Iterable[tuple[str, bool, str]], default: str = "default") -> set[str]:
    """Namespaces whose objects an apply may prune: those of its namespaced objects
    (``(kind, namespaced, namespace)``), else ``default``, as kubectl chooses them."""
    found = {namespace for _, namespaced, namespace in applied if namespaced}
    return found or {default}


def to_prune(
    stored: Iterable[Candidate],
    applied: set[tuple[str, str, str]],
    selector: Selector,
    namespaces: set[str],
    statefulsets: Iterable[ClaimTemplates] = (),
) -> list[Candidate]:
    """The objects to delete, namespaces last. ``applied``: (kind, namespace, name) of the
    objects of the apply (namespace ``""`` for cluster-scoped kinds); ``stored`` gives
    cluster-scoped objects with namespace ``""``."""
    makers = list(statefulsets)
    chosen = []
    for obj in stored:
        if (obj.kind, obj.namespace, obj.name) in applied or obj.owned:
            continue
        if obj.namespace and obj.namespace not in namespaces:
            continue
        if obj.kind == "Namespace" and obj.name in SYSTEM_NAMESPACES:
            continue
        if obj.kind == "PersistentVolumeClaim" and (
            MADE_BY_STATEFULSET in obj.annotations or any(m.made(obj.namespace, obj.name) for m in makers)
        ):
            continue
        if obj.kind == "Namespace" and obj.name in {ns for (_, ns, _) in applied if ns}:
            continue  # the apply writes into it
        if not selector.matches(obj.labels):
            continue
        chosen.append(obj)
    return sorted(chosen, key=lambda o: (o.kind in _LAST, o.kind, o.namespace, o.name))
