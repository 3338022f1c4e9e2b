"""Issue 18's scorecard: judge every target of the issue from the raw outputs of a GPU session.

Reads a folder (searched recursively) of what the H200 runs leave behind -- the JSON files
``real_workloads.py`` (parts share, other, memory, siblings) and ``launch_cost.py`` write, the conformance suite's
``capability-matrix.json``, the tamper tests' pytest log (``*tamper*.log``) and ``device.txt`` (nvidia-smi
line, commit) -- and writes ``issue18-scorecard.json`` and ``issue18-scorecard.md``: one row per target of
the issue with the limit(s), the runs, the median, the error in points, the pair sum, the rule, and
met / not met / not measured, each row saying the device line, the commit and the file it came from.
``launch_cost.py --ladder`` files (stage 9) are printed as a comparison table (``launch_ladder.py``), never judged.

    .venv/bin/python hami_plugins_nvidia/bench/issue18_judge.py FOLDER [--out DIR] [--allow-fake]

A folder whose device line is not a real GPU (the fake libcuda's runs, "unknown" when nvidia-smi was
missing) is refused unless --allow-fake, and then every row is labelled simulated. Unreadable files and
JSON of an unknown shape are refused with one line naming the file and the field; exit status 2.

Every rule of the issue lives in the RULES section below, as constants and functions whose docstrings quote
the issue. The launch-bound pair rule (fitting / contended, the contended bars scaled to the GPU time the pair can
keep busy where the wall's are out of its reach) is the conformance probe's own
(``hami_plugins_nvidia.probe._work_conserving``), called here, not copied.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

# ================================================================== RULES (the one place for issue 18's targets)

#: "Targets on the H200, medians of >= 3 runs". Fewer runs are reported, never judged met.
MIN_RUNS = 3
#: "alone at 10/30/50/70/90 % within ±5 points of the limit"; pairs "each within ±5 points of its limit".
TOLERANCE_POINTS = 5.0
#: "the pair's sum >= 95 % of solo".
PAIR_SUM_MIN = 95.0
#: Launch-bound: "a limit above the program's own GPU busy fraction costs <= 5 % of its unlimited throughput".
LAUNCH_COST_MAX_PERCENT = 5.0
#: Throughput decides the launch-bound cost only when the native solos themselves agree within twice the
#: target (record 3: the H200 host ran the same native loop at 121-264 passes/s within one call), or when every
#: library run lies beyond 5 % of every native run on one side; otherwise the library's own host time per
#: launch (its `launch stats` line) against the loop's fast-mode host time per launch decides.
NATIVE_SPREAD_MAX_PERCENT = 2 * LAUNCH_COST_MAX_PERCENT
#: A program whose solo busy fraction (the busy probe: alone, unlimited, CUDA_TASK_PRIORITY=0) is at least this
#: is judged by the GPU-bound rules on throughput; below it by the launch-bound rules (GPU time charged).
GPU_BOUND_BUSY_MIN_PERCENT = 90.0
#: `default` policy: "a tenant whose neighbour goes idle reaches >= 90 % of solo within 1 s, and is capped
#: again within 1 s of the neighbour's return".
POLICY_RELEASE_SHARE_MIN = 90.0
POLICY_LATENCY_MAX_S = 1.0
#: Tenant A's limit in real_workloads' policy timeline (recorded in its output since this judge; 30 before).
POLICY_A_LIMIT_DEFAULT = 30
#: How long after A's BENCH_GO real_workloads' policy timeline releases B. Read only for logs written before the
#: workers recorded `stamps_base` (programs.py): a worker's stamps count from its GO, and a late worker's GO is
#: then known only from its partner's (record 5: A 1.9-2.8 s late, B on time).
POLICY_B_AFTER_S = 5.0
#: A pair is a pair only while both tenants measure: in each run both workers' windows (their `t0` + `seconds` in
#: the per-run log) must overlap over at least this share of the longer one (window_overlap). Record 5's training
#: 30 + 70 runs overlapped 75-87 %: the 30 % tenant, 0.5-1.0 s late, ran its last second alone and uncapped under
#: `default` (43 % of solo).
PAIR_OVERLAP_MIN = 0.95
#: "the framework's own out-of-memory error": the error text each framework raises at the limit.
FRAMEWORK_OOM = {
    "torch": re.compile(r"^torch\.(cuda\.)?OutOfMemoryError"),
    "jax": re.compile(r"^(jax\.errors\.JaxRuntimeError|jaxlib[\w.]*XlaRuntimeError): RESOURCE_EXHAUSTED"),
    "cupy": re.compile(r"^cupy(_backends)?\.[\w.]*OutOfMemoryError"),
}
MEMORY_PROGRAMS = {"torchmem": "torch", "torch": "torch", "jax": "jax", "cupy": "cupy"}

#: How each program is judged: the issue names the matmul bench and the training loop GPU-bound and the
#: small-batch inference loop launch-bound; graphs, JAX and CuPy as written are classified by their busy probe.
FAMILY = {"matmul": "gpu", "train": "gpu", "infer": "launch", "graphs": "probe", "jax": "probe", "cupy": "probe"}
ALONE_LIMITS = (10, 30, 50, 70, 90)
PAIR_LIMITS = ((30, 70), (50, 50))
#: The targets the scorecard lists, measured or not (ids are "<program> alone <L> %" / "<program> pair A+B").
EXPECTED_ALONE = {"matmul": ALONE_LIMITS, "train": ALONE_LIMITS, "infer": (70,), "graphs": (50,), "jax": (50,),
                  "cupy": (50,)}
EXPECTED_PAIRS = ("matmul", "train", "infer", "graphs", "jax", "cupy")
POLICY_TARGET = "train policy default"
TAMPER_TARGET = "fault tests (tamper, real driver)"
CONFORMANCE_ID = "isolation/work-conserving-sharing"
CONFORMANCE_TARGET = f"conformance {CONFORMANCE_ID}"

MET, NOT_MET = "met", "not met"


@dataclass
class Judged:
    """One rule's answer: the verdict ("met", "not met" or "not measured: why") and the figures behind it."""

    verdict: str
    why: str = ""
    n: int = 0
    median: float | list[float] | None = None
    error: float | list[float] | None = None
    pair_sum: float | None = None
    kept: float | None = None
    reading: str = ""  # what the GPU-bound rule would say where the classification is unknown


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def runs_check(n: int) -> str | None:
    """Issue 18: "medians of >= 3 runs". None when enough, else the not-measured verdict."""
    return None if n >= MIN_RUNS else f"not measured (n={n} of {MIN_RUNS})"


def gpu_bound_alone(limit: float, runs: list[float]) -> Judged:
    """Issue 18: "GPU-bound programs ..., each tenant judged against its own solo unlimited throughput: alone at
    10/30/50/70/90 % within ±5 points of the limit". runs: throughput as % of the median solo native run."""
    med = statistics.median(runs) if runs else None
    err = _r(med - limit) if med is not None else None
    short = runs_check(len(runs))
    if short:
        return Judged(short, "", len(runs), _r(med), err)
    ok = abs(med - limit) <= TOLERANCE_POINTS
    return Judged(MET if ok else NOT_MET, f"median {med:.1f} % at limit {limit:g} ({err:+.1f} points)", len(runs),
                  _r(med), err)


def median_run(runs: list[list[float]]) -> list[float]:
    """The run whose pair sum is the median (the lower median for an even count): a pair sum some run achieved,
    never a sum of per-tenant medians taken from different runs."""
    sums = [sum(r) for r in runs]
    pick = statistics.median_low(sums)
    return runs[sums.index(pick)]


def gpu_bound_pair(limits: tuple[int, int], runs: list[list[float]]) -> Judged:
    """Issue 18: "pairs 30+70 and 50+50 (separate containers, one GPU) each within ±5 points of its limit, and
    the pair's sum >= 95 % of solo". Each tenant's median over the runs; the pair sum is the median of the
    per-run sums (see median_run)."""
    n = len(runs)
    if not n:
        return Judged("not measured: no runs")
    meds = [statistics.median(r[i] for r in runs) for i in range(2)]
    errs = [_r(m - lim) for m, lim in zip(meds, limits, strict=True)]
    psum = statistics.median_low(sum(r) for r in runs)
    short = runs_check(n)
    if short:
        return Judged(short, "", n, [_r(m) for m in meds], errs, _r(psum))
    missed = [f"tenant {lim} % at {m:.1f} ({m - lim:+.1f})" for m, lim in zip(meds, limits, strict=True)
              if abs(m - lim) > TOLERANCE_POINTS]
    if psum < PAIR_SUM_MIN:
        missed.append(f"pair sum {psum:.1f} % < {PAIR_SUM_MIN:g} % (median of the per-run sums)")
    why = "; ".join(missed) if missed else f"each within ±{TOLERANCE_POINTS:g}, pair sum {psum:.1f} %"
    return Judged(NOT_MET if missed else MET, why, n, [_r(m) for m in meds], errs, _r(psum))


def library_host_us(stats_line: str | None) -> float | None:
    """The library's own host time per launch from its `launch stats` line (HAMI_LAUNCH_STATS=1): before the
    driver call plus after it, in µs, less the sampled launches' sleeps while held for credit or turns where the line
    reports them (held_host_us): the limit at work, not the launch path's cost (issue 18 record 14, pausegap: a tenant
    held 23 times read 59.229 µs before the launch, 58.061 of them the throttle's)."""
    secs = launch_sections(stats_line)
    if "before the launch" not in secs or "after the launch" not in secs:
        return None
    held = held_host_us(stats_line)
    return secs["before the launch"] + secs["after the launch"] - (held[0] if held else 0.0)


_HELD_HOST = re.compile(r"; sampled launches held: before the launch ([\d.]+), throttle ([\d.]+) us per launch")
_HELD_TIMES = re.compile(r"; held (\d+) times, ([\d.]+) ms")


def held_host_us(stats_line: str | None) -> tuple[float, float] | None:
    """The sampled launches' sleeps while held (for credit, or by another's turn), µs per launch: inside "before the
    launch" (the outer sample) and inside "throttle" (the inner one). None for a line without them (builds before
    pausegap: there the host figures include the holds)."""
    m = _HELD_HOST.search(stats_line or "")
    return (float(m.group(1)), float(m.group(2))) if m else None


def holds_in_host_us(stats_line: str | None) -> str | None:
    """A line whose host µs per launch include the throttle's holds it does not report apart (a build before
    pausegap that was held): what to say beside its figure, else None. Its first "held N times, M ms" is the credit
    waits', the second (with turns on) the turns' holds."""
    if not stats_line or held_host_us(stats_line) is not None:
        return None
    holds = [(int(n), float(ms)) for n, ms in _HELD_TIMES.findall(stats_line)]
    n, ms = sum(h[0] for h in holds), sum(h[1] for h in holds)
    if not n:
        return None
    return (f"its host µs per launch include the throttle's holds (held {n} times, {ms:.1f} ms in all; the line does "
            "not report the sampled launches' share apart): time its limit held it, not the launch path's cost")


def launch_sections(stats_line: str | None) -> dict[str, float]:
    """Every section of the `launch stats` line's host µs per launch ("before the launch" ... "harvest"), and the
    share of launches on the throttle's fast path as "fast path %": what a launch-cost bench compares build by
    build. Empty when the line has none. The sections nest (launch_int.h): lock, throttle, idle query and harvest lie
    inside "before the launch", marks in both halves, harvest also inside throttle."""
    if not stats_line:
        return {}
    m = re.search(r"host us per launch \([^)]*\): ([^;]+)", stats_line)
    out = {name.strip(): float(v) for name, v in re.findall(r"([a-z' ]+) ([\d.]+)", m.group(1))} if m else {}
    f = re.search(r"([\d.]+) % on the throttle's fast path", stats_line)
    if f:
        out["fast path %"] = float(f.group(1))
    return out


STATS_SECTIONS = ("before the launch", "after the launch", "lock", "throttle", "marks", "idle query", "harvest")
_STATS_CALLS = re.compile(r"\(([\d.]+) % coarse\); [\d.]+ % on the throttle's fast path; per launch ([\d.]+) event "
                          r"records, ([\d.]+) event queries, ([\d.]+) elapsed-time calls")


_PRECISE_WHY = re.compile(r"; precise by choice (\d+): credit not ample (\d+) \(low (\d+)\), asked (\d+), switches "
                          r"(\d+), not verified (\d+); low-credit launches asking (\d+), not asking (\d+)")
PRECISE_WHY = ("precise", "credit not ample", "low credit", "asked", "switches", "not verified", "low asking",
               "low not asking")


def precise_reasons(stats_line: str | None) -> dict[str, int] | None:
    """Why a run's launches were measured precisely (launch.c count_why; the reasons overlap): the launches that chose
    precise mode, and of them those whose credit was not ample for coarse mode (and low: at most the 60 ms margin),
    whose neighbour asked, whose switches were charged, with no verified window; and the launches low on credit whose
    mark asked for precise neighbours or did not (credit_falls). None for a line without them (builds before task
    pairask)."""
    m = _PRECISE_WHY.search(stats_line or "")
    return dict(zip(PRECISE_WHY, map(int, m.groups()), strict=True)) if m else None


_STREAM_DESTROYS = re.compile(r"; streams destroyed (\d+), runs closed by event (\d+), with no event (\d+), stale (\d+)")
STREAM_DESTROYS = ("destroyed", "closed by event", "closed with no event", "stale")


def stream_destroys(stats_line: str | None) -> dict[str, int] | None:
    """The stream-destroy hook's section (launch.c stream_destroying, since gatefix): the program's cuStreamDestroy
    calls the hook saw (0 on a program that destroys streams: the hook is not reached, e.g. through cudart), and the
    destroyed streams' open runs it closed by an event, with none (a wait proved them) or left stale (charged their wall
    time). None for a line without it (builds before gatefix)."""
    m = _STREAM_DESTROYS.search(stats_line or "")
    return dict(zip(STREAM_DESTROYS, map(int, m.groups()), strict=True)) if m else None


def launch_stats_figures(stats_line: str | None) -> dict[str, float] | None:
    """launch_sections' host µs per launch of every section (STATS_SECTIONS) with the coarse and fast-path %, and the
    event records, queries and elapsed-time calls per launch; None when the line lacks any of them."""
    m = _STATS_CALLS.search(stats_line or "")
    secs = launch_sections(stats_line)
    if not m or "fast path %" not in secs or any(name not in secs for name in STATS_SECTIONS):
        return None
    out = dict(zip(("coarse_pct", "records", "queries", "elapsed"), map(float, m.groups()), strict=True))
    out["fast_pct"] = secs["fast path %"]
    out.update((name, secs[name]) for name in STATS_SECTIONS)
    return out


def launch_cost(lib_rates: list[float], native_rates: list[float], lib_us: list[float],
                loop_us: list[float]) -> Judged:
    """Issue 18: "a limit above the program's own GPU busy fraction costs <= 5 % of its unlimited throughput".
    Two measures (record 3): the throughput ratio (median library run / median native run) and the library's own
    host µs per launch (`launch stats`) over the loop's fast-mode host µs per launch (the least of all runs).
    Throughput decides when the native runs agree within NATIVE_SPREAD_MAX_PERCENT, or when every library run
    is more than 5 % below (not met) or within 5 % of even the fastest (met) native run; otherwise the library's
    host time decides; without launch stats the target is not measured."""
    n = len(lib_rates)
    if not native_rates or not n:
        return Judged("not measured: no native solo runs" if not native_rates else "not measured: no runs", "", n)
    ratio = 100 * statistics.median(lib_rates) / statistics.median(native_rates)
    if short := runs_check(n):
        return Judged(short, f"throughput {ratio:.1f} % of native", n, _r(ratio), _r(ratio - 100))
    spread = 100 * (max(native_rates) - min(native_rates)) / statistics.median(native_rates)
    keep = 100 - LAUNCH_COST_MAX_PERCENT
    host = (f"; library {statistics.median(lib_us):.2f} µs per launch = "
            f"{100 * statistics.median(lib_us) / min(loop_us):.1f} % of the loop's fast-mode "
            f"{min(loop_us):.2f} µs") if lib_us and loop_us else "; no launch stats"
    base = f"throughput {ratio:.1f} % of native (native spread {spread:.0f} %){host}"
    j = Judged("", "", n, _r(ratio), _r(ratio - 100))
    if spread <= NATIVE_SPREAD_MAX_PERCENT:
        j.verdict, j.why = (MET if ratio >= keep else NOT_MET), f"{base}; throughput decides"
    elif max(lib_rates) < keep / 100 * min(native_rates):
        j.verdict, j.why = NOT_MET, f"{base}; throughput decides: every library run > 5 % below every native run"
    elif min(lib_rates) >= keep / 100 * max(native_rates):
        j.verdict, j.why = MET, f"{base}; throughput decides: every library run within 5 % of every native run"
    else:
        _host_time_decides(j, base, lib_us, loop_us, "throughput within the host's noise")
    return j


def _host_time_decides(j: Judged, base: str, lib_us: list[float], loop_us: list[float], why: str) -> None:
    """Where the throughput cannot decide (why), the library's own host time per launch against the loop's
    fast-mode time per launch does (at most LAUNCH_COST_MAX_PERCENT); without launch stats, not measured."""
    if lib_us and loop_us:
        cost = 100 * statistics.median(lib_us) / min(loop_us)
        j.verdict = MET if cost <= LAUNCH_COST_MAX_PERCENT else NOT_MET
        j.why, j.error = f"{base}; the library's host time decides ({why})", _r(cost)
    else:
        j.verdict, j.why = f"not measured: {why} and no launch stats", base


def launch_cost_paired(ratios: list[float], lib_us: list[float], loop_us: list[float]) -> Judged:
    """Issue 18's launch-bound cost from launch_cost.py's paired alone windows (inferalone): each ABBA block's
    library rate sum over native's (a drift linear over the block cancels), the median of >= MIN_RUNS blocks with
    a bootstrap interval of it (bench/paired_alone.py). The interval decides: all of it at or above 95 % met, all of
    it below not met; an interval across 95 % leaves it to the library's host time per launch, as launch_cost does
    when the host's noise hides the throughput."""
    pa = _paired_module()
    n = len(ratios)
    if not n:
        return Judged("not measured: no complete paired block", "", 0)
    st = pa.paired_stat(ratios)
    med, (lo, hi) = st["median_pct"], st["interval_pct"]
    if short := runs_check(n):
        return Judged(short, f"paired: median block {med:.1f} % of native", n, _r(med), _r(med - 100))
    keep = 100 - LAUNCH_COST_MAX_PERCENT
    host = (f"; library {statistics.median(lib_us):.2f} µs per launch = "
            f"{100 * statistics.median(lib_us) / min(loop_us):.1f} % of the loop's fast-mode "
            f"{min(loop_us):.2f} µs") if lib_us and loop_us else "; no launch stats"
    base = (f"paired: median of {n} ABBA blocks {med:.1f} % of native ({100 * st['coverage']:.0f} % bootstrap "
            f"interval {lo:.1f}-{hi:.1f}, blocks {st['min_max_pct'][0]:.1f}-{st['min_max_pct'][1]:.1f}){host}")
    j = Judged("", "", n, _r(med), _r(med - 100))
    if lo >= keep:
        j.verdict, j.why = MET, f"{base}; throughput decides: the interval is at or above {keep:g} %"
    elif hi < keep:
        j.verdict, j.why = NOT_MET, f"{base}; throughput decides: the interval is below {keep:g} %"
    else:
        _host_time_decides(j, base, lib_us, loop_us, f"the interval spans {keep:g} %")
    return j


def charged_share(limit: float, demand: float, charged: list[float]) -> Judged:
    """Launch-bound program alone under a limit at or below its demand: "GPU time still splits by the limits
    (±5 points)" -- the GPU time charged (median, % of the window) within ±5 of min(limit, demand)."""
    n = len(charged)
    target = min(limit, demand)
    med = statistics.median(charged) if charged else None
    short = runs_check(n)
    if short:
        return Judged(short, "", n, _r(med), _r(med - target) if med is not None else None)
    ok = abs(med - target) <= TOLERANCE_POINTS
    return Judged(MET if ok else NOT_MET, f"charged {med:.1f} % of the window vs min(limit {limit:g}, demand "
                  f"{demand:.1f}) = {target:.1f}", n, _r(med), _r(med - target))


def sibling_gpu(limit: float, runs: list[float]) -> Judged:
    """A GPU-bound container of n processes: gpu_bound_alone on its summed share. With fewer than 3 runs the
    reading says what the rule gives on the runs there, never a verdict."""
    j = gpu_bound_alone(limit, runs)
    if not j.verdict.startswith("not measured") or not runs:
        return j
    within = "within" if abs(j.error) <= TOLERANCE_POINTS else "outside"
    j.reading = (f"{len(runs)} run{'s' if len(runs) > 1 else ''}: median {j.median:g} % at limit {limit:g} "
                 f"({j.error:+g} points), {within} ±{TOLERANCE_POINTS:g}")
    return j


def sibling_launch(n: int, limit: float, runs: list[float], native: list[float], charged: list[float],
                   busy: float | None) -> tuple[Judged, str]:
    """A launch-bound container of n processes (issue 18's launch-bound rule). Its demand: n x the program's busy
    probe (capped at 100), else the GPU time it was charged when never held (median below limit - 5). A limit above
    that demand: launch_cost on throughput against the native container of n; otherwise charged_share."""
    note = SIBLINGS_LAUNCH_NOTE.format(n=n)
    held = charged and statistics.median(charged) >= limit - TOLERANCE_POINTS
    if busy is not None:
        demand, how = min(100.0, n * busy), f"demand {min(100.0, n * busy):.1f} % = {n} x busy probe {busy:.1f} %"
    elif charged and not held:
        demand = statistics.median(charged)
        how = f"demand {demand:.1f} % = charged at limit {limit:g} (never held)"
    elif held:
        demand, how = float(limit), f"held: charged {statistics.median(charged):.1f} % >= limit - 5, demand >= limit"
    else:
        return Judged("not measured: no busy probe and no charged GPU time", note, len(runs)), RULE_TEXT["launch-alone"]
    if demand < limit:
        if not native:
            j = Judged(f"not measured: no native container of {n}", "", len(runs))
        else:
            j = launch_cost(runs, native, [], [])
        rule = RULE_TEXT["launch-alone"]
    else:
        j, rule = charged_share(limit, demand, charged), RULE_TEXT["launch-charged"]
    j.why = "; ".join(x for x in (note, how, j.why) if x)
    return j, rule


def launch_pair(limits: tuple[int, int], runs: list[list[float]], native: list[list[float]],
                demand: float | None, charged: list[list[float | None]]) -> Judged:
    """Issue 18: "a pair whose combined GPU busy time fits in the GPU keeps >= 90 % of the unlimited pair's
    throughput; when they contend, GPU time still splits by the limits (±5 points)". Judged by the conformance
    probe's rule (hami_plugins_nvidia.probe._work_conserving: fitting when the solo demands add up to <= 95 %)
    on the run whose pair sum is the median, against the native pair run whose sum is the median. A contended
    pair that misses the bars against the wall is met when it meets them scaled to the GPU time the pair can keep
    busy, A = min(100, the larger of the native and the limited pair's sum of throughput share x busy probe), with
    the split by the limits and >= 90 % of the native pair's busy time (two JAX programs natively keep an H100
    ~90 % busy, record 14); the note names A, how it was estimated and the bar against the wall beside it.
    runs / native: % of the program's solo throughput; charged: % of the window."""
    from hami_plugins_nvidia.probe import _work_conserving

    from hami_hal.models import Level

    n = len(runs)
    meds = [_r(statistics.median(r[i] for r in runs)) for i in range(2)] if runs else None
    if demand is None:
        return Judged("not measured: no busy probe", "", n, meds)
    if not native:
        return Judged("not measured: no native pair", "", n, meds)
    short = runs_check(n)
    run = median_run(runs)
    nat = median_run(native)
    kept = 100 * sum(run) / sum(nat) if sum(nat) else None
    if short:
        return Judged(short, "", n, meds, None, _r(sum(run)), _r(kept))
    gpu = charged[runs.index(run)] if charged and len(charged) == n else [None, None]
    raw = {"native_pair_percent_of_solo": nat, "limited_pair_percent_of_solo": run, "limits_percent": list(limits),
           "solo_demand_percent": [demand, demand], "limited_pair_gpu_time_percent": gpu}
    level, _ms, note = _work_conserving(raw, "issue 18 judge")
    verdict = {Level.SUPPORTED: MET, Level.PARTIAL: NOT_MET, Level.UNSUPPORTED: NOT_MET}.get(
        level, f"not measured: {note}")
    return Judged(verdict, f"{note}; median run {run[0]:.1f}+{run[1]:.1f}, native {nat[0]:.1f}+{nat[1]:.1f}, kept "
                  f"{kept:.1f} % of the native pair", n, meds, None, _r(sum(run)), _r(kept))


def window_overlap(results: list[dict]) -> float | None:
    """The share (0-1) of the longest measuring window that all of a pair's workers measured together; None without
    each one's t0 and seconds. Below 1 when a worker's warm-up outlasted the common BENCH_GO (`late`)."""
    try:
        spans = [(float(r["t0"]), float(r["t0"]) + float(r["seconds"])) for r in results]
    except (KeyError, TypeError, ValueError):
        return None
    longest = max((e - s for s, e in spans), default=0.0)
    if not longest > 0:
        return None
    return max(0.0, min(e for _s, e in spans) - max(s for s, _e in spans)) / longest


class TimelineError(ValueError):
    """A policy timeline whose stamps cannot be placed on one clock."""


def stamps_bases(a: dict, b: dict) -> tuple[float, float]:
    """The wall-clock times A's and B's stamps count from: each worker's BENCH_GO (`stamps_base`), which is its
    window's start `t0` only when it was not late. A log without stamps_base gives a late worker's GO from its
    partner's (POLICY_B_AFTER_S apart); both late there: TimelineError."""
    def own(w: dict) -> float | None:
        base = w.get("stamps_base")
        if isinstance(base, int | float) and not isinstance(base, bool):
            return float(base)
        return None if w.get("late") else float(w["t0"])
    ba, bb = own(a), own(b)
    if ba is None and bb is None:
        raise TimelineError("both workers started late and their GO is not recorded")
    return (bb - POLICY_B_AFTER_S if ba is None else ba), (ba + POLICY_B_AFTER_S if bb is None else bb)


def policy_latencies(a: dict, b: dict, solo_step_s: float, limit: float) -> tuple[float | None, float | None]:
    """For one `default`-policy timeline (A alone, neighbour B arrives, leaves): seconds from B's arrival (the start
    of its window) to the end of A's first step at <= limit + 5 % of solo (capped), and from B's last step to the
    end of A's first step at >= 90 % of solo (released). Stamps are step ends relative to each worker's BENCH_GO
    (stamps_bases), A's first step begins at its t0. Before, they were read as relative to t0: a worker 2 s late
    made both latencies ~2 s long (record 5: 2.47 / 2.15 s read, 0.53 / 0.21 s on one clock)."""
    base_a, base_b = stamps_bases(a, b)
    b_start = b["t0"] - base_a
    b_end = base_b + b["stamps"][-1] - base_a
    ends = a["stamps"]
    steps = list(zip([a["t0"] - base_a, *ends[:-1]], ends, strict=True))

    def share(s: float, e: float) -> float:
        return 100 * solo_step_s / (e - s) if e > s else 0.0

    cap = next((e - b_start for s, e in steps if e > b_start and share(s, e) <= limit + TOLERANCE_POINTS), None)
    rel = next((e - b_end for s, e in steps if e > b_end and share(s, e) >= POLICY_RELEASE_SHARE_MIN), None)
    return _r(cap, 3), _r(rel, 3)


def policy_default(timelines: list[tuple[float | None, float | None]]) -> Judged:
    """Issue 18: "under `default`, a tenant whose neighbour goes idle reaches >= 90 % of solo within 1 s, and is
    capped again within 1 s of the neighbour's return" -- medians over >= 3 timelines of both latencies."""
    n = len(timelines)
    caps = [c for c, _ in timelines]
    rels = [r for _, r in timelines]
    if None in caps or None in rels:
        return Judged(NOT_MET, f"a timeline was never capped or never released (capped after {caps} s, released "
                      f"after {rels} s)", n)
    short = runs_check(n)
    med = [_r(statistics.median(caps), 3), _r(statistics.median(rels), 3)]
    if short:
        return Judged(short, f"capped after {caps} s, released after {rels} s", n, med)
    ok = max(med) <= POLICY_LATENCY_MAX_S
    return Judged(MET if ok else NOT_MET, f"median capped after {med[0]} s, released after {med[1]} s "
                  f"(runs: capped {caps}, released {rels})", n, med)


def memory_limit(entry: dict) -> Judged:
    """Issue 18: "Each: memory limit held (0 bytes over, measured with NVML from outside), the framework's own
    out-of-memory error at the limit" (JAX "must start and then stay inside the limit")."""
    fw = MEMORY_PROGRAMS[entry["program"]]
    err = str(entry.get("oom_error") or "")
    own = bool(FRAMEWORK_OOM[fw].search(err))
    over = entry["bytes_over_limit"]
    missed = [w for w, bad in (("did not start", not entry.get("started")), (f"{over} bytes over", over != 0),
                               (f"not {fw}'s own OOM error: {err[:80]!r}", not own)) if bad]
    why = "; ".join(missed) or (f"0 bytes over (NVML peak {entry.get('nvml_peak_delta_mib')} MiB above idle), "
                                f"{err[:70]}")
    return Judged(NOT_MET if missed else MET, why, 1, entry.get("nvml_peak_delta_mib"), over)


def tamper_tests(counts: dict[str, int]) -> Judged:
    """Issue 18: "the fault tests pass in CI against the fake libcuda and once on the GPU": the pytest log of
    test_interposer_tamper.py with HAMI_INTERPOSER_REAL_DRIVER=1 -- nothing failed, no error, no expected
    failure (an xfail is a known gap), at least one passed; skips (fake-only tests) are reported."""
    bad = {k: v for k, v in counts.items() if k in ("failed", "error", "errors", "xfailed") and v}
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    ok = not bad and counts.get("passed", 0) > 0
    return Judged(MET if ok else NOT_MET, summary, counts.get("passed", 0))


def conformance(level: str, notes: str) -> Judged:
    """Issue 18: "the conformance catalogue gains a behaviour for work-conserving sharing whose probe runs a
    pair of a training loop and of a small-batch inference loop" -- met when the matrix says supported."""
    if level == "supported":
        return Judged(MET, notes or "supported", 1)
    if level in ("partial", "unsupported"):
        return Judged(NOT_MET, f"{level}: {notes}", 1)
    return Judged(f"not measured: matrix level {level!r}", notes, 1)


#: Stage 6 (bench/issue18_gpu.sh): the resume credit cap's A/B. Runs whose only library knob is this one are
#: compared per program and limit, arm against arm (the knob empty = unset, the library's default, against each
#: cap), never judged against a target: the cap bounds a window from a resume to a stop, but it also shortens every
#: on-phase alone, and whether that moves a power-capped GPU's clock and the share decides its default.
RESUME_KNOB = "HAMI_SM_RESUME_CREDIT_MS"
RESUME_UNSET = "unset"
RESUME_RULE = ("a comparison, no target: matmul alone (force), throughput as % of the step's own solo, the knob "
               "unset against each cap; SM clock = mean of NVML samples (20 ms) during each run")


def resume_arm(limit: float, runs: list[float], mhz: list[float], solo_mhz: list[float],
               charged: list[float]) -> dict:
    """One arm of the stage-6 A/B at one limit: its runs, median, error against the limit (points), the SM clock
    during the runs and during the solos (MHz), and the GPU time the library charged (%)."""
    med = statistics.median(runs) if runs else None
    return {"n": len(runs), "runs": [_r(x) for x in runs], "median": _r(med),
            "error_points": _r(med - limit) if med is not None else None,
            "sm_mhz": [round(x) for x in mhz], "sm_mhz_median": round(statistics.median(mhz)) if mhz else None,
            "solo_sm_mhz_median": round(statistics.median(solo_mhz)) if solo_mhz else None,
            "charged_median": _r(statistics.median(charged)) if charged else None,
            "enough_runs": runs_check(len(runs)) is None}


def resume_delta(base: dict, arm: dict) -> dict:
    """An arm against the unset arm: share (points) and SM clock (MHz), where both were measured."""
    d = {"share_points": None, "sm_mhz": None}
    if base["median"] is not None and arm["median"] is not None:
        d["share_points"] = _r(arm["median"] - base["median"])
    if base["sm_mhz_median"] is not None and arm["sm_mhz_median"] is not None:
        d["sm_mhz"] = arm["sm_mhz_median"] - base["sm_mhz_median"]
    return d


#: Stage 7 (bench/issue18_gpu.sh, real_workloads.py --part siblings): n processes of ONE container at one limit.
#: The container is the tenant: a GPU-bound container's share (its workers' rates summed over the median solo) is
#: judged as gpu_bound_alone (±5 points of the limit; before multiproc it got 1/n of it). A launch-bound program's
#: "share" is its throughput, so its rows follow the issue's launch-bound rule, not ±5 points: a limit above the
#: container's busy fraction costs <= 5 % against the native container of as many workers (n = 1: the solos), a
#: limit at or below it holds the charged GPU time within ±5 of the limit. Runs pool across the stage-7 files of
#: one device and commit (one call runs each row once; >= 3 runs before a verdict, as everywhere).
SIBLINGS_MAX_PROCESSES = 64
SIBLINGS_CASE = re.compile(r"(\d+) processes of one container, (?:limit (\d+) % \(force\)|native \(no preload\))")
SIBLINGS_LAUNCH_NOTE = ("launch-bound: the container's share is its throughput against the native container of "
                        "{n} (the issue's launch-bound rule), not a GPU share within ±5 points")

RULE_TEXT = {
    "gpu-alone": f"GPU-bound alone: median of >= {MIN_RUNS} runs within ±{TOLERANCE_POINTS:g} points of the limit",
    "gpu-pair": f"GPU-bound pair: each tenant's median within ±{TOLERANCE_POINTS:g}, median per-run sum >= "
                f"{PAIR_SUM_MIN:g} %",
    "launch-alone": f"launch-bound, limit above its busy fraction: costs <= {LAUNCH_COST_MAX_PERCENT:g} % "
                    "(throughput, or the library's host µs per launch when the host's noise hides it)",
    "launch-alone-paired": f"launch-bound, limit above its busy fraction: costs <= {LAUNCH_COST_MAX_PERCENT:g} % "
                           "(paired ABBA windows on one core: the median block ratio's bootstrap interval, or the "
                           "library's host µs per launch when it spans the target)",
    "launch-charged": f"launch-bound, limit at or below its demand: charged GPU time within ±{TOLERANCE_POINTS:g} of "
                      "min(limit, demand)",
    "launch-pair": "launch-bound pair: the conformance probe's fitting (keeps >= 90 % of the native pair) / "
                   "contended (charged >= min(limit, demand) - 5, sum >= 95 %; else the same bars scaled to the GPU "
                   "time A the pair can keep busy, estimated from throughput x busy probe, with the split by the "
                   "limits and >= 90 % of the native pair's busy time kept) rule",
    "policy": f"`default` policy: capped within {POLICY_LATENCY_MAX_S:g} s of the neighbour's return, >= "
              f"{POLICY_RELEASE_SHARE_MIN:g} % of solo within {POLICY_LATENCY_MAX_S:g} s of it going idle "
              f"(medians of >= {MIN_RUNS})",
    "memory": "0 bytes over the limit (NVML from outside), the framework's own OOM error",
    "tamper": "tamper/fault tests on the real driver: none failed, none xfailed",
    "conformance": f"conformance behaviour {CONFORMANCE_ID}: supported",
    "siblings-gpu": f"GPU-bound container of n processes: its summed share's median of >= {MIN_RUNS} runs within "
                    f"±{TOLERANCE_POINTS:g} points of the container's limit",
}

# ================================================================== READING THE FOLDER


class JudgeError(Exception):
    """A file the judge cannot read or does not know: one line naming the file (and field)."""


@dataclass
class Source:
    """Where a figure came from: the file, the device line, the commit."""

    path: str
    device: str
    commit: str
    simulated: bool = False


@dataclass
class Row:
    target: str
    rule: str
    limits: str
    runs: list
    judged: Judged
    source: Source
    charged: list | None = None
    extra: dict = field(default_factory=dict)

    @property
    def decided(self) -> bool:
        return self.judged.verdict in (MET, NOT_MET)


#: nvidia-smi --query-gpu=name,driver_version,memory.total,... as csv, no header: "NVIDIA H200, 580.159.04, ..."
DEVICE_LINE = re.compile(r"^(?:device:\s*)?(?P<name>[A-Za-z][^,]*), (?P<driver>\d+\.\d+(?:\.\d+)*)(?:,|$)")
NOT_REAL = re.compile(r"fake|simulat|unknown", re.I)
COMMIT_LINE = re.compile(r"^(?:commit:?\s+(?P<a>[0-9a-f]{7,40})\b(?P<rest>.*)|(?P<b>[0-9a-f]{7,40}) .*)$")


def is_real_device(line: str) -> bool:
    """A device line as nvidia-smi prints it (name, driver version, ...) that names no fake or simulated device."""
    return bool(DEVICE_LINE.match(line.strip())) and not NOT_REAL.search(line)


def read_device_txt(path: Path) -> tuple[str | None, str | None]:
    """device.txt: the nvidia-smi line and the commit ("commit <sha> ..." or a `git log --oneline` line); an "env"
    line (issue18_gpu.sh: the library knobs set for the whole stage) is appended to the commit, so that a stage run
    with a knob changed never reads as the library as shipped."""
    device = commit = env = None
    for line in _read(path, path).decode(errors="replace").splitlines():
        line = line.strip()
        if device is None and DEVICE_LINE.match(line):
            device = re.sub(r"^device:\s*", "", line)
        m = COMMIT_LINE.match(line)
        if commit is None and m:
            commit = (m.group("a") + (m.group("rest") or "").rstrip()) if m.group("a") else m.group("b")
        if line.startswith("env ") and line[4:].strip():
            env = line[4:].strip()  # library knobs the whole stage ran with: part of every row's provenance
    if commit is not None and env:
        commit = f"{commit}; stage env {env[:200]}"
    return device, commit


#: A raw output larger than this is not one of the bench's (the device tool returns at most 16 MiB a file).
MAX_FILE_BYTES = 64 << 20


def _read(path: Path, rel: object) -> bytes:
    """A file's bytes, bounded: one line naming the file when it is too large or cannot be read."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise JudgeError(f"{rel}: larger than {MAX_FILE_BYTES >> 20} MiB, not a bench output")
        return path.read_bytes()
    except OSError as exc:
        raise JudgeError(f"{rel}: unreadable ({exc.strerror or exc.__class__.__name__})") from None


def _need(obj: object, key: str, types: type | tuple, path: str, where: str = "") -> object:
    name = f"{where}.{key}" if where else key
    if not isinstance(obj, dict) or key not in obj:
        raise JudgeError(f"{path}: missing field {name!r}")
    val = obj[key]
    if not isinstance(val, types) or isinstance(val, bool):  # no field read here is a boolean
        raise JudgeError(f"{path}: field {name!r} has an unexpected value {str(val)[:60]!r}")
    return val


def _nums(vals: Iterable, path: str, where: str) -> list[float]:
    out = []
    for v in vals:
        if v is None:
            continue  # a run that failed to report (the bench records None)
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1e9:
            raise JudgeError(f"{path}: field {where!r} holds {str(v)[:40]!r}, not a measurement")
        out.append(float(v))
    return out


def _charged_pairs(vals: object, path: str, where: str) -> list[list[float | None]]:
    """Per-run [tenant A, tenant B] charged GPU fractions as percentages; None where a tenant did not report."""
    if vals is None:
        return []
    if not isinstance(vals, list):
        raise JudgeError(f"{path}: field {where!r} is not a list of pairs")
    out = []
    for v in vals:
        if not isinstance(v, list) or len(v) != 2:
            raise JudgeError(f"{path}: field {where!r} holds {str(v)[:40]!r}, not a pair")
        out.append([None if c is None else 100 * _nums([c], path, where)[0] for c in v])
    return out


def _pairs(vals: object, path: str, where: str) -> list[list[float]]:
    if not isinstance(vals, list):
        raise JudgeError(f"{path}: field {where!r} is not a list of pairs")
    out = []
    for v in vals:
        if not isinstance(v, list) or len(v) != 2:
            raise JudgeError(f"{path}: field {where!r} holds {str(v)[:40]!r}, not a pair")
        nums = _nums(v, path, where)
        if len(nums) == 2:
            out.append(nums)
    return out


class Folder:
    """Everything the judge reads from one folder of raw outputs."""

    def __init__(self, root: Path, allow_fake: bool) -> None:
        if not root.is_dir():
            raise JudgeError(f"{root}: not a folder")
        self.root, self.allow_fake = root, allow_fake
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.probes: dict[tuple[str, str, str], float] = {}  # (program, device, commit) -> busy %
        self.timelines: dict[tuple[str, str], list] = {}  # (device, commit) -> [(cap, release, source)]
        self.simulated = False
        # stage 6: (program, limit, device, commit) -> arm -> {"runs", "mhz", "solo_mhz", "charged", "files"}
        self.resume: dict[tuple, dict[str, dict[str, list]]] = {}
        # stage 7: (program, processes, limit or None for native, device, commit) -> {"runs", "charged", "per", "src"}
        self.siblings: dict[tuple, dict[str, list]] = {}
        self.sibling_rows: list[Row] = []
        # stage 9: launch_cost.py --ladder files, each a comparison table (launch_ladder.py), never judged
        self.ladders: list[dict] = []
        # native pairs (no library) by (program, pool): context for the GPU-bound pair rows, never a verdict
        self.native_pairs: dict[tuple, list[list[float]]] = {}

    # ---------------------------------------------------------------- provenance
    def source(self, path: Path, device: str | None) -> Source:
        txt_dev = commit = None
        for d in [path.parent, *path.parent.parents]:
            if (d / "device.txt").is_file():
                txt_dev, commit = read_device_txt(d / "device.txt")
                break
            if d == self.root:
                break
        line = (device or txt_dev or "unknown (no device line)").strip()
        rel = str(path.relative_to(self.root))
        if not is_real_device(line):
            if not self.allow_fake:
                raise JudgeError(f"{rel}: device line {line[:80]!r} is not a real GPU (nvidia-smi name, driver); "
                                 "refused (--allow-fake judges it, every row labelled simulated)")
            self.simulated = True
        return Source(rel, line, commit or "unknown (no commit in device.txt)", not is_real_device(line))

    @staticmethod
    def pool(src: Source) -> tuple[str, str]:
        """What may pool across files (busy probes, policy timelines): the same device line and the same known
        commit; a file whose commit is unknown pools only with the files of its own folder."""
        known = not src.commit.startswith("unknown")
        return src.device, src.commit if known else f"{src.commit} in {Path(src.path).parent}"

    # ---------------------------------------------------------------- files
    def read(self) -> None:
        files = sorted(Path(d) / f for d, _dirs, names in os.walk(self.root) for f in names
                       if not (Path(d) / f).is_symlink())  # os.walk does not enter linked folders either
        loaded = []
        for p in files:
            if p.suffix == ".json" and not p.name.startswith("issue18-scorecard"):
                loaded.append((p, self._load(p)))
        first = {"rw": self._collect_probes, "lc1": self._lc1}  # busy probes classify programs for a whole commit
        then = {"rw": self._rw, "lc": self._lc, "matrix": self._matrix, "sib": self._siblings,
                "ladder": self._ladder, "turnslog": self._turnslog,
                "pairsread": self._pairsread}
        loaded = [(p, data) for p, data in loaded if not self._experiment(p, data)]
        for handlers in (first, then):
            for p, data in loaded:
                if handler := handlers.get(self._kind(p, data)):
                    self._guarded(p, handler, data)
        for p in files:
            if p.suffix == ".log" and "tamper" in p.name:
                self._guarded(p, self._tamper)
        self._policy_rows()
        self._sibling_judged()
        self._native_context()

    def _native_context(self) -> None:
        """A GPU-bound pair's row says what the same program's native pair (no library, same GPU and commit, any
        file of the folder: stage 11 runs it apart from the limited pairs) summed, and how much of it the limited
        pair kept: a GPU that loses throughput to time-slicing two contexts fails the 95 % sum natively too
        (record 7, H100: 91-92 %). Context only: the verdict stays the issue's rule."""
        for row in self.rows:
            if row.rule != RULE_TEXT["gpu-pair"] or row.judged.pair_sum is None:
                continue
            native = self.native_pairs.get((row.target.split(" pair ")[0], self.pool(row.source)))
            if not native:
                continue
            nsum = statistics.median_low(sum(r) for r in native)
            row.extra["native_pair_sum"] = _r(nsum)
            if nsum > 0:
                kept = 100 * row.judged.pair_sum / nsum
                note = (f"the native pair (no library, same GPU and commit) summed {nsum:.1f} % (median of "
                        f"{len(native)}): the limited pair kept {kept:.1f} % of it")
                row.judged.why = f"{row.judged.why}; {note}" if row.judged.why else note

    def _experiment(self, p: Path, data: dict) -> bool:
        """A run with library knobs of its own (real_workloads.py --tenant-env) is not the shipped library: noted,
        never judged (as launch_cost.py's variants with their own environment)."""
        knobs = data.get("tenant_env")
        if not knobs:
            return False
        if not isinstance(knobs, dict):
            raise JudgeError(f"{p.relative_to(self.root)}: field 'tenant_env' is a {type(knobs).__name__}, "
                             "not an object")
        if set(knobs) == {RESUME_KNOB}:
            self._guarded(p, self._resume_ab, data, knobs[RESUME_KNOB])
            return True
        text = " ".join(f"{k}={v}" for k, v in knobs.items())[:120]
        self.notes.append(f"{p.relative_to(self.root)}: an experiment ({text}): reported there, not judged")
        return True

    def _resume_ab(self, p: Path, data: dict, value: object) -> None:
        """A stage-6 file: real_workloads.py's alone rows under one arm of the resume credit knob (empty = unset)."""
        rel = str(p.relative_to(self.root))
        if not isinstance(value, str) or not (value == "" or re.fullmatch(r"[0-9]{1,5}", value)
                                               and 1 <= int(value) <= 10000):
            raise JudgeError(f"{rel}: field 'tenant_env.{RESUME_KNOB}' = {str(value)[:30]!r} is neither empty "
                             "(unset) nor a cap of 1..10000 ms")
        arm = str(int(value)) if value else RESUME_UNSET
        src = self.source(p, _need(data, "device", str, rel))
        for kind in (k for k in data if k in FAMILY):
            ent = _need(data, kind, dict, rel)
            solo_mhz = _nums(ent.get("solo_sm_mhz") or [], rel, f"{kind}.solo_sm_mhz")
            for i, row in enumerate(_need(ent, "rows", list, rel, kind)):
                where = f"{kind}.rows[{i}]"
                m = re.match(r"alone, limit (\d+) % \(force\)", _need(row, "case", str, rel, where))
                if not m:
                    continue  # stage 6 runs only the alone rows; anything else is not part of the A/B
                runs = _need(row, "runs", list, rel, where)
                acc = self.resume.setdefault((kind, int(m.group(1)), *self.pool(src)), {}).setdefault(
                    arm, {"runs": [], "mhz": [], "solo_mhz": [], "charged": [], "files": [], "src": []})
                acc["runs"] += _nums(runs, rel, f"{where}.runs")
                acc["mhz"] += _nums(row.get("sm_mhz") or [], rel, f"{where}.sm_mhz")
                acc["charged"] += [100 * c for c in _nums(row.get("gpu_time_charged") or [], rel,
                                                          f"{where}.gpu_time_charged")]
                acc["solo_mhz"] += solo_mhz
                acc["files"].append(rel)
                acc["src"].append(src)

    def comparisons(self) -> list[dict]:
        """Stage 6's rows: per program, limit, device and commit, each arm and each cap against the unset arm."""
        out = []
        for (kind, limit, dev, _commit), arms in sorted(self.resume.items()):
            order = sorted(arms, key=lambda a: (0, 0) if a == RESUME_UNSET else (1, int(a)))
            judged = {a: resume_arm(limit, arms[a]["runs"], arms[a]["mhz"], arms[a]["solo_mhz"], arms[a]["charged"])
                      for a in order}
            base = judged.get(RESUME_UNSET)
            for a, arm in judged.items():
                arm["vs_unset"] = resume_delta(base, arm) if base and a != RESUME_UNSET else None
            srcs = [s for v in arms.values() for s in v["src"]]
            out.append({"program": kind, "limit": limit, "rule": RESUME_RULE, "arms": judged,
                        "files": sorted({f for v in arms.values() for f in v["files"]}), "device": dev,
                        "commit": srcs[0].commit, "simulated": any(s.simulated for s in srcs)})
        return out

    def _guarded(self, p: Path, handler, *args) -> None:
        """The explicit checks name the field; a shape they did not foresee still ends in one line naming the file."""
        try:
            handler(p, *args)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError, ZeroDivisionError, RecursionError,
                statistics.StatisticsError) as exc:
            what = f"field {exc.args[0]!r} missing" if isinstance(exc, KeyError) else " ".join(str(exc).split())[:100]
            raise JudgeError(f"{p.relative_to(self.root)}: unexpected shape ({exc.__class__.__name__}: "
                             f"{what})") from None

    def _load(self, p: Path) -> dict:
        rel = p.relative_to(self.root)
        try:
            data = json.loads(_read(p, rel))
        except UnicodeDecodeError as exc:
            raise JudgeError(f"{rel}: unreadable ({exc.__class__.__name__})") from None
        except json.JSONDecodeError as exc:
            raise JudgeError(f"{rel}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        except RecursionError:
            raise JudgeError(f"{rel}: not valid JSON (nested too deeply)") from None
        if not isinstance(data, dict):
            raise JudgeError(f"{rel}: a JSON {type(data).__name__}, not an object")
        self._kind(p, data)  # refuses unknown shapes now, before anything is judged
        return data

    def _kind(self, p: Path, data: dict) -> str:
        if data.get("kind") == "CapabilityMatrix":
            return "matrix"
        if data.get("kind") == "TurnsLogSummary":
            return "turnslog"  # bench/turns_log.py --json (stage 29): an experiment's per-tenant summary, noted
        if data.get("kind") == "TrainPairsRead":
            return "pairsread"  # bench/train_pairs_read.py --json: a reading of the runs beside it, noted
        if "ladder" in data:
            return "ladder"  # launch_cost.py --ladder (stage 9): a comparison, read before the judged shapes
        if "limit_alone" in data and "alone" in data:
            return "lc"
        if isinstance(data.get("alone"), dict) and isinstance(data.get("busy"), dict):
            return "lc1"  # launch_cost.py's first version: every run unlimited (CUDA_TASK_PRIORITY=0)
        if "part" in data:
            if data["part"] == "siblings":
                return "sib"
            if data["part"] not in ("share", "other", "memory"):
                raise JudgeError(f"{p.relative_to(self.root)}: field 'part' = {str(data['part'])[:30]!r} is not "
                                 "a part this judge reads (share, other, memory, siblings)")
            return "rw"
        raise JudgeError(f"{p.relative_to(self.root)}: unknown JSON shape: no field 'part' (real_workloads), "
                         "'limit_alone' (launch_cost) or 'kind': 'CapabilityMatrix'")

    # ---------------------------------------------------------------- real_workloads.py
    def _collect_probes(self, p: Path, data: dict) -> None:
        src = self.source(p, _need(data, "device", str, str(p.relative_to(self.root))))
        for kind in FAMILY:
            probe = data.get(kind, {}).get("busy_probe") if isinstance(data.get(kind), dict) else None
            if isinstance(probe, dict) and probe.get("gpu_busy_fraction") is not None:
                busy = _nums([probe["gpu_busy_fraction"]], src.path, f"{kind}.busy_probe.gpu_busy_fraction")
                if busy:
                    self.probes[(kind, *self.pool(src))] = 100 * busy[0]

    def _rw(self, p: Path, data: dict) -> None:
        rel = str(p.relative_to(self.root))
        dev = _need(data, "device", str, rel)
        src = self.source(p, dev)
        if data.get("rebuilt_from_log") or data.get("incomplete"):
            how = f"rebuilt from its {data['rebuilt_from_log']}" if data.get("rebuilt_from_log") else "written at a stop"
            self.notes.append(f"{rel}: {how} ({str(data.get('incomplete', ''))[:120]}): its rows hold the runs done, "
                              f"fewer than {MIN_RUNS} not judged")
        overlaps, destroys = self._run_log(p, data)
        if destroys:  # gatefix: is the stream-destroy hook reached through the framework (CuPy, JAX destroy streams)?
            tot = {k: sum(d[k] for d in destroys) for k in STREAM_DESTROYS}
            self.notes.append(f"{rel}: stream-destroy hook over {len(destroys)} library runs: "
                              + ", ".join(f"{k} {v}" for k, v in tot.items())
                              + (" (none reached it)" if not tot["destroyed"] else ""))
        for key in data:
            if key in FAMILY:
                self._rw_program(rel, src, key, _need(data, key, dict, rel), overlaps)
        if "memory" in data:
            for i, entry in enumerate(_need(data, "memory", list, rel)):
                where = f"memory[{i}]"
                prog = _need(entry, "program", str, rel, where)
                if prog not in MEMORY_PROGRAMS:
                    raise JudgeError(f"{rel}: field '{where}.program' = {prog[:30]!r} is not torchmem, jax or cupy")
                _need(entry, "bytes_over_limit", int, rel, where)
                fw = MEMORY_PROGRAMS[prog]
                self.rows.append(Row(f"memory {fw}", RULE_TEXT["memory"], f"{entry.get('limit_mib')} MiB",
                                     [entry.get("filled_mib")], memory_limit(entry), src))
        self._timelines_from_log(p, src, data)

    def _run_log(self, p: Path, data: dict) -> tuple[dict[tuple[str, str, str], list[float | None]],
                                                      list[dict[str, int]]]:
        """From the per-run log beside the JSON, read once: per (program, limit A, limit B) each limited pair run's
        window_overlap, in log order (the order of the row's runs); and each library run's stream-destroy section
        (stream_destroys, since gatefix). ({}, []) without a log."""
        log = p.parent / f"real-{data.get('part')}.log"
        if not log.is_file():
            return {}, []
        half: dict = {}
        out: dict[tuple[str, str, str], list[float | None]] = {}
        destroys: list[dict[str, int]] = []
        for line in _read(log, log.relative_to(self.root)).decode(errors="replace").splitlines():
            label, sep, body = line.partition(": {")
            if not sep:
                continue
            try:
                res = json.loads("{" + body)
            except json.JSONDecodeError:
                res = {}
            logged = res.get("interposer_lines") if isinstance(res, dict) else None
            for ln in logged if isinstance(logged, list) else []:
                if isinstance(ln, str) and (sd := stream_destroys(ln)):
                    destroys.append(sd)
            m = re.fullmatch(r"(\w+) pair (\d+)\+(\d+) #\d+\[([01])\]", label.strip())
            if not m:
                continue
            key = m.group(1, 2, 3)
            if m.group(4) == "0":
                half[key] = res
            elif key in half:
                out.setdefault(key, []).append(window_overlap([half.pop(key), res]))
        return out, destroys

    def _rw_program(self, rel: str, src: Source, kind: str, ent: dict, overlaps: dict) -> None:
        solo = ent.get("solo_native")
        solos = _nums(solo if isinstance(solo, list) else [solo], rel, f"{kind}.solo_native")
        solo_med = statistics.median(solos) if solos else None
        rows = _need(ent, "rows", list, rel, kind)
        native: list[list[float]] = []
        alone: list[tuple[int, list[float], list[float]]] = []
        pairs: list[tuple[tuple[int, int], list[list[float]], list, int]] = []  # ..., runs set aside
        for i, row in enumerate(rows):
            where = f"{kind}.rows[{i}]"
            case = _need(row, "case", str, rel, where)
            runs = row.get("runs", None)
            if m := re.match(r"alone, limit (\d+) % \(force\)", case):
                vals = runs if runs is not None else [_need(row, "achieved", (int, float), rel, where)]
                if not isinstance(vals, list):
                    raise JudgeError(f"{rel}: field '{where}.runs' is not a list")
                charged = _nums(row.get("gpu_time_charged") or [], rel, f"{where}.gpu_time_charged")
                alone.append((int(m.group(1)), _nums(vals, rel, f"{where}.runs"), [100 * c for c in charged]))
            elif m := re.match(r"pair (\d+) \+ (\d+) \(default policy\)", case):
                vals = runs if runs is not None else [_need(row, "achieved", list, rel, where)]
                kept, charged_raw = self._overlapping(rel, where, overlaps.get((kind, m.group(1), m.group(2))),
                                                      vals, row.get("gpu_time_charged"))
                charged = _charged_pairs(charged_raw, rel, f"{where}.gpu_time_charged")
                aside = len(vals) - len(kept) if isinstance(vals, list) and isinstance(kept, list) else 0
                pairs.append(((int(m.group(1)), int(m.group(2))), _pairs(kept, rel, f"{where}.runs"), charged, aside))
            elif case.startswith("pair, native"):
                native = _pairs(runs if runs is not None else [_need(row, "achieved", list, rel, where)], rel,
                                f"{where}.runs")
                self.native_pairs.setdefault((kind, self.pool(src)), []).extend(native)
            elif case.startswith("pair, no limit"):
                continue  # the unlimited pair's charge: a diagnostic, no target
            else:
                raise JudgeError(f"{rel}: field '{where}.case' = {case[:50]!r} is not a case this judge knows")
        demand, how = self._demand(kind, src, alone)
        family = self._family(kind, demand)
        for limit, runs, charged in alone:
            self.rows.append(self._alone_row(kind, family, limit, runs, charged, demand, how, solos, solo_med, src))
        for limits, runs, charged, aside in pairs:
            row = self._pair_row(kind, family, limits, runs, charged, native, demand, how, src)
            if aside and not runs:
                row.judged.verdict = (f"not measured: no run whose tenants' windows overlapped >= "
                                      f"{100 * PAIR_OVERLAP_MIN:.0f} % (notes)")
            self.rows.append(row)

    def _overlapping(self, rel: str, where: str, ov: list | None, runs: object, charged: object
                     ) -> tuple[object, object]:
        """The runs (and their charges) whose tenants' windows overlapped by PAIR_OVERLAP_MIN (ov: one overlap per
        run, from the per-run log); the others are set aside with a note. Without the log's runs, or with another
        number of them than the row's, the row is taken whole and the note says so."""
        if not isinstance(runs, list):
            return runs, charged
        if ov is None or len(ov) != len(runs):
            self.notes.append(f"{rel}: {where}: the tenants' windows could not be checked for overlap (the per-run "
                              f"log {'is missing' if ov is None else f'holds {len(ov)} runs, the row {len(runs)}'})")
            return runs, charged
        keep = [i for i, x in enumerate(ov) if x is not None and x >= PAIR_OVERLAP_MIN]
        if len(keep) < len(runs):
            self.notes.append(f"{rel}: {where}: {len(runs) - len(keep)} of {len(runs)} runs set aside, their tenants' "
                              f"windows overlapping {', '.join('?' if x is None else f'{100 * x:.0f} %' for x in ov)} "
                              f"(a pair needs >= {100 * PAIR_OVERLAP_MIN:.0f} %: a late tenant ran part alone)")
        ch = [charged[i] for i in keep] if isinstance(charged, list) and len(charged) == len(runs) else charged
        return [runs[i] for i in keep], ch

    def _demand(self, kind: str, src: Source, alone: list) -> tuple[float | None, str]:
        """The program's solo GPU demand: its busy probe (this file's, else one of the same device and commit); for
        the launch-bound loop also the GPU time it was charged alone when never held (below its limit - 5)."""
        busy = self.probes.get((kind, *self.pool(src)))
        if busy is not None:
            return busy, f"busy probe {busy:.1f} %"
        if FAMILY[kind] == "launch":
            for limit, _runs, charged in sorted(alone, reverse=True):
                if len(charged) and statistics.median(charged) < limit - TOLERANCE_POINTS:
                    d = statistics.median(charged)
                    return d, f"demand {d:.1f} % = charged alone at limit {limit} (never held)"
        return None, "no busy probe"

    @staticmethod
    def _family(kind: str, demand: float | None) -> str | None:
        fam = FAMILY[kind]
        if fam != "probe":
            return fam
        if demand is None:
            return None
        return "gpu" if demand >= GPU_BOUND_BUSY_MIN_PERCENT else "launch"

    def _alone_row(self, kind, family, limit, runs, charged, demand, how, solos, solo_med, src,
                   lib_us=(), loop_us=(), paired=None) -> Row:
        target = f"{kind} alone {limit} %"
        if family == "gpu":
            j, rule = gpu_bound_alone(limit, runs), RULE_TEXT["gpu-alone"]
        elif family is None:
            reading = gpu_bound_alone(limit, runs)
            j = Judged("not measured: no busy probe", "", len(runs), reading.median, reading.error,
                       reading=f"GPU-bound rule: {reading.verdict}")
            rule = "classified by the busy probe (none)"
        elif demand is None:
            j, rule = Judged("not measured: no busy probe", "", len(runs)), RULE_TEXT["launch-alone"]
        elif demand < limit and paired is not None:  # launch_cost.py's paired windows: the block ratios decide
            j, rule = launch_cost_paired(paired, list(lib_us), list(loop_us)), RULE_TEXT["launch-alone-paired"]
            runs = [_r(100 * r, 2) for r in paired]
        elif demand < limit:
            rates = [r * solo_med / 100 for r in runs] if solo_med else []
            j, rule = launch_cost(rates, solos, list(lib_us), list(loop_us)), RULE_TEXT["launch-alone"]
        else:  # the runs shown are the charged GPU times the rule reads (throughput in `why`)
            j, rule = charged_share(limit, demand, charged), RULE_TEXT["launch-charged"]
            j.why = f"{j.why}; throughput runs {', '.join(f'{r:.1f}' for r in runs)} % of solo".lstrip("; ")
            runs = [_r(c) for c in charged]
        if family and FAMILY[kind] == "probe" or FAMILY[kind] == "launch":
            j.why = f"{how}; {j.why}" if j.why else how
        return Row(target, rule, f"{limit}", runs, j, src, charged or None)

    def _pair_row(self, kind, family, limits, runs, charged, native, demand, how, src) -> Row:
        target = f"{kind} pair {limits[0]}+{limits[1]}"
        if family == "gpu":
            j, rule = gpu_bound_pair(limits, runs), RULE_TEXT["gpu-pair"]
        elif family is None:
            reading = gpu_bound_pair(limits, runs)
            j = Judged("not measured: no busy probe", "", len(runs), reading.median, reading.error, reading.pair_sum,
                       reading=f"GPU-bound rule: {reading.verdict}" + (f" ({reading.why})" if reading.why else ""))
            rule = "classified by the busy probe (none)"
        else:
            j, rule = launch_pair(limits, runs, native, demand, charged), RULE_TEXT["launch-pair"]
            j.why = f"{how}; {j.why}" if j.why else how
        return Row(target, rule, f"{limits[0]}+{limits[1]}", runs, j, src, charged or None)

    def _timelines_from_log(self, p: Path, src: Source, data: dict) -> None:
        """`default`-policy timelines: the per-worker log beside the JSON holds each tenant's step stamps."""
        log = p.parent / f"real-{data['part']}.log"
        if not log.is_file():
            if any(isinstance(v, dict) and "policy" in v for v in data.values()):
                self.notes.append(f"{src.path}: a policy timeline without its log {log.name}: not judged")
            return
        solos: dict[str, list[float]] = {}
        pending: dict[str, dict] = {}
        limit = POLICY_A_LIMIT_DEFAULT
        for ent in data.values():
            if isinstance(ent, dict) and isinstance(ent.get("policy"), dict):
                limit = ent["policy"].get("limits", [limit])[0]
        for line in _read(log, log.relative_to(self.root)).decode(errors="replace").splitlines():
            label, sep, body = line.partition(": {")
            if not sep:
                continue
            try:
                res = json.loads("{" + body)
            except json.JSONDecodeError:
                continue  # a line cut short: not a result
            if m := re.fullmatch(r"(\w+) solo native.*", label):
                if isinstance(res.get("rate"), int | float):
                    solos.setdefault(m.group(1), []).append(res["rate"])
            elif m := re.fullmatch(r"(?:(\w+) )?policy ([AB])", label):
                kind = m.group(1) or "train"
                if m.group(2) == "A":
                    pending[kind] = res
                elif kind in pending:
                    self._timeline(kind, pending.pop(kind), res, solos.get(kind, []), limit, src, log)

    def _timeline(self, kind, a, b, solos, limit, src, log) -> None:
        rel = str(log.relative_to(self.root))
        try:
            units_per_step = a["rate"] * a["seconds"] / len(a["stamps"])
            solo_step = units_per_step / statistics.median(solos)
            lat = policy_latencies(a, b, solo_step, limit)
        except TimelineError as exc:
            self.notes.append(f"{rel}: a {kind} policy timeline: {exc}: not judged")
            return
        except (KeyError, TypeError, ZeroDivisionError, IndexError, statistics.StatisticsError):
            self.notes.append(f"{rel}: a {kind} policy timeline without stamps, rates or solo runs: not judged")
            return
        self.timelines.setdefault(self.pool(src), []).append((*lat, rel, src))

    def _policy_rows(self) -> None:
        """Timelines pool across the files of one device and commit (each is self-contained: its own latencies)."""
        for (_dev, _commit), tls in self.timelines.items():
            j = policy_default([(c, r) for c, r, _p, _s in tls])
            src = tls[-1][3]
            paths = sorted({p for *_x, p, _s in tls})
            self.rows.append(Row(POLICY_TARGET, RULE_TEXT["policy"], "A 30 % + B 70 %",
                                 [[c, r] for c, r, _p, _s in tls], j,
                                 Source(", ".join(paths), src.device, src.commit, src.simulated)))

    # ---------------------------------------------------------------- real_workloads.py --part siblings (stage 7)
    def _siblings(self, p: Path, data: dict) -> None:
        """A stage-7 file: per program, the solos and the rows of n processes sharing one region (one container)."""
        rel = str(p.relative_to(self.root))
        src = self.source(p, _need(data, "device", str, rel))
        for kind in (k for k in data if k in FAMILY):
            ent = _need(data, kind, dict, rel)
            solo = ent.get("solo_native")
            solos = _nums(solo if isinstance(solo, list) else [solo], rel, f"{kind}.solo_native")
            if solos:  # one process unlimited: the native container of 1, as % of the median solo
                med = statistics.median(solos)
                self._sibling_acc(kind, 1, None, src)["runs"] += [100 * r / med for r in solos] if med else []
            for i, row in enumerate(_need(ent, "rows", list, rel, kind)):
                where = f"{kind}.rows[{i}]"
                case = _need(row, "case", str, rel, where)
                m = SIBLINGS_CASE.fullmatch(case)
                if not m:
                    raise JudgeError(f"{rel}: field '{where}.case' = {case[:50]!r} is not a case this judge knows")
                n = int(m.group(1))
                limit = int(m.group(2)) if m.group(2) else None
                if not 1 <= n <= SIBLINGS_MAX_PROCESSES or limit is not None and not 1 <= limit <= 100:
                    raise JudgeError(f"{rel}: field '{where}.case' = {case[:50]!r}: processes 1..{SIBLINGS_MAX_PROCESSES}"
                                     ", limit 1..100 %")
                achieved = _need(row, "achieved", (int, float), rel, where)
                acc = self._sibling_acc(kind, n, limit, src)
                acc["runs"] += _nums([achieved], rel, f"{where}.achieved")
                acc["charged"] += [100 * c for c in _nums([row.get("gpu_time_charged")], rel,
                                                          f"{where}.gpu_time_charged")]
                per = row.get("per_process")
                if per is not None:
                    if not isinstance(per, list) or len(per) != n:
                        raise JudgeError(f"{rel}: field '{where}.per_process' is not a list of {n} shares")
                    acc["per"].append([_r(x) for x in _nums(per, rel, f"{where}.per_process")])
                acc["files"].append(rel)

    def _sibling_acc(self, kind: str, n: int, limit: int | None, src: Source) -> dict[str, list]:
        acc = self.siblings.setdefault((kind, n, limit, *self.pool(src)),
                                       {"runs": [], "charged": [], "per": [], "files": [], "src": []})
        acc["src"].append(src)
        return acc

    def _sibling_judged(self) -> None:
        """Stage 7's rows, one per program, processes and limit (device and commit), runs pooled across files."""
        for (kind, n, limit, dev, commit), acc in sorted(self.siblings.items(), key=lambda kv: str(kv[0])):
            if limit is None:
                continue
            native = self.siblings.get((kind, n, None, dev, commit), {}).get("runs", [])
            busy = self.probes.get((kind, dev, commit))
            family = self._family(kind, busy)
            runs, charged = acc["runs"], acc["charged"]
            if family == "gpu":
                j, rule = sibling_gpu(limit, runs), RULE_TEXT["siblings-gpu"]
            elif family is None:
                reading = sibling_gpu(limit, runs)
                j = Judged("not measured: no busy probe", "", len(runs), reading.median, reading.error,
                           reading=f"GPU-bound rule: {reading.verdict}")
                rule = "classified by the busy probe (none)"
            else:
                j, rule = sibling_launch(n, limit, runs, native, charged, busy)
            src = acc["src"][-1]
            files = sorted(set(acc["files"]))
            row = Row(f"{kind} {n} processes of one container {limit} %", rule, f"{limit}", [_r(x) for x in runs], j,
                      Source(", ".join(files), src.device, src.commit, any(s.simulated for s in acc["src"])),
                      [_r(c) for c in charged] or None,
                      {"program": kind, "processes": n, "per_process": acc["per"],
                       "native_container": [_r(x) for x in native]})
            self.sibling_rows.append(row)

    # ---------------------------------------------------------------- launch_cost.py
    def _lc(self, p: Path, data: dict) -> None:
        rel = str(p.relative_to(self.root))
        src = self.source(p, _need(data, "device", str, rel))
        command = _need(data, "command", str, rel)
        kind = (re.search(r"--kind (\w+)", command) or [None, "infer"])[1]
        if kind not in FAMILY:
            raise JudgeError(f"{rel}: field 'command' runs --kind {kind[:20]!r}, not a program this judge knows")
        limit = _need(data, "limit_alone", int, rel)
        alone = _need(data, "alone", dict, rel)
        # stage 21: a pairs-only A/B, no solo run to put its rates against
        if not alone and re.search(r"--rounds 0(?!\d)", command):
            self.notes.append(f"{rel}: pairs only (--rounds 0: no native solo run, so no % of solo): reported in its "
                              "record, not judged")
            return
        nat = _need(alone, "native", dict, rel, "alone")
        native = _nums(_need(nat, "rates", list, rel, "alone.native"), rel, "alone.native.rates")
        shipped = self._shipped_variants(command)
        probes = data.get("busy_probe", {})
        if not isinstance(probes, dict):
            raise JudgeError(f"{rel}: field 'busy_probe' is {type(probes).__name__}, not an object")
        for name in sorted(shipped & set(probes)):  # the shipped build unlimited, measured: the program's demand
            pent = probes[name]
            if not isinstance(pent, dict):
                raise JudgeError(f"{rel}: field 'busy_probe.{name}' is {type(pent).__name__}, not an object")
            busy = _nums([pent.get("gpu_busy_fraction")], rel, f"busy_probe.{name}.gpu_busy_fraction")
            if busy:
                self.probes.setdefault((kind, *self.pool(src)), 100 * busy[0])
        loop_us = [r["host_us_per_launch"] for v in alone.values() for r in v.get("runs", [])
                   if isinstance(r, dict) and isinstance(r.get("host_us_per_launch"), int | float)]
        solo_med = statistics.median(native) if native else None
        paired = data.get("paired")
        if paired is not None and not (isinstance(paired, dict) and isinstance(paired.get("windows"), list)
                                       and all(isinstance(w, dict) and isinstance(w.get("arm"), str)
                                               and isinstance(w.get("block"), int) for w in paired["windows"])):
            raise JudgeError(f"{rel}: field 'paired' is not launch_cost.py's paired windows (a list of windows with "
                             "'arm' and 'block')")
        for name, ent in alone.items():
            if name == "native":
                continue
            if name not in shipped:
                self.notes.append(f"{rel}: variant {name!r} is not the shipped library (own sources, defines or "
                                  "environment): reported there, not judged")
                continue
            where = f"alone.{name}"
            rates = _nums(_need(ent, "rates", list, rel, where), rel, f"{where}.rates")
            runs = [100 * r / solo_med for r in rates] if solo_med else []
            charged = [100 * c for c in _nums([r.get("gpu_time_charged") for r in ent.get("runs", [])], rel,
                                               f"{where}.runs.gpu_time_charged")]
            lib_us = [u for r in ent.get("runs", []) if (u := library_host_us(r.get("launch_stats")))]
            held_says = [h for r in ent.get("runs", []) if (h := holds_in_host_us(r.get("launch_stats")))]
            demand, how = self._demand(kind, src, [(limit, runs, charged)])
            ratios = None
            if paired is not None:  # old records have no `paired`: judged by their rounds as before
                for w in paired["windows"]:
                    if w.get("rate") is not None:
                        _nums([w["rate"]], rel, f"paired.windows.{w['arm']}.rate")
                ratios = _paired_module().block_ratios(paired["windows"], name)
            row = self._alone_row(kind, self._family(kind, demand), limit, runs, charged, demand, how, native,
                                  solo_med, src, lib_us, loop_us, ratios)
            if held_says and lib_us:  # record 14: 59 µs "before the launch" were the holds, not a cost
                row.judged.why = f"{row.judged.why}; library µs: {'; '.join(held_says)}"
                self.notes.append(f"{rel}: alone.{name}: the library's {', '.join(f'{u:.2f}' for u in lib_us)} µs per "
                                  f"launch: {'; '.join(held_says)}")
            row.extra = {"variant": name, "library_us_per_launch": [round(u, 2) for u in lib_us],
                         "loop_us_per_launch_fast": min(loop_us) if loop_us else None}
            self.rows.append(row)
            pairs = _need(data, "pairs", dict, rel)
            nat_pairs = [[100 * x / solo_med for x in pr] for pr in _pairs(pairs.get("native", []), rel,
                                                                             "pairs.native")] if solo_med else []
            for key, pent in pairs.items():
                m = re.fullmatch(r"(\d+)\+(\d+) (.+)", key)
                if key == "native" or not m or m.group(3) != name:
                    continue
                where = f"pairs.{key}"
                rates = _pairs(_need(pent, "rates", list, rel, where), rel, f"{where}.rates")
                runs_p = [[100 * x / solo_med for x in pr] for pr in rates]
                charged_p = _charged_pairs(pent.get("charged"), rel, f"{where}.charged")
                self.rows.append(self._pair_row(kind, self._family(kind, demand), (int(m.group(1)), int(m.group(2))),
                                                runs_p, charged_p, nat_pairs, demand, how, src))

    def _ladder(self, p: Path, data: dict) -> None:
        """A stage-9 file: the launch ladder, printed as a table (launch_ladder.py), no verdict."""
        lad = _ladder_module()
        rel = str(p.relative_to(self.root))
        src = self.source(p, _need(data, "device", str, rel))
        try:
            rows = lad.ladder_rows(data, rel)
        except lad.LadderError as exc:
            raise JudgeError(str(exc)) from None
        self.ladders.append({"file": rel, "device": src.device, "commit": src.commit, "simulated": src.simulated,
                             "rounds_done": data.get("rounds_done"), "rows": rows})

    def _turnslog(self, p: Path, data: dict) -> None:
        """A stage-29 file: turns_log.py's per-tenant summary of an experiment's stay-test judgements; noted with
        its totals, no verdict (the knobs it ran under are in its tenants' rows)."""
        rel = str(p.relative_to(self.root))
        tenants = _need(data, "tenants", list, rel)
        count = {k: 0 for k in ("judgements", "in", "miss", "out")}
        for i, t in enumerate(tenants):
            if not isinstance(t, dict):
                raise JudgeError(f"{rel}: field 'tenants[{i}]' is a {type(t).__name__}, not an object")
            for k in count:
                count[k] += _need(t, k, int, rel, f"tenants[{i}]")
        self.notes.append(f"{rel}: turns log of {len(tenants)} tenants (an experiment, not judged): "
                          + ", ".join(f"{k} {v}" for k, v in count.items()))

    def _pairsread(self, p: Path, data: dict) -> None:
        """train_pairs_read.py's rows: a reading of the real_workloads logs the judge reads itself; noted, no verdict."""
        rel = str(p.relative_to(self.root))
        self.notes.append(f"{rel}: train_pairs_read.py's reading of {len(_need(data, 'records', list, rel))} logs "
                          "(not judged: the runs it reads are judged from their own files)")

    def _lc1(self, p: Path, data: dict) -> None:
        """launch_cost.py's first output shape ran every library build unlimited with CUDA_TASK_PRIORITY=0 (measured,
        never capped): no target of its own, but its shipped build's charge is the program's busy probe."""
        rel = str(p.relative_to(self.root))
        src = self.source(p, _need(data, "device", str, rel))
        command = _need(data, "command", str, rel)
        kind = (re.search(r"--kind (\w+)", command) or [None, "infer"])[1]
        for name in self._shipped_variants(command) & set(data["busy"]):
            busy = _nums(_need(data["busy"], name, list, rel, "busy"), rel, f"busy.{name}")
            if busy and kind in FAMILY:
                self.probes.setdefault((kind, *self.pool(src)), 100 * statistics.median(busy))
        self.notes.append(f"{rel}: launch_cost runs with no SM limit (first output version): no target; its shipped "
                          "build's charged GPU time counts as the program's busy probe for that commit")

    @staticmethod
    def _shipped_variants(command: str) -> set[str]:
        """Variants built from the checkout's csrc with no extra defines or environment: the library as shipped.

        The checkout's csrc is the relative path the plan passes ($C, from the repository root): sources elsewhere that
        end the same way (stage 24's `old` arm, an older commit's tree under /tmp) are another library."""
        names = set()
        for spec in re.findall(r"--variant (\S+)", command):
            name, _, rest = spec.partition("=")
            csrc, _, tail = rest.partition(":")
            path = csrc.rstrip("/").removeprefix("./")
            if path == "hami_plugins_nvidia/hami_plugins_nvidia/csrc" and not tail.strip(":"):
                names.add(name)
        return names

    # ---------------------------------------------------------------- conformance, tamper
    def _matrix(self, p: Path, data: dict) -> None:
        rel = str(p.relative_to(self.root))
        for i, entry in enumerate(_need(data, "entries", list, rel)):
            prov = _need(entry, "provenance", dict, rel, f"entries[{i}]")
            real = prov.get("source") == "real"
            device = f"{prov.get('device_model')}, {prov.get('driver_version')}" if real else \
                f"simulated ({prov.get('source')}, profile {prov.get('profile')})"
            src = self.source(p, device)
            for cap in _need(entry, "capabilities", list, rel, f"entries[{i}]"):
                if isinstance(cap, dict) and cap.get("id") == CONFORMANCE_ID:
                    level = str(_need(cap, "level", str, rel, f"entries[{i}].capabilities"))
                    self.rows.append(Row(CONFORMANCE_TARGET, RULE_TEXT["conformance"], "50+50", [level],
                                         conformance(level, str(cap.get("notes") or "")), src))

    def _tamper(self, p: Path) -> None:
        rel = str(p.relative_to(self.root))
        src = self.source(p, None)
        text = _read(p, rel).decode(errors="replace")
        lines = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", ln)
                 and re.search(r" in [\d.]+s", ln)]
        if not lines:
            self.rows.append(Row(TAMPER_TARGET, RULE_TEXT["tamper"], "", [],
                                 Judged(f"not measured: {rel} has no pytest summary line (cut short?)"), src))
            return
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)",
                                                   lines[-1])}
        self.rows.append(Row(TAMPER_TARGET, RULE_TEXT["tamper"], "", [counts], tamper_tests(counts), src))


# ================================================================== THE SCORECARD


def expected_targets() -> list[str]:
    out = []
    for prog, limits in EXPECTED_ALONE.items():
        out += [f"{prog} alone {lim} %" for lim in limits]
        if prog in EXPECTED_PAIRS:
            out += [f"{prog} pair {a}+{b}" for a, b in PAIR_LIMITS]
    out += [POLICY_TARGET] + [f"memory {fw}" for fw in FRAMEWORK_OOM] + [TAMPER_TARGET, CONFORMANCE_TARGET]
    return out


def decisive(rows: list[Row]) -> Row:
    """The row that speaks for a target: decided (met / not met) before not measured, then the most runs, then the
    later file (sorted paths: run2 after run1, stage3 after stage1)."""
    return max(rows, key=lambda r: (r.decided, r.judged.n, r.source.path))


def _fmt(x: object) -> str:
    if x is None:
        return ""
    if isinstance(x, list):
        return " + ".join(_fmt(v) for v in x)
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _runs_text(runs: list) -> str:
    if runs and isinstance(runs[0], list):
        return "; ".join("+".join(_fmt(v) for v in r) for r in runs)
    return ", ".join(_fmt(v) for v in runs)


def scorecard(folder: Folder) -> dict:
    by_target: dict[str, list[Row]] = {}
    for row in folder.rows:
        by_target.setdefault(row.target, []).append(row)
    targets = []
    for t in expected_targets() + sorted(set(by_target) - set(expected_targets())):
        rows = by_target.get(t)
        if not rows:
            targets.append({"target": t, "verdict": "not measured: no data in this folder"})
            continue
        best = decisive(rows)
        targets.append(_row_json(best) | {"other_sources": [r.source.path for r in rows if r is not best]})
    label = " (simulated)" if folder.simulated else ""
    if folder.simulated:  # a simulated figure is never shown as, nor mixed into, a hardware result
        for t in [*targets, *(rows := [_row_json(r) for r in folder.rows])]:
            if not t["verdict"].endswith(label):
                t["verdict"] += label
    else:
        rows = [_row_json(r) for r in folder.rows]
    siblings = [_row_json(r) for r in folder.sibling_rows]
    if folder.simulated:
        for t in siblings:
            if not t["verdict"].endswith(label):
                t["verdict"] += label
    return {"generated_by": "hami_plugins_nvidia/bench/issue18_judge.py", "folder": str(folder.root),
            "simulated": folder.simulated, "min_runs": MIN_RUNS,
            "counts": {v: sum(1 for t in targets if t["verdict"].startswith(v)) for v in (MET, NOT_MET, "not measured")},
            "label": label, "targets": targets, "rows": rows, "resume_credit_ab": folder.comparisons(),
            "siblings": siblings, "launch_ladder": folder.ladders,
            "siblings_counts": {v: sum(1 for t in siblings if t["verdict"].startswith(v))
                                for v in (MET, NOT_MET, "not measured")},
            "notes": folder.notes}


def _row_json(r: Row) -> dict:
    verdict = r.judged.verdict + (" (simulated)" if r.source.simulated else "")
    return {"target": r.target, "verdict": verdict, "rule": r.rule, "limits": r.limits, "n": r.judged.n,
            "runs": r.runs, "median": r.judged.median, "error_points": r.judged.error, "pair_sum": r.judged.pair_sum,
            "kept_percent_of_native_pair": r.judged.kept, "why": r.judged.why, "reading": r.judged.reading,
            "gpu_time_charged": r.charged, **r.extra, "source": asdict(r.source)}


def _paired_module():
    """bench/paired_alone.py: the paired alone statistic, shared with launch_cost.py."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import paired_alone

    return paired_alone


def _ladder_module():
    """bench/launch_ladder.py, imported when a ladder is read (it imports this module's library_host_us)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import launch_ladder

    return launch_ladder


def markdown(card: dict) -> str:
    c = card["counts"]
    out = [f"# Issue 18 scorecard{card['label']}", "",
           f"Folder `{card['folder']}`, judged by `{card['generated_by']}` (rules: its RULES section). "
           f"{c[MET]} met, {c[NOT_MET]} not met, {c['not measured']} not measured; medians of >= {card['min_runs']} "
           "runs, pair sums the median of the per-run sums.", ""]
    if card["simulated"]:
        out += ["**SIMULATED: a device line here is not a real GPU (--allow-fake). No row is a hardware result.**",
                ""]
    out += ["| target | verdict | limit(s) | runs (% of solo) | median | error (points) | pair sum | why | rule | "
            "device, commit, file |", "|---|---|---|---|---|---|---|---|---|---|"]
    for t in card["targets"]:
        if "rule" not in t:
            out.append(f"| {t['target']} | {t['verdict']} | | | | | | | | |")
            continue
        why = "; ".join(x for x in (t["why"], t["reading"]) if x)
        s = t["source"]
        out.append(f"| {t['target']} | **{t['verdict']}** | {t['limits']} | {_runs_text(t['runs'])} | "
                   f"{_fmt(t['median'])} | {_fmt(t['error_points'])} | {_fmt(t['pair_sum'])} | "
                   f"{why.replace('|', '/')} | {t['rule']} | {s['device']}; {s['commit']}; `{s['path']}` |")
    others = [r for r in card["rows"] if any(r["source"]["path"] in t.get("other_sources", []) and
                                               t["target"] == r["target"] for t in card["targets"])]
    if others:
        out += ["", "Other sources of the same targets (not the deciding row):", "",
                "| target | verdict | runs | median | pair sum | file |", "|---|---|---|---|---|---|"]
        out += [f"| {r['target']} | {r['verdict']} | {_runs_text(r['runs'])} | {_fmt(r['median'])} | "
                f"{_fmt(r['pair_sum'])} | `{r['source']['path']}` |" for r in others]
    if card["resume_credit_ab"]:
        out += ["", f"## Stage 6: the resume credit cap ({RESUME_KNOB}), A/B{card['label']}", "",
                f"{RESUME_RULE[0].upper()}{RESUME_RULE[1:]}. Not a verdict: what decides the knob's default.", "",
                "| program | limit % | knob | n | runs (% of solo) | median | error vs limit | SM MHz median (runs) | "
                "solo SM MHz | charged % | vs unset (points, MHz) | device, commit, files |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in card["resume_credit_ab"]:
            for name, a in c["arms"].items():
                vs = a["vs_unset"]
                n = f"{a['n']}" + ("" if a["enough_runs"] else f" (< {card['min_runs']})")
                out.append(f"| {c['program']} | {c['limit']} | {name} | {n} | {_runs_text(a['runs'])} | "
                           f"{_fmt(a['median'])} | {_fmt(a['error_points'])} | {_fmt(a['sm_mhz_median'])} "
                           f"({_runs_text(a['sm_mhz'])}) | {_fmt(a['solo_sm_mhz_median'])} | "
                           f"{_fmt(a['charged_median'])} | "
                           + (f"{_fmt(vs['share_points'])}, {_fmt(vs['sm_mhz'])}" if vs else "") +
                           f" | {c['device']}; {c['commit']}; " + ", ".join(f"`{f}`" for f in c["files"]) + " |")
    if card["siblings"]:
        sc = card["siblings_counts"]
        out += ["", f"## Stage 7: several processes in one container{card['label']}", "",
                "n processes sharing one region (one container) at one limit (force), started together; the container "
                "is the tenant: its share is its workers' rates summed over the median solo. GPU-bound: within "
                f"±{TOLERANCE_POINTS:g} points of the limit. Launch-bound (the inference loop): the issue's launch-bound "
                "rule against the native container of as many workers, not ±5 points. Runs pooled across the stage-7 "
                f"files of one device and commit. {sc[MET]} met, {sc[NOT_MET]} not met, {sc['not measured']} not "
                "measured.", "",
                "| program | processes | limit % | verdict | runs (container % of solo) | median (launch-bound: % of "
                "native container, or charged %) | error (points) | "
                "per process (% of solo) | native container | charged % | why | rule | device, commit, files |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in card["siblings"]:
            why = "; ".join(x for x in (t["why"], t["reading"]) if x)
            s = t["source"]
            per = "; ".join("+".join(_fmt(v) for v in r) for r in t["per_process"])
            out.append(f"| {t['program']} | {t['processes']} | {t['limits']} | **{t['verdict']}** | "
                       f"{_runs_text(t['runs'])} | {_fmt(t['median'])} | {_fmt(t['error_points'])} | {per} | "
                       f"{_runs_text(t['native_container'])} | {_runs_text(t['gpu_time_charged'] or [])} | "
                       f"{why.replace('|', '/')} | {t['rule']} | {s['device']}; {s['commit']}; "
                       + ", ".join(f"`{f}`" for f in s["path"].split(", ")) + " |")
    for lad in card.get("launch_ladder", []):
        out += ["", f"## Stage 9: the inference loop's launch ladder{card['label']} (a comparison, not judged)", "",
                f"{lad['device']}; {lad['commit']}; `{lad['file']}`; rounds done {lad['rounds_done']}. Each rung adds "
                "one thing to the one above (issue18_gpu.sh stage 9 says which hypothesis each separates); % of native "
                "is against the native runs on the same cores.", "", *_ladder_module().table_lines(lad["rows"])]
    if card["notes"]:
        out += ["", "Notes:", ""] + [f"- {n}" for n in card["notes"]]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="raw outputs of a GPU session (searched recursively)")
    ap.add_argument("--out", type=Path, help="where to write issue18-scorecard.json/.md (default: the folder)")
    ap.add_argument("--allow-fake", action="store_true", help="judge a fake device's outputs, labelled simulated")
    args = ap.parse_args(argv)
    try:
        folder = Folder(args.folder, args.allow_fake)
        folder.read()
        card = scorecard(folder)
        out = args.out or args.folder
        out.mkdir(parents=True, exist_ok=True)
        (out / "issue18-scorecard.json").write_text(json.dumps(card, indent=1, default=str))
        (out / "issue18-scorecard.md").write_text(markdown(card))
    except JudgeError as exc:
        print(f"issue18_judge: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"issue18_judge: needs hami-hal and hami-plugins-nvidia importable (the repo's .venv): {exc}",
              file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"issue18_judge: {exc.filename or args.folder}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    c = card["counts"]
    print(f"issue18_judge: {c[MET]} met, {c[NOT_MET]} not met, {c['not measured']} not measured{card['label']}; "
          f"wrote {out / 'issue18-scorecard.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
