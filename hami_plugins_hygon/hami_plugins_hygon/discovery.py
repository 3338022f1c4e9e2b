"""Discovery: hy-smi answers → :class:`hami_hal.models.Device`, one per DCU.

UUID ``HCU-<serial>`` and type ``HCU-<model>`` as Hygon's k8s-hcu-device-plugin registers them (HAMi
renamed DCU to HCU, #2969; the legacy ``DCU-<serial>`` id is kept in ``attributes["legacy_id"]``).
Compute units come from the model table (dcu-dcgm). Attributes: ``series``, ``device_id``, ``serial``,
``bus_id``, ``legacy_id``, ``vhcu_capable``, ``unknown``.
"""

from __future__ import annotations

from hami_hal.context import NodeContext
from hami_hal.errors import BackendUnavailable
from hami_hal.models import Device, Provenance
from hami_hal.vendor_tool import ToolError

from .hy_smi import DcuInfo, HySmi
from .models import COMPUTE_UNITS, model_name

VENDOR = "hygon"
MIB = 1 << 20


def discover(port: HySmi, context: NodeContext) -> list[Device]:
    try:
        infos = port.devices()
        table = port.table()
    except ToolError as err:
        raise BackendUnavailable(str(err)) from None
    prov = Provenance(source="real" if port.source == "real" else "simulated", host=context.node_name,
                      profile=context.sim.name if context.sim else None)
    return [_device(i, i.index in table, prov) for i in infos]


def _device(info: DcuInfo, answering: bool, prov: Provenance) -> Device:
    unknown: dict[str, str] = {}
    model = model_name(info.series, info.device_id)
    if model is None:
        model = "unknown"
        unknown["model"] = f"no Card Series and unknown device id {info.device_id!r}"
    cus = COMPUTE_UNITS.get(model)
    if cus is None:
        unknown["compute_units"] = f"model {model!r} is not in the compute-unit table: no vDCU shares"
    serial = info.serial or f"IDX{info.index}"
    if not info.serial:
        unknown["serial"] = "not reported; id uses the index"
    return Device(
        vendor=VENDOR, index=info.index, uuid=f"HCU-{serial}", model=model, hami_type=f"HCU-{model}",
        memory_mib=info.memory_total_bytes // MIB, compute_units=cus, numa_node=info.numa_node,
        healthy=answering, health_reason=None if answering else "DCU missing from the hy-smi summary table",
        # HAMi registers DCUs with mode "hami-core" (its mock-device-plugin example line)
        mode="hami-core",
        attributes={"series": info.series, "device_id": info.device_id, "serial": info.serial,
                    "bus_id": info.bus_id, "legacy_id": f"DCU-{serial}", "vhcu_capable": cus is not None,
                    "unknown": unknown},
        provenance=prov.model_copy(update={"device_model": model}),
    )
