"""``shoal port-forward``'s port pairs, as kubectl spells them: a table."""

from __future__ import annotations

import pytest

from shoal.cli.forward import port_pair
from shoal.errors import InvalidManifest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080:80", (8080, 80)),
        ("80", (80, 80)),
        (":80", (0, 80)),
        ("0:5432", (0, 5432)),
        ("65535:1", (65535, 1)),
    ],
)
def test_port_pairs(text: str, expected: tuple[int, int]) -> None:
    assert port_pair(text) == expected


@pytest.mark.parametrize("text", ["", "web", "80:", "1:2:3", "70000", "8080:0", "-1:80", "80:http"])
def test_what_is_not_a_port_pair_is_one_clear_error(text: str) -> None:
    with pytest.raises(InvalidManifest, match="is not a port pair"):
        port_pair(text)
