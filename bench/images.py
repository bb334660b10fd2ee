"""Benchmark: an image through the cluster's store, beside `podman save` and `podman load`.

Builds an image of busybox plus SIZE MB of random bytes, starts a real `shoal up`, and for
each round, in the same run:

- times `shoal image push IMAGE` (the CLI a user runs) and records its peak memory;
- removes the image from the host, applies a one-pod deployment of it and times apply ->
  Running, and reads the node's own fetch+load time from its `Pulled` event;
- beside them, `podman save --format oci-archive -o FILE IMAGE`, then (image removed)
  `podman load -i FILE`: the same bytes moved by Podman alone, through a file.

    .venv/bin/python bench/images.py [--size-mb 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from bench.failover import percentile
from tests.harness import TEST_IMAGE, LocalShoal, deployment, remove_node_containers, unique_name
from tests.test_cluster import wait_running


def podman(*args: str) -> None:
    subprocess.run(["podman", *args], check=True, capture_output=True, timeout=600)


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, timeout=600)
    return time.perf_counter() - started


def push(image: str, env: dict[str, str]) -> tuple[float, float]:
    """`shoal image push IMAGE`: seconds, and the peak memory (MB) of that process and the
    `podman save` under it (from wait4, which reports both)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "shoal", "image", "push", image], env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"shoal image push failed: exit {process.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def build_image(image: str, size_mb: int, workdir: Path) -> None:
    (workdir / "blob").write_bytes(os.urandom(size_mb * 1024 * 1024))
    (workdir / "Containerfile").write_text(f"FROM {TEST_IMAGE}\nCOPY blob /blob\n")
    podman("build", "--pull=never", "-t", image, str(workdir))


def row(label: str, values: list[float]) -> str:
    return (
        f"{label:<44} p50={statistics.median(values):6.2f}s  p99={percentile(values, 0.99):6.2f}s"
        f"  max={max(values):6.2f}s"
    )


async def main(size_mb: int, rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-images-"))
    image = f"localhost/shoal-bench-image:{size_mb}mb"
    build_image(image, size_mb, root)
    archive = root / "saved.tar"
    shoal = LocalShoal(root / "cluster", node=unique_name("bench"))
    shoal.start()
    pushes, fetches, starts, saves, loads, rss = [], [], [], [], [], []
    try:
        async with await shoal.connect() as client:
            for n in range(rounds):
                seconds, peak = push(image, shoal.env)
                pushes.append(seconds)
                rss.append(peak)
                podman("rmi", image)
                name = f"img{n}-{unique_name('b')}"
                manifest = yaml.safe_load(deployment(name, command=["sleep", "3600"], cpu="10m", grace=0))
                container = manifest["spec"]["template"]["spec"]["containers"][0]
                container |= {"image": image, "imagePullPolicy": "IfNotPresent"}
                started = time.perf_counter()
                shoal.shoal("apply", "-f", "-", input=yaml.safe_dump(manifest), check=True)
                await wait_running(client, name, 1, timeout=300)
                starts.append(time.perf_counter() - started)
                pulled = [
                    e.message
                    async for e in client.events()
                    if e.name.startswith(name) and e.reason == "Pulled"
                ]
                fetches.append(float(re.findall(r" in ([0-9.]+)s\)", pulled[0])[0]))
                shoal.shoal("delete", "deployment", name, check=True)
                # Podman alone, the same bytes through a file (the image is the one just loaded).
                saves.append(timed(["podman", "save", "--format", "oci-archive", "-o", str(archive), image]))
                while subprocess.run(["podman", "rmi", image], capture_output=True).returncode != 0:
                    await asyncio.sleep(0.5)  # until the deleted pod's container is gone
                loads.append(timed(["podman", "load", "-i", str(archive)]))
                archive.unlink()
                print(
                    f"round {n + 1}: push {pushes[-1]:.2f}s, node fetch+load {fetches[-1]:.2f}s,"
                    f" apply->Running {starts[-1]:.2f}s | podman save {saves[-1]:.2f}s,"
                    f" load {loads[-1]:.2f}s",
                    flush=True,
                )
    finally:
        shoal.stop()
        remove_node_containers(shoal.node)
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True)
    print(f"\nimage: {size_mb} MB of random bytes on busybox, {rounds} rounds")
    print(row("shoal image push", pushes))
    print(row("podman save --format oci-archive -o FILE", saves))
    print(row("node: fetch from the store + podman load", fetches))
    print(row("podman load -i FILE", loads))
    print(row("apply -> Running, image fetched", starts))
    push_ratio = statistics.median(pushes) / statistics.median(saves)
    fetch_ratio = statistics.median(fetches) / statistics.median(loads)
    print(f"ratios (medians): push/save {push_ratio:.2f}, fetch+load/load {fetch_ratio:.2f}")
    both = (statistics.median(pushes) + statistics.median(fetches)) / (
        statistics.median(saves) + statistics.median(loads)
    )
    print(f"push+fetch vs save+load: {both:.2f}")
    print(f"peak memory of `shoal image push` (with its podman save): {max(rss):.0f} MB; image {size_mb} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.size_mb, args.rounds))
