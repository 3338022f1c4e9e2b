"""HAMi's scheduler series (``hami_gpu_*``, ``hami_node_gpu_*``, ``hami_vgpu_*_allocated_*``), computed at
every scrape from the extender's ClusterState, so HAMi dashboards read hami-hal's scheduler unchanged.

What HAMi calls Totalmem/Totalcore is what the device's partition model hands out (the registered
``devmem``/``devcore``); Usedmem/Usedcores/Used are the sums of the allocations held in the engine's
NodeState. Memory is in bytes, cores in percent, as HAMi serves them; every series carries the constant
label zone="vGPU"; the legacy names (HAMi <= v2.8) only with ``--legacy-metrics``. Names and labels come
from the one table, ``hami_hal.metrics.hami_names``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.registry import Collector

from hami_hal.metrics import hami_names as H
from hami_hal.metrics.families import Families

from .state import ClusterState

MIB = 1 << 20


class SchedulerAllocationCollector(Collector):
    """The allocation view of every node and pod the extender holds, read under the state's lock."""

    def __init__(self, cluster: ClusterState, legacy: bool = False) -> None:
        self.cluster = cluster
        self.legacy = legacy

    def collect(self) -> Iterator:
        fams = Families(self.legacy)
        z = H.ZONE
        with self.cluster.lock:
            for node, entry in sorted(self.cluster.nodes.items()):
                for uuid, st in entry.state.devices.items():
                    d, part = st.device, st.part
                    base = [node, uuid, str(d.index), d.hami_type]
                    total_mem, used_mem = part.memory_mib * MIB, st.used_memory_mib * MIB
                    used_cores = str(st.used_compute_percent)
                    fams.add(H.GPU_MEMORY_LIMIT, base + [z], total_mem)
                    fams.add(H.GPU_CORE_LIMIT, base + [z], part.compute_percent)
                    fams.add(H.GPU_MEMORY_ALLOCATED, base + [used_cores, z], used_mem)
                    fams.add(H.GPU_SHARED_COUNT, base + [z], st.used_slots)
                    fams.add(H.GPU_CORE_ALLOCATED, base + [z], st.used_compute_percent)
                    fams.add(H.NODE_GPU_OVERVIEW, base + [used_cores, str(total_mem), z], used_mem)
                    fams.add(H.NODE_GPU_MEMORY_RATIO, base + [z], used_mem / total_mem if total_mem else 0.0,
                             base[:3] + [z])
                    for template, placement in st.instances:
                        start, size = (str(placement.start), str(placement.size)) if placement else ("", "")
                        # the scheduler places a template; the instance's UUID and ids exist only on the node
                        fams.add(H.NODE_GPU_MIG_INSTANCE, [node, uuid, str(d.index), "", template, "", "", start,
                                                           size, z], 1, base[:3] + [template, z])
            for alloc in self.cluster.pods.values():
                for ctr in alloc.containers:
                    for s in ctr.slices:
                        labels = [alloc.namespace, alloc.node, alloc.name, str(ctr.index), s.uuid, z]
                        fams.add(H.VGPU_MEMORY_ALLOCATED, labels, s.memory_mib * MIB)
                        fams.add(H.VGPU_CORE_ALLOCATED, labels, s.compute_percent)
        fams.add_build_info()
        yield from fams
