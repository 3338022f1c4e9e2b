"""scratch: a coarse tenant alone (force 70) syncing after every launch: charge over the fake's GPU time and records
per launch, main (a46f1f8) vs this branch, interleaved."""
import os, subprocess, sys, tempfile, statistics, importlib.util
from pathlib import Path
spec = importlib.util.spec_from_file_location("region", "/work/wt-gatehard/hami_plugins_nvidia/hami_plugins_nvidia/interposer/region.py")
region = importlib.util.module_from_spec(spec); sys.modules["region"] = region; spec.loader.exec_module(region)
libs = dict(x.split("=", 1) for x in os.environ.get("GHLIBS", "main=/tmp/ghm/libvgpu.so,gatehard=/tmp/ghb/libvgpu.so").split(","))
kernel, gap, secs, every = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
extra = dict(x.split("=", 1) for x in sys.argv[6:])
res = {k: [] for k in libs}
for rnd in range(rounds):
    order = list(libs) if rnd % 2 == 0 else list(libs)[::-1]
    for name in order:
        with tempfile.TemporaryDirectory() as d:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD", "FAKE_"))}
            env.update(LD_LIBRARY_PATH="/tmp/ghb", LD_PRELOAD=libs[name], CUDA_DEVICE_MEMORY_SHARED_CACHE=f"{d}/region",
                       HAMI_NODE_BOARD=f"{d}/board", FAKE_CUDA_GPU=f"{d}/gpu", GPU_CORE_UTILIZATION_POLICY="force",
                       CUDA_DEVICE_SM_LIMIT="70", HAMI_LAUNCH_STATS="1", DRIVER_BUSY_GAP="1", **extra)
            p = subprocess.run(["/tmp/ghb/driver_app", "ctx", "0", "launch", "kernel", "20", "10", "sleep", "300",
                                "calls", "spin", kernel, gap, secs, every, "calls", "gpu"], env=env, capture_output=True, text=True, timeout=120)
            calls = [list(map(int, l.split()[1:])) for l in p.stdout.splitlines() if l.startswith("calls")]
            sp = [l.split() for l in p.stdout.splitlines() if l.startswith("spin")][0]
            gpu = int([l.split()[1] for l in p.stdout.splitlines() if l.startswith("gpu")][0]) / 1e9
            with region.SharedRegion(Path(f"{d}/region")) as reg:
                charged = reg.busy_ns(0) / 1e9
            n = int(sp[5])
            stats = [l for l in p.stderr.splitlines() if "launch stats" in l]
            coarse = stats[0].split("(")[1].split("%")[0] if stats else "?"
            res[name].append((charged / gpu, (calls[1][1] - calls[0][1]) / n, n / float(secs), coarse))
for k, v in res.items():
    print(k, "charge/gpu", [round(x[0], 3) for x in v], "records/launch", [round(x[1], 3) for x in v],
          "launches/s", [int(x[2]) for x in v], "coarse%", [x[3] for x in v])
