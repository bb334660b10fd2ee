"""The permissions of each role, as tables: what nats-server will let each identity publish
and subscribe to (matched as nats-server matches subjects: ``*`` one token, ``>`` the rest)."""

from __future__ import annotations

import pytest

from shoal.bus import subjects as s
from shoal.security.permissions import ROLES, Grant, grant


def matches(pattern: str, subject: str) -> bool:
    wanted, given = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(given) > index
        if index >= len(given) or (token != "*" and token != given[index]):
            return False
    return len(wanted) == len(given)


def may_publish(g: Grant, subject: str) -> bool:
    allowed = any(matches(pattern, subject) for pattern in g.publish)
    return allowed and not any(matches(pattern, subject) for pattern in g.publish_deny)


def may_subscribe(g: Grant, subject: str) -> bool:
    allowed = any(matches(pattern.split(" ")[0], subject) for pattern in g.subscribe)
    return allowed and not any(matches(pattern, subject) for pattern in g.subscribe_deny)


def test_the_matcher_matches_as_nats_does() -> None:
    assert matches("a.*.c", "a.b.c") and not matches("a.*.c", "a.b.b.c")
    assert matches("a.>", "a.b.c") and not matches("a.>", "a")
    assert not matches("a.b", "a.b.c") and not matches("a.b.c", "a.b")


NODE_A = grant("node", "a")


@pytest.mark.parametrize(
    ("subject", "allowed"),
    [
        ("$KV.shoal_nodes.a", True),
        ("$KV.shoal_nodes.b", False),
        ("$KV.shoal_metrics.a", True),
        ("$KV.shoal_metrics.b", False),
        # Pod statuses are kept under the node that reports them: its own only.
        ("$KV.shoal_pod_status.a.default.web-1", True),
        ("$KV.shoal_pod_status.b.default.web-1", False),
        ("$KV.shoal_pod_status.default.web-1", False),
        (s.node_heartbeat("a"), True),
        (s.node_heartbeat("b"), False),
        (s.node_secrets("a"), True),
        (s.node_secrets("b"), False),
        # Pod records it has stopped go through the API, on its own subject; it writes none.
        (s.node_release("a"), True),
        (s.node_release("b"), False),
        ("$KV.shoal_pods.default.web-1", False),
        ("$KVFENCE.shoal_pods.node-a.fence.0", False),
        ("$KV.shoal_deployments.default.web", False),
        ("$KV.shoal_endpoints.default.web", False),
        ("$KV.shoal_leases.scheduler", False),
        ("$KV.shoal_secrets.default.db", False),
        (s.API_APPLY, False),
        (s.API_SECRET_READ, False),
        ("$JS.API.DIRECT.GET.KV_shoal_pods.$KV.shoal_pods.default.web-1", True),
        ("$JS.API.DIRECT.GET.KV_shoal_deployments.$KV.shoal_deployments.default.web", False),
        ("$JS.API.STREAM.DELETE.KV_shoal_pods", False),
        ("$JS.API.STREAM.PURGE.KV_shoal_pods", False),
        ("$JS.API.STREAM.UPDATE.KV_shoal_pods", False),
        ("shoal.v1.events.node._.a.NodeReady", True),
        ("shoal.v1.events.node._.b.NodeNotReady", False),
    ],
)
def test_a_node_publishes_only_what_is_its_own(subject: str, allowed: bool) -> None:
    assert may_publish(NODE_A, subject) is allowed


@pytest.mark.parametrize(
    ("subject", "allowed"),
    [
        ("_SHOAL_INBOX.node-a.abc", True),
        ("_SHOAL_INBOX.admin.abc", False),
        ("_SHOAL_INBOX.>", False),
        (s.node_logs("a"), True),
        (s.node_logs("b"), False),
        (s.API_APPLY, False),
        (s.NODE_SECRETS_ALL, False),
        ("$KV.shoal_pods.>", False),  # a node reads buckets through consumers, not by listening
        (s.node_exec("a"), True),
        (s.node_exec("b"), False),
        (s.exec_input(s.exec_stream("a", "x")), True),
        (s.exec_input(s.exec_stream("b", "x")), False),  # another node's session: someone's typing
        (s.exec_stream("a", "x"), False),  # its sessions' output is the client's to read
    ],
)
def test_a_node_listens_only_where_it_must(subject: str, allowed: bool) -> None:
    assert may_subscribe(NODE_A, subject) is allowed


def test_a_viewer_writes_nothing_and_reads_no_secrets() -> None:
    viewer = grant("viewer")
    assert not [p for p in viewer.publish if p.startswith(("$KV.", "$KVFENCE."))]
    for subject in (*s.API_SUBJECTS, s.API_SECRET_READ):
        assert not may_publish(viewer, subject)
    assert not may_publish(viewer, "$JS.API.STREAM.MSG.GET.KV_shoal_secrets")
    assert may_publish(viewer, "$JS.API.STREAM.MSG.GET.KV_shoal_pods")
    assert may_publish(viewer, s.API_VERSION)
    assert may_subscribe(viewer, "shoal.v1.events.pod.default.web-1.Started")


def test_only_an_admin_runs_commands_in_pods() -> None:
    session = s.exec_stream("a", "x")
    admin, viewer, node = grant("admin"), grant("viewer"), grant("node", "a")
    assert may_publish(admin, s.node_exec("a")) and may_publish(admin, s.exec_input(session))
    assert may_subscribe(admin, session)
    assert not any(may_publish(viewer, subject) for subject in (s.node_exec("a"), s.exec_input(session)))
    assert not may_subscribe(viewer, session)
    assert may_publish(node, session) and not may_publish(node, s.exec_stream("b", "x"))
    # Port-forward sessions are exec sessions: the same holds.
    assert may_publish(admin, s.node_forward("a")) and not may_publish(viewer, s.node_forward("a"))
    assert may_subscribe(node, s.node_forward("a")) and not may_subscribe(node, s.node_forward("b"))
    assert not may_publish(grant("app"), s.node_exec("a"))


def test_an_admin_changes_things_through_the_api_only() -> None:
    admin = grant("admin")
    assert all(may_publish(admin, subject) for subject in s.API_SUBJECTS)
    assert may_publish(admin, s.API_SECRET_READ)
    assert not [p for p in admin.publish if p.startswith(("$KV.", "$KVFENCE."))]
    assert not may_publish(admin, "$JS.API.STREAM.DELETE.KV_shoal_pods")


@pytest.mark.parametrize("role", ["api", "scheduler", "service", "autoscaler"])
def test_each_control_plane_role_holds_its_own_lease_only(role: str) -> None:
    g = grant(role)
    assert may_publish(g, f"$KV.shoal_leases.{role}")
    others = {"api", "scheduler", "service", "autoscaler"} - {role}
    assert not any(may_publish(g, f"$KV.shoal_leases.{other}") for other in others)


@pytest.mark.parametrize(
    ("role", "bucket", "allowed"),
    [
        ("api", s.BUCKET_DEPLOYMENTS, True),
        ("api", s.BUCKET_ENDPOINTS, False),
        ("api", s.BUCKET_NODE_STATUS, False),
        ("scheduler", s.BUCKET_PODS, True),
        ("scheduler", s.BUCKET_DEPLOYMENTS, False),
        ("scheduler", s.BUCKET_SECRETS, False),
        ("scheduler", s.BUCKET_POD_STATUS, False),  # nodes alone report pod status
        ("service", s.BUCKET_ENDPOINTS, True),
        ("service", s.BUCKET_PODS, False),
        ("autoscaler", s.BUCKET_HPA_STATUS, True),
        ("autoscaler", s.BUCKET_DEPLOYMENTS, False),
    ],
)
def test_control_plane_roles_write_the_buckets_they_own(role: str, bucket: str, allowed: bool) -> None:
    assert may_publish(grant(role), f"$KV.{bucket}.default.x") is allowed


@pytest.mark.parametrize(
    ("subject", "allowed"),
    [
        ("jobs.1", True),
        ("$JS.API.STREAM.CREATE.JOBS", True),
        ("$JS.API.CONSUMER.DURABLE.CREATE.JOBS.workers", True),
        ("$KV.my_app_bucket.key", True),
        ("$KV.shoal_pods.default.web-1", False),
        ("$JS.API.STREAM.DELETE.KV_shoal_pods", False),
        ("$JS.API.STREAM.PURGE.SHOAL_EVENTS", False),
        ("$JS.API.CONSUMER.DURABLE.CREATE.KV_shoal_secrets.spy", False),
        ("$JS.API.DIRECT.GET.KV_shoal_secrets.$KV.shoal_secrets.default.db", False),
        ("$KVFENCE.shoal_pods.scheduler.fence.0", False),
        (s.API_APPLY, False),
        (s.node_heartbeat("a"), False),
    ],
)
def test_an_app_does_anything_that_is_not_shoal_s(subject: str, allowed: bool) -> None:
    assert may_publish(grant("app"), subject) is allowed


def test_an_app_listens_anywhere_but_to_shoal() -> None:
    app = grant("app")
    assert may_subscribe(app, "jobs.>") and may_subscribe(app, "_INBOX.abc.def")
    assert not may_subscribe(app, "_SHOAL_INBOX.admin.abc")
    assert not may_subscribe(app, "shoal.v1.api.apply")
    assert not may_subscribe(app, "$KV.shoal_secrets.default.db")


@pytest.mark.parametrize("role", [role for role in ROLES if role != "app"])
def test_every_identity_has_an_inbox_of_its_own_and_deletes_no_stream(role: str) -> None:
    name = "a" if role == "node" else ""
    g = grant(role, name)
    identity = f"{role}-{name}" if name else role
    assert may_subscribe(g, f"_SHOAL_INBOX.{identity}.x")
    assert not may_subscribe(g, "_SHOAL_INBOX.someone-else.x")
    assert not may_publish(g, "$JS.API.STREAM.DELETE.SHOAL_EVENTS")
    assert not may_publish(g, "$JS.API.STREAM.PURGE.KV_shoal_deployments")


def test_a_node_needs_a_name_and_roles_are_known() -> None:
    with pytest.raises(ValueError, match="name"):
        grant("node")
    with pytest.raises(ValueError, match="unknown role"):
        grant("root")
