"""Strict field readers shared by the decoders: one clear line naming field and value, never a cast
that silently accepts ``true`` as 1, ``1e9`` as an int or a 40-digit number."""

from __future__ import annotations

from hami_hal.digits import is_digits

from ..errors import InputError
from .limits import MAX_STRING, MAX_VALUE_CHARS


def value_text(key: str, value: object) -> str:
    """The annotation value as a bounded string."""
    if not isinstance(value, str):
        raise InputError(key, value, "must be a string")
    if len(value) > MAX_VALUE_CHARS:
        raise InputError(key, value[:40] + "...", f"is longer than {MAX_VALUE_CHARS} characters")
    return value


def int_field(where: str, value: object, lo: int, hi: int) -> int:
    """An integer in ``lo..hi`` from JSON (int) or CSV (decimal digits)."""
    if isinstance(value, bool):
        raise InputError(where, value, "must be an integer, not a boolean")
    if isinstance(value, int):
        out = value
    elif isinstance(value, str) and is_digits(value.strip().lstrip("-")) and len(value.strip()) <= 20:
        out = int(value.strip())
    else:
        raise InputError(where, value, "must be an integer")
    if not lo <= out <= hi:
        raise InputError(where, value, f"must be between {lo} and {hi}")
    return out


def str_field(where: str, value: object, *, required: bool = True, forbid: str = "") -> str:
    """A short string without the codec's separator characters."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InputError(where, value, "must be a string")
    if required and not value.strip():
        raise InputError(where, value, "is required")
    if len(value) > MAX_STRING:
        raise InputError(where, value[:40] + "...", f"is longer than {MAX_STRING} characters")
    bad = next((c for c in value if c in forbid or ord(c) < 32), None)
    if bad is not None:
        raise InputError(where, value, f"contains the character {bad!r}")
    return value
