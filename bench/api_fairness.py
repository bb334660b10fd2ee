"""Benchmark: one client flooding the API does not starve another.

Runs a real `shoal up` in a temporary data dir. Two people with identities of their own (as
`shoal credentials create admin NAME` issues them): `quiet` applies one ConfigMap every
0.1 s and times each acknowledgement, first alone, then while `flooder` keeps ``--in-flight``
ConfigMap applies outstanding without pause. The API answers applies one at a time, with the
senders taking turns (`bus/fair.py`); in arrival order, each of quiet's applies would instead
wait behind all of flooder's in flight, which the flooder's own latency shows.

    .venv/bin/python bench/api_fairness.py [--requests 60] [--in-flight 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.client import ShoalClient
from tests.harness import LocalShoal, documents, unique_name

PAUSE = 0.1


def config_map(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{value: '{value}'}}\n"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def quiet_applies(client: ShoalClient, count: int) -> list[float]:
    """Seconds to each of ``count`` acknowledged applies, one every PAUSE seconds."""
    took = []
    for index in range(count):
        started = time.perf_counter()
        await client.apply(documents(config_map("quiet", str(index))))
        took.append(time.perf_counter() - started)
        await asyncio.sleep(PAUSE)
    return took


async def flood(client: ShoalClient, in_flight: int, stop: asyncio.Event, took: list[float]) -> None:
    async def one_lane(lane: int) -> None:
        index = 0
        while not stop.is_set():
            started = time.perf_counter()
            await client.apply(documents(config_map(f"flood-{lane}", str(index))))
            took.append(time.perf_counter() - started)
            index += 1

    await asyncio.gather(*(one_lane(lane) for lane in range(in_flight)))


def line(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{label:<34} n={len(ms):>5}  p50 {statistics.median(ms):7.1f} ms"
        f"  p99 {percentile(ms, 0.99):7.1f} ms  max {max(ms):7.1f} ms"
    )


async def main(requests: int, in_flight: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-"))
    shoal = LocalShoal(root, node=unique_name("fair"))
    shoal.start()
    try:
        quiet = await shoal.connect(access=shoal.access_as("admin", "quiet"))
        flooder = await shoal.connect(access=shoal.access_as("admin", "flooder"))
        try:
            await quiet_applies(quiet, 5)  # warm-up
            alone = await quiet_applies(quiet, requests)
            stop = asyncio.Event()
            flooded: list[float] = []
            flooding = asyncio.create_task(flood(flooder, in_flight, stop, flooded))
            await asyncio.sleep(1.0)  # the flood at full pace first
            started = time.perf_counter()
            during = await quiet_applies(quiet, requests)
            seconds = time.perf_counter() - started
            stop.set()
            await flooding
        finally:
            await quiet.close()
            await flooder.close()
    finally:
        shoal.stop()
    print(line("quiet's applies, alone", alone))
    print(line("quiet's applies, during the flood", during))
    print(line(f"flooder's applies ({in_flight} in flight)", flooded))
    print(f"flood: {len(flooded) / (seconds + 1.0):.0f} applies/s acknowledged")
    print(f"ratio quiet p50 during/alone: {statistics.median(during) / statistics.median(alone):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--in-flight", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.in_flight))
