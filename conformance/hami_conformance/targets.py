"""Judge a measurement against a target string (``<= 2 %``, ``< 5 µs``, ``>= 0.9``).

The targets that decide a level come from the behaviour catalogue (``Behaviour.targets``); the probe
check writes them onto the measurements before judging, so ``meets_target`` reads the catalogue's.
"""

from __future__ import annotations

import operator
import re

from hami_hal.models import Measurement

_OPS = {"<=": operator.le, "≤": operator.le, "<": operator.lt, ">=": operator.ge, "≥": operator.ge,
        ">": operator.gt, "==": operator.eq, "=": operator.eq}
_TARGET = re.compile(r"^\s*(<=|≤|<|>=|≥|>|==|=)\s*([-+]?\d+(?:\.\d+)?)")


def parse_target(target: str | None) -> tuple[str, float] | None:
    """``("<=", 5.0)`` from ``"<= 5 %"``; None when there is none or it is free text."""
    found = _TARGET.match(target) if target else None
    if not found:
        return None
    return found.group(1), float(found.group(2))


def meets_target(m: Measurement) -> bool | None:
    """True/False when the target can be read, None when there is none or it is free text."""
    parsed = parse_target(m.target)
    if parsed is None:
        return None
    op, bound = parsed
    return bool(_OPS[op](m.value, bound))


def describe(m: Measurement) -> str:
    """``memory overshoot = 0 MiB (target <= 0 MiB)`` for evidence lines and reports."""
    text = f"{m.name} = {m.value:g} {m.unit}".rstrip()
    if m.target:
        text += f" (target {m.target})"
    return text
