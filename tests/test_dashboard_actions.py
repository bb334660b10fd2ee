"""The dashboard's actions: what a page may ask for (tables), how the server tells its own page
from another site's (tables), and, in a real browser on a real two-node cluster, changes made
from the page behind their confirmation, and a node's death drawn live."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.dashboard.actions import Change, parse
from shoal.dashboard.app import TOKEN_HEADER, Permissions, refusal, trusted_host
from shoal.dashboard.server import permissions_for
from shoal.errors import ShoalError
from shoal.security.access import Access
from shoal.security.credentials import Credentials
from tests.browser import dashboard_process, http_json, open_page
from tests.harness import LocalShoal, deployment, unique_name, wait_until

# -- what a page may ask for ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "change"),
    [
        (
            {"action": "scale", "table": "deployments", "namespace": "default", "name": "web", "replicas": 3},
            Change("scale", "deployments", "default", "web", 3),
        ),
        (
            {"action": "scale", "table": "deployments", "namespace": "shop", "name": "web", "replicas": 0},
            Change("scale", "deployments", "shop", "web", 0),
        ),
        (
            {"action": "undo", "table": "deployments", "namespace": "d", "name": "web", "replicas": "x"},
            Change("undo", "deployments", "d", "web"),
        ),
        ({"action": "delete", "table": "pods", "namespace": "default", "name": "web-1"}, None),
        ({"action": "drain", "table": "nodes", "name": "edge-1", "namespace": "ignored"}, None),
        ({"action": "delete", "table": "hpas", "namespace": "default", "name": "web"}, None),
    ],
)
def test_a_well_formed_request_is_the_change_it_names(body: dict[str, Any], change: Change | None) -> None:
    parsed = parse(body)
    if change is not None:
        assert parsed == change
    assert (parsed.action, parsed.table, parsed.name) == (body["action"], body["table"], body["name"])
    assert parsed.namespace == ("" if body["table"] == "nodes" else body["namespace"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "the request must be a JSON object"),
        ({"table": "deployments", "namespace": "default", "name": "web"}, "action is required"),
        ({"action": "scale", "table": "secrets", "namespace": "d", "name": "x"}, "'secrets' has no actions"),
        ({"action": "drain", "table": "pods", "namespace": "d", "name": "x"}, "pods cannot be given 'drain'"),
        ({"action": "scale", "table": "deployments", "namespace": "d", "name": "web"}, "replicas must be"),
        (
            {"action": "scale", "table": "deployments", "namespace": "d", "name": "web", "replicas": -1},
            "replicas must be a whole number from 0",
        ),
        (
            {"action": "scale", "table": "deployments", "namespace": "d", "name": "web", "replicas": True},
            "replicas must be",
        ),
        (
            {"action": "scale", "table": "deployments", "namespace": "d", "name": "web", "replicas": 2.5},
            "replicas must be",
        ),
        ({"action": "delete", "table": "pods", "namespace": "d", "name": 7}, "name must be a string"),
        ({"action": "delete", "table": "pods", "namespace": "d"}, "name is required"),
        ({"action": "delete", "table": "pods", "name": "x"}, "namespace is required"),
        ({"action": "delete", "table": "pods", "namespace": "d", "name": "x" * 254}, "longer than 253"),
    ],
)
def test_a_bad_request_is_one_line_naming_its_field(body: object, message: str) -> None:
    with pytest.raises(ShoalError) as caught:
        parse(body)
    assert message in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith("action: ")


# -- this dashboard's own page, and no other site's ------------------------------------------------


@pytest.mark.parametrize(
    ("host", "trusted"),
    [
        ("127.0.0.1:8080", True),
        ("127.0.0.1", True),
        ("10.0.0.5:8080", True),
        ("[::1]:8080", True),
        ("localhost:8080", True),
        ("LocalHost", True),
        ("edge-1:8080", True),  # this host's own name
        ("edge-1.lab.example", True),
        ("attacker.example:8080", False),  # a name pointed at 127.0.0.1 by someone else (rebinding)
        ("127.0.0.1.nip.io:8080", False),
        ("", False),
    ],
)
def test_only_addresses_and_this_hosts_names_are_trusted(host: str, trusted: bool) -> None:
    assert trusted_host(host, ("edge-1", "edge-1.lab.example")) is trusted


TOKEN = "t0ken"
OWN = {"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:8080", TOKEN_HEADER: TOKEN}


@pytest.mark.parametrize(
    ("changes", "headers", "refused"),
    [
        (True, OWN, None),
        (False, OWN, "this dashboard is read-only"),
        (True, {**OWN, "host": "attacker.example", "origin": "http://attacker.example"}, "the host"),
        (True, {k: v for k, v in OWN.items() if k != "origin"}, "does not come from this dashboard's page"),
        (True, {**OWN, "origin": "http://attacker.example"}, "does not come from this dashboard's page"),
        (True, {**OWN, "origin": "https://127.0.0.1:8080"}, "does not come from this dashboard's page"),
        (True, {k: v for k, v in OWN.items() if k != TOKEN_HEADER}, "lacks this dashboard's token"),
        (True, {**OWN, TOKEN_HEADER: "guess"}, "lacks this dashboard's token"),
    ],
)
def test_a_change_is_taken_only_from_this_dashboards_page(
    changes: bool, headers: dict[str, str], refused: str | None
) -> None:
    why = refusal(Permissions(changes=changes, token=TOKEN), headers, "http", ())
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why


def test_changes_need_an_admins_identity(tmp_path: Path) -> None:
    def creds(role: str) -> Path:
        seed = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"
        path = tmp_path / f"{role}.yaml"
        path.write_bytes(Credentials(role, "", seed).dump())
        return path

    viewer = Access(creds("viewer"))
    with pytest.raises(ShoalError, match=r"--allow-changes: the credentials in .*viewer.yaml are a viewer's"):
        permissions_for(viewer, allow_changes=True)
    looking = permissions_for(viewer, allow_changes=False)
    assert (looking.changes, looking.identity) == (False, "viewer")
    admin = permissions_for(Access(creds("admin")), allow_changes=True)
    assert (admin.changes, admin.identity) == (True, "admin")
    insecure = permissions_for(Access(), allow_changes=True)  # a cluster that lets anyone in
    assert (insecure.changes, insecure.identity) == (True, "")
    assert len(admin.token) >= 32 and admin.token != insecure.token


# -- a real browser on a real cluster of two nodes -------------------------------------------------


@pytest.fixture(scope="module")
def second_node(cluster: LocalShoal) -> Iterator[str]:
    name = unique_name("dash2")
    cluster.start_node(name)
    wait_until(lambda: cluster.role_running(name), timeout=60, what=f"node {name} running")
    try:
        yield name
    finally:
        if name in cluster.roles:
            cluster.kill_role(name)


@pytest.fixture(scope="module")
def admin_dashboard(
    cluster: LocalShoal, second_node: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``shoal dashboard --allow-changes`` with the admin's credentials, as an operator starts it."""
    directory = tmp_path_factory.mktemp("admin-dashboard")
    with dashboard_process(cluster, directory, "admin", "--allow-changes") as base:
        yield base


def post(base: str, body: object, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(base + "api/actions", data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


COUNT_AT_LEAST = "([selector, count]) => document.querySelectorAll(selector).length >= count"


def pods_of(name: str) -> str:
    return f'[data-pod^="default/{name}-"]'


def replicas_of(cluster: LocalShoal, name: str) -> int:
    shown = cluster.shoal("get", "deployment", name, "-o", "jsonpath={.spec.replicas}", check=True)
    return int(shown.stdout)


def test_a_deployment_is_scaled_from_its_page_after_confirming(
    cluster: LocalShoal, admin_dashboard: str, page: Any, tmp_path: Path
) -> None:
    name = unique_name("act")
    manifest = tmp_path / "app.yaml"
    manifest.write_text(deployment(name, replicas=1, cpu="10m"))
    cluster.shoal("apply", "-f", str(manifest), check=True)
    try:
        open_page(page, f"{admin_dashboard}#/object/deployments/default/{name}")
        page.locator("#mode", has_text="Changes allowed").wait_for(timeout=10_000)
        page.locator(f"tr{pods_of(name)}").first.wait_for(timeout=30_000)

        # Cancelled: nothing changes.
        page.locator('button[data-action="scale"]').click()
        dialog = page.locator("dialog.confirm[open]")
        dialog.wait_for(timeout=5_000)
        assert "Scale deployment default/" in dialog.locator("h2").inner_text()
        page.keyboard.press("Escape")
        dialog.wait_for(state="detached", timeout=5_000)
        assert replicas_of(cluster, name) == 1

        # A value that is no number is refused in the dialog, and nothing is sent.
        page.locator('button[data-action="scale"]').click()
        replicas = page.locator("#confirm-replicas")
        assert replicas.evaluate("el => el === document.activeElement")  # the keyboard lands in it
        replicas.fill("")
        page.keyboard.press("Enter")
        dialog.locator(".dialog-error", has_text="whole number").wait_for(timeout=5_000)

        replicas.fill("3")
        page.screenshot(path=str(tmp_path / "scale-dialog.png"), full_page=True)
        page.keyboard.press("Enter")
        page.locator("#notice", has_text=f"deployment.apps/{name} scaled to 3").wait_for(timeout=10_000)
        assert replicas_of(cluster, name) == 3
        page.wait_for_function(COUNT_AT_LEAST, arg=[f"tr{pods_of(name)}", 3], timeout=10_000)
        page.screenshot(path=str(tmp_path / "scaled.png"), full_page=True)

        # A pod deleted from its page is made again under another name.
        first = page.locator(f"tr{pods_of(name)} a").first.inner_text()
        page.locator(f"tr{pods_of(name)} a").first.click()
        page.wait_for_url(re.compile(rf"#/object/pods/default/{re.escape(first)}$"))
        page.locator('button[data-action="delete"]').click()
        assert page.locator('dialog.confirm [data-confirm="cancel"]').evaluate(
            "el => el === document.activeElement"
        ), "a destructive action's dialog starts on Cancel"
        page.locator('dialog.confirm [data-confirm="ok"]').click()
        page.locator("#notice", has_text=f"pod/{first} deleted").wait_for(timeout=10_000)

        def replaced() -> bool:
            shown = cluster.shoal("get", "pods", "-l", f"app={name}", "-o", "name", check=True).stdout.split()
            return f"pod/{first}" not in shown and len(shown) == 3

        wait_until(replaced, timeout=60, what=f"pod {first} replaced")
    finally:
        cluster.shoal("delete", "-f", str(manifest))


def test_a_node_is_cordoned_and_uncordoned_from_its_page(
    cluster: LocalShoal, second_node: str, admin_dashboard: str, page: Any
) -> None:
    open_page(page, f"{admin_dashboard}#/object/nodes/_/{second_node}")
    page.locator('button[data-action="cordon"]').click()
    page.locator('dialog.confirm [data-confirm="ok"]').click()
    page.locator("#notice", has_text=f"node/{second_node} cordoned").wait_for(timeout=10_000)
    wait_until(
        lambda: "SchedulingDisabled" in cluster.shoal("get", "node", second_node, check=True).stdout,
        timeout=10,
        what="the node shown cordoned by shoal get",
    )
    page.locator(".object-fields", has_text="cordoned").wait_for(timeout=5_000)
    page.locator('button[data-action="uncordon"]').click()  # the bar offers what applies now
    page.locator('dialog.confirm [data-confirm="ok"]').click()
    page.locator("#notice", has_text=f"node/{second_node} uncordoned").wait_for(timeout=10_000)
    assert "SchedulingDisabled" not in cluster.shoal("get", "node", second_node, check=True).stdout


def test_requests_not_from_the_page_change_nothing(cluster: LocalShoal, admin_dashboard: str) -> None:
    session = http_json(admin_dashboard + "api/session")
    assert session["changes"] is True and session["identity"] == "admin" and session["token"]
    origin = admin_dashboard.rstrip("/")
    host = origin.removeprefix("http://")
    body = {"action": "cordon", "table": "nodes", "name": cluster.node}
    headers = {"content-type": "application/json", "origin": origin, TOKEN_HEADER: session["token"]}

    for changed, why in [
        ({TOKEN_HEADER: "guess"}, "token"),
        ({"origin": "http://attacker.example"}, "does not come from this dashboard's page"),
        ({"host": "attacker.example", "origin": "http://attacker.example"}, "is not an address"),
    ]:
        status, answer = post(admin_dashboard, body, {**headers, **changed})
        assert (status, why in answer["error"]) == (403, True), answer
    status, answer = post(admin_dashboard, {"action": "cordon", "table": "nodes"}, {**headers, "host": host})
    assert (status, answer) == (400, {"error": "action: name is required"})
    absent = {"action": "scale", "table": "deployments", "namespace": "default", "name": "none"}
    absent["replicas"] = 2
    status, answer = post(admin_dashboard, absent, headers)
    assert status == 409 and "none" in answer["error"], answer
    assert "SchedulingDisabled" not in cluster.shoal("get", "node", cluster.node, check=True).stdout


def test_a_killed_node_turns_not_ready_and_its_pods_reappear_on_the_other(
    cluster: LocalShoal, second_node: str, admin_dashboard: str, page: Any, tmp_path: Path
) -> None:
    name = unique_name("move")
    manifest = tmp_path / "app.yaml"
    manifest.write_text(deployment(name, replicas=4, cpu="10m"))
    cluster.shoal("apply", "-f", str(manifest), check=True)
    try:
        open_page(page, admin_dashboard)
        box = page.locator(f'[data-node="{second_node}"]')
        page.wait_for_selector(f'[data-node="{second_node}"] {pods_of(name)}.tone-ready', timeout=60_000)
        page.wait_for_function(COUNT_AT_LEAST, arg=[f"{pods_of(name)}.tone-ready", 4], timeout=60_000)
        page.screenshot(path=str(tmp_path / "two-nodes.png"), full_page=True)

        cluster.kill_role(second_node)
        killed = time.monotonic()
        box.locator(".badge", has_text="NotReady").wait_for(timeout=30_000)
        not_ready_after = time.monotonic() - killed
        on_survivor = f'[data-node="{cluster.node}"] {pods_of(name)}.tone-ready'
        page.wait_for_function(COUNT_AT_LEAST, arg=[on_survivor, 4], timeout=60_000)
        page.screenshot(path=str(tmp_path / "node-lost.png"), full_page=True)
        assert not_ready_after < 30
    finally:
        cluster.shoal("delete", "-f", str(manifest))
