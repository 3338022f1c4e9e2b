"""Run a vendor command-line tool safely, for plugins that read one (a management CLI printing text).

One place for what every such port needs: the tool looked up lazily (a missing tool is
:class:`BackendUnavailable`, so the plugin is skipped with one line), a hard time-out (a hanging tool
becomes one clear line, never a hung agent), bounded output, and a non-zero exit reported with one
line of its stderr (wording per plugin: :class:`ToolWording`). Parsing stays in the plugin; this module knows no vendor.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hami_hal.digits import is_digits

from .errors import BackendUnavailable, HalError

#: Default seconds a tool may run before it is killed.
DEFAULT_TIMEOUT_S = 10.0
#: Output beyond this many characters is refused (a tool gone wild, or not the tool we expect).
MAX_OUTPUT_CHARS = 4 * 1024 * 1024
#: ``env`` for :func:`run_tool` that makes a tool print the untranslated format its parser expects.
C_LOCALE = {"LC_ALL": "C"}


class ToolError(HalError):
    """The tool ran but failed: non-zero exit, time-out, or output we refuse to read."""


@dataclass(frozen=True)
class ToolWording:
    """How :func:`run_tool` words a time-out and a non-zero exit, so each plugin keeps the one line its
    users (and tests) know. ``stderr_line`` picks which non-empty line of stderr is quoted."""

    timeout: str = "{what}: no answer within {timeout_s:g} s (tool hangs; killed)"
    exit: str = "{what}: exit status {code}{detail}"
    stderr_line: Literal["first", "last"] = "first"


#: The default wording.
DEFAULT_WORDING = ToolWording()
#: Wording that blames the tool or its driver and quotes the last stderr line (often the real cause).
DRIVER_WORDING = ToolWording(timeout="{what}: timed out after {timeout_s:g} s (tool or driver hung)",
                             exit="{what}: exited with status {code}{detail}", stderr_line="last")


def find_tool(name: str, extra_dirs: Sequence[str | Path] = (), *, candidates: Sequence[str | Path] = ()) -> str:
    """Absolute path of ``name``: the first executable of ``candidates`` (full paths where the vendor
    installs it), else on PATH, else in ``extra_dirs`` (vendor install folders)."""
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which(name)
    if found:
        return found
    for folder in extra_dirs:
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    places = [str(p) for p in candidates] + [str(d) for d in extra_dirs]
    where = f" (looked on PATH and in {', '.join(places)})" if places else " on PATH"
    raise BackendUnavailable(f"{name} not found{where}")


def run_tool(argv: Sequence[str], *, timeout_s: float = DEFAULT_TIMEOUT_S, label: str | None = None,
             stdin: str | None = None, env: Mapping[str, str] | None = None,
             wording: ToolWording = DEFAULT_WORDING) -> str:
    """stdout of ``argv`` as text; raises :class:`ToolError` with one line on any failure.

    ``label`` names the command in messages (default: ``argv`` joined); ``env`` adds variables to the
    inherited environment (e.g. ``LC_ALL=C`` so the tool prints the format the parser expects).
    """
    shown = label or " ".join(argv)
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout_s,
                              check=False, encoding="utf-8", errors="replace",
                              env={**os.environ, **env} if env else None)
    except subprocess.TimeoutExpired:
        raise ToolError(wording.timeout.format(what=shown, timeout_s=timeout_s)) from None
    except FileNotFoundError:
        raise ToolError(f"{shown}: {argv[0]} not found") from None
    except PermissionError:
        raise ToolError(f"{shown}: {argv[0]} is not executable") from None
    except OSError as err:
        raise ToolError(f"{shown}: cannot run ({err.strerror or err})") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
        quoted = (lines[0] if wording.stderr_line == "first" else lines[-1]) if lines else ""
        detail = f": {quoted[:200]}" if quoted else ""
        raise ToolError(wording.exit.format(what=shown, code=done.returncode, detail=detail))
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
    return int(text) if is_digits(text) and len(text) < 5 else None
