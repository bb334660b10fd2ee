"""A node that starts cut off from NATS: its pods run again from a local copy of its assignments.

An edge host reboots while its link is down: Podman still holds its pods' containers (exited),
and the node cannot ask the control plane what is its. So the node actor keeps a copy of every
pod record bound to it under its data dir (``assignments/<key>``, rewritten as they change), and
a node process that cannot reach NATS when it starts runs the ``OfflineKeeper`` meanwhile: it
starts again the containers of the pods the copy names (same uid), as their ``restartPolicy``
says, and restarts them when they exit, with the crash backoff. Pods whose containers are gone
cannot be made without the control plane (their Secrets, their volumes' sources): they wait.
Once the node is back in touch, the node actor takes over: it adopts what runs, and what the
control plane moved elsewhere meanwhile goes, as after any cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from shoal.bus.codec import decode, encode
from shoal.errors import BadPayload
from shoal.models.pod import Pod, pod_key
from shoal.runtime.interface import PodObservation, Runtime

log = logging.getLogger(__name__)

ASSIGNMENTS_DIR = "assignments"
"""Under the node's data dir: a file per pod bound to it, named by the pod's key."""
RELIST_SECONDS = 2.0
BACKOFF_FIRST = 10.0
BACKOFF_MAX = 300.0


class Assignments:
    """The local copy of the pod records bound to one node: a file per pod, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, key: str, pod: Pod | None) -> None:
        """Keep ``pod`` as the record of ``key`` (None: it is no longer this node's)."""
        path = self.root / key
        if pod is None:
            path.unlink(missing_ok=True)
            return
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_name(f".{key}.partial")
        partial.write_bytes(encode(pod))
        partial.chmod(0o600)  # pod specs carry environment values
        partial.replace(path)

    def keys(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if not p.name.startswith(".")}

    def load(self) -> dict[str, Pod]:
        pods: dict[str, Pod] = {}
        for key in self.keys():
            try:
                pods[key] = decode((self.root / key).read_bytes(), Pod, what=f"assignment {key}")
            except (OSError, BadPayload) as err:
                log.warning("the local copy of %s cannot be read (%s): left alone", key, err)
        return pods


@dataclass(frozen=True)
class StartAgain:
    key: str
    container: str
    container_id: str
    exit_code: int | None


@dataclass(frozen=True)
class CannotStart:
    key: str
    why: str


def restarts(policy: str, exit_code: int | None) -> bool:
    """Whether a container that exited with ``exit_code`` runs again under ``policy``."""
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def offline_actions(
    assigned: dict[str, Pod], observed: list[PodObservation]
) -> list[StartAgain | CannotStart]:
    """What a cut-off node does now: start again each exited container of a pod the local copy
    names (the same uid) that its restart policy restarts; say which assigned pods it cannot run.
    Containers of other pods are left as they are: the control plane decides on them later."""
    actions: list[StartAgain | CannotStart] = []
    seen: set[str] = set()
    for pod in observed:
        key = pod_key(pod.namespace, pod.name)
        record = assigned.get(key)
        if record is None or record.metadata.uid != pod.uid:
            continue
        seen.add(key)
        for name, container in sorted(pod.containers.items()):
            if container.state == "exited" and restarts(record.spec.restart_policy, container.exit_code):
                actions.append(StartAgain(key, name, container.container_id, container.exit_code))
    for key in sorted(set(assigned) - seen):
        actions.append(CannotStart(key, "its containers are gone; it starts once the node is back in touch"))
    return actions


class OfflineKeeper:
    """Runs while the node process cannot reach NATS (cancelled once it can)."""

    def __init__(self, runtime: Runtime, assignments: Assignments) -> None:
        self.runtime = runtime
        self.assignments = assignments
        self._waits: dict[str, tuple[float, float]] = {}
        """Container id → (when it may start again, the wait after that): the crash backoff."""
        self._said: set[str] = set()

    async def run(self) -> None:
        assigned = await asyncio.to_thread(self.assignments.load)
        log.warning(
            "cut off from NATS at start: running the %d pod(s) of this node's local copy until it is back",
            len(assigned),
        )
        while True:
            with contextlib.suppress(Exception):  # Podman away for a moment: look again later
                await self.keep(assigned, await self.runtime.list_pods())
            await asyncio.sleep(RELIST_SECONDS)

    async def keep(self, assigned: dict[str, Pod], observed: list[PodObservation]) -> None:
        now = asyncio.get_running_loop().time()
        for action in offline_actions(assigned, observed):
            if isinstance(action, CannotStart):
                if action.key not in self._said:
                    self._said.add(action.key)
                    log.warning("cannot run %s while cut off: %s", action.key, action.why)
                continue
            at, wait = self._waits.get(action.container_id, (0.0, BACKOFF_FIRST))
            if now < at:
                continue
            log.info(
                "cut off: starting %s/%s again (exit code %s)", action.key, action.container, action.exit_code
            )
            await self.runtime.start_again(action.container_id)
            # The first start (after a reboot) is at once; one that exits again waits, doubling.
            self._waits[action.container_id] = (now + wait, min(wait * 2, BACKOFF_MAX))
