"""The hooks a vendor plugin implements. This module is the contract: read it first.

Every hook is called by the core only with the calling plugin's own devices (the core routes by
``Device.vendor``), so an implementation never has to filter out other vendors. Implementations may
accept fewer arguments than the spec lists (pluggy's opt-in arguments), which is how specs grow without
breaking plugins. A hook a plugin does not implement falls back to the core's default behaviour where
one is documented.

``firstresult`` marks hooks whose answer is a single decision: the first non-None answer wins; the rest
collect one answer per plugin. No hook is ``historic``: plugins are loaded before any hook is called.

Docstring layout (``docs/hooks.md`` is generated from it by ``python -m hami_hal.hookdoc``): a summary
paragraph, then ``When:``, ``:param <name>:`` lines, ``Return:`` and ``Default:`` paragraphs. Vendor
rules the scheduler must also apply are data (``DeviceSetRules``, ``PodAnnotationRule``, partition
models), never a hook: the scheduler does not load plugins.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import hookspec

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

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
    """Identity of the plugin's vendor: key, resource families with their units and rules, annotation keys.

    When: while the plugin is registered, before any other hook.

    Return: a ``VendorInfo``: the vendor key (lower case, equal to ``Device.vendor``), the resource
    families (HAMi CommonWord; count, memory, percentage, cores and priority resource names; memory unit;
    defaults; per-family HAMi annotation keys; ``device_sets`` rules; ``pod_annotations`` rules), the
    selector annotation keys (``use-*``, ``nouse-*``, mode, numa-bind), the HAMi annotation keys, and
    the resource-name ``domains`` under which an unknown name is a user error. The pod parser,
    ``hami allocate`` and the scheduler learn everything from this answer; nothing in the core changes.

    Default: none; the hook is required.
    """


@hookspec(firstresult=True)
def hami_hal_node_vendor(context: NodeContext) -> VendorInfo | None:
    """The vendor's identity on this node, where the node's settings add resource families to it.

    A family the plugin's settings describe (a chip a HAMi config section adds) is a kubelet resource on this
    node only. The node agent advertises the families of this answer and publishes them in the node's
    inventory annotation, from where the scheduler learns them (a family it already knows is never replaced).

    When: ``Hal.discover()``, once per plugin that found devices, with the context discovery used.

    :param context: the node, as given to ``hami_hal_discover``.

    Return: the ``hami_hal_vendor`` answer with more resource families, or None. The core checks it: the
    same vendor key, every family of ``hami_hal_vendor`` unchanged, and each added family's resource names
    under the vendor's ``domains`` and its names and annotation keys used by no other family.

    Default: the ``hami_hal_vendor`` answer.
    """


@hookspec
def hami_hal_sim_profiles() -> list[Path]:
    """YAML files or folders of ``DeviceProfile`` / ``NodeProfile`` documents the plugin ships.

    When: whenever the simulation catalog is built (``hami profiles``, ``--backend sim``, the auto
    fallback).

    Return: a list of paths describing the plugin's SKUs as data. Mark one node profile
    ``default: true`` so a fresh machine has something to show. Users add their own through
    ``HAMI_HAL_PROFILE_PATH``.

    Default: the plugin has no simulated hardware.
    """


@hookspec
def hami_hal_check_config(config: dict) -> list[str] | None:
    """Check the node settings the plugin's hooks will read from ``context.config``, before anything starts.

    The node agent's config file (``hami node --device-config``) holds one section per vendor, as HAMi's
    device-config.yaml does; the core hands a plugin only its own section and never reads it. This hook is
    where the plugin checks that section (with the same parser its other hooks use), so a bad value stops
    the agent at once instead of failing a later hook.

    When: ``hami node``, once per installed plugin, after the core has checked HAMi's capacity knobs and
    before discovery.

    :param config: what every ``context.config`` of this plugin will hold: HAMi's knobs at the top
        (``deviceSplitCount``, ``deviceMemoryScaling``, ``deviceCoreScaling``, resolved for this vendor and
        already checked by the core) and, under the plugin's vendor key, its section (this node's
        ``nodeconfig`` entry merged over the file's, the knobs taken out).

    Return: one-line notes on settings the plugin ignores (e.g. keys of its section it does not know; the
    agent logs them), or an empty list. A bad value raises :class:`hami_hal.errors.InputError` naming the
    key and the value: the agent prints it as one line, prefixed with the file and section where the value
    was written, and exits 2 with nothing started.

    Default: the section is not checked up front; the plugin's hooks get it as written.
    """


@hookspec
def hami_hal_discover(context: NodeContext) -> list[Device]:
    """The plugin's devices on this node, with ``partition`` left unset (the core fills it).

    When: ``Hal.discover()``: once with a ``real`` context and, when nothing real was found and the
    backend is ``auto`` or ``sim``, once with a ``sim`` context.

    :param context: the node; with ``context.backend == "sim"``, ``context.sim`` holds the plugin's part
        of the simulated node: answer through the plugin's fake SDK built from it.

    Return: the devices. Raise :class:`hami_hal.errors.BackendUnavailable` with a one-line reason when
    the vendor library, driver or tool is absent: the plugin is then listed as skipped with that line,
    and the process goes on. Return an empty list when the library finds no device. In simulation the
    core overwrites each device's provenance with ``simulated`` and the profile name.

    Default: none; the hook is required.
    """


# ---------------------------------------------------------------------------------------------
# Partitioning hooks
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def hami_hal_partition_model(device: Device, context: NodeContext) -> PartitionModel | None:
    """How ``device`` may be divided: whole, shares, templates or same-size slices.

    When: after discovery, once per device.

    :param device: one of the plugin's devices.
    :param context: the context the device was discovered with; per-node settings such as
        ``device_split_count`` are in ``context.config``.

    Return: a ``PartitionModel``: ``whole``, ``shares`` (memory/compute shares, ``max_slots``
    tenants), ``templates`` (fixed shapes, the smallest one holding a request is used; placements for
    hardware instances) or ``slices`` (one slice size per card); plus memory granularity, compute
    units, a node budget the templates draw from, configured oversubscription, and whether partitions
    must be created on the hardware (``requires_creation``).

    Default: whole device only.
    """


@hookspec(firstresult=True)
def hami_hal_admit_request(request: ResourceRequest, annotations: dict[str, str]) -> ResourceRequest | None:
    """Adjust or refuse one parsed request of the plugin's family before the engine sees it.

    HAMi's per-vendor ``MutateAdmission``: turn a count the hardware cannot serve into one it can
    (one die of a two-die package raised to two), or refuse. It runs before a node is chosen, so a rule
    that depends on a node's partition (its templates: the template a request rounds to, which counts a
    template serves) belongs in the partition model (``PartitionTemplate.holds_up_to_mib``,
    ``PartitionModel.template_max_count``, ``whole_count_multiple``), which the engine applies on each node.

    When: by the pod parser, for each request of the plugin's families, when it is given
    ``Hal.admit_request`` (``hami allocate`` always; the scheduler and the admission webhook when plugins are
    installed). The webhook writes a count this raises (at most doubled) into the container's limit and request,
    so the kubelet asks for the devices the scheduler assigns; a refusal refuses the pod at creation. At Filter
    the scheduler places the counts the pod carries: a pod whose count this still changes there skipped the
    webhook, and every node refuses it with one short line (the family's ``register_partition.whole_count_multiple``
    says why, where it explains the change); a refusal there refuses every node with its first line. Both depend
    on the pod alone: kube-scheduler is told no node, and no preemption, can help (FailedAndUnresolvableNodes).

    :param request: the request as parsed from the pod's resources and annotations.
    :param annotations: the pod's annotations.

    Return: the adjusted ``ResourceRequest`` (same vendor and family), or None to keep it. Raise
    :class:`hami_hal.errors.InputError` to refuse with one line naming the resource field and value.
    Prefer data (``DeviceSetRules``, ``PodAnnotationRule``, templates) where it can express the rule:
    data applies even where no plugin is installed.

    Default: the request as parsed.
    """


@hookspec(firstresult=True)
def hami_hal_create_partition(device: Device, slice: DeviceSlice, context: NodeContext) -> dict | None:
    """Create a hardware partition for ``slice`` on ``device``.

    When: only for devices whose partition model says ``requires_creation``, when a slice is handed
    out on the node.

    :param device: the device the slice is on.
    :param slice: the slice the engine allocated (template and placement set).
    :param context: the context the device was discovered with.

    Return: a dict of identifiers of the created partition (instance IDs, UUIDs), or None when the
    slice needs no hardware partition. Raise :class:`hami_hal.errors.HalError` with a plain reason
    when it cannot be created here.

    Default: nothing to create.
    """


@hookspec(firstresult=True)
def hami_hal_destroy_partition(device: Device, handle: dict, context: NodeContext) -> bool | None:
    """Destroy a partition created by ``hami_hal_create_partition``.

    When: when a slice created by ``hami_hal_create_partition`` is released.

    :param device: the device the partition is on.
    :param handle: the dict ``hami_hal_create_partition`` returned.
    :param context: the context the device was discovered with.

    Return: True when the partition is gone, False when it did not exist.

    Default: nothing to destroy.
    """


# ---------------------------------------------------------------------------------------------
# Isolation hooks
# ---------------------------------------------------------------------------------------------


@hookspec
def hami_hal_container_edits(
    allocation: ContainerAllocation, devices: list[Device], context: NodeContext
) -> ContainerEdits | None:
    """Env, mounts and device nodes that enforce this plugin's slices of one container's allocation.

    When: after a container's allocation is decided (``hami allocate`` shows the result; the node
    agent applies it).

    :param allocation: the container's allocation; ``allocation.slices`` holds only this plugin's.
    :param devices: the plugin's devices on the node.
    :param context: the context the devices were discovered with.

    Return: ``ContainerEdits`` (env, mounts, device nodes), or None. The core merges the edits of
    every vendor (a conflicting env value is an error) and can render them as a CDI spec
    (``ContainerEdits.to_cdi``).

    Default: no edits.
    """


@hookspec
def hami_hal_pod_annotations(allocation: PodAllocation, devices: list[Device], pod: dict) -> dict[str, str] | None:
    """Extra pod annotations the plugin writes when a pod is placed (HAMi's ``PatchAnnotations``).

    When: after the engine placed a pod, at the scheduler's Filter and in ``hami allocate``.

    :param allocation: the pod's allocation with only this plugin's slices; each slice carries the
        request attributes read from the family's ``pod_annotations`` rules in ``slice.attributes``.
    :param devices: the plugin's devices on the chosen node.
    :param pod: the pod object as given.

    Return: ``{key: value}``, e.g. a runtime JSON of the chosen devices, a partition profile string or
    a device index list. The HAMi allocation keys (``hami_compat``) are written by the core and are
    never replaced by a plugin's value.

    Default: no extra annotation.
    """


# ---------------------------------------------------------------------------------------------
# Topology hooks
# ---------------------------------------------------------------------------------------------


@hookspec
def hami_hal_topology(devices: list[Device], context: NodeContext) -> Topology | None:
    """Links between the plugin's devices and each device's NUMA node.

    When: at the end of discovery, with all of the plugin's devices.

    :param devices: the plugin's devices on the node.
    :param context: the context they were discovered with.

    Return: a ``Topology``: one ``Link`` per linked pair, with the plugin's name for the link
    (``kind``), its ``tier`` (fabric, board, switches, host, sockets), a lane ``count`` and the pair
    ``score`` the engine's ``topology-aware`` policy maximises; and each device's NUMA node, used by
    ``numa-bind``.

    Default: no links; NUMA nodes from the devices.
    """


# ---------------------------------------------------------------------------------------------
# Metrics hooks
# ---------------------------------------------------------------------------------------------


@hookspec
def hami_hal_device_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    """Whole-device samples: memory used/total, utilization, power, temperature, clocks.

    When: at every Prometheus scrape (``hami metrics serve``, ``hami metrics dump``), once per device.

    :param device: one of the plugin's devices.
    :param context: the context the device was discovered with.

    Return: ``MetricSample``s in base units (bytes, ratio 0..1, watts, celsius, hertz, seconds, joules,
    count) with snake_case names without the unit (``memory_used``). The core names them
    ``hami_hal_device_<name>_<unit>`` with labels ``vendor, model, device_uuid, device_index``.

    Default: no samples.
    """


@hookspec
def hami_hal_allocation_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    """Per-tenant samples on ``device`` (scope ``allocation`` or ``process``), e.g. memory per process.

    When: at every scrape, once per device.

    :param device: one of the plugin's devices.
    :param context: the context the device was discovered with.

    Return: samples with identifying labels (``partition_id``, ``pod``, ``container``...), exposed as
    ``hami_hal_allocation_<name>_<unit>``.

    Default: no samples.
    """


@hookspec
def hami_hal_container_usage(state_dir: Path, device_uuids: list[str], context: NodeContext) -> list[MetricSample]:
    """Usage one container's isolation layer recorded in its shared-state folder.

    The node agent creates a folder per allocated container (HAMi's layout ``<root>/<podUID>_<container>``)
    and hands it to ``hami_hal_container_edits`` as ``ContainerAllocation.state_dir``; a plugin whose
    isolation keeps per-container state (an interposer's region file) mounts it there.

    When: at every scrape of the node agent's exporter (``hami node``), once per allocated container of
    the plugin's vendor whose folder exists.

    :param state_dir: the container's folder on the host (the container can write into it: treat every
        file as untrusted, skip symlinks, foreign and corrupt files).
    :param device_uuids: the container's devices of this plugin, in slice order, to map the
        isolation layer's per-container device index to a UUID.
    :param context: the context the plugin's devices were discovered with.

    Return: samples with scope ``allocation``, the device's UUID and a ``vdevice_index`` label, in base
    units: ``memory_used`` / ``memory_limit`` (bytes), ``core_limit`` (ratio), ``busy`` (seconds, a
    running total), ``last_kernel_age`` (seconds since the last launch). The agent serves them as HAMi's
    per-container series (``hami_vgpu_memory_used_bytes``...).

    Default: no samples (the container's series are absent).
    """


@hookspec
def hami_hal_node_loops(context: NodeContext) -> list[Callable[[threading.Event], None]]:
    """Background work the plugin needs on a node for as long as the node agent runs.

    For node-wide duties the isolation layer depends on that no container can do for itself (e.g.
    publishing every device's process count from the host's PID namespace, which an isolation layer in a
    pod cannot see).

    When: once, when the node agent (``hami node``) starts, after discovery; not by the CLI's one-shot
    commands.

    :param context: the context the plugin's devices were discovered with (its ``config`` holds the
        plugin's node settings).

    Return: functions, each run in a thread of its own with the agent's stop event as argument; each
    must return soon after the event is set (the agent waits up to 5 s per thread when it stops) and log
    its own failures: an exception ends only that thread (one line).

    Default: no background work.
    """


# ---------------------------------------------------------------------------------------------
# Health hooks
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def hami_hal_device_health(device: Device, context: NodeContext) -> HealthStatus | None:
    """Current health of ``device``.

    When: after discovery for each device, and by node agents when they refresh health.

    :param device: one of the plugin's devices.
    :param context: the context the device was discovered with.

    Return: a ``HealthStatus``; an unhealthy device is marked ``healthy: false`` with the reason and
    becomes unallocatable (``CardNotHealth``).

    Default: healthy.
    """


# ---------------------------------------------------------------------------------------------
# Conformance hooks
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def hami_hal_conformance_probe(device: Device, behaviour_id: str, context: NodeContext) -> ProbeResult | None:
    """Run a workload on ``device`` that proves ``behaviour_id`` (isolation accuracy, overhead...).

    When: by the conformance suite, for each behaviour of its catalogue on each device model.

    :param device: the device to run on.
    :param behaviour_id: the catalogue ID, e.g. ``isolation/memory-hard``.
    :param context: the context the device was discovered with.

    Return: a ``ProbeResult`` with the level, evidence and raw measurements named as the catalogue's
    ``targets`` (the suite judges them against the catalogue's targets, not the plugin's), or None
    when the plugin has no probe for it: the suite then records ``unverified``, never ``supported``.
    A probe on a simulated device must say so in its evidence.

    Default: no probe.
    """
