"""The hookimpls of the Cambricon plugin: thin; each hook picks the ``cnmon`` port for the node context and
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
    VendorInfo,
)
from hami_hal.vendor_tool import ToolError

from . import __version__, annotations, discovery, isolation, partitions
from .cnmon import parse_info
from .port import port_for
from .vendor import vendor_info

PLUGIN_NAME = "cambricon"
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
def hami_hal_partition_model(device: Device, context: NodeContext) -> PartitionModel | None:
    return partitions.partition_model(device)


@hookimpl
def hami_hal_container_edits(
    allocation: ContainerAllocation, devices: list[Device], context: NodeContext
) -> ContainerEdits | None:
    return isolation.container_edits(allocation, devices)


@hookimpl
def hami_hal_pod_annotations(allocation: PodAllocation, devices: list[Device], pod: dict) -> dict[str, str] | None:
    return annotations.dsmlu_annotations(allocation, devices)


def _card(device: Device, context: NodeContext):
    return next((c for c in parse_info(port_for(context).info()) if c.index == device.index), None)


@hookimpl
def hami_hal_device_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    try:
        card = _card(device, context)
    except ToolError:
        return []
    if card is None:
        return []
    return [MetricSample(name="memory_used", value=card.used_mib * 2**20, unit="bytes", device_uuid=device.uuid),
            MetricSample(name="memory_total", value=card.total_mib * 2**20, unit="bytes", device_uuid=device.uuid)]


@hookimpl
def hami_hal_device_health(device: Device, context: NodeContext) -> HealthStatus | None:
    try:
        card = _card(device, context)
    except ToolError as err:
        return HealthStatus(uuid=device.uuid, healthy=False, reason=str(err))
    if card is None:
        return HealthStatus(uuid=device.uuid, healthy=False, reason="cnmon no longer lists the card")
    if card.ecc_errors:
        return HealthStatus(uuid=device.uuid, healthy=False, reason=f"{card.ecc_errors} DDR ECC errors")
    return HealthStatus(uuid=device.uuid, healthy=True)
