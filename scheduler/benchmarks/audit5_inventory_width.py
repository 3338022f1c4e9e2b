"""What one node's ``hami-hal.io/node-inventory`` annotation costs every other node (audit 5).

The scheduler's index is as wide as the widest node, so before the inventory bound (0fc1629) one node
listing 2,200 devices (what fits in the 256 KiB annotation cap) widened every node's row. This measures,
over ``--nodes`` register-annotation nodes of 4 GPUs: the mean ``filter`` time of a 1-GPU pod over all
nodes (after one warm-up filter) and the process's peak RSS, before and after one more node publishes an inventory of
``--devices`` devices; on a fixed tree the inventory is refused (one line) and nothing changes.

    .venv/bin/python scheduler/benchmarks/audit5_inventory_width.py --nodes 1000 --devices 2200 \\
        --out docs/results/2026-12-05-audit5-width-after.json

Decision code only (no HTTP, no API server); no hardware. CPU-timed on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

from hami_scheduler.extender import Extender
from hami_scheduler.state import ClusterState
from sched_testing import NVIDIA, gpu_node, gpu_pod

from hami_hal.errors import HalError
from hami_hal.hami_compat import HAL_INVENTORY


def inventory(devices: int) -> str:
    devs = [{"vendor": "nvidia", "index": 0, "uuid": f"{i}", "model": "m", "hami_type": "t", "memory_mib": 1,
             "provenance": {"source": "real"}} for i in range(devices)]
    return json.dumps({"node": "x", "source": "real", "devices": devs}, separators=(",", ":"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=2200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    cluster = ClusterState([NVIDIA])
    for i in range(a.nodes):
        cluster.upsert_node(gpu_node(f"n{i}"))
    ext = Extender(cluster)
    names = [f"n{i}" for i in range(a.nodes)] + ["wide"]

    def filter_ms() -> float:
        ext.filter({"Pod": gpu_pod(f"warm-{time.perf_counter_ns()}"), "NodeNames": names})  # index refresh
        t = time.perf_counter()
        for k in range(a.rounds):
            ext.filter({"Pod": gpu_pod(f"p{k}-{time.perf_counter_ns()}"), "NodeNames": names})
        return (time.perf_counter() - t) / a.rounds * 1000

    def rss_mib() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

    before = {"filter_ms": round(filter_ms(), 2), "peak_rss_mib": rss_mib(), "index_width": cluster.index.width}
    text = inventory(a.devices)
    try:
        cluster.upsert_node({"metadata": {"name": "wide", "annotations": {HAL_INVENTORY: text}}})
        refused = ""
    except HalError as exc:
        refused = str(exc)
    after = {"filter_ms": round(filter_ms(), 2), "peak_rss_mib": rss_mib(), "index_width": cluster.index.width}
    out = {"nodes": a.nodes, "devices_in_one_inventory": a.devices, "annotation_chars": len(text),
           "before": before, "after": after, "refused": refused,
           "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
           "command": " ".join(sys.argv)}
    print(json.dumps(out, indent=2))
    if a.out:
        a.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
