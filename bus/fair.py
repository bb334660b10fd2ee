"""Requests from many senders, answered one at a time with the senders taking turns.

An actor that answers a subject one request at a time (the API's applies, say) would answer
them in arrival order: a client that keeps 50 requests in flight would put every other
client behind its 50. Taken sender by sender in turn instead, each sender's requests stay in
their order and a quiet sender waits for at most one request of each busy one.

The sender is the identity in the request's reply subject (``_SHOAL_INBOX.<identity>.…``),
which the NATS server lets only that identity receive on: a client that names another's
inbox gets no answers. Requests without such an inbox (an insecure cluster) share one turn.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from shoal.security.permissions import INBOXES

T = TypeVar("T")


def sender_of(reply: str) -> str:
    """Who asked, from the reply subject; "" when it is not a Shoal identity's inbox."""
    parts = reply.split(".", 2)
    return parts[1] if len(parts) == 3 and parts[0] == INBOXES else ""


class FairQueue(Generic[T]):
    """Items by sender: each sender's in order, senders in turn (round robin)."""

    def __init__(self) -> None:
        self._waiting: dict[str, deque[T]] = {}
        self._turns: deque[str] = deque()

    def __len__(self) -> int:
        return sum(len(items) for items in self._waiting.values())

    def put(self, sender: str, item: T) -> None:
        items = self._waiting.get(sender)
        if items is None:
            items = self._waiting[sender] = deque()
            self._turns.append(sender)
        items.append(item)

    def take(self) -> T | None:
        """The next item: the oldest of the sender whose turn it is; None when there is none."""
        if not self._turns:
            return None
        sender = self._turns.popleft()
        items = self._waiting[sender]
        item = items.popleft()
        if items:
            self._turns.append(sender)
        else:
            del self._waiting[sender]
        return item
