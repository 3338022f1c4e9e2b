"""Refusals remembered by value and told in one bounded line: what was refused (and logged) once is not worked out
again.

Why: the watch hands the scheduler a node or a pod again on every change of any of its fields (a lock, a status, a
label), and kube-scheduler asks about an unschedulable pod again after each backoff; a refusal of the same value stays
the same refusal. The memory holds at most ``limit`` entries and drops the least recently used one, so a sender that
changes the value on every event costs at most ``limit`` entries (each new value is worked out, and logged, once).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar
from urllib.parse import quote, unquote

V = TypeVar("V")

#: Entries a memo keeps by default: a refusal is a few hundred bytes, so a full memo stays well under a MiB.
DEFAULT_LIMIT = 1024


def one_line(text: str, limit: int) -> str:
    """The first line of ``text``, cut to ``limit`` characters (``...`` marks a cut): a reason or a log line that
    carries someone else's text stays one line of a known length."""
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def digest(value: object) -> bytes:
    """A short fingerprint of ``value`` (its repr): a key that holds no copy of a value of up to 256 KiB."""
    return hashlib.blake2b(repr(value).encode(errors="replace"), digest_size=16).digest()


class Memo(Generic[V]):
    """A thread-safe LRU map of at most ``limit`` entries (the watch threads and the HTTP handlers share one)."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"limit: {limit!r} must be at least 1")
        self.limit = limit
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> bool:
        """Remember ``value`` under ``key``; True when ``key`` was not held (the caller logs only then)."""
        with self._lock:
            new = key not in self._items
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
            return new

    def __len__(self) -> int:
        return len(self._items)


# -- keys of the rejected list ---------------------------------------------------------------------------------------
# ``ClusterState.rejected`` (the ``hami_scheduler_rejected_objects`` gauge) holds nodes and pods side by side. A key
# starts with its kind and a colon, which no namespace or name holds (RFC 1123), and each name in it is percent-encoded
# (a ``/`` in a name cannot reach the next part), so no pod's namespace/name reads as a node's key or another pod's:
# ``node:<name>``, ``pod:<namespace>/<name>``, and a part of either after one more ``/`` (``node:n1/families``).

NODE, POD = "node", "pod"


def _quoted(text: object) -> str:
    return quote(str(text), safe="")


def node_key(name: object, part: str = "") -> str:
    """The rejected-list key of node ``name`` (or of one ``part`` of it: ``families``, ``allocatable``)."""
    return f"{NODE}:{_quoted(name)}" + (f"/{part}" if part else "")


def pod_key(key: str, part: str = "") -> str:
    """The rejected-list key of the pod whose cache key is ``<namespace>/<name>`` (or of one ``part``: ``resources``).
    A namespace holds no ``/``: the first one ends it."""
    ns, _, name = str(key).partition("/")
    return f"{POD}:{_quoted(ns)}/{_quoted(name)}" + (f"/{part}" if part else "")


def rejected_object(key: str) -> tuple[str, str]:
    """(kind, the object's name: a node's name, or a pod's ``<namespace>/<name>``) of a rejected-list key."""
    kind, _, rest = key.partition(":")
    parts = rest.split("/")
    if kind == NODE:
        return NODE, unquote(parts[0])
    return kind, "/".join(unquote(p) for p in parts[:2])
