"""How records are keyed in the KV buckets and named in subjects: the one place keys are spelled.

A namespaced object is ``<namespace>.<name>``, a cluster-scoped one its name alone. Each part
is exactly one subject token, so a key splits without ambiguity: names that are DNS labels
(every workload, service and namespace name) are their own token; other names Kubernetes
allows (``kube-root-ca.crt``, ``system:aggregate-to-edit``, ``applications.argoproj.io``)
become ``=`` followed by their URL-safe base64, which no DNS label can start with.
"""

from __future__ import annotations

import base64
import re

_TOKEN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENCODED = "="
"""How an encoded token starts: ``=`` is allowed in KV keys and never starts a DNS label."""


def name_token(name: str) -> str:
    """``name`` as one key and subject token: itself if a DNS label, else ``=`` + base64url."""
    if len(name) <= 63 and _TOKEN.match(name):
        return name
    return ENCODED + base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def token_name(token: str) -> str:
    """The name a token stands for (``name_token`` undone)."""
    if not token.startswith(ENCODED):
        return token
    body = token[len(ENCODED) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def object_key(namespace: str, name: str) -> str:
    """``<namespace>.<name>``; the name alone for cluster-scoped objects (``namespace`` empty)."""
    token = name_token(name)
    return f"{namespace}.{token}" if namespace else token


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a namespaced key."""
    namespace, _, token = key.partition(".")
    return namespace, token_name(token)


def cluster_name(key: str) -> str:
    """The name of a cluster-scoped object's key."""
    return token_name(key)


def revision_key(namespace: str, deployment: str, revision: int) -> str:
    """``<namespace>.<deployment>.<revision>``: one template a deployment has had."""
    return f"{namespace}.{deployment}.{revision}"


def revisions_of(namespace: str, deployment: str) -> str:
    """The key filter matching every revision of one deployment."""
    return f"{namespace}.{deployment}.*"


def revision_owner(kind: str, name: str) -> str:
    """What stands for an object in revision keys: a deployment's name; for a DaemonSet or
    StatefulSet ``<kind>:<name>`` as a token, which no deployment's name can be."""
    return name if kind == "Deployment" else name_token(f"{kind.lower()}:{name}")


def in_namespace(namespace: str) -> str:
    """The key filter matching every object of one namespace."""
    return f"{namespace}.*"


def stored_key(kind: str, namespace: str, name: str) -> str:
    """Objects Shoal stores but does not act on share one bucket: ``<kind>.<namespace or _>.<name>``."""
    return f"{kind}.{namespace or '_'}.{name_token(name)}"


def split_stored_key(key: str) -> tuple[str, str, str]:
    kind, namespace, token = key.split(".", 2)
    return kind, "" if namespace == "_" else namespace, token_name(token)
