"""Fuzz target (issue 14): random bytes written anywhere into a region, header included, while a tenant of
the container holds 600 MiB of its 1 GiB. Whatever the bytes, the next process counts that tenant (the
kernel's record locks, not the file): 600 MiB more is refused, 424 MiB fits, and it never crashes.
Bounded in CI; raise the example count with INTERPOSER_FUZZ_EXAMPLES=<n> for a longer run."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Workload, region

N = int(os.environ.get("INTERPOSER_FUZZ_EXAMPLES", "25"))
ENV = {"CUDA_DEVICE_MEMORY_LIMIT": "1g", "CUDA_DEVICE_CONTEXT_RESERVE": "0"}


def _holder(w: Workload):
    """One tenant holding 600 MiB for the whole test (started at the first example)."""
    if not w.procs:
        proc = w.start("ctx", "0", "alloc", "600m", "hang", **ENV)
        for line in proc.stdout:
            if "hanging" in line:
                break
        else:
            raise AssertionError(f"holder exited early: {proc.stderr.read()}")
    return w.procs[0]


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(st.binary(min_size=1, max_size=4096),
                      st.builds(lambda b, n: b * n, st.sampled_from([b"\0", b"\xff"]), st.integers(1, 4096))),
       offset=st.integers(0, region.REGION_SIZE - 1), truncate_to=st.none() | st.integers(0, region.REGION_SIZE))
def test_random_bytes_in_a_live_region_never_free_the_tenants_memory(workload: Workload, body: bytes, offset: int,
                                                                     truncate_to: int | None) -> None:
    holder = _holder(workload)
    with open(workload.region_path, "r+b") as f:
        f.seek(offset)
        f.write(body[: max(0, region.REGION_SIZE - offset)])
        if truncate_to is not None:
            f.truncate(truncate_to)
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "424m", "alloc", "1m", **ENV)
    assert r.returncode == 0, r.stderr  # no crash, whatever the bytes
    assert r.values("alloc") == [["err", "2"], ["ok", "0"], ["err", "2"]], r.stderr
    assert holder.poll() is None
    with region.SharedRegion(workload.region_path) as reg:  # repaired: trusted again, the kernel's figure exact
        assert reg.held_bytes(0) == 600 << 20
