"""RealNvml against a stand-in ``pynvml`` module: error mapping and the calls discovery makes.

No GPU is needed: the stand-in answers like NVML for one H100, and can fail like a host without the
driver or with a lost GPU. This pins the real port's use of the pynvml API.
"""

from __future__ import annotations

import ctypes
import sys
import types

import pytest
from hami_plugins_nvidia.nvml_port import NvmlCode, NvmlFailure, RealNvml

from hami_hal.context import NodeContext
from hami_hal.errors import BackendUnavailable
from hami_plugins_nvidia import discovery, health, metrics, topology


class _Err(Exception):
    def __init__(self, value):
        self.value = value
        super().__init__(f"NVML error {value}")


def _stand_in(fail_init=None, lost=False, numa_supported=False):
    m = types.ModuleType("pynvml")
    m.NVMLError = _Err
    codes = dict(NVML_ERROR_LIBRARY_NOT_FOUND=12, NVML_ERROR_DRIVER_NOT_LOADED=9, NVML_ERROR_NOT_SUPPORTED=3,
                 NVML_ERROR_GPU_IS_LOST=15, NVML_ERROR_NO_PERMISSION=4, NVML_ERROR_NOT_FOUND=6,
                 NVML_ERROR_INVALID_ARGUMENT=2, NVML_ERROR_TIMEOUT=10, NVML_ERROR_FUNCTION_NOT_FOUND=13)
    for k, v in codes.items():
        setattr(m, k, v)
    m.NVML_GPU_INSTANCE_PROFILE_COUNT = 3
    m.NVML_NVLINK_MAX_LINKS = 4
    m.NVML_NVLINK_DEVICE_TYPE_GPU, m.NVML_NVLINK_DEVICE_TYPE_SWITCH = 0, 2
    m.NVML_TEMPERATURE_GPU, m.NVML_CLOCK_SM = 0, 1
    m.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, m.NVML_VOLATILE_ECC = 1, 0
    m.nvmlEventTypeXidCriticalError = 8
    m.nvmlMemory_v2 = 33554472
    ns = types.SimpleNamespace

    def dev_call(fn):
        def wrapped(*a):
            if lost:
                raise _Err(15)
            return fn(*a)
        return wrapped

    def init():
        if fail_init:
            raise _Err(fail_init)
    m.nvmlInit = init
    m.nvmlSystemGetDriverVersion = lambda: "580.159.04"
    m.nvmlSystemGetCudaDriverVersion = lambda: 13000
    m.nvmlDeviceGetCount = lambda: 1
    m.nvmlDeviceGetHandleByIndex = lambda i: f"h{i}"
    m.nvmlDeviceGetHandleByUUID = dev_call(lambda u: "h0")
    m.nvmlDeviceGetIndex = lambda h: 0
    m.nvmlDeviceGetUUID = dev_call(lambda h: b"GPU-11111111-2222-3333-4444-555555555555")
    m.nvmlDeviceGetName = dev_call(lambda h: "NVIDIA H100 80GB HBM3")
    m.nvmlDeviceGetMemoryInfo = dev_call(lambda h, v=None: ns(total=81559 * 2**20, used=512 * 2**20, free=0))
    m.nvmlDeviceGetCudaComputeCapability = dev_call(lambda h: (9, 0))
    m.nvmlDeviceGetNumGpuCores = dev_call(lambda h: 16896)
    m.nvmlDeviceGetPciInfo = dev_call(lambda h: ns(busId=b"00000000:18:00.0"))
    m.nvmlDeviceGetMinorNumber = dev_call(lambda h: 0)

    def numa(h):
        if numa_supported:
            return 1
        raise _Err(3)
    m.nvmlDeviceGetNumaNodeId = numa
    m.nvmlDeviceGetMigMode = dev_call(lambda h: (0, 0))

    def profile(h, idx):
        table = {0: (19, "MIG 1g.10gb", 1, 7, 16, 9984), 2: (9, "MIG 3g.40gb", 3, 2, 60, 40448)}
        if idx not in table:
            raise _Err(3)
        pid, name, sl, inst, sms, mem = table[idx]
        return ns(id=pid, name=name.encode(), sliceCount=sl, instanceCount=inst, multiprocessorCount=sms,
                  memorySizeMB=mem)
    m.nvmlDeviceGetGpuInstanceProfileInfo = profile

    class Placement(ctypes.Structure):
        _fields_ = [("start", ctypes.c_uint), ("size", ctypes.c_uint)]
    m.c_nvmlGpuInstancePlacement_t = Placement

    def placements(h, pid, arr, count_ref):
        raise _Err(3)  # as with MIG mode disabled on some drivers
    m.nvmlDeviceGetGpuInstancePossiblePlacements = placements
    m.nvmlDeviceGetNvLinkState = lambda h, link: (_ for _ in ()).throw(_Err(3))
    m.nvmlDeviceGetUtilizationRates = dev_call(lambda h: ns(gpu=7, memory=2))
    m.nvmlDeviceGetPowerUsage = dev_call(lambda h: 71234)
    m.nvmlDeviceGetEnforcedPowerLimit = dev_call(lambda h: 700000)
    m.nvmlDeviceGetTemperature = dev_call(lambda h, s: 33)
    m.nvmlDeviceGetClockInfo = dev_call(lambda h, c: 1980)
    m.nvmlDeviceGetComputeRunningProcesses = dev_call(lambda h: [ns(pid=42, usedGpuMemory=2048 * 2**20),
                                                                 ns(pid=43, usedGpuMemory=None)])
    m.nvmlDeviceGetTotalEccErrors = dev_call(lambda h, t, c: 0)
    m.nvmlDeviceGetRemappedRows = dev_call(lambda h: (0, 0, 0, 0))
    m.nvmlEventSetCreate = lambda: "set"
    m.nvmlDeviceRegisterEvents = lambda h, t, s: (_ for _ in ()).throw(_Err(3))
    m.nvmlEventSetFree = lambda s: None
    return m


@pytest.fixture
def nvml(monkeypatch):
    def make(**kw):
        monkeypatch.setitem(sys.modules, "pynvml", _stand_in(**kw))
        return RealNvml()
    return make


CTX = NodeContext("real", "h100-node")


def test_driver_missing_is_one_no_nvml_line(nvml):
    port = nvml(fail_init=12)
    with pytest.raises(BackendUnavailable, match=r"^no NVML: libnvidia-ml.so.1 not found"):
        port.init()


def test_driver_not_loaded_is_one_no_nvml_line(nvml):
    with pytest.raises(BackendUnavailable, match=r"^no NVML: the NVIDIA kernel driver is not loaded$"):
        nvml(fail_init=9).init()


def test_missing_pynvml_package_is_no_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(BackendUnavailable, match="nvidia-ml-py"):
        RealNvml().init()


def test_real_discovery_reports_unknown_numa_instead_of_failing(nvml):
    port = nvml()
    (dev,) = discovery.discover(port, CTX)
    assert dev.uuid == "GPU-11111111-2222-3333-4444-555555555555"
    assert dev.model == "NVIDIA H100 80GB HBM3" and dev.hami_type == "NVIDIA-NVIDIA H100 80GB HBM3"
    assert dev.memory_mib == 81559 and dev.compute_units == 132
    assert dev.attributes["compute_capability"] == "9.0"
    assert dev.attributes["cuda_driver_version"] == "13.0"
    assert dev.attributes["pci_bus_id"] == "00000000:18:00.0"
    assert dev.numa_node is None
    assert "Not Supported" in dev.attributes["unknown"]["numa_node"]
    assert dev.provenance.source == "real" and dev.provenance.driver_version == "580.159.04"
    assert dev.mode == "hami-core" and dev.attributes["mig_mode"] == "disabled"
    names = [p["name"] for p in dev.attributes["mig_profiles"]]
    assert names == ["1g.10gb", "3g.40gb"]
    assert dev.attributes["mig_profiles"][1]["core"] == 46  # ceil(60 * 100 / 132)
    assert dev.attributes["mig_profiles_source"] == "nvml"


def test_real_numa_when_nvml_supports_it(nvml):
    (dev,) = discovery.discover(nvml(numa_supported=True), CTX)
    assert dev.numa_node == 1 and "numa_node" not in dev.attributes["unknown"]


def test_real_metrics_health_and_topology(nvml):
    port = nvml()
    (dev,) = discovery.discover(port, CTX)
    got = {s.name: (s.value, s.unit) for s in metrics.device_samples(port, dev)}
    assert got["memory_total"] == (81559 * 2**20, "bytes")
    assert got["utilization"] == (0.07, "ratio")
    assert got["power"] == (71.234, "watts")
    assert got["sm_clock"] == (1980e6, "hertz")
    procs = metrics.process_samples(port, dev)
    assert [(p.labels["pid"], p.value) for p in procs] == [("42", 2048 * 2**20)]
    status = health.check(port, dev)
    assert status.healthy
    assert any("XID events not available" in e for e in status.events)
    assert topology.topology(port, [dev]).links == []


def test_real_lost_gpu_is_listed_unhealthy(nvml):
    port = nvml(lost=True)
    (dev,) = discovery.discover(port, CTX)
    assert not dev.healthy and "fallen off the bus" in dev.health_reason
    assert health.check(port, dev).healthy is False


def test_error_codes_map_to_reasons(nvml):
    port = nvml()
    port.init()
    with pytest.raises(NvmlFailure) as info:
        port._call("nvmlDeviceGetNumaNodeId", "h0")
    assert info.value.code is NvmlCode.NOT_SUPPORTED
    assert str(info.value) == "nvmlDeviceGetNumaNodeId: Not Supported"
