"""Read and write CapabilityMatrix files with one-line errors naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from hami_hal.errors import InputError
from hami_hal.models import CapabilityMatrix

#: Largest matrix file read. A cluster matrix is a few hundred KiB per device model; this refuses a
#: runaway file before it is read whole.
MAX_MATRIX_BYTES = 64 << 20


def load_matrix(path: str | Path) -> CapabilityMatrix:
    """Parse a matrix JSON file; raises InputError(field=file, value=location, reason)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_MATRIX_BYTES + 1)
    except OSError as err:
        raise InputError(str(path), err.strerror or "unreadable", "cannot be read") from None
    if len(raw) > MAX_MATRIX_BYTES:
        raise InputError(str(path), f"over {MAX_MATRIX_BYTES} bytes", "is too large for a capability matrix")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(str(path), f"byte {err.start}", "is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise InputError(str(path), f"line {err.lineno}", f"is not valid JSON ({err.msg})") from None
    except RecursionError:
        raise InputError(str(path), "document", "is nested too deep to be a capability matrix") from None
    except ValueError as err:  # an integer of thousands of digits
        raise InputError(str(path), "document", f"holds a value that cannot be read ({str(err)[:80]})") from None
    try:
        return CapabilityMatrix.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(p) for p in e["loc"]) or "document"
        raise InputError(str(path), loc, f"does not match the CapabilityMatrix schema: {e['msg']}") from None


def dump_matrix(matrix: CapabilityMatrix) -> str:
    """Canonical JSON: aliases (``apiVersion``), ISO dates, 2-space indent, trailing newline."""
    return matrix.model_dump_json(by_alias=True, indent=2) + "\n"
