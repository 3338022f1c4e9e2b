"""Build hook: compile the CUDA interposer into hami_plugins_nvidia/lib/libvgpu.so at build/install time.

Metadata lives in pyproject.toml; this file only adds the C build to build_py (wheel, sdist install and
PEP 660 editable installs alike). The compiler script is loaded by path so nothing from the package or its
dependencies must be importable while building.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PKG = HERE / "hami_plugins_nvidia"


def _load_builder():
    spec = importlib.util.spec_from_file_location("_hami_interposer_build", PKG / "interposer" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithInterposer(build_py):
    """build_py that also compiles libvgpu.so next to the Python files it copies."""

    def run(self) -> None:
        super().run()
        builder = _load_builder()
        if getattr(self, "editable_mode", False):
            out = PKG / "lib"  # editable: the package is imported from the source tree
        else:
            out = Path(self.build_lib) / "hami_plugins_nvidia" / "lib"
        lib = builder.build_library(out, PKG / "csrc")
        self.announce(f"built CUDA interposer {lib}", level=2)


class BinaryDistribution(Distribution):
    """The wheel carries a native library, so it must be platform-specific."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildPyWithInterposer}, distclass=BinaryDistribution)
