"""Payloads: MessagePack with a schema version, and clear refusals for anything else."""

from __future__ import annotations

import ormsgpack
import pytest

from shoal.bus.codec import decode, encode
from shoal.errors import BadPayload
from shoal.models.api import ScaleRequest
from shoal.models.node import Node
from shoal.models.workloads import ResourceList


def test_round_trip_keeps_values_and_writes_kubernetes_quantities() -> None:
    node = Node(
        name="edge-1", capacity=ResourceList.of(1500, 2**30), allocatable=ResourceList.of(1500, 2**30)
    )
    raw = ormsgpack.unpackb(encode(node))
    assert raw["schema"] == 1
    assert raw["capacity"] == {"cpu": "1500m", "memory": "1Gi"}
    assert decode(encode(node), Node) == node


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\xc1\xff garbage", "not MessagePack"),
        (ormsgpack.packb([1, 2]), "must be a MessagePack map"),
        (ormsgpack.packb({"schema": 99, "name": "x", "replicas": 1}), "schema 99"),
        (ormsgpack.packb({"schema": 1, "name": "x", "replicas": -3}), "replicas"),
        (b"", "not MessagePack"),
    ],
)
def test_garbage_is_refused_with_a_reason(data: bytes, words: str) -> None:
    with pytest.raises(BadPayload, match=words):
        decode(data, ScaleRequest, what="request")
