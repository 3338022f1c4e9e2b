"""Kubernetes resource quantities (``10``, ``1k``, ``2Gi``, ``5e3``) as exact integers.

Extended resources such as ``acme.example/xpu-mem`` must be whole numbers, so a quantity that is not an
integer after its suffix is applied (``500m``, ``1.5``) is refused rather than rounded.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ..errors import InputError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
            "P": Decimal(10**15), "E": Decimal(10**18)}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")

#: HAMi stores device amounts as int32.
INT32_MAX = 2**31 - 1


def parse_quantity(value: object, field: str) -> int:
    """The integer a quantity denotes; raises InputError naming ``field`` when it is not one."""
    if isinstance(value, bool) or value is None:
        raise InputError(field, value, "is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise InputError(field, value, "must be a whole number")
        return int(value)
    if not isinstance(value, str):
        raise InputError(field, value, "is not a number")
    match = _QUANTITY.match(value.strip())
    if not match:
        raise InputError(field, value, "is not a valid Kubernetes quantity")
    number, suffix = match.group(1), match.group(2) or ""
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
    return int(amount)
