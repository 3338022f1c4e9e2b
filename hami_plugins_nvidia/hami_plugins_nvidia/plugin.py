"""The hookimpls of the NVIDIA plugin. Thin by design: each hook picks the NVML port for the node
context (real driver or the simulated node's fake) and delegates to the module that owns the logic."""

from __future__ import annotations

import threading
from collections.abc import Callable
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
    ProbeResult,
    Topology,
    VendorInfo,
)

from . import (
    __version__,
    discovery,
    health,
    isolation,
    metrics,
    mig,
    partitions,
    probe,
    proc_census,
    topology,
    usage,
)
from .config import check_config, parse_config
from .mig_catalogue import PROFILE_DIR
from .ports import port_for
from .vendor import vendor_info

PLUGIN_NAME = "nvidia"

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
def hami_hal_partition_model(device: Device, context: NodeContext) -> PartitionModel | None:
    return partitions.partition_model(device, parse_config(context.config))


@hookimpl
def hami_hal_create_partition(device: Device, slice: DeviceSlice, context: NodeContext) -> dict | None:
    return mig.create(port_for(context), device, slice)


@hookimpl
def hami_hal_destroy_partition(device: Device, handle: dict, context: NodeContext) -> bool | None:
    return mig.destroy(port_for(context), device, handle)


@hookimpl
def hami_hal_container_edits(
    allocation: ContainerAllocation, devices: list[Device], context: NodeContext
) -> ContainerEdits | None:
    cfg = parse_config(context.config)
    return isolation.container_edits(allocation, devices, cfg, port_for(context),
                                     census_dir=proc_census.mount_source(
                                         proc_census.census_dir(cfg.proc_census_dir, context.simulated)))


@hookimpl
def hami_hal_node_loops(context: NodeContext) -> list[Callable[[threading.Event], None]]:
    folder = proc_census.census_dir(parse_config(context.config).proc_census_dir, context.simulated)
    if folder is None:
        return []
    census = proc_census.ProcCensus(port_for(context), folder, require_host_pid=not context.simulated)
    return [census.run]


@hookimpl
def hami_hal_topology(devices: list[Device], context: NodeContext) -> Topology | None:
    return topology.topology(port_for(context), devices)


@hookimpl
def hami_hal_device_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    return metrics.device_samples(port_for(context), device)


@hookimpl
def hami_hal_allocation_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    return metrics.process_samples(port_for(context), device)


@hookimpl
def hami_hal_container_usage(state_dir: Path, device_uuids: list[str], context: NodeContext) -> list[MetricSample]:
    return usage.container_samples(state_dir, device_uuids)


@hookimpl
def hami_hal_device_health(device: Device, context: NodeContext) -> HealthStatus | None:
    return health.check(port_for(context), device)


@hookimpl
def hami_hal_conformance_probe(device: Device, behaviour_id: str, context: NodeContext) -> ProbeResult | None:
    if context.simulated:
        return None
    return probe.run_probe(device, behaviour_id)
