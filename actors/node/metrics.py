"""Sampling what a node's pods use, and publishing it for the autoscaler and ``shoal top``.

Every interval the runtime is asked for each running container's cumulative CPU time and
memory; CPU is turned into a rate (millicores) from two samples, as metrics-server does, so
a container shows up from its second sample on. One ``NodeMetrics`` per node goes to the
in-memory metrics bucket, which republishes it on ``shoal.v1.metrics.node.<node>``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from shoal.bus.batch import BucketWriter
from shoal.bus.codec import encode
from shoal.models.base import SCHEMA_VERSION
from shoal.models.metrics import ContainerMetrics, NodeMetrics, PodMetrics
from shoal.runtime.interface import ContainerUsage, Runtime

log = logging.getLogger(__name__)


class UsageRates:
    """CPU rates from successive cumulative readings, per container."""

    def __init__(self) -> None:
        self.previous: dict[str, ContainerUsage] = {}

    def pods(self, readings: list[ContainerUsage]) -> list[PodMetrics]:
        """Pods whose every running container has a rate (two readings) by now."""
        grouped: dict[tuple[str, str], list[ContainerMetrics]] = defaultdict(list)
        incomplete: set[tuple[str, str]] = set()
        current: dict[str, ContainerUsage] = {}
        for reading in readings:
            current[reading.container_id] = reading
            key = (reading.namespace, reading.pod)
            before = self.previous.get(reading.container_id)
            elapsed = reading.at - before.at if before is not None else 0.0
            if before is None or elapsed <= 0:
                incomplete.add(key)
                continue
            rate = max(0.0, reading.cpu_seconds - before.cpu_seconds) / elapsed
            grouped[key].append(
                ContainerMetrics.model_construct(
                    name=reading.container, cpu_millis=round(rate * 1000), memory_bytes=reading.memory_bytes
                )
            )
        self.previous = current
        return [
            PodMetrics.model_construct(
                namespace=namespace,
                name=name,
                uid="",
                cpu_millis=sum(c.cpu_millis for c in containers),
                memory_bytes=sum(c.memory_bytes for c in containers),
                containers=containers,
            )
            for (namespace, name), containers in grouped.items()
            if (namespace, name) not in incomplete
        ]


class MetricsReporter:
    def __init__(
        self,
        node: str,
        runtime: Runtime,
        writer: BucketWriter,
        interval: float,
        capacity: tuple[int, int] = (0, 0),
    ) -> None:
        self.node = node
        self.runtime = runtime
        self.writer = writer
        self.interval = interval
        self.capacity = capacity
        self.rates = UsageRates()

    async def sample(self) -> NodeMetrics:
        readings = await self.runtime.usage()
        pods = self.rates.pods(readings)
        return NodeMetrics.model_construct(
            schema_version=SCHEMA_VERSION,
            node=self.node,
            timestamp=time.time(),
            window=self.interval,
            cpu_millis=sum(p.cpu_millis for p in pods),
            memory_bytes=sum(p.memory_bytes for p in pods),
            capacity_cpu_millis=self.capacity[0],
            capacity_memory_bytes=self.capacity[1],
            pods=pods,
        )

    async def run(self) -> None:
        failing = False
        while True:
            started = time.monotonic()
            try:
                await self.writer.put(self.node, encode(await self.sample()))
                failing = False
            except Exception as err:  # Podman or NATS busy or away: the next sample will do
                if not failing:
                    log.warning("could not sample or publish pod metrics: %s", err)
                failing = True
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
