"""Compile the CUDA interposer (libvgpu.so) with the system C compiler.

Standalone on purpose (standard library only): setup.py loads this file by path at build time, before the
package or its dependencies are importable, and the tests call it to build into a temporary directory.
The result is a plain shared library linked only against libc/libdl/libpthread, never libpython, because
it is preloaded into arbitrary processes (C++ inference servers included).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

CSRC = Path(__file__).resolve().parent.parent / "csrc"
LIB_NAME = "libvgpu.so"
CFLAGS = [
    "-O2",
    "-g",
    "-fPIC",
    "-shared",
    "-fvisibility=hidden",
    "-std=gnu11",
    "-Wall",
    "-Wno-unused-parameter",
    "-Werror=implicit-function-declaration",  # a missing header is an error, not a guessed prototype
    "-Wl,--no-undefined",
    "-Wl,-z,nodelete",
]
LIBS = ["-ldl", "-lpthread"]


class BuildError(RuntimeError):
    """The C compiler is missing or rejected the sources."""


def compiler() -> str:
    """The C compiler to use: $CC, else cc/gcc/clang from PATH."""
    env = os.environ.get("CC")
    if env:
        return env
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    raise BuildError("no C compiler found (set CC or install gcc) to build the CUDA interposer")


def sources(csrc: Path = CSRC) -> list[Path]:
    """Every C file of the interposer, in a stable order."""
    return sorted(csrc.glob("*.c"))


def compile_args(csrc: Path = CSRC, defines: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The compiler and its flags for csrc's sources (no inputs or outputs): the one place the interposer's compile
    command is written (build_library; the tests' per-object bench variants)."""
    return [*shlex.split(compiler()), *CFLAGS, *[f"-D{d}" for d in defines], f"-I{csrc}"]


def build_library(out_dir: Path | str, csrc: Path = CSRC, defines: tuple[str, ...] | list[str] = ()) -> Path:
    """Compile csrc/*.c into out_dir/libvgpu.so and return its path (atomic replace). defines: -D flags of a bench
    variant (e.g. HAMI_BENCH_NO_WATCHER), never of the shipped library."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / LIB_NAME
    tmp = out_dir / f".{LIB_NAME}.{os.getpid()}.tmp"
    cmd = [*compile_args(csrc, defines), "-o", str(tmp), *map(str, sources(csrc)), *LIBS]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"compiling the interposer failed:\n{' '.join(cmd)}\n{proc.stderr}")
    os.replace(tmp, target)
    return target


if __name__ == "__main__":
    import sys

    print(build_library(sys.argv[1] if len(sys.argv) > 1 else CSRC.parent / "lib"))
