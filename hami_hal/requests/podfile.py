"""Read a pod manifest (YAML or JSON) with errors that name the file and line, never a traceback.

Bounded (hami_hal.bounded_yaml): a file over 1 MiB is refused before it is parsed, and so are alias
bombs, nesting deeper than 64 and values Python cannot build.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from .. import bounded_yaml
from ..errors import InputError


def _useful_mark(err: yaml.YAMLError, lines: list[str]):
    """The problem position, or where the broken construct began when the problem is at the end."""
    for mark in (getattr(err, "problem_mark", None), getattr(err, "context_mark", None)):
        if mark is not None and mark.line < len(lines) and lines[mark.line].strip():
            return mark
    return None


def load_pod_text(text: str, source: str = "<pod>") -> dict:
    """Parse one pod document; ``source`` names it in errors."""
    try:
        docs = bounded_yaml.load_all(text)
    except bounded_yaml.YamlBoundError as err:
        raise InputError(source, _head(text), f"is refused: the YAML {err}") from None
    except yaml.YAMLError as err:
        lines = text.splitlines()
        mark = _useful_mark(err, lines)
        where = f"{source} line {mark.line + 1}" if mark is not None else source
        shown = lines[mark.line].strip()[:80] if mark is not None else ""
        problem = getattr(err, "problem", None) or "parse error"
        raise InputError(where, shown, f"is not valid YAML ({problem})") from None
    if not docs:
        raise InputError(source, "", "is empty: expected one Pod document")
    if len(docs) > 1:
        raise InputError(source, f"{len(docs)} documents", "holds more than one document: expected one Pod")
    doc = docs[0]
    if not isinstance(doc, dict):
        raise InputError(source, _head(repr(doc)), "is not a mapping: expected a Pod document")
    return doc


def _head(text: str) -> str:
    first = text.lstrip()[:40]
    return first + ("..." if len(text.lstrip()) > 40 else "")


def load_pod_file(path: str | Path) -> dict:
    """The pod document in ``path`` (``-`` reads standard input)."""
    limit = bounded_yaml.MAX_BYTES
    if str(path) == "-":
        text = sys.stdin.read(limit + 1)
        if len(text) > limit:
            raise InputError("POD", "<stdin>", f"is larger than {limit} bytes: refused before parsing")
        return load_pod_text(text, "<stdin>")
    p = Path(path)
    if not p.is_file():
        raise InputError("POD", str(path), "does not exist or is not a file")
    try:
        text = bounded_yaml.read_text(p, limit)
    except bounded_yaml.YamlBoundError:
        raise InputError("POD", str(path), f"is larger than {limit} bytes: refused before parsing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError("POD", str(path), f"cannot be read ({err.__class__.__name__})") from None
    return load_pod_text(text, str(path))
