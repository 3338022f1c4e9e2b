"""The node handshake annotation (hami-compat.md §4.5): ``Requesting_<ts>``, ``Deleted_<ts>``, ``Reported <ts>``.

The scheduler writes ``Requesting_``; a device plugin answers by re-publishing the register annotation.
Timestamps are ``YYYY-MM-DD HH:MM:SS`` in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import InputError
from .checks import value_text

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_PREFIXES = {"requesting": "Requesting_", "deleted": "Deleted_", "reported": "Reported "}


@dataclass(frozen=True, slots=True)
class Handshake:
    state: str  # requesting | deleted | reported
    at: datetime


def encode_handshake(state: str, at: datetime) -> str:
    if state not in _PREFIXES:
        raise InputError("handshake state", state, f"must be one of {', '.join(_PREFIXES)}")
    return _PREFIXES[state] + at.astimezone(UTC).strftime(TIME_FORMAT)


def decode_handshake(value: object, key: str = "handshake") -> Handshake:
    text = value_text(key, value).strip()
    for state, prefix in _PREFIXES.items():
        if text.startswith(prefix):
            stamp = text[len(prefix):len(prefix) + 19]
            try:
                at = datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC)
            except ValueError:
                raise InputError(key, text[:60], f"has no {TIME_FORMAT} time after {prefix!r}") from None
            return Handshake(state, at)
    raise InputError(key, text[:60], "must start with Requesting_, Deleted_ or 'Reported '")
