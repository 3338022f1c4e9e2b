"""Does NVML list other PID namespaces' processes? The interposer bounds the neighbours a charge counts by
NVML's count of compute processes on the GPU (docs/interposer.md, "Forged busy entries"); read from source,
a caller in its own PID namespace (an ordinary pod) sees only its namespace's processes, which bounds nothing.
This checks it on a real GPU: one process holding a CUDA context in the host namespace, one in a new PID (and
user) namespace made by `unshare`, and NVML's list as each namespace sees it. Writes nvml-namespace.json.

    python3 hami_plugins_nvidia/bench/nvml_namespace.py --out DIR      (needs a GPU, pynvml, torch, unshare)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HOLD = ("import torch, sys, time; torch.zeros(1, device='cuda'); print('ready', flush=True); "
        "time.sleep(float(sys.argv[1]))")


def listing() -> dict:
    """NVML's compute processes on GPU 0 as this namespace sees them, and this namespace's own pid list."""
    import pynvml
    pynvml.nvmlInit()
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
        pids = sorted(int(p.pid) for p in procs)
    finally:
        pynvml.nvmlShutdown()
    mine = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    return {"nvml_pids": pids, "visible_in_proc": [p for p in pids if p in mine], "ns": os.readlink("/proc/self/ns/pid")}


def hold(seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(seconds)], stdout=subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "ready":
        raise SystemExit("a CUDA context could not be created")
    return p


def inner() -> None:
    """In the new namespace: hold a context of our own, then list."""
    p = hold(20)
    time.sleep(1)
    print("RESULT " + json.dumps({**listing(), "own_holder_pid": p.pid}), flush=True)
    p.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        inner()
        return
    if args.out is None:
        raise SystemExit("--out DIR is required")
    args.out.mkdir(parents=True, exist_ok=True)
    host_holder = hold(60)
    res: dict = {"host_holder_pid": host_holder.pid}
    try:
        time.sleep(1)
        res["host_namespace"] = listing()
        cmd = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc",
               sys.executable, str(Path(__file__).resolve()), "--inner"]
        if os.geteuid() == 0:
            cmd = ["unshare", "--pid", "--fork", "--mount-proc", *cmd[4:]]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
        res["own_namespace"] = json.loads(lines[-1][7:]) if lines else {"error": (r.stderr or "")[-400:]}
        res["command"] = " ".join(cmd)
    finally:
        host_holder.kill()
    own = res.get("own_namespace", {})
    if "nvml_pids" in own:  # two contexts exist: the host's holder and the namespace's own
        res["verdict"] = ("filtered: a PID namespace sees only its own processes" if len(own["nvml_pids"]) < 2
                          else "unfiltered: a PID namespace sees every process on the GPU")
    (args.out / "nvml-namespace.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
