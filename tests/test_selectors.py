"""Label selectors as kubectl reads them."""

from __future__ import annotations

import pytest

from shoal.errors import InvalidManifest
from shoal.label_selectors import parse_selector

WEB = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", WEB, True),
        ("app==web", WEB, True),
        ("app=db", WEB, False),
        ("app!=other", WEB, True),
        ("app!=web", WEB, False),
        ("missing!=x", WEB, True),  # as in Kubernetes: no label, not equal
        ("app in (web, db)", WEB, True),
        ("app in (db)", WEB, False),
        ("env notin (dev,test)", WEB, True),
        ("env notin (prod)", WEB, False),
        ("tier", WEB, True),
        ("canary", WEB, False),
        ("!canary", WEB, True),
        ("!tier", WEB, False),
        ("app=web,tier=front,env in (prod,staging),!canary", WEB, True),
        ("app=web,tier=back", WEB, False),
        ("", WEB, True),
        ("app.kubernetes.io/name=web", {"app.kubernetes.io/name": "web"}, True),
    ],
)
def test_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(selector).matches(labels) is expected


@pytest.mark.parametrize(
    ("selector", "problem"),
    [("app=web,", "empty requirement"), ("=web", "is not a label key"), ("bad key=1", "is not a label key")],
)
def test_bad_selectors_say_what_is_wrong(selector: str, problem: str) -> None:
    with pytest.raises(InvalidManifest, match=problem):
        parse_selector(selector)
