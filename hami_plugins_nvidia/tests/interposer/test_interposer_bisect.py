"""The alone bisection's bench builds (issue 18, alonebisect; bench/issue18_gpu.sh stage 19): each HAMI_BISECT_* flag of
csrc/launch_int.h takes one part off the coarse alone path, and the GPU ladder reads what each part costs the H100's
inference loop (alone at force 70: ~1 us a launch behind the wrap-only build, its sections 0.55). Here, on the fake
libcuda: every flag builds, every rung runs the inference-shaped loop (5 us kernels 12 us apart, a host sync every 183
launches) alone at force 70 and stays coarse, and each takes off what it says, as the fake counts it (event records
per launch, the section timers, the fcntl queries, the throttle's holds); and the shipped library carries none of
them. Pinned by counters and by the stats line, not by a timing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Workload, fake_only

pytestmark = [fake_only]

FORCE70 = dict(CUDA_DEVICE_SM_LIMIT="70", GPU_CORE_UTILIZATION_POLICY="force", HAMI_LAUNCH_STATS="1")
RUNGS = {
    "norec": ["HAMI_BISECT_NO_RECORDS"],
    "noharv": ["HAMI_BISECT_NO_HARVEST"],
    "nousers": ["HAMI_BISECT_NO_USERS"],
    "nothrottle": ["HAMI_BISECT_NO_THROTTLE"],
    "notimers": ["HAMI_BISECT_NO_TIMERS"],
    "min": ["HAMI_BISECT_MIN"],
    "touch": ["HAMI_BENCH_WRAP_ONLY", "HAMI_BISECT_TOUCH"],
}
NAMES = {"norec": "NO_RECORDS", "noharv": "NO_HARVEST", "nousers": "NO_USERS", "nothrottle": "NO_THROTTLE",
         "notimers": "NO_TIMERS", "min": "NO_RECORDS NO_HARVEST NO_USERS NO_THROTTLE NO_TIMERS", "touch": "TOUCH"}


@pytest.fixture(scope="module")
def libs(variant_libs) -> dict[str, Path]:
    """Every rung's build, at once (conftest's variant_libs: the sources a rung leaves unchanged compile once)."""
    return variant_libs(RUNGS)


def _loop(workload: Workload, lib: Path | None, *, kernel_us: int = 5, gap_us: int = 12, strace: bool = False,
          **env: str) -> dict:
    """The inference-shaped loop, 0.4 s of warm-up then a 1 s window: event records per launch in the window, the
    stats line, the bisection line, and with strace the launching (main) thread's fcntl calls over the whole run."""
    spin = ["spin", str(kernel_us), str(gap_us)]
    args = [str(workload.tc.app), "ctx", "0", *spin, "0.4", "183", "calls", *spin, "1", "183", "calls"]
    if strace:
        args = ["strace", "-f", "--seccomp-bpf", "-e", "trace=fcntl", "-o", str(workload.tmp / "strace.txt"), *args]
    extra = dict(FORCE70, FAKE_CUDA_GPU=str(workload.tmp.parent / "gpu"), DRIVER_BUSY_GAP="1", **env)
    if lib is not None:
        extra["LD_PRELOAD"] = str(lib)
    p = subprocess.run(args, env=workload.env_for(True, **extra), capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, p.stderr[-2000:]
    calls = [list(map(int, ln.split()[1:])) for ln in p.stdout.splitlines() if ln.startswith("calls ")]
    n = calls[1][0] - calls[0][0]
    assert n > (1000 if strace else 5000), p.stdout  # strace stops the process at each system call: fewer launches
    stats = next((ln for ln in p.stderr.splitlines() if "launch stats:" in ln), "")
    assert stats, p.stderr[-2000:]
    res = {"records": (calls[1][1] - calls[0][1]) / n, "stats": stats,
           "bisect": next((ln for ln in p.stderr.splitlines() if "bench-only bisection build" in ln), "")}
    if strace:  # each line starts with the calling thread's id; the main thread's is the lowest (the process's)
        tids = [int(ln.split()[0]) for ln in (workload.tmp / "strace.txt").read_text().splitlines()
                if re.match(r"\d+ +fcntl\(", ln)]
        res["fcntl"] = tids.count(min(tids)) if tids else 0
    return res


def _num(line: str, rx: str) -> float:
    m = re.search(rx, line)
    assert m, (rx, line)
    return float(m.group(1))


def _section(line: str, name: str) -> float:
    return _num(line, rf"[:,] {name} ([\d.]+)")


def test_the_shipped_library_carries_no_bisection_flag(toolchain, libs: dict[str, Path]) -> None:
    # build.py passes no define: the shipped library has no marker; each rung's names its flags (the build's own list)
    assert b"HAMI_BISECT" not in toolchain.lib.read_bytes()
    # nor the pair probe's (HAMI_BENCH_PAIRPROBE, launch_int.h: its counters and stats section; test_interposer_pairprobe)
    assert b"HAMI_BENCH_PAIRPROBE" not in toolchain.lib.read_bytes()
    for name, lib in libs.items():
        m = re.search(rb"HAMI_BISECT=([A-Z_ ]*)\0", lib.read_bytes())
        assert m and m.group(1).decode().strip() == NAMES[name], (name, m)


def test_each_rung_takes_off_what_it_says(workload: Workload, libs: dict[str, Path]) -> None:
    ship = _loop(workload, None)
    print("shipped:", ship["records"], ship["stats"][:400])
    assert not ship["bisect"]
    # the shipped path has each part the rungs take off: event records (samples among them), section timers
    assert ship["records"] > 0.03 and _num(ship["stats"], r"\((\d+) drawn\)") > 0, ship
    assert _section(ship["stats"], "before the launch") > 0 and _section(ship["stats"], "lock") >= 0, ship
    assert _num(ship["stats"], r"host us per launch \((\d+) \+ \d+ sampled") > 0, ship
    assert _num(ship["stats"], r"\(([\d.]+) % coarse\)") > 50, ship
    runs = {name: _loop(workload, libs[name]) for name in RUNGS}
    for name, r in runs.items():
        print(f"{name}: records {r['records']:.4f}; {r['stats'][:300]}")
        assert NAMES[name] in r["bisect"], (name, r["bisect"])
        if name != "touch":  # each still runs coarse alone: the estimate, the refill and the collections still work
            assert _num(r["stats"], r"\(([\d.]+) % coarse\)") > 50, (name, r["stats"])
    for name in ("norec", "min"):  # no samples, no end marks, no verification after the first
        st = runs[name]["stats"]
        assert runs[name]["records"] < 0.2 * ship["records"], (name, runs[name]["records"], ship["records"])
        assert _num(st, r"\((\d+) drawn\)") == 0 and _num(st, r"verifications (\d+),") <= 2, (name, st)
    for name in ("notimers", "min"):  # no sampled timers: the counts stay
        assert re.search(r"host us per launch \(0 \+ 0 sampled", runs[name]["stats"]), runs[name]["stats"]
    for name in ("noharv", "nousers", "nothrottle"):  # the others keep their timers, each without its own section
        # sampled, with every section printed (a section's figure has one clock read's cost taken off: the lock's
        # ~20 ns can print 0.000 on a loaded host, so the sample count says the timers ran, not the lock's figure)
        st = runs[name]["stats"]
        assert _num(st, r"host us per launch \((\d+) \+ \d+ sampled") > 0 and _section(st, "lock") >= 0, st
    assert _section(runs["nothrottle"]["stats"], "throttle") == 0, runs["nothrottle"]["stats"]
    # the wrap build with the footprint: no work of the library's (no records, no watcher)
    assert runs["touch"]["records"] == 0 and "0.000 event records" in runs["touch"]["stats"], runs["touch"]
    assert _num(runs["touch"]["stats"], r"watcher (\d+) wakes") == 0, runs["touch"]["stats"]


def test_no_harvest_leaves_the_coarse_collections_to_the_watcher(workload: Workload, libs: dict[str, Path]) -> None:
    # the watcher wakes to collect instead of leaving it to the launcher (the launch path still collects in its
    # precise windows: the first, after the warm-up, and those after each 100 ms coarse phase)
    ship, r = _loop(workload, None), _loop(workload, libs["noharv"])
    wakes = {k: re.search(r"watcher (\d+) wakes \((\d+) left to the launcher\)", x["stats"]).groups()
             for k, x in (("shipped", ship), ("noharv", r))}
    print(wakes)
    (sw, sl), (nw, nl) = ((int(a), int(b)) for a, b in wakes.values())
    # the wakes that collected: the shipped watcher's only while the launcher stops (its syncs; more on a loaded host)
    assert nw - nl > 300 and nw - nl > 3 * (sw - sl), wakes


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace to count the fcntl queries")
def test_no_users_makes_no_board_queries_on_the_launches(workload: Workload, libs: dict[str, Path]) -> None:
    # note_users reads the board's records (fcntl lock queries) once a ms on the launching thread; without it only its
    # first launch does (the watcher's own queries, when it collects, are on its thread)
    ship, r = _loop(workload, None, strace=True), _loop(workload, libs["nousers"], strace=True)
    print(f"fcntl calls: shipped {ship['fcntl']}, nousers {r['fcntl']}")
    assert ship["fcntl"] > 200 and r["fcntl"] < 0.3 * ship["fcntl"], (ship["fcntl"], r["fcntl"])


def test_no_throttle_never_holds_where_the_shipped_library_does(workload: Workload, libs: dict[str, Path]) -> None:
    # a loop far over its limit (100 us kernels back to back at 70 %): the shipped library holds it, the rung never does
    # (a bench build only: the limit is not kept, stage 19 runs it alone far below its limit)
    ship = _loop(workload, None, kernel_us=100, gap_us=0)
    r = _loop(workload, libs["nothrottle"], kernel_us=100, gap_us=0)
    print("shipped:", ship["stats"][:500], "\nnothrottle:", r["stats"][:500])
    assert _num(ship["stats"], r"held (\d+) times") > 0, ship["stats"]
    assert _num(r["stats"], r"held (\d+) times") == 0, r["stats"]
