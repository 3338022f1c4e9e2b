"""Scheduling speed: filter + score + device choice for one pod over N nodes × 8 GPUs.

In-process (``Extender.filter``) and through the HTTP extender (keep-alive client posting
pre-encoded ExtenderArgs with ``NodeNames``, as kube-scheduler does with nodeCacheCapable).
Writes ``docs/results/<date>-scheduler-speed.{json,md}``. Not a test: run it as a script.

    python scheduler/benchmarks/bench_sched_speed.py --nodes 500,1000,2000,5000 --pods 1000
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "testing_support"))  # test helpers are not shipped

from hami_scheduler.capability import CapabilityGate
from hami_scheduler.extender import Extender
from hami_scheduler.server import ExtenderServer
from hami_scheduler.state import ClusterState
from sched_testing import NVIDIA, gpu_node, gpu_pod  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def build(n_nodes: int) -> tuple[ClusterState, list[str]]:
    cluster = ClusterState([NVIDIA])
    for i in range(n_nodes):
        cluster.upsert_node(gpu_node(f"node-{i:05d}", gpus=8, mem=81920, count=10, model="NVIDIA-H100-80GB-HBM3"))
    cluster.index.refresh()  # what the watcher does once the initial sync is done (not timed)
    return cluster, [f"node-{i:05d}" for i in range(n_nodes)]


def pods(n: int) -> list[dict]:
    """A mix like the openb trace: mostly one shared GPU, some whole GPUs, a few 2/4-GPU pods."""
    out = []
    for i in range(n):
        k = i % 20
        if k < 12:
            out.append(gpu_pod(f"p{i}", gpus=1, mem=4096 * (1 + i % 4), cores=10 * (1 + i % 5)))
        elif k < 18:
            out.append(gpu_pod(f"p{i}", gpus=1, mem=None, cores=None))
        else:
            out.append(gpu_pod(f"p{i}", gpus=2 if k == 18 else 4, mem=20000, cores=50))
    return out


def bench_inprocess(n_nodes: int, n_pods: int) -> dict:
    cluster, names = build(n_nodes)
    ext = Extender(cluster, None, CapabilityGate(None))
    lat = []
    ok = 0
    t0 = time.perf_counter()
    for pod in pods(n_pods):
        s = time.perf_counter()
        res = ext.filter({"Pod": pod, "NodeNames": names})
        lat.append(time.perf_counter() - s)
        ok += bool(res.node_names)
    wall = time.perf_counter() - t0
    return {"nodes": n_nodes, "gpus": n_nodes * 8, "pods": n_pods, "placed": ok, "pods_per_s": round(n_pods / wall, 1),
            "p50_ms": round(1000 * statistics.median(lat), 3), "p99_ms": round(1000 * sorted(lat)[int(0.99 * len(lat))], 3)}


def bench_http(n_nodes: int, n_pods: int) -> dict:
    cluster, names = build(n_nodes)
    server = ExtenderServer(Extender(cluster, None, CapabilityGate(None))).start()
    host, port = server.httpd.server_address[:2]
    bodies = [json.dumps({"Pod": p, "Nodes": None, "NodeNames": names}).encode() for p in pods(n_pods)]
    conn = http.client.HTTPConnection(host, port)
    lat = []
    ok = 0
    t0 = time.perf_counter()
    for body in bodies:
        s = time.perf_counter()
        conn.request("POST", "/filter", body, {"Content-Type": "application/json"})
        res = json.loads(conn.getresponse().read())
        lat.append(time.perf_counter() - s)
        ok += bool(res["NodeNames"])
    wall = time.perf_counter() - t0
    server.stop()
    return {"nodes": n_nodes, "gpus": n_nodes * 8, "pods": n_pods, "placed": ok, "pods_per_s": round(n_pods / wall, 1),
            "p50_ms": round(1000 * statistics.median(lat), 3), "p99_ms": round(1000 * sorted(lat)[int(0.99 * len(lat))], 3),
            "request_bytes": len(bodies[0])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", default="500,1000,2000,5000")
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-scheduler-speed"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.nodes.split(",")]
    rows = []
    for n in sizes:
        a = bench_inprocess(n, args.pods)
        b = bench_http(n, args.pods)
        rows.append({"inprocess": a, "http": b})
        print(f"{n:>5} nodes: in-process {a['pods_per_s']:>7} pods/s (p50 {a['p50_ms']} ms) | "
              f"HTTP {b['pods_per_s']:>7} pods/s (p50 {b['p50_ms']} ms)", flush=True)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python scheduler/benchmarks/bench_sched_speed.py " + f"--nodes {args.nodes} --pods {args.pods}",
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "cpu": next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name")), "unknown") if Path("/proc/cpuinfo").exists() else "unknown",
        "provenance": "simulated cluster: HAMi node-register annotations for H100-80GB nodes (8 GPUs, 10 slots); "
                      "no hardware involved",
        "what": "one filter = parse pod + vectorised prefilter over all nodes + rank (binpack node score) + "
                "engine fit_pod on the best candidates + device choice + reservation in the cache",
        "targets": {"inprocess_pods_per_s_at_5000": 1000, "http_pods_per_s_at_5000": 300},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    lines = [f"# Scheduler speed ({meta['date']})", "", f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']} "
             f"({meta['cpu']})  ", f"Provenance: {meta['provenance']}  ", f"Measured: {meta['what']}", "",
             "| nodes | GPUs | pods (placed) | in-process pods/s | p50 ms | p99 ms | HTTP pods/s | p50 ms | p99 ms |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        a, b = r["inprocess"], r["http"]
        lines.append(f"| {a['nodes']} | {a['gpus']} | {a['pods']} ({a['placed']}) | {a['pods_per_s']} | {a['p50_ms']} | {a['p99_ms']} "
                     f"| {b['pods_per_s']} | {b['p50_ms']} | {b['p99_ms']} |")
    lines += ["", "Cost growth: the prefilter is O(nodes × devices) numpy work per pod; parsing, the engine fit on "
              "the chosen node and the reservation are O(1) in the node count. The HTTP path adds JSON decoding "
              "of the NodeNames list (O(nodes)) and one round trip on a keep-alive connection.", "",
              "Targets at 5,000 nodes: ≥ 1,000 pods/s in-process, ≥ 300 pods/s through HTTP "
              "(kube-scheduler scheduler_perf SchedulingBasic/5000Nodes threshold: 680 pods/s without an extender)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("wrote", out.with_suffix(".md"))


if __name__ == "__main__":
    main()
