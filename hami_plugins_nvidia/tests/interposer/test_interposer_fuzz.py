"""Fuzz targets for the interposer's C parsers (issue 14), bounded to seconds in CI: the size parser of the
environment's limits against a Python reference, a limit variable through a preloaded process (never "no
limit"), and random region bytes under a live limit (no crash, never more than the limit). A longer run:
HYPOTHESIS_PROFILE is not used; raise max_examples through INTERPOSER_FUZZ_EXAMPLES=<n>."""

from __future__ import annotations

import ctypes
import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Toolchain, Workload, fake_only, region

N = int(os.environ.get("INTERPOSER_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
LIMIT_MAX = 1 << 56
UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def reference_size(text: str) -> int | None:
    """What the C parser must answer: digits, an optional k/m/g/t unit (then b, B, i, ib or iB), at most 64 PiB."""
    m = re.fullmatch(r"[ \t\n\r\f\v]*([0-9]+)([kmgtKMGT]?)(b|B|i[bB]?)?[ \t\n\r\f\v]*", text)
    if not m or (m.group(3) and not m.group(2)):
        return None
    value = int(m.group(1)) * UNITS[m.group(2).lower()]
    return value if value <= LIMIT_MAX else None


size_text = st.one_of(
    st.text(alphabet="0123456789kmgtKMGTbBi .-x", max_size=24),
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 1 << 70), st.sampled_from(["", "k", "m", "g", "t", "G", "Gi"])),
)


@FUZZ
@given(text=size_text)
def test_parse_size_matches_the_reference(toolchain: Toolchain, text: str) -> None:
    lib = ctypes.CDLL(str(toolchain.lib))
    lib.hami_vgpu_parse_size.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64)]
    out = ctypes.c_uint64(7)
    ok = lib.hami_vgpu_parse_size(text.encode(), ctypes.byref(out))
    want = reference_size(text)
    assert (ok == 1) == (want is not None), text
    assert out.value == (want if want is not None else 7)


@fake_only
@FUZZ
@given(text=size_text.filter(lambda t: t.strip() != "" and "\x00" not in t))
def test_memory_limit_variable_is_never_lifted(workload: Workload, text: str) -> None:
    region_path = workload.tmp / f"fuzz-{abs(hash(text))}"
    r = workload.run("ctx", "0", "alloc", "64m", CUDA_DEVICE_MEMORY_LIMIT=text, CUDA_DEVICE_CONTEXT_RESERVE="0",
                     CUDA_DEVICE_MEMORY_SHARED_CACHE=str(region_path))
    assert r.returncode == 0, r.stderr
    want = reference_size(text)
    got = r.values("alloc")[0][0]
    if want is None:
        assert got == "err" and "refusing CUDA_DEVICE_MEMORY_LIMIT" in r.stderr  # refused, never "no limit"
    else:
        assert got == ("ok" if want == 0 or want >= 64 << 20 else "err")
    region_path.unlink(missing_ok=True)


@FUZZ
@given(body=st.binary(min_size=0, max_size=4096), offset=st.integers(0, region.REGION_SIZE - 1),
       keep_header=st.booleans())
def test_random_region_bytes_never_crash_or_lift_the_limit(workload: Workload, body: bytes, offset: int,
                                                            keep_header: bool) -> None:
    path = workload.tmp / "fuzz-region"
    path.unlink(missing_ok=True)
    env = {"CUDA_DEVICE_MEMORY_LIMIT": "1g", "CUDA_DEVICE_CONTEXT_RESERVE": "0",
           "CUDA_DEVICE_MEMORY_SHARED_CACHE": str(path)}
    workload.run("ctx", "0", "alloc", "1m", **env)  # a valid region of this container
    data = bytearray(path.read_bytes())
    start = max(offset, 48) if keep_header else offset
    data[start:start + len(body)] = body[: max(0, len(data) - start)]
    path.write_bytes(bytes(data))
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "600m", **env)
    assert r.returncode == 0, r.stderr  # no crash, whatever the bytes
    assert [v[0] for v in r.values("alloc")] != ["ok", "ok"]  # 1.2 GiB never fits a 1 GiB limit
