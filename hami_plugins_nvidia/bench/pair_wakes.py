"""The watcher's wakes of a launch-bound loop alone and in a launch-bound pair, on the fake libcuda (issue 18,
pairhost: on the H100 each inference pair tenant's watcher woke ~1,500 times a second on the loop's core, 5-6 times a
lone tenant's wakes per launch, with as many involuntary switches of the loop's thread).

Each tenant runs the fake driver_app's `passes` loop (--pattern kernels, --gap-us of busy host time after each launch,
a sync per pass; by default 182 launches of 10 us and one of 400 us, so that the pass's sync lasts like the H100 loop's
~0.3 ms and the watcher collects in it), pinned to a core of its own. Cases: `alone` (one tenant, limit 70, `force`),
`pair` (50 + 50) and `pair37` (30 + 70), two containers on one node board and one fake GPU under `default`. Arms:
--arm NAME=ENV=VALUE[,ENV=VALUE] (the library built from --csrc, with that environment; `main=` none), run interleaved
round after round (ABAB then BABA). Per run and tenant: launches per second, the stats line's watcher wakes, those left
to the launcher, the ramp's sleeps below the busy ceiling and those past it (alone and coarse; with
HAMI_WATCHER_COARSE_PAIR=1 coarse beside a neighbour too), its CPU, the loop's thread's and the watcher's CPU per
launch (the host cost whatever else loads the VM), the thread's involuntary switches, the library's
host us per launch and the coarse share, and the GPU share the library charged it (its region's busy time).

Figures are the fake libcuda's on whatever host runs the bench (modelled driver call costs, --costs), never hardware
figures; a fake-timing bench beside it on this 2-core VM moves the switches and rates (report spreads).

    .venv/bin/python hami_plugins_nvidia/bench/pair_wakes.py --arm main= --arm fix=HAMI_WATCHER_FLAT_RAMP=1 \\
        --rounds 4 --out docs/results/2026-12-07-fake-pairhost.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))

import build  # noqa: E402 - compiles csrc/*.c with the system C compiler
from launch_ladder import stats_fields  # noqa: E402 - the stats line, parsed in one place
from launch_path_cost import build_tools  # noqa: E402
from pair_host_cost import run_passes  # noqa: E402 - the pinned `passes` tenants, as pair_host_cost runs them

CASES = {"alone": ((70, "force"),), "pair": ((50, "default"), (50, "default")),
         "pair37": ((30, "default"), (70, "default"))}
COSTS = "launch=6000,record=2000,query=1500,elapsed=1500"  # H100-like host costs per driver call, ns (modelled)
KEEP = ("wakes", "wakes_left", "ramp_sleeps", "long_sleeps", "watcher_cpu_ms", "thread_cpu_ms", "invol", "library_us",
        "coarse_pct", "driver_us")


def parse_arm(text: str) -> tuple[str, dict[str, str]]:
    name, sep, rest = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.+-]{1,40}", name):
        raise SystemExit(f"--arm {text!r}: expected NAME=[ENV=VALUE,...]")
    env = {}
    for item in filter(None, rest.split(",")):
        k, eq, v = item.partition("=")
        if not eq or not re.fullmatch(r"HAMI_[A-Z0-9_]+", k) or not re.fullmatch(r"[A-Za-z0-9_.]{0,40}", v):
            raise SystemExit(f"--arm {text!r}: bad environment item {item!r} (expected HAMI_NAME=VALUE)")
        env[k] = v
    return name, env


def run_case(app: Path, fake: Path, lib: Path, tmp: Path, case: str, env_extra: dict[str, str],
             a: argparse.Namespace) -> list[dict]:
    """One run: each tenant's figures, in the order of CASES[case]."""
    out = []
    for w, line, wall, busy in run_passes(app, fake, lib, tmp, CASES[case], a, env_extra):
        f = {key: v for key, v in stats_fields(line).items() if key in KEEP}
        f.update(launches_per_s=int(w[5]) / wall, charged_pct=busy / 1e7 / wall)
        f["wakes_per_s"] = f.get("wakes", 0) / wall
        f["wakes_per_launch"] = f.get("wakes", 0) / max(int(w[5]), 1)
        f["invol_per_launch"] = f.get("invol", 0) / max(int(w[5]), 1)
        # the loop's thread and its watcher, CPU us a launch: what the launch costs the host whatever else runs on the
        # VM (the rates move with other load on its 2 cores; this moves only with what the process itself does)
        f["cpu_us_per_launch"] = (f.get("thread_cpu_ms", 0) + f.get("watcher_cpu_ms", 0)) * 1e3 / max(int(w[5]), 1)
        out.append(f)
    return out


def spread(xs: list[float], nd: int = 0) -> str:
    return f"{statistics.median(xs):.{nd}f} ({min(xs):.{nd}f}-{max(xs):.{nd}f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arm", action="append", default=[], help="NAME=[ENV=VALUE,...] (repeatable; default main=)")
    ap.add_argument("--csrc", default=str(build.CSRC), help="the library's sources (default: this tree's)")
    ap.add_argument("--cases", default="pair,alone", help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--rounds", type=int, default=4, help="rounds, each every case and arm (1-20)")
    ap.add_argument("--seconds", type=float, default=3.0, help="each run's window (0.5-30)")
    ap.add_argument("--pattern", default="182*10,1*400", help="passes PATTERN: COUNT*US,... kernels of one pass")
    ap.add_argument("--gap-us", type=int, default=20, help="busy-waited host time after each launch")
    ap.add_argument("--costs", default=COSTS, help="FAKE_CUDA_COSTS_NS for every tenant")
    ap.add_argument("--out", help="write the runs and the medians as JSON here")
    a = ap.parse_args()
    arms = dict(parse_arm(t) for t in a.arm or ["main="])
    cases = [c for c in a.cases.split(",") if c]
    if not cases or any(c not in CASES for c in cases) or not 1 <= a.rounds <= 20 or not 0.5 <= a.seconds <= 30:
        ap.error("--cases from " + ", ".join(CASES) + "; --rounds 1-20; --seconds 0.5-30")
    if not re.fullmatch(r"\d{1,5}\*\d{1,6}(,\d{1,5}\*\d{1,6}){0,63}", a.pattern) or not 0 <= a.gap_us <= 100000:
        ap.error(f"--pattern {a.pattern!r} / --gap-us {a.gap_us}: expected COUNT*US[,COUNT*US...] and 0..100000 us")
    if not re.fullmatch(r"([a-z]+=\d{1,9})?(,[a-z]+=\d{1,9})*", a.costs):
        ap.error(f"--costs {a.costs!r}: expected CLASS=NS[,CLASS=NS...]")
    raw: dict[str, list[list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="pwk-") as td:
        tmp = Path(td)
        fake, app = build_tools(tmp)
        lib = build.build_library(tmp / "lib", Path(a.csrc), [])
        n = 0
        for rnd in range(a.rounds):
            order = [(c, arm) for c in cases for arm in arms]
            for c, arm in (reversed(order) if rnd % 2 else order):
                n += 1
                t = run_case(app, fake, lib, tmp / f"r{n}", c, arms[arm], a)
                raw.setdefault(f"{c} {arm}", []).append(t)
                print(f"{c} {arm}: " + "; ".join(
                    f"{x['launches_per_s']:.0f}/s, wakes {x.get('wakes', 0):.0f} ({x.get('ramp_sleeps', 0):.0f} "
                    f"ramp, {x.get('long_sleeps', 0):.0f} long), invol {x.get('invol', 0):.0f}, "
                    f"cpu {x['cpu_us_per_launch']:.2f} us, lib {x.get('library_us', 0):.2f} us, charged "
                    f"{x['charged_pct']:.1f} %" for x in t), flush=True)
    summary = {}
    for key, runs in raw.items():
        flat = [x for t in runs for x in t]
        summary[key] = {"sum_launches_per_s": spread([sum(x["launches_per_s"] for x in t) for t in runs]),
                        "wakes_per_s": spread([x["wakes_per_s"] for x in flat]),
                        "wakes_per_launch": spread([x["wakes_per_launch"] for x in flat], 4),
                        "invol_per_launch": spread([x["invol_per_launch"] for x in flat], 4),
                        "ramp_sleeps": spread([x.get("ramp_sleeps", 0) for x in flat]),
                        "long_sleeps": spread([x.get("long_sleeps", 0) for x in flat]),
                        "cpu_us_per_launch": spread([x["cpu_us_per_launch"] for x in flat], 2),
                        "library_us": spread([x.get("library_us", 0) for x in flat], 2),
                        "coarse_pct": spread([x.get("coarse_pct", 0) for x in flat], 1),
                        "charged_pct": [spread([t[k]["charged_pct"] for t in runs], 1) for k in range(len(runs[0]))]}
        print(key, json.dumps(summary[key]))
    if a.out:
        Path(a.out).write_text(json.dumps({"command": " ".join(sys.argv), "pattern": a.pattern, "gap_us": a.gap_us,
                                           "seconds": a.seconds, "costs": a.costs, "arms": arms,
                                           "provenance": "fake libcuda, this 2-core VM (not a GPU)",
                                           "summary": summary, "raw": raw}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
