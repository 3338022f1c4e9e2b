"""The CUDA interposer (libvgpu.so): where it is, which version, and how to build it.

The library itself is C (../csrc); it is compiled into ../lib when the package is built or installed.
"""

from __future__ import annotations

import re
from pathlib import Path

from .build import BuildError, build_library

__all__ = ["BuildError", "build_library", "library_path", "library_version"]

_LIB = Path(__file__).resolve().parent.parent / "lib" / "libvgpu.so"
_MARKER = re.compile(rb"HAMI_VGPU_VERSION=([0-9A-Za-z.+-]+)")


def library_path() -> Path | None:
    """Path of the built interposer inside the installed package, or None when it was not built."""
    return _LIB if _LIB.is_file() else None


def library_version(path: Path | None = None) -> str:
    """Version compiled into the library (read from the file, without loading it), or "" if absent."""
    lib = path or library_path()
    if lib is None or not lib.is_file():
        return ""
    found = _MARKER.search(lib.read_bytes())
    return found.group(1).decode() if found else ""
