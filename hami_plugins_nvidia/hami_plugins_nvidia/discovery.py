"""Discovery: NVML answers → :class:`hami_hal.models.Device`, the same code for real and simulated GPUs.

Every field NVML cannot give ("Not Supported", e.g. the NUMA node on a VM) is reported as unknown with
its reason under ``attributes["unknown"]``; discovery never fails on one field. A GPU that has fallen
off the bus is still listed (unhealthy, unallocatable) so the operator sees it.

Device attributes (documented for operators and the scheduler):
``pci_bus_id``, ``minor_number``, ``compute_capability`` ("9.0"), ``sm_count``, ``cuda_cores``,
``driver_version``, ``cuda_driver_version`` ("13.0"), ``mig_capable``, ``mig_mode``
(``enabled``/``disabled``, with ``-> pending`` when a change waits for a reset), ``mig_profiles``
(HAMi ``migProfiles`` shape plus ``profileId``/``instanceCount``/``smCount``), ``mig_profiles_source``,
``memory_source`` (``nvml``, or ``preConfiguredDeviceMemory`` when NVML reports no memory), ``unknown``
(field → reason).

Node settings applied here (config.py): HAMi ``filterdevices`` (``uuid``/``index``: GPUs not registered),
``preConfiguredDeviceMemory``, ``migstrategy: none`` (a MIG-enabled GPU is not registered unless the operating
mode is ``mig``), ``enableNumaTopology`` (``Device.advertise_numa``) and ``enableGetPreferredAllocation``
(``Device.preferred_allocation``: false turns the kubelet's preferred allocation off; unset is on).
"""

from __future__ import annotations

import logging
import math
import re

from hami_hal.context import NodeContext
from hami_hal.models import Device, Provenance

from .config import parse_config
from .mig_catalogue import catalogue_profiles
from .nvml_port import MIB, NvmlCode, NvmlFailure, NvmlPort

VENDOR = "nvidia"
log = logging.getLogger(__name__)

#: CUDA cores per SM by compute capability (CUDA C Programming Guide, "Arithmetic Instructions").
_CORES_PER_SM = {
    (6, 0): 64, (6, 1): 128, (6, 2): 128, (7, 0): 64, (7, 2): 64, (7, 5): 64, (8, 0): 64,
    (8, 6): 128, (8, 7): 128, (8, 9): 128, (9, 0): 128, (10, 0): 128, (10, 3): 128, (12, 0): 128,
}
_PLAIN_PROFILE = re.compile(r"^\d+g\.\d+gb$")


def cuda_version_text(version: int) -> str:
    """NVML's integer CUDA driver version (13000) as nvidia-smi prints it ("13.0")."""
    return f"{version // 1000}.{(version % 1000) // 10}"


def sm_count(cuda_cores: int | None, capability: tuple[int, int] | None) -> int | None:
    """SMs = CUDA cores / cores per SM of the architecture; None when either is unknown."""
    if not cuda_cores or capability is None or capability not in _CORES_PER_SM:
        return None
    return cuda_cores // _CORES_PER_SM[capability]


def mig_profile_core(profile_sms: int, full_sms: int | None) -> int:
    """HAMi's MIG ``core``: ceil(profile SMs × 100 / full-GPU SMs), at most 100."""
    if not full_sms:
        return 0
    return min(100, math.ceil(profile_sms * 100 / full_sms))


def is_plain_profile(name: str) -> bool:
    """``3g.40gb`` yes, ``1g.10gb+me`` / ``1g.20gb-me`` no (HAMi accepts only ``<N>g.<mem>gb``)."""
    return bool(_PLAIN_PROFILE.match(name))


class _Probe:
    """Collects one device's answers, turning "Not Supported" into an unknown with its reason."""

    def __init__(self) -> None:
        self.unknown: dict[str, str] = {}

    def get(self, field: str, fn, *args, default=None):
        try:
            return fn(*args)
        except NvmlFailure as err:
            if err.code is NvmlCode.GPU_LOST:
                raise
            self.unknown[field] = f"NVML {err}"
            return default


def discover(port: NvmlPort, context: NodeContext) -> list[Device]:
    """All GPUs NVML sees. Raises BackendUnavailable("no NVML: ...") when there is no driver."""
    port.init()
    cfg = parse_config(context.config)
    driver = port.driver_version()
    try:
        cuda = cuda_version_text(port.cuda_driver_version())
    except NvmlFailure:
        cuda = None
    provenance = Provenance(source="real" if port.source == "real" else "simulated",
                            driver_version=driver, runtime_version=cuda, host=context.node_name,
                            profile=context.sim.name if context.sim else None)
    devices = []
    for index in range(port.device_count()):
        if index in cfg.filter_indexes:  # HAMi filterdevices.index: not registered on this node
            continue
        try:
            dev = _device(port, index, driver, cuda, provenance, cfg.pre_configured_device_memory)
        except NvmlFailure as err:
            dev = _lost_device(index, err, provenance)
        if dev.uuid in cfg.filter_uuids:
            continue
        if dev.mode == "mig" and not cfg.uses_mig():
            log.warning("GPU %d (%s): MIG mode is on and migstrategy is none (operating mode %s): not registered; "
                        "set migstrategy: mixed or operatingmode: mig to offer its MIG profiles", index, dev.uuid,
                        cfg.operating_mode)
            continue
        devices.append(dev.model_copy(update={"advertise_numa": cfg.enable_numa_topology,
                                              "preferred_allocation": cfg.enable_get_preferred_allocation is not False}))
    return devices


def _total_memory(port: NvmlPort, index: int, p: _Probe, preconfigured: int) -> tuple[int, str]:
    """(total MiB, where it came from): NVML's figure; HAMi's preConfiguredDeviceMemory only when NVML gives
    none (a unified-memory GPU such as GB10 answers Not Supported or 0)."""
    try:
        total = port.memory_info(index)[0] // MIB
    except NvmlFailure as err:
        if err.code is NvmlCode.GPU_LOST or not preconfigured:
            raise
        p.unknown["memory"] = f"NVML {err}"
        total = 0
    if total == 0 and preconfigured:
        return preconfigured, "preConfiguredDeviceMemory"
    return total, "nvml"


def _device(port: NvmlPort, index: int, driver: str, cuda: str | None, prov: Provenance,
            preconfigured_mib: int = 0) -> Device:
    p = _Probe()
    uuid = port.uuid(index)
    name = port.name(index)
    total_mib, memory_source = _total_memory(port, index, p, preconfigured_mib)
    cap = p.get("compute_capability", port.compute_capability, index)
    cores = p.get("cuda_cores", port.cuda_cores, index)
    sms = sm_count(cores, cap)
    if cores and sms is None:
        p.unknown["sm_count"] = f"no cores-per-SM figure for compute capability {cap}"
    bus = p.get("pci_bus_id", port.pci_bus_id, index, default="")
    minor = p.get("minor_number", port.minor_number, index)
    numa = p.get("numa_node", port.numa_node, index)
    if numa is not None and numa < 0:
        p.unknown["numa_node"] = f"NVML reported {numa}"
        numa = None
    mig = p.get("mig_mode", port.mig_mode, index)
    if mig is None and "Not Supported" in p.unknown.get("mig_mode", ""):
        del p.unknown["mig_mode"]  # a fact (no MIG on this GPU), not an unknown
    attrs: dict = {
        "pci_bus_id": bus,
        "minor_number": minor,
        "compute_capability": f"{cap[0]}.{cap[1]}" if cap else None,
        "sm_count": sms,
        "cuda_cores": cores,
        "driver_version": driver,
        "cuda_driver_version": cuda,
        "mig_capable": mig is not None,
        "mig_mode": _mig_text(mig),
        "mig_profiles": [],
        "memory_source": memory_source,
    }
    if mig is not None:
        profiles = p.get("mig_profiles", port.mig_profiles, index, default=[])
        source = "nvml" if profiles else "unavailable"
        if not profiles and port.source == "real" and (known := catalogue_profiles(name)):
            source, profiles = f"catalogue:{known[0]}", known[1]
        attrs["mig_profiles"] = [
            {"name": m.name, "memoryMB": m.memory_mib, "core": mig_profile_core(m.sm_count, sms),
             "sliceCount": m.slice_count, "instanceCount": m.instance_count, "smCount": m.sm_count,
             "profileId": m.profile_id, "profileIndex": m.profile_index,
             "placements": [{"start": s, "size": z} for s, z in m.placements]}
            for m in profiles
        ]
        attrs["mig_profiles_source"] = source
    attrs["unknown"] = p.unknown
    return Device(
        vendor=VENDOR, index=index, uuid=uuid, model=name, hami_type=f"NVIDIA-{name}",
        memory_mib=total_mib, compute_units=sms, numa_node=numa,
        mode="mig" if mig and mig[0] else "hami-core",
        attributes=attrs, provenance=prov.model_copy(update={"device_model": name}),
    )


def _mig_text(mig: tuple[bool, bool] | None) -> str | None:
    if mig is None:
        return None
    cur, pending = ("enabled" if m else "disabled" for m in mig)
    return cur if cur == pending else f"{cur} -> {pending}"


def _lost_device(index: int, err: NvmlFailure, prov: Provenance) -> Device:
    """A GPU NVML cannot read any more; listed so it is seen, never allocatable."""
    reason = "GPU has fallen off the bus" if err.code is NvmlCode.GPU_LOST else "NVML cannot read the GPU"
    return Device(
        vendor=VENDOR, index=index, uuid=f"NVIDIA-UNREADABLE-{index}", model="unknown",
        hami_type="NVIDIA-unknown", memory_mib=0, healthy=False, health_reason=f"{reason} ({err})",
        attributes={"unknown": {"all": str(err)}}, provenance=prov,
    )
