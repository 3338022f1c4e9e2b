"""Stand-in for the interposer's bench_worker in the GPU record's dry run: same protocol (PEAK handshake,
RESULT line), no CUDA. ``mem`` writes a region charging the memory limit to itself; ``matmul`` reports a
throughput scaled by CUDA_DEVICE_SM_LIMIT."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from node_agent_fixtures import write_region

MIB = 1 << 20

if sys.argv[1] == "mem":
    limit = int(os.environ["CUDA_DEVICE_MEMORY_LIMIT_0"].rstrip("m")) * MIB
    write_region(Path(os.environ["CUDA_DEVICE_MEMORY_SHARED_CACHE"]), used=[limit], limits_mib=[limit // MIB], sm=30)
    print("PEAK", flush=True)
    sys.stdin.readline()
    print("RESULT " + json.dumps({"largest_allocated": limit, "reported_total": limit, "torch_reserved": limit,
                                  "oom_error": "OutOfMemoryError: stand-in"}), flush=True)
else:
    share = int(os.environ.get("CUDA_DEVICE_SM_LIMIT", "100"))
    print("RESULT " + json.dumps({"tflops": 100.0 * share / 100}), flush=True)
