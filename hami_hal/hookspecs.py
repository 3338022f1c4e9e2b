"""The hooks a vendor plugin implements. This module is the contract: read it first.

Every hook is called by the core only with the calling plugin's own devices (the core routes by
``Device.vendor``), so an implementation never has to filter out other vendors. Implementations may
accept fewer arguments than the spec lists (pluggy's opt-in arguments), which is how specs grow without
breaking plugins. A hook a plugin does not implement falls back to the core's default behaviour where
one is documented.

``firstresult`` marks hooks whose answer is a single decision for one device; the rest collect one
answer per plugin. No hook is ``historic``: plugins are loaded before any hook is called, so there is
nothing to replay.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import hookspec

if TYPE_CHECKING:
    from .context import NodeContext
    from .models import (
        ContainerAllocation,
        ContainerEdits,
        Device,
        DeviceSlice,
        HealthStatus,
        MetricSample,
        PartitionModel,
        PodAllocation,
        ProbeResult,
        ResourceRequest,
        Topology,
        VendorInfo,
    )

# ---------------------------------------------------------------------------------------------
# Discovery hooks
# ---------------------------------------------------------------------------------------------


@hookspec
def hami_hal_vendor() -> VendorInfo:
    """Identity of the plugin's vendor: key, resource names with their units, and annotation keys.

    Required. The core's pod parser turns these names into vendor-neutral requests, so a new vendor's
    resources work in ``hami allocate`` and the scheduler without a change to the core.
    """


@hookspec
def hami_hal_sim_profiles() -> list[Path]:
    """YAML files or folders of ``DeviceProfile`` / ``NodeProfile`` documents the plugin ships.

    These describe the plugin's SKUs as data; the simulation backend composes them into nodes.
    """


@hookspec
def hami_hal_discover(context: NodeContext) -> list[Device]:
    """The plugin's devices on this node, with ``partition`` left unset (the core fills it).

    Required. With ``context.backend == "sim"`` answer from ``context.sim`` through the plugin's fake
    SDK. Raise :class:`hami_hal.errors.BackendUnavailable` with a one-line reason when the vendor
    library, driver or tool is absent: the plugin is then skipped, not the whole process.
    """


# ---------------------------------------------------------------------------------------------
# Partitioning hooks
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def hami_hal_partition_model(device: Device, context: NodeContext) -> PartitionModel | None:
    """How ``device`` may be divided: whole, shares, templates or same-size slices.

    Stops at the first non-None result. Without an implementation the device is whole-device only.
    """


@hookspec(firstresult=True)
def hami_hal_admit_request(request: ResourceRequest, annotations: dict[str, str]) -> ResourceRequest | None:
    """Adjust or refuse one parsed request of the plugin's family before the engine sees it.

    HAMi's per-vendor ``MutateAdmission``: round memory up to what the hardware can give (a card's
    whole memory above the largest template), turn a count the hardware cannot serve into one it can
    (910C superPod: 1 → 2), or refuse with :class:`hami_hal.errors.InputError` (one line naming the
    resource field and value). ``annotations`` are the pod's annotations. Return the new request (same
    vendor and family) or None to keep it. Called by the pod parser when given ``Hal.admit_request``
    (``hami allocate``, the scheduler when plugins are installed). Default: the request as parsed.
    Prefer data (``DeviceSetRules``, ``PodAnnotationRule``, templates) where it can express the rule:
    data applies even where no plugin is installed.
    """


@hookspec(firstresult=True)
def hami_hal_create_partition(device: Device, slice: DeviceSlice, context: NodeContext) -> dict | None:
    """Create a hardware partition (a MIG instance) for ``slice``; return its identifiers.

    Only called when the partition model says ``requires_creation``. Raise
    :class:`hami_hal.errors.HalError` with a plain reason when it cannot be created here.
    """


@hookspec(firstresult=True)
def hami_hal_destroy_partition(device: Device, handle: dict, context: NodeContext) -> bool | None:
    """Destroy a partition created by ``hami_hal_create_partition``; True when it is gone."""


# ---------------------------------------------------------------------------------------------
# Isolation hooks
# ---------------------------------------------------------------------------------------------


@hookspec
def hami_hal_container_edits(
    allocation: ContainerAllocation, devices: list[Device], context: NodeContext
) -> ContainerEdits | None:
    """Env, mounts and device nodes that enforce this plugin's slices of ``allocation``.

    ``allocation.slices`` holds only this plugin's slices. The core merges the edits of every vendor
    and can render them as a CDI spec.
    """


@hookspec
def hami_hal_pod_annotations(allocation: PodAllocation, devices: list[Device], pod: dict) -> dict[str, str] | None:
    """Extra pod annotations the plugin writes when a pod is placed (HAMi's ``PatchAnnotations``).

    Called by the scheduler at Filter and by ``hami allocate`` after the engine placed ``pod`` (the pod
    object as given). ``allocation`` holds only this plugin's slices, each with the request attributes
    read from the family's pod annotations; ``devices`` are the plugin's devices on the chosen node.
    Return ``{key: value}``, e.g. Ascend's runtime JSON ``huawei.com/<CW>``, Cambricon's
    ``CAMBRICON_DSMLU_PROFILE`` or Kunlun's ``BAIDU_COM_DEVICE_IDX``. The HAMi allocation keys
    (``hami_compat``) are written by the core and cannot be replaced. Default: no extra annotation.
    """


# ---------------------------------------------------------------------------------------------
# Topology hooks
# ---------------------------------------------------------------------------------------------


@hookspec
def hami_hal_topology(devices: list[Device], context: NodeContext) -> Topology | None:
    """Links between the plugin's devices (type, count) and each device's NUMA node."""


# ---------------------------------------------------------------------------------------------
# Metrics hooks
# ---------------------------------------------------------------------------------------------


@hookspec
def hami_hal_device_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    """Whole-device samples in base units: memory used/total, utilization, power, temperature, clocks."""


@hookspec
def hami_hal_allocation_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    """Per-tenant samples on ``device`` (scope ``allocation`` or ``process``), e.g. memory per process."""


# ---------------------------------------------------------------------------------------------
# Health hooks
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def hami_hal_device_health(device: Device, context: NodeContext) -> HealthStatus | None:
    """Current health of ``device``. An unhealthy device becomes unallocatable."""


# ---------------------------------------------------------------------------------------------
# Conformance hooks
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def hami_hal_conformance_probe(device: Device, behaviour_id: str, context: NodeContext) -> ProbeResult | None:
    """Run a workload on ``device`` that proves ``behaviour_id`` (isolation accuracy, overhead...).

    Return None when the plugin has no probe for it: the suite then records ``unverified``, never
    ``supported``. Probes on simulated devices must say so in their evidence.
    """
