"""A node that starts cut off from NATS: its decisions in tables, its local copy on disk, and the
keeper on the in-memory runtime (the real thing, on Podman behind a cut link, is in
tests/test_partitions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.actors.node.offline import (
    Assignments,
    CannotStart,
    OfflineKeeper,
    StartAgain,
    offline_actions,
    restarts,
)
from shoal.runtime.memory import MemoryRuntime
from tests.test_node_decisions import KEY, pod, seen


@pytest.mark.parametrize(
    ("policy", "exit_code", "again"),
    [
        ("Always", 0, True),
        ("Always", 137, True),
        ("OnFailure", 1, True),
        ("OnFailure", 143, True),  # stopped by a reboot
        ("OnFailure", 0, False),  # finished its work
        ("Never", 1, False),
    ],
)
def test_which_exited_containers_run_again(policy: str, exit_code: int, again: bool) -> None:
    assert restarts(policy, exit_code) is again


@pytest.mark.parametrize(
    ("assigned", "observed", "actions"),
    [
        # After a reboot every container has exited: the pod's own start again.
        ({KEY: pod()}, [seen(("exited", 137))], [StartAgain(KEY, "c0", "id0", 137)]),
        (
            {KEY: pod(containers=2)},
            [seen(("exited", 137), ("exited", 0))],
            [
                StartAgain(KEY, "c0", "id0", 137),
                StartAgain(KEY, "c1", "id1", 0),
            ],
        ),
        ({KEY: pod()}, [seen(("running", None))], []),  # running: left alone
        ({KEY: pod("Never")}, [seen(("exited", 1))], []),
        ({KEY: pod("OnFailure")}, [seen(("exited", 0))], []),
        ({KEY: pod(uid="u2")}, [seen(("exited", 1))], [CannotStart(KEY, "")]),  # another incarnation's
        ({}, [seen(("exited", 1))], []),  # not this node's, as far as it knows: the control plane decides
        ({KEY: pod()}, [], [CannotStart(KEY, "")]),  # its containers are gone: wait for NATS
    ],
)
def test_what_a_cut_off_node_starts(assigned, observed, actions) -> None:  # type: ignore[no-untyped-def]
    found = offline_actions(assigned, observed)
    assert [(type(a), a.key, getattr(a, "container_id", "")) for a in found] == [
        (type(a), a.key, getattr(a, "container_id", "")) for a in actions
    ]


def test_the_local_copy_holds_the_records_bound_here(tmp_path: Path) -> None:
    copy = Assignments(tmp_path / "assignments")
    assert copy.load() == {} and copy.keys() == set()
    copy.save(KEY, pod())
    copy.save("default.q", pod(uid="u9"))
    assert copy.load()[KEY] == pod() and copy.keys() == {KEY, "default.q"}
    assert (tmp_path / "assignments" / KEY).stat().st_mode & 0o777 == 0o600
    copy.save("default.q", None)
    assert copy.keys() == {KEY}
    (tmp_path / "assignments" / "default.bad").write_bytes(b"\xc1 not msgpack")
    assert set(copy.load()) == {KEY}  # a damaged file is skipped, not fatal


async def test_the_keeper_starts_what_exited_and_backs_off_a_crash_loop(tmp_path: Path) -> None:
    runtime = MemoryRuntime("n")
    record = pod()
    await runtime.start_pod(record)
    runtime.crash("default", "p", 137)
    copy = Assignments(tmp_path)
    copy.save(KEY, record)
    keeper = OfflineKeeper(runtime, copy)
    assigned = copy.load()
    await keeper.keep(assigned, await runtime.list_pods())
    assert [c.state for c in (await runtime.inspect_pod("default", "p")).containers.values()] == ["running"]  # type: ignore[union-attr]
    runtime.crash("default", "p", 1)
    await keeper.keep(assigned, await runtime.list_pods())  # exited again at once: it waits
    assert [c.state for c in (await runtime.inspect_pod("default", "p")).containers.values()] == ["exited"]  # type: ignore[union-attr]
