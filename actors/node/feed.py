"""The pods bucket as node actors see it: one watch per process, indexed by node.

A real host runs one node actor; a hollow fleet runs hundreds in one process, and one
watch of every pod per node actor would multiply the traffic by as many. The feed watches
once and hands each change to the node actors it concerns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from shoal.bus.cache import KVCache
from shoal.bus.kv import Bucket, Entry
from shoal.models.pod import Pod

Listener = Callable[[str, Entry[Pod] | None, Entry[Pod] | None], None]


class PodFeed:
    def __init__(self, bucket: Bucket[Pod]) -> None:
        self.cache = KVCache(bucket, self._changed)
        self.by_node: dict[str, set[str]] = defaultdict(set)
        self.listeners: dict[str, Listener] = {}

    def keys_for(self, node: str) -> set[str]:
        return self.by_node.get(node, set())

    def _changed(self, key: str, old: Entry[Pod] | None, new: Entry[Pod] | None) -> None:
        old_node = old.value.node_name if old is not None else ""
        new_node = new.value.node_name if new is not None else ""
        if old_node and old_node != new_node:
            self.by_node[old_node].discard(key)
        if new_node:
            self.by_node[new_node].add(key)
        for node in {old_node, new_node} - {""}:
            listener = self.listeners.get(node)
            if listener is not None:
                listener(key, old, new)
