"""Benchmark: how long `shoal` commands take, beside `podman` commands, in one run.

Runs a real `shoal up` (nats-server, control plane, one node on the local Podman) in a
temporary data dir with a deployment of 50 pods on it, then times each command as a user types it
(a new process every time), interleaved round by round with the Podman commands that anchor
it: `shoal --help` beside `podman --help`, `shoal version` beside `podman version`, `shoal
get pods` (50 pods) and `shoal apply -f` (of the deployment, unchanged: to the API's reply)
beside `podman ps`, and beside the floor of Python and the libraries a command that talks
to a cluster imports (nats-py, typer, rich, pydantic). Prints the median, p90 and slowest
of the rounds, and the ratios of the medians.
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
REPLICAS = 50


def shoal_commands(manifest: Path) -> dict[str, list[str]]:
    """What is timed of Shoal, by the name printed."""
    return {
        "shoal --help": [*SHOAL, "--help"],
        "shoal version --client": [*SHOAL, "version", "--client"],
        "shoal version": [*SHOAL, "version"],
        "shoal get pods": [*SHOAL, "get", "pods"],
        "shoal get deployments": [*SHOAL, "get", "deployments"],
        "shoal apply -f": [*SHOAL, "apply", "-f", str(manifest)],
    }


ANCHORS: dict[str, list[str]] = {
    "podman --help": ["podman", "--help"],
    "podman version": ["podman", "version"],
    "podman ps": ["podman", "ps"],
    # The floor under any command that talks to a cluster: the interpreter and the libraries
    # every such command needs, imported and nothing done.
    "python + libraries": [
        sys.executable,
        "-c",
        "import asyncio, nats.js, typer, rich.console, pydantic, yaml",
    ],
}
PAIRS = [
    ("shoal --help", "podman --help"),
    ("shoal version --client", "podman version"),
    ("shoal version", "podman version"),
    ("shoal get pods", "podman ps"),
    ("shoal apply -f", "podman ps"),
    ("shoal get pods", "python + libraries"),
    ("shoal version", "python + libraries"),
]
COMPARED = ("shoal --help", "shoal version", "shoal get pods", "shoal apply -f")
"""Timed again with the --baseline checkout's CLI."""


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
            manifest = Path(tmp) / "app.yaml"
            manifest.write_text(deployment(app, replicas=REPLICAS, cpu="10m"))  # 50 fit 2 cores

            async def deploy() -> None:
                async with await cluster.connect() as client:
                    await client.apply(documents(manifest.read_text()))
                    await wait_running(client, app, REPLICAS, timeout=600)

            asyncio.run(deploy())
            env = dict(cluster.env, PYTHONPATH=os.pathsep.join(sys.path))
            mine = shoal_commands(manifest)
            commands = {name: (argv, env) for name, argv in mine.items()}
            commands |= {name: (argv, env) for name, argv in ANCHORS.items()}
            if baseline is not None:
                # The other checkout's package first on the path, ahead of this one.
                other = dict(cluster.env, PYTHONPATH=os.pathsep.join([str(baseline), *sys.path]))
                commands |= {f"baseline {name[6:]}": (mine[name], other) for name in COMPARED}
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(rounds):
                for name, (argv, command_env) in commands.items():
                    times[name].append(timed(argv, command_env))
            print(f"{len(times['shoal get pods'])} rounds, {REPLICAS} pods; seconds of wall time")
            print(f"{'command':24} {'median':>8} {'p90':>8} {'slowest':>8}")
            for name, values in times.items():
                p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
                print(f"{name:24} {statistics.median(values):8.3f} {p90:8.3f} {max(values):8.3f}")
            pairs = PAIRS + (
                [(f"baseline {name[6:]}", name) for name in COMPARED] if baseline is not None else []
            )
            for first, second in pairs:
                ratio = statistics.median(times[first]) / statistics.median(times[second])
                print(f"{first} / {second}: {ratio:.2f}x")
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
