"""Run a vendor command-line tool safely, for plugins that read one (a management CLI printing text).

One place for what every such port needs: the tool looked up lazily (a missing tool is
:class:`BackendUnavailable`, so the plugin is skipped with one line), a hard time-out (a hanging tool
becomes one clear line, never a hung agent), bounded output, and a non-zero exit reported with the
first line of its stderr. Parsing stays in the plugin; this module knows no vendor.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .errors import BackendUnavailable, HalError

#: Default seconds a tool may run before it is killed.
DEFAULT_TIMEOUT_S = 10.0
#: Output beyond this many characters is refused (a tool gone wild, or not the tool we expect).
MAX_OUTPUT_CHARS = 4 * 1024 * 1024


class ToolError(HalError):
    """The tool ran but failed: non-zero exit, time-out, or output we refuse to read."""


def find_tool(name: str, extra_dirs: Sequence[str | Path] = ()) -> str:
    """Absolute path of ``name`` on PATH or in ``extra_dirs`` (vendor install folders)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in extra_dirs:
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    where = f" (looked on PATH and in {', '.join(str(d) for d in extra_dirs)})" if extra_dirs else " on PATH"
    raise BackendUnavailable(f"{name} not found{where}")


def run_tool(argv: Sequence[str], *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """stdout of ``argv`` as text; raises :class:`ToolError` with one line on any failure."""
    shown = " ".join(argv)
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False,
                              errors="replace")
    except subprocess.TimeoutExpired:
        raise ToolError(f"{shown}: no answer within {timeout_s:g} s (tool hangs; killed)") from None
    except OSError as err:
        raise ToolError(f"{shown}: cannot run ({err.strerror or err})") from None
    if done.returncode != 0:
        first = next((ln.strip() for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()), "")
        raise ToolError(f"{shown}: exit status {done.returncode}" + (f": {first[:200]}" if first else ""))
    if len(done.stdout) > MAX_OUTPUT_CHARS:
        raise ToolError(f"{shown}: output of {len(done.stdout)} characters exceeds {MAX_OUTPUT_CHARS}")
    return done.stdout


_BDF = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def pci_numa_node(bus_id: str, root: Path = Path("/sys")) -> int | None:
    """A PCI device's NUMA node from sysfs (many vendor tools print none); None when unknown.

    ``bus_id`` (``0000:3b:00.0``) is checked before it becomes part of a path.
    """
    bdf = bus_id.strip().lower()
    if not _BDF.match(bdf):
        return None
    try:
        text = (root / "bus" / "pci" / "devices" / bdf / "numa_node").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and len(text) < 5 else None
