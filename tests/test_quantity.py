"""Kubernetes quantities parse to millicores and bytes, and print back canonically."""

import pytest

from shoal.models.quantity import format_cpu, format_memory, parse_cpu, parse_memory


@pytest.mark.parametrize(
    ("text", "millis"),
    [("250m", 250), ("1", 1000), ("0.5", 500), ("2", 2000), (1, 1000), (0.25, 250), ("100u", 1), ("1e-3", 1)],
)
def test_cpu(text: str | int | float, millis: int) -> None:
    assert parse_cpu(text) == millis


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64Mi", 64 * 2**20),
        ("1Gi", 2**30),
        ("500M", 500 * 10**6),
        ("128", 128),
        ("1.5Gi", 3 * 2**29),
        ("1k", 1000),
    ],
)
def test_memory(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("bad", ["abc", "", "-1", "1x", "m", "1.2.3", True, None, [], "10 Mi"])
def test_invalid_quantities_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_cpu(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid"):
        parse_memory(bad)  # type: ignore[arg-type]


def test_canonical_forms_round_trip() -> None:
    assert format_cpu(250) == "250m"
    assert format_cpu(2000) == "2"
    assert format_memory(64 * 2**20) == "64Mi"
    assert format_memory(1000) == "1000"
    for text in ("250m", "3", "1500m"):
        assert format_cpu(parse_cpu(text)) == text
    for text in ("64Mi", "2Gi", "12345"):
        assert format_memory(parse_memory(text)) == text
