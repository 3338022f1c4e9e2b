"""A borrower beside a neighbour that waits for its work (issue 18 hardening, audit4): does the neighbour lend what
it needs under `default`?

The lender's demand is estimated as used / (used + idle) from its charge and the share of time it had work on the
GPU; `note_pacing` discounts the waits of periods it takes for host-paced (the next launch came at least
max(200 us, a quarter of the period) after the period's end). A program that synchronises after each kernel and
then does host work of that length (data preparation, a host-side step) is paced by its GPU: a wait behind the
neighbour lengthens its cycle. Taken for host-paced, its demand is its squeezed charge and it lends the
difference, which the borrower then takes.

Runs per case (each its own fresh board and fake GPU): the victim alone (`force` at its limit: what it uses when
nobody contends), then the pair under `default` with lending and with `HAMI_SM_NO_LEND=1`. The attacker is a plain
GPU-bound tenant (2 ms kernels, a sync every 4). Per tenant: its share of the fake GPU over its run
(fake_gpu_ns) and the library's charge (its region's busy time) over that GPU time. Figures of the fake on
whatever machine runs the bench (the loaded 2-core dev VM for the record in docs/results), never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/lend_pacing.py --out /tmp/lp.json --rounds 3 \\
        --lib main=/tmp/main-csrc --lib fix=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))
sys.path.insert(0, str(HERE))

import region  # noqa: E402 - the region layout, read through cffi
from fake_sharing_cases import tenant_env  # noqa: E402
from launch_path_cost import (  # noqa: E402
    add_record_args,
    add_round_args,
    build_libs,
    build_tools,
    check_round_args,
    record_head,
    write_record,
)

MODES = {"fluid": {}, "slices": {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "30"}}
ATTACKER = ("spin", "2000", "0", "{s}", "4")


def victim_args(spec: str, secs: float) -> list[str]:
    """K/G: kernels of K us, a sync after each, then G us of host time (busy-waited)."""
    k, _, g = spec.partition("/")
    if not (k.isdigit() and g.isdigit() and 1 <= int(k) <= 100000 and int(g) <= 100000):
        raise ValueError(f"victim {spec!r}: expected K/G, kernel and gap in us")
    return ["spin", k, g, f"{secs:g}", "1"]


def run_once(app: Path, fake_dir: Path, lib: Path, tmp: Path, tenants: list[tuple[str, int, str, list[str], dict]],
             fake_env: dict[str, str], secs: float) -> dict[str, dict[str, float]]:
    """tenants: (name, limit, policy, driver_app program, extra env), started together on one fake GPU."""
    procs = []
    for name, lim, pol, prog, extra in tenants:
        env = tenant_env(fake_dir, lib, tmp, name, {**fake_env, **extra, "CUDA_DEVICE_SM_LIMIT": str(lim),
                                                     "GPU_CORE_UTILIZATION_POLICY": pol})
        procs.append((name, env, subprocess.Popen([str(app), "ctx", "0", *prog], env=env, stdout=subprocess.PIPE,
                                                  stderr=subprocess.PIPE, text=True)))
    res = {}
    for name, env, p in procs:
        out, err = p.communicate(timeout=120 + 4 * secs)
        words = [ln.split() for ln in out.splitlines() if ln.startswith("spin ")]
        if p.returncode != 0 or not words or words[-1][1] != "0":
            raise RuntimeError(f"driver_app failed ({p.returncode}): {err.strip()[:300]}")
        t0, t1, gpu = float(words[-1][2]), float(words[-1][3]), float(words[-1][4])
        with region.SharedRegion(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]) as reg:
            charged = reg.busy_ns(0) / 1e9
        res[name] = {"share_pct": round(100 * gpu / (t1 - t0), 1), "charge_ratio": round(charged / gpu, 2)}
    return res


def markdown(result: dict, note: str) -> str:
    lines = [f"# Lending beside a neighbour that waits for its work, fake libcuda ({result['date']}): raw table", "",
             f"Host: {result['host']} (the fake libcuda, not a GPU). Command: `{result['command']}`", ""]
    if note:
        lines += [note, ""]
    lines += ["Per round: the attacker's share with lending minus what it may take (its limit + the victim's limit less "
              "the victim's share alone less 3), and the 1-minute load average at the end of the round.", "",
              "| mode | victim K/G | build | victim alone % | lend: attacker %, x | lend: victim %, x "
              "| no lend: attacker % | no lend: victim % | attacker excess, points (load) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        def span(key: str, who: str, field: str, rs: list = r["runs"]) -> str:
            v = [x[key][who][field] for x in rs]
            return f"{min(v):.1f}-{max(v):.1f}" if field == "share_pct" else f"{min(v):.2f}-{max(v):.2f}"
        lines.append(f"| {r['mode']} | {r['victim']} | {r['build']} | {span('alone', 'v', 'share_pct')} | "
                     f"{span('lend', 'a', 'share_pct')}, {span('lend', 'a', 'charge_ratio')} | "
                     f"{span('lend', 'v', 'share_pct')}, {span('lend', 'v', 'charge_ratio')} | "
                     f"{span('nolend', 'a', 'share_pct')} | {span('nolend', 'v', 'share_pct')} | "
                     + ", ".join(f"{x['excess_pts']:+.1f} ({x['load1']:g})" for x in r["runs"]) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap)
    ap.add_argument("--modes", default="fluid,slices", help="comma-separated: " + ", ".join(MODES))
    ap.add_argument("--victims", default="1000/1000,1500/800", help="comma-separated K/G (see victim_args)")
    ap.add_argument("--limits", default="30+70", help="attacker + victim limits, percent")
    a = ap.parse_args()
    check_round_args(ap, a)
    modes = [m for m in a.modes.split(",") if m]
    if not modes or any(m not in MODES for m in modes):
        ap.error(f"--modes {a.modes!r}: expected a comma-separated subset of {', '.join(MODES)}")
    try:
        victims = {v: victim_args(v, a.seconds) for v in a.victims.split(",") if v}
        la, lv = (int(x) for x in a.limits.split("+"))
    except ValueError as e:
        ap.error(f"--victims/--limits: {e}")
    if not (1 <= la <= 99 and 1 <= lv <= 99 and la + lv <= 100):
        ap.error(f"--limits {a.limits!r}: two limits of 1..99 adding up to at most 100")
    attacker = [x.format(s=f"{a.seconds:g}") for x in ATTACKER]
    with tempfile.TemporaryDirectory(prefix="hami-lendp-") as d:
        tmp = Path(d)
        fake_dir, app = build_tools(tmp / "tools")
        libs = build_libs(ap, a.lib, tmp / "lib")
        runs: dict[tuple[str, str, str], list[dict]] = {}
        n = 0
        for rnd in range(a.rounds):
            order = [(m, v, name) for m in modes for v in victims for name in libs]
            if rnd % 2:
                order.reverse()
            for m, v, name in order:
                got = {}
                for kind, extra in (("alone", None), ("lend", {}), ("nolend", {"HAMI_SM_NO_LEND": "1"})):
                    n += 1
                    run_dir = tmp / f"r{n}"
                    run_dir.mkdir()
                    tenants = [("v", lv, "force", victims[v], {})] if extra is None else \
                        [("a", la, "default", attacker, extra), ("v", lv, "default", victims[v], extra)]
                    got[kind] = run_once(app, fake_dir, libs[name], run_dir, tenants, MODES[m], a.seconds)
                # what the attacker may take: its limit plus what the victim leaves of its own, less the margin
                got["fair_attacker_pct"] = la + max(0.0, lv - got["alone"]["v"]["share_pct"] - 3)
                got["excess_pts"] = round(got["lend"]["a"]["share_pct"] - got["fair_attacker_pct"], 1)
                got["load1"] = round(os.getloadavg()[0], 1)  # the box's load: the victim's host gaps stretch
                runs.setdefault((m, v, name), []).append(got)
                print(f"{m:6s} {v:10s} {name:6s} {got}", file=sys.stderr)
    result = {**record_head(a, seconds=a.seconds, limits=a.limits),
              "rows": [{"mode": m, "victim": v, "build": name, "runs": rs,
                        "attacker_lend_median": statistics.median(r["lend"]["a"]["share_pct"] for r in rs)}
                       for (m, v, name), rs in runs.items()]}
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    sys.exit(main())
