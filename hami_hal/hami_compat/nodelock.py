"""The node lock annotation (hami-compat.md §4.6): ``<RFC3339>,<namespace>,<pod>``; legacy = time only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import InputError
from .checks import str_field, value_text


@dataclass(frozen=True, slots=True)
class NodeLock:
    at: datetime
    namespace: str | None = None
    name: str | None = None

    def held_by(self, namespace: str, name: str) -> bool:
        """HAMi releases only on a matching ``,<ns>,<name>`` suffix (#1433)."""
        return self.namespace == namespace and self.name == name

    def expired(self, now: datetime, timeout: timedelta) -> bool:
        return now - self.at > timeout


def encode_lock(at: datetime, namespace: str, name: str) -> str:
    str_field("lock namespace", namespace, forbid=",")
    str_field("lock pod name", name, forbid=",")
    return f"{at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')},{namespace},{name}"


def decode_lock(value: object, key: str = "hami.io/mutex.lock") -> NodeLock:
    text = value_text(key, value).strip()
    parts = text.split(",")
    if len(parts) not in (1, 3):
        raise InputError(key, text[:80], "must be <RFC3339>,<namespace>,<pod> or a time alone")
    try:
        at = datetime.fromisoformat(parts[0].replace("Z", "+00:00"))
    except ValueError:
        raise InputError(key, text[:80], "does not start with an RFC3339 time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if len(parts) == 1:
        return NodeLock(at)
    return NodeLock(at, str_field(f"{key} namespace", parts[1]), str_field(f"{key} pod", parts[2]))
