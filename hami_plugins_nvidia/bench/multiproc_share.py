"""Several processes of one container on the fake libcuda's shared GPU (issue 18's multiproc gap): the container's
share of the GPU at its SM limit and what each process is charged for what it got, per build and round.

Each case is one container (one region) under `force` with 1, 2 or 3 GPU-bound processes (`spin 2000 0 S 4`: 2 ms
kernels, a sync every 4), limits 30 and 60 (`--procs`, `--limits`), and with `--mixed` one GPU-bound plus one
launch-bound process (100 us kernels, 400 us of host time after each) at 60 %; `--neighbour L` adds another
container of one GPU-bound process at L %, `--slices` runs the fake GPU in 2 ms time slices, `--nvml` puts the fake
libnvidia-ml.so.1 beside the fake libcuda listing one process per running process (host PIDs, as the driver answers
from the host's namespace or through the node's census: the bound K on the contexts a charge counts, nvmlq.c), which
a neighbour needs to count a container as more than one context. Every process holds memory on the GPU
(CUDA_DEVICE_CONTEXT_RESERVE=64m, as a real context's charge does; until 2026-12-05 the sibling bound counted only
those, now every process measuring on the device: bench/sibling_edges.py). Share: the GPU
time the fake gave the container's processes (fake_gpu_ns) over the run's wall time. Charged / GPU: the container's
region busy time over that GPU time, and each process's own slot over its own GPU time (read while the processes
wait after their run, before they are killed). Figures of the fake on whatever machine runs the bench (the loaded
2-core dev VM for the record in docs/results), never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/multiproc_share.py --out /tmp/mp.json --md docs/results/X.md \\
        --lib before=/tmp/main-csrc --lib after=hami_plugins_nvidia/hami_plugins_nvidia/csrc --rounds 2 --mixed
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))
sys.path.insert(0, str(HERE))

import build  # noqa: E402 - compiles with the system C compiler, as the tests do
import region  # noqa: E402 - the region layout, read through cffi
from fake_sharing_cases import tenant_env  # noqa: E402
from launch_path_cost import (  # noqa: E402
    FAKE,
    add_record_args,
    add_round_args,
    build_libs,
    build_tools,
    check_round_args,
    record_head,
    write_record,
)

GPU_BOUND = ["2000", "0", "{s}", "4"]
LAUNCH_BOUND = ["100", "400", "{s}", "1000000"]


def build_fake_nvml(fake_dir: Path) -> None:
    """The fake libnvidia-ml.so.1 into the fake libcuda's folder (on every tenant's LD_LIBRARY_PATH)."""
    subprocess.run([*shlex.split(build.compiler()), "-O1", "-fPIC", "-shared", "-o", str(fake_dir / "libnvidia-ml.so.1"),
                    str(FAKE / "fake_nvml.c"), "-ldl"], check=True)


def read_charges(path: Path) -> tuple[float, dict[int, float]]:
    """The container's charged seconds and each live slot's (pid -> seconds) on device 0. Read from the fields that
    layouts 1 and 2 share (2 only appends the sibling table), so a build of either can be measured."""
    data = bytearray(path.read_bytes()[: region.REGION_SIZE])
    data += bytes(region.REGION_SIZE - len(data))
    r = region.ffi.cast("struct hami_region *", region.ffi.from_buffer(data))
    per = {int(r.procs[i].pid): r.procs[i].busy_ns[0] / 1e9 for i in range(min(int(r.proc_hwm), region.MAX_PROCS))
           if r.procs[i].state == 1}
    return r.dev[0].busy_ns / 1e9, per


def run_case(app: Path, fake_dir: Path, lib: Path, tmp: Path, limit: int, progs: list[list[str]], secs: float,
             neighbour: int, fake_env: dict[str, str], nvml: bool = False) -> dict:
    """One container of len(progs) processes at limit (and, with neighbour > 0, another container of one GPU-bound
    process at that limit on the same fake GPU, started with them); nvml: the fake NVML lists them all."""
    if nvml:
        listing = tmp / "nvml-procs"  # PIDs no Linux process has here (pid_max <= 2^22): host PIDs
        listing.write_text(" ".join(str(4000000001 + i) for i in range(len(progs) + (1 if neighbour else 0))))
        fake_env = {**fake_env, "FAKE_NVML_PROCS": str(listing)}

    def env_of(name: str, lim: int) -> dict[str, str]:
        return tenant_env(fake_dir, lib, tmp, name, {**fake_env, "GPU_CORE_UTILIZATION_POLICY": "force",
                                                     "CUDA_DEVICE_SM_LIMIT": str(lim), "CUDA_DEVICE_CONTEXT_RESERVE": "64m"})
    env = env_of("c", limit)
    s = f"{secs:g}"
    runs = [(env, p) for p in progs] + ([(env_of("n", neighbour), GPU_BOUND)] if neighbour else [])
    procs = [subprocess.Popen([str(app), "ctx", "0", "spin", *[w.format(s=s) for w in p], "ready", "hang"], env=e,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for e, p in runs]
    try:
        spins = []
        for p in procs:
            words = None
            for line in p.stdout:  # type: ignore[union-attr]
                if line.startswith("spin "):
                    words = line.split()
                elif line.startswith("ready"):
                    break
            if not words or words[1] != "0":
                raise RuntimeError(f"driver_app failed: {words}")
            spins.append((float(words[2]), float(words[3]), float(words[4])))
        time.sleep(0.3)  # the watchers collect the last marks
        total, per = read_charges(Path(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]))
        nb = {}
        if neighbour:
            a, b, g = spins.pop()
            nb = {"neighbour_share_pct": round(100 * g / (b - a), 1),
                  "neighbour_charge_ratio": round(read_charges(Path(runs[-1][0]["CUDA_DEVICE_MEMORY_SHARED_CACHE"]))[0] / g, 2)}
    finally:
        for p in procs:
            p.kill()
            p.communicate()
    gpu = sum(g for _, _, g in spins)
    t0, t1 = min(a for a, _, _ in spins), max(b for _, b, _ in spins)
    ratios = [round(per.get(p.pid, 0.0) / g, 2) if g > 0 else -1.0 for p, (_, _, g) in zip(procs[:len(spins)], spins, strict=True)]
    return {"share_pct": round(100 * gpu / (t1 - t0), 1), "charge_ratio": round(total / gpu, 2) if gpu else -1.0,
            "proc_share_pct": [round(100 * g / (b - a), 1) for a, b, g in spins], "proc_charge_ratio": ratios, **nb}


def markdown(result: dict, note: str) -> str:
    lines = [f"# Several processes of one container on the fake libcuda ({result['date']}): raw table", "",
             f"Host: {result['host']} (the fake libcuda, not a GPU). Command: `{result['command']}`", ""]
    if note:
        lines += [note, ""]
    if result.get("neighbour"):
        lines += [f"Beside another container: one GPU-bound process at {result['neighbour']} % (its share and charge in "
                  "the last column).", ""]
    if result.get("nvml"):
        lines += ["NVML: the fake libnvidia-ml.so.1 lists every running process (the bound K of nvmlq.c).", ""]
    if result.get("slices"):
        lines += ["Time slices: FAKE_CUDA_SLICE_US=2000, FAKE_CUDA_SWITCH_US=30 (one context at a time).", ""]
    lines += ["| case | limit % | build | container share % per round (load) | container charged / GPU | "
              "each process charged / GPU | neighbour share %, charged / GPU |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        share = ", ".join(f"{x['share_pct']:.1f} ({x['load1']})" for x in r["runs"])
        ratio = ", ".join(f"{x['charge_ratio']:.2f}" for x in r["runs"])
        per = [v for x in r["runs"] for v in x["proc_charge_ratio"]]
        nb = ", ".join(f"{x['neighbour_share_pct']:.1f} ({x['neighbour_charge_ratio']:.2f} x)" for x in r["runs"]
                       if "neighbour_share_pct" in x) or "-"
        lines.append(f"| {r['case']} | {r['limit']} | {r['build']} | {share} | {ratio} | "
                     f"{min(per):.2f}-{max(per):.2f} | {nb} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap)
    ap.add_argument("--procs", default="1,2,3", help="comma-separated process counts (1..8)")
    ap.add_argument("--limits", default="30,60", help="comma-separated SM limits (1..99)")
    ap.add_argument("--mixed", action="store_true", help="add one GPU-bound + one launch-bound process at 60 %%")
    ap.add_argument("--neighbour", type=int, default=0,
                    help="beside another container of one GPU-bound process at this limit (1..99; 0 = none)")
    ap.add_argument("--slices", action="store_true", help="the fake GPU in 2 ms time slices with 30 us switches")
    ap.add_argument("--nvml", action="store_true", help="the fake NVML lists every running process (the bound K)")
    a = ap.parse_args()
    check_round_args(ap, a)
    if not 0 <= a.neighbour <= 99:
        ap.error(f"--neighbour {a.neighbour}: must be 0..99")
    fake_env = {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "30"} if a.slices else {}
    try:
        counts = [int(x) for x in a.procs.split(",") if x]
        limits = [int(x) for x in a.limits.split(",") if x]
    except ValueError:
        ap.error(f"--procs {a.procs!r} / --limits {a.limits!r}: expected comma-separated integers")
    if not counts or any(not 1 <= n <= 8 for n in counts):
        ap.error(f"--procs {a.procs!r}: each 1..8 (the fake GPU has 8 process slots)")
    if not limits or any(not 1 <= x <= 99 for x in limits):
        ap.error(f"--limits {a.limits!r}: each 1..99")
    cases: list[tuple[str, int, list[list[str]]]] = [(f"{n} GPU-bound", lim, [GPU_BOUND] * n)
                                                     for lim in limits for n in counts]
    if a.mixed:
        cases.append(("GPU-bound + launch-bound", 60, [GPU_BOUND, LAUNCH_BOUND]))
    with tempfile.TemporaryDirectory(prefix="hami-mp-") as d:
        tmp = Path(d)
        fake_dir, app = build_tools(tmp / "tools")
        if a.nvml:
            build_fake_nvml(fake_dir)
        libs = build_libs(ap, a.lib, tmp / "lib")
        runs: dict[tuple[str, int, str], list[dict]] = {}
        n = 0
        for rnd in range(a.rounds):
            order = [(c, lim, progs, name) for c, lim, progs in cases for name in libs]
            if rnd % 2:
                order.reverse()  # ABAB... then BABA...: drift on the box hits every build alike
            for c, lim, progs, name in order:
                n += 1
                rd = tmp / f"r{n}"
                rd.mkdir()
                r = run_case(app, fake_dir, libs[name], rd, lim, progs, a.seconds, a.neighbour, fake_env, a.nvml)
                r["load1"] = round(os.getloadavg()[0], 1)
                runs.setdefault((c, lim, name), []).append(r)
                print(f"{c:26s} {lim:3d} {name:8s} {r}", file=sys.stderr)
    result = {**record_head(a, seconds=a.seconds, neighbour=a.neighbour, slices=a.slices, nvml=a.nvml),
              "rows": [{"case": c, "limit": lim, "build": name, "runs": rs} for (c, lim, name), rs in runs.items()]}
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    sys.exit(main())
