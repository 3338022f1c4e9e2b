"""The thin NVML port: the only module that talks to ``pynvml``.

Everything else in the plugin calls the small :class:`NvmlPort` interface, so the same discovery,
topology, health and metrics code runs against the real driver (:class:`RealNvml`) and against the
simulated node (:class:`hami_plugins_nvidia.fake_nvml.FakeNvml`). Devices are addressed by their NVML
index; results are plain Python values. Every NVML error becomes an :class:`NvmlFailure` carrying a
symbolic :class:`NvmlCode` and the name of the call, so callers can tell "Not Supported" (report
unknown) from "GPU is lost" (unhealthy) from "no driver" (plugin skipped).
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from hami_hal.errors import BackendUnavailable

MIB = 1024 * 1024

#: NVML_TOPOLOGY_* levels (nvmlGpuTopologyLevel_t), best first.
TOPOLOGY_INTERNAL = 0
TOPOLOGY_SINGLE = 10
TOPOLOGY_MULTIPLE = 20
TOPOLOGY_HOSTBRIDGE = 30
TOPOLOGY_NODE = 40
TOPOLOGY_SYSTEM = 50


class NvmlCode(StrEnum):
    """NVML return codes the plugin distinguishes; the rest are ``other``."""

    NO_LIBRARY = "library not found"
    DRIVER_NOT_LOADED = "driver not loaded"
    NOT_SUPPORTED = "Not Supported"
    GPU_LOST = "GPU is lost"
    NO_PERMISSION = "insufficient permissions"
    NOT_FOUND = "not found"
    INVALID_ARGUMENT = "invalid argument"
    INVALID_STATE = "invalid state"
    INSUFFICIENT_RESOURCES = "insufficient resources"
    IN_USE = "in use"
    TIMEOUT = "timeout"
    UNINITIALIZED = "not initialized"
    OTHER = "error"


class NvmlFailure(Exception):
    """An NVML call failed. ``str()`` is one line: ``nvmlDeviceGetNumaNodeId: Not Supported``."""

    def __init__(self, code: NvmlCode, call: str, detail: str = "") -> None:
        self.code = code
        self.call = call
        self.detail = detail
        super().__init__(f"{call}: {detail or code.value}")

    @property
    def not_supported(self) -> bool:
        return self.code in (NvmlCode.NOT_SUPPORTED, NvmlCode.NOT_FOUND)


@dataclass(frozen=True)
class MigProfile:
    """One GPU-instance profile as NVML describes it (nvmlGpuInstanceProfileInfo_v2 + placements)."""

    #: Index in NVML's NVML_GPU_INSTANCE_PROFILE_* table (what create calls take).
    profile_index: int
    #: NVML's profile id (``id`` field, as ``nvidia-smi mig -lgip`` prints).
    profile_id: int
    name: str
    memory_mib: int
    slice_count: int
    instance_count: int
    sm_count: int
    placements: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class NvLinkEnd:
    """One active NVLink of a GPU: where it lands (a peer GPU or an NVSwitch)."""

    link: int
    remote_bus_id: str
    #: ``gpu``, ``switch`` or ``unknown`` (NVML_NVLINK_DEVICE_TYPE_*).
    remote_type: str


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    #: Bytes; None where NVML cannot attribute memory (e.g. without permission inside a container).
    used_bytes: int | None


@dataclass(frozen=True)
class XidEvent:
    uuid: str
    xid: int


@dataclass(frozen=True)
class MigInstance:
    """A live MIG GPU instance + compute instance pair."""

    gpu_instance_id: int
    compute_instance_id: int
    profile_id: int
    start: int
    size: int
    uuid: str | None = None


@dataclass(frozen=True)
class RemappedRows:
    correctable: int
    uncorrectable: int
    pending: bool
    failure: bool


class NvmlPort(Protocol):
    """What the plugin needs from NVML. Both the real library and the fake implement it."""

    #: ``real`` or ``simulated``; carried into provenance.
    source: str

    def init(self) -> None: ...
    def driver_version(self) -> str: ...
    def cuda_driver_version(self) -> int: ...
    def device_count(self) -> int: ...
    def index_of(self, uuid: str) -> int: ...
    def uuid(self, index: int) -> str: ...
    def name(self, index: int) -> str: ...
    def memory_info(self, index: int) -> tuple[int, int, int]: ...
    def compute_capability(self, index: int) -> tuple[int, int]: ...
    def cuda_cores(self, index: int) -> int: ...
    def pci_bus_id(self, index: int) -> str: ...
    def minor_number(self, index: int) -> int: ...
    def numa_node(self, index: int) -> int: ...
    def mig_mode(self, index: int) -> tuple[bool, bool]: ...
    def mig_profiles(self, index: int) -> list[MigProfile]: ...
    def mig_placements(self, index: int, profile_index: int) -> list[tuple[int, int]]: ...
    def common_ancestor(self, a: int, b: int) -> int: ...
    def nvlinks(self, index: int) -> list[NvLinkEnd]: ...
    def p2p_nvlink(self, a: int, b: int) -> bool: ...
    def utilization(self, index: int) -> tuple[int, int]: ...
    def power_mw(self, index: int) -> int: ...
    def power_limit_mw(self, index: int) -> int: ...
    def temperature_c(self, index: int) -> int: ...
    def sm_clock_mhz(self, index: int) -> int: ...
    def processes(self, index: int) -> list[ProcessMemory]: ...
    def process_count(self, index: int) -> int: ...
    def ecc_uncorrected_volatile(self, index: int) -> int: ...
    def remapped_rows(self, index: int) -> RemappedRows: ...
    def poll_xid_events(self) -> list[XidEvent]: ...
    def mig_instances(self, index: int) -> list[MigInstance]: ...
    def create_mig_instance(self, index: int, profile_index: int, start: int, size: int) -> MigInstance: ...
    def destroy_mig_instance(self, index: int, gpu_instance_id: int, compute_instance_id: int) -> None: ...


# ---------------------------------------------------------------------------------------------
# The real port
# ---------------------------------------------------------------------------------------------


def _code_of(pynvml, err) -> NvmlCode:
    table = {
        "NVML_ERROR_LIBRARY_NOT_FOUND": NvmlCode.NO_LIBRARY,
        "NVML_ERROR_DRIVER_NOT_LOADED": NvmlCode.DRIVER_NOT_LOADED,
        "NVML_ERROR_NOT_SUPPORTED": NvmlCode.NOT_SUPPORTED,
        "NVML_ERROR_GPU_IS_LOST": NvmlCode.GPU_LOST,
        "NVML_ERROR_NO_PERMISSION": NvmlCode.NO_PERMISSION,
        "NVML_ERROR_NOT_FOUND": NvmlCode.NOT_FOUND,
        "NVML_ERROR_INVALID_ARGUMENT": NvmlCode.INVALID_ARGUMENT,
        "NVML_ERROR_INVALID_STATE": NvmlCode.INVALID_STATE,
        "NVML_ERROR_INSUFFICIENT_RESOURCES": NvmlCode.INSUFFICIENT_RESOURCES,
        "NVML_ERROR_IN_USE": NvmlCode.IN_USE,
        "NVML_ERROR_TIMEOUT": NvmlCode.TIMEOUT,
        "NVML_ERROR_UNINITIALIZED": NvmlCode.UNINITIALIZED,
        "NVML_ERROR_FUNCTION_NOT_FOUND": NvmlCode.NOT_SUPPORTED,
    }
    value = getattr(err, "value", None)
    for const, code in table.items():
        if getattr(pynvml, const, object()) == value:
            return code
    return NvmlCode.OTHER


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RealNvml:
    """NVML through ``pynvml``, imported lazily so the plugin loads on machines without it."""

    source = "real"

    def __init__(self) -> None:
        self._nvml = None
        self._handles: dict[int, object] = {}
        self._lock = threading.Lock()
        self._events = None
        self._event_uuids: dict[int, str] = {}

    # -- plumbing ------------------------------------------------------------------------------

    def _call(self, name: str, *args):
        nv = self._nvml
        try:
            return getattr(nv, name)(*args)
        except nv.NVMLError as err:
            code = _code_of(nv, err)
            raise NvmlFailure(code, name, str(err) if code is NvmlCode.OTHER else "") from None
        except AttributeError:
            raise NvmlFailure(NvmlCode.NOT_SUPPORTED, name, "not in this nvidia-ml-py") from None

    def _h(self, index: int):
        if index not in self._handles:
            self._handles[index] = self._call("nvmlDeviceGetHandleByIndex", index)
        return self._handles[index]

    def init(self) -> None:
        """Load libnvidia-ml and initialise NVML; raise BackendUnavailable("no NVML: ...") if absent."""
        with self._lock:
            if self._nvml is not None:
                return
            try:
                import pynvml
            except ImportError:
                raise BackendUnavailable("no NVML: the nvidia-ml-py package (pynvml) is not installed") from None
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError as err:
                code = _code_of(pynvml, err)
                if code is NvmlCode.NO_LIBRARY:
                    raise BackendUnavailable(
                        "no NVML: libnvidia-ml.so.1 not found (no NVIDIA driver on this node)"
                    ) from None
                if code is NvmlCode.DRIVER_NOT_LOADED:
                    raise BackendUnavailable("no NVML: the NVIDIA kernel driver is not loaded") from None
                raise BackendUnavailable(f"no NVML: nvmlInit failed: {err}") from None
            self._nvml = pynvml

    # -- system ----------------------------------------------------------------------------------

    def driver_version(self) -> str:
        return _text(self._call("nvmlSystemGetDriverVersion"))

    def cuda_driver_version(self) -> int:
        return int(self._call("nvmlSystemGetCudaDriverVersion"))

    def device_count(self) -> int:
        return int(self._call("nvmlDeviceGetCount"))

    def index_of(self, uuid: str) -> int:
        handle = self._call("nvmlDeviceGetHandleByUUID", uuid.encode() if isinstance(uuid, str) else uuid)
        return int(self._call("nvmlDeviceGetIndex", handle))

    # -- identity ------------------------------------------------------------------------------

    def uuid(self, index: int) -> str:
        return _text(self._call("nvmlDeviceGetUUID", self._h(index)))

    def name(self, index: int) -> str:
        return _text(self._call("nvmlDeviceGetName", self._h(index)))

    def memory_info(self, index: int) -> tuple[int, int, int]:
        """(total, used, free) bytes. v2 first: its ``used`` excludes driver-reserved memory, as
        nvidia-smi shows it; v1 (older drivers) counts reserved memory as used."""
        version = getattr(self._nvml, "nvmlMemory_v2", None)
        if version is not None:
            try:
                info = self._call("nvmlDeviceGetMemoryInfo", self._h(index), version)
                return int(info.total), int(info.used), int(info.free)
            except NvmlFailure as err:
                if err.code is NvmlCode.GPU_LOST:
                    raise
        info = self._call("nvmlDeviceGetMemoryInfo", self._h(index))
        return int(info.total), int(info.used), int(info.free)

    def compute_capability(self, index: int) -> tuple[int, int]:
        major, minor = self._call("nvmlDeviceGetCudaComputeCapability", self._h(index))
        return int(major), int(minor)

    def cuda_cores(self, index: int) -> int:
        return int(self._call("nvmlDeviceGetNumGpuCores", self._h(index)))

    def pci_bus_id(self, index: int) -> str:
        return _text(self._call("nvmlDeviceGetPciInfo", self._h(index)).busId)

    def minor_number(self, index: int) -> int:
        return int(self._call("nvmlDeviceGetMinorNumber", self._h(index)))

    def numa_node(self, index: int) -> int:
        """NVML's NUMA node; where NVML has none (x86 hosts, VMs) the PCI device's sysfs ``numa_node``.

        nvmlDeviceGetNumaNodeId answers only where GPU memory is itself a NUMA node (e.g. GH200);
        the CPU-side affinity the scheduler needs is what the kernel records for the PCI device.
        """
        try:
            return int(self._call("nvmlDeviceGetNumaNodeId", self._h(index)))
        except NvmlFailure as err:
            if err.code is NvmlCode.GPU_LOST:
                raise
            nvml_err = err
        dom, _, rest = self.pci_bus_id(index).lower().partition(":")
        path = f"/sys/bus/pci/devices/{int(dom, 16):04x}:{rest}/numa_node"
        try:
            with open(path) as fh:
                value = int(fh.read().strip())
        except (OSError, ValueError):
            raise NvmlFailure(nvml_err.code, nvml_err.call, f"{nvml_err.code.value}; {path} unreadable") from None
        if value < 0:
            raise NvmlFailure(nvml_err.code, nvml_err.call, f"{nvml_err.code.value}; {path} says {value}")
        return value

    # -- MIG -----------------------------------------------------------------------------------

    def mig_mode(self, index: int) -> tuple[bool, bool]:
        current, pending = self._call("nvmlDeviceGetMigMode", self._h(index))
        return bool(current), bool(pending)

    def mig_profiles(self, index: int) -> list[MigProfile]:
        nv = self._nvml
        out: list[MigProfile] = []
        last: NvmlFailure | None = None
        for pidx in range(nv.NVML_GPU_INSTANCE_PROFILE_COUNT):
            try:
                info = self._call("nvmlDeviceGetGpuInstanceProfileInfo", self._h(index), pidx)
            except NvmlFailure as err:
                if err.code is NvmlCode.GPU_LOST:
                    raise
                last = err
                continue
            if not info.instanceCount:
                continue
            name = _text(info.name).removeprefix("MIG ").strip()
            try:
                places = tuple(self.mig_placements(index, pidx))
            except NvmlFailure:
                places = ()
            out.append(MigProfile(pidx, int(info.id), name, int(info.memorySizeMB), int(info.sliceCount),
                                  int(info.instanceCount), int(info.multiprocessorCount), places))
        if not out and last is not None:
            raise last
        return out

    def mig_placements(self, index: int, profile_index: int) -> list[tuple[int, int]]:
        nv = self._nvml
        info = self._call("nvmlDeviceGetGpuInstanceProfileInfo", self._h(index), profile_index)
        arr = (nv.c_nvmlGpuInstancePlacement_t * 16)()
        count = ctypes.c_uint(len(arr))
        self._call("nvmlDeviceGetGpuInstancePossiblePlacements", self._h(index), int(info.id), arr,
                   ctypes.byref(count))
        return [(int(arr[i].start), int(arr[i].size)) for i in range(count.value)]

    def mig_instances(self, index: int) -> list[MigInstance]:
        nv = self._nvml
        out: list[MigInstance] = []
        for prof in self.mig_profiles(index):
            arr = (nv.c_nvmlGpuInstance_t * max(prof.instance_count, 1))()
            count = ctypes.c_uint(0)
            try:
                self._call("nvmlDeviceGetGpuInstances", self._h(index), prof.profile_id, arr, ctypes.byref(count))
            except NvmlFailure:
                continue
            for i in range(count.value):
                gi = arr[i]
                gi_info = self._call("nvmlGpuInstanceGetInfo", gi)
                out.extend(self._compute_instances(gi, gi_info, prof))
        return out

    def _compute_instances(self, gi, gi_info, prof: MigProfile) -> list[MigInstance]:
        nv = self._nvml
        ci_arr = (nv.c_nvmlComputeInstance_t * 8)()
        found: list[MigInstance] = []
        for ci_pidx in range(nv.NVML_COMPUTE_INSTANCE_PROFILE_COUNT):
            try:
                ci_prof = self._call("nvmlGpuInstanceGetComputeInstanceProfileInfo", gi, ci_pidx,
                                     nv.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
                count = ctypes.c_uint(0)
                self._call("nvmlGpuInstanceGetComputeInstances", gi, ci_prof.id, ci_arr, ctypes.byref(count))
            except NvmlFailure:
                continue
            for j in range(count.value):
                ci_info = self._call("nvmlComputeInstanceGetInfo", ci_arr[j])
                found.append(MigInstance(int(gi_info.id), int(ci_info.id), prof.profile_id,
                                         int(gi_info.placement.start), int(gi_info.placement.size)))
        return found

    def create_mig_instance(self, index: int, profile_index: int, start: int, size: int) -> MigInstance:
        """Create a GPU instance at a placement, then one full compute instance inside it."""
        nv = self._nvml
        info = self._call("nvmlDeviceGetGpuInstanceProfileInfo", self._h(index), profile_index)
        placement = nv.c_nvmlGpuInstancePlacement_t()
        placement.start, placement.size = start, size
        gi = self._call("nvmlDeviceCreateGpuInstanceWithPlacement", self._h(index), int(info.id),
                        ctypes.byref(placement))
        try:
            ci_prof = self._call("nvmlGpuInstanceGetComputeInstanceProfileInfo", gi,
                                 _full_ci_profile(nv, int(info.sliceCount)),
                                 nv.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
            ci = self._call("nvmlGpuInstanceCreateComputeInstance", gi, ci_prof.id)
        except NvmlFailure:
            self._call("nvmlGpuInstanceDestroy", gi)
            raise
        gi_info = self._call("nvmlGpuInstanceGetInfo", gi)
        ci_info = self._call("nvmlComputeInstanceGetInfo", ci)
        return MigInstance(int(gi_info.id), int(ci_info.id), int(info.id), start, size,
                           self._mig_uuid(index, int(gi_info.id), int(ci_info.id)))

    def _mig_uuid(self, index: int, gi_id: int, ci_id: int) -> str | None:
        try:
            count = int(self._call("nvmlDeviceGetMaxMigDeviceCount", self._h(index)))
        except NvmlFailure:
            return None
        for k in range(count):
            try:
                mig = self._call("nvmlDeviceGetMigDeviceHandleByIndex", self._h(index), k)
                if (int(self._call("nvmlDeviceGetGpuInstanceId", mig)) == gi_id
                        and int(self._call("nvmlDeviceGetComputeInstanceId", mig)) == ci_id):
                    return _text(self._call("nvmlDeviceGetUUID", mig))
            except NvmlFailure:
                continue
        return None

    def destroy_mig_instance(self, index: int, gpu_instance_id: int, compute_instance_id: int) -> None:
        gi = self._call("nvmlDeviceGetGpuInstanceById", self._h(index), gpu_instance_id)
        ci = self._call("nvmlGpuInstanceGetComputeInstanceById", gi, compute_instance_id)
        self._call("nvmlComputeInstanceDestroy", ci)
        self._call("nvmlGpuInstanceDestroy", gi)

    # -- topology ------------------------------------------------------------------------------

    def common_ancestor(self, a: int, b: int) -> int:
        return int(self._call("nvmlDeviceGetTopologyCommonAncestor", self._h(a), self._h(b)))

    def nvlinks(self, index: int) -> list[NvLinkEnd]:
        nv = self._nvml
        kinds = {nv.NVML_NVLINK_DEVICE_TYPE_GPU: "gpu", nv.NVML_NVLINK_DEVICE_TYPE_SWITCH: "switch"}
        out: list[NvLinkEnd] = []
        for link in range(nv.NVML_NVLINK_MAX_LINKS):
            try:
                if not self._call("nvmlDeviceGetNvLinkState", self._h(index), link):
                    continue
            except NvmlFailure as err:
                if err.code is NvmlCode.GPU_LOST:
                    raise
                if err.code is NvmlCode.NOT_SUPPORTED and link == 0:
                    raise
                continue
            remote = _text(self._call("nvmlDeviceGetNvLinkRemotePciInfo", self._h(index), link).busId)
            try:
                kind = kinds.get(self._call("nvmlDeviceGetNvLinkRemoteDeviceType", self._h(index), link),
                                 "unknown")
            except NvmlFailure:
                kind = "unknown"
            out.append(NvLinkEnd(link, remote, kind))
        return out

    def p2p_nvlink(self, a: int, b: int) -> bool:
        nv = self._nvml
        status = self._call("nvmlDeviceGetP2PStatus", self._h(a), self._h(b), nv.NVML_P2P_CAPS_INDEX_NVLINK)
        return status == nv.NVML_P2P_STATUS_OK

    # -- metrics -------------------------------------------------------------------------------

    def utilization(self, index: int) -> tuple[int, int]:
        u = self._call("nvmlDeviceGetUtilizationRates", self._h(index))
        return int(u.gpu), int(u.memory)

    def power_mw(self, index: int) -> int:
        return int(self._call("nvmlDeviceGetPowerUsage", self._h(index)))

    def power_limit_mw(self, index: int) -> int:
        return int(self._call("nvmlDeviceGetEnforcedPowerLimit", self._h(index)))

    def temperature_c(self, index: int) -> int:
        return int(self._call("nvmlDeviceGetTemperature", self._h(index), self._nvml.NVML_TEMPERATURE_GPU))

    def sm_clock_mhz(self, index: int) -> int:
        return int(self._call("nvmlDeviceGetClockInfo", self._h(index), self._nvml.NVML_CLOCK_SM))

    def processes(self, index: int) -> list[ProcessMemory]:
        procs = self._call("nvmlDeviceGetComputeRunningProcesses", self._h(index))
        out = []
        for p in procs:
            used = getattr(p, "usedGpuMemory", None)
            out.append(ProcessMemory(int(p.pid), int(used) if used is not None else None))
        return out

    def process_count(self, index: int) -> int:
        """Processes with a compute context on the GPU plus MPS clients (listed apart), as the interposer counts
        them (csrc/nvmlq.c). From the host's PID namespace this is every process on the GPU; "Not Supported" for
        the MPS list counts none, any other failure raises (the caller must not guess)."""
        count = len(self._call("nvmlDeviceGetComputeRunningProcesses", self._h(index)))
        try:
            count += len(self._call("nvmlDeviceGetMPSComputeRunningProcesses", self._h(index)))
        except NvmlFailure as err:
            if not err.not_supported:
                raise
        return count

    # -- health --------------------------------------------------------------------------------

    def ecc_uncorrected_volatile(self, index: int) -> int:
        nv = self._nvml
        return int(self._call("nvmlDeviceGetTotalEccErrors", self._h(index),
                              nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nv.NVML_VOLATILE_ECC))

    def remapped_rows(self, index: int) -> RemappedRows:
        corr, unc, pending, failure = self._call("nvmlDeviceGetRemappedRows", self._h(index))
        return RemappedRows(int(corr), int(unc), bool(pending), bool(failure))

    def poll_xid_events(self) -> list[XidEvent]:
        """XID critical events since the last poll. Registers every GPU on first use.

        Raises NvmlFailure(NOT_SUPPORTED) when no GPU on the node can deliver XID events.
        """
        nv = self._nvml
        if self._events is None:
            events = self._call("nvmlEventSetCreate")
            registered = 0
            for index in range(self.device_count()):
                try:
                    self._call("nvmlDeviceRegisterEvents", self._h(index), nv.nvmlEventTypeXidCriticalError, events)
                except NvmlFailure:
                    continue
                registered += 1
            if not registered:
                self._call("nvmlEventSetFree", events)
                raise NvmlFailure(NvmlCode.NOT_SUPPORTED, "nvmlDeviceRegisterEvents")
            self._events = events
        out: list[XidEvent] = []
        while True:
            try:
                data = self._call("nvmlEventSetWait", self._events, 0)
            except NvmlFailure as err:
                if err.code is NvmlCode.TIMEOUT:
                    return out
                raise
            if data.eventType != nv.nvmlEventTypeXidCriticalError:
                continue
            try:
                uuid = _text(self._call("nvmlDeviceGetUUID", data.device))
            except NvmlFailure:
                uuid = "unknown"
            out.append(XidEvent(uuid, int(data.eventData)))


def _full_ci_profile(nv, slices: int) -> int:
    """The compute-instance profile that spans a whole GPU instance of ``slices`` slices."""
    table = {1: "NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE", 2: "NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE",
             3: "NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE", 4: "NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE",
             6: "NVML_COMPUTE_INSTANCE_PROFILE_6_SLICE", 7: "NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE",
             8: "NVML_COMPUTE_INSTANCE_PROFILE_8_SLICE"}
    return int(getattr(nv, table.get(slices, "NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE")))
