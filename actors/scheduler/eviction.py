"""When the pods of a silent node are replaced elsewhere: Kubernetes' node lifecycle rules, pure.

A node NotReady for ``delay`` seconds (on the judge's attentive clock) is *lost*: its pods
are evicted and replaced. Three brakes keep a judge's trouble from becoming an outage:

- **startup grace**: a judge that just started evicts nothing for a node it has not heard
  yet, for ``startup_grace`` seconds (a cold restart: the nodes come back a little later);
- **disruption**: per zone (the ``topology.kubernetes.io/zone`` label), a zone with no
  Ready node is *fully disrupted*, one with more than two NotReady nodes and at least
  ``unhealthy_threshold`` of them NotReady *partially*. When every zone is fully
  disrupted the fault is most likely the judge's or the network's: nothing is evicted. A
  partially disrupted zone evicts at ``secondary_rate`` if it is large, else not at all;
- **rate**: otherwise a zone's nodes are evicted at most ``rate`` per second (bursts of
  ``burst``), so a judge's bad minute costs a few nodes, not all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ZONE_LABEL = "topology.kubernetes.io/zone"

ZoneState = Literal["Normal", "PartialDisruption", "FullDisruption"]


@dataclass(frozen=True)
class EvictionPolicy:
    delay: float = 0.5
    """Seconds NotReady before a node's pods are replaced elsewhere."""
    startup_grace: float = 10.0
    """Seconds after the judge starts during which nodes it has not heard are not evicted."""
    rate: float = 1.0
    """Nodes evicted per second and zone, in a healthy zone (Kubernetes: 0.1)."""
    burst: int = 3
    unhealthy_threshold: float = 0.55
    large_cluster: int = 50
    """A partially disrupted zone larger than this still evicts, at ``secondary_rate``."""
    secondary_rate: float = 0.1
    forget_after: float = 3600.0
    """Seconds silent after which a node is gone for good: its registration is deleted (0: never)."""


@dataclass(frozen=True)
class NodeFacts:
    ready: bool
    silent_for: float
    heard: bool
    lease: float
    zone: str = ""


@dataclass
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; time is given, never read."""

    rate: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float, rate: float) -> bool:
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        self.rate = rate
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def zone_state(ready: int, not_ready: int, threshold: float) -> ZoneState:
    """Kubernetes' ComputeZoneState."""
    if ready == 0 and not_ready > 0:
        return "FullDisruption"
    if not_ready > 2 and not_ready / (ready + not_ready) >= threshold:
        return "PartialDisruption"
    return "Normal"


def zone_states(nodes: Mapping[str, NodeFacts], policy: EvictionPolicy) -> dict[str, ZoneState]:
    counts: dict[str, list[int]] = {}
    for facts in nodes.values():
        ready, not_ready = counts.setdefault(facts.zone, [0, 0])
        counts[facts.zone] = [ready + facts.ready, not_ready + (not facts.ready)]
    return {zone: zone_state(r, n, policy.unhealthy_threshold) for zone, (r, n) in counts.items()}


def zone_rate(state: ZoneState, size: int, policy: EvictionPolicy) -> float:
    if state == "PartialDisruption":
        return policy.secondary_rate if size > policy.large_cluster else 0.0
    return policy.rate  # a zone fully down while others are up really is down


def lost_nodes(
    nodes: Mapping[str, NodeFacts],
    policy: EvictionPolicy,
    *,
    clock: float,
    evicted: set[str],
    limiters: dict[str, TokenBucket],
) -> set[str]:
    """The nodes whose pods go now: those already evicted that are still NotReady, and new ones
    as their zone's state and rate allow. ``evicted`` and ``limiters`` are the caller's memory
    (updated here); ``clock`` is the judge's attentive clock."""
    evicted &= {name for name, facts in nodes.items() if not facts.ready}
    states = zone_states(nodes, policy)
    if states and all(state == "FullDisruption" for state in states.values()):
        return set()  # everything silent at once: the judge's problem, or the network's
    sizes: dict[str, int] = {}
    for facts in nodes.values():
        sizes[facts.zone] = sizes.get(facts.zone, 0) + 1
    lost = set(evicted)
    for name in sorted(nodes):
        facts = nodes[name]
        if facts.ready or name in evicted:
            continue
        if facts.silent_for < facts.lease + policy.delay:
            continue
        if not facts.heard and clock < policy.startup_grace:
            continue
        rate = zone_rate(states[facts.zone], sizes[facts.zone], policy)
        limiter = limiters.setdefault(facts.zone, TokenBucket(rate, policy.burst, float(policy.burst), clock))
        if rate > 0 and limiter.take(clock, rate):
            evicted.add(name)
            lost.add(name)
    return lost


def forgotten_nodes(nodes: Mapping[str, NodeFacts], policy: EvictionPolicy) -> set[str]:
    """Nodes silent for ``forget_after``: gone for good (a host retired, a benchmark's hollow fleet)."""
    if policy.forget_after <= 0:
        return set()
    return {
        name for name, facts in nodes.items() if not facts.ready and facts.silent_for >= policy.forget_after
    }
