"""The hookimpls of the MetaX plugin: thin; each hook picks the ``mx-smi`` port for the node context and
delegates to the module that owns the rule."""

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

from . import __version__, admission, annotations, discovery, isolation, partitions, topology
from .config import check_config, sgpu_slots
from .mxsmi import parse_memory, parse_topology
from .port import port_for
from .vendor import vendor_info

PLUGIN_NAME = "metax"
PROFILE_DIR = Path(__file__).parent / "profiles"

__all__ = ["PLUGIN_NAME", "__version__"]


@hookimpl
def hami_hal_vendor() -> VendorInfo:
    return vendor_info()


@hookimpl
def hami_hal_sim_profiles() -> list[Path]:
    return [PROFILE_DIR]


@hookimpl
def hami_hal_check_config(config: dict) -> list[str]:
    return check_config(config)


@hookimpl
def hami_hal_discover(context: NodeContext) -> list[Device]:
    return discovery.discover(port_for(context), context)


@hookimpl
def hami_hal_admit_request(request: ResourceRequest, annotations: dict[str, str]) -> ResourceRequest | None:
    return admission.admit(request, annotations)


def _slots(device: Device, context: NodeContext) -> int | None:
    if context.sim is not None:
        for d in context.sim.devices:
            if d.index == device.index:
                return d.spec.vendor_data.get("sgpu_slots")
    return sgpu_slots(context.config)


@hookimpl
def hami_hal_partition_model(device: Device, context: NodeContext) -> PartitionModel | None:
    return partitions.partition_model(device, _slots(device, context))


@hookimpl
def hami_hal_container_edits(
    allocation: ContainerAllocation, devices: list[Device], context: NodeContext
) -> ContainerEdits | None:
    return isolation.container_edits(allocation, devices)


@hookimpl
def hami_hal_pod_annotations(allocation: PodAllocation, devices: list[Device], pod: dict) -> dict[str, str] | None:
    return annotations.sgpu_annotations(allocation)


@hookimpl
def hami_hal_topology(devices: list[Device], context: NodeContext) -> Topology | None:
    if len(devices) < 2:
        return None
    try:
        pairs = parse_topology(port_for(context).topology())
    except ToolError:
        return None
    return topology.topology(devices, pairs)


@hookimpl
def hami_hal_device_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    try:
        used, total = parse_memory(port_for(context).memory())[device.index]
    except (ToolError, KeyError):
        return []
    return [MetricSample(name="memory_used", value=used * 2**20, unit="bytes", device_uuid=device.uuid),
            MetricSample(name="memory_total", value=total * 2**20, unit="bytes", device_uuid=device.uuid)]


@hookimpl
def hami_hal_device_health(device: Device, context: NodeContext) -> HealthStatus | None:
    try:
        found = device.index in parse_memory(port_for(context).memory())
    except ToolError as err:
        return HealthStatus(uuid=device.uuid, healthy=False, reason=str(err))
    return HealthStatus(uuid=device.uuid, healthy=found, reason=None if found else "mx-smi no longer lists it")
