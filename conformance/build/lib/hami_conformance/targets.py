"""Judge a measurement against its own target string (``<= 2 %``, ``< 5 µs``, ``>= 0.9``)."""

from __future__ import annotations

import operator
import re

from hami_hal.models import Measurement

_OPS = {"<=": operator.le, "≤": operator.le, "<": operator.lt, ">=": operator.ge, "≥": operator.ge,
        ">": operator.gt, "==": operator.eq, "=": operator.eq}
_TARGET = re.compile(r"^\s*(<=|≤|<|>=|≥|>|==|=)\s*([-+]?\d+(?:\.\d+)?)")


def meets_target(m: Measurement) -> bool | None:
    """True/False when the target can be read, None when there is none or it is free text."""
    if not m.target:
        return None
    found = _TARGET.match(m.target)
    if not found:
        return None
    op, bound = found.groups()
    return bool(_OPS[op](m.value, float(bound)))


def describe(m: Measurement) -> str:
    """``memory overshoot = 0 MiB (target <= 0 MiB)`` for evidence lines and reports."""
    text = f"{m.name} = {m.value:g} {m.unit}".rstrip()
    if m.target:
        text += f" (target {m.target})"
    return text
