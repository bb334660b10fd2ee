"""Benchmark: the dashboard over 1,000 hollow nodes and 10,000 pods, in a real browser.

Starts nats-server and the roles as separate processes, as the README runs them (`shoal
api`, `shoal scheduler`, `shoal node --runtime hollow --count N`, defaults everywhere),
applies a Deployment of P replicas and waits until all run, then starts `shoal dashboard` as
its own process and opens it in Debian's chromium (headless, driven by Playwright). Prints:

1. the dashboard's sync (start to every bucket read) and the overview's first render: from
   a new page's navigation to every pod drawn in its node's box (each trial, median and
   slowest; the first trial loads the page's files cold);
2. the page's frame rate and longest frame while a wave of W pods changes state (a
   deployment of W replicas applied until all are drawn Ready, then deleted until none is
   left), beside its frame rate on the same page while nothing changes and an empty page's in
   the same browser (the anchors: what the loaded machine leaves any page);
3. the dashboard process's CPU seconds over the same wave with 0, 1 and B browsers
   connected: what each connected browser costs the server.

    .venv/bin/python bench/dashboard.py [--nodes 1000] [--pods 10000] [--wave 1000]
        [--trials 3] [--browsers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scheduler_scale import SHOAL, cpu_seconds, peak_rss_mb, start, stop_all
from bench.workload_scale import timed
from shoal.bus.nats_server import NatsServer, NatsServerConfig
from shoal.client import ShoalClient
from shoal.processes import die_with_parent
from tests.browser import free_port, http_json
from tests.harness import deployment, documents

COUNT = "([selector, count]) => document.querySelectorAll(selector).length >= count"
NONE_LEFT = "selector => document.querySelectorAll(selector).length === 0"

FRAMES = """() => {
  // Frames drawn from now on, and the longest wait between two (a page that hangs shows it).
  window.__frames = { count: 0, longest: 0, last: performance.now(), started: performance.now() };
  const tick = (now) => {
    const f = window.__frames;
    f.count += 1;
    f.longest = Math.max(f.longest, now - f.last);
    f.last = now;
    if (!f.stop) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
FRAMES_STOP = """() => {
  const f = window.__frames;
  f.stop = true;
  return { count: f.count, longest: f.longest, seconds: (performance.now() - f.started) / 1000 };
}"""


def first_render(browser: Any, url: str, pods: int) -> float:
    """Seconds from a fresh page's navigation to every pod drawn in a node's box."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(url)
        page.wait_for_function(COUNT, arg=["[data-node] [data-pod]", pods], timeout=300_000, polling=50)
        return float(page.evaluate("performance.now()")) / 1000
    finally:
        page.close()


def frames(page: Any, during: Any) -> tuple[float, float]:
    """Frames per second and the longest frame (ms) on ``page`` while ``during()`` runs."""
    page.evaluate(FRAMES)
    during()
    got = page.evaluate(FRAMES_STOP)
    return got["count"] / got["seconds"], got["longest"]


async def main(args: argparse.Namespace, root: Path) -> int:
    executable = shutil.which("chromium")
    if executable is None:
        print("chromium is not installed: run scripts/install-system.sh")
        return 1
    from playwright.sync_api import sync_playwright

    server = NatsServer(NatsServerConfig(store_dir=root / "js", port=0), run_dir=root)
    server.start()
    fleet = ["node", "--runtime", "hollow", "--count", str(args.nodes), "--name", "hollow"]
    processes = {
        "api": start("api", ["api"], server.url, root),
        "scheduler": start("scheduler", ["scheduler"], server.url, root),
        "fleet": start("fleet", fleet, server.url, root),
    }
    dashboard: subprocess.Popen[bytes] | None = None
    try:
        async with await ShoalClient.connect(server.url) as client:

            async def nodes_ready() -> str | None:
                ready = len(await client.ready_nodes())
                return None if ready >= args.nodes else f"{ready} Ready"

            await timed("nodes", nodes_ready, 0.5)
            big = deployment("big", replicas=args.pods, cpu="10m", memory="8Mi")
            await client.apply(documents(big))

            async def all_running() -> str | None:
                running = sum(1 for s in (await client.pod_statuses()).values() if s.phase == "Running")
                return None if running >= args.pods else f"{running} Running"

            took = await timed("deployment", all_running, 1.0)
            print(
                f"{args.nodes} hollow nodes, {args.pods} pods Running ({took:.1f}s after the apply)",
                flush=True,
            )

            port = free_port()
            argv = [
                *SHOAL,
                "dashboard",
                "--server",
                server.url,
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
            with open(root / "dashboard.log", "w") as log:
                dashboard = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
                )
            base = f"http://127.0.0.1:{port}/"

            async def synced() -> str | None:
                try:
                    return (
                        None
                        if (await asyncio.to_thread(http_json, base + "healthz")).get("synced")
                        else "syncing"
                    )
                except OSError:
                    return "starting"

            print(
                f"dashboard synced {await timed('dashboard', synced, 0.2):.2f}s after it started", flush=True
            )
            wave = deployment("wave", replicas=args.wave, cpu="10m", memory="8Mi")
            loop = asyncio.get_running_loop()

            def run_wave(page: Any | None) -> None:
                """The wave applied until drawn Ready (or Running, with no page), then deleted until gone."""
                asyncio.run_coroutine_threadsafe(client.apply(documents(wave)), loop).result()
                if page is not None:
                    page.wait_for_function(
                        COUNT, arg=['[data-pod^="default/wave-"].tone-ready', args.wave], timeout=300_000
                    )
                else:
                    asyncio.run_coroutine_threadsafe(timed("wave", wave_running, 0.5), loop).result()
                asyncio.run_coroutine_threadsafe(client.delete(documents=documents(wave)), loop).result()
                if page is not None:
                    page.wait_for_function(NONE_LEFT, arg='[data-pod^="default/wave-"]', timeout=300_000)
                else:
                    asyncio.run_coroutine_threadsafe(timed("wave gone", wave_gone, 0.5), loop).result()

            async def wave_running() -> str | None:
                statuses = await client.pod_statuses()
                running = sum(
                    1 for k, s in statuses.items() if k.startswith("default.wave-") and s.phase == "Running"
                )
                return None if running >= args.wave else f"{running} Running"

            async def wave_gone() -> str | None:
                left = sum(1 for k in await client.pods() if k.startswith("default.wave-"))
                return None if left == 0 else f"{left} left"

            def in_browser() -> None:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
                    try:
                        renders = [first_render(browser, base, args.pods) for _ in range(args.trials)]
                        print(
                            f"overview first render, {args.pods} pods on {args.nodes} nodes: median"
                            f" {statistics.median(renders):.2f}s, slowest {max(renders):.2f}s"
                            f" ({', '.join(f'{r:.2f}' for r in renders)})",
                            flush=True,
                        )
                        blank = browser.new_page(viewport={"width": 1280, "height": 900})
                        blank.goto("about:blank")
                        blank_fps, blank_longest = frames(blank, lambda: time.sleep(5))
                        blank.close()
                        print(
                            f"frame rate of an empty page in the same browser (5 s): {blank_fps:.0f} fps,"
                            f" longest frame {blank_longest:.0f} ms (what the machine leaves a page)"
                        )
                        page = browser.new_page(viewport={"width": 1280, "height": 900})
                        page.goto(base)
                        page.wait_for_function(
                            COUNT, arg=["[data-node] [data-pod]", args.pods], timeout=300_000
                        )
                        idle_fps, idle_longest = frames(page, lambda: time.sleep(10))
                        print(
                            f"frame rate, nothing changing (10 s): {idle_fps:.0f} fps,"
                            f" longest frame {idle_longest:.0f} ms"
                        )
                        started = time.monotonic()
                        fps, longest = frames(page, lambda: run_wave(page))
                        print(
                            f"frame rate while {args.wave} pods start and then go"
                            f" ({time.monotonic() - started:.1f}s):"
                            f" {fps:.0f} fps ({fps / idle_fps:.2f}x idle), longest frame {longest:.0f} ms",
                            flush=True,
                        )
                        page.close()

                        assert dashboard is not None
                        cost: dict[int, float] = {}
                        for count in (0, 1, args.browsers):
                            pages = []
                            for _ in range(count):
                                one = browser.new_page(viewport={"width": 1280, "height": 900})
                                one.goto(base)
                                one.wait_for_function(
                                    COUNT, arg=["[data-node] [data-pod]", args.pods], timeout=300_000
                                )
                                pages.append(one)
                            before = cpu_seconds(dashboard.pid)
                            run_wave(pages[0] if pages else None)
                            cost[count] = cpu_seconds(dashboard.pid) - before
                            browsers = int(http_json(base + "healthz")["browsers"])
                            print(
                                f"  dashboard CPU over one wave, {browsers} browser(s) connected:"
                                f" {cost[count]:.2f}s",
                                flush=True,
                            )
                            for one in pages:
                                one.close()
                        each = (cost[args.browsers] - cost[0]) / args.browsers
                        print(
                            f"server CPU per connected browser: {each:.2f}s per wave of"
                            f" {2 * args.wave} pod changes ({each / max(cost[0], 1e-9):.2f}x the"
                            " dashboard's own cost with none); peak RSS"
                            f" {peak_rss_mb(dashboard.pid):.0f} MB"
                        )
                    finally:
                        browser.close()

            await asyncio.to_thread(in_browser)
        return 0
    except TimeoutError as err:
        print(f"FAILED: {err}; the logs are in {root}")
        return 1
    finally:
        stop_all([*processes.values(), *([dashboard] if dashboard else [])], server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--wave", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--browsers", type=int, default=4)
    arguments = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="shoal-bench-dashboard-"))
    print(f"(state and logs in {state})")
    sys.exit(asyncio.run(main(arguments, state)))
