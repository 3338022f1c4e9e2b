"""The hookimpls of the Ascend plugin. Thin: each hook picks the npu-smi port for the node context
(the real tool or the simulated node's fake) and delegates to the module that owns the logic."""

from __future__ import annotations

from pathlib import Path

from hami_hal import hookimpl
from hami_hal.context import NodeContext
from hami_hal.models import (
    ContainerAllocation,
    ContainerEdits,
    Device,
    DeviceSlice,
    HealthStatus,
    MetricSample,
    PartitionModel,
    PodAllocation,
    ResourceRequest,
    Topology,
    VendorInfo,
)

from . import __version__, discovery, health, isolation, metrics, partitions, topology, vnpu
from .admission import admit_request
from .config import check_config, parse_config
from .ports import port_for
from .runtime_info import runtime_annotations
from .vendor import vendor_info

PLUGIN_NAME = "ascend"
PROFILE_DIR = Path(__file__).with_name("profiles")

__all__ = ["PLUGIN_NAME", "__version__"]


@hookimpl
def hami_hal_vendor() -> VendorInfo:
    return vendor_info()


@hookimpl
def hami_hal_node_vendor(context: NodeContext) -> VendorInfo:
    """The chips this node's ``vnpus`` section adds are resource families here (advertised, published)."""
    return vendor_info(parse_config(context.config).chips)


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
def hami_hal_partition_model(device: Device, context: NodeContext) -> PartitionModel | None:
    return partitions.partition_model(device, parse_config(context.config))


@hookimpl
def hami_hal_admit_request(request: ResourceRequest, annotations: dict[str, str]) -> ResourceRequest | None:
    return admit_request(request, annotations)


@hookimpl
def hami_hal_create_partition(device: Device, slice: DeviceSlice, context: NodeContext) -> dict | None:
    return vnpu.create(port_for(context), device, slice)


@hookimpl
def hami_hal_destroy_partition(device: Device, handle: dict, context: NodeContext) -> bool | None:
    return vnpu.destroy(port_for(context), device, handle)


@hookimpl
def hami_hal_container_edits(
    allocation: ContainerAllocation, devices: list[Device], context: NodeContext
) -> ContainerEdits | None:
    return isolation.container_edits(allocation, devices)


@hookimpl
def hami_hal_topology(devices: list[Device], context: NodeContext) -> Topology | None:
    return topology.topology(devices)


@hookimpl
def hami_hal_device_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    return metrics.device_samples(port_for(context), device)


@hookimpl
def hami_hal_allocation_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    return metrics.vnpu_samples(port_for(context), device)


@hookimpl
def hami_hal_device_health(device: Device, context: NodeContext) -> HealthStatus | None:
    return health.check(port_for(context), device)


@hookimpl
def hami_hal_pod_annotations(allocation: PodAllocation, devices: list[Device], pod: dict) -> dict[str, str] | None:
    return runtime_annotations(allocation, devices) or None
