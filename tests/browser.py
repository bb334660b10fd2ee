"""A real browser for the dashboard's tests: Debian's chromium driven by Playwright, and the
waits that go with it (the dashboard synced, a page loaded)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import LocalShoal, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.loads(response.read())


def wait_synced(base: str, process: subprocess.Popen[bytes] | None, log: Path | None, timeout: float) -> None:
    def synced() -> object:
        if process is not None and process.poll() is not None:
            pytest.fail(
                f"shoal dashboard exited with {process.returncode}:\n{log.read_text() if log else ''}"
            )
        try:
            health = http_json(base + "healthz")
        except OSError:
            return False
        return isinstance(health, dict) and health.get("synced")

    wait_until(synced, timeout=timeout, what=f"the dashboard at {base} synced")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's chromium, driven by Playwright: missing either is a failure with the fix, never a skip.

    One per test: Playwright's synchronous API holds an event loop of its own on this thread
    while it is open, which must be closed again before pytest-asyncio's fixtures run."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: run scripts/install-system.sh (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: .venv/bin/pip install -e '.[test]'")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield instance
        finally:
            instance.close()


def open_page(tab: Any, url: str) -> None:
    """Load ``url``, again if Chromium dropped the load for a network change (see ``page``)."""
    for attempt in range(3):
        try:
            tab.goto(url)
            return
        except Exception as err:  # playwright's Error: net::ERR_NETWORK_CHANGED
            if "ERR_NETWORK_CHANGED" not in str(err) or attempt == 2:
                raise


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda err: errors.append(str(err)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield tab
        # Chromium calls a new network interface (each container's veth) a network change and
        # fails the requests in flight; the page's stream reconnects: not the page's error.
        errors = [e for e in errors if "ERR_NETWORK_CHANGED" not in e]
        assert errors == [], f"the page reported errors: {errors}"
    finally:
        context.close()


@contextlib.contextmanager
def dashboard_process(cluster: LocalShoal, directory: Path, role: str, *extra: str) -> Iterator[str]:
    """``shoal dashboard`` as a user starts it, with ``role``'s credentials (and ``extra``
    options), on a free port: its address once it has synced; it must stop cleanly on SIGTERM."""
    log = directory / "dashboard.log"
    port = free_port()
    argv = [
        sys.executable, "-m", "shoal", "dashboard", "--server", cluster.url, "--port", str(port),
        *cluster.role_arguments(role), *extra,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=cluster.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/"
        wait_synced(base, process, log, 30)
        yield base
    finally:
        process.terminate()
        try:
            code = process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"shoal dashboard did not stop within 15 s of SIGTERM:\n{log.read_text()}")
        assert code == 0, f"shoal dashboard exited with {code} on SIGTERM:\n{log.read_text()}"
