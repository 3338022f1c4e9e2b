"""Reading a document another version of hami-hal wrote: the one rule for version skew.

Why: the node agent and the scheduler are upgraded one after the other (a rolling DaemonSet upgrade takes
minutes to hours), so a reader meets documents written by the version before or after its own. The models
forbid unknown fields (a typo in a profile is caught), which made an older scheduler reject every node whose
newer agent had added a field: the cluster stopped placing pods during an upgrade. A document that crosses
versions is therefore read here, and only here:

- its size is bounded before anything is parsed;
- ``format_version`` (absent = 1) newer than the reader's is refused with one line naming the subject and
  the version: such a document changed meaning, not only grew;
- fields the model does not know, at any depth, are removed *before* validation, so they can neither override
  a known field nor reach the object (no alias, case or private-name trick: only exact field names and aliases
  survive), and are reported once per subject in one bounded line;
- every known field is then validated by the model exactly as before.
"""

from __future__ import annotations

import json
import logging
import threading
import types
import typing
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import InputError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

#: The key every cross-version document carries (written by its writer; absent = version 1).
VERSION_KEY = "format_version"
#: At most this many unknown field names in one line (the count says how many there were).
MAX_NAMES_SHOWN = 8
#: A field name longer than this is cut in the line (it is attacker-written text).
MAX_NAME_CHARS = 64
#: Subjects remembered for the once-per-subject line; past it the memory starts over (lines repeat, none lost).
MAX_SUBJECTS = 4096


@dataclass(frozen=True, slots=True)
class SkewRead(Generic[T]):
    """A document read across versions: the model, and the unknown fields that were dropped from it."""

    doc: T
    #: Sorted dotted paths of the dropped fields, list positions folded to ``[]`` (``devices[].partition.x``).
    unknown: tuple[str, ...]


def read_document(model: type[M], raw: object, *, where: str, subject: str, current: int,
                  max_chars: int) -> SkewRead[M]:
    """Parse ``raw`` (JSON text) as ``model`` under the skew rule; InputError names ``where`` on any refusal.

    ``subject`` names whose document it is (``node gpu-1``) in the version refusal and the unknown-field line;
    ``current`` is the newest ``format_version`` this reader understands.
    """
    if not isinstance(raw, str):
        raise InputError(where, str(raw)[:80], "must be a string")
    if len(raw) > max_chars:
        raise InputError(where, raw[:40] + "...", f"is longer than {max_chars} characters")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise InputError(where, raw[:80], f"is not a {model.__name__}: not JSON") from None
    if not isinstance(data, dict):
        raise InputError(where, raw[:80], f"is not a {model.__name__}: not a JSON object")
    check_version(data, where=where, subject=subject, current=current)
    found: set[str] = set()
    _prune(model, data, "", found)
    try:
        doc = model.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        first = " ".join(str(exc).splitlines()[0:2])[:200]  # the count and the first field's path, one line
        raise InputError(where, raw[:80], f"is not a {model.__name__}: {first}") from None
    unknown = tuple(sorted(found))
    if unknown:
        UNKNOWN_FIELDS.note(subject, where, unknown)
    return SkewRead(doc, unknown)


def check_version(data: dict, *, where: str, subject: str, current: int) -> int:
    """The document's ``format_version``; one line naming ``subject`` and the version when it is newer."""
    version = data.get(VERSION_KEY, 1)
    if type(version) is not int or version < 1:
        raise InputError(f"{where}.{VERSION_KEY}", str(version)[:40], "must be a positive integer")
    if version > current:
        raise InputError(f"{subject}: {where}.{VERSION_KEY}", version if version < 10**20 else f"{str(version)[:20]}...",
                         f"is newer than this version reads (at most {current}); upgrade the reader first "
                         "(docs/install.md, 'Upgrading')")
    return version


def skew_schema(schema: dict, current: int) -> dict:
    """The published JSON Schema of a cross-version document under this module's rule, from its model's schema:
    an object may carry properties it does not list (a reader ignores them: the models' ``additionalProperties:
    false`` is dropped at every depth), ``format_version`` is at most ``current`` (a newer one is refused), and every
    listed property keeps all its checks (types, ranges, enums, required). Why: the schema is the contract a
    validator outside this code applies; strict, it refused the newer agent's inventory the scheduler reads."""

    def open_objects(node: object) -> object:
        if isinstance(node, dict):
            return {k: open_objects(v) for k, v in node.items()
                    if not (k == "additionalProperties" and v is False)}
        if isinstance(node, list):
            return [open_objects(v) for v in node]
        return node

    out = open_objects(schema)
    version = out.get("properties", {}).get(VERSION_KEY)
    if not isinstance(version, dict):
        raise ValueError(f"a cross-version document needs a {VERSION_KEY} property")
    version["maximum"] = current
    return out


#: How to walk a value: None (a leaf: kept as it is), ("model", cls), ("list", shape) or ("dict", shape).
Shape = tuple[str, Any] | None
_PLANS: dict[type[BaseModel], dict[str, Shape]] = {}


def _plan(model: type[BaseModel]) -> dict[str, Shape]:
    """Every key ``model`` knows (field names and aliases) and how to walk its value; computed once per model."""
    plan = _PLANS.get(model)
    if plan is None:
        plan = {}
        for name, info in model.model_fields.items():
            plan[name] = _shape(info.annotation)
            if info.alias:
                plan[info.alias] = plan[name]
        _PLANS[model] = plan
    return plan


def _shape(annotation: Any) -> Shape:
    """How to follow ``annotation`` (a model, ``X | None``, ``list[X]``, ``dict[str, X]``); None when no model
    lies under it (a free-form dict such as ``attributes`` is kept whole)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("model", annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [s for s in (_shape(a) for a in args) if s is not None]
        return inner[0] if len(inner) == 1 else None  # a union of several models is not guessed at
    if origin is list and args:
        inner = _shape(args[0])
        return ("list", inner) if inner else None
    if origin is dict and len(args) == 2:
        inner = _shape(args[1])
        return ("dict", inner) if inner else None
    return None


def _prune(model: type[BaseModel], data: dict, path: str, found: set[str]) -> None:
    """Drop from ``data`` (in place) every key ``model`` does not know, recursing into known nested models."""
    plan = _plan(model)
    for key in list(data):
        if not isinstance(key, str) or key not in plan:
            found.add(path + _shown(key))
            del data[key]
        elif plan[key] is not None:
            _walk(plan[key], data[key], f"{path}{key}", found)


def _walk(shape: tuple[str, Any], value: Any, path: str, found: set[str]) -> None:
    kind, inner = shape
    if kind == "model":
        if isinstance(value, dict):
            _prune(inner, value, path + ".", found)
    elif kind == "list" and isinstance(value, list):
        for item in value:
            _walk(inner, item, path + "[]", found)
    elif kind == "dict" and isinstance(value, dict):
        for item in value.values():
            _walk(inner, item, path + "{}", found)


def _shown(key: object) -> str:
    text = ascii(key)[1:-1] if isinstance(key, str) else ascii(key)
    return text if len(text) <= MAX_NAME_CHARS else text[:MAX_NAME_CHARS] + "..."


class UnknownFieldLog:
    """One line per subject when the unknown fields it sends change (the names shown or their count), and how many
    documents had any."""

    def __init__(self) -> None:
        #: Per subject, what its last line showed: the names shown and how many there were (bounded, whatever the
        #: documents hold: a 256 KiB document can name thousands of fields, and a subject is remembered long).
        self._seen: dict[str, tuple[tuple[str, ...], int]] = {}
        self._lock = threading.Lock()
        #: Documents read with at least one unknown field (all subjects, since start).
        self.documents = 0

    def note(self, subject: str, where: str, unknown: tuple[str, ...]) -> bool:
        """Count the document; log the line unless ``subject`` sent these same fields last time. True if logged."""
        with self._lock:
            self.documents += 1
            memo, seen = f"{subject}\0{where}", (unknown[:MAX_NAMES_SHOWN], len(unknown))
            if self._seen.get(memo) == seen:
                return False
            if len(self._seen) >= MAX_SUBJECTS:
                self._seen.clear()
            self._seen[memo] = seen
        shown = ", ".join(unknown[:MAX_NAMES_SHOWN])
        more = f" (+{len(unknown) - MAX_NAMES_SHOWN} more)" if len(unknown) > MAX_NAMES_SHOWN else ""
        log.warning("%s: %s has %d field(s) this version does not know, ignored (written by a newer version?): "
                    "%s%s", subject, where, len(unknown), shown, more)
        return True


#: The process's one log of unknown fields.
UNKNOWN_FIELDS = UnknownFieldLog()

__all__ = ["MAX_NAMES_SHOWN", "UNKNOWN_FIELDS", "VERSION_KEY", "SkewRead", "UnknownFieldLog", "check_version",
           "read_document", "skew_schema"]
