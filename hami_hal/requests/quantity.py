"""Kubernetes resource quantities (``10``, ``1k``, ``2Gi``, ``5e3``) as exact integers.

Extended resources such as ``acme.example/xpu-mem`` must be whole numbers, so a quantity that is not an
integer after its suffix is applied (``500m``, ``1.5``) is refused rather than rounded.

Bounds, checked before any arithmetic so a 9-byte ``1e999999`` is refused in microseconds instead of
building a million-digit integer: ASCII digits only, at most :data:`MAX_TEXT` characters,
:data:`MAX_DIGITS` digits, an exponent within ±:data:`MAX_EXPONENT`, and a result within int64
(the API server's own limit for a quantity's value).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from hami_hal.digits import is_digits

from ..errors import InputError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
            "P": Decimal(10**15), "E": Decimal(10**18)}
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?",
                       re.ASCII)

#: Longest quantity text accepted (Kubernetes' own quantities are far shorter).
MAX_TEXT = 64
#: Most digits in the number part (int64 has 19).
MAX_DIGITS = 40
#: Largest absolute decimal exponent (``1e18`` is the biggest useful one; ``E`` = 10^18).
MAX_EXPONENT = 30
#: Largest magnitude accepted: int64, as the API server stores quantities.
INT64_MAX = 2**63 - 1

#: HAMi stores device amounts as int32.
INT32_MAX = 2**31 - 1


def parse_quantity(value: object, field: str) -> int:
    """The integer a quantity denotes; raises InputError naming ``field`` when it is not one."""
    if isinstance(value, bool) or value is None:
        raise InputError(field, value, "is not a number")
    if isinstance(value, int):
        return _in_range(value, value, field)
    if isinstance(value, float):
        if not value.is_integer():
            raise InputError(field, value, "must be a whole number")
        return _in_range(int(value), value, field)
    if not isinstance(value, str):
        raise InputError(field, value, "is not a number")
    if len(value) > MAX_TEXT:
        raise InputError(field, value[:MAX_TEXT] + "...", f"is longer than {MAX_TEXT} characters")
    match = _QUANTITY.fullmatch(value.strip())
    if not match:
        raise InputError(field, value, "is not a valid Kubernetes quantity")
    number, suffix = match.group(1), match.group(2) or ""
    if sum(is_digits(ch) for ch in number) > MAX_DIGITS:
        raise InputError(field, value, f"has more than {MAX_DIGITS} digits")
    if suffix not in _BINARY and suffix not in _DECIMAL and abs(int(suffix[1:])) > MAX_EXPONENT:
        raise InputError(field, value, f"has an exponent beyond ±{MAX_EXPONENT}")
    try:
        amount = Decimal(number)
        if suffix in _BINARY:
            amount *= _BINARY[suffix]
        elif suffix in _DECIMAL:
            amount *= _DECIMAL[suffix]
        else:
            amount = amount.scaleb(int(suffix[1:]))
    except (InvalidOperation, ValueError):
        raise InputError(field, value, "is not a valid Kubernetes quantity") from None
    if amount != amount.to_integral_value():
        raise InputError(field, value, "must be a whole number")
    return _in_range(int(amount), value, field)


def _in_range(number: int, value: object, field: str) -> int:
    if abs(number) > INT64_MAX:
        raise InputError(field, value, "is out of range (beyond int64)")
    return number
