"""Requests answered with the senders taking turns (bus.fair): decided without a server."""

from __future__ import annotations

import pytest

from shoal.bus.fair import FairQueue, sender_of


@pytest.mark.parametrize(
    ("reply", "sender"),
    [
        ("_SHOAL_INBOX.admin.x1y2.7", "admin"),
        ("_SHOAL_INBOX.node-edge-1.abc.1", "node-edge-1"),
        ("_INBOX.abc.1", ""),  # no Shoal identity (an insecure cluster)
        ("_SHOAL_INBOX.admin", ""),
        ("", ""),
    ],
)
def test_the_sender_is_the_identity_of_the_reply_inbox(reply: str, sender: str) -> None:
    assert sender_of(reply) == sender


@pytest.mark.parametrize(
    ("arrivals", "order"),
    [
        # A flood from a, then one request from b: b's comes second, not last.
        ([("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 5)], [1, 5, 2, 3, 4]),
        # Each sender's own requests keep their order.
        ([("a", 1), ("b", 2), ("a", 3), ("b", 4)], [1, 2, 3, 4]),
        ([("a", 1), ("a", 2), ("b", 3), ("b", 4), ("c", 5)], [1, 3, 5, 2, 4]),
        ([("", 1), ("", 2)], [1, 2]),
        ([], []),
    ],
)
def test_senders_take_turns_and_keep_their_own_order(
    arrivals: list[tuple[str, int]], order: list[int]
) -> None:
    queue: FairQueue[int] = FairQueue()
    for sender, item in arrivals:
        queue.put(sender, item)
    assert len(queue) == len(arrivals)
    taken = []
    while (item := queue.take()) is not None:
        taken.append(item)
    assert taken == order
    assert len(queue) == 0


def test_a_sender_that_comes_back_joins_the_end_of_the_turns() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.put("a", "a1")
    queue.put("b", "b1")
    assert queue.take() == "a1"
    queue.put("a", "a2")  # a had nothing waiting: it queues behind b
    assert [queue.take(), queue.take(), queue.take()] == ["b1", "a2", None]
