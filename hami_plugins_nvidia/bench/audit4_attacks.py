"""Attacks of issue 18's fourth attacker review (audit4) on the fake libcuda: the GPU share the attacker gets at its
limit and what the library charges it, per round.

Attacks (the attacker at 30 %, every tenant its own container on one fake GPU, HAMI_SM_PERIOD_MS=100):
  accomplice   the coarse-steering attackers of coarse_steer.py (`--steer`, default after-50,after-200,oracle-200)
               alone at `force`, then beside an accomplice container (limit 5, a 1 us kernel every 5 ms) that makes
               it shared, so its spans' proven tail is off and all-tail marks stay doubt;
  multiproc    the same attackers as 3 processes of one container (the doubt is kept per process: each checks only
               its own against the shared credit);
  forged-lend  under `default` beside a real neighbour at 70 % (`--victim`, default GPU-bound), a thread rewrites the
               neighbour's published lending values on the node board every 0.2 ms (charged fraction 0, queued
               share 0, held mark 0): the neighbour lends its whole share less the margin; `honest` is the same pair
               without the thread;
  mixed-slices under `force` with 2 ms time slices and 30 us switches, the attacker waits for each kernel
               (`--kernel-us`, default 1500, a sync after each) beside a neighbour at 70 % that queues 2 ms kernels
               ahead (a sync every 4): the neighbour's chained kernels waiting behind the attacker's slice count as
               running, so each is charged half of the attacker's kernels.
Figures of the fake on whatever machine runs the bench (the loaded 2-core dev VM for the record in docs/results),
never hardware. Share: the fake's own GPU time of the attacker's processes (fake_gpu_ns) over the attack's wall time;
charged / GPU: its region's busy time over that GPU time (warm-up included where there is one).

    .venv/bin/python hami_plugins_nvidia/bench/audit4_attacks.py --out /tmp/a4.json --rounds 3 \\
        --attacks accomplice,multiproc,forged-lend,mixed-slices --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import mmap
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))
sys.path.insert(0, str(HERE))

import region  # noqa: E402 - the region and board layout, read through cffi
from coarse_steer import ATTACKERS, STATS_RE, WARM, attack_args  # noqa: E402
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

ATTACKS = ("accomplice", "multiproc", "forged-lend", "mixed-slices")
SLICED = {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "30"}


def start(app: Path, env: dict[str, str], prog: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([str(app), "ctx", "0", *prog], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(procs: list[subprocess.Popen[str]], secs: float) -> list[tuple[list[list[str]], str]]:
    """Each process's result lines (spin/steer/... words) and stderr; a failed driver_app ends the bench."""
    res = []
    for p in procs:
        out, err = p.communicate(timeout=120 + 4 * secs)
        rows = [ln.split() for ln in out.splitlines() if ln.startswith(("spin ", "steer "))]
        if p.returncode != 0 or not rows or any(w[1] != "0" for w in rows):
            raise RuntimeError(f"driver_app failed ({p.returncode}): {err.strip()[-300:]}")
        res.append((rows, err))
    return res


def charged_s(env: dict[str, str]) -> float:
    with region.SharedRegion(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]) as reg:
        return reg.busy_ns(0) / 1e9


def steer_run(app: Path, fake_dir: Path, lib: Path, tmp: Path, attacker: str, secs: float, procs: int,
              accomplice: bool) -> dict:
    """A coarse-steering attacker (procs processes of one container) at 30 % force, optionally beside an
    accomplice container."""
    env = tenant_env(fake_dir, lib, tmp, "a", {"GPU_CORE_UTILIZATION_POLICY": "force", "CUDA_DEVICE_SM_LIMIT": "30"})
    ps = [start(app, env, [*WARM, *attack_args(attacker, secs)]) for _ in range(procs)]
    if accomplice:
        acc = tenant_env(fake_dir, lib, tmp, "b", {"GPU_CORE_UTILIZATION_POLICY": "force", "CUDA_DEVICE_SM_LIMIT": "5"})
        ps.append(start(app, acc, ["spin", "1", "5000", f"{secs + 1.2:g}", "1"]))
    res = finish(ps, secs)[:procs]
    gpu = sum(float(w[4]) for rows, _ in res for w in rows[1:])
    warm = sum(float(rows[0][4]) for rows, _ in res)
    t0, t1 = min(float(rows[1][2]) for rows, _ in res), max(float(rows[-1][3]) for rows, _ in res)
    coarse = [float(m.group(2)) for _, err in res if (m := STATS_RE.search(err))]
    return {"share_pct": round(100 * gpu / (t1 - t0), 1), "charge_ratio": round(charged_s(env) / (gpu + warm), 2),
            "coarse_pct": round(sum(coarse) / len(coarse), 1) if coarse else -1.0}


def forge_lender(board: Path, stop: threading.Event, limit: int) -> None:
    """Rewrites the published lending values of every board user with this limit (the real neighbour) until stop,
    as any tenant of the node can: the board is world-writable."""
    while not board.exists() and not stop.is_set():
        time.sleep(0.01)
    with open(board, "r+b") as f, mmap.mmap(f.fileno(), region.BOARD_SIZE) as mem:
        b = region.ffi.cast("struct hami_board *", region.ffi.from_buffer(mem))
        g = b.gpu[0]
        while not stop.is_set():
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            for i in range(region.CONST["HAMI_BOARD_USERS"]):
                if g.user_id[i] and g.user_limit[i] == limit:
                    g.user_frac_bp[i] = 0
                    g.user_queued_bp[i] = 0
                    g.user_held_ns[i] = 0
                    g.user_frac_ns[i] = now
            time.sleep(0.0002)
        del g, b


def pair_run(app: Path, fake_dir: Path, lib: Path, tmp: Path, policy: str, attacker: list[str], victim: list[str],
             fake_env: dict[str, str], secs: float, forge: bool) -> dict:
    """The attacker at 30 % and a neighbour at 70 % under policy; with forge, the neighbour's lending values are
    rewritten throughout."""
    envs = [tenant_env(fake_dir, lib, tmp, n, {**fake_env, "GPU_CORE_UTILIZATION_POLICY": policy,
                                                "CUDA_DEVICE_SM_LIMIT": lim}) for n, lim in (("a", "30"), ("v", "70"))]
    stop = threading.Event()
    t = threading.Thread(target=forge_lender, args=(tmp / "board", stop, 70)) if forge else None
    if t:
        t.start()
    try:
        res = finish([start(app, envs[0], attacker), start(app, envs[1], victim)], secs)
    finally:
        stop.set()
        if t:
            t.join()
    row = {}
    for who, (rows, _), env in zip(("attacker", "victim"), res, envs, strict=True):
        w = rows[-1]
        gpu = float(w[4])
        row[who] = {"share_pct": round(100 * gpu / (float(w[3]) - float(w[2])), 1),
                    "charge_ratio": round(charged_s(env) / gpu, 2)}
    return row


def markdown(result: dict, note: str) -> str:
    lines = [f"# audit4's attacks on the fake libcuda ({result['date']}): raw table", "",
             f"Host: {result['host']} (the fake libcuda, not a GPU). Command: `{result['command']}`", ""]
    if note:
        lines += [note, ""]
    lines += ["| attack | case | build | attacker share %, charged / GPU per round | neighbour, per round |",
              "|---|---|---|---|---|"]
    for r in result["rows"]:
        att = ", ".join(f"{x['attacker']['share_pct']:.1f} ({x['attacker']['charge_ratio']:.2f} x)" if "attacker" in x
                        else f"{x['share_pct']:.1f} ({x['charge_ratio']:.2f} x)" for x in r["runs"])
        nb = ", ".join(f"{x['victim']['share_pct']:.1f} ({x['victim']['charge_ratio']:.2f} x)" for x in r["runs"]
                       if "victim" in x) or "-"
        lines.append(f"| {r['attack']} | {r['case']} | {r['build']} | {att} | {nb} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap)
    ap.add_argument("--attacks", default=",".join(ATTACKS), help="comma-separated: " + ", ".join(ATTACKS))
    ap.add_argument("--steer", default="after-50,after-200,oracle-200", help="coarse_steer attackers")
    ap.add_argument("--victim", default="spin 2000 0 {s} 4", help="forged-lend: the neighbour's driver_app program")
    ap.add_argument("--kernel-us", type=int, default=1500, help="mixed-slices: the attacker's kernel length")
    a = ap.parse_args()
    check_round_args(ap, a)
    attacks = [x for x in a.attacks.split(",") if x]
    steer = [x for x in a.steer.split(",") if x]
    if not attacks or any(x not in ATTACKS for x in attacks):
        ap.error(f"--attacks {a.attacks!r}: expected a comma-separated subset of {', '.join(ATTACKS)}")
    for x in steer:
        try:
            attack_args(x, 1.0)
        except ValueError:
            ap.error(f"--steer {x!r}: not an attacker of coarse_steer.py (e.g. {', '.join(ATTACKERS)}, after-K, oracle-K)")
    if not 1 <= a.kernel_us <= 100000:
        ap.error(f"--kernel-us {a.kernel_us}: must be 1..100000")
    s = f"{a.seconds:g}"
    victim = a.victim.format(s=s).split()
    cases: list[tuple[str, str]] = []
    for x in attacks:
        if x in ("accomplice", "multiproc"):
            cases += [(x, f"{st} {how}") for st in steer
                      for how in (("alone", "with accomplice") if x == "accomplice" else ("1 process", "3 processes"))]
        elif x == "forged-lend":
            cases += [(x, "honest"), (x, "forged")]
        else:
            cases += [(x, f"attacker {a.kernel_us} us sync each")]
    with tempfile.TemporaryDirectory(prefix="hami-a4-") as d:
        tmp = Path(d)
        fake_dir, app = build_tools(tmp / "tools")
        libs = build_libs(ap, a.lib, tmp / "lib")
        runs: dict[tuple[str, str, str], list[dict]] = {}
        n = 0
        for rnd in range(a.rounds):
            order = [(x, c, name) for x, c in cases for name in libs]
            if rnd % 2:
                order.reverse()
            for x, c, name in order:
                n += 1
                rd = tmp / f"r{n}"
                rd.mkdir()
                if x in ("accomplice", "multiproc"):
                    st, _, how = c.partition(" ")
                    r = steer_run(app, fake_dir, libs[name], rd, st, a.seconds, 3 if how == "3 processes" else 1,
                                  how == "with accomplice")
                elif x == "forged-lend":
                    r = pair_run(app, fake_dir, libs[name], rd, "default", ["spin", "2000", "0", s, "4"], victim, {},
                                 a.seconds, c == "forged")
                else:
                    r = pair_run(app, fake_dir, libs[name], rd, "force", ["spin", str(a.kernel_us), "0", s, "1"],
                                 ["spin", "2000", "0", s, "4"], SLICED, a.seconds, False)
                r["load1"] = round(os.getloadavg()[0], 1)
                runs.setdefault((x, c, name), []).append(r)
                print(f"{x:12s} {c:28s} {name:6s} {r}", file=sys.stderr)
    result = {**record_head(a, seconds=a.seconds),
              "rows": [{"attack": x, "case": c, "build": name, "runs": rs} for (x, c, name), rs in runs.items()]}
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    sys.exit(main())
