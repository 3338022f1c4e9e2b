"""pytest-benchmark entry (``make bench``): one extender filter over 1,000 nodes × 8 GPUs.

The recorded 500-5,000-node figures come from ``bench_sched_speed.py`` (docs/results/*scheduler-speed*).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_sched_speed import build, pods  # noqa: E402
from hami_scheduler.capability import CapabilityGate  # noqa: E402
from hami_scheduler.extender import Extender  # noqa: E402


def test_sched_filter_1000_nodes(benchmark):
    cluster, names = build(1000)
    ext = Extender(cluster, None, CapabilityGate(None))
    stream = itertools.cycle(pods(200))
    counter = itertools.count()

    def one():
        pod = next(stream)
        pod = {**pod, "metadata": {**pod["metadata"], "name": f"b{next(counter)}"}}
        out = ext.filter({"Pod": pod, "NodeNames": names})
        if out.allocation is not None:
            cluster.remove_pod(out.allocation.key)  # keep the cluster at a steady fill
        return out

    res = benchmark(one)
    assert res.node_names
