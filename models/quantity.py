"""Kubernetes resource quantities: ``250m`` or ``1.5`` CPUs, ``64Mi`` or ``1G`` of memory.

Shoal keeps CPU as integer millicores and memory as integer bytes, and writes them back
in Kubernetes' canonical spelling (``250m``, ``2``, ``64Mi``) so stored objects and
``-o yaml`` output read like the manifests people wrote.

Parsing follows Kubernetes' ``resource.Quantity``: a signed decimal number (``5``, ``1.5``,
``.5``, ``5.``, a leading ``+``), then a binary suffix (``Ki Mi Gi Ti Pi Ei``), a decimal
one (``n u m k M G T P E``) or a decimal exponent (``e3``, ``E-2``). ``2E`` is two exa,
``2E3`` two thousand. Values are rounded up (away from zero) to nano precision, as
Kubernetes does. Where Kubernetes silently caps a quantity above 2^63-1, Shoal refuses it,
naming the value, so nothing is stored that readers could not decode.
"""

from __future__ import annotations

import math
import re
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_CEILING,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)

INT64_MAX = 2**63 - 1
"""The largest count Shoal stores: millicores, bytes, or a quantity's base units."""

_QUANTITY = re.compile(
    r"([+-]?)([0-9]*)(?:\.([0-9]*))?"  # sign, whole digits, fraction digits
    r"(?:[eE]([+-]?)([0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?"  # exponent or suffix
)

_DECIMAL_SUFFIX = {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
"""Decimal suffixes as powers of ten."""

_BINARY_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}

_BINARY_UNITS = [("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)]

_BEYOND_DIGITS = 40
"""A value with more whole digits than this is far above INT64_MAX (19 digits) even before
multiplying; refused without computing it, so ``1e999999999`` costs nothing."""

_NANO = Decimal("1e-9")

_TRAPS = [InvalidOperation, Overflow, DivisionByZero]


def _exact(digits: int) -> Context:
    """A context in which arithmetic on numbers of ``digits`` digits is exact."""
    return Context(prec=digits + 100, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=_TRAPS)


_SMALL = _exact(0)
"""Exact for every value that passed the magnitude checks (at most ~70 digits)."""

_EXAMPLES = {
    "cpu": "'250m', '0.5' or '2'",
    "memory": "'64Mi', '1Gi' or '500M'",
    "target": "'500m', '64Mi' or '10'",
}

_MAXIMA = {
    "cpu": f"at most {INT64_MAX}m",
    "memory": f"at most {INT64_MAX} bytes, just under 8Ei",
    "target": f"at most {INT64_MAX}",
}


def _shown(text: object) -> str:
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _too_large(text: object, what: str) -> ValueError:
    return ValueError(f"invalid {what} quantity {_shown(text)}: more than Shoal can store ({_MAXIMA[what]})")


def _from_text(text: str, what: str) -> Decimal:
    match = _QUANTITY.fullmatch(text.strip())
    if not match or not (match.group(2) or match.group(3)):
        raise ValueError(f"invalid {what} quantity {_shown(text)} (expected e.g. {_EXAMPLES[what]})")
    sign, whole, fraction, exp_sign, exp_digits, suffix = match.groups()
    fraction = fraction or ""
    significant = (whole + fraction).lstrip("0")
    if not significant:
        return Decimal(0)
    if exp_digits is not None:
        exp_digits = exp_digits.lstrip("0")
        # Never int() an exponent of a million digits: anything this long is out of range.
        if len(exp_digits) > 18:
            if exp_sign != "-":
                raise _too_large(text, what)
            return -_NANO if sign == "-" else _NANO  # positive, tiny: rounds up to 1n
        exponent = int(exp_sign + (exp_digits or "0"))
    else:
        exponent = _DECIMAL_SUFFIX.get(suffix or "", 0)
    trimmed = significant.rstrip("0")
    scale = exponent - len(fraction) + (len(significant) - len(trimmed))
    whole_digits = len(trimmed) + scale  # the value lies in [10**(whole_digits-1), 10**whole_digits)
    if whole_digits > _BEYOND_DIGITS:
        raise _too_large(text, what)
    if whole_digits < -_BEYOND_DIGITS:
        return -_NANO if sign == "-" else _NANO  # far below a nano, even times 2**60
    context = _exact(len(trimmed))
    value = context.multiply(
        Decimal(sign + trimmed).scaleb(scale, context), Decimal(_BINARY_SUFFIX.get(suffix or "", 1))
    )
    return _to_nano(value, context)


def _to_nano(value: Decimal, context: Context) -> Decimal:
    """Kubernetes keeps quantities to nano precision, rounding up (away from zero)."""
    if value.as_tuple().exponent < -9:  # type: ignore[operator]
        return value.quantize(_NANO, rounding=ROUND_UP, context=context)
    return value


def _parse(text: str | int | float, what: str) -> Decimal:
    """The quantity's exact value in base units (CPUs, bytes), bounded and nano-rounded."""
    if isinstance(text, bool):
        raise ValueError(f"invalid {what} quantity {text!r}")
    if isinstance(text, int):
        if text.bit_length() > 64:
            raise _too_large(text, what)
        value = Decimal(text)
    elif isinstance(text, float):
        if not math.isfinite(text):
            raise ValueError(f"invalid {what} quantity {text!r}: must be a finite number")
        value = _to_nano(Decimal(repr(text)), _SMALL)  # repr: 0.1 is 0.1, not its binary value
        if value.adjusted() >= _BEYOND_DIGITS:
            raise _too_large(text, what)
    elif isinstance(text, str):
        value = _from_text(text, what)
    else:
        raise ValueError(f"invalid {what} quantity {_shown(text)}")
    if abs(value) > INT64_MAX:
        raise _too_large(text, what)
    return value


def _resource(text: str | int | float, what: str, unit: int) -> int:
    """A resource quantity as a whole count of ``1/unit`` base units, rounded up."""
    value = _parse(text, what)
    if value < 0:
        raise ValueError(f"invalid {what} quantity {_shown(text)}: must not be negative")
    count = int(
        _SMALL.multiply(value, Decimal(unit)).to_integral_value(rounding=ROUND_CEILING, context=_SMALL)
    )
    if count > INT64_MAX:
        raise _too_large(text, what)
    return count


def parse_quantity(text: str | int | float) -> float:
    """Any Kubernetes quantity in base units: ``500m`` is 0.5, ``64Mi`` is 67108864."""
    return float(_parse(text, "target"))


def parse_cpu(text: str | int | float) -> int:
    """CPU quantity to millicores, rounded up as Kubernetes does (``0.0001`` is ``1m``)."""
    return _resource(text, "cpu", 1000)


def parse_memory(text: str | int | float) -> int:
    """Memory quantity to bytes, rounded up."""
    return _resource(text, "memory", 1)


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
