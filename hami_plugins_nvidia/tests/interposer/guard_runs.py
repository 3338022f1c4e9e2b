"""What the host-independent CI guards (beside the fake_timing tests they back) read of a run: the GPU time the
fake device gave a GPU-bound program, its stderr (the library's own lines), and the GPU time the library charged
its container. Each guard compares only what a slow or loaded host can move to the safe side."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .conftest import Workload, region

LENT = "lent by idle neighbour shares"  # lending.c's debug line (LIBCUDA_LOG_LEVEL=4) each time the lent share changes
#: the fake device time-slicing two contexts as the H100 does (2 ms slices, a 200 us switch): the pair tests' GPU
SLICED = {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "200"}
#: bench/turns.py's jax case as a driver_app `spin`: 1.25 ms kernels, a sync after each, 150 us of host time a step
JAX_STEP = ("spin", "1250", "150", "3", "1")
#: the launch stats line's demand figures (launch.c launch_stats_report)
# the stats line's turns field: on (ms), held (times, ms), longest hold (ms), holds cut
TURNS = re.compile(r"; turns on ([\d.]+) ms, held (\d+) times, ([\d.]+) ms, longest ([\d.]+) ms, (\d+) cut")
DEMAND = re.compile(r"\(demand alone ([\d.]+) %, neighbours ([\d.]+) %\)")


def spin_run(w: Workload, secs: str, **env: str) -> tuple[float, str]:
    """A GPU-bound one-process run (2 ms kernels, a sync every 4) for `secs` seconds: (GPU seconds the fake gave
    it, its stderr)."""
    r = w.run("ctx", "0", "spin", "2000", "0", secs, "4", timeout=60, **env)
    words = r.values("spin")
    assert r.returncode == 0 and words and words[0][0] == "0", r.stderr
    return float(words[0][3]), r.stderr


@dataclass(frozen=True)
class Spin:
    """A finished `spin` (fake_cuda/driver_app.c): its window (CLOCK_MONOTONIC s), the GPU time the fake device gave
    it, its launches and the GPU time spent switching into its context, with its stderr (the library's lines)."""

    t0: float
    t1: float
    gpu_s: float
    launches: int
    switch_s: float
    err: str

    @property
    def wall(self) -> float:
        return self.t1 - self.t0

    @property
    def share_pct(self) -> float:
        """% of its window the fake GPU gave it."""
        return 100 * self.gpu_s / self.wall

    @property
    def switch_pct(self) -> float:
        """% of its window the fake GPU spent switching into its context."""
        return 100 * self.switch_s / self.wall


def finish_spin(proc: subprocess.Popen[str], timeout: float = 60) -> Spin:
    """Waits for a started `spin` and reads its result line (the one parser of it for the pair tests)."""
    out, err = proc.communicate(timeout=timeout)
    words = out.split("spin ")[1].split() if "spin " in out else ["?"]
    assert words[0] == "0", (out, err)
    return Spin(float(words[1]), float(words[2]), float(words[3]), int(words[4]), float(words[5]), err)


def pair_turns(a: Workload, b: Workload, prog: tuple[str, ...]) -> list[tuple[Spin, re.Match[str]]]:
    """Starts prog in a and b at once and waits for both: each one's spin and its stats line's turns field (TURNS)."""
    procs = [a.start("ctx", "0", *prog), b.start("ctx", "0", *prog)]
    out = []
    for p in procs:
        s = finish_spin(p)
        m = TURNS.search(s.err)
        assert m, s.err
        out.append((s, m))
    return out


def charged_pct(w: Workload, spin: Spin) -> float:
    """% of the spin's window the library charged container w (its region's busy time)."""
    return 100 * charged_s(w) / spin.wall


def charged_s(w: Workload) -> float:
    """GPU time the library charged the container on device 0 (its region's busy time), seconds."""
    with region.SharedRegion(w.region_path) as reg:
        return reg.busy_ns(0) / 1e9


def beside_idle_neighbour(w: Workload, nb: Workload, words: tuple[str, ...]) -> tuple[float, float, list[str]]:
    """Runs `ctx 0 SAVE WORDS gpu sleep 100` in container w at 90 % `force` on the fake's shared GPU, beside container
    nb at 50 % `default` that launched one 10 us kernel and then sleeps (on the node board, idle; every launch of w
    gets a start mark): (GPU seconds the fake gave w's program, seconds the library charged w, its output lines).
    SAVE: a 10 us kernel and 200 ms of sleep, so credit is saved and nothing waits for it at first."""
    gpu = str(w.tmp.parent / "gpu")
    nb.env.update(FAKE_CUDA_GPU=gpu, CUDA_DEVICE_SM_LIMIT="50", GPU_CORE_UTILIZATION_POLICY="default")
    w.env.update(FAKE_CUDA_GPU=gpu, CUDA_DEVICE_SM_LIMIT="90", GPU_CORE_UTILIZATION_POLICY="force",
                 HAMI_SM_PERIOD_MS="100")
    p = nb.start("ctx", "0", "launch", "kernel", "1", "10", "ready", "sleep", "5000")
    assert p.stdout is not None
    while (line := p.stdout.readline()) and line.strip() != "ready":  # it launched: on the board, then idle
        pass
    assert line.strip() == "ready", p.stderr.read() if p.stderr else ""
    r = w.run("ctx", "0", "launch", "kernel", "1", "10", "sleep", "200", *words, "gpu", "sleep", "100", timeout=60)
    assert r.returncode == 0, r.stderr
    assert all(v == ["0"] for v in r.values("launchon")), r.lines
    [[ran]] = r.values("gpu")
    ran_s, charged = int(ran) / 1e9, charged_s(w)
    print(f"charged {charged * 1e3:.3f} ms of {ran_s * 1e3:.3f} ms the fake ran ({charged / ran_s:.3f} x)")
    return ran_s, charged, r.lines


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


def jax_tenant(w: Workload, proc: subprocess.Popen) -> dict:
    """A finished JAX-shaped tenant (JAX_STEP) of container w: its GPU share and the library's charge (% of its
    window) and its demand alone (%, from its launch stats line)."""
    s = finish_spin(proc)
    m = DEMAND.search(s.err)
    assert m, s.err
    return {"share": s.share_pct, "charged": charged_pct(w, s), "demand": float(m.group(1))}

