"""The interposer's own host time per launch on the fake libcuda (issue 18, launch-bound cost).

Runs the fake driver_app's launch loops natively (no preload) and under one or more builds of the library in
the cases below, interleaved ABAB... for --rounds rounds, and reports per case the median host time per launch
the library adds (ns), with the fake driver's call counters per launch (event records, event queries,
elapsed-time queries: each is a real driver call on hardware, where it costs far more than on the fake).

Loops (the kernels take 0 us: the program never reaches its limit, so every nanosecond is host time):
  tight  `launch kernel N 0`: back-to-back launches (the library's cost per launch, its per-ms work amortised
         over thousands of launches);
  paced  `spin 0 GAP SECS` with a busy-waited gap of --gap-us after each launch (an inference-like loop, ~20 us
         of host time per launch: the per-ms work is amortised over ~50 launches, as on the H200);
  infer  the paced loop shaped like the H200's batch-1 inference loop: --infer-kernel-us kernels and a host
         synchronize every --infer-sync launches (a step of ~195 launches ending in a host sync);
  sync1  the infer loop with a host synchronize after every launch (launch, sync, launch, sync: what pausegap's
         wait_close_runs costs most, one event record per sync with a coarse run open; review of pausegap).
Each run first runs the same loop for 0.4 s (a fresh container earns its credit; until then it is measured
precisely), then the measured window. Cases: nolimit (preloaded, no SM limit); force70 (limit 70, force: the coarse
path); force70s64 / force70s128 (the same, one coarse launch in 64 / 128 sampled: HAMI_SM_SAMPLE_EVERY); precise70
(force 70, HAMI_SM_PRECISE=1); force99 (force 99: the tight loop's coarse path far below its limit); default70 (limit 70, default policy, alone: not capped); shared70 (limit 70, default,
while a second container on the same node board launches every 200 us at limit 30: capped, coarse); gate0, gate1,
gate2 (asked for only: shared70 on one shared fake GPU with HAMI_SM_GATE_MARKS 0, 1, 2) and gate0p, gate1p, gate2p
(the same precise).

These are figures of the fake libcuda on whatever machine runs the bench (the 2-core dev VM for the records
in docs/results), not hardware figures: the fake's driver calls cost tens of nanoseconds, a real driver's
microseconds. Writes JSON to --out and a Markdown record to --md (when given).

    .venv/bin/python hami_plugins_nvidia/bench/launch_path_cost.py --out /tmp/lpc.json \
        --lib before=/tmp/main-csrc --lib after=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
PKG = HERE.parent / "hami_plugins_nvidia"
FAKE = HERE.parent / "tests" / "interposer" / "fake_cuda"
sys.path.insert(0, str(PKG / "interposer"))

import build  # noqa: E402 - standalone module: compiles csrc/*.c with the system C compiler

sys.path.insert(0, str(HERE))
from issue18_judge import launch_sections, library_host_us  # noqa: E402 - the stats line, parsed in one place

CASES: dict[str, dict[str, str]] = {
    "nolimit": {},
    "force70": {"CUDA_DEVICE_SM_LIMIT": "70", "GPU_CORE_UTILIZATION_POLICY": "force"},
    # the coarse path far below the limit for the tight loop too, whose back-to-back launches are charged ~2/3 of the
    # wall time on the fake: near 70 % it goes precise now and then (alonebisect's rungs without the throttle, which
    # never hold and so never get the resume credit, stay precise there)
    "force99": {"CUDA_DEVICE_SM_LIMIT": "99", "GPU_CORE_UTILIZATION_POLICY": "force"},
    "precise70": {"CUDA_DEVICE_SM_LIMIT": "70", "GPU_CORE_UTILIZATION_POLICY": "force", "HAMI_SM_PRECISE": "1"},
    "default70": {"CUDA_DEVICE_SM_LIMIT": "70", "GPU_CORE_UTILIZATION_POLICY": "default"},
    "shared70": {"CUDA_DEVICE_SM_LIMIT": "70", "GPU_CORE_UTILIZATION_POLICY": "default"},
    # the sampling A/B knob (HAMI_SM_SAMPLE_EVERY, default 32): a build without it ignores it (= force70)
    "force70s64": {"CUDA_DEVICE_SM_LIMIT": "70", "GPU_CORE_UTILIZATION_POLICY": "force", "HAMI_SM_SAMPLE_EVERY": "64"},
    "force70s128": {"CUDA_DEVICE_SM_LIMIT": "70", "GPU_CORE_UTILIZATION_POLICY": "force", "HAMI_SM_SAMPLE_EVERY": "128"},
}
#: gatemarks (launch.c gate_arm): shared70 on the fake's shared GPU (FAKE_CUDA_GPU, the only place its stream waits
#: exist), the tenant and its neighbour, with HAMI_SM_GATE_MARKS 0, 1 or 2; the "p" cases precise (HAMI_SM_PRECISE=1):
#: what the gate costs a marked launch's host path (a wait call; with 2 a start mark too for chained launches)
GATE_CASES = {f"gate{g}{p}": {**CASES["shared70"], "HAMI_SM_GATE_MARKS": str(g), **({"HAMI_SM_PRECISE": "1"} if p else {})}
              for g in (0, 1, 2) for p in ("", "p")}
CASES.update(GATE_CASES)
NEIGHBOUR_ENV = {"CUDA_DEVICE_SM_LIMIT": "30", "GPU_CORE_UTILIZATION_POLICY": "default"}
WARMUP_S = 0.4  # seconds of the loop before the measured window: set-up and the first credit stay out of it
T = TypeVar("T")
NEIGHBOUR_LEAD_S = 0.5  # the neighbour launches this long first: past its own credit build-up (precision requests)


def build_tools(out: Path) -> tuple[Path, Path]:
    """The fake libcuda.so.1 (in its own folder) and driver_app, as the interposer tests build them."""
    cc = shlex.split(build.compiler())
    fake_dir = out / "fake"
    fake_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([*cc, "-O1", "-fPIC", "-shared", "-Wl,-Bsymbolic", "-o", str(fake_dir / "libcuda.so.1"),
                    str(FAKE / "fake_cuda.c")], check=True)
    app = out / "driver_app"
    subprocess.run([*cc, "-O1", "-o", str(app), str(FAKE / "driver_app.c"), "-ldl"], check=True)
    return fake_dir, app


def base_env(fake_dir: Path, tmp: Path, name: str) -> dict[str, str]:
    """A fresh container: its own region and its own node board (a case's neighbour joins its board), so no
    earlier run is seen as a neighbour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD", "GPU_CORE"))}
    ctr = tmp / name
    ctr.mkdir(parents=True, exist_ok=True)
    env.update(LD_LIBRARY_PATH=str(fake_dir), CUDA_DEVICE_MEMORY_SHARED_CACHE=str(ctr / "region"),
               HAMI_NODE_BOARD=str(ctr / "board"), DRIVER_BUSY_GAP="1")
    return env


def loop_args(loop: str, launches: int, gap_us: int, secs: float, kernel_us: int = 0,
              sync: int = 1000000000) -> list[str]:
    # the warm-up runs the same loop for WARMUP_S: a fresh container starts with no credit and is measured
    # precisely until it has earned enough (about 115 ms at 70 %); the window measures the steady state
    if loop == "sync1":
        sync = 1
    elif loop != "infer":
        kernel_us, sync = 0, 1000000000
    spin = ["spin", str(kernel_us), "0" if loop == "tight" else str(gap_us)]
    warm = ["ctx", "0", *spin, str(WARMUP_S), str(sync), "calls"]
    if loop == "tight":
        return [*warm, "launch", "kernel", str(launches), "0", "calls"]
    return [*warm, *spin, str(secs), str(sync), "calls"]


def parse_run(out: str, loop: str) -> dict[str, float]:
    """ns per launch of the measured window and the fake's driver calls per launch in it."""
    calls = [list(map(int, line.split()[1:])) for line in out.splitlines() if line.startswith("calls ")]
    if loop == "tight":
        words = [line.split() for line in out.splitlines() if line.startswith("launch ")][-1]
        launches = calls[1][0] - calls[0][0]
        wall = float(words[3]) - float(words[2])
    else:
        words = [line.split() for line in out.splitlines() if line.startswith("spin ")][-1]
        launches = int(words[5])
        wall = float(words[3]) - float(words[2])
    if words[1] != "0" or launches <= 0:
        raise RuntimeError(f"driver_app failed: {out.strip()[:300]}")
    d = [b - a for a, b in zip(calls[0], calls[1], strict=True)]
    res = {"ns_per_launch": wall * 1e9 / launches, "launches": launches,
           "records_per_launch": d[1] / launches, "queries_per_launch": d[2] / launches,
           "elapsed_per_launch": d[3] / launches}
    if loop != "tight" and len(words) > 7:  # the wall time the loop spent in its periodic host syncs
        res["sync_ns_per_launch"] = float(words[7]) * 1e9 / launches
    return res


def parse_cpus(ap: argparse.ArgumentParser, text: str) -> set[int] | None:
    """--cpus: a comma-separated list of this host's CPU cores, or empty (not pinned)."""
    if not text:
        return None
    try:
        cpus = {int(c) for c in text.split(",")}
    except ValueError:
        ap.error(f"--cpus {text!r}: expected core numbers like 0 or 0,1")
    if not cpus or not cpus <= os.sched_getaffinity(0):
        ap.error(f"--cpus {text!r}: cores this process may use are {sorted(os.sched_getaffinity(0))}")
    return cpus


def run_once(app: Path, env: dict[str, str], args: list[str], loop: str,
             cpus: set[int] | None = None) -> dict[str, float]:
    """One run's figures; with HAMI_LAUNCH_STATS=1 in env also the library's own host ns per launch (its stats line:
    before + after the driver's launch call, on sampled launches, the whole run), which the loop's own timing noise
    (the busy-waited gap, the native run's spread) does not reach."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.run([str(app), *args], env=env, capture_output=True, text=True, timeout=120, preexec_fn=pin)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"driver_app exited {proc.returncode}: {proc.stderr.strip()[:300]}")
    res = parse_run(proc.stdout, loop)
    # the process's CPU time (user + system, every thread) over all its launches, warm-up included: time the host
    # spent elsewhere (another job on a loaded box) is not in it, unlike the wall time above
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("calls ")][-1]
    if total > 0:
        res["cpu_ns"] = cpu * 1e9 / total
    line = next((ln for ln in proc.stderr.splitlines() if "launch stats:" in ln), None)
    us = library_host_us(line)
    if us is not None:
        res["lib_ns"] = us * 1e3
    sections = launch_sections(line)
    if sections:
        res["sections"] = sections
    return res


def add_record_args(ap: argparse.ArgumentParser) -> None:
    """The options every fake-device bench of this folder shares: where the result goes, which builds run."""
    ap.add_argument("--out", required=True, type=Path, help="JSON result file")
    ap.add_argument("--md", type=Path, help="Markdown record to write (docs/results/...)")
    ap.add_argument("--lib", action="append", default=[],
                    help="NAME=CSRC_DIR: a library build to measure (repeatable; default: this tree's csrc)")


def add_round_args(ap: argparse.ArgumentParser, *, seconds: bool = True) -> None:
    """--rounds, --seconds (per measured run) and --note: what the fake sharing benches share besides the record."""
    ap.add_argument("--rounds", type=int, default=3)
    if seconds:
        ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--note", default="", help="a line for the Markdown record (where each build came from)")


def check_round_args(ap: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Bounds of add_round_args' options; a value out of range ends the bench with one usage line."""
    if not 1 <= a.rounds <= 50:
        ap.error(f"--rounds {a.rounds}: must be 1..50")
    if getattr(a, "seconds", None) is not None and not 0.5 <= a.seconds <= 30:
        ap.error(f"--seconds {a.seconds}: must be 0.5..30")


def parse_cases(ap: argparse.ArgumentParser, text: str, allowed: tuple[str, ...] | list[str]) -> list[str]:
    """--cases: a comma-separated subset of allowed; anything else ends the bench with one usage line."""
    cases = [c for c in text.split(",") if c]
    if not cases or any(c not in allowed for c in cases):
        ap.error(f"--cases {text!r}: expected a comma-separated subset of {', '.join(allowed)}")
    return cases


def build_libs(ap: argparse.ArgumentParser, specs: list[str], out: Path) -> dict[str, Path]:
    """The library builds of --lib NAME=CSRC_DIR[:DEFINE,...] (default: this tree's csrc), each into its own folder
    under out; a malformed spec ends the bench with one usage line."""
    libs: dict[str, Path] = {}
    for spec in specs or [f"current={build.CSRC}"]:
        name, sep, rest = spec.partition("=")
        csrc, _, defs = rest.partition(":")
        defines = [d for d in defs.split(",") if d]
        if not sep or not name or not Path(csrc).is_dir() or not all(re.fullmatch(r"[A-Z_][A-Z0-9_]*", d)
                                                                        for d in defines):
            ap.error(f"--lib {spec!r}: expected NAME=CSRC_DIR[:DEFINE,...] with an existing folder")
        libs[name] = build.build_library(out / name, Path(csrc), defines)
    return libs


def alternating(rounds: int, cases: list[T], names: list[str]) -> Iterator[tuple[int, T, str]]:
    """(run number from 1, case, build name) for every case and build, round after round: ABAB... then BABA..., so
    drift on the box hits every build alike."""
    n = 0
    for rnd in range(rounds):
        order = [(c, name) for c in cases for name in names]
        if rnd % 2:
            order.reverse()
        for c, name in order:
            n += 1
            yield n, c, name


def run_rounds(ap: argparse.ArgumentParser, a: argparse.Namespace, cases: list[str], prefix: str,
               run: Callable[[Path, Path, Path, Path, str], dict]) -> dict[str, dict[str, list[dict]]]:
    """Builds the fake tools and every --lib build in a temporary folder, then calls run(app, fake_dir, lib, run_tmp,
    case) for every case and build, round after round (alternating); returns raw[case][build] = its runs' results."""
    raw: dict[str, dict[str, list[dict]]] = {c: {} for c in cases}
    with tempfile.TemporaryDirectory(prefix=prefix) as td:
        tmp = Path(td)
        fake_dir, app = build_tools(tmp)
        libs = build_libs(ap, a.lib, tmp / "lib")
        for n, case, name in alternating(a.rounds, cases, list(libs)):
            raw[case].setdefault(name, []).append(run(app, fake_dir, libs[name], tmp / f"run{n}", case))
    return raw


def case_rounds(ap: argparse.ArgumentParser, allowed: tuple[str, ...], prefix: str,
                run: Callable[[Path, Path, Path, Path, str, float], dict]) -> tuple[argparse.Namespace, dict]:
    """A case bench's whole command line and runs: the record, round and --cases options, parsed and checked, then
    run_rounds with run(app, fake_dir, lib, run_tmp, case, seconds); returns the options and run_rounds' result."""
    add_record_args(ap)
    add_round_args(ap)
    ap.add_argument("--cases", default=",".join(allowed), help="comma-separated: " + ", ".join(allowed))
    a = ap.parse_args()
    check_round_args(ap, a)
    cases = parse_cases(ap, a.cases, allowed)
    return a, run_rounds(ap, a, cases, prefix, lambda app, fake_dir, lib, tmp, case: run(
        app, fake_dir, lib, tmp, case, a.seconds))


def case_rows(raw: dict[str, dict[str, list[dict]]], cells: Callable[[list[dict]], str]) -> list[str]:
    """One Markdown row per case and build of run_rounds' result: "| case | build | <cells(runs)> |"."""
    return [f"| {case} | {name} | {cells(runs)} |" for case, by_lib in raw.items() for name, runs in by_lib.items()]


def record_head(a: argparse.Namespace, **fields: object) -> dict:
    """The opening fields of a fake bench's result: when, on which host (never a GPU), by which command."""
    return {"date": datetime.date.today().isoformat(),
            "host": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs", "rounds": a.rounds,
            **fields, "command": shlex.join([".venv/bin/python", *sys.argv])}


def record_title(title: str, result: dict, note: str) -> list[str]:
    """The opening lines of a fake bench's Markdown table: what, when, on which host (never a GPU), by which command,
    and the --note line."""
    return [f"# {title} ({result['date']}): raw table", "",
            f"Host: {result['host']} (the fake libcuda, not a GPU). Command: `{result['command']}`", "",
            *([note, ""] if note else [])]


def write_record(a: argparse.Namespace, result: dict, md: str) -> int:
    """Writes the JSON result (--out) and the Markdown record (--md), and prints the Markdown."""
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    if a.md:
        a.md.write_text(md)
    print(md)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--launches", type=int, default=3000000,
                    help="tight loop: launches per run (long enough to span several 100 ms coarse phases)")
    ap.add_argument("--gap-us", type=int, default=20, help="paced loop: busy-waited host gap after each launch")
    ap.add_argument("--secs", type=float, default=0.4, help="paced loop: seconds per run")
    ap.add_argument("--infer-kernel-us", type=int, default=5, help="infer loop: each kernel's length")
    ap.add_argument("--infer-sync", type=int, default=195, help="infer loop: launches between host syncs")
    ap.add_argument("--loops", default="tight,paced")
    ap.add_argument("--note", default="", help="a line for the Markdown record (where each build came from)")
    ap.add_argument("--cases", default=",".join(c for c in CASES if c != "force99" and c not in GATE_CASES))  # asked for only
    ap.add_argument("--stats", action="store_true",
                    help="HAMI_LAUNCH_STATS=1 in the library runs: also the library's own host ns per launch")
    ap.add_argument("--cpus", default="",
                    help="CPU cores the measured program runs on, e.g. 0 or 0,1 (all its threads: the library's "
                         "watcher shares them); default: not pinned")
    a = ap.parse_args()
    cpus = parse_cpus(ap, a.cpus)
    libs_spec = a.lib or [f"current={build.CSRC}"]
    loops = [x for x in a.loops.split(",") if x]
    cases = [x for x in a.cases.split(",") if x]
    for c in cases:
        if c not in CASES:
            ap.error(f"--cases: unknown case {c!r} (known: {', '.join(CASES)})")
    for lp in loops:
        if lp not in ("tight", "paced", "infer", "sync1"):
            ap.error(f"--loops: unknown loop {lp!r} (tight, paced, infer, sync1)")
    if a.rounds < 1 or a.launches < 1000 or not 0 < a.gap_us <= 10000 or not 0.05 <= a.secs <= 10:
        ap.error("--rounds >= 1, --launches >= 1000, 0 < --gap-us <= 10000, 0.05 <= --secs <= 10")
    if not 0 <= a.infer_kernel_us <= 10000 or not 1 <= a.infer_sync <= 1000000:
        ap.error("0 <= --infer-kernel-us <= 10000, 1 <= --infer-sync <= 1000000")

    with tempfile.TemporaryDirectory(prefix="lpc-") as td:
        tmp = Path(td)
        fake_dir, app = build_tools(tmp)
        libs = build_libs(ap, libs_spec, tmp / "lib")
        raw: dict[str, dict[str, list[dict[str, float]]]] = {lp: {} for lp in loops}
        neighbour = None
        try:
            for rnd in range(a.rounds):
                for lp in loops:
                    args = loop_args(lp, a.launches, a.gap_us, a.secs, a.infer_kernel_us, a.infer_sync)
                    order = ["native"] + [f"{lib}:{c}" for lib in libs for c in cases]
                    if rnd % 2:
                        order.reverse()  # ABAB... then BABA...: drift on the box hits every variant alike
                    for key in order:
                        env = base_env(fake_dir, tmp, f"r{rnd}-{key.replace(':', '-')}")
                        if key != "native":
                            lib, case = key.split(":")
                            env.update(CASES[case], LD_PRELOAD=str(libs[lib]))
                            if a.stats:
                                env["HAMI_LAUNCH_STATS"] = "1"
                            if case in GATE_CASES:  # the tenant and its neighbour on one shared fake GPU
                                env["FAKE_CUDA_GPU"] = str(tmp / f"gpu-r{rnd}-{key.replace(':', '-')}")
                            if case == "shared70" or case in GATE_CASES:
                                nenv = base_env(fake_dir, tmp, f"n{rnd}-{lib}")
                                nenv.update(NEIGHBOUR_ENV, LD_PRELOAD=str(libs[lib]), HAMI_NODE_BOARD=env["HAMI_NODE_BOARD"])
                                if "FAKE_CUDA_GPU" in env:
                                    nenv["FAKE_CUDA_GPU"] = env["FAKE_CUDA_GPU"]
                                neighbour = subprocess.Popen([str(app), "ctx", "0", "spin", "0", "200", "30", "1000000000"],
                                                             env=nenv, stdout=subprocess.DEVNULL,
                                                             stderr=subprocess.DEVNULL)
                                time.sleep(NEIGHBOUR_LEAD_S)
                        try:
                            raw[lp].setdefault(key, []).append(run_once(app, env, args, lp, cpus))
                        finally:
                            if neighbour is not None:
                                neighbour.send_signal(signal.SIGKILL)
                                neighbour.wait()
                                neighbour = None
        finally:
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()

    summary: dict[str, dict[str, dict[str, float]]] = {}
    for lp, by_key in raw.items():
        native = statistics.median(r["ns_per_launch"] for r in by_key["native"])
        summary[lp] = {"native": {"ns_per_launch": round(native, 1)}}
        nsync = [r["sync_ns_per_launch"] for r in by_key["native"] if "sync_ns_per_launch" in r]
        if nsync:
            summary[lp]["native"]["sync_ns_per_launch_median"] = round(statistics.median(nsync), 1)
        for key, runs in by_key.items():
            if key == "native":
                continue
            added = [r["ns_per_launch"] - n["ns_per_launch"] for r, n in zip(runs, by_key["native"], strict=True)]
            summary[lp][key] = {
                "ns_per_launch": round(statistics.median(r["ns_per_launch"] for r in runs), 1),
                "added_ns_median": round(statistics.median(added), 1),
                "added_ns_min": round(min(added), 1), "added_ns_max": round(max(added), 1),
                "records_per_launch": round(statistics.median(r["records_per_launch"] for r in runs), 4),
                "queries_per_launch": round(statistics.median(r["queries_per_launch"] for r in runs), 4),
                "elapsed_per_launch": round(statistics.median(r["elapsed_per_launch"] for r in runs), 4),
            }
            cpu = [r["cpu_ns"] - n["cpu_ns"] for r, n in zip(runs, by_key["native"], strict=True)
                   if "cpu_ns" in r and "cpu_ns" in n]
            if cpu:
                summary[lp][key].update(cpu_added_ns_median=round(statistics.median(cpu), 1),
                                        cpu_added_ns_min=round(min(cpu), 1), cpu_added_ns_max=round(max(cpu), 1))
            sync = [r["sync_ns_per_launch"] for r in runs if "sync_ns_per_launch" in r]
            if sync:
                summary[lp][key]["sync_ns_per_launch_median"] = round(statistics.median(sync), 1)
            lib_ns = [r["lib_ns"] for r in runs if "lib_ns" in r]
            if lib_ns:
                summary[lp][key].update(lib_ns_median=round(statistics.median(lib_ns), 1),
                                        lib_ns_min=round(min(lib_ns), 1), lib_ns_max=round(max(lib_ns), 1))
            secs = [r["sections"] for r in runs if "sections" in r]
            if secs:  # each section's median over the runs (us per launch; "fast path %" a share)
                summary[lp][key]["sections_median"] = {
                    name: round(statistics.median(s[name] for s in secs if name in s), 3) for name in secs[0]}
    cmd = "python hami_plugins_nvidia/bench/launch_path_cost.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    result = {
        "provenance": "fake libcuda, this 2-core VM (tests/interposer/fake_cuda), not hardware",
        "host": platform.node(), "cpu_count": os.cpu_count(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": cmd, "rounds": a.rounds, "launches_tight": a.launches, "gap_us_paced": a.gap_us,
        "secs_paced": a.secs, "stats": a.stats, "cpus": sorted(cpus) if cpus else None,
        "fake_costs_ns": os.environ.get("FAKE_CUDA_COSTS_NS", ""),
        "fake_driver_lock": os.environ.get("FAKE_CUDA_DRIVER_LOCK", ""), "infer_kernel_us": a.infer_kernel_us, "infer_sync": a.infer_sync, "libs": {k: str(v.parent.name) for k, v in libs.items()}, "lib_sources": libs_spec,
        "note": a.note, "summary": summary, "raw": raw,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    if a.md:
        a.md.parent.mkdir(parents=True, exist_ok=True)
        a.md.write_text(markdown(result))
    for lp, rows in summary.items():
        print(f"[{lp}] native {rows['native']['ns_per_launch']:.0f} ns/launch")
        for key, row in rows.items():
            if key != "native":
                print(f"  {key:24s} +{row['added_ns_median']:7.0f} ns (min {row['added_ns_min']:.0f}, max "
                      f"{row['added_ns_max']:.0f}); records {row['records_per_launch']:.4f} queries "
                      f"{row['queries_per_launch']:.4f} elapsed {row['elapsed_per_launch']:.4f} per launch"
                      + (f"; CPU +{row['cpu_added_ns_median']:.0f} ns" if "cpu_added_ns_median" in row else "")
                      + (f"; library {row['lib_ns_median']:.0f} ns" if "lib_ns_median" in row else "")
                      + (f"; in syncs {row['sync_ns_per_launch_median']:.0f} ns (native "
                         f"{rows['native'].get('sync_ns_per_launch_median', float('nan')):.0f})"
                         if "sync_ns_per_launch_median" in row else ""))
    return 0


def markdown(res: dict) -> str:
    lines = [
        f"# Launch path cost on the fake libcuda ({res['date'][:10]})",
        "",
        f"**Provenance: {res['provenance']}** (host `{res['host']}`, {res['cpu_count']} CPUs, shared with other "
        "jobs). The fake's driver calls cost tens of nanoseconds; on a real driver each event record/query/"
        "elapsed-time call costs microseconds, so the call counts per launch matter as much as the nanoseconds.",
        "",
        f"Command: `{res['command']}`",
        "",
        f"Library builds: {', '.join(res['lib_sources'])}. {res['rounds']} ABAB rounds; medians; "
        f"\"added\" = the run's ns per launch minus the same round's native run. Tight loop: "
        f"{res['launches_tight']} launches of 0 us back to back. Paced loop: 0 us kernels with a busy-waited "
        f"{res['gap_us_paced']} us host gap after each, {res['secs_paced']} s per run. Infer loop: the paced "
        f"loop with {res.get('infer_kernel_us', 5)} us kernels and a host synchronize every "
        f"{res.get('infer_sync', 195)} launches.",
        "",
    ]
    if res.get("fake_costs_ns") or res.get("fake_driver_lock") or res.get("cpus"):
        lines += [f"Modelled driver costs (fake libcuda knobs): FAKE_CUDA_COSTS_NS=`{res.get('fake_costs_ns') or '-'}`, "
                  f"FAKE_CUDA_DRIVER_LOCK=`{res.get('fake_driver_lock') or '-'}`; the program pinned to CPU cores "
                  f"{res.get('cpus') or 'any'}.", ""]
    if res.get("note"):
        lines += [res["note"], ""]
    for lp, rows in res["summary"].items():
        stats = any("lib_ns_median" in r for r in rows.values())
        cpu = any("cpu_added_ns_median" in r for r in rows.values())
        nsync = rows["native"].get("sync_ns_per_launch_median")
        lines += [f"## {lp} loop (native {rows['native']['ns_per_launch']:.0f} ns per launch"
                  + (f", {nsync:.0f} of them in its host syncs" if nsync is not None else "") + ")", "",
                  "| build:case | ns/launch | added ns (median) | min..max | records/launch | queries/launch | "
                  "elapsed/launch |" + (" added CPU ns/launch (median) | min..max |" if cpu else "")
                  + (" library ns/launch (stats, median) | min..max |" if stats else "")
                  + (" sync ns/launch |" if nsync is not None else ""),
                  "|---|---|---|---|---|---|---|" + ("---|---|" if cpu else "") + ("---|---|" if stats else "")
                  + ("---|" if nsync is not None else "")]
        for key, r in rows.items():
            if key == "native":
                continue
            used = (f" {r['cpu_added_ns_median']:.0f} | {r['cpu_added_ns_min']:.0f}..{r['cpu_added_ns_max']:.0f} |"
                    if "cpu_added_ns_median" in r else (" | |" if cpu else ""))
            own = (f" {r['lib_ns_median']:.0f} | {r['lib_ns_min']:.0f}..{r['lib_ns_max']:.0f} |"
                   if "lib_ns_median" in r else (" | |" if stats else ""))
            lines.append(f"| {key} | {r['ns_per_launch']:.0f} | {r['added_ns_median']:.0f} | "
                         f"{r['added_ns_min']:.0f}..{r['added_ns_max']:.0f} | {r['records_per_launch']:.4f} | "
                         f"{r['queries_per_launch']:.4f} | {r['elapsed_per_launch']:.4f} |{used}{own}"
                         + (f" {r.get('sync_ns_per_launch_median', float('nan')):.0f} |" if nsync is not None else ""))
        lines.append("")
        lines += section_table(rows)
    return "\n".join(lines)


def section_table(rows: dict[str, dict]) -> list[str]:
    """The stats line's sections per build:case (medians over the runs, us per launch): where the library's own
    time goes. Empty without --stats."""
    keyed = {k: r["sections_median"] for k, r in rows.items() if "sections_median" in r}
    if not keyed:
        return []
    names = list(next(iter(keyed.values())))
    out = ["Sections of the library's own host time (HAMI_LAUNCH_STATS=1, us per launch, medians; they nest: lock, "
           "throttle, idle query and harvest lie inside \"before the launch\", marks in both halves):", "",
           "| build:case | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, sec in keyed.items():
        out.append(f"| {key} | " + " | ".join(f"{sec.get(n, float('nan')):.3f}" if n != "fast path %" else
                                           f"{sec.get(n, float('nan')):.1f}" for n in names) + " |")
    return [*out, ""]


if __name__ == "__main__":
    raise SystemExit(main())
