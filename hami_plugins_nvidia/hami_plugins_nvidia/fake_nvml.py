"""An NVML-shaped fake built from the core's simulated node, with fault injection.

It implements :class:`~hami_plugins_nvidia.nvml_port.NvmlPort` exactly, so discovery, topology, health,
metrics and MIG code run unchanged against it. Facts come from the device profiles' ``vendor_data``:

``compute_capability`` ("8.0"), ``cuda_cores``, ``mig_capable``, ``mig_enabled``, ``mig_profiles``
(list of ``{index, id, name, memory_mib, slices, instances, sms, placements: [[start, size], ...]}``),
``nvswitch_links`` (NVLinks from each GPU to the NVSwitch fabric), ``not_supported`` (port methods that
answer "Not Supported", e.g. ``numa_node``, ``poll_xid_events``), and idle readings ``power_w``,
``power_limit_w``, ``temperature_c``, ``sm_clock_mhz``, ``utilization_percent``, ``memory_used_mib``,
``processes`` (``[{pid, used_mib}]``), ``mps_processes`` (MPS clients, listed apart: ``[{pid}]``).

Faults (``SimDevice.fault`` in a node profile, comma-separated, or :meth:`FakeNvml.inject`): ``lost``
(every call answers GPU_IS_LOST), ``xid-<n>`` (one XID critical event), ``ecc-dbe`` (uncorrectable
volatile ECC errors), ``remap-failure`` (row remapping failed), ``not-supported:<method>``.
A node whose ``driver_version`` is ``missing`` behaves like a host without the NVIDIA driver.
"""

from __future__ import annotations

import uuid as uuidlib

from hami_hal.errors import BackendUnavailable
from hami_hal.simulation import SimDevice, SimulatedNode

from .nvml_port import (
    TOPOLOGY_HOSTBRIDGE,
    TOPOLOGY_INTERNAL,
    TOPOLOGY_MULTIPLE,
    TOPOLOGY_NODE,
    TOPOLOGY_SINGLE,
    TOPOLOGY_SYSTEM,
    MigInstance,
    MigProfile,
    NvLinkEnd,
    NvmlCode,
    NvmlFailure,
    ProcessMemory,
    RemappedRows,
    XidEvent,
)
from .topology import LinkKind

_LEVEL_OF = {
    LinkKind.SAME_BOARD: TOPOLOGY_INTERNAL,
    LinkKind.SINGLE_SWITCH: TOPOLOGY_SINGLE,
    LinkKind.MULTI_SWITCH: TOPOLOGY_MULTIPLE,
    LinkKind.HOST_BRIDGE: TOPOLOGY_HOSTBRIDGE,
    LinkKind.SAME_CPU: TOPOLOGY_NODE,
    LinkKind.CROSS_CPU: TOPOLOGY_SYSTEM,
}
_SWITCH_BUS_ID = "00000000:E0:00.0"
_MIG_NS = uuidlib.UUID("0b6a9d55-1f0e-4c1b-9a57-6d4947af6b11")


class FakeNvml:
    """NVML answers for one simulated node; keeps MIG instances and pending XID events as state."""

    source = "simulated"

    def __init__(self, node: SimulatedNode, *, driver_missing: bool = False) -> None:
        self.node = node
        self.devices: list[SimDevice] = sorted(
            (d for d in node.devices if d.spec.vendor == "nvidia"), key=lambda d: d.index
        )
        self.driver_missing = driver_missing or node.driver_version == "missing"
        self.faults: dict[int, set[str]] = {
            d.index: {f.strip() for f in (d.fault or "").split(",") if f.strip()} for d in self.devices
        }
        self._delivered_xids: set[tuple[int, int]] = set()
        self._instances: dict[int, list[MigInstance]] = {d.index: [] for d in self.devices}
        self._mig_enabled = {d.index: bool(d.spec.vendor_data.get("mig_enabled")) for d in self.devices}
        self._next_gi = {d.index: 1 for d in self.devices}
        self.calls: list[str] = []

    # -- fault injection -----------------------------------------------------------------------

    def inject(self, index: int, fault: str) -> None:
        """Add a fault to a device at run time (a GPU that breaks after discovery)."""
        self.faults[index].add(fault)

    def clear(self, index: int) -> None:
        self.faults[index] = set()
        self._delivered_xids = {x for x in self._delivered_xids if x[0] != index}

    # -- plumbing ------------------------------------------------------------------------------

    def _dev(self, index: int, call: str) -> SimDevice:
        self.calls.append(call)
        if index < 0 or index >= len(self.devices):
            raise NvmlFailure(NvmlCode.INVALID_ARGUMENT, call)
        faults = self.faults[index]
        if "lost" in faults:
            raise NvmlFailure(NvmlCode.GPU_LOST, call)
        method = call.split(".")[-1]
        if f"not-supported:{method}" in faults or method in self.devices[index].spec.vendor_data.get(
            "not_supported", []
        ):
            raise NvmlFailure(NvmlCode.NOT_SUPPORTED, call)
        return self.devices[index]

    def _vd(self, index: int, call: str) -> dict:
        return self._dev(index, call).spec.vendor_data

    # -- system ----------------------------------------------------------------------------------

    def init(self) -> None:
        if self.driver_missing:
            raise BackendUnavailable("no NVML: libnvidia-ml.so.1 not found (no NVIDIA driver on this node)")

    def driver_version(self) -> str:
        return self.node.driver_version

    def cuda_driver_version(self) -> int:
        major, _, minor = (self.node.runtime_version or "12.4").partition(".")
        return int(major) * 1000 + int(minor or 0) * 10

    def device_count(self) -> int:
        return len(self.devices)

    def index_of(self, uuid: str) -> int:
        for d in self.devices:
            if d.uuid == uuid:
                self._dev(d.index, "fake.index_of")
                return d.index
        raise NvmlFailure(NvmlCode.NOT_FOUND, "nvmlDeviceGetHandleByUUID")

    # -- identity ------------------------------------------------------------------------------

    def uuid(self, index: int) -> str:
        return self._dev(index, "fake.uuid").uuid

    def name(self, index: int) -> str:
        return self._dev(index, "fake.name").spec.model

    def memory_info(self, index: int) -> tuple[int, int, int]:
        d = self._dev(index, "fake.memory_info")
        total = d.spec.memory_mib * 1024 * 1024
        used = self._used_bytes(d)
        return total, used, total - used

    def _used_bytes(self, d: SimDevice) -> int:
        vd = d.spec.vendor_data
        base = int(vd.get("memory_used_mib", 0)) + sum(int(p.get("used_mib") or 0) for p in vd.get("processes", []))
        return base * 1024 * 1024

    def compute_capability(self, index: int) -> tuple[int, int]:
        major, _, minor = str(self._vd(index, "fake.compute_capability").get("compute_capability", "0.0")).partition(".")
        return int(major), int(minor or 0)

    def cuda_cores(self, index: int) -> int:
        vd = self._vd(index, "fake.cuda_cores")
        if "cuda_cores" not in vd:
            raise NvmlFailure(NvmlCode.NOT_SUPPORTED, "nvmlDeviceGetNumGpuCores")
        return int(vd["cuda_cores"])

    def pci_bus_id(self, index: int) -> str:
        return self._dev(index, "fake.pci_bus_id").pci_bus_id

    def minor_number(self, index: int) -> int:
        self._dev(index, "fake.minor_number")
        return index

    def numa_node(self, index: int) -> int:
        d = self._dev(index, "fake.numa_node")
        if d.numa_node is None:
            raise NvmlFailure(NvmlCode.NOT_SUPPORTED, "nvmlDeviceGetNumaNodeId")
        return d.numa_node

    # -- MIG -----------------------------------------------------------------------------------

    def mig_mode(self, index: int) -> tuple[bool, bool]:
        vd = self._vd(index, "fake.mig_mode")
        if not vd.get("mig_capable"):
            raise NvmlFailure(NvmlCode.NOT_SUPPORTED, "nvmlDeviceGetMigMode")
        return self._mig_enabled[index], self._mig_enabled[index]

    def mig_profiles(self, index: int) -> list[MigProfile]:
        vd = self._vd(index, "fake.mig_profiles")
        if not vd.get("mig_capable"):
            raise NvmlFailure(NvmlCode.NOT_SUPPORTED, "nvmlDeviceGetGpuInstanceProfileInfo")
        return [
            MigProfile(int(p["index"]), int(p["id"]), str(p["name"]), int(p["memory_mib"]), int(p["slices"]),
                       int(p["instances"]), int(p["sms"]), tuple((int(s), int(z)) for s, z in p["placements"]))
            for p in vd.get("mig_profiles", [])
        ]

    def mig_placements(self, index: int, profile_index: int) -> list[tuple[int, int]]:
        prof = self._profile(index, profile_index)
        return list(prof.placements)

    def _profile(self, index: int, profile_index: int) -> MigProfile:
        for p in self.mig_profiles(index):
            if p.profile_index == profile_index:
                return p
        raise NvmlFailure(NvmlCode.NOT_SUPPORTED, "nvmlDeviceGetGpuInstanceProfileInfo")

    def mig_instances(self, index: int) -> list[MigInstance]:
        self._dev(index, "fake.mig_instances")
        return list(self._instances[index])

    def create_mig_instance(self, index: int, profile_index: int, start: int, size: int) -> MigInstance:
        d = self._dev(index, "fake.create_mig_instance")
        if not self._mig_enabled[index]:
            raise NvmlFailure(NvmlCode.INVALID_STATE, "nvmlDeviceCreateGpuInstanceWithPlacement",
                              "MIG mode is disabled")
        prof = self._profile(index, profile_index)
        if (start, size) not in prof.placements:
            raise NvmlFailure(NvmlCode.INVALID_ARGUMENT, "nvmlDeviceCreateGpuInstanceWithPlacement",
                              f"placement {start}+{size} is not possible for {prof.name}")
        live = self._instances[index]
        same = [i for i in live if i.profile_id == prof.profile_id]
        overlaps = [i for i in live if i.start < start + size and start < i.start + i.size]
        slices_used = sum(self._slices_of(index, i.profile_id) for i in live)
        if len(same) >= prof.instance_count or overlaps or slices_used + prof.slice_count > self._total_slices(index):
            raise NvmlFailure(NvmlCode.INSUFFICIENT_RESOURCES, "nvmlDeviceCreateGpuInstanceWithPlacement")
        gi = self._next_gi[index]
        self._next_gi[index] += 1
        inst = MigInstance(gi, 0, prof.profile_id, start, size,
                           "MIG-" + str(uuidlib.uuid5(_MIG_NS, f"{d.uuid}/{gi}/0")))
        live.append(inst)
        return inst

    def _slices_of(self, index: int, profile_id: int) -> int:
        return next((p.slice_count for p in self.mig_profiles(index) if p.profile_id == profile_id), 0)

    def _total_slices(self, index: int) -> int:
        return max((p.slice_count for p in self.mig_profiles(index)), default=0)

    def destroy_mig_instance(self, index: int, gpu_instance_id: int, compute_instance_id: int) -> None:
        self._dev(index, "fake.destroy_mig_instance")
        live = self._instances[index]
        for inst in live:
            if inst.gpu_instance_id == gpu_instance_id and inst.compute_instance_id == compute_instance_id:
                live.remove(inst)
                return
        raise NvmlFailure(NvmlCode.NOT_FOUND, "nvmlDeviceGetGpuInstanceById")

    # -- topology ------------------------------------------------------------------------------

    def common_ancestor(self, a: int, b: int) -> int:
        da, db = self._dev(a, "fake.common_ancestor"), self._dev(b, "fake.common_ancestor")
        link = self.node.link_between(da, db)
        if link is None:
            raise NvmlFailure(NvmlCode.NOT_SUPPORTED, "nvmlDeviceGetTopologyCommonAncestor")
        if link.kind in _LEVEL_OF:
            return _LEVEL_OF[link.kind]
        same_numa = da.numa_node is not None and da.numa_node == db.numa_node
        return TOPOLOGY_NODE if same_numa else TOPOLOGY_SYSTEM

    def nvlinks(self, index: int) -> list[NvLinkEnd]:
        d = self._dev(index, "fake.nvlinks")
        switch = int(d.spec.vendor_data.get("nvswitch_links", 0))
        if switch:
            return [NvLinkEnd(k, _SWITCH_BUS_ID, "switch") for k in range(switch)]
        out: list[NvLinkEnd] = []
        for lk in self.node.links:
            if lk.kind != LinkKind.NVLINK or d.node_index not in (lk.a, lk.b):
                continue
            peer_idx = lk.b if lk.a == d.node_index else lk.a
            peer = next(p for p in self.devices if p.node_index == peer_idx)
            out += [NvLinkEnd(len(out), peer.pci_bus_id, "gpu") for _ in range(lk.count)]
        if not out and not d.spec.vendor_data.get("nvlink_capable", False):
            raise NvmlFailure(NvmlCode.NOT_SUPPORTED, "nvmlDeviceGetNvLinkState")
        return out

    def p2p_nvlink(self, a: int, b: int) -> bool:
        da, db = self._dev(a, "fake.p2p_nvlink"), self._dev(b, "fake.p2p_nvlink")
        link = self.node.link_between(da, db)
        return link is not None and link.kind == LinkKind.NVLINK

    # -- metrics -------------------------------------------------------------------------------

    def utilization(self, index: int) -> tuple[int, int]:
        vd = self._vd(index, "fake.utilization")
        return int(vd.get("utilization_percent", 0)), int(vd.get("memory_utilization_percent", 0))

    def power_mw(self, index: int) -> int:
        return int(float(self._vd(index, "fake.power_mw").get("power_w", 50)) * 1000)

    def power_limit_mw(self, index: int) -> int:
        return int(float(self._vd(index, "fake.power_limit_mw").get("power_limit_w", 300)) * 1000)

    def temperature_c(self, index: int) -> int:
        return int(self._vd(index, "fake.temperature_c").get("temperature_c", 35))

    def sm_clock_mhz(self, index: int) -> int:
        return int(self._vd(index, "fake.sm_clock_mhz").get("sm_clock_mhz", 1410))

    def processes(self, index: int) -> list[ProcessMemory]:
        vd = self._vd(index, "fake.processes")
        return [
            ProcessMemory(int(p["pid"]), int(p["used_mib"]) * 1024 * 1024 if p.get("used_mib") is not None else None)
            for p in vd.get("processes", [])
        ]

    def process_count(self, index: int) -> int:
        vd = self._vd(index, "fake.process_count")
        return len(vd.get("processes", [])) + len(vd.get("mps_processes", []))

    # -- health --------------------------------------------------------------------------------

    def ecc_uncorrected_volatile(self, index: int) -> int:
        self._dev(index, "fake.ecc_uncorrected_volatile")
        return 2 if "ecc-dbe" in self.faults[index] else 0

    def remapped_rows(self, index: int) -> RemappedRows:
        self._dev(index, "fake.remapped_rows")
        failed = "remap-failure" in self.faults[index]
        return RemappedRows(0, 1 if failed else 0, False, failed)

    def poll_xid_events(self) -> list[XidEvent]:
        self.calls.append("fake.poll_xid_events")
        if any("poll_xid_events" in d.spec.vendor_data.get("not_supported", []) for d in self.devices):
            raise NvmlFailure(NvmlCode.NOT_SUPPORTED, "nvmlDeviceRegisterEvents")
        out: list[XidEvent] = []
        for d in self.devices:
            for fault in sorted(self.faults[d.index]):
                if fault.startswith("xid-") and (d.index, int(fault[4:])) not in self._delivered_xids:
                    self._delivered_xids.add((d.index, int(fault[4:])))
                    out.append(XidEvent(d.uuid, int(fault[4:])))
        return out
