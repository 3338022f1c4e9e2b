"""The library builds from the package sources into a plain shared object, and its pure C helpers
(size parsing, throttle arithmetic) compute what the design says."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from .conftest import PKG, Toolchain, build  # noqa: F401  (build: loaded by path)

GIB = 1 << 30


def _needed(lib) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True).stdout
    return [line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def _exports(lib) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_library_is_plain_c_without_libpython(toolchain: Toolchain) -> None:
    needed = _needed(toolchain.lib)
    assert needed, "readelf found no dependencies"
    assert not [n for n in needed if "python" in n], needed
    exports = _exports(toolchain.lib)
    for sym in ("dlsym", "cuGetProcAddress", "cuGetProcAddress_v2", "cuMemAlloc_v2", "cuMemCreate",
                "cuMemAllocFromPoolAsync", "cuLaunchKernel", "cuLaunchKernelEx", "cuGraphLaunch",
                "nvmlDeviceGetMemoryInfo", "cuMemGetInfo_v2"):
        assert sym in exports, sym
    assert not [s for s in exports if s.startswith("vg_")], "internal helpers must stay hidden"


def test_version_marker_matches_exported_version(toolchain: Toolchain) -> None:
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("hami_interposer_pkg_under_test", PKG / "interposer" / "__init__.py",
                                   submodule_search_locations=[str(PKG / "interposer")])
    pkg = module_from_spec(spec)
    import sys

    sys.modules[spec.name] = pkg
    spec.loader.exec_module(pkg)
    lib = ctypes.CDLL(str(toolchain.lib))
    lib.hami_vgpu_version.restype = ctypes.c_char_p
    assert pkg.library_version(toolchain.lib) == lib.hami_vgpu_version().decode() != ""


@pytest.fixture(scope="module")
def clib(toolchain: Toolchain) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(toolchain.lib))
    lib.hami_vgpu_parse_size.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64)]
    lib.hami_vgpu_throttle_wait_ns.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
    lib.hami_vgpu_throttle_wait_ns.restype = ctypes.c_int64
    lib.hami_vgpu_bucket_refill.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64),
                                            ctypes.c_int64, ctypes.c_int, ctypes.c_int64]
    lib.hami_vgpu_bucket_refill.restype = ctypes.c_int64
    lib.hami_vgpu_resume_credit_ns.argtypes = [ctypes.c_int64, ctypes.c_int]
    lib.hami_vgpu_resume_credit_ns.restype = ctypes.c_int64
    return lib


@pytest.mark.parametrize(("text", "value"), [("1073741824", GIB), ("4g", 4 * GIB), ("4G", 4 * GIB),
                                             ("3000m", 3000 << 20), ("512k", 512 << 10), ("2Gi", 2 * GIB),
                                             (" 7m", 7 << 20)])
def test_parse_size_accepts_hami_syntax(clib: ctypes.CDLL, text: str, value: int) -> None:
    out = ctypes.c_uint64()
    assert clib.hami_vgpu_parse_size(text.encode(), ctypes.byref(out)) == 1
    assert out.value == value


@pytest.mark.parametrize("text", ["", "g", "4x", "-1g", "1.5g", "4 g b", "99999999999999999999g"])
def test_parse_size_rejects_malformed(clib: ctypes.CDLL, text: str) -> None:
    out = ctypes.c_uint64(123)
    assert clib.hami_vgpu_parse_size(text.encode(), ctypes.byref(out)) == 0
    assert out.value == 123


def test_bucket_refill_earns_share_of_wall_time_and_caps(clib: ctypes.CDLL) -> None:
    tokens, last = ctypes.c_int64(0), ctypes.c_int64(1_000_000)
    added = clib.hami_vgpu_bucket_refill(ctypes.byref(tokens), ctypes.byref(last), 11_000_000, 30, 50_000_000)
    assert added == 3_000_000 and tokens.value == 3_000_000 and last.value == 11_000_000
    # same instant again: nothing more (another process already refilled)
    assert clib.hami_vgpu_bucket_refill(ctypes.byref(tokens), ctypes.byref(last), 11_000_000, 30, 50_000_000) == 0
    clib.hami_vgpu_bucket_refill(ctypes.byref(tokens), ctypes.byref(last), 10_011_000_000, 30, 50_000_000)
    assert tokens.value == 50_000_000  # capped
    # no limit: the bucket is not used
    assert clib.hami_vgpu_bucket_refill(ctypes.byref(tokens), ctypes.byref(last), 20_000_000_000, 100, 1) == 0


def test_throttle_wait_covers_the_deficit_at_the_share(clib: ctypes.CDLL) -> None:
    assert clib.hami_vgpu_throttle_wait_ns(5_000_000, 1_000_000, 50) == 0          # credit left
    assert clib.hami_vgpu_throttle_wait_ns(1_000_000, 1_000_000, 50) > 0           # queued work uses it up
    assert clib.hami_vgpu_throttle_wait_ns(-500_000, 0, 50) == 1_000_002            # 0.5 ms deficit at 50%
    assert clib.hami_vgpu_throttle_wait_ns(-10**9, 0, 25) == 2_000_000              # capped at 2 ms per sleep
    assert clib.hami_vgpu_throttle_wait_ns(-10**9, 0, 100) == 0                     # no limit


def test_resume_credit_makes_a_square_wave(clib: ctypes.CDLL) -> None:
    period = 800_000_000
    for share in (10, 25, 50, 75, 90):
        credit = clib.hami_vgpu_resume_credit_ns(period, share)
        s = share / 100
        on, off = credit / (1 - s), credit / s  # credit is spent at (1-s) while on, earned at s while off
        assert on == pytest.approx(s * period, rel=1e-6)
        assert on + off == pytest.approx(period, rel=1e-6)
    assert clib.hami_vgpu_resume_credit_ns(period, 100) == 0
    assert clib.hami_vgpu_resume_credit_ns(0, 50) == 0


def test_probe_module_imports_without_torch() -> None:
    """The plugin's probe hook imports probe.py on any node; torch is only needed by the workers it spawns."""
    code = ("import sys, importlib.util as u\n"
            f"sys.path.insert(0, {str(PKG.parent)!r})\n"
            "from hami_plugins_nvidia.interposer import probe\n"
            "assert 'torch' not in sys.modules and 'cupy' not in sys.modules\n"
            "assert probe.WORKER.is_file() and probe.PROGRAMS.is_file()\n"
            "print(sorted(n for n in dir(probe) if n.startswith('measure_')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == str(["measure_compute_share", "measure_launch_overhead",
                                             "measure_memory_isolation", "measure_priority",
                                             "measure_work_conserving"])
