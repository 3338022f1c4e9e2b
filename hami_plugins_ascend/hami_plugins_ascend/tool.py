"""Run a vendor command-line tool with a time limit; every failure becomes one clear line.

The real port and the tests share this runner. A hanging tool is killed after ``timeout_s`` (a wedged
driver makes ``npu-smi`` hang, and discovery must not hang with it); output is capped so a runaway tool
cannot fill memory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from hami_hal.errors import HalError

#: Output beyond this is a malformed answer, not something to parse.
MAX_OUTPUT_BYTES = 4 << 20


class ToolError(HalError):
    """The tool is missing, timed out, exited non-zero or printed something unreadable."""


def find_tool(name: str, candidates: Sequence[str]) -> str | None:
    """The first executable among ``candidates`` (absolute paths), else ``name`` on PATH, else None."""
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def run_tool(argv: Sequence[str], timeout_s: float, label: str | None = None, stdin: str | None = None) -> str:
    """stdout of ``argv`` as text; raises :class:`ToolError` with one line on any failure."""
    what = label or " ".join(argv)
    try:
        proc = subprocess.run(
            list(argv), input=stdin.encode() if stdin is not None else None, capture_output=True, timeout=timeout_s, check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise ToolError(f"{what}: {argv[0]} not found") from None
    except PermissionError:
        raise ToolError(f"{what}: {argv[0]} is not executable") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"{what}: timed out after {timeout_s:g} s (tool or driver hung)") from None
    out = proc.stdout or b""
    if len(out) > MAX_OUTPUT_BYTES:
        raise ToolError(f"{what}: printed more than {MAX_OUTPUT_BYTES} bytes")
    text = out.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        err = (proc.stderr or b"").decode("utf-8", errors="replace")
        last = next((ln.strip() for ln in reversed((err or text).splitlines()) if ln.strip()), "no message")
        raise ToolError(f"{what}: exited with status {proc.returncode}: {last[:200]}")
    return text
