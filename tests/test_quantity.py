"""Kubernetes quantities parse to millicores and bytes, and print back canonically."""

import time

import pytest

from shoal.models.quantity import (
    INT64_MAX,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_memory,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("250m", 250),
        ("1", 1000),
        ("0.5", 500),
        ("2", 2000),
        (1, 1000),
        (0.25, 250),
        ("100u", 1),
        ("1e-3", 1),
        # Kubernetes' grammar: a leading +, bare fractions, decimal exponents.
        ("+1", 1000),
        (".5", 500),
        ("5.", 5000),
        ("1e3", 1_000_000),
        ("1.5E2", 150_000),
        ("2E3", 2_000_000),
        ("1E+0", 1000),
        ("1Ki", 1_024_000),
        # Rounded up, never to zero: anything positive is at least 1m.
        ("1n", 1),
        ("0.0001", 1),
        ("1e-999999999", 1),
        ("0", 0),
        ("-0", 0),
        # The largest CPU Shoal stores, to the millicore.
        ("9.223372036854775807e15", INT64_MAX),
        ("9223372036854775807m", INT64_MAX),
    ],
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
        # Exa: `E` alone is the suffix, `E` with digits an exponent.
        ("1Ei", 2**60),
        ("2E", 2 * 10**18),
        ("7Ei", 7 * 2**60),
        ("2E3", 2000),
        ("1e3", 1000),
        ("+1Mi", 2**20),
        ("1.5Ki", 1536),
        # Fractions of a byte round up.
        ("1m", 1),
        ("0.5", 1),
        ("1.000000001", 2),
        (str(INT64_MAX), INT64_MAX),
        (INT64_MAX, INT64_MAX),
    ],
)
def test_memory(text: str | int, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("64Mi", 64.0 * 2**20), ("10", 10.0), ("1e-999999999", 1e-9), ("-1", -1.0)],
)
def test_quantities_in_base_units(text: str, value: float) -> None:
    # Negative quantities are quantities; rules such as "a target must be > 0" refuse them.
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        "",
        "-1",
        "1x",
        "m",
        "1.2.3",
        True,
        None,
        [],
        "10 Mi",
        "2e",
        "e3",
        ".",
        "1e",
        "1K",
        "1E+",
        "1e1.5",
        "++1",
        "Ki",
        "1Ki5",
        float("nan"),
        float("inf"),
    ],
)
def test_invalid_quantities_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_cpu(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid"):
        parse_memory(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["-1", "-1e3", "-0.5Ki", -1, -0.5, "-1e-999999999"])
def test_negative_resources_are_refused(bad: str | int | float) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_cpu(bad)
    with pytest.raises(ValueError, match="must not be negative"):
        parse_memory(bad)


@pytest.mark.parametrize(
    ("parse", "text", "shown"),
    [
        (parse_cpu, "1e999999999", "'1e999999999'"),
        (parse_cpu, "1Ei", "'1Ei'"),
        (parse_cpu, "9223372036854776", "'9223372036854776'"),  # fits as CPUs, not as millicores
        (parse_cpu, 2**64, "18446744073709551616"),
        (parse_cpu, 1e99, "1e+99"),
        (parse_memory, "1e99", "'1e99'"),
        (parse_memory, "8Ei", "'8Ei'"),
        (parse_memory, str(INT64_MAX + 1), f"'{INT64_MAX + 1}'"),
        (parse_memory, "1e999999999", "'1e999999999'"),
        (parse_memory, "1e" + "9" * 100_000, "'1e9999999999999999"),
        (parse_memory, "1" * 100_000, "'1111111111111111"),
        (parse_quantity, "1e99", "'1e99'"),
        (parse_quantity, "-1e99", "'-1e99'"),
    ],
)
def test_quantities_beyond_64_bits_are_refused_quickly_naming_the_value(
    parse: object, text: str | int | float, shown: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError, match="more than Shoal can store") as caught:
        parse(text)  # type: ignore[operator]
    assert time.perf_counter() - started < 0.5
    assert shown in str(caught.value)
    assert "\n" not in str(caught.value)


def test_tiny_and_long_quantities_cost_little() -> None:
    started = time.perf_counter()
    assert parse_memory("0." + "0" * 1_000_000 + "1") == 1
    assert parse_cpu("0." + "1" * 1_000_000) == 112  # 0.111... CPUs, rounded up
    assert parse_memory("1e-" + "9" * 1_000_000) == 1
    assert time.perf_counter() - started < 1


def test_canonical_forms_round_trip() -> None:
    assert format_cpu(250) == "250m"
    assert format_cpu(2000) == "2"
    assert format_memory(64 * 2**20) == "64Mi"
    assert format_memory(1000) == "1000"
    for text in ("250m", "3", "1500m", f"{INT64_MAX}m"):
        assert format_cpu(parse_cpu(text)) == text
    for text in ("64Mi", "2Gi", "12345", "1Ei", "7Ei", str(INT64_MAX)):
        assert format_memory(parse_memory(text)) == text
    for size in (2 * 10**18, 10**18 + 1):
        assert parse_memory(format_memory(size)) == size
