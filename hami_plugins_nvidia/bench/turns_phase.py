"""Where each tenant's GPU time falls in the turns period (fake libcuda, issue 18 turnsplit): a phase profile.

Runs one of bench/turns.py's pairs (default: the train case at 30+70, GPU_CORE_UTILIZATION_POLICY=default, turns on by
default) and, while it runs, reads the fake GPU's shared state (fake_cuda.c struct sg_gpu: each process's ring of
(t, done) points, the start and end of each of its turns on the time-sliced GPU, CLOCK_MONOTONIC as the library's
turns clock). Each tenant's running time over the pair's common measured window is binned by phase (t mod
TURN_PERIOD_NS, 100 ms, 1 ms bins); a window's owner is the tenant running most in it. Per run: each tenant's time
inside its own window and inside the other's, and the time nobody ran (idle or switching) in each window, % of the
wall. Builds: --lib NAME=CSRC_DIR (as turns.py), run interleaved over --rounds. Figures of the fake on whatever
machine runs it, never hardware figures.

    .venv/bin/python hami_plugins_nvidia/bench/turns_phase.py --lib main=/tmp/main-csrc --rounds 2 --json out.json
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import turns as T  # noqa: E402 - the pair's programs and environments
from launch_path_cost import alternating, build_libs, build_tools  # noqa: E402

PERIOD_NS = 100_000_000  # launch_int.h TURN_PERIOD_NS
SG_PTS, SG_PROCS = 256, 8  # fake_cuda.c


class SgProc(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_int), ("queued", ctypes.c_int64), ("done", ctypes.c_int64),
                ("switched", ctypes.c_int64), ("head", ctypes.c_int), ("n", ctypes.c_int), ("lastk", ctypes.c_int),
                ("pt_t", ctypes.c_int64 * SG_PTS), ("pt_d", ctypes.c_int64 * SG_PTS)]


class SgGpu(ctypes.Structure):
    _fields_ = [("lock", ctypes.c_int), ("last", ctypes.c_int64), ("run", ctypes.c_int), ("slice_end", ctypes.c_int64),
                ("last_ran", ctypes.c_int), ("switch_end", ctypes.c_int64), ("p", SgProc * SG_PROCS)]


def sample(procs: list[subprocess.Popen], gpu: Path) -> tuple[dict[int, dict[int, int]], dict[int, int],
                                                               dict[int, list[tuple[int, int]]]]:
    """Every few ms until the pair ends: each slot's (t, done) points (the newest copy of each), slot -> pid, and
    each slot's samples of (time, its work queued and not done, ns)."""
    while not gpu.exists() or gpu.stat().st_size < ctypes.sizeof(SgGpu):
        if all(p.poll() is not None for p in procs):
            raise RuntimeError("the pair ended before the fake GPU was set up")
        time.sleep(0.001)
    pts: dict[int, dict[int, int]] = {}
    pids: dict[int, int] = {}
    backlog: dict[int, list[tuple[int, int]]] = {}
    with open(gpu, "r+b") as f:
        m = mmap.mmap(f.fileno(), ctypes.sizeof(SgGpu))
        g = SgGpu.from_buffer(m)
        while any(p.poll() is None for p in procs):
            for i in range(SG_PROCS):
                pr = g.p[i]
                if pr.pid <= 0:
                    continue
                pids[i] = pr.pid
                backlog.setdefault(i, []).append((time.monotonic_ns(), pr.queued - pr.done))
                d = pts.setdefault(i, {})
                for k in range(min(pr.n, SG_PTS)):
                    j = (pr.head + k) % SG_PTS
                    d[pr.pt_t[j]] = pr.pt_d[j]
            time.sleep(0.003)  # a tenant's turns on the fake are >= ~20 us: 256 points hold > 3 ms of them
        del g
    return pts, pids, backlog


def profile(pts: dict[int, int], lo: float, hi: float) -> list[float]:
    """ns of running time in each 1 ms phase bin over [lo, hi) (ns)."""
    bins = [0.0] * 100
    items = sorted(pts.items())
    for (ta, da), (tb, db) in zip(items, items[1:], strict=False):
        if db <= da:
            continue
        x, b = max(ta, lo), min(tb, hi)
        while x < b:
            nxt = min(b, x - x % 1_000_000 + 1_000_000)
            bins[int(x % PERIOD_NS) // 1_000_000] += nxt - x
            x = nxt
    return bins


def one(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, limits: tuple[int, int], secs: float,
        arm: str = "default") -> dict:
    prog = [w.format(secs=secs) for w in T.PROGRAMS[case]]
    envs = [T.tenant_env(fake_dir, lib, tmp, n, lim, case, arm) for n, lim in zip("ab", limits, strict=True)]
    procs = [subprocess.Popen([str(app), "ctx", "0", *prog], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for e in envs]
    pts, pids, backlog = sample(procs, tmp / "gpu")
    outs = [p.communicate(timeout=120) for p in procs]
    slot = {pid: i for i, pid in pids.items()}
    walls = []
    for p, (out, err) in zip(procs, outs, strict=True):
        words = [ln.split() for ln in out.splitlines() if ln.startswith(prog[0] + " ")]
        if p.returncode != 0 or not words:
            raise RuntimeError(f"driver_app failed ({p.returncode}): {err.strip()[-300:]}")
        walls.append((float(words[-1][2]), float(words[-1][3])))
    lo, hi = max(w[0] for w in walls) * 1e9, min(w[1] for w in walls) * 1e9
    bins = [profile(pts.get(slot.get(p.pid, -1), {}), lo, hi) for p in procs]
    wall, periods = hi - lo, (hi - lo) / PERIOD_NS
    # the windows follow board order (turns.c turn_window): A's is the one, of [0, a) and [b, 100), it runs most in
    a_first = round(100 * limits[0] / sum(limits))
    b_first = round(100 * limits[1] / sum(limits))
    if sum(bins[0][:a_first]) >= sum(bins[0][100 - a_first:]):
        own = [range(0, a_first), range(a_first, 100)]
    else:
        own = [range(100 - a_first, 100), range(0, b_first)]

    def pct(x: float) -> float:
        return round(100 * x / wall, 2)

    row: dict = {"wall_s": round(wall / 1e9, 3)}
    for t, name in enumerate("AB"):
        other = own[1 - t]
        row[f"{name} in own"] = pct(sum(bins[t][i] for i in own[t]))
        row[f"{name} in other's"] = pct(sum(bins[t][i] for i in other))
        row[f"nobody in {name}'s"] = pct(len(own[t]) * 1e6 * periods - sum(bins[0][i] + bins[1][i] for i in own[t]))
        # turnloss: where in the window nobody ran: its first EDGE_MS (the handover: the new owner's detection and
        # the previous owner's drain), its last EDGE_MS (the early stop before the window's end) and the rest (the
        # owner's host gaps and credit waits in its window)
        idle = [1e6 * periods - bins[0][i] - bins[1][i] for i in own[t]]
        row[f"nobody in {name}'s start/mid/end"] = [pct(sum(idle[:EDGE_MS])), pct(sum(idle[EDGE_MS:-EDGE_MS])),
                                                    pct(sum(idle[-EDGE_MS:]))]
        stats = T.turn_stats(outs[t][1])
        row[f"{name} stats"] = {k: stats.get(k) for k in ("credit_held_ms", "capped_ms", "held_idle_ms",
                                                           "turn_held_ms", "turn_offs", "kt_priced", "kt_keyed", "kt_keys")}
    # each tenant's work queued on the fake GPU (not done), mean ms by 10 ms phase bin: the backlog it carries into
    # the other's window
    for t, name in enumerate("AB"):
        sums, cnt = [0.0] * 10, [0] * 10
        for ts, q in backlog.get(slot.get(procs[t].pid, -1), []):
            if lo <= ts < hi:
                k = int(ts % PERIOD_NS) // 10_000_000
                sums[k] += q / 1e6
                cnt[k] += 1
        row[f"{name} queued ms by 10 ms phase"] = [round(x / c, 1) if c else None for x, c in zip(sums, cnt, strict=True)]
    # each tenant's backlog as its own window ends (mean over the window's last END_MS): what it carries into the
    # next owner's window, which its end-of-window test is there to keep near 0 (trainsplit)
    for t, name in enumerate("AB"):
        end = own[t][-1] + 1  # ms into the period
        row[f"{name} queued ms at its window's end"] = window_end_backlog(
            backlog.get(slot.get(procs[t].pid, -1), []), lo, hi, end)
    row["profile_pct"] = [[round(100 * v / (periods * 1e6), 1) for v in b] for b in bins]
    return row


EDGE_MS = 2  # turnloss: the ms at each end of a window whose idle time counts as the handover's / the early stop's
END_MS = 3  # the window's last ms over which its owner's backlog is averaged (the sampler reads every ~3 ms)


def window_end_backlog(samples: list[tuple[int, int]], lo: float, hi: float, end_ms: int) -> float | None:
    """Mean of the (time, queued ns) samples within [lo, hi) whose phase lies in the END_MS before end_ms (ms into
    the period, 1..100), ms; None when none does."""
    vals = [q for ts, q in samples
            if lo <= ts < hi and 0 <= (end_ms * 1_000_000 - ts % PERIOD_NS) % PERIOD_NS - 1 < END_MS * 1_000_000]
    return round(sum(vals) / len(vals) / 1e6, 2) if vals else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", action="append", default=[], help="NAME=CSRC_DIR[:DEFINE,...] (default: this tree)")
    ap.add_argument("--case", default="train", choices=[c for c in T.GPU_CASES if c not in T.MIXED and c not in T.SECOND])
    ap.add_argument("--limits", default="30+70")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--arms", default="default", help="comma-separated arms of turns.py (e.g. default,gap500), interleaved")
    ap.add_argument("--json", type=Path, help="write every run's row (with its phase profile) here")
    a = ap.parse_args()
    if not 1 <= a.rounds <= 20 or not 1.0 <= a.seconds <= 30.0:
        ap.error("--rounds 1..20, --seconds 1..30")
    limits = T.parse_pairs(ap, a.limits)[0]
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="hami-phase-") as d:
        tmp = Path(d)
        fake_dir, app = build_tools(tmp)
        libs = build_libs(ap, a.lib, tmp / "lib")
        arms = [x for x in a.arms.split(",") if x]
        if not arms or any(x not in T.ARMS or T.ARMS[x] is None for x in arms):
            ap.error(f"--arms {a.arms!r}: library arms of turns.py only")
        labels = {(n if len(arms) == 1 else f"{arm}@{n}" if len(libs) > 1 else arm): (n, arm) for n in libs for arm in arms}
        for n, _, name in alternating(a.rounds, [a.case], list(labels)):
            lib_name, arm = labels[name]
            row = one(app, fake_dir, libs[lib_name], tmp / f"run{n}", a.case, limits, a.seconds, arm)
            rows.setdefault(name, []).append(row)
            print(name, json.dumps({k: v for k, v in row.items() if k != "profile_pct"}), flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
