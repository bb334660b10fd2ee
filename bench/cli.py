"""Benchmark: how long `shoal` commands take, beside `podman` commands, in one run.

Runs a real `shoal up` (nats-server, control plane, one node on the local Podman) in a
temporary data dir with a small deployment on it, then times each command as a user types it
(a new process every time), interleaved round by round with the Podman commands that anchor
it: `shoal version` beside `podman version`, `shoal get pods` beside `podman ps`.
Prints the median and the slowest of the rounds, and the ratios of the medians.
``--baseline DIR`` times another checkout's CLI in the same rounds (DIR holds a ``shoal``
package directory, put first on its PYTHONPATH): before and after a change, side by side.

    .venv/bin/python bench/cli.py [--rounds 10] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import LocalShoal, deployment, documents, unique_name
from tests.test_cluster import wait_running

SHOAL = [sys.executable, "-m", "shoal"]
COMMANDS: dict[str, list[str]] = {
    "shoal version --client": [*SHOAL, "version", "--client"],
    "shoal version": [*SHOAL, "version"],
    "podman version": ["podman", "version"],
    "shoal get pods": [*SHOAL, "get", "pods"],
    "shoal get deployments": [*SHOAL, "get", "deployments"],
    "podman ps": ["podman", "ps"],
}
PAIRS = [("shoal version --client", "podman version"), ("shoal get pods", "podman ps")]


def baseline_commands(directory: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    env = {"PYTHONPATH": str(directory)}
    return {
        "baseline version": ([*SHOAL, "version"], env),
        "baseline get pods": ([*SHOAL, "get", "pods"], env),
    }


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(rounds: int, baseline: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="shoal-bench-cli-") as tmp:
        cluster = LocalShoal(Path(tmp), unique_name("bench"))
        cluster.start()
        try:
            app = unique_name("cli")

            async def deploy() -> None:
                async with await cluster.connect() as client:
                    await client.apply(documents(deployment(app, replicas=3)))
                    await wait_running(client, app, 3)

            asyncio.run(deploy())
            env = dict(cluster.env, PYTHONPATH=os.pathsep.join(sys.path))
            commands = {name: (argv, env) for name, argv in COMMANDS.items()}
            if baseline is not None:
                commands |= {
                    name: (argv, dict(cluster.env, **extra))
                    for name, (argv, extra) in baseline_commands(baseline).items()
                }
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(rounds):
                for name, (argv, command_env) in commands.items():
                    times[name].append(timed(argv, command_env))
            print(f"{'command':24} {'median':>8} {'slowest':>8}   ({rounds} rounds, seconds of wall time)")
            for name, values in times.items():
                print(f"{name:24} {statistics.median(values):8.3f} {max(values):8.3f}")
            pairs = PAIRS + (
                [("baseline version", "shoal version --client"), ("baseline get pods", "shoal get pods")]
                if baseline is not None
                else []
            )
            for shoal, podman in pairs:
                ratio = statistics.median(times[shoal]) / statistics.median(times[podman])
                print(f"{shoal} / {podman}: {ratio:.1f}x")
            subprocess.run([*SHOAL, "delete", "deployment", app], env=env, check=True, capture_output=True)
        finally:
            cluster.stop()


if __name__ == "__main__":
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--baseline", type=Path, default=None)
    arguments = parser.parse_args()
    main(arguments.rounds, arguments.baseline)
