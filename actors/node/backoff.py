"""Crash-loop backoff: how long a node waits before restarting a container that exited.

Kubernetes' rule: the first restart is immediate, then the wait starts at ``initial`` and
doubles up to ``cap``; a container that ran for ``reset_after`` seconds starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Crashes:
    count: int = 0
    last_exit: float = 0.0


class CrashBackoff:
    def __init__(self, initial: float = 10.0, cap: float = 300.0, reset_after: float = 600.0) -> None:
        self.initial = initial
        self.cap = cap
        self.reset_after = reset_after
        self._crashes: dict[tuple[str, str], _Crashes] = {}

    def wait_for(self, count: int) -> float:
        """The wait before restart number ``count + 1``."""
        return 0.0 if count == 0 else min(self.initial * 2 ** (count - 1), self.cap)

    def remaining(
        self, uid: str, container: str, *, exited_at: float, ran_for: float | None, now: float
    ) -> float:
        """Seconds still to wait before restarting the container that exited at ``exited_at``."""
        crashes = self._crashes.setdefault((uid, container), _Crashes())
        if ran_for is not None and ran_for >= self.reset_after:
            crashes.count = 0
        crashes.last_exit = exited_at
        return max(0.0, exited_at + self.wait_for(crashes.count) - now)

    def restarted(self, uid: str, container: str) -> None:
        self._crashes.setdefault((uid, container), _Crashes()).count += 1

    def current_wait(self, uid: str, container: str) -> float:
        crashes = self._crashes.get((uid, container))
        return self.wait_for(crashes.count) if crashes else 0.0

    def forget(self, uid: str) -> None:
        for key in [k for k in self._crashes if k[0] == uid]:
            del self._crashes[key]
