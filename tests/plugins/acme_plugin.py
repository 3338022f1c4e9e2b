"""A complete hami-hal plugin for the fictional vendor "acme", used by hami-hal's own tests.

It implements every hook against :mod:`acme_sdk` (a fake ``libacme`` over the simulated node), so the
core's tests, CLI and docs never depend on a real vendor. Devices: ``Acme X100`` (software shares, like
HAMi-core) and ``Acme T200`` (fixed templates with placements, like MIG). Load it with
``HAMI_HAL_PLUGIN_MODULES=acme_plugin`` (``tests/plugins`` on ``PYTHONPATH``) or
``Hal(modules=[acme_plugin], entrypoints=False)``.
"""

from __future__ import annotations

from pathlib import Path

from acme_sdk import FakeAcmeSdk, open_real_sdk

from hami_hal import hookimpl
from hami_hal.context import NodeContext
from hami_hal.models import (
    AnnotationKeys,
    AttributeMatch,
    ContainerAllocation,
    ContainerEdits,
    Device,
    DeviceNode,
    DeviceSetRules,
    DeviceSlice,
    HealthStatus,
    Level,
    Link,
    LinkTier,
    Measurement,
    MetricSample,
    PartitionKind,
    PartitionModel,
    PartitionTemplate,
    PodAllocation,
    PodAnnotationRule,
    ProbeResult,
    Provenance,
    ResourceFamily,
    ResourceRequest,
    SelectorAnnotations,
    Topology,
    VendorInfo,
)

PLUGIN_NAME = "acme"
__version__ = "0.0.1+test"
VENDOR = "acme"
#: The acme firmware cannot map a slice smaller than this (the admission example: requests are raised to it).
MIN_SLICE_MIB = 256
PROFILES = Path(__file__).parent / "acme_profiles"

_SDKS: dict[int, tuple[object, FakeAcmeSdk]] = {}
#: The plugin names its own link kinds; the core sees a tier and a pair score.
LINK_TIER = {"acme-link": LinkTier.FABRIC, "single-switch": LinkTier.BOARD, "cross-cpu": LinkTier.SOCKETS}
LINK_SCORE = {"single-switch": 50, "cross-cpu": 10}


def sdk_for(context: NodeContext) -> FakeAcmeSdk:
    """The SDK for this context: the fake one over ``context.sim``, else the (absent) real library."""
    if not context.simulated or context.sim is None:
        return open_real_sdk()
    entry = _SDKS.get(id(context.sim))
    if entry is None or entry[0] is not context.sim:
        entry = (context.sim, FakeAcmeSdk(context.sim))
        _SDKS[id(context.sim)] = entry
    return entry[1]


@hookimpl
def hami_hal_vendor() -> VendorInfo:
    return VendorInfo(
        name=VENDOR,
        display_name="Acme (test-only vendor)",
        resources=[
            ResourceFamily(
                common_word="ACME", count="acme.example/xpu", memory="acme.example/xpu-mem",
                memory_percent="acme.example/xpu-mem-percentage", cores="acme.example/xpu-cores",
                priority="acme.example/xpu-priority",
                pod_annotations=[
                    # Like MetaX's sgpu-qos-policy: tenants of one device share one policy.
                    PodAnnotationRule(key="acme.example/qos-policy", attribute="qos", match=AttributeMatch.TENANTS,
                                      allowed=["best-effort", "fixed-share"], default="best-effort"),
                    # Like Ascend's vnpu-mode: the device must run in the asked split mode.
                    PodAnnotationRule(key="acme.example/split-mode", attribute="split_mode",
                                      match=AttributeMatch.DEVICE, allowed=["soft", "hard"], reason="ModeNotFit"),
                ],
            ),
            ResourceFamily(
                common_word="ACME-CARD", count="acme.example/card", whole_device=True,
                # Its own HAMi keys, as MetaX GPU vs sGPU: a pod with both families keeps both allocations.
                annotations=AnnotationKeys(to_allocate="hami.io/acme-card-devices-to-allocate",
                                           allocated="hami.io/acme-card-devices-allocated"),
                # Like Ascend's HCCS rings: up to 2 cards from one pair of linked cards, 4 = both pairs.
                device_sets=DeviceSetRules(max_devices=4, allowed_counts=[1, 2, 4], groups=[[0, 1], [2, 3]]),
            ),
        ],
        selectors=SelectorAnnotations(
            use_type="acme.example/use-xputype", nouse_type="acme.example/nouse-xputype",
            use_uuid="acme.example/use-xpuuuid", nouse_uuid="acme.example/nouse-xpuuuid",
            mode="acme.example/xpu-mode", numa_bind="acme.example/numa-bind",
        ),
        annotations=AnnotationKeys(
            node_register="hami.io/node-acme-register", node_handshake="hami.io/node-handshake-acme",
            to_allocate="hami.io/acme-devices-to-allocate", allocated="hami.io/acme-devices-allocated",
        ),
        domains=["acme.example/"],
    )


@hookimpl
def hami_hal_sim_profiles() -> list[Path]:
    return [PROFILES]


@hookimpl
def hami_hal_discover(context: NodeContext) -> list[Device]:
    sdk = sdk_for(context)
    out = []
    for i in range(sdk.device_count()):
        info = sdk.device(i)
        out.append(Device(
            vendor=VENDOR, index=info.index, uuid=info.uuid, model=info.name, hami_type=f"ACME-{info.name}",
            memory_mib=info.memory_mib, compute_units=info.cores, numa_node=info.numa, mode=info.mode,
            attributes={"pci_bus_id": info.pci_bus_id, "templates": [t["name"] for t in info.templates],
                        "split_mode": "hard" if info.templates else "soft"},
            provenance=Provenance(source="real", device_model=info.name, driver_version=sdk.driver_version),
        ))
    return out


@hookimpl
def hami_hal_partition_model(device: Device, context: NodeContext) -> PartitionModel | None:
    info = sdk_for(context).device(device.index)
    if info.templates:
        return PartitionModel(
            kind=PartitionKind.TEMPLATES, memory_mib=info.memory_mib, compute_units=info.cores,
            max_slots=max(int(t.get("max_instances", 1)) for t in info.templates),
            templates=[PartitionTemplate.model_validate(t) for t in info.templates], requires_creation=True,
        )
    split = int(context.config.get("device_split_count", 4))
    return PartitionModel(kind=PartitionKind.SHARES, memory_mib=info.memory_mib, max_slots=split)


@hookimpl
def hami_hal_admit_request(request: ResourceRequest, annotations: dict[str, str]) -> ResourceRequest | None:
    """Like HAMi's MutateAdmission: a slice below the firmware minimum is raised to it, not refused."""
    if request.memory_mib is not None and 0 < request.memory_mib < MIN_SLICE_MIB:
        return request.model_copy(update={"memory_mib": MIN_SLICE_MIB})
    return None


@hookimpl
def hami_hal_create_partition(device: Device, slice: DeviceSlice, context: NodeContext) -> dict | None:
    if slice.template is None:
        return None
    start = slice.placement.start if slice.placement else 0
    instance = sdk_for(context).create_instance(device.index, slice.template, start)
    return {"instance_id": instance, "template": slice.template, "start": start}


@hookimpl
def hami_hal_destroy_partition(device: Device, handle: dict, context: NodeContext) -> bool | None:
    return sdk_for(context).destroy_instance(device.index, int(handle["instance_id"]))


@hookimpl
def hami_hal_container_edits(allocation: ContainerAllocation, devices: list[Device],
                             context: NodeContext) -> ContainerEdits | None:
    if not allocation.slices:
        return None
    env = {"ACME_VISIBLE_DEVICES": ",".join(s.uuid for s in allocation.slices)}
    for i, s in enumerate(allocation.slices):
        env[f"ACME_MEMORY_LIMIT_{i}"] = f"{s.memory_mib}m"
        if s.template:
            env[f"ACME_TEMPLATE_{i}"] = s.template
    env["ACME_CORE_LIMIT"] = str(allocation.slices[0].compute_percent)
    nodes = [DeviceNode(path=f"/dev/acme{s.device_index}") for s in allocation.slices]
    return ContainerEdits(env=env, device_nodes=nodes)


@hookimpl
def hami_hal_pod_annotations(allocation: PodAllocation, devices: list[Device], pod: dict) -> dict[str, str] | None:
    """The acme runtime reads its device selection and QoS from one pod annotation (HAMi PatchAnnotations)."""
    import json

    per_ctr = [[{"uuid": s.uuid, "index": s.device_index, "qos": s.attributes.get("qos", "")} for s in c.slices]
               for c in sorted(allocation.containers, key=lambda c: c.index)]
    if not any(per_ctr):
        return None
    return {"acme.example/assigned": json.dumps(per_ctr, separators=(",", ":"))}


@hookimpl
def hami_hal_topology(devices: list[Device], context: NodeContext) -> Topology | None:
    by_index = {d.index: d for d in devices}
    links = [
        Link(a=by_index[a].uuid, b=by_index[b].uuid, kind=kind, tier=LINK_TIER.get(kind, LinkTier.UNKNOWN),
             count=count, score=100 * count if kind == "acme-link" else LINK_SCORE.get(kind, 0))
        for a, b, kind, count in sdk_for(context).links() if a in by_index and b in by_index
    ]
    return Topology(links=links, numa={d.uuid: d.numa_node for d in devices})


@hookimpl
def hami_hal_device_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    sdk = sdk_for(context)
    info = sdk.device(device.index)
    used = sdk.memory_used_mib(device.index)
    mib = 1024 * 1024
    return [
        MetricSample(name="memory_used", value=used * mib, unit="bytes", device_uuid=device.uuid),
        MetricSample(name="memory_total", value=info.memory_mib * mib, unit="bytes", device_uuid=device.uuid),
        MetricSample(name="utilization", value=0.0, unit="ratio", device_uuid=device.uuid),
        MetricSample(name="power_usage", value=info.tdp_watts * 0.2, unit="watts", device_uuid=device.uuid),
        MetricSample(name="temperature", value=info.idle_temperature_c, unit="celsius", device_uuid=device.uuid),
    ]


@hookimpl
def hami_hal_allocation_metrics(device: Device, context: NodeContext) -> list[MetricSample]:
    sdk = sdk_for(context)
    by_name = {t["name"]: t for t in sdk.device(device.index).templates}
    return [
        MetricSample(name="memory_limit", value=by_name[tmpl]["memory_mib"] * 1024 * 1024, unit="bytes",
                     device_uuid=device.uuid, scope="allocation",
                     labels={"partition_id": str(inst), "template": tmpl})
        for inst, tmpl, _ in sdk.instances.get(device.index, [])
    ]


_FAULTS = {"xid-79": "XID 79: device has fallen off the bus", "ecc-dbe": "uncorrectable ECC error"}


@hookimpl
def hami_hal_device_health(device: Device, context: NodeContext) -> HealthStatus | None:
    fault = sdk_for(context).device(device.index).fault
    if fault is None:
        return HealthStatus(uuid=device.uuid, healthy=True)
    return HealthStatus(uuid=device.uuid, healthy=False, reason=_FAULTS.get(fault, fault), events=[fault])


@hookimpl
def hami_hal_conformance_probe(device: Device, behaviour_id: str, context: NodeContext) -> ProbeResult | None:
    """Answers a catalogue behaviour with the figure the catalogue judges (``reported_total_error``)."""
    if behaviour_id != "isolation/memory-reported-total":
        return None
    info = sdk_for(context).device(device.index)
    limit = 1024  # the slice the probe gives a tenant
    seen = limit  # fake libacme reports the slice as the tenant's total
    return ProbeResult(
        behaviour_id=behaviour_id, level=Level.SUPPORTED,
        evidence=[f"simulated: fake libacme reports {seen} MiB to a tenant of a {limit} MiB slice on {info.name}"],
        measurements=[Measurement(name="memory_limit", value=limit, unit="MiB"),
                      Measurement(name="reported_total_error", value=abs(seen - limit), unit="MiB")],
    )
