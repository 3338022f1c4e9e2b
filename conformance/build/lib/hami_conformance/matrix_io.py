"""Read and write CapabilityMatrix files with one-line errors naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from hami_hal.errors import InputError
from hami_hal.models import CapabilityMatrix


def load_matrix(path: str | Path) -> CapabilityMatrix:
    """Parse a matrix JSON file; raises InputError(field=file, value=location, reason)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(str(path), err.strerror or "unreadable", "cannot be read") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(str(path), f"line {err.lineno}", f"is not valid JSON ({err.msg})") from None
    try:
        return CapabilityMatrix.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(p) for p in e["loc"]) or "document"
        raise InputError(str(path), loc, f"does not match the CapabilityMatrix schema: {e['msg']}") from None


def dump_matrix(matrix: CapabilityMatrix) -> str:
    """Canonical JSON: aliases (``apiVersion``), ISO dates, 2-space indent, trailing newline."""
    return matrix.model_dump_json(by_alias=True, indent=2) + "\n"
