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

    def _snapshot(self) -> tuple[list[tuple], list[tuple]]:
        """Plain figures copied under the state's lock (held only for the copy, not for the formatting)."""
        devices, containers = [], []
        with self.cluster.lock:
            for node, entry in sorted(self.cluster.nodes.items()):
                for uuid, st in entry.state.devices.items():
                    devices.append((node, uuid, st.device.index, st.device.hami_type, st.part.memory_mib,
                                    st.part.compute_percent, st.used_memory_mib, st.used_compute_percent,
                                    st.used_slots, list(st.instances)))
            for alloc in self.cluster.pods.values():
                for ctr in alloc.containers:
                    for s in ctr.slices:
                        containers.append((alloc.namespace, alloc.node, alloc.name, ctr.index, s.uuid,
                                           s.memory_mib, s.compute_percent))
        return devices, containers

    def collect(self) -> Iterator:
        fams = Families(self.legacy)
        z = H.ZONE
        devices, containers = self._snapshot()
        for node, uuid, index, dtype, total_mib, total_cores, used_mib, used_cores, slots, instances in devices:
            base = [node, uuid, str(index), dtype]
            total_mem, used_mem = total_mib * MIB, used_mib * MIB
            fams.add(H.GPU_MEMORY_LIMIT, base + [z], total_mem)
            fams.add(H.GPU_CORE_LIMIT, base + [z], total_cores)
            fams.add(H.GPU_MEMORY_ALLOCATED, base + [str(used_cores), z], used_mem)
            fams.add(H.GPU_SHARED_COUNT, base + [z], slots)
            fams.add(H.GPU_CORE_ALLOCATED, base + [z], used_cores)
            fams.add(H.NODE_GPU_OVERVIEW, base + [str(used_cores), str(total_mem), z], used_mem)
            fams.add(H.NODE_GPU_MEMORY_RATIO, base + [z], used_mem / total_mem if total_mem else 0.0, base[:3] + [z])
            for template, placement in instances:
                start, size = (str(placement.start), str(placement.size)) if placement else ("", "")
                # the scheduler places a template; the instance's UUID and ids exist only on the node
                fams.add(H.NODE_GPU_MIG_INSTANCE, [node, uuid, str(index), "", template, "", "", start, size, z], 1,
                         base[:3] + [template, z])
        for namespace, node, pod, index, uuid, mem_mib, cores in containers:
            labels = [namespace, node, pod, str(index), uuid, z]
            fams.add(H.VGPU_MEMORY_ALLOCATED, labels, mem_mib * MIB)
            fams.add(H.VGPU_CORE_ALLOCATED, labels, cores)
        fams.add_build_info()
        yield from fams
