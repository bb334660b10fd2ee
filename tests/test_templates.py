"""``-o jsonpath`` and ``-o custom-columns`` as kubectl reads them, over Kubernetes-shaped objects."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.cli.templates import custom_columns, jsonpath
from shoal.errors import InvalidManifest

PODS: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "metadata": {"name": "web-1", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"image": "web:1"}, {"image": "log:1"}]},
            "status": {"podIP": "10.88.0.5", "phase": "Running"},
        },
        {
            "metadata": {"name": "db-0"},
            "spec": {"nodeName": "n2", "containers": [{"image": "db:1"}]},
            "status": {"podIP": "10.88.0.6", "phase": "Pending"},
        },
    ],
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.items[*].metadata.name}", "web-1 db-0"),
        ("{.items[0].status.podIP}", "10.88.0.5"),
        ("ip={.items[1].status.podIP}", "ip=10.88.0.6"),
        ("{.items[0].spec.containers[*].image}", "web:1 log:1"),
        ('{range .items[*]}{.metadata.name}{"\\t"}{.spec.nodeName}{"\\n"}{end}', "web-1\tn1\ndb-0\tn2\n"),
        ("{.items[?(@.status.phase=='Pending')].metadata.name}", "db-0"),
        ("{.items[0].metadata.labels}", '{"app":"web"}'),
        ("{.kind}", "List"),
        ("{.items[5].metadata.name}", ""),
    ],
)
def test_jsonpath_templates_fill_in_as_kubectl_does(template: str, expected: str) -> None:
    assert jsonpath(template, PODS) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{range .items[*]}{.metadata.name}", "without its {end}"),
        ("{.metadata.name}{end}", "without a {range}"),
        ("{.items[}", "is not a JSONPath expression"),
    ],
)
def test_a_broken_template_is_one_clear_error(template: str, message: str) -> None:
    with pytest.raises(InvalidManifest, match=message):
        jsonpath(template, PODS)


def test_custom_columns_take_one_path_per_header() -> None:
    headers, rows = custom_columns(
        "NAME:.metadata.name,IMAGES:.spec.containers[*].image,APP:.metadata.labels.app", PODS["items"]
    )
    assert headers == ["NAME", "IMAGES", "APP"]
    assert rows == [["web-1", "web:1,log:1", "web"], ["db-0", "db:1", "<none>"]]
    with pytest.raises(InvalidManifest, match="HEADER:EXPRESSION"):
        custom_columns("NAME", PODS["items"])
