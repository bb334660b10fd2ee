"""Benchmark: what an idle `shoal up` costs, started as a user starts it.

Runs `shoal up` (one node on the local Podman, a data dir of its own, a free NATS port),
waits until it is up, then measures the whole process tree it started (nats-server and the
Podman service included): RSS and PSS (from /proc/<pid>/smaps_rollup), and CPU used over an
idle stretch. Then applies N pods of busybox and measures again. `--processes` measures the
cluster with every role in a process of its own, for comparison.

    .venv/bin/python bench/footprint.py [--idle 20] [--pods 50] [--processes]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import deployment

SHOAL = [sys.executable, "-m", "shoal"]


def tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def name_of(pid: int) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in args if a]
    if not words:
        return "?"
    if "shoal" in words and len(words) > words.index("shoal") + 1:
        return "shoal " + words[words.index("shoal") + 1]
    return Path(words[0]).name + (" " + words[1] if len(words) > 1 and "system" in words[1] else "")


def report(root: int, idle: float, label: str) -> None:
    pids = tree(root)
    ticks = {pid: cpu_ticks(pid) for pid in pids}
    time.sleep(idle)
    hz = os.sysconf("SC_CLK_TCK")
    rows = []
    for pid in tree(root):
        rss, pss = memory(pid)
        cpu = (cpu_ticks(pid) - ticks.get(pid, cpu_ticks(pid))) / hz / idle * 100
        rows.append((name_of(pid), rss, pss, cpu))
    total_rss = sum(r[1] for r in rows)
    total_pss = sum(r[2] for r in rows)
    total_cpu = sum(r[3] for r in rows)
    print(f"{label}: {len(rows)} processes, RSS {total_rss / 1024:.0f} MB, PSS {total_pss / 1024:.0f} MB,"
          f" CPU {total_cpu:.1f}% of a core over {idle:.0f}s")  # fmt: skip
    grouped: dict[str, list[float]] = {}
    for name, rss, pss, cpu in rows:
        entry = grouped.setdefault(name, [0, 0, 0.0, 0])
        entry[0] += rss
        entry[1] += pss
        entry[2] += cpu
        entry[3] += 1
    for name, (rss, pss, cpu, count) in sorted(grouped.items(), key=lambda item: -item[1][0]):
        print(f"  {name:40} x{count:<3} RSS {rss / 1024:6.1f} MB  PSS {pss / 1024:6.1f} MB  CPU {cpu:5.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=float, default=20.0, help="seconds measured at rest")
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--processes", action="store_true", help="shoal up --processes")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-footprint-"))
    env = dict(os.environ, SHOAL_CONTEXT=str(root / "context.yaml"))
    argv = [*SHOAL, "up", "--data-dir", str(root / "data"), "--nats-port", "0", "--node-name", "footprint"]
    if args.processes:
        argv.append("--processes")
    log = open(root / "up.log", "wb")
    up = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while b"running; press Ctrl-C" not in (root / "up.log").read_bytes():
            if up.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"shoal up did not come up:\n{(root / 'up.log').read_text()}")
            time.sleep(0.2)
        time.sleep(3)  # the first samples and syncs settle
        report(up.pid, args.idle, "idle, no pods")
        if args.pods:
            manifest = root / "pods.yaml"
            body = yaml.safe_load(deployment("footprint", replicas=args.pods, cpu="10m", memory="8Mi"))
            manifest.write_text(yaml.safe_dump(body))
            subprocess.run([*SHOAL, "apply", "-f", str(manifest)], env=env, check=True, capture_output=True)
            deadline = time.monotonic() + 180
            while True:
                out = subprocess.run(
                    [*SHOAL, "get", "pods", "-o", "json"], env=env, capture_output=True, text=True
                ).stdout
                running = out.count('"phase": "Running"')
                if running >= args.pods or time.monotonic() > deadline:
                    break
                time.sleep(1)
            time.sleep(5)
            report(up.pid, args.idle, f"with {running} pods Running")
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(120)
        except subprocess.TimeoutExpired:
            up.kill()
        print(f"(state and logs in {root})")


if __name__ == "__main__":
    main()
