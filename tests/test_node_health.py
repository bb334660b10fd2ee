"""Judging nodes: the attentive clock, heartbeats, and when a silent node's pods move. No servers."""

from __future__ import annotations

import pytest

from shoal.actors.health import AttentiveClock, NodeHealth
from shoal.actors.scheduler.eviction import (
    EvictionPolicy,
    NodeFacts,
    TokenBucket,
    forgotten_nodes,
    lost_nodes,
    zone_state,
)
from shoal.bus import subjects
from shoal.bus.codec import encode
from shoal.models.node import NodeHeartbeat


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_attentive_clock_does_not_count_the_judges_own_stalls_or_deafness() -> None:
    time = FakeTime()
    clock = AttentiveClock(max_step=0.2, now=time)
    for _ in range(10):
        time.now += 0.1
        clock.tick()
    assert clock.read() == pytest.approx(1.0)
    time.now += 5.0  # the event loop was blocked for five seconds
    clock.tick()
    assert clock.read() == pytest.approx(1.2)
    clock.tick(listening=False)  # the connection to NATS is down from here
    time.now += 15.0
    clock.tick(listening=False)
    assert clock.read() == pytest.approx(1.2)
    clock.tick(listening=True)  # back: the outage did not count
    time.now += 0.1
    assert clock.read() == pytest.approx(1.3)


def heard(health: NodeHealth, node: str, lease: float = 2.0, started: float = 1.0) -> None:
    beat = NodeHeartbeat(node=node, started_at=started, lease_seconds=lease)
    health.heard(subjects.node_heartbeat(node), encode(beat))


def test_a_node_is_ready_while_heartbeats_arrive_within_its_lease() -> None:
    time = FakeTime()
    health = NodeHealth(nc=None, clock=AttentiveClock(max_step=0.2, now=time))  # type: ignore[arg-type]
    health.know("a", 2.0)
    assert not health.judge("a").ready  # known from its registration, not heard yet
    heard(health, "a")
    assert health.judge("a").ready
    for _ in range(19):
        time.now += 0.1
        health.clock.tick()
    assert health.judge("a").ready
    for _ in range(2):
        time.now += 0.1
        health.clock.tick()
    judgment = health.judge("a")
    assert not judgment.ready and judgment.heard and judgment.silent_for == pytest.approx(2.1)
    heard(health, "a")
    assert health.judge("a").ready


@pytest.mark.parametrize(
    "subject, payload",
    [
        ("shoal.v1.node.a.heartbeat", b"\xff"),
        ("shoal.v1.node.a.heartbeat", encode(NodeHeartbeat(node="b"))),  # another node's name
        ("shoal.v1.node.Bad_Name.heartbeat", encode(NodeHeartbeat(node="a"))),
        ("shoal.v1.node.heartbeat", b""),
    ],
)
def test_garbage_heartbeats_are_ignored(subject: str, payload: bytes) -> None:
    health = NodeHealth(nc=None)  # type: ignore[arg-type]
    health.heard(subject, payload)
    assert not any(j.ready for j in health.judge_all().values())


def facts(ready: bool, silent: float = 0.0, *, heard: bool = True, zone: str = "") -> NodeFacts:
    return NodeFacts(ready=ready, silent_for=silent, heard=heard, lease=2.0, zone=zone)


@pytest.mark.parametrize(
    "ready, not_ready, state",
    [
        (3, 0, "Normal"),
        (0, 3, "FullDisruption"),
        (1, 2, "Normal"),  # two NotReady nodes are never a disruption
        (1, 3, "PartialDisruption"),
        (45, 55, "PartialDisruption"),
        (46, 54, "Normal"),
    ],
)
def test_zone_states_follow_kubernetes(ready: int, not_ready: int, state: str) -> None:
    assert zone_state(ready, not_ready, 0.55) == state


POLICY = EvictionPolicy(delay=0.5, startup_grace=10.0, rate=1.0, burst=2)


def test_a_node_is_lost_once_silent_for_its_lease_and_the_delay() -> None:
    nodes = {"a": facts(False, 2.4), "b": facts(True), "c": facts(True)}
    assert lost_nodes(nodes, POLICY, clock=100.0, evicted=set(), limiters={}) == set()
    nodes["a"] = facts(False, 2.5)
    assert lost_nodes(nodes, POLICY, clock=100.0, evicted=set(), limiters={}) == {"a"}


def test_nothing_is_lost_when_every_node_falls_silent_at_once() -> None:
    nodes = {name: facts(False, 30.0) for name in "abc"}
    assert lost_nodes(nodes, POLICY, clock=100.0, evicted=set(), limiters={}) == set()


def test_a_judge_that_just_started_waits_for_nodes_it_has_not_heard() -> None:
    nodes = {"a": facts(False, 3.0, heard=False), "b": facts(True), "c": facts(True)}
    assert lost_nodes(nodes, POLICY, clock=5.0, evicted=set(), limiters={}) == set()
    assert lost_nodes(nodes, POLICY, clock=10.0, evicted=set(), limiters={}) == {"a"}
    # A node it heard and then lost is lost at once, grace or not.
    nodes["a"] = facts(False, 3.0, heard=True)
    assert lost_nodes(nodes, POLICY, clock=5.0, evicted=set(), limiters={}) == {"a"}


def test_evictions_are_rate_limited_and_a_lost_node_stays_lost() -> None:
    nodes = {f"n{i}": facts(False, 5.0) for i in range(3)} | {f"r{i}": facts(True) for i in range(7)}
    evicted: set[str] = set()
    limiters: dict[str, TokenBucket] = {}
    first = lost_nodes(nodes, POLICY, clock=100.0, evicted=evicted, limiters=limiters)
    assert first == {"n0", "n1"}  # the burst
    assert lost_nodes(nodes, POLICY, clock=100.5, evicted=evicted, limiters=limiters) == {"n0", "n1"}
    assert lost_nodes(nodes, POLICY, clock=101.0, evicted=evicted, limiters=limiters) == {"n0", "n1", "n2"}
    nodes["n0"] = facts(True)  # back: forgotten, and its pods may stay
    assert lost_nodes(nodes, POLICY, clock=101.0, evicted=evicted, limiters=limiters) == {"n1", "n2"}


def test_a_partially_disrupted_small_zone_evicts_nothing_and_a_large_one_slowly() -> None:
    small = {f"n{i}": facts(False, 5.0) for i in range(6)} | {f"r{i}": facts(True) for i in range(4)}
    assert lost_nodes(small, POLICY, clock=100.0, evicted=set(), limiters={}) == set()
    large = {f"n{i}": facts(False, 5.0) for i in range(60)} | {f"r{i}": facts(True) for i in range(40)}
    limiters: dict[str, TokenBucket] = {}
    evicted: set[str] = set()
    assert len(lost_nodes(large, POLICY, clock=100.0, evicted=evicted, limiters=limiters)) == 2  # burst
    assert len(lost_nodes(large, POLICY, clock=105.0, evicted=evicted, limiters=limiters)) == 2
    assert len(lost_nodes(large, POLICY, clock=110.0, evicted=evicted, limiters=limiters)) == 3  # 0.1/s


def test_a_zone_fully_down_while_another_is_up_is_evicted() -> None:
    nodes = {"a1": facts(False, 5.0, zone="a"), "a2": facts(False, 5.0, zone="a")}
    nodes |= {"b1": facts(True, zone="b"), "b2": facts(True, zone="b")}
    assert lost_nodes(nodes, POLICY, clock=100.0, evicted=set(), limiters={}) == {"a1", "a2"}


def test_a_node_silent_for_long_enough_is_forgotten() -> None:
    policy = EvictionPolicy(forget_after=3600.0)
    nodes = {"gone": facts(False, 3600.0), "quiet": facts(False, 3599.0), "up": facts(True)}
    assert forgotten_nodes(nodes, policy) == {"gone"}
    assert forgotten_nodes(nodes, EvictionPolicy(forget_after=0)) == set()
