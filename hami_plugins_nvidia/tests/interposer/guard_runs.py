"""What the host-independent CI guards (beside the fake_timing tests they back) read of a run: the GPU time the
fake device gave a GPU-bound program, its stderr (the library's own lines), and the GPU time the library charged
its container. Each guard compares only what a slow or loaded host can move to the safe side."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .conftest import Workload, region

LENT = "lent by idle neighbour shares"  # lending.c's debug line (LIBCUDA_LOG_LEVEL=4) each time the lent share changes


def spin_run(w: Workload, secs: str, **env: str) -> tuple[float, str]:
    """A GPU-bound one-process run (2 ms kernels, a sync every 4) for `secs` seconds: (GPU seconds the fake gave
    it, its stderr)."""
    r = w.run("ctx", "0", "spin", "2000", "0", secs, "4", timeout=60, **env)
    words = r.values("spin")
    assert r.returncode == 0 and words and words[0][0] == "0", r.stderr
    return float(words[0][3]), r.stderr


def charged_s(w: Workload) -> float:
    """GPU time the library charged the container on device 0 (its region's busy time), seconds."""
    with region.SharedRegion(w.region_path) as reg:
        return reg.busy_ns(0) / 1e9


def sibling_ratios(w: Workload) -> tuple[list[float], list[tuple[float, float, float]]]:
    """Two GPU-bound processes of container w (1.5 s each, started together): each one's charge over the GPU time
    the fake gave it, and run_siblings' rows (share %, GPU s, charged s)."""
    from .test_interposer_multiproc import run_siblings

    rows = run_siblings(w, [("2000", "0", "1.5", "4")] * 2)
    return [charged / gpu for _, gpu, charged in rows], rows


@contextmanager
def running(*jobs: Callable[[threading.Event], object]) -> Iterator[threading.Event]:
    """Runs each job(stop) (a forger, a lock holder) in a thread of its own for the block, then stops and joins
    them, whatever the block raised."""
    stop = threading.Event()
    threads = [threading.Thread(target=job, args=(stop,), daemon=True) for job in jobs]
    for t in threads:
        t.start()
    try:
        yield stop
    finally:
        stop.set()
        for t in threads:
            t.join()
