"""Kubernetes resource quantities: ``250m`` or ``1.5`` CPUs, ``64Mi`` or ``1G`` of memory.

Shoal keeps CPU as integer millicores and memory as integer bytes, and writes them back
in Kubernetes' canonical spelling (``250m``, ``2``, ``64Mi``) so stored objects and
``-o yaml`` output read like the manifests people wrote.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(r"^([+]?[0-9.]+)([eE][-+]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")

_SUFFIX: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}

_BINARY_UNITS = [("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)]


def _parse(text: str | int | float, what: str) -> Decimal:
    if isinstance(text, bool):
        raise ValueError(f"invalid {what} quantity {text!r}")
    if isinstance(text, int | float):
        if text < 0 or (isinstance(text, float) and not math.isfinite(text)):
            raise ValueError(f"invalid {what} quantity {text!r}: must be a non-negative number")
        return Decimal(str(text))
    if not isinstance(text, str):
        raise ValueError(f"invalid {what} quantity {text!r}")
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(f"invalid {what} quantity {text!r} (expected e.g. {_EXAMPLES[what]})")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"invalid {what} quantity {text!r}") from None
    if suffix[:1] in ("e", "E"):
        return value * (Decimal(10) ** int(suffix[1:]))
    return value * _SUFFIX[suffix]


_EXAMPLES = {
    "cpu": "'250m', '0.5' or '2'",
    "memory": "'64Mi', '1Gi' or '500M'",
    "target": "'500m', '64Mi' or '10'",
}


def parse_quantity(text: str | int | float) -> float:
    """Any Kubernetes quantity in base units: ``500m`` is 0.5, ``64Mi`` is 67108864."""
    return float(_parse(text, "target"))


def parse_cpu(text: str | int | float) -> int:
    """CPU quantity to millicores, rounded up as Kubernetes does (``0.0001`` is ``1m``)."""
    return math.ceil(_parse(text, "cpu") * 1000)


def parse_memory(text: str | int | float) -> int:
    """Memory quantity to bytes, rounded up."""
    return math.ceil(_parse(text, "memory"))


def format_cpu(millicores: int) -> str:
    """Millicores in canonical form: whole CPUs when exact, else ``NNNm``."""
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def format_memory(size: int) -> str:
    """Bytes in the largest binary unit that divides them exactly (``64Mi``), else plain bytes."""
    for suffix, unit in _BINARY_UNITS:
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def human_memory(size: int) -> str:
    """Bytes rounded for tables (``1.5Gi``); never used for stored values."""
    for suffix, unit in _BINARY_UNITS:
        if size >= unit:
            value = size / unit
            return f"{value:.0f}{suffix}" if value >= 10 or value.is_integer() else f"{value:.1f}{suffix}"
    return f"{size}"
