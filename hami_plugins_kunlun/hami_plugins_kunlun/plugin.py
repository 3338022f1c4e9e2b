"""The hookimpls of the Kunlunxin plugin: thin; each hook picks the ``xpu-smi`` port for the node context
(real tool or the simulated node) and delegates to the module that owns the rule."""

from __future__ import annotations

from pathlib import Path

from hami_hal import hookimpl
from hami_hal.context import NodeContext
from hami_hal.models import (
    ContainerAllocation,
    ContainerEdits,
    Device,
    HealthStatus,
    MetricSample,
    PartitionModel,
    PodAllocation,
    ResourceRequest,
    Topology,
    VendorInfo,
)
from hami_hal.vendor_tool import ToolError

from . import __version__, discovery, isolation, slices, topology
from .port import port_for
from .vendor import DEVICE_IDX_ANNOTATION, VXPU_WORD, WHOLE_WORD, vendor_info
from .xpusmi import parse_query

PLUGIN_NAME = "kunlun"
PROFILE_DIR = Path(__file__).parent / "profiles"

__all__ = ["PLUGIN_NAME", "__version__"]


@hookimpl
def hami_hal_vendor() -> VendorInfo:
    return vendor_info()


@hookimpl
def hami_hal_sim_profiles() -> list[Path]:
    return [PROFILE_DIR]


@hookimpl
def hami_hal_discover(context: NodeContext) -> list[Device]:
    return discovery.discover(port_for(context), context)


@hookimpl
def hami_hal_admit_request(request: ResourceRequest, annotations: dict[str, str]) -> ResourceRequest | None:
    return slices.admit(request) if request.common_word == VXPU_WORD else None


@hookimpl
def hami_hal_partition_model(device: Device, context: NodeContext) -> PartitionModel | None:
    return slices.partition_model(device)


@hookimpl
def hami_hal_container_edits(
    allocation: ContainerAllocation, devices: list[Device], context: NodeContext
) -> ContainerEdits | None:
    return isolation.container_edits(allocation, devices)


@hookimpl
def hami_hal_pod_annotations(allocation: PodAllocation, devices: list[Device], pod: dict) -> dict[str, str] | None:
    """HAMi's whole-card PatchAnnotations: ``BAIDU_COM_DEVICE_IDX`` = the chosen card indexes, read by the runtime."""
    by_uuid = {d.uuid: d.index for d in devices}
    cards = sorted({by_uuid[s.uuid] for c in allocation.containers for s in c.slices
                    if s.common_word == WHOLE_WORD and s.uuid in by_uuid})
    return {DEVICE_IDX_ANNOTATION: ",".join(map(str, cards))} if cards else None


@hookimpl
def hami_hal_topology(devices: list[Device], context: NodeContext) -> Topology | None:
    return topology.topology(devices)


@hookimpl
def hami_hal_device_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    try:
        rec = parse_query(port_for(context).query(device.index))
    except ToolError:
        return []
    out = [
        MetricSample(name="memory_used", value=rec.used_mib * 2**20, unit="bytes", device_uuid=device.uuid),
        MetricSample(name="memory_total", value=rec.total_mib * 2**20, unit="bytes", device_uuid=device.uuid),
    ]
    if rec.utilization_pct is not None:
        out.append(MetricSample(name="utilization", value=rec.utilization_pct / 100, unit="ratio",
                                device_uuid=device.uuid))
    if rec.temperature_c is not None:
        out.append(MetricSample(name="temperature", value=rec.temperature_c, unit="celsius", device_uuid=device.uuid))
    if rec.power_w is not None:
        out.append(MetricSample(name="power", value=rec.power_w, unit="watts", device_uuid=device.uuid))
    return out


@hookimpl
def hami_hal_device_health(device: Device, context: NodeContext) -> HealthStatus | None:
    try:
        parse_query(port_for(context).query(device.index))
    except ToolError as err:
        return HealthStatus(uuid=device.uuid, healthy=False, reason=str(err))
    return HealthStatus(uuid=device.uuid, healthy=True)
