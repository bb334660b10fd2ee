"""``shoal wait``: until objects meet a condition, or are gone, as ``kubectl wait``.

``--for=condition=NAME`` (``Ready`` for pods and nodes; ``Available`` and ``Progressing``
for deployments; ``Complete`` and ``Failed`` for Jobs), optionally ``=false`` for the
opposite, or ``--for=delete``. Objects are named (``KIND/NAME``, ``KIND NAME``) or selected
(``KIND -l SELECTOR``, ``--all``); each prints ``KIND/NAME condition met`` as it meets it, and
the command fails with one line naming those that did not within ``--timeout``.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from shoal import keys
from shoal.cli import complete
from shoal.cli.common import NamespaceOption, ServerOption, with_client
from shoal.cli.output import console
from shoal.errors import InvalidManifest, ShoalError
from shoal.kinds import Kind, registry
from shoal.label_selectors import parse_selector

CONDITIONS = {
    "Pod": ("Ready",),
    "Node": ("Ready",),
    "Deployment": ("Available", "Progressing"),
    "Job": ("Complete", "Failed"),
}
"""The conditions ``wait`` knows, per kind."""


@dataclass(frozen=True)
class Wanted:
    condition: str
    """A condition's name, or ``delete``."""
    value: bool = True


def parse_for(text: str, kind: Kind) -> Wanted:
    """``--for``: ``delete``, or ``condition=NAME[=true|false]`` among the kind's conditions."""
    if text == "delete":
        return Wanted("delete")
    what, _, rest = text.partition("=")
    if what != "condition" or not rest:
        raise InvalidManifest([f"--for={text}: use --for=condition=NAME or --for=delete"])
    name, _, value = rest.partition("=")
    known = CONDITIONS.get(kind.kind, ())
    match = next((c for c in known if c.lower() == name.lower()), None)
    if match is None:
        shown = ", ".join(known) or "none (only --for=delete)"
        raise InvalidManifest([f"--for={text}: {kind.plural} have the conditions {shown}"])
    if value.lower() not in ("", "true", "false"):
        raise InvalidManifest([f"--for={text}: a condition is true or false, not {value!r}"])
    return Wanted(match, value.lower() != "false")


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, option: str) -> float:
    """Seconds in ``30s``, ``1m30s``, ``500ms``, ``2h`` or a plain number (Go's durations, as
    kubectl takes them)."""
    found = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:ms|s|m|h))+|\d+(?:\.\d+)?)", text.strip())
    if found is None:
        raise InvalidManifest([f"{option}={text}: use a duration such as 30s, 5m or 1h30m"])
    if text.strip().replace(".", "", 1).isdigit():
        return float(text)
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text))


def condition_of(kind: str, condition: str, obj: Any, status: Any) -> bool:
    """Whether the object's condition holds, from its record and its status (None: not yet)."""
    if kind == "Pod":
        return status is not None and status.uid == obj.metadata.uid and status.ready
    if kind == "Node":
        return status is not None and status.ready
    if kind == "Deployment":
        if status is None or status.uid != obj.metadata.uid:
            return False
        current = status.observed_generation >= obj.metadata.generation
        if condition == "Available":
            return current and status.available_replicas >= obj.spec.desired_replicas
        return current and status.progressing == "True"
    if kind == "Job":
        if status is None or status.uid != obj.metadata.uid:
            return False
        return any(c.type == condition and c.status == "True" for c in status.conditions)
    return False


async def _records(client: Any, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every object of ``kind`` by key, and their statuses by the same keys."""
    if kind == "Pod":
        return await client.pods(), await client.pod_statuses()
    if kind == "Node":
        return await client.nodes(), await client.node_conditions()
    if kind == "Deployment":
        return await client.deployments(), await client.deployment_statuses()
    if kind == "Job":
        return await client.jobs(), await client.job_statuses()
    if kind == "DaemonSet":
        return await client.daemonsets(), {}
    if kind == "StatefulSet":
        return await client.statefulsets(), {}
    raise InvalidManifest([f"shoal wait does not follow {kind}s (it follows {', '.join(sorted(WAITABLE))})"])


WAITABLE = {"Pod", "Node", "Deployment", "Job", "DaemonSet", "StatefulSet"}


# A node's registration is no Kubernetes object (no metadata): its name and labels are fields
# of its own, and a node that registers again under its name is still the same node.
def _name(obj: Any) -> str:
    meta = getattr(obj, "metadata", None)
    return meta.name if meta is not None else obj.name


def _labels(obj: Any) -> dict[str, str]:
    meta = getattr(obj, "metadata", None)
    return meta.labels if meta is not None else obj.labels


def _uid(obj: Any) -> str:
    meta = getattr(obj, "metadata", None)
    return meta.uid if meta is not None else obj.name


def wait(
    target: Annotated[
        str,
        typer.Argument(
            help="KIND/NAME, or KIND (with NAME, -l or --all)", autocompletion=complete.kind_or_object
        ),
    ],
    name: Annotated[
        str | None,
        typer.Argument(
            help="NAME, when the first argument is the kind", autocompletion=complete.object_names
        ),
    ] = None,
    wait_for: Annotated[str, typer.Option("--for", help="condition=NAME[=false], or delete")] = ...,  # type: ignore[assignment]
    selector: Annotated[str | None, typer.Option("--selector", "-l", help="Label selector.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every object of the kind in the namespace.")] = False,
    timeout_text: Annotated[
        str, typer.Option("--timeout", help="How long to wait: 30s, 5m, 1h, or seconds.")
    ] = "30s",
    namespace: NamespaceOption = "default",
    server: ServerOption = None,
) -> None:
    """Wait until objects meet a condition, or are deleted."""
    timeout = parse_duration(timeout_text, "--timeout")
    kind_text, _, slash_name = target.partition("/")
    kind = registry().resolve(kind_text)
    if kind is None:
        raise InvalidManifest([f"{kind_text!r} is not a kind Shoal knows (shoal api-resources)"])
    object_name = slash_name or name
    if not object_name and not selector and not every:
        raise InvalidManifest(["shoal wait needs a name, a selector (-l) or --all"])
    wanted = parse_for(wait_for, kind)
    if kind.kind not in WAITABLE:
        raise InvalidManifest([f"shoal wait does not follow {kind.plural}"])
    match_labels = parse_selector(selector)
    scope_ns = namespace if kind.namespaced else ""

    def chosen(objects: dict[str, Any]) -> dict[str, Any]:
        if object_name:
            key = keys.object_key(scope_ns, object_name)
            return {key: objects[key]} if key in objects else {}
        prefix = f"{scope_ns}." if scope_ns else ""
        return {k: o for k, o in objects.items() if k.startswith(prefix) and match_labels.matches(_labels(o))}

    async def follow(client: Any) -> None:
        deadline = time.monotonic() + timeout
        first: dict[str, Any] | None = None
        met: set[str] = set()
        while True:
            objects, statuses = await _records(client, kind.kind)
            present = chosen(objects)
            if first is None:
                first = present
                if not present and wanted.condition != "delete":
                    what = f'{kind.singular} "{object_name}"' if object_name else f"{kind.plural} matching"
                    raise ShoalError(f"no matching resources found: {what} in namespace {namespace}")
            pending = []
            for key, obj in first.items():
                if key in met:
                    continue
                if wanted.condition == "delete":
                    done = key not in present or _uid(present[key]) != _uid(obj)
                else:
                    current = present.get(key)
                    done = current is not None and (
                        condition_of(kind.kind, wanted.condition, current, statuses.get(key)) == wanted.value
                    )
                if done:
                    met.add(key)
                    verb = "deleted" if wanted.condition == "delete" else "condition met"
                    console.print(f"{kind.qualified}/{_name(obj)} {verb}")
                else:
                    pending.append(_name(obj))
            if not pending:
                return
            if time.monotonic() > deadline:
                raise ShoalError(
                    f"timed out after {timeout:g}s waiting for the condition on {kind.plural}/"
                    + f", {kind.plural}/".join(sorted(pending))
                )
            await asyncio.sleep(0.25)

    with_client(server, follow)
