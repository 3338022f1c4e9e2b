"""The library's driver calls per launch and per collection (harvest) with several busy streams, per library build
(issue 18: the launch path's driver calls must not grow with the number of busy streams).

Cases (driver_app words, alone on the fake's shared GPU, policy force, 200 ms idle first so credit is saved):
  streams-N   at 90 %: the CUDA-graphs program (`graphs 100 N 0 S`): a 100 us graph replayed on each of N streams,
              then a sync, step after step for --seconds (N = 1, 4, 16, 33; with 33 the last stream finds no stream
              queue free while the 32 others are busy: the fail-closed path, a synchronize);
  burst-33    at 90 %: 32 streams each hold a 0.9 ms kernel while 20 x 1 ms kernels go to a 33rd, twice
              (test_interposer_fail_closed.py's case);
  capture     at 30 %: 20 x 2 ms kernels captured into a graph, the 40 ms graph launched once and waited for
              (test_interposer_exit_capture.py's measured case).
Per launch: the fake's counters (event records, event queries, elapsed-time calls: every call any thread of the
process made, the watcher's included) over the launch calls, between the `calls` lines around the loop (capture:
around the graph's launch, per graph). Per harvest: the library's stats line (HAMI_LAUNCH_STATS=1, the whole
process): elapsed-time calls and asks that found a mark not completed over its collections; a build that does not
count its collections (main before this change) shows none. charge: what the library charged (its region's busy
time) over the GPU time the fake gave the process in the loop. Figures of the fake libcuda on whatever machine runs
it, never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/stream_calls.py --out /tmp/sc.json --rounds 3 \\
        --lib before=/tmp/main-csrc --lib after=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import launch_path_cost as lpc  # noqa: E402  (the fake benches' shared record and build helpers)
import region  # noqa: E402 - the region layout, read through cffi (launch_path_cost put its folder on the path)
from fake_sharing_cases import tenant_env  # noqa: E402

SAVE = ("ctx", "0", "launch", "kernel", "1", "10", "sleep", "200")
BURST = ("streams", "32", "900", "20", "1000")
CAPTURE = ("capture", "0x3000", "launchon", "0x3000", "20", "2000", "endcapture", "0x3000", "calls", "graphlaunch",
           "0x3001", "1", "calls")
CASES: dict[str, tuple[int, tuple[str, ...]]] = {
    **{f"streams-{n}": (90, (*SAVE, "calls", "graphs", "100", str(n), "0", "{s}", "calls")) for n in (1, 4, 16, 33)},
    "burst-33": (90, (*SAVE, "calls", *BURST, "sleep", "100", *BURST, "calls")),
    "capture": (30, (*SAVE, *CAPTURE)),
}
STATS = re.compile(r"launch stats: (\d+) measured launches.*?per launch [\d.]+ event records, [\d.]+ event queries, "
                   r"([\d.]+) elapsed-time calls")
HARVESTS = re.compile(r"harvests (\d+), (\d+) asks not completed")


def calls_per_launch(stdout: str, case: str) -> dict[str, float]:
    """The fake's records, queries and elapsed-time calls between the run's two `calls` lines, per launch call (per
    graph launch for capture: its one launch)."""
    calls = [list(map(int, ln.split()[1:])) for ln in stdout.splitlines() if ln.startswith("calls ")]
    d = [b - a for a, b in zip(calls[0], calls[1], strict=True)]
    launches = d[0] if case != "capture" else 1
    return {"launches": launches, "records": d[1] / launches, "queries": d[2] / launches,
            "elapsed": d[3] / launches}


def run_case(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, secs: float) -> dict[str, float]:
    """One run's calls per launch, and per harvest where the build's stats line counts its collections."""
    limit, words = CASES[case]
    env = tenant_env(fake_dir, lib, tmp, "t", {"CUDA_DEVICE_SM_LIMIT": str(limit),
                                                "GPU_CORE_UTILIZATION_POLICY": "force"})
    args = [w.format(s=f"{secs:g}") for w in words]
    proc = subprocess.run([str(app), *args], env=env, capture_output=True, text=True, timeout=secs + 60)
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith(("graphs ", "streams ", "graphlaunch "))]
    if proc.returncode != 0 or not rows or any(w[1] != "0" for w in rows):
        raise RuntimeError(f"{case}: driver_app failed: {proc.stdout.strip()[-300:]} {proc.stderr.strip()[-300:]}")
    res = calls_per_launch(proc.stdout, case)
    gpu = sum(float(w[3] if w[0] == "graphlaunch" else w[4]) for w in rows)  # the fake's GPU time for the process
    with region.SharedRegion(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]) as reg:
        res["charge_ratio"] = reg.busy_ns(0) / 1e9 / gpu  # what the library charged over it (+ SAVE's 10 us)
    st, hv = STATS.search(proc.stderr), HARVESTS.search(proc.stderr)
    if st and hv and int(hv.group(1)):
        harvests = int(hv.group(1))
        res.update(harvests=harvests, elapsed_per_harvest=int(st.group(1)) * float(st.group(2)) / harvests,
                   misses_per_harvest=int(hv.group(2)) / harvests)
    return res


def cell(runs: list[dict[str, float]], key: str, fmt: str = ".2f") -> str:
    """The median of key over the runs (and their range), '-' where the build does not report it."""
    xs = [r[key] for r in runs if key in r]
    if not xs:
        return "-"
    return f"{statistics.median(xs):{fmt}} ({min(xs):{fmt}}-{max(xs):{fmt}})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lpc.add_record_args(ap)
    lpc.add_round_args(ap)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    a = ap.parse_args()
    lpc.check_round_args(ap, a)
    cases = lpc.parse_cases(ap, a.cases, CASES)
    raw = lpc.run_rounds(ap, a, cases, "sc-", lambda app, fake_dir, lib, tmp, case: run_case(
        app, fake_dir, lib, tmp, case, a.seconds))
    result = lpc.record_head(a, seconds=a.seconds, raw=raw)
    lines = [*lpc.record_title("Driver calls per launch and per harvest with busy streams", result, a.note),
             "Median (min-max) of the runs. Per launch: the fake's counters between the `calls` lines (capture: per "
             "graph launch). Per harvest: the library's stats line, the whole process. charge: charged / the GPU time "
             "the fake gave.", "",
             "| case | build | launches | records / launch | queries / launch | elapsed-time calls / launch | "
             "harvests | elapsed-time calls / harvest | asks not completed / harvest | charge |",
             "|---|---|---|---|---|---|---|---|---|---|",
             *lpc.case_rows(raw, lambda runs: " | ".join([
                 cell(runs, "launches", ".0f"), cell(runs, "records"), cell(runs, "queries"), cell(runs, "elapsed"),
                 cell(runs, "harvests", ".0f"), cell(runs, "elapsed_per_harvest"),
                 cell(runs, "misses_per_harvest"), cell(runs, "charge_ratio")]))]
    return lpc.write_record(a, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
