"""Real framework programs under the interposer on one GPU (issue 18): a transformer training loop, a
small-batch inference loop, CUDA graphs on two streams, JAX (which preallocates) and CuPy, alone and in
pairs of "containers" (each its own shared region, one node board), with and without SM limits.

Usage (on the GPU machine; builds libvgpu.so from this checkout with the system C compiler):
    PYTHONUNBUFFERED=1 python3 hami_plugins_nvidia/bench/real_workloads.py --out $OUT --part train|other
Writes <date>-<tag>-real-workloads-<part>.json and a log. Every program is written here from framework
layers (no downloads). Each measurement is a separate worker process (this file with --worker), started
LD_PRELOADed or not (`interposer/programs.py`); pairs are released together once every worker finished its warm-up
(Bench.together) so they measure the same window.
Each tenant's throughput is judged against its own solo unlimited throughput from the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PKG = HERE.parent / "hami_plugins_nvidia"
PROGRAMS = PKG / "interposer" / "programs.py"
MIB = 1 << 20


# ------------------------------------------------------------------ workers: interposer/programs.py

# ------------------------------------------------------------------ driver (parent process)

def _programs():
    """interposer/programs.py, the workers' script: its release() is the bench's side of their GO handshake."""
    spec = importlib.util.spec_from_file_location("hami_bench_programs", PROGRAMS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Bench:
    def __init__(self, lib: Path, tmp: Path, log) -> None:
        self.lib, self.tmp, self.log = lib, tmp, log
        self.n = 0

    def env(self, preload: bool, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CUDA_DEVICE_", "CUDA_TASK", "HAMI_", "GPU_CORE", "LD_PRELOAD", "BENCH_"))}
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = "0.3"  # two JAX tenants at the default 75 % cannot both start
        if preload:
            self.n += 1
            env.update(LD_PRELOAD=str(self.lib), HAMI_NODE_BOARD=str(self.tmp / "board"),
                       CUDA_DEVICE_MEMORY_SHARED_CACHE=str(self.tmp / f"ctr{self.n}.cache"),
                       BENCH_REGION=str(self.tmp / f"ctr{self.n}.cache"))
            if PERIOD_MS != "default":
                env["HAMI_SM_PERIOD_MS"] = PERIOD_MS
            if LAUNCH_STATS:
                # the library's one line at exit (% coarse, verifications): without it a worker's stderr holds no
                # library line at all (nothing else is printed at the default log level), and the H200's
                # interposer_lines were empty for every program (issue 18, trainfix)
                env["HAMI_LAUNCH_STATS"] = "1"
            env.update(TENANT_ENV)
        env.update(extra)
        return env

    def start(self, kind: str, seconds: float, env: dict[str, str], cpus: set[int] | None = None,
              stamp: bool = False) -> subprocess.Popen:
        """A worker process; cpus pins it (all its threads: the library's watcher too) to those CPU cores; stamp
        reads its stderr as it comes, each line with its wall-clock time (StampedErr)."""
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        proc = subprocess.Popen([sys.executable, str(PROGRAMS), kind, str(seconds)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=pin)
        if stamp:
            proc.stamped = StampedErr(proc)  # type: ignore[attr-defined]
        return proc

    def finish(self, proc: subprocess.Popen, label: str, timeout: float = 240) -> dict:
        stamped = getattr(proc, "stamped", None)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        if stamped:
            err = stamped.text()
        tail = [ln for ln in err.strip().splitlines() if ln.strip()][-4:]
        res = {"error": f"no result (rc {proc.returncode}): {tail}"}
        for line in out.splitlines():
            if line.startswith("RESULT "):
                res = json.loads(line[7:])
        hami = [ln for ln in err.splitlines() if "HAMI-vgpu" in ln]
        res["interposer_lines"] = hami[:6]
        stats = [ln.split("launch stats: ", 1)[1] for ln in hami if "launch stats: " in ln]
        if stats:  # HAMI_LAUNCH_STATS=1: the library's own launch-path cost, printed at exit
            res["launch_stats"] = stats[-1]
        if CLOCK and "t0" in res:
            t1 = res["t0"] + res.get("seconds", 0)
            res["sm_mhz"] = CLOCK.mean(res["t0"], t1)
            res["nvml_util"] = CLOCK.util(res["t0"], t1)
            res["nvml_proc_sm"] = CLOCK.proc_util(proc.pid, res["t0"], t1)
        stamps = res.pop("stamps", None)
        if stamps is not None and "policy" in label:
            res["stamps"] = stamps
        if stamped:
            res["stamped_lines"] = stamped.relative(res.get("stamps_base", res.get("t0")))  # the stamps' clock
        self.log.write(f"{label}: {json.dumps(res)}\n")
        self.log.flush()
        print(f"{label}: rate={res.get('rate')} {res.get('error', '')} {res.get('oom_error', '')}", flush=True)
        return res

    def run(self, label: str, kind: str, seconds: float, preload: bool, cpus: set[int] | None = None,
            **extra: str) -> dict:
        return self.finish(self.start(kind, seconds, self.env(preload, **extra), cpus), label)

    def pair(self, label: str, kinds: tuple[str, str], seconds: float, envs: tuple[dict, dict],
             preload: bool = True, cpus: tuple[set[int] | None, set[int] | None] = (None, None)) -> list[dict]:
        procs = self.together([(k, seconds, self.env(preload, **e), c, 0.0)
                               for k, e, c in zip(kinds, envs, cpus, strict=True)])
        return [self.finish(p, f"{label}[{i}]") for i, p in enumerate(procs)]

    def together(self, workers: list[tuple[str, float, dict[str, str], set[int] | None, float]],
                 stamp: bool = False) -> list[subprocess.Popen]:
        """Workers (kind, seconds, env, cpus, after) released together: each measures from the moment all of them
        finished their warm-up (release) plus its `after` seconds. Why: a fixed GO 12 s ahead started training
        workers 0.3-2.8 s late on the H200 (record 5), so a pair's tenants measured different windows and the
        policy timeline's A read ~2 s slow."""
        go = Path(tempfile.mkdtemp(prefix="go-", dir=self.tmp)) / "go"
        procs = [self.start(k, secs, dict(env, BENCH_GO_FILE=str(go), BENCH_GO_AFTER=f"{after:g}"), cpus, stamp)
                 for k, secs, env, cpus, after in workers]
        _programs().release(go, procs)
        return procs


class StampedErr:
    """A worker's library lines with the wall-clock time each arrived (the policy timeline: the library's INFO lines
    say when it switched between alone and shared; asked after record 5's ~2 s reaction, which turned out to be the
    judge reading a late worker's stamps from the wrong start, docs/results/2026-12-05-policy-arrival.md). Takes the
    stderr pipe from the Popen, so communicate() reads stdout only."""

    MAX_LINES = 400

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[tuple[float, str]] = []
        pipe, proc.stderr = proc.stderr, None
        self.reader = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.reader.start()

    def _read(self, pipe) -> None:
        for line in pipe:  # read to the end (the worker must never block on a full pipe), kept up to a bound
            if len(self.lines) < 20 * self.MAX_LINES:
                self.lines.append((time.time(), line.rstrip("\n")[:2000]))

    def text(self) -> str:
        self.reader.join(timeout=10)
        return "\n".join(ln for _, ln in self.lines)

    def relative(self, t0: float | None) -> list[list]:
        """[seconds after t0 (the time the worker's stamps count from), line] for the library's lines, the first
        MAX_LINES."""
        base = t0 if isinstance(t0, (int, float)) else 0.0
        return [[round(t - base, 4), ln] for t, ln in self.lines if "HAMI-vgpu" in ln][:self.MAX_LINES]


class NvmlPeak:
    """Device memory in use (NVML, from outside the workers), peak over a run."""

    def __init__(self) -> None:
        import pynvml
        pynvml.nvmlInit()
        self.nv, self.h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        self.base = self.used()
        self.peak, self._stop = 0, threading.Event()
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def used(self) -> int:
        return self.nv.nvmlDeviceGetMemoryInfo(self.h).used

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.used())
            time.sleep(0.01)

    def stop(self) -> int:
        self._stop.set()
        self.t.join()
        return self.peak - self.base


class ClockSampler:
    """The GPU's SM clock (NVML, from outside the workers) every 20 ms, to show what a throttle's duty cycle
    does to the clock: a power-capped GPU runs short bursts faster than it sustains under full load."""

    def __init__(self) -> None:
        import pynvml
        pynvml.nvmlInit()
        self.nv, self.h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        self.samples: list[tuple[float, int, int]] = []
        self.procs: list[tuple[float, int, int]] = []  # (time read, pid, smUtil %): NVML's per-process view
        self._seen = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        n = 0
        while True:
            try:
                util = self.nv.nvmlDeviceGetUtilizationRates(self.h).gpu
                mhz = self.nv.nvmlDeviceGetClockInfo(self.h, self.nv.NVML_CLOCK_SM)
                self.samples.append((time.time(), mhz, util))
            except Exception:  # noqa: BLE001 - a diagnostic only
                pass
            n += 1
            if n % 10 == 0:  # every ~200 ms: the samples NVML kept since the last read
                try:
                    got = self.nv.nvmlDeviceGetProcessUtilization(self.h, self._seen)
                    now = time.time()
                    for smp in got:
                        self.procs.append((now, int(smp.pid), int(smp.smUtil)))
                        self._seen = max(self._seen, int(smp.timeStamp))
                except Exception:  # noqa: BLE001 - not supported, or no sample yet
                    pass
            time.sleep(0.02)

    def mean(self, t0: float, t1: float) -> float | None:
        vals = [m for t, m, _u in self.samples if t0 <= t <= t1]
        return round(statistics.mean(vals)) if vals else None

    def util(self, t0: float, t1: float) -> float | None:
        """NVML's device utilization (% of time a kernel ran, its own sample period) read in [t0, t1]: the GPU's
        own busy figure beside the library's charge (issue 18: a launch-bound pair charged ~2x its GPU time)."""
        vals = [u for t, _m, u in self.samples if t0 <= t <= t1]
        return round(statistics.mean(vals), 1) if vals else None

    def proc_util(self, pid: int, t0: float, t1: float) -> float | None:
        """NVML's per-process SM utilization of pid, read in [t0, t1] (None: NVML gave none)."""
        vals = [u for t, p, u in self.procs if p == pid and t0 <= t <= t1 + 0.3]
        return round(statistics.mean(vals), 1) if vals else None


CLOCK: ClockSampler | None = None


def share(res: dict, solo: dict) -> float | None:
    if "rate" not in res or "rate" not in solo or not solo["rate"]:
        return None
    return round(100 * res["rate"] / solo["rate"], 1)


def timeline(stamps: list[float], bins: float = 0.5) -> list[float]:
    """Units completed per bin (steps per second in each half second)."""
    if not stamps:
        return []
    n = int(max(stamps) / bins) + 1
    counts = [0] * n
    for s in stamps:
        if s >= 0:
            counts[int(s / bins)] += 1
    return [c / bins for c in counts]


PERIOD_MS = "default"  # HAMI_SM_PERIOD_MS for every preloaded worker (--period-ms; default: the library's)
REPEAT = 1  # pairs are repeated this many times (--repeat) and reported as medians
LAUNCH_STATS = True  # HAMI_LAUNCH_STATS=1 for every preloaded worker (--no-launch-stats: off), as launch_cost.py
TENANT_ENV: dict[str, str] = {}  # --tenant-env: library knobs of an experiment, for the preloaded workers only
_TENANT_KEY = re.compile(r"HAMI_[A-Z0-9_]{1,40}")
#: plain values; an absolute path (HAMI_SM_TURNS_LOG: issue18_gpu.sh stage 29 writes the turns logs under $R) may run to
#: 160 characters
_TENANT_VALUE = re.compile(r"[A-Za-z0-9_.,:+-]{0,64}|/[A-Za-z0-9_.,:+/-]{1,159}")


def tenant_env(items: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs of --tenant-env: only the library's own HAMI_* knobs, short plain values (a run with
    them is an experiment: its JSON says so and the issue-18 judge leaves it out of the verdicts)."""
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _TENANT_KEY.fullmatch(key) or not _TENANT_VALUE.fullmatch(value):
            raise SystemExit(f"--tenant-env {item[:80]!r}: expected HAMI_NAME=VALUE (A-Z 0-9 _ in the name, "
                             "at most 64 plain characters in the value, or an absolute path of at most 160)")
        if key in ("HAMI_NODE_BOARD", "HAMI_SM_PERIOD_MS"):
            raise SystemExit(f"--tenant-env {key}: set by the bench itself (--period-ms for the period)")
        env[key] = value
    return env


def _medians(runs: list[list]) -> list:
    return [statistics.median([r[i] for r in runs if r[i] is not None]) if any(r[i] is not None for r in runs)
            else None for i in range(2)]


def part_train(b: Bench, secs: float, out: dict) -> None:
    f = {"GPU_CORE_UTILIZATION_POLICY": "force"}
    for kind in ("train", "infer"):
        solo = b.run(f"{kind} solo native", kind, secs, False)
        rows = out.setdefault(kind, {"unit": solo.get("unit"), "solo_native": solo.get("rate"), "rows": []})["rows"]
        for pct in (30, 70):
            r = b.run(f"{kind} solo {pct} force", kind, secs, True, CUDA_DEVICE_SM_LIMIT=str(pct), **f)
            rows.append({"case": f"alone, limit {pct} % (force)", "limit": pct, "achieved": share(r, solo),
                         "rate": r.get("rate"), "log": r.get("interposer_lines")})
        r = b.run(f"{kind} solo 30 default", kind, secs, True, CUDA_DEVICE_SM_LIMIT="30")
        rows.append({"case": "alone, limit 30 % (default: not capped alone)", "limit": None,
                     "achieved": share(r, solo), "rate": r.get("rate")})
        nat = b.pair(f"{kind} pair native", (kind, kind), secs, ({}, {}), preload=False)
        rows.append({"case": "pair, native (no preload)", "limit": None,
                     "achieved": [share(x, solo) for x in nat], "rate": [x.get("rate") for x in nat]})
        for lo, hi in ((30, 70), (50, 50)):
            runs = [[share(x, solo) for x in b.pair(f"{kind} pair {lo}+{hi} #{k}", (kind, kind), secs,
                                                    ({"CUDA_DEVICE_SM_LIMIT": str(lo)},
                                                     {"CUDA_DEVICE_SM_LIMIT": str(hi)}))]
                    for k in range(REPEAT)]
            rows.append({"case": f"pair {lo} + {hi} (default policy), median of {REPEAT}", "limit": [lo, hi],
                         "achieved": _medians(runs), "runs": runs})


class ShareRuns:
    """What part_share measured for one program, run by run: filled while it runs (so a step stopped by its
    timeout still reports the runs it finished) or rebuilt from the per-run log (rebuild_share)."""

    def __init__(self) -> None:
        self.solos: list[dict] = []
        self.probe: dict | None = None
        self.raw: dict = {}  # ("alone", pct) -> [run]; "native" / "probe pair" / (lo, hi) -> [[run, run]]


def part_share(b: Bench, secs: float, out: dict, kinds=("matmul", "train", "infer"), alone=(30, 70), solos: int = 3,
               flags: str = "pn") -> None:
    """Processor-sharing caps (issue 18): per program, solo native three times (interleaved), the solo busy
    fraction (the interposer's own event timing, no limit, priority 0), alone at each limit (force), the
    native pair and the limited pairs 30+70 and 50+50 (default policy) REPEAT times. Shares are against the
    median solo; each limited tenant also reports the GPU time the interposer charged it (fraction of
    the window). Stopped part-way (SIGTERM: the step's timeout), it still writes the runs done."""
    f = {"GPU_CORE_UTILIZATION_POLICY": "force"}
    for kind in kinds:
        nsolo = solos
        ent = out.setdefault(kind, {"rows": []})
        got = ShareRuns()
        try:
            # SOLOS 0: no solo run (a diagnostic compared with another step's solos: rates and charges, no shares)
            if nsolo > 0:
                got.solos.append(b.run(f"{kind} solo native #0", kind, secs, False))
            if "p" in flags:
                got.probe = b.run(f"{kind} busy probe", kind, secs, True, CUDA_TASK_PRIORITY="0")
            for pct in alone:
                runs = got.raw[("alone", pct)] = []
                for k in range(REPEAT):
                    runs.append(b.run(f"{kind} alone {pct} force #{k}", kind, secs, True,
                                      CUDA_DEVICE_SM_LIMIT=str(pct), **f))
            if nsolo > 2:
                got.solos.append(b.run(f"{kind} solo native #1", kind, secs, False))
            if "n" in flags:  # N: the native pair REPEAT times too
                for k in range(REPEAT if "N" in flags else 1):
                    got.raw.setdefault("native", []).append(
                        b.pair(f"{kind} pair native #{k}", (kind, kind), secs, ({}, {}), preload=False))
            if "q" in flags:  # the unlimited pair's processor-sharing charge (priority 0 measures, caps nothing)
                got.raw["probe pair"] = [b.pair(f"{kind} pair probe", (kind, kind), secs,
                                                ({"CUDA_TASK_PRIORITY": "0"}, {"CUDA_TASK_PRIORITY": "0"}))]
            for k in range(0 if "x" in flags else REPEAT):  # x: no limited pairs
                if nsolo > 3 and k:
                    got.solos.append(b.run(f"{kind} solo native #{k}+", kind, secs, False))
                for lo, hi in ((30, 70), (50, 50)):
                    got.raw.setdefault((lo, hi), []).append(
                        b.pair(f"{kind} pair {lo}+{hi} #{k}", (kind, kind), secs,
                               ({"CUDA_DEVICE_SM_LIMIT": str(lo)}, {"CUDA_DEVICE_SM_LIMIT": str(hi)})))
            if nsolo > 1:
                got.solos.append(b.run(f"{kind} solo native #2", kind, secs, False))
        finally:
            solo = share_entry(ent, got, alone)
        if "t" in flags:
            ent["policy"] = policy_timeline(b, kind, solo)
        print(json.dumps({kind: ent}), flush=True)


def share_entry(ent: dict, got: ShareRuns, alone) -> dict:
    """part_share's rows for one program from its runs (all of them, or those done before a stop); returns the
    median solo the shares are against."""
    if got.probe is not None:
        ent["busy_probe"] = {"gpu_busy_fraction": got.probe.get("gpu_busy_fraction"), "rate": got.probe.get("rate"),
                             "sm_mhz": got.probe.get("sm_mhz")}
    rates = [x["rate"] for x in got.solos if x.get("rate")]
    ent["solo_sm_mhz"] = [x.get("sm_mhz") for x in got.solos]
    solo = {"rate": statistics.median(rates)} if rates else {}
    ent.update(unit=got.solos[0].get("unit") if got.solos else None, solo_native=rates, solo_median=solo.get("rate"))
    rows = ent["rows"] = []
    for pct in alone:
        rs = got.raw.get(("alone", pct))
        if not rs:
            continue  # not reached before a stop
        rows.append({"case": f"alone, limit {pct} % (force)", "limit": pct,
                     "achieved": statistics.median([share(r, solo) or 0 for r in rs]),
                     "gpu_time_charged": [r.get("gpu_busy_fraction") for r in rs], "runs": [share(r, solo) for r in rs],
                     "rates": [r.get("rate") for r in rs], "sm_mhz": [r.get("sm_mhz") for r in rs],
                     "launch_stats": [r.get("launch_stats") for r in rs]})
    for key, case in (("native", "pair, native (no preload)"),
                      ("probe pair", "pair, no limit, charge measured (CUDA_TASK_PRIORITY=0)"),
                      ((30, 70), "pair 30 + 70 (default policy)"), ((50, 50), "pair 50 + 50 (default policy)")):
        if not got.raw.get(key):
            continue
        runs = [[share(x, solo) for x in pr] for pr in got.raw[key]]
        med = _medians(runs)
        rows.append({"case": f"{case}, median of {len(runs)}", "limit": None if isinstance(key, str) else list(key),
                     "achieved": med, "sum": round(sum(m or 0 for m in med), 1), "runs": runs,
                     "gpu_time_charged": [[x.get("gpu_busy_fraction") for x in pr] for pr in got.raw[key]]})
    return solo


_LOG_LABEL = re.compile(r"(?P<kind>[a-z]+) (?:(?P<solo>solo native #\d+\+?)|(?P<probe>busy probe)|"
                        r"alone (?P<pct>\d{1,3}) force #\d+|pair native #\d+\[(?P<ni>[01])\]|"
                        r"pair probe\[(?P<qi>[01])\]|pair (?P<lo>\d{1,3})\+(?P<hi>\d{1,3}) #\d+\[(?P<pi>[01])\])")


def rebuild_share(log_lines: list[str], kinds: list[str], alone_of: dict[str, tuple[int, ...]]) -> dict:
    """part_share's entries from a step's per-run log (`label: {json}` per run, written as each run ends), for a
    step stopped by its timeout before it wrote its JSON: the same rows from the runs it finished, in log order.
    A pair's two tenants are written one after the other ([0] then [1]); a pair missing a tenant is left out."""
    got = {k: ShareRuns() for k in kinds}
    half: dict = {}
    for n, line in enumerate(log_lines, 1):
        label, sep, body = line.partition(": ")
        m = _LOG_LABEL.fullmatch(label.strip())
        if not sep or not m or m["kind"] not in got:
            continue  # a policy timeline or another program: not part of these entries
        try:
            res = json.loads(body)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"log line {n}: {label[:40]!r} is not followed by JSON ({exc.msg})") from None
        if not isinstance(res, dict):
            raise SystemExit(f"log line {n}: {label[:40]!r} is not followed by a JSON object")
        g = got[m["kind"]]
        if m["solo"]:
            g.solos.append(res)
        elif m["probe"]:
            g.probe = res
        elif m["pct"]:
            g.raw.setdefault(("alone", int(m["pct"])), []).append(res)
        else:
            key = "native" if m["ni"] else "probe pair" if m["qi"] else (int(m["lo"]), int(m["hi"]))
            idx = m["ni"] or m["qi"] or m["pi"]
            if idx == "0":
                half[(m["kind"], key)] = res
            elif (m["kind"], key) in half:
                g.raw.setdefault(key, []).append([half.pop((m["kind"], key)), res])
    out: dict = {}
    for kind in kinds:
        ent = out[kind] = {"rows": []}
        share_entry(ent, got[kind], alone_of[kind])
    return out


def part_siblings(b: Bench, secs: float, out: dict, kinds=("matmul",), counts=(1, 2, 3), limits=(30, 60)) -> None:
    """Several processes of one container (issue 18, multiproc): per program, solo native twice, then 1, 2 and 3
    workers sharing one region (one container) at each limit under force, started together. The container's share
    is the sum of its workers' rates over the median solo; gpu_time_charged is its region's busy time over the
    window (the same for every worker: the container's). Before the sibling table the container got 1/n of its limit
    (fake: 2 processes at 30 %, 14.9 %, charged 1.98 x). The n > 1 workers also run unlimited without the library
    (the native container of n): a launch-bound program's n processes can together exceed one solo, so the
    launch-bound rule (a limit above its busy fraction costs <= 5 %) is read against them (issue18_judge)."""
    for kind in kinds:
        solos = [b.run(f"{kind} solo native #{k}", kind, secs, False) for k in range(2)]
        rates = [x["rate"] for x in solos if x.get("rate")]
        solo = {"rate": statistics.median(rates)} if rates else {}
        ent = out.setdefault(kind, {"unit": solos[0].get("unit"), "solo_native": rates, "rows": []})
        for n in (c for c in counts if c > 1):  # the unlimited container of n: a launch-bound program's baseline
            procs = b.together([(kind, secs, b.env(False), None, 0.0) for _ in range(n)])
            shares = [share(b.finish(p, f"{kind} {n} siblings native [{i}]"), solo) for i, p in enumerate(procs)]
            ent["rows"].append({"case": f"{n} processes of one container, native (no preload)", "limit": None,
                                "processes": n, "achieved": round(sum(x or 0 for x in shares), 1),
                                "per_process": shares})
        for lim in limits:
            for n in counts:
                env = b.env(True, CUDA_DEVICE_SM_LIMIT=str(lim), GPU_CORE_UTILIZATION_POLICY="force")
                procs = b.together([(kind, secs, env, None, 0.0) for _ in range(n)])
                res = [b.finish(p, f"{kind} {n} siblings {lim} force [{i}]") for i, p in enumerate(procs)]
                shares = [share(r, solo) for r in res]
                ent["rows"].append({"case": f"{n} processes of one container, limit {lim} % (force)", "limit": lim,
                                    "processes": n, "achieved": round(sum(x or 0 for x in shares), 1),
                                    "per_process": shares, "gpu_time_charged": res[0].get("gpu_busy_fraction"),
                                    "launch_stats": [r.get("launch_stats") for r in res]})
        print(json.dumps({kind: ent}), flush=True)


POLICY_LIMITS = (30, 70)  # the policy timeline's tenants A and B (recorded in its output for the issue 18 judge)


def policy_timeline(b: Bench, kind: str, solo: dict) -> dict:
    """GPU_CORE_UTILIZATION_POLICY=default: A (limit 30) alone for 5 s, neighbour B (limit 70) for 4 s, A
    alone again; A's units per half second against its solo rate."""
    info = {"LIBCUDA_LOG_LEVEL": "3"}  # INFO: the alone/shared switches (rare lines), stamped as they come
    a, bb = b.together([(kind, 14, b.env(True, CUDA_DEVICE_SM_LIMIT=str(POLICY_LIMITS[0]), **info), None, 0.0),
                        (kind, 4, b.env(True, CUDA_DEVICE_SM_LIMIT=str(POLICY_LIMITS[1]), **info), None, 5.0)],
                       stamp=True)
    ra, rb = b.finish(a, f"{kind} policy A"), b.finish(bb, f"{kind} policy B")
    stamps = ra.get("stamps", [])
    per_unit = (ra.get("rate") or 0) * (ra.get("seconds") or 1) / max(1, len(stamps))  # units per step
    solo_steps = (solo.get("rate") or 0) / per_unit if per_unit else None
    tl = timeline(stamps)
    return {"A_steps_per_s_per_half_second": tl, "solo_steps_per_s": solo_steps, "limits": list(POLICY_LIMITS),
            "A_share_per_half_second": [round(100 * x / solo_steps, 1) if solo_steps else None for x in tl],
            "B_window": [5, 9], "B_rate_share": share(rb, solo)}


def part_mixed(b: Bench, secs: float, out: dict) -> None:
    """The conformance pair (a training loop and a small-batch inference loop) and the default-policy timeline."""
    solo_t = b.run("train solo native", "train", secs, False)
    solo_i = b.run("infer solo native", "infer", secs, False)
    out["solo_native"] = {"train": solo_t.get("rate"), "infer": solo_i.get("rate")}
    mixed = out.setdefault("mixed", {"rows": []})["rows"]
    nat = b.pair("mixed native", ("train", "infer"), secs, ({}, {}), preload=False)
    mixed.append({"case": "train + infer, native", "achieved": [share(nat[0], solo_t), share(nat[1], solo_i)]})
    for lt, li in ((50, 50), (70, 30)):
        runs = []
        for k in range(REPEAT):
            pr = b.pair(f"mixed {lt}+{li} #{k}", ("train", "infer"), secs,
                        ({"CUDA_DEVICE_SM_LIMIT": str(lt)}, {"CUDA_DEVICE_SM_LIMIT": str(li)}))
            runs.append([share(pr[0], solo_t), share(pr[1], solo_i)])
        mixed.append({"case": f"train {lt} + infer {li} (default policy), median of {REPEAT}", "limit": [lt, li],
                      "achieved": _medians(runs), "runs": runs})
    # GPU_CORE_UTILIZATION_POLICY=default: A alone -> neighbour B for 4 s -> alone again
    a, bb = b.together([("train", 14, b.env(True, CUDA_DEVICE_SM_LIMIT="30"), None, 0.0),
                        ("train", 4, b.env(True, CUDA_DEVICE_SM_LIMIT="70"), None, 5.0)])
    ra, rb = b.finish(a, "policy A"), b.finish(bb, "policy B")
    solo_steps = solo_t["rate"] / 2048  # steps/s
    out["policy"] = {"A_steps_per_s_per_half_second": timeline(ra.get("stamps", [])), "solo_steps_per_s": solo_steps,
                     "B_window": [5, 9], "B_rate_share": share(rb, solo_t)}


def part_graphs(b: Bench, secs: float, out: dict) -> None:
    part_other(b, secs, out, kinds=("graphs",), memory=False)


def part_memory(b: Bench, secs: float, out: dict) -> None:
    """Only the memory runs of --part other (each framework filling to its OOM under a 4 GiB limit)."""
    part_other(b, secs, out, kinds=())


def part_other(b: Bench, secs: float, out: dict, kinds=("graphs", "jax", "cupy"), memory: bool = True) -> None:
    f = {"GPU_CORE_UTILIZATION_POLICY": "force"}
    for kind in kinds:
        solo = b.run(f"{kind} solo native", kind, secs, False)
        rows = out.setdefault(kind, {"unit": solo.get("unit"), "solo_native": solo.get("rate"), "rows": []})["rows"]
        r = b.run(f"{kind} solo 50 force", kind, secs, True, CUDA_DEVICE_SM_LIMIT="50", **f)
        rows.append({"case": "alone, limit 50 % (force)", "limit": 50, "achieved": share(r, solo)})
        pr = b.pair(f"{kind} pair 30+70", (kind, kind), secs,
                    ({"CUDA_DEVICE_SM_LIMIT": "30"}, {"CUDA_DEVICE_SM_LIMIT": "70"}))
        rows.append({"case": "pair 30 + 70 (default policy)", "limit": [30, 70],
                     "achieved": [share(x, solo) for x in pr]})
    mem = out.setdefault("memory", [])
    for kind in ("torchmem", "jax", "cupy") if memory else ():
        peak = NvmlPeak()
        r = b.run(f"{kind} limit 4g", kind, 1, True, CUDA_DEVICE_MEMORY_LIMIT="4g", BENCH_FILL="1",
                  XLA_PYTHON_CLIENT_MEM_FRACTION="0.75")  # JAX's default preallocation, of the reported 4 GiB
        used = peak.stop()
        mem.append({"program": kind, "limit_mib": 4096, "filled_mib": r.get("filled_mib"),
                    "started": "error" not in r, "nvml_peak_delta_mib": round(used / MIB, 1),
                    "bytes_over_limit": max(0, used - 4096 * MIB), "oom_error": r.get("oom_error", r.get("error")),
                    "log": r.get("interposer_lines")})


class Stopped(Exception):
    """SIGTERM (the stage step's `timeout`): stop measuring, write what was measured."""


def _stop(_sig: int, _frame: object) -> None:
    raise Stopped


def _plan(text: str) -> list[tuple[str, tuple[int, ...], int, str]]:
    """--plan KIND:ALONE-LIMITS:SOLOS:FLAGS;... (see its help); one line naming the item when malformed."""
    items = []
    for item in text.split(";"):
        parts = item.split(":")
        if len(parts) != 4 or not re.fullmatch(r"[a-z]{1,16}", parts[0]) or \
                not re.fullmatch(r"(\d{1,3}(,\d{1,3})*)?", parts[1]) or not re.fullmatch(r"\d{1,2}", parts[2]) or \
                not re.fullmatch(r"[pnNqtx]{0,8}", parts[3]):
            raise SystemExit(f"--plan item {item[:60]!r}: expected KIND:LIMITS:SOLOS:FLAGS (e.g. train:10,30:3:pt)")
        items.append((parts[0], tuple(int(x) for x in parts[1].split(",") if x), int(parts[2]), parts[3]))
    return items


def _device_from_txt(log: Path) -> str:
    """The nvidia-smi line of the stage's device.txt above a log (issue18_gpu.sh writes it first)."""
    for d in log.resolve().parents:
        if (d / "device.txt").is_file():
            first = (d / "device.txt").read_text(errors="replace")[:400].splitlines()[:1]
            return first[0][:200] if first else "unknown (device.txt above the log is empty)"
    return "unknown (no device.txt above the log)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--part", choices=["train", "mixed", "other", "graphs", "share", "memory", "siblings"], default="train")
    ap.add_argument("--kinds", default="matmul,train,infer", help="programs of --part share / siblings")
    ap.add_argument("--period-ms", default="default", help="HAMI_SM_PERIOD_MS of the preloaded workers")
    ap.add_argument("--plan", default="", help="per program of --part share: KIND:ALONE-LIMITS:SOLOS:FLAGS;... "
                    "FLAGS p = busy probe, n = native pair (N: --repeat times), q = probe pair, t = policy timeline, "
                    "x = no limited pairs (e.g. train:10,30:3:pt); SOLOS > 3 adds a solo between repeats, SOLOS 0 none")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=1, help="repeat each limited pair and report medians")
    ap.add_argument("--no-launch-stats", action="store_true",
                    help="do not set HAMI_LAUNCH_STATS=1 in the preloaded workers (the library's exit line)")
    ap.add_argument("--tenant-env", action="append", default=[], metavar="HAMI_KEY=VALUE",
                    help="a library knob for every preloaded worker (repeatable): an experiment, not judged")
    ap.add_argument("--rebuild-from-log", type=Path, metavar="LOG",
                    help="no GPU: write --part share's JSON into --out from a stopped step's real-share.log and its "
                         "--plan (the runs it finished; marked rebuilt and incomplete)")
    args = ap.parse_args()
    if args.out is None:
        raise SystemExit("--out: a folder is needed")
    if args.rebuild_from_log:
        rebuild_main(args)
        return
    global REPEAT, PERIOD_MS, CLOCK, TENANT_ENV, LAUNCH_STATS
    TENANT_ENV = tenant_env(args.tenant_env)
    LAUNCH_STATS = not args.no_launch_stats
    REPEAT = max(1, args.repeat)
    PERIOD_MS = args.period_ms if args.period_ms == "default" else str(int(args.period_ms))
    plan = _plan(args.plan) if args.part == "share" and args.plan else []
    sys.path.insert(0, str(PKG / "interposer"))
    import build  # standalone module: compiles csrc/*.c with the system C compiler
    try:
        CLOCK = ClockSampler()
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        print(f"no SM clock samples: {exc}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="hami-real-"))
    lib = build.build_library(tmp / "lib")
    args.out.mkdir(parents=True, exist_ok=True)
    date = dt.date.today().isoformat()
    signal.signal(signal.SIGTERM, _stop)
    with open(args.out / f"real-{args.part}.log", "w") as log:
        b = Bench(lib, tmp, log)
        out: dict = {"date": date, "part": args.part, "seconds_per_window": args.seconds,
                     "command": " ".join(sys.argv), "device": _device()}
        out["launch_stats"] = LAUNCH_STATS
        if TENANT_ENV:
            out["tenant_env"] = TENANT_ENV
        t0 = time.time()
        try:
            if plan:
                for kind, alone, solos, flags in plan:
                    part_share(b, args.seconds, out, kinds=(kind,), alone=alone, solos=solos, flags=flags)
                    _save(args.out, date, args.part, out)
            elif args.part == "share":
                part_share(b, args.seconds, out, kinds=tuple(args.kinds.split(",")))
            elif args.part == "siblings":
                part_siblings(b, args.seconds, out, kinds=tuple(args.kinds.split(",")))
            else:
                {"train": part_train, "mixed": part_mixed, "other": part_other,
                 "graphs": part_graphs, "memory": part_memory}[args.part](b, args.seconds, out)
        except Stopped:
            out["incomplete"] = f"stopped by SIGTERM after {time.time() - t0:.0f} s: the rows hold the runs done"
            print(out["incomplete"], flush=True)
        out["wall_s"] = round(time.time() - t0, 1)
    _save(args.out, date, args.part, out)
    print(json.dumps({k: v for k, v in out.items() if k != "device"}, default=str)[:6000])
    if "incomplete" in out:
        raise SystemExit(124)


def rebuild_main(args: argparse.Namespace) -> None:
    """--rebuild-from-log: the JSON a stopped --part share step would have written, from its per-run log."""
    if args.part != "share" or not args.plan:
        raise SystemExit("--rebuild-from-log needs --part share and the step's --plan")
    plan = _plan(args.plan)
    try:
        lines = args.rebuild_from_log.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise SystemExit(f"--rebuild-from-log {str(args.rebuild_from_log)[:120]}: {exc.strerror}") from None
    # the measurement's date: the log's own time (kept by the stage archive), not the day of the rebuild
    date = dt.date.fromtimestamp(args.rebuild_from_log.stat().st_mtime).isoformat()
    out: dict = {"date": date, "part": "share", "seconds_per_window": args.seconds,
                 "command": f"rebuilt from {args.rebuild_from_log.name} with --plan {args.plan!r}",
                 "device": _device_from_txt(args.rebuild_from_log),
                 "rebuilt_from_log": args.rebuild_from_log.name,
                 "incomplete": "the step ran past its timeout before writing its JSON: rows rebuilt from the runs "
                               "its log holds"}
    if args.tenant_env:  # the stopped step's experiment knobs: the rebuilt JSON is an experiment too
        out["tenant_env"] = tenant_env(args.tenant_env)
    out.update(rebuild_share(lines, [k for k, *_ in plan], {k: alone for k, alone, *_ in plan}))
    args.out.mkdir(parents=True, exist_ok=True)
    _save(args.out, date, "share", out)
    print(f"wrote {args.out}/{date}-real-workloads-share.json: " +
          ", ".join(f"{k}: {sum(len(r.get('runs') or []) for r in out[k]['rows'])} limited runs, "
                    f"{len(out[k]['solo_native'])} solo" for k, *_ in plan))


def _save(out_dir: Path, date: str, part: str, out: dict) -> None:
    (out_dir / f"{date}-real-workloads-{part}.json").write_text(json.dumps(out, indent=1))


def _device() -> str:
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
        return q.stdout.strip()
    except Exception as exc:  # recorded, not fatal
        return f"unknown ({exc})"


if __name__ == "__main__":
    main()
