"""Which runtime objects a node takes for its own when several clusters share a host: tables."""

from __future__ import annotations

import pytest

from shoal.actors.node.servicenet import ruleset, table_name
from shoal.runtime import labels
from shoal.runtime.podman import container_name, podman_pod_name

OURS = "a" * 32
OTHER = "b" * 32


@pytest.mark.parametrize(
    ("found", "node", "cluster", "expected"),
    [
        ({"shoal.node": "n1", "shoal.cluster": OURS}, "n1", OURS, True),
        ({"shoal.node": "n1", "shoal.cluster": OTHER}, "n1", OURS, False),  # another cluster's n1
        ({"shoal.node": "n2", "shoal.cluster": OURS}, "n1", OURS, False),  # another node of ours
        ({"shoal.node": "n1"}, "n1", OURS, True),  # made before clusters had ids: adopted
        ({"shoal.cluster": OURS}, "n1", OURS, False),
        ({}, "n1", OURS, False),
        ({"shoal.node": "n1", "shoal.cluster": OTHER}, "n1", "", True),  # id not known yet
    ],
)
def test_ours(found: dict[str, str], node: str, cluster: str, expected: bool) -> None:
    assert labels.ours(found, node, cluster) is expected


def test_names_carry_the_cluster_so_two_clusters_may_run_a_pod_of_one_name() -> None:
    assert podman_pod_name("default", "db-0", OURS) == "shoal_aaaaaaaa_default_db-0"
    assert container_name("default", "db-0", "main", 2, OURS) == "shoal_aaaaaaaa_default_db-0_main_2"
    assert container_name("default", "db-0", "main", 2, OURS) != container_name(
        "default", "db-0", "main", 2, OTHER
    )
    assert container_name("default", "db-0", "main", 0) == "shoal_default_db-0_main_0"


def test_each_cluster_keeps_its_own_service_table() -> None:
    assert table_name(OURS) == "shoal_aaaaaaaa" != table_name(OTHER)
    text = ruleset([], {}, "n1", table=table_name(OURS))
    assert "table ip shoal_aaaaaaaa {" in text and "delete table ip shoal_aaaaaaaa" in text
    assert "table ip shoal {" not in text
