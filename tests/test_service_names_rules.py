"""Cluster IPs and names decided without servers: nftables rules, DNS records and answers,
cluster IP allocation."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from shoal.actors.api.services import assign_cluster_ip
from shoal.actors.node.dns import answer, host_resolvers, records
from shoal.actors.node.servicenet import Backend, backends, ruleset, udp_translations
from shoal.errors import InvalidManifest
from shoal.models.service import Endpoints, EndpointTarget, Service


def svc(name: str = "web", **spec: Any) -> Service:
    body = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}], **spec}
    return Service.model_validate({"metadata": {"name": name, "namespace": "shop"}, "spec": body})


def target(
    pod: str, node: str, host: str = "192.0.2.1", port: int = 41000, ip: str = "10.88.0.5"
) -> EndpointTarget:
    return EndpointTarget(pod=pod, node=node, host=host, port=port, pod_ip=ip, container_port=8080)


def endpoints(name: str, *targets: EndpointTarget) -> Endpoints:
    return Endpoints.model_validate(
        {
            "namespace": "shop",
            "name": name,
            "uid": "u",
            "ports": [
                {"name": "80", "port": 80, "nodePort": 30001, "targets": [t.model_dump() for t in targets]}
            ],
        }
    )


@pytest.mark.parametrize(
    ("targets", "local_only", "expected"),
    [
        # On this node: straight to the pod; elsewhere: the node's address and host port.
        ([target("a", "n1")], False, [Backend("10.88.0.5", 8080)]),
        (
            [target("b", "n2", host="192.0.2.2", port=41001)],
            False,
            [Backend("192.0.2.2", 41001, remote=True)],
        ),
        # Another node of this very host (a loopback or local address): its pods share the bridge.
        ([target("c", "n3", host="127.0.0.1")], False, [Backend("10.88.0.5", 8080)]),
        # Elsewhere and not published: unreachable from here.
        ([target("d", "n2", host="192.0.2.2", port=0)], False, []),
        # internalTrafficPolicy: Local keeps this node's endpoints only.
        (
            [target("a", "n1"), target("b", "n2", host="192.0.2.2", ip="10.88.0.6")],
            True,
            [Backend("10.88.0.5", 8080)],
        ),
    ],
)
def test_backends(targets: list[EndpointTarget], local_only: bool, expected: list[Backend]) -> None:
    assert backends(targets, "n1", frozenset({"192.0.2.1"}), local_only) == expected


def test_prefer_same_node_uses_local_endpoints_when_there_are_some() -> None:
    here, there = target("a", "n1"), target("b", "n2", host="192.0.2.2", port=41001)
    assert backends([here, there], "n1", frozenset(), False, prefer_local=True) == [
        Backend("10.88.0.5", 8080)
    ]
    assert backends([there], "n1", frozenset(), False, prefer_local=True) == [
        Backend("192.0.2.2", 41001, remote=True)
    ]


def test_client_ip_affinity_remembers_clients_per_endpoint() -> None:
    sticky = svc("web", clusterIP="10.96.0.10", sessionAffinity="ClientIP",
                 sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})  # fmt: skip
    found = {("shop", "web"): endpoints("web", target("a", "n1"), target("b", "n2", host="192.0.2.2"))}
    text = ruleset([sticky], found, "n1")
    assert "ip saddr @svc-0-0-clients goto svc-0-0" in text and "timeout 60s" in text
    assert "update @svc-0-1-clients { ip saddr }" in text
    checked = subprocess.run(["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_udp_translations_name_where_each_udp_port_goes_and_nothing_else() -> None:
    dns = svc("dns", clusterIP="10.96.0.53", ports=[{"port": 53, "targetPort": 8080, "protocol": "UDP"}])
    web = svc("web", clusterIP="10.96.0.10")
    both = [target("a", "n1"), target("b", "n2", host="192.0.2.2", port=41001)]
    found = {("shop", "dns"): endpoints("dns", *both), ("shop", "web"): endpoints("web", *both)}
    for name in ("dns", "web"):  # endpoints() names its one port "80"; these services' keys differ
        found[("shop", name)].ports[0].name = (dns if name == "dns" else web).spec.ports[0].key
    before = udp_translations([dns, web], found, "n1")
    # The local pod at its pod IP and container port; the other host's at its address and port.
    assert before == {("10.96.0.53", 53, "10.88.0.5", 8080), ("10.96.0.53", 53, "192.0.2.2", 41001)}
    found[("shop", "dns")].ports[0].targets = [both[0]]
    # The pod on the other host went: its translations are the ones to forget.
    assert before - udp_translations([dns, web], found, "n1") == {("10.96.0.53", 53, "192.0.2.2", 41001)}


def test_the_ruleset_is_valid_nftables_and_refuses_services_without_endpoints() -> None:
    services = [
        svc("web", clusterIP="10.96.0.10"),
        svc("empty", clusterIP="10.96.0.11"),
        svc("dns", clusterIP="10.96.0.12", ports=[{"port": 53, "protocol": "UDP"}]),
        svc("headless", clusterIP="None"),
    ]
    udp_target = target("d", "n1").model_dump() | {"container_port": 53}
    found = {
        ("shop", "web"): endpoints("web", target("a", "n1"), target("b", "n2", host="192.0.2.2", port=41001)),
        ("shop", "dns"): Endpoints.model_validate(
            {
                "namespace": "shop",
                "name": "dns",
                "uid": "u",
                "ports": [
                    {"name": "53", "port": 53, "nodePort": 0, "protocol": "UDP", "targets": [udp_target]}
                ],
            }
        ),
    }
    text = ruleset(services, found, "n1", frozenset({"192.0.2.1"}))
    assert re.search(r"10\.96\.0\.10 \. tcp \. 80 : goto svc-\d", text)
    assert "numgen random mod 2" in text
    assert "dnat to 10.88.0.5:8080" in text and "dnat to 192.0.2.2:41001" in text
    assert re.search(r"10\.96\.0\.12 \. udp \. 53 : goto svc-\d", text) and "meta l4proto udp" in text
    assert "elements = { 10.96.0.11 . tcp . 80 }" in text  # refused: no endpoints
    assert "headless" not in text
    checked = subprocess.run(["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_with_br_netfilter_only_connections_to_other_hosts_are_masqueraded() -> None:
    found = {
        ("shop", "web"): endpoints("web", target("a", "n1"), target("b", "n2", host="192.0.2.2", port=41001))
    }
    text = ruleset([svc("web", clusterIP="10.96.0.10")], found, "n1", bridge_filtered=True)
    assert "meta l4proto tcp dnat to 10.88.0.5:8080" in text  # on this bridge: the reply finds its way
    assert "meta l4proto tcp ct mark set 0x5348 dnat to 192.0.2.2:41001" in text
    plain = ruleset([svc("web", clusterIP="10.96.0.10")], found, "n1", bridge_filtered=False)
    assert "ct mark set 0x5348 dnat to 10.88.0.5:8080" in plain


def test_an_empty_cluster_has_a_valid_empty_table() -> None:
    checked = subprocess.run(
        ["nft", "-c", "-f", "-"], input=ruleset([], {}, "n1"), capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def query(name: str, kind: str = "A") -> DNSRecord:
    return DNSRecord.question(name, kind)


KNOWN = records(
    [svc("web", clusterIP="10.96.0.10"), svc("db", clusterIP="None")],
    {
        ("shop", "db"): endpoints(
            "db", target("db-0", "n1", ip="10.88.0.7"), target("db-1", "n2", ip="10.88.0.8")
        )
    },
    "cluster.local",
)


@pytest.mark.parametrize(
    ("name", "kind", "rcode", "addresses"),
    [
        ("web.shop.svc.cluster.local", "A", RCODE.NOERROR, ["10.96.0.10"]),
        ("WEB.Shop.svc.cluster.local", "A", RCODE.NOERROR, ["10.96.0.10"]),
        ("web.shop.svc.cluster.local", "AAAA", RCODE.NOERROR, []),
        ("db.shop.svc.cluster.local", "A", RCODE.NOERROR, ["10.88.0.7", "10.88.0.8"]),
        ("db-1.db.shop.svc.cluster.local", "A", RCODE.NOERROR, ["10.88.0.8"]),
        ("nothing.shop.svc.cluster.local", "A", RCODE.NXDOMAIN, []),
        ("web.default.svc.cluster.local", "A", RCODE.NXDOMAIN, []),
        ("shop.svc.cluster.local", "A", RCODE.NOERROR, []),  # a name on the way to others exists
    ],
)
def test_cluster_names(name: str, kind: str, rcode: int, addresses: list[str]) -> None:
    reply = answer(query(name, kind), KNOWN, "cluster.local")
    assert reply is not None and reply.header.rcode == rcode and reply.header.aa == 1
    assert sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A) == addresses


def test_other_names_are_forwarded() -> None:
    assert answer(query("example.org"), KNOWN, "cluster.local") is None
    assert answer(query("web.shop.svc.cluster.local.evil.org"), KNOWN, "cluster.local") is None


def test_host_resolvers_skip_our_own_address(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "resolv.conf"
    conf.write_text("search x\nnameserver 10.88.0.1\nnameserver 192.0.2.53\n")
    assert host_resolvers(conf, exclude=["10.88.0.1"]) == ["192.0.2.53"]
    assert host_resolvers(tmp_path / "missing") == ["127.0.0.53"]


@pytest.mark.parametrize(
    ("spec", "stored_ip", "taken", "expected"),
    [
        ({}, None, {}, "10.96.0.10"),
        ({}, None, {"10.96.0.10": "shop/a"}, "10.96.0.11"),
        ({}, "10.96.0.42", {}, "10.96.0.42"),  # kept across applies
        ({"clusterIP": "10.96.1.1"}, None, {}, "10.96.1.1"),
        ({"clusterIP": "None"}, None, {}, "None"),
        ({"type": "ExternalName", "externalName": "db.example.org"}, None, {}, None),
    ],
)
def test_cluster_ip_allocation(spec: dict, stored_ip: str | None, taken: dict, expected: str | None) -> None:
    stored = svc(clusterIP=stored_ip) if stored_ip else None
    assert assign_cluster_ip(svc(**spec), stored, taken, "10.96.0.0/16").spec.cluster_ip == expected


@pytest.mark.parametrize(
    ("spec", "stored_ip", "taken", "problem"),
    [
        ({"clusterIP": "10.96.0.9"}, "10.96.0.42", {}, "field is immutable (it is 10.96.0.42)"),
        ({"clusterIP": "10.97.0.1"}, None, {}, "10.97.0.1 is not in the service range 10.96.0.0/16"),
        (
            {"clusterIP": "10.96.0.20"},
            None,
            {"10.96.0.20": "shop/other"},
            "already used by service shop/other",
        ),
    ],
)
def test_cluster_ip_problems(spec: dict, stored_ip: str | None, taken: dict, problem: str) -> None:
    stored = svc(clusterIP=stored_ip) if stored_ip else None
    with pytest.raises(InvalidManifest, match=re.escape(problem)):
        assign_cluster_ip(svc(**spec), stored, taken, "10.96.0.0/16")


def test_a_full_range_is_said_so() -> None:
    taken = {f"10.96.0.{i}": "shop/x" for i in range(1, 15)}
    with pytest.raises(
        InvalidManifest, match=re.escape("no cluster IP left in the service range 10.96.0.0/28")
    ):
        assign_cluster_ip(svc(), None, taken, "10.96.0.0/28")
