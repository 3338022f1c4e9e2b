"""What the library costs a launch-bound program (issue 18): the small-batch inference loop
(interposer/programs.py infer, ~20 us of host time per launch) alone with no preload and under library
variants, interleaved ABAB... on one pinned CPU core, then pairs (native, and limited under each variant)
with the two tenants on two other cores.

Variants: the library built from a source folder with extra -D flags and run with extra environment, e.g.
    --variant coarse=hami_plugins_nvidia/hami_plugins_nvidia/csrc: \
    --variant precise=hami_plugins_nvidia/hami_plugins_nvidia/csrc::HAMI_SM_PRECISE=1
Library runs alone use CUDA_DEVICE_SM_LIMIT=--limit under GPU_CORE_UTILIZATION_POLICY=force (a limit the
program never reaches) and HAMI_LAUNCH_STATS=1, so each run also reports the library's own host time per
launch and its driver calls per launch; a variant's own environment overrides them (CUDA_DEVICE_SM_LIMIT= with
no value: no limit). A fourth field pins that variant's alone runs to other cores (`NAME=CSRC:::2,3`), and CSRC
`native` runs the program with no preload (a native baseline on those cores). Pairs run under --pair-policy
(default: `default`).

Alone, paired (the default, issue 18 inferalone): record 13's three 4 s rounds of native then library read 85.3 /
91.6 / 102.8 % of native on one H200 host, which drifts between two speeds; three rounds cannot resolve 5 %. So
native and every library variant each run as ONE warm worker (programs.py with BENCH_WINDOWS=1), all pinned to the
same core, taking turns in short windows (--window, default 0.25 s): --blocks blocks, each the arms forward then
backward (native, lib, lib, native), each library arm on its own node board (two arms on one board would see each
other as a neighbour). The arm not measuring is stopped (SIGSTOP: its threads, the library's watcher
too, take nothing from the measuring one) and blocked on its stdin. Per block, an arm's rate sum over native's; the
statistic is the median of those block ratios with a bootstrap interval (bench/paired_alone.py), in the JSON's
`paired`; `alone` keeps each arm's window rates and its stats line as before. One difference from a tenant truly
alone: NVML lists the stopped native worker's context, so the library counts one process beside it (K = 1) and its
few precise spans take the deferred-charge path (the stats line's "charges deferred"): more library work, never
less, so the paired figure errs against the library. --alone rounds: the rounds as before (--rounds x --seconds).

--ladder (issue18_gpu.sh stage 9): the variants are rungs, each one thing more than the last; alone runs only
(no pairs, no busy probe), the order reversed every other round (ABC.. CBA..) so drift hits every rung alike; the
JSON's `ladder` lists the rungs in order, which bench/launch_ladder.py prints as a table (never judged).

Pairs: per repetition the native pair, then each --pairs variant at each --pair-limits; --pair-alternate reverses the
variants' order every other repetition (an A/B of two variants on a drifting host: A B, B A, A B).

Reported per run: the rate, the loop's own time per step (10/50/90th percentiles), the host time per launch
(step time / launches per step, launches counted by the library's stats) and the library's stats line. The
native loop on the H200 host ran in two modes (121-138 or 188-264 passes/s within one call): rates that
split into two clusters (a gap of more than 20 % between neighbours) are reported as two modes, not one
median. Writes launch-cost.json and launch-cost.log under --out.

    PYTHONUNBUFFERED=1 python3 hami_plugins_nvidia/bench/launch_cost.py --out $OUT/lc --variant ...
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))

import build  # noqa: E402 - standalone module: compiles csrc/*.c with the system C compiler
import paired_alone as pa  # noqa: E402 - the paired alone statistic (standard library only)
import real_workloads as rw  # noqa: E402 - the bench's worker harness

WARMUP_STEPS = 5  # programs.py infer runs 5 passes before its window


def build_variant(name: str, csrc: Path, defines: list[str], out: Path) -> Path:
    return build.build_library(out / name, csrc, defines)


NATIVE = "native"  # a variant's CSRC that means no preload


def parse_variant(text: str) -> tuple[str, Path | None, list[str], dict[str, str], set[int] | None]:
    """NAME=CSRC_DIR[:DEFINE,DEFINE[:ENV=VALUE,ENV=VALUE[:CORE,CORE]]]; CSRC_DIR `native`: no preload (None)."""
    name, sep, rest = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.+-]{1,40}", name) or name == NATIVE:
        raise SystemExit(f"--variant {text!r}: expected NAME=CSRC_DIR[:DEFINES[:ENV=VALUE,...[:CORES]]] "
                         "(NAME: letters, digits, _.+-, not 'native')")
    csrc, _, tail = rest.partition(":")
    defs, _, tail = tail.partition(":")
    envs, _, cores_text = tail.partition(":")
    env = {}
    for item in filter(None, envs.split(",")):
        k, eq, v = item.partition("=")
        if not eq or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", k):
            raise SystemExit(f"--variant {text!r}: bad environment item {item!r} (expected NAME=VALUE)")
        env[k] = v
    defines = [d for d in defs.split(",") if d]
    if any(not re.fullmatch(r"[A-Z_][A-Z0-9_]*(=[A-Za-z0-9_]+)?", d) for d in defines):
        raise SystemExit(f"--variant {text!r}: bad define (expected NAME or NAME=VALUE)")
    cores = None
    if cores_text:
        try:
            cores = {int(c) for c in cores_text.split(",")}
        except ValueError:
            raise SystemExit(f"--variant {text!r}: bad cores {cores_text!r} (expected core numbers like 2,3)") from None
    if csrc == NATIVE and (defines or env):
        raise SystemExit(f"--variant {text!r}: a native variant takes no defines or environment")
    return name, None if csrc == NATIVE else Path(csrc), defines, env, cores


def parse_cores(text: str) -> list[set[int]]:
    """'2;6' or '2,3;6,7': the CPU cores of the first worker (alone runs, first tenant) and of the second."""
    try:
        sets = [{int(c) for c in part.split(",") if c.strip()} for part in text.split(";")]
    except ValueError:
        raise SystemExit(f"--cores {text!r}: expected core numbers like '2;6' or '2,3;6,7'") from None
    if len(sets) != 2 or not all(sets) or sets[0] & sets[1]:
        raise SystemExit(f"--cores {text!r}: two disjoint, non-empty sets of cores")
    return sets


def parse_pair_limits(item: str) -> tuple[int, int, int | None]:
    """'50+50' or '30+70x1' (only in the first repetition): the two limits and the repetitions (None = all)."""
    pair, _, times = item.partition("x")
    lo, plus, hi = pair.partition("+")
    if (not plus or not lo.isdigit() or not hi.isdigit() or not (0 < int(lo) <= 100 and 0 < int(hi) <= 100)
            or (times and not (times.isdigit() and int(times) > 0))):
        raise SystemExit(f"--pair-limits {item!r}: expected two percentages like 50+50, optionally x<repetitions>")
    return int(lo), int(hi), int(times) if times else None


def modes(values: list[float], gap: float = 0.2) -> dict:
    """One median, or two modes when the sorted values split with a gap of more than `gap` (relative)
    between neighbours: the largest such gap separates a low and a high cluster."""
    v = sorted(x for x in values if x)
    if not v:
        return {"modes": 0}
    best = max(((v[i + 1] / v[i], i) for i in range(len(v) - 1)), default=(1.0, -1))
    if best[0] <= 1 + gap:
        return {"modes": 1, "median": round(statistics.median(v), 2), "n": len(v)}
    lo, hi = v[:best[1] + 1], v[best[1] + 1:]
    return {"modes": 2, "low": {"median": round(statistics.median(lo), 2), "n": len(lo)},
            "high": {"median": round(statistics.median(hi), 2), "n": len(hi)}}


def launches_per_step(res: dict) -> float | None:
    """Launches per loop step from the library's stats line (measured launches over the steps it ran)."""
    m = re.match(r"(\d+) measured launches", res.get("launch_stats", ""))
    if not m or not res.get("rate") or not res.get("seconds"):
        return None
    return int(m.group(1)) / (res["rate"] * res["seconds"] + WARMUP_STEPS)


def summary(res: dict, lps: float | None) -> dict:
    step = res.get("step_ms") or {}
    host_us = round(1e3 * step["p50"] / lps, 2) if lps and step.get("p50") else None
    # programs.py infer: each pass split at its host sync (submit: the launches; sync: the wait for the GPU)
    split = {k: res[k] for k in ("submit_ms", "sync_ms") if isinstance(res.get(k), dict)}
    return {"rate": res.get("rate"), "step_ms": step, "host_us_per_launch": host_us, **split,
            "gpu_time_charged": res.get("gpu_busy_fraction"), "launch_stats": res.get("launch_stats"),
            "error": res.get("error"),
            **({"nvml": [res.get("nvml_util"), res.get("nvml_proc_sm")]} if "nvml_util" in res else {})}


def fill_alone(out: dict, raw: dict[str, list[dict]]) -> None:
    """out["alone"] from the runs so far: each variant's runs summarised, its rates against the native median."""
    lps = [x for rs in raw.values() for r in rs if (x := launches_per_step(r))]
    lps_med = statistics.median(lps) if lps else None
    out["launches_per_step"] = round(lps_med, 1) if lps_med else None
    nat = [r.get("rate") for r in raw.get("native", []) if r.get("rate")]
    nat_med = statistics.median(nat) if nat else None
    for name, rs in raw.items():
        rates = [r.get("rate") for r in rs]
        out["alone"][name] = {"runs": [summary(r, lps_med) for r in rs], "rates": rates, "modes": modes(rates),
                              "pct_of_native_median": [round(100 * r / nat_med, 1) if r and nat_med else None
                                                       for r in rates]}


def save(out_dir: Path, out: dict) -> None:
    """Writes launch-cost.json with the pair sums as % of the median native pair so far."""
    nat_sums = [sum(r or 0 for r in p) for p in out["pairs"].get("native", [])]
    nat_sum = statistics.median(nat_sums) if nat_sums else None
    out["pair_sum_pct_of_native_pair_median"] = {
        key: [round(100 * sum(r or 0 for r in p) / nat_sum, 1) for p in (ent if key == "native" else ent["rates"])]
        for key, ent in out["pairs"].items()} if nat_sum else {}
    (out_dir / "launch-cost.json").write_text(json.dumps(out, indent=1))


class Arm:
    """One warm worker of the paired alone comparison: programs.py KIND WINDOW_S with BENCH_WINDOWS=1, pinned to
    `cpus`, its stdout read by a thread (lines queued), its stderr in a file (the library's lines at exit)."""

    READY_S = 240.0  # a worker's warm-up (torch import, model build) with the other arms on the same core

    def __init__(self, name: str, kind: str, window_s: float, env: dict[str, str], cpus: set[int], tmp: Path) -> None:
        self.name = name
        self.err_path = tmp / f"paired-{name}.err"
        self.lines: queue.Queue[str | None] = queue.Queue()
        pin = lambda: os.sched_setaffinity(0, cpus)  # noqa: E731 - every thread it starts inherits the core
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, str(rw.PROGRAMS), kind, f"{window_s:g}"],
                                         env={**env, "BENCH_WINDOWS": "1"}, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=pin)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, want, timeout: float) -> str | None:
        """The first stdout line for which want(line) holds, within timeout; None at EOF or timeout."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            if want(line):
                return line
        return None

    def signal(self, sig: int) -> None:
        try:
            self.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def window(self, timeout: float) -> dict:
        """One measured window: continued, asked, answered, stopped again."""
        self.signal(signal.SIGCONT)
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return {"error": "the worker is gone"}
        line = self.wait_line(lambda ln: ln.startswith("RESULT "), timeout)
        self.signal(signal.SIGSTOP)
        return json.loads(line[7:]) if line else {"error": f"no window within {timeout:g} s"}

    def finish(self, timeout: float = 60.0) -> dict:
        """Ends the worker: its last RESULT line (steps_total) and the library's launch stats line from stderr."""
        self.signal(signal.SIGCONT)
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        line = self.wait_line(lambda ln: ln.startswith("RESULT "), timeout)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        res = json.loads(line[7:]) if line else {"error": f"no last line (rc {self.proc.returncode})"}
        err = self.err_path.read_text(errors="replace")
        hami = [ln for ln in err.splitlines() if "HAMI-vgpu" in ln]
        res["interposer_lines"] = hami[:6]
        stats = [ln.split("launch stats: ", 1)[1] for ln in hami if "launch stats: " in ln]
        if stats:
            res["launch_stats"] = stats[-1]
        if "steps_total" not in res:
            res["stderr_tail"] = err.strip().splitlines()[-4:]
        return res


def paired_alone(arms: list[tuple[str, dict[str, str]]], kind: str, window_s: float, blocks: int, cpus: set[int],
                 tmp: Path, log, progress=None) -> dict:
    """The paired alone comparison (module docstring): arms (name, environment), native first; every arm one warm
    worker on `cpus`, blocks of windows forward then backward. Returns the windows (arm, block, half, rate, ...),
    each arm's last line (steps_total, launch stats) and the statistic; progress(result) after every block."""
    names = [n for n, _ in arms]
    workers = [Arm(n, kind, window_s, env, cpus, tmp) for n, env in arms]
    res: dict = {"window_s": window_s, "blocks_asked": blocks, "arms": names, "cores": sorted(cpus), "windows": [],
                 "workers": {}}
    try:
        ready = rw._programs().WINDOWS_READY
        for w in workers:  # warm-ups overlap; each worker stops as soon as it is ready
            if w.wait_line(lambda ln: ln == ready, Arm.READY_S) is None:
                res["error"] = f"{w.name}: never ready"
                return res
            w.signal(signal.SIGSTOP)
        by = dict(zip(names, workers, strict=True))
        for k in range(blocks):
            for half in (0, 1):
                for name in pa.block_order(names, half):
                    r = by[name].window(10 * window_s + 30)
                    win = {"arm": name, "block": k, "half": half, "t": round(time.time(), 3), "rate": r.get("rate"),
                           **{f: r[f] for f in ("steps", "step_ms", "submit_ms", "sync_ms", "gpu_busy_fraction", "error")
                              if f in r}}
                    res["windows"].append(win)
                    log.write(f"paired {name} block {k}.{half}: {json.dumps(r)}\n")
            log.flush()
            res["blocks_done"] = k + 1
            res["stats"] = pa.summarise(res["windows"], names)
            if progress:
                progress(res)
    finally:
        for w in workers:
            res["workers"][w.name] = w.finish() if w.proc.poll() is None else {"error": f"exited {w.proc.returncode}"}
            log.write(f"paired {w.name} last: {json.dumps(res['workers'][w.name])}\n")
        log.flush()
    res["stats"] = pa.summarise(res["windows"], names)
    return res


def fill_paired(out: dict, res: dict) -> None:
    """out["alone"] from a paired run: each arm's window rates (and its one launch stats line, on its last window's
    summary), against the median native window; out["paired"] the windows and the statistic."""
    lps_all = []
    for last in res.get("workers", {}).values():
        m = re.match(r"(\d+) measured launches", last.get("launch_stats", ""))
        if m and last.get("steps_total"):
            lps_all.append(int(m.group(1)) / last["steps_total"])
    lps = statistics.median(lps_all) if lps_all else None
    out["launches_per_step"] = round(lps, 1) if lps else None
    nat = [w["rate"] for w in res["windows"] if w["arm"] == pa.NATIVE and w.get("rate")]
    nat_med = statistics.median(nat) if nat else None
    for name in res["arms"]:
        wins = [w for w in res["windows"] if w["arm"] == name]
        runs = [summary(dict(w, seconds=res["window_s"]), lps) for w in wins]
        last = res.get("workers", {}).get(name, {})
        if runs and last.get("launch_stats"):
            runs[-1]["launch_stats"] = last["launch_stats"]
        rates = [w.get("rate") for w in wins]
        out["alone"][name] = {"runs": runs, "rates": rates, "modes": modes(rates),
                              "pct_of_native_median": [round(100 * r / nat_med, 1) if r and nat_med else None
                                                       for r in rates]}
    out["paired"] = dict(res)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--variant", action="append", default=[], help="NAME=CSRC_DIR[:DEFINES[:ENV=VALUE,...]]")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3, help="alone (--alone rounds, --ladder): rounds of native, "
                    "variant, variant, ...")
    ap.add_argument("--alone", choices=["paired", "rounds"], default="paired",
                    help="alone runs: paired (one warm worker an arm, short windows in ABBA blocks on one core) or "
                         "rounds (one process a run, --rounds x --seconds); --ladder always runs rounds")
    ap.add_argument("--window", type=float, default=0.25, help="paired: seconds a window (0.1-10)")
    ap.add_argument("--blocks", type=int, default=32, help="paired: blocks of windows, each ABBA (3-200)")
    ap.add_argument("--limit", type=int, default=70, help="SM limit of the library runs alone (force)")
    ap.add_argument("--cores", default="2;6", help="CPU cores: alone runs and first tenant; second tenant")
    ap.add_argument("--pairs", default="", help="variant names to run pairs with (default: all; none)")
    ap.add_argument("--pair-limits", default="50+50",
                    help="limits of the limited pairs, e.g. 50+50,30+70x1 (xN: only in the first N repetitions)")
    ap.add_argument("--pair-repeat", type=int, default=3, help="each pair (native too) this many times")
    ap.add_argument("--pair-policy", default="default", help="GPU_CORE_UTILIZATION_POLICY of the pairs")
    ap.add_argument("--pair-alternate", action="store_true",
                    help="the variants' pairs in reverse order every other repetition (A B, B A, ...: a host that "
                         "drifts hits every arm alike)")
    ap.add_argument("--kind", default="infer", help="program of interposer/programs.py (default: infer)")
    ap.add_argument("--ladder", action="store_true",
                    help="the variants are rungs of a ladder (issue18_gpu.sh stage 9): alone runs only, order reversed "
                         "every other round, the JSON lists them as `ladder`")
    ap.add_argument("--no-busy-probe", dest="busy_probe", action="store_false",
                    help="skip the busy probe (each variant once, unlimited, CUDA_TASK_PRIORITY=0: the program's "
                         "GPU demand, which the issue 18 judge needs to classify the launch-bound loop)")
    ap.add_argument("--nvml-util", action="store_true",
                    help="sample NVML's device and per-process utilization during every run (each run's nvml_util, "
                         "nvml_proc_sm; the pairs' `nvml` lists): the GPU's own busy figure beside the charge")
    args = ap.parse_args()
    if args.nvml_util:
        rw.CLOCK = rw.ClockSampler()
    if not args.variant:
        raise SystemExit("give at least one --variant")
    cores = parse_cores(args.cores)
    paired = args.alone == "paired" and not args.ladder
    if paired and not (0.1 <= args.window <= 10 and 3 <= args.blocks <= 200):
        raise SystemExit(f"--window {args.window:g} / --blocks {args.blocks}: 0.1-10 s and 3-200 blocks")
    limits = [parse_pair_limits(item) for item in args.pair_limits.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="hami-lc-"))
    libs: dict[str, Path] = {}
    envs: dict[str, dict[str, str]] = {}
    own_cores: dict[str, set[int]] = {}
    natives: list[str] = []  # variants with no preload (native baselines on their own cores)
    keys: dict[str, tuple[str, tuple[str, ...]]] = {}
    for v in args.variant:
        name, csrc, defines, env, vcores = parse_variant(v)
        if name in keys or name in natives:
            raise SystemExit(f"--variant {v!r}: the name {name!r} is given twice")
        if csrc is None:
            natives.append(name)
        else:  # one build per (sources, defines): a ladder's rungs mostly differ in environment only
            keys[name] = (str(csrc), tuple(defines))
            envs[name] = env
        if vcores:
            own_cores[name] = vcores
    # the distinct builds at once (stage 19's ladder has seven: one after another they took ~20 s of its ~2 minutes)
    first = {key: name for name, key in reversed(keys.items())}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futs = {key: pool.submit(build_variant, name, Path(key[0]), list(key[1]), tmp / "libs")
                for key, name in first.items()}
        built = {key: f.result() for key, f in futs.items()}
    libs.update({name: built[key] for name, key in keys.items()})
    if not libs:
        raise SystemExit("give at least one --variant with a library (CSRC_DIR, not native)")
    if args.ladder:
        args.pairs, args.busy_probe = "none", False
    rungs = [n for v in args.variant if (n := v.partition("=")[0])]
    if paired and (natives or own_cores):
        raise SystemExit("--alone paired: every arm runs on the first --cores set; variants with their own cores or "
                         "native baselines need --alone rounds or --ladder")
    out: dict = {"command": " ".join(sys.argv), "device": rw._device(), "cores": [sorted(c) for c in cores],
                 "limit_alone": args.limit, "alone_mode": "paired" if paired else "rounds", "alone": {}, "pairs": {}}
    if args.ladder:
        out["ladder"] = [{"name": n, "cores": sorted(own_cores.get(n, cores[0])), "native": n in natives,
                          "env": envs.get(n, {}), "defines": parse_variant(v)[2]}
                         for n, v in zip(rungs, args.variant, strict=True)]
    raw: dict[str, list[dict]] = {}
    with open(args.out / "launch-cost.log", "w") as log:
        b = rw.Bench(next(iter(libs.values())), tmp, log)
        lib_env = {"CUDA_DEVICE_SM_LIMIT": str(args.limit), "GPU_CORE_UTILIZATION_POLICY": "force",
                   "HAMI_LAUNCH_STATS": "1"}
        if paired:
            def progress(res: dict) -> None:
                fill_paired(out, res)
                save(args.out, out)
            # each library arm its own node board: on one board two arms taking turns would see each other as a
            # neighbour active within its 500 ms share window (not alone: another measurement path)
            res = paired_alone([("native", b.env(False))] + [(n, {**b.env(True, **{**lib_env, **envs[n]}),
                                                                  "LD_PRELOAD": str(libs[n]),
                                                                  "HAMI_NODE_BOARD": str(tmp / f"board-alone-{n}")})
                                                             for n in rungs],
                               args.kind, args.window, args.blocks, cores[0], tmp, log, progress)
            fill_paired(out, res)
            save(args.out, out)
        for k in range(0 if paired else args.rounds):  # ABAB...: native and every variant in turn, the same core unless it has its own
            order = ["native", *rungs]
            if args.ladder and k % 2:
                order.reverse()
            for name in order:
                where = own_cores.get(name, cores[0])
                if name == "native" or name in natives:
                    raw.setdefault(name, []).append(b.run(f"{name} #{k}", args.kind, args.seconds, False, where))
                else:
                    b.lib = libs[name]
                    raw.setdefault(name, []).append(b.run(f"{name} #{k}", args.kind, args.seconds, True, where,
                                                          **{**lib_env, **envs[name]}))
                if args.ladder:  # after every run: a step cut short by its timeout keeps the runs it finished
                    fill_alone(out, raw)
                    save(args.out, out)
            if args.ladder:
                out["rounds_done"] = k + 1
                save(args.out, out)
        if args.busy_probe:  # each variant once unlimited and measured (CUDA_TASK_PRIORITY=0): the program's demand
            for name, lib in libs.items():
                b.lib = lib
                pr = b.run(f"{name} busy probe", args.kind, args.seconds, True, cores[0],
                           **{"CUDA_TASK_PRIORITY": "0", "HAMI_LAUNCH_STATS": "1", **envs[name]})
                out.setdefault("busy_probe", {})[name] = {"gpu_busy_fraction": pr.get("gpu_busy_fraction"),
                                                          "rate": pr.get("rate"), "launch_stats": pr.get("launch_stats"),
                                                          "nvml": [pr.get("nvml_util"), pr.get("nvml_proc_sm")]}
        if not paired:
            fill_alone(out, raw)
        save(args.out, out)
        names = [] if args.pairs == "none" else args.pairs.split(",") if args.pairs else list(libs)
        pair_cpus = (cores[0], cores[1])
        if names:
            for k in range(args.pair_repeat):
                nat_pair = b.pair(f"pair native #{k}", (args.kind, args.kind), args.seconds, ({}, {}),
                                  preload=False, cpus=pair_cpus)
                out["pairs"].setdefault("native", []).append([x.get("rate") for x in nat_pair])
                if args.nvml_util:
                    out.setdefault("native_pair_nvml", []).append(  # beside "pairs", whose entries are rates
                        [[x.get("nvml_util"), x.get("nvml_proc_sm")] for x in nat_pair])
                for name in (names[::-1] if args.pair_alternate and k % 2 else names):
                    b.lib = libs[name]
                    for lo, hi, times in limits:
                        if times is not None and k >= times:
                            continue
                        pe = [{"CUDA_DEVICE_SM_LIMIT": str(p), "GPU_CORE_UTILIZATION_POLICY": args.pair_policy,
                               "HAMI_LAUNCH_STATS": "1", **envs[name]} for p in (lo, hi)]
                        pr = b.pair(f"pair {lo}+{hi} {name} #{k}", (args.kind, args.kind), args.seconds,
                                    (pe[0], pe[1]), cpus=pair_cpus)
                        ent = out["pairs"].setdefault(f"{lo}+{hi} {name}", {"rates": [], "charged": [], "stats": []})
                        ent["rates"].append([x.get("rate") for x in pr])
                        ent["charged"].append([x.get("gpu_busy_fraction") for x in pr])
                        ent["stats"].append([x.get("launch_stats") for x in pr])
                        if args.nvml_util:
                            ent.setdefault("nvml", []).append([[x.get("nvml_util"), x.get("nvml_proc_sm")]
                                                               for x in pr])
                save(args.out, out)  # after every repetition: a run cut short by a timeout keeps what it measured
    save(args.out, out)
    print(json.dumps({k: v for k, v in out.items() if k not in ("device", "alone")}), flush=True)
    print(json.dumps({n: {"modes": a["modes"], "pct": a["pct_of_native_median"]} for n, a in out["alone"].items()}),
          flush=True)
    if "paired" in out:
        print(json.dumps({"paired": out["paired"].get("stats")}), flush=True)


if __name__ == "__main__":
    main()
