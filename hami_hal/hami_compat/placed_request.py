"""``hami-hal.io/placed-request``: the pod's request annotations as the scheduler placed it.

The scheduler checks a pod's request (the ``use-*``/``nouse-*`` selectors, the policies, the vendors' pod rules)
at Filter and writes the devices it chose; the node agent hands those devices out at Allocate, later. A request
annotation changed in between would have the agent serve a request the scheduler never checked, so Filter also
writes this record and the agent compares the pod's request annotations with it before allocating anything. The
chart's admission policy keeps both the request annotations of a placed pod and this record to the scheduler and
the node agents (docs/security.md); the record is the node's own check where that policy is off.

Value: a JSON object ``{"<annotation key>": "<first 16 hex digits of sha256(value)>"}`` of the request annotations
the pod had (absent keys are absent), sorted, e.g. ``{"acme.example/use-uuid":"3b5d5c3712955042"}``. Digests,
not values, so the record stays small however long a selector is. Pods placed by HAMi's scheduler carry none and
are allocated as HAMi does.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable

from ..errors import InputError
from .keys import PLACED_REQUEST

#: The longest record the agent reads: far above every request key of every vendor with a digest each.
MAX_RECORD = 16384
MAX_ENTRIES = 256
_DIGEST = re.compile(r"^[0-9a-f]{16}$")
#: An annotation key (Kubernetes qualified name).
_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
FIELD = f'metadata.annotations["{PLACED_REQUEST}"]'


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def encode_placed(annotations: dict[str, str], keys: Iterable[str]) -> str:
    """The record of ``annotations`` over the request ``keys`` (what Filter writes)."""
    return json.dumps({k: digest(annotations[k]) for k in sorted(set(keys)) if isinstance(annotations.get(k), str)},
                      separators=(",", ":"))


def decode_placed(value: object) -> dict[str, str]:
    """The record's ``{key: digest}``; a malformed record is an InputError naming the annotation."""
    if not isinstance(value, str) or len(value) > MAX_RECORD:
        raise InputError(FIELD, str(value)[:80], f"must be a JSON object of at most {MAX_RECORD} characters")
    try:
        record = json.loads(value)
    except ValueError:
        raise InputError(FIELD, value[:80], "is not JSON") from None
    if not isinstance(record, dict) or len(record) > MAX_ENTRIES:
        raise InputError(FIELD, value[:80], f"must be a JSON object of at most {MAX_ENTRIES} keys")
    for k, d in record.items():
        if not _KEY.match(k) or not isinstance(d, str) or not _DIGEST.match(d):
            raise InputError(FIELD, value[:80], f"entry {k[:80]!r} must map an annotation key to 16 hex digits")
    return record


def request_changes(record: dict[str, str], annotations: dict[str, str], keys: Iterable[str]) -> list[str]:
    """``<field> <what happened>`` for each of ``keys`` whose annotation differs from the record, in key order."""
    out = []
    for k in sorted(set(keys)):
        now = annotations.get(k)
        was = record.get(k)
        where = f'metadata.annotations["{k}"]'
        if was is None and isinstance(now, str):
            out.append(f"{where} was added")
        elif was is not None and not isinstance(now, str):
            out.append(f"{where} was removed")
        elif was is not None and digest(now) != was:
            out.append(f"{where} was changed to {now[:80]!r}")
    return out
