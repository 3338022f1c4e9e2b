"""The library's driver calls per launch and per collection (harvest) with several busy streams, per library build
(issue 18: the launch path's driver calls must not grow with the number of busy streams).

Cases (driver_app words, alone on the fake's shared GPU, policy force, 200 ms idle first so credit is saved):
  streams-N   at 90 %: the CUDA-graphs program (`graphs 100 N 0 S`): a 100 us graph replayed on each of N streams,
              then a sync, step after step for --seconds (N = 1, 4, 16, 33; with 33 the last stream finds no stream
              queue free while the 32 others are busy: the fail-closed path, a synchronize);
  burst-33    at 90 %: 32 streams each hold a 0.9 ms kernel while 20 x 1 ms kernels go to a 33rd, twice
              (test_interposer_fail_closed.py's case);
  capture     at 30 %: 20 x 2 ms kernels captured into a graph, the 40 ms graph launched once and waited for
              (test_interposer_exit_capture.py's measured case);
  pair-N      switch charging (issue 18, others_idle): two tenants at 30 + 70 under default (switches charged while
              the pair contends, the default), each running the CUDA-graphs program `graphs 75 N 0 S` on the fake's
              time-sliced GPU of the graphs pair (2 ms slices, 130 us switches); per launch: both tenants' calls
              summed over both tenants' launches; charge: charged / (GPU time + switches into its context), the
              tenants' median; switches: the ms of switches into each context the library saw (its stats line),
              charged and not, both tenants summed;
  idle-31     switch charging's worst case (test_interposer_stream_calls.py): beside a neighbour on the board, at
              90 % with HAMI_SM_CHARGE_SWITCHES=1, a 3 ms kernel then 1 us kernels on 31 more streams (they all
              complete at once), a sync, then one launch on an idle stream, 5 times: per launch = that launch's
              calls (its queries: the stream-idle asks, plus a collection's);
  -ctx        (pair-N-ctx, idle-31-ctx) the same, every sync of the program a cuCtxSynchronize (driver_app
              DRIVER_SYNC=ctx; the H200 bench's graphs program syncs with torch.cuda.synchronize, which is one) instead
              of cuStreamSynchronize of the legacy stream: the library takes what a successful context sync covers
              as complete with no driver call (launch.c wait_end), a legacy-stream sync proves only that stream.
Pairs and idle: idle checks = the stats line's switch-charging idle checks (both tenants), the share that found the
process idle, and the share answered with no driver call (a build that does not count them shows none).
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
PAIR_FAKE = {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "130", "FAKE_CUDA_SYNC_POLL_US": "10"}
PAIRS = {f"pair-{n}{v}": n for n in (2, 8, 31) for v in ("", "-ctx")}
IDLE_STEP = ("launchon", "0x2000", "1", "3000", *(w for k in range(1, 32) for w in ("launchon", hex(0x2000 + k), "1", "1")),
             "sync", "calls", "launchon", "0x2001", "1", "1", "calls")
IDLE = (*SAVE, *IDLE_STEP * 5, "sync", "sleep", "50")
IDLES = ("idle-31", "idle-31-ctx")
ALL_CASES = (*CASES, *PAIRS, *IDLES)
CTX_SYNC = {"DRIVER_SYNC": "ctx"}  # the -ctx cases: every sync of the program is a cuCtxSynchronize
STATS = re.compile(r"launch stats: (\d+) measured launches.*?per launch [\d.]+ event records, [\d.]+ event queries, "
                   r"([\d.]+) elapsed-time calls")
HARVESTS = re.compile(r"harvests (\d+), (\d+) asks not completed")
SWITCHES = re.compile(r"switches charged ([\d.]+) ms, not ([\d.]+) ms")
IDLE_CHECKS = re.compile(r"idle checks (\d+), (\d+) found the process idle, (\d+) with no driver call")


def idle_checks(stderr: str, into: list[int]) -> None:
    """Adds the stats line's idle checks, those that found the process idle and those with no call to into."""
    m = IDLE_CHECKS.search(stderr)
    if m:
        for k in range(3):
            into[k] += int(m.group(k + 1))


def idle_shares(res: dict[str, float], checks: list[int]) -> None:
    """The idle checks' count and shares (found idle, no driver call) into res, where the build counts them."""
    if checks[0]:
        res.update(idle_checks=checks[0], idle_found=checks[1] / checks[0], idle_free=checks[2] / checks[0])


def calls_per_launch(stdout: str, case: str) -> dict[str, float]:
    """The fake's records, queries and elapsed-time calls between the run's two `calls` lines, per launch call (per
    graph launch for capture: its one launch)."""
    calls = [list(map(int, ln.split()[1:])) for ln in stdout.splitlines() if ln.startswith("calls ")]
    d = [b - a for a, b in zip(calls[0], calls[1], strict=True)]
    launches = d[0] if case != "capture" else 1
    return {"launches": launches, "records": d[1] / launches, "queries": d[2] / launches,
            "elapsed": d[3] / launches}


def counter_deltas(stdout: str) -> list[list[int]]:
    """The fake's counters between each pair of `calls` lines (first-second, third-fourth, ...)."""
    calls = [list(map(int, ln.split()[1:])) for ln in stdout.splitlines() if ln.startswith("calls ")]
    return [[b - a for a, b in zip(c0, c1, strict=True)] for c0, c1 in zip(calls[::2], calls[1::2], strict=True)]


def run_pair(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, secs: float) -> dict[str, float]:
    """Two graphs tenants at 30 + 70 under default: both tenants' calls per launch, the median charge ratio."""
    streams, extra = PAIRS[case], CTX_SYNC if case.endswith("-ctx") else {}
    words = ["ctx", "0", *SAVE, "calls", "graphs", "75", str(streams), "0", f"{secs:g}", "calls"]
    procs = [subprocess.Popen([str(app), *words], env=tenant_env(fake_dir, lib, tmp, name, {
        "CUDA_DEVICE_SM_LIMIT": str(limit), "GPU_CORE_UTILIZATION_POLICY": "default", **PAIR_FAKE, **extra}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name, limit in (("a", 30), ("b", 70))]
    tot, ratios, hv, sw, checks = [0] * 4, [], [0, 0, 0.0], [0.0, 0.0], [0, 0, 0]
    for name, p in zip("ab", procs, strict=True):
        out, err = p.communicate(timeout=secs + 60)
        idle_checks(err, checks)
        st, h, s = STATS.search(err), HARVESTS.search(err), SWITCHES.search(err)
        if s:  # the switches into its context the library saw, charged and not (ms)
            sw = [sw[0] + float(s.group(1)), sw[1] + float(s.group(2))]
        if st and h:  # the whole process's collections and their elapsed-time calls
            hv = [hv[0] + int(h.group(1)), hv[1] + int(h.group(2)), hv[2] + int(st.group(1)) * float(st.group(2))]
        rows = [ln.split() for ln in out.splitlines() if ln.startswith("graphs ")]
        if p.returncode != 0 or not rows or rows[0][1] != "0":
            raise RuntimeError(f"{case}: driver_app failed: {out.strip()[-300:]} {err.strip()[-300:]}")
        tot = [t + d for t, d in zip(tot, counter_deltas(out)[0][:4], strict=True)]
        held = float(rows[0][4]) + float(rows[0][6])  # the fake's GPU time for it and its switch-ins
        with region.SharedRegion(str(tmp / name / "region")) as reg:
            ratios.append(reg.busy_ns(0) / 1e9 / held)
    res = {"launches": tot[0], "records": tot[1] / tot[0], "queries": tot[2] / tot[0], "elapsed": tot[3] / tot[0],
           "charge_ratio": statistics.median(ratios), "sw_charged_ms": sw[0], "sw_free_ms": sw[1]}
    if hv[0]:
        res.update(harvests=hv[0], elapsed_per_harvest=hv[2] / hv[0], misses_per_harvest=hv[1] / hv[0])
    idle_shares(res, checks)
    return res


def run_idle(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str) -> dict[str, float]:
    """idle-31: the five probe launches' calls, per launch, and the most queries one of them made."""
    nb = subprocess.Popen([str(app), "ctx", "0", "launch", "kernel", "1", "10", "ready", "sleep", "3000"],
                          env=tenant_env(fake_dir, lib, tmp, "b", {"CUDA_DEVICE_SM_LIMIT": "50",
                                                                    "GPU_CORE_UTILIZATION_POLICY": "default"}),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert nb.stdout is not None
        while (line := nb.stdout.readline()) and line.strip() != "ready":  # launched: on the board for 500 ms
            pass
        env = tenant_env(fake_dir, lib, tmp, "a", {"CUDA_DEVICE_SM_LIMIT": "90", "GPU_CORE_UTILIZATION_POLICY": "force",
                                                    "HAMI_SM_CHARGE_SWITCHES": "1",
                                                    **(CTX_SYNC if case.endswith("-ctx") else {})})
        proc = subprocess.run([str(app), "ctx", "0", *IDLE], env=env, capture_output=True, text=True, timeout=60)
    finally:
        nb.kill()
        nb.wait()
    per = counter_deltas(proc.stdout)
    if proc.returncode != 0 or len(per) != 5 or any(d[0] != 1 for d in per) or "(0.0 % coarse)" not in proc.stderr:
        raise RuntimeError(f"{case}: driver_app failed: {proc.stdout.strip()[-300:]} {proc.stderr.strip()[-300:]}")
    res = {"launches": 5, "records": sum(d[1] for d in per) / 5, "queries": sum(d[2] for d in per) / 5,
           "elapsed": sum(d[3] for d in per) / 5, "max_queries": max(d[2] for d in per)}
    checks = [0, 0, 0]
    idle_checks(proc.stderr, checks)
    idle_shares(res, checks)
    return res


def run_case(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, secs: float) -> dict[str, float]:
    """One run's calls per launch, and per harvest where the build's stats line counts its collections."""
    if case in PAIRS:
        return run_pair(app, fake_dir, lib, tmp, case, secs)
    if case in IDLES:
        return run_idle(app, fake_dir, lib, tmp, case)
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
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(ALL_CASES))
    a = ap.parse_args()
    lpc.check_round_args(ap, a)
    cases = lpc.parse_cases(ap, a.cases, ALL_CASES)
    raw = lpc.run_rounds(ap, a, cases, "sc-", lambda app, fake_dir, lib, tmp, case: run_case(
        app, fake_dir, lib, tmp, case, a.seconds))
    result = lpc.record_head(a, seconds=a.seconds, raw=raw)
    lines = [*lpc.record_title("Driver calls per launch and per harvest with busy streams", result, a.note),
             "Median (min-max) of the runs. Per launch: the fake's counters between the `calls` lines (capture: per "
             "graph launch). Per harvest: the library's stats line, the whole process. charge: charged / the GPU time "
             "the fake gave.", "",
             "| case | build | launches | records / launch | queries / launch | most queries of one launch | "
             "elapsed-time calls / launch | harvests | elapsed-time calls / harvest | asks not completed / harvest | "
             "charge | switches charged / not, ms (pairs: both tenants) | idle checks | found idle | no call |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
             *lpc.case_rows(raw, lambda runs: " | ".join([
                 cell(runs, "launches", ".0f"), cell(runs, "records"), cell(runs, "queries"),
                 cell(runs, "max_queries", ".0f"), cell(runs, "elapsed"),
                 cell(runs, "harvests", ".0f"), cell(runs, "elapsed_per_harvest"),
                 cell(runs, "misses_per_harvest"), cell(runs, "charge_ratio"),
                 f"{cell(runs, 'sw_charged_ms', '.1f')} / {cell(runs, 'sw_free_ms', '.1f')}",
                 cell(runs, "idle_checks", ".0f"), cell(runs, "idle_found"), cell(runs, "idle_free")]))]
    return lpc.write_record(a, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
