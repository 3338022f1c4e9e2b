"""Discovery: npu-smi answers → :class:`hami_hal.models.Device`, one per NPU chip (die).

As in HAMi's device plugin, memory and AI-core figures for partitioning come from the chip catalogue
(HAMi's config), not the device; the HBM total npu-smi prints is the device's ``memory_mib``.

Device attributes: ``chip_name`` (npu-smi's name), ``common_word``, ``npu_id``, ``chip_id``,
``logic_id``, ``phy_id``, ``bus_id``, ``health_text`` (npu-smi's Health column), ``hccs_group``
(HAMi NetworkID; None on 310P), ``die_pair`` (910C: the card whose two dies form a pair), ``super_pod``,
``templates`` (template names the chip reports through ``npu-smi info -t template-info``),
``soft_mode`` (hami-vnpu-core on this node), ``runtime_class``, ``uuid_source``, ``unknown``, and
``custominfo`` (``{"NetworkID": <hccs group>}``, HAMi's register field for 910 chips).
"""

from __future__ import annotations

import platform

from hami_hal.context import NodeContext
from hami_hal.errors import BackendUnavailable
from hami_hal.models import Device, Provenance
from hami_hal.vendor_tool import ToolError

from .chips import find_chip
from .config import AscendConfig, parse_config
from .npu_smi import Chip, NpuSmi
from .topology import die_pair, network_id

VENDOR = "ascend"
ARM_MACHINES = ("aarch64", "arm64")
#: HAMi device ``mode`` values: soft slicing (hami-vnpu-core) and template (hard) slicing.
MODE_SOFT, MODE_TEMPLATE = "hami-core", "vnpu-template"


def discover(port: NpuSmi, context: NodeContext) -> list[Device]:
    """Every NPU chip; BackendUnavailable with one line when npu-smi is absent or unreadable."""
    cfg = parse_config(context.config)
    try:
        chips, version = port.chips()
    except ToolError as err:
        raise BackendUnavailable(str(err)) from None
    prov = Provenance(source="real" if port.source == "real" else "simulated", driver_version=version,
                      host=context.node_name, profile=context.sim.name if context.sim else None)
    soft = _soft_mode(port, chips, cfg)
    note = None
    if soft and port.source == "real" and platform.machine().lower() not in ARM_MACHINES:
        # hami-vnpu-core's interceptor ships for ARM hosts only: soft slicing would not be enforced here
        soft, note = False, f"hami-vnpu-core supports ARM hosts only (this host is {platform.machine()})"
    devices = [_device(port, c, cfg, soft, prov, context) for c in chips]
    if note:
        for d in devices:
            d.attributes["unknown"]["soft_mode"] = note
    return devices


def _soft_mode(port: NpuSmi, chips: list[Chip], cfg: AscendConfig) -> bool:
    if cfg.hami_vnpu_core is not None:
        return cfg.hami_vnpu_core
    try:
        return bool(chips) and all(port.device_share(c.npu_id, c.chip_id) for c in chips)
    except ToolError:
        # older npu-smi without device-share: HAMi's cluster default (vnpus.hamiVnpuCore), else template mode
        return bool(cfg.default_vnpu_core)


def _device(port: NpuSmi, c: Chip, cfg: AscendConfig, soft: bool, prov: Provenance, ctx: NodeContext) -> Device:
    row, unknown = c.row, {}
    chip = find_chip(cfg.chips, row.name)
    die = port.runner.die_id(row.npu_id, row.chip_id)
    uuid = die or f"{ctx.node_name}-{c.logic_id}"
    if die is None:
        unknown["uuid"] = "npu-smi prints no die id; UUID is <node>-<logic id> (as ascend-dra-driver)"
    templates: list[str] = []
    if chip is not None and not soft:
        try:
            templates = [t.name for t in port.templates(row.npu_id, row.chip_id)]
        except ToolError as err:
            unknown["templates"] = str(err)
    numa = port.runner.numa_node(row.bus_id)
    if numa is None:
        unknown["numa_node"] = "not reported"
    healthy = row.health == "OK"
    attrs = {
        "chip_name": row.name, "common_word": chip.commonWord if chip else None,
        "npu_id": row.npu_id, "chip_id": row.chip_id, "logic_id": c.logic_id, "phy_id": c.logic_id,
        "bus_id": row.bus_id, "health_text": row.health,
        "hccs_group": network_id(row.name, c.logic_id, chip.superPod) if chip else None,
        "die_pair": die_pair(chip.superPod, row.npu_id) if chip else None,
        "super_pod": bool(chip and chip.superPod), "templates": templates, "soft_mode": soft,
        "runtime_class": cfg.runtime_class or (chip.runtimeClassName if chip else None),
        "uuid_source": "die-id" if die else "node-logic-id", "unknown": unknown,
        # matched by the huawei.com/vnpu-mode pod annotation (HAMi: ModeNotFit on a template node)
        "vnpu_mode": MODE_SOFT if soft else MODE_TEMPLATE,
    }
    if attrs["hccs_group"] is not None:
        attrs["custominfo"] = {"NetworkID": attrs["hccs_group"]}  # HAMi's register field for 910 chips
    if chip is None:
        unknown["chip"] = (f"chip {row.name!r} is not in HAMi's Ascend catalogue (built-in or the vnpus section): "
                           "whole-device only")
    return Device(
        vendor=VENDOR, index=c.logic_id, uuid=uuid, model=row.name,
        hami_type=chip.commonWord if chip else f"Ascend{row.name}",
        # one family per chip: the engine never gives a huawei.com/Ascend310P request a 910B3
        family=chip.commonWord if chip else f"Ascend{row.name}",
        memory_mib=row.hbm_total_mib or 0, compute_units=chip.aiCore if chip else None, numa_node=numa,
        healthy=healthy, health_reason=None if healthy else f"npu-smi reports Health {row.health}",
        mode=MODE_SOFT if soft else MODE_TEMPLATE, attributes=attrs,
        provenance=prov.model_copy(update={"device_model": row.name}),
    )
