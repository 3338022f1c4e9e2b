"""Read a pod manifest (YAML or JSON) with errors that name the file and line, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from ..errors import InputError


def load_pod_text(text: str, source: str = "<pod>") -> dict:
    """Parse one pod document; ``source`` names it in errors."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source} line {mark.line + 1}" if mark is not None else source
        problem = getattr(err, "problem", None) or "parse error"
        raise InputError(where, text.splitlines()[mark.line].strip() if mark is not None and
                         mark.line < len(text.splitlines()) else "", f"is not valid YAML ({problem})") from None
    if not docs:
        raise InputError(source, "", "is empty: expected one Pod document")
    if len(docs) > 1:
        raise InputError(source, f"{len(docs)} documents", "holds more than one document: expected one Pod")
    doc = docs[0]
    if not isinstance(doc, dict):
        raise InputError(source, doc, "is not a mapping: expected a Pod document")
    return doc


def load_pod_file(path: str | Path) -> dict:
    """The pod document in ``path`` (``-`` reads standard input)."""
    if str(path) == "-":
        return load_pod_text(sys.stdin.read(), "<stdin>")
    p = Path(path)
    if not p.is_file():
        raise InputError("POD", str(path), "does not exist or is not a file")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError("POD", str(path), f"cannot be read ({err.__class__.__name__})") from None
    return load_pod_text(text, str(path))
