"""The dashboard: its snapshot and patch logic on its own, then real pages in a real browser.

The first half needs nothing running. The second half starts ``shoal dashboard`` as a
process against a real ``shoal up`` and drives Debian's chromium with Playwright; a missing
browser is a failure, not a skip.
"""

from __future__ import annotations

import json
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.bus import kv
from shoal.dashboard import detail
from shoal.dashboard.hub import Hub
from shoal.dashboard.server import bind, url_of
from shoal.dashboard.state import ClusterState, apply, coalesce, derive
from shoal.errors import ShoalError
from shoal.manifests.files import parse_documents
from shoal.manifests.render import hpa_object, pod_object
from shoal.manifests.validate import validate_documents
from shoal.models.autoscaling import Decision, HorizontalPodAutoscaler, HPAStatus, Recommendation
from shoal.models.metrics import NodeMetrics
from shoal.models.node import Node, NodeCondition
from shoal.models.pod import ContainerState, ContainerStatus, OwnerRef, Pod, PodMeta, PodStatus
from shoal.models.workloads import Deployment, DeploymentStatus, ResourceList
from tests.browser import dashboard_process, http_json, open_page, wait_synced
from tests.harness import LocalShoal, deployment, hpa, unique_name, utilization_metric, wait_until

# This module's cluster serves the web view as `shoal up` does for users (on a free port).
SHOAL_UP_ARGS = ["--dashboard-port", "0"]

# -- records, as the actors store them ------------------------------------------------------------


def make_deployment(name: str = "web", replicas: int = 2) -> Deployment:
    [obj], _ = validate_documents(parse_documents(deployment(name, replicas=replicas), "t"))
    model = obj.model
    assert isinstance(model, Deployment)
    return Deployment(metadata=model.metadata.model_copy(update={"uid": f"uid-{name}"}), spec=model.spec)


def make_pod(dep: Deployment, suffix: str, node: str = "n1") -> Pod:
    meta = PodMeta(
        name=f"{dep.metadata.name}-abc-{suffix}",
        namespace="default",
        labels=dep.spec.template.metadata.labels,
        uid=f"pod-{suffix}",
        creation_timestamp=100.0,
        owner=OwnerRef(name=dep.metadata.name, uid=dep.metadata.uid),
    )
    return Pod(metadata=meta, spec=dep.spec.template.spec, node_name=node)


def running(pod: Pod, *, ready: bool = True, ready_since: float = 10.0) -> PodStatus:
    return PodStatus(
        namespace="default",
        name=pod.metadata.name,
        uid=pod.metadata.uid,
        node_name=pod.node_name,
        phase="Running",
        ready=ready,
        ready_since=ready_since,
        pod_ip="10.88.0.5",
        container_statuses=[
            ContainerStatus(name="main", image="x", ready=ready, state=ContainerState(status="running"))
        ],
    )


def make_node(name: str = "n1") -> Node:
    resources = ResourceList.of(2000, 4 * 2**30)
    return Node(name=name, capacity=resources, allocatable=resources, address="127.0.0.1")


class Buckets:
    """What the feed's caches hold, by bucket and key: the lookup ``derive`` reads."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, bucket: str, key: str) -> Any:
        return self.data.get(bucket, {}).get(key)

    def values(self, bucket: str) -> Iterator[Any]:
        return iter(self.data.get(bucket, {}).values())

    def write(self, state: ClusterState, bucket: str, key: str, value: Any) -> list[dict[str, Any]]:
        """Store (None: delete) and tell the state, as a watch would; the patches it made."""
        if value is None:
            self.data.get(bucket, {}).pop(key, None)
        else:
            self.data.setdefault(bucket, {})[key] = value
        return state.changed(bucket, key, self.get)


# -- views and patches ----------------------------------------------------------------------------


def test_a_pod_view_joins_its_record_and_its_status() -> None:
    buckets, state = Buckets(), ClusterState()
    dep = make_deployment()
    pod = make_pod(dep, "aaaaa")
    [created] = buckets.write(state, kv.PODS.name, pod.key, pod)
    assert created["table"] == "pods" and created["value"]["status"] == "ContainerCreating"
    assert created["value"]["tone"] == "starting"
    [started] = buckets.write(state, kv.POD_STATUS.name, pod.key, running(pod))
    view = started["value"]
    assert (view["status"], view["tone"], view["ready"], view["node"]) == ("Running", "ready", "1/1", "n1")
    assert view["owner"] == {"kind": "Deployment", "name": "web"}
    assert view["requests"] == {"cpu": 50, "memory": 16 * 2**20}


def test_a_status_of_an_earlier_pod_of_that_name_is_not_this_pods() -> None:
    buckets, state = Buckets(), ClusterState()
    pod = make_pod(make_deployment(), "aaaaa")
    buckets.write(state, kv.POD_STATUS.name, pod.key, running(pod).model_copy(update={"uid": "old"}))
    [patch] = buckets.write(state, kv.PODS.name, pod.key, pod)
    assert patch["value"]["status"] == "ContainerCreating"


def test_writes_that_change_nothing_shown_make_no_patch() -> None:
    buckets, state = Buckets(), ClusterState()
    pod = make_pod(make_deployment(), "aaaaa")
    buckets.write(state, kv.PODS.name, pod.key, pod)
    assert buckets.write(state, kv.POD_STATUS.name, pod.key, running(pod, ready_since=10.0))
    seq = state.seq
    # The node rewrote the status with a field the pages do not show: no patch, no new seq.
    assert buckets.write(state, kv.POD_STATUS.name, pod.key, running(pod, ready_since=11.0)) == []
    assert state.seq == seq


def test_a_status_without_its_pod_shows_nothing_until_the_pod_comes() -> None:
    buckets, state = Buckets(), ClusterState()
    pod = make_pod(make_deployment(), "aaaaa")
    assert buckets.write(state, kv.POD_STATUS.name, pod.key, running(pod)) == []
    [patch] = buckets.write(state, kv.PODS.name, pod.key, pod)
    assert patch["value"]["status"] == "Running"
    [gone] = buckets.write(state, kv.PODS.name, pod.key, None)
    assert gone == {"seq": state.seq, "table": "pods", "key": pod.key, "value": None}
    assert state.tables["pods"] == {}


def test_a_node_view_follows_its_condition_and_usage_against_capacity() -> None:
    buckets, state = Buckets(), ClusterState()
    [registered] = buckets.write(state, kv.NODES.name, "n1", make_node())
    assert registered["value"]["ready"] is None and registered["value"]["usage"] is None
    condition = NodeCondition(node="n1", ready=True, since=5.0, reason="KubeletReady")
    [ready] = buckets.write(state, kv.NODE_STATUS.name, "n1", condition)
    assert ready["value"]["ready"] is True
    sample = NodeMetrics(
        node="n1",
        timestamp=20.0,
        window=5.0,
        cpu_millis=250,
        memory_bytes=2**30,
        capacity_cpu_millis=2000,
        capacity_memory_bytes=4 * 2**30,
    )
    [used] = buckets.write(state, kv.METRICS.name, "n1", sample)
    assert used["value"]["usage"] == {
        "cpu": 250,
        "memory": 2**30,
        "capacityCpu": 2000,
        "capacityMemory": 4 * 2**30,
        "at": 20.0,
    }
    assert used["value"]["capacity"] == {"cpu": 2000, "memory": 4 * 2**30, "pods": 110}


def test_a_deployment_view_counts_replicas_only_from_its_own_status() -> None:
    buckets, state = Buckets(), ClusterState()
    dep = make_deployment(replicas=3)
    buckets.write(state, kv.DEPLOYMENTS.name, "default.web", dep)
    status = DeploymentStatus(
        namespace="default",
        name="web",
        uid=dep.metadata.uid,
        replicas=3,
        updated_replicas=2,
        ready_replicas=1,
    )
    [patch] = buckets.write(state, kv.DEPLOYMENT_STATUS.name, "default.web", status)
    view = patch["value"]
    assert (view["desired"], view["replicas"], view["updated"], view["ready"]) == (3, 3, 2, 1)
    stale = status.model_copy(update={"uid": "an-earlier-one", "ready_replicas": 3})
    [patch] = buckets.write(state, kv.DEPLOYMENT_STATUS.name, "default.web", stale)
    assert patch["value"]["ready"] == 0


def test_coalesce_keeps_the_last_change_of_each_key_and_every_event_in_order() -> None:
    patches = [
        {"seq": 1, "table": "pods", "key": "a", "value": {"v": 1}},
        {"seq": 2, "event": {"id": "e1"}},
        {"seq": 3, "table": "pods", "key": "b", "value": {"v": 1}},
        {"seq": 4, "table": "pods", "key": "a", "value": None},
        {"seq": 5, "event": {"id": "e2"}},
        {"seq": 6, "table": "nodes", "key": "a", "value": {"v": 2}},
    ]
    assert [p["seq"] for p in coalesce(patches)] == [2, 3, 4, 5, 6]


def test_a_snapshot_plus_the_patches_after_it_is_the_later_snapshot() -> None:
    rng = random.Random(7)
    buckets, state = Buckets(), ClusterState(events_kept=20)
    dep = make_deployment(replicas=5)
    pods = [make_pod(dep, f"p{i:04d}", node=f"n{i % 3}") for i in range(12)]
    for name in ("n0", "n1", "n2"):
        buckets.write(state, kv.NODES.name, name, make_node(name))
    buckets.write(state, kv.DEPLOYMENTS.name, "default.web", dep)
    early = state.snapshot()
    patches: list[dict[str, Any]] = []
    taken: dict[str, Any] | None = None
    for step in range(400):
        pod = rng.choice(pods)
        roll = rng.random()
        if roll < 0.3:
            patches += buckets.write(state, kv.PODS.name, pod.key, pod)
        elif roll < 0.4:
            patches += buckets.write(state, kv.PODS.name, pod.key, None)
        elif roll < 0.8:
            status = running(pod, ready=rng.random() < 0.5, ready_since=float(step))
            patches += buckets.write(state, kv.POD_STATUS.name, pod.key, status)
        elif roll < 0.9:
            ready = NodeCondition(node=pod.node_name, ready=rng.random() < 0.7, since=float(step))
            patches += buckets.write(state, kv.NODE_STATUS.name, pod.node_name, ready)
        else:
            patches.append(state.add_event({"id": f"e{step}", "reason": "Started"}))
        if step == 150:
            taken = state.snapshot()  # a browser that connects half way through
    assert apply(early, coalesce(patches), events_kept=20) == state.snapshot()
    assert taken is not None
    # It gets every patch too; those at or below its snapshot's seq are skipped.
    assert apply(taken, patches, events_kept=20) == state.snapshot()
    assert json.loads(state.snapshot_json()) == state.snapshot()


# -- the hub: one encoding, every browser ---------------------------------------------------------


async def test_the_hub_sends_each_batch_once_encoded_to_every_browser() -> None:
    buckets, state = Buckets(), ClusterState()
    hub = Hub(state, flush_interval=0.01)
    first, second = hub.subscribe(), hub.subscribe()
    assert json.loads(first.snapshot)["seq"] == 0
    pod = make_pod(make_deployment(), "aaaaa")
    hub.publish(buckets.write(state, kv.PODS.name, pod.key, pod))
    hub.publish(buckets.write(state, kv.POD_STATUS.name, pod.key, running(pod)))
    batch = await first.queue.get()
    assert batch is (await second.queue.get())  # encoded once
    [patch] = json.loads(batch)  # two changes of one pod: only the newest is sent
    assert patch["value"]["status"] == "Running" and patch["seq"] == 2
    hub.close()
    assert await first.queue.get() is None and await second.queue.get() is None
    late = hub.subscribe()
    assert await late.queue.get() is None


async def test_a_browser_that_falls_behind_is_cut_off_and_starts_over() -> None:
    state = ClusterState()
    hub = Hub(state, flush_interval=0.0, queue_limit=3)
    slow, fast = hub.subscribe(), hub.subscribe()
    for i in range(5):
        hub.publish([state.add_event({"id": str(i)})])
        hub.flush()
        await fast.queue.get()
    assert slow not in hub.subscribers and fast in hub.subscribers
    received = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert len(received) == 4 and received[-1] is None


# -- detail pages, and where the server listens ---------------------------------------------------


def test_detail_renders_objects_as_get_yaml_does() -> None:
    buckets = Buckets()
    pod = make_pod(make_deployment(), "aaaaa")
    buckets.data[kv.PODS.name] = {pod.key: pod}
    buckets.data[kv.POD_STATUS.name] = {pod.key: running(pod)}
    obj = detail.render("pods", "default", pod.metadata.name, buckets.get, buckets.values)
    assert obj == pod_object(pod, running(pod))
    assert detail.render("pods", "default", "nope", buckets.get, buckets.values) is None
    [hpa_doc], _ = validate_documents(
        parse_documents(hpa("web", utilization_metric("cpu", 50), min_replicas=1, max_replicas=4), "t")
    )
    model = hpa_doc.model
    assert isinstance(model, HorizontalPodAutoscaler)
    status = HPAStatus(
        namespace="default",
        name="web",
        uid=model.metadata.uid,
        current_replicas=2,
        desired_replicas=3,
        decisions=[Decision(at=1.0, from_replicas=1, to_replicas=2, reason="cpu")],
        recommendations=[Recommendation(at=2.0, replicas=3)],
    )
    buckets.data[kv.HPAS.name] = {"default.web": model}
    buckets.data[kv.HPA_STATUS.name] = {"default.web": status}
    # As `shoal get hpa web -o yaml` prints it: the same function renders both.
    assert detail.render("hpas", "default", "web", buckets.get, buckets.values) == hpa_object(model, status)
    assert "kind: Pod\n" in detail.as_yaml(obj)


def test_hpa_views_carry_the_history_the_chart_draws() -> None:
    buckets, state = Buckets(), ClusterState()
    [hpa_doc], _ = validate_documents(
        parse_documents(hpa("web", utilization_metric("cpu", 50), min_replicas=1, max_replicas=4), "t")
    )
    model = hpa_doc.model
    buckets.write(state, kv.HPAS.name, "default.web", model)
    status = HPAStatus(
        namespace="default",
        name="web",
        uid=model.metadata.uid,
        current_replicas=2,
        desired_replicas=2,
        decisions=[Decision(at=1.0, from_replicas=1, to_replicas=2, reason="cpu above target")],
        recommendations=[Recommendation(at=2.0, replicas=2)],
    )
    buckets.write(state, kv.HPA_STATUS.name, "default.web", status)
    view = derive("hpas", "default.web", buckets.get)
    assert view is not None
    assert (view["min"], view["max"], view["current"]) == (1, 4, 2)
    assert view["decisions"] == [{"at": 1.0, "from": 1, "to": 2, "reason": "cpu above target"}]
    assert view["recommendations"] == [{"at": 2.0, "replicas": 2}]


def test_a_taken_port_fails_clearly_or_gives_way_to_a_free_one() -> None:
    first = bind("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        with pytest.raises(ShoalError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind("127.0.0.1", port)
        other = bind("127.0.0.1", port, any_free_port=True)
        try:
            assert other.getsockname()[1] != port
            assert url_of(other) == f"http://127.0.0.1:{other.getsockname()[1]}/"
        finally:
            other.close()
    finally:
        first.close()


# -- a real browser against a real cluster --------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(cluster: LocalShoal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``shoal dashboard`` as a process of its own, following the module's cluster as a viewer."""
    with dashboard_process(cluster, tmp_path_factory.mktemp("dashboard"), "viewer") as base:
        yield base


@pytest.fixture(scope="module")
def app_name(cluster: LocalShoal, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A deployment of one replica, applied once for the module."""
    name = unique_name("dash")
    manifest = tmp_path_factory.mktemp("manifests") / f"{name}.yaml"
    manifest.write_text(deployment(name, replicas=1))
    cluster.shoal("apply", "-f", str(manifest), check=True)
    return name


def pods_of(name: str) -> str:
    return f'[data-pod^="default/{name}-"]'


def test_the_overview_shows_the_node_and_scaled_pods_within_two_seconds(
    cluster: LocalShoal, dashboard: str, app_name: str, page: Any, tmp_path: Path
) -> None:
    open_page(page, dashboard)
    node = page.locator(f'[data-node="{cluster.node}"]')
    node.wait_for(timeout=30_000)  # a loaded machine: the node registers once the API has the cluster id
    assert "Ready" in node.inner_text()
    page.wait_for_selector(f'[data-node="{cluster.node}"] {pods_of(app_name)}.tone-ready', timeout=60_000)
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    cluster.shoal("scale", "deployment", app_name, "--replicas", "3", check=True)
    scaled = time.monotonic()
    page.wait_for_function(
        "selector => document.querySelectorAll(selector).length >= 3", arg=pods_of(app_name), timeout=2_000
    )
    assert time.monotonic() - scaled < 2.0
    page.wait_for_selector(f"{pods_of(app_name)}.tone-ready >> nth=2", timeout=60_000)
    page.screenshot(path=str(tmp_path / "overview-scaled.png"), full_page=True)

    phone = page.context.browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        small = phone.new_page()
        open_page(small, dashboard)
        small.locator(pods_of(app_name)).first.wait_for(timeout=10_000)
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the overview is {width}px wide on a 390px screen"
        small.screenshot(path=str(tmp_path / "overview-phone.png"), full_page=True)
    finally:
        phone.close()


def test_a_detail_page_shows_the_yaml_of_shoal_get_its_pods_and_events(
    cluster: LocalShoal, dashboard: str, app_name: str, page: Any, tmp_path: Path
) -> None:
    open_page(page, f"{dashboard}#/object/deployments/default/{app_name}")
    yaml_block = page.locator("pre.yaml")
    yaml_block.filter(has_text="kind: Deployment").wait_for(timeout=10_000)

    def agree() -> bool:  # the status settles; then the page and the command agree to the character
        expected = cluster.shoal("get", "deployment", app_name, "-o", "yaml", check=True).stdout
        return yaml_block.text_content() == expected

    wait_until(agree, timeout=20, interval=0.5, what="the page's YAML to equal `shoal get -o yaml`")
    page.locator(f"tr{pods_of(app_name)}").first.wait_for(timeout=10_000)
    page.locator("table.events", has_text="PodsCreated").wait_for(timeout=10_000)
    page.screenshot(path=str(tmp_path / "deployment.png"), full_page=True)

    pod_name = page.locator(f"tr{pods_of(app_name)} a").first.inner_text()
    page.locator(f"tr{pods_of(app_name)} a").first.click()
    page.wait_for_url(re.compile(rf"#/object/pods/default/{re.escape(pod_name)}$"))
    yaml_block.filter(has_text="kind: Pod").wait_for(timeout=10_000)
    assert f"name: {pod_name}" in yaml_block.inner_text()
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(rf"#/object/deployments/default/{app_name}$"))


def test_the_deployments_events_and_autoscaler_pages_follow_the_cluster(
    cluster: LocalShoal, dashboard: str, app_name: str, page: Any, tmp_path: Path
) -> None:
    open_page(page, dashboard)
    page.locator("[data-node]").first.wait_for(timeout=10_000)  # drawn, and listening for keys
    page.keyboard.press("2")
    page.wait_for_url(re.compile(r"#/deployments$"))
    card = page.locator(f'[data-deployment="default/{app_name}"]')
    card.wait_for(timeout=10_000)
    page.screenshot(path=str(tmp_path / "deployments.png"), full_page=True)

    page.keyboard.press("3")
    page.wait_for_url(re.compile(r"#/events$"))
    page.locator("#ev-text").wait_for(timeout=10_000)  # the page is drawn after the URL changes
    page.keyboard.press("/")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'ev-text'", timeout=5_000)
    page.keyboard.type(app_name)
    page.locator("table.events tbody tr").first.wait_for(timeout=10_000)
    rows = page.locator("table.events tbody tr").all_inner_texts()
    assert rows and all(app_name in row for row in rows)
    assert f"q={app_name}" in page.url
    page.screenshot(path=str(tmp_path / "events.png"), full_page=True)

    scaled = unique_name("dash-hpa")
    manifest = tmp_path / "hpa.yaml"
    metric = utilization_metric("cpu", 50)
    manifest.write_text(
        deployment(scaled, replicas=2) + "---\n" + hpa(scaled, metric, min_replicas=1, max_replicas=3)
    )
    cluster.shoal("apply", "-f", str(manifest), check=True)
    page.keyboard.press("Escape")  # out of the filter: keys are page keys again
    page.keyboard.press("4")
    page.wait_for_url(re.compile(r"#/hpas$"))
    chart = page.locator(f'[data-chart="default/{scaled}"]')
    chart.wait_for(timeout=10_000)
    chart.locator("path.replicas").wait_for(state="attached", timeout=10_000)  # flat: no height
    page.screenshot(path=str(tmp_path / "autoscalers.png"), full_page=True)
    cluster.shoal("delete", "-f", str(manifest), check=True)


def test_shoal_up_serves_the_dashboard_beside_nats(cluster: LocalShoal) -> None:
    found = re.search(r"dashboard at (http://127\.0\.0\.1:\d+/)", cluster.log.read_text())
    assert found, f"shoal up printed no dashboard address:\n{cluster.log.read_text()}"
    base = found.group(1)
    wait_synced(base, None, None, 10)
    with urllib.request.urlopen(base, timeout=3) as response:
        assert b'<script type="module" src="/static/main.js">' in response.read()
    nodes = http_json(base + "api/snapshot")["tables"]["nodes"]
    assert cluster.node in nodes


def test_a_pods_log_follows_on_its_page(
    cluster: LocalShoal, dashboard: str, page: Any, tmp_path: Path
) -> None:
    name = unique_name("dash-log")
    manifest = tmp_path / "ticker.yaml"
    ticking = ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done"]
    manifest.write_text(deployment(name, replicas=1, command=ticking, cpu="10m"))
    cluster.shoal("apply", "-f", str(manifest), check=True)
    try:

        def pods() -> list[str]:
            return cluster.shoal("get", "pods", "-l", f"app={name}", "-o", "name", check=True).stdout.split()

        pod = wait_until(pods, timeout=30, what="the ticker's pod")[0].removeprefix("pod/")
        # The page may open at any time: before the pod has a node or a container, it asks again.
        open_page(page, f"{dashboard}#/object/pods/default/{pod}")
        log = page.locator("pre.logs")
        log.filter(has_text="tick 2").wait_for(timeout=60_000)

        def last_tick() -> int:
            return max(int(n) for n in re.findall(r"tick (\d+)", log.inner_text()))

        seen = last_tick()
        wait_until(lambda: last_tick() >= seen + 3, timeout=10, what="new lines of the log on the page")
        assert log.inner_text().startswith("tick 0")  # from its beginning (within the tail), no line twice
        assert len(re.findall(r"tick 1\n", log.inner_text())) == 1
        page.screenshot(path=str(tmp_path / "pod-log.png"), full_page=True)
    finally:
        cluster.shoal("delete", "-f", str(manifest))


def test_a_read_only_dashboard_offers_no_action_and_takes_none(
    cluster: LocalShoal, dashboard: str, app_name: str, page: Any
) -> None:
    session = http_json(dashboard + "api/session")
    assert session == {"changes": False, "identity": "viewer", "actions": {}, "token": None}
    open_page(page, f"{dashboard}#/object/deployments/default/{app_name}")
    page.locator("pre.yaml").filter(has_text="kind: Deployment").wait_for(timeout=10_000)
    assert page.locator("#mode").inner_text() == "Read-only view"
    assert page.locator("button[data-action]").count() == 0
    origin = dashboard.rstrip("/")
    scale = {"action": "scale", "table": "deployments", "namespace": "default", "name": app_name}
    scale["replicas"] = 5
    request = urllib.request.Request(
        dashboard + "api/actions",
        data=json.dumps(scale).encode(),
        headers={"content-type": "application/json", "origin": origin},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 403
    assert "read-only" in json.loads(refused.value.read())["error"]
    shown = cluster.shoal("get", "deployment", app_name, "-o", "jsonpath={.spec.replicas}", check=True).stdout
    assert shown != "5"
