"""A fake ``npu-smi`` built from a simulated node: it prints what the real tool prints (the formats in
:mod:`.npu_smi_parse`) and keeps vNPU state, so the plugin runs the same parsing and control code on
simulated chips as on real ones.

Each simulated device is one chip; ``vendor_data.chips_per_npu`` (2 on a 910C) groups chips into NPUs
(cards): NPU id = index // chips_per_npu, chip id = index % chips_per_npu, logic id = index.

The vNPU templates a chip's firmware offers are the built-in table's for its model, or the profile's own
``vendor_data.templates`` (HAMi's template keys: name, memory MiB, aiCore, aiCPU) for a chip the table lacks;
such a chip gives vNPUs its ``compute_units`` AI cores and ``memory_mib``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from hami_hal.errors import ProfileError
from hami_hal.simulation import SimulatedNode
from hami_hal.vendor_tool import ToolError

from .chips import Template, by_chip_name

_LINE = "+" + "-" * 27 + "+" + "-" * 15 + "+" + "-" * 52 + "+"
_DLINE = "+" + "=" * 27 + "+" + "=" * 15 + "+" + "=" * 52 + "+"
#: vNPU ids a chip may use: [phy*16 + 100, phy*16 + 107] (npu-smi create-vnpu reference).
VNPU_IDS_PER_CHIP = 8


#: At most this many templates a profile's chip lists (the chip table's bound).
MAX_TEMPLATES = 64


@dataclass(frozen=True)
class _Firmware:
    """What one simulated chip offers for vNPUs: its templates, AI cores and memory."""

    templates: tuple[Template, ...]
    ai_core: int
    memory_mib: int

    def template(self, name: str) -> Template | None:
        return next((t for t in self.templates if t.name == name), None)


def _profile_templates(d) -> tuple[Template, ...]:
    raw = d.spec.vendor_data.get("templates")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TEMPLATES:
        raise ProfileError(f"device profile {d.profile!r}: vendor_data.templates must be a list of 1 to "
                           f"{MAX_TEMPLATES} templates")
    out = []
    for i, t in enumerate(raw):
        try:
            out.append(Template.model_validate(t))
        except ValidationError as err:
            first = err.errors()[0]
            loc = "".join(f".{x}" for x in first["loc"])
            raise ProfileError(f"device profile {d.profile!r}: vendor_data.templates[{i}]{loc}: {first['msg']} "
                               f"(got {str(first.get('input'))[:40]!r})") from None
    big = [t.name for t in out if t.memory > d.spec.memory_mib or t.aiCore > (d.spec.compute_units or 0)]
    if big:
        raise ProfileError(f"device profile {d.profile!r}: vendor_data.templates: {big[0]} is larger than the chip "
                           f"({d.spec.memory_mib} MiB, {d.spec.compute_units} AI cores)")
    return tuple(out)


def firmware(d) -> _Firmware | None:
    """The vNPU offer of simulated device ``d``: its profile's templates, else the built-in table's; None = none."""
    if "templates" in d.spec.vendor_data:
        return _Firmware(_profile_templates(d), d.spec.compute_units or 0, d.spec.memory_mib)
    chip = by_chip_name(d.spec.model)
    return _Firmware(chip.templates, chip.aiCore, chip.memoryAllocatable) if chip else None


@dataclass
class _Vnpu:
    vnpu_id: int
    template: str
    vgroup: int
    in_use: bool = False


@dataclass
class FakeNpuSmi:
    """Answers ``npu-smi`` argument lists for one simulated node."""

    node: SimulatedNode
    source = "simulated"
    vnpus: dict[int, list[_Vnpu]] = field(default_factory=dict)
    #: When set, every call fails this way (tests of the error paths): "hang", "exit", "garbage".
    failure: str | None = None
    calls: list[list[str]] = field(default_factory=list)
    #: device index -> its vNPU offer (checked once, when the fake is built)
    _fw: dict[int, _Firmware | None] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        """Profiles are user input (``HAMI_HAL_PROFILE_PATH``): check what this fake reads, one line each."""
        for d in self.node.devices:
            vd = d.spec.vendor_data
            for key, lo, hi in (("chips_per_npu", 1, 8), ("hbm_used_mib", 0, d.spec.memory_mib)):
                v = vd.get(key, lo)
                if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                    raise ProfileError(f"device profile {d.profile!r}: vendor_data.{key} {v!r} must be an "
                                       f"integer between {lo} and {hi}")
            self._fw[d.index] = firmware(d)  # a bad vendor_data.templates stops here, with one line

    def _chips_per_npu(self, d) -> int:
        return int(d.spec.vendor_data.get("chips_per_npu", 1))

    def _locate(self, d) -> tuple[int, int]:
        cpn = self._chips_per_npu(d)
        return d.index // cpn, d.index % cpn

    def _find(self, npu: int, chip: int):
        for d in self.node.devices:
            if self._locate(d) == (npu, chip):
                return d
        raise ToolError(f"npu-smi: exited with status 1: Error: device {npu} chip {chip} does not exist")

    def die_id(self, npu: int, chip: int) -> str:
        """DCMI's VDIE die id (HAMi's Ascend UUID); the simulated device's UUID."""
        return self._find(npu, chip).uuid

    def numa_node(self, bus_id: str) -> int | None:
        for d in self.node.devices:
            if d.pci_bus_id[-12:].upper() == bus_id.upper():
                return d.numa_node
        return None

    # -- entry point ----------------------------------------------------------------------------

    def run(self, args: list[str]) -> str:
        self.calls.append(list(args))
        if self.failure == "hang":
            raise ToolError(f"npu-smi {' '.join(args)}: timed out after 10 s (tool or driver hung)")
        if self.failure == "exit":
            raise ToolError(f"npu-smi {' '.join(args)}: exited with status 255: dcmi init failed")
        if self.failure == "garbage":
            return "Segmentation fault\n"
        opts = dict(zip(args[1::2], args[2::2], strict=False)) if len(args) > 1 else {}
        if args == ["info"]:
            return self.info()
        if args == ["info", "-m"]:
            return self.chip_map()
        if args[:1] == ["info"] and opts.get("-t") == "template-info":
            return self.template_info(int(opts.get("-i", 0)), int(opts.get("-c", 0)))
        if args[:1] == ["info"] and opts.get("-t") == "info-vnpu":
            return self.vnpu_info(int(opts["-i"]), int(opts["-c"]))
        if args[:1] == ["info"] and opts.get("-t") == "device-share":
            d = self._find(int(opts["-i"]), int(opts.get("-c", 0)))
            return f"        Device-share Status            : {bool(d.spec.vendor_data.get('device_share'))}\n"
        if args[:1] == ["set"] and opts.get("-t") == "create-vnpu":
            return self.create(int(opts["-i"]), int(opts["-c"]), opts["-f"], int(opts.get("-v", -1)))
        if args[:1] == ["set"] and opts.get("-t") == "destroy-vnpu":
            return self.destroy(int(opts["-i"]), int(opts["-c"]), int(opts["-v"]))
        raise ToolError(f"npu-smi {' '.join(args)}: exited with status 1: Error: unknown command")

    # -- renderers ------------------------------------------------------------------------------

    def _health(self, d) -> str:
        if not d.fault:
            return "OK"
        return {"critical": "Critical", "warning": "Warning", "alarm": "Alarm"}.get(d.fault, "Critical")

    def _used(self, d) -> int:
        base = int(d.spec.vendor_data.get("hbm_used_mib", 0))
        chip = self._fw[d.index]
        extra = 0
        for v in self.vnpus.get(d.index, []):
            tpl = chip.template(v.template) if chip else None
            extra += tpl.memory if tpl and v.in_use else 0
        return min(d.spec.memory_mib, base + extra)

    def info(self) -> str:
        has_hbm = any(d.spec.model != "310P3" for d in self.node.devices) or not self.node.devices
        second = "Chip    Device" if not has_hbm else "Chip"
        tail2 = "AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)" if has_hbm else "AICore(%)   Memory-Usage(MB)"
        out = [
            "+" + "-" * 96 + "+",
            f"| npu-smi {self.node.driver_version:<24} Version: {self.node.driver_version:<53}|",
            _LINE,
            f"| {'NPU   Name':<26}| {'Health':<14}| {'Power(W)    Temp(C)           Hugepages-Usage(page)':<51}|",
            f"| {second:<26}| {'Bus-Id':<14}| {tail2:<51}|",
            _DLINE,
        ]
        for d in self.node.devices:
            npu, chip = self._locate(d)
            power = d.spec.vendor_data.get("power_w", "NA")
            temp = d.spec.vendor_data.get("temperature_c", "NA")
            used, total = self._used(d), d.spec.memory_mib
            bus = d.pci_bus_id[-12:] if d.pci_bus_id else f"0000:{0x80 + d.index:02X}:00.0"
            chip_cell = f"{chip:<6}{d.index}" if not has_hbm else f"{chip}"
            if has_hbm:
                usage = f"0           0    / 0          {used:<5}/ {total}"
            else:
                usage = f"0           {used:<5}/ {total}"
            out += [
                f"| {npu:<6}{d.spec.model:<20}| {self._health(d):<14}| {str(power):<12}{str(temp):<18}0    / 0{'':<13}|",
                f"| {chip_cell:<26}| {bus:<14}| {usage:<51}|",
                _DLINE,
            ]
        out += [
            _LINE,
            f"| {'NPU     Chip':<26}| {'Process id':<14}| {'Process name             | Process memory(MB)':<51}|",
            _DLINE,
        ]
        for npu in sorted({self._locate(d)[0] for d in self.node.devices}):
            out.append(f"| No running processes found in NPU {npu:<61}|")
            out.append(_DLINE)
        return "\n".join(out) + "\n"

    def chip_map(self) -> str:
        out = [f"        {'NPU ID':<31}{'Chip ID':<31}{'Chip Logic ID':<31}Chip Name"]
        for d in self.node.devices:
            npu, chip = self._locate(d)
            out.append(f"        {npu:<31}{chip:<31}{d.index:<31}Ascend {d.spec.model}")
            if chip == self._chips_per_npu(d) - 1:
                out.append(f"        {npu:<31}{chip + 1:<31}{'-':<31}Mcu")
        return "\n".join(out) + "\n"

    def template_info(self, npu: int, chip_id: int) -> str:
        d = self._find(npu, chip_id)
        chip = self._fw[d.index]
        rows = [] if chip is None else chip.templates
        out = [
            "+" + "-" * 91 + "+",
            "|NPU instance template info is:" + " " * 61 + "|",
            f"|{'Name':<20}{'AICORE':<10}{'Memory':<10}{'AICPU':<10}{'VPC':<10}{'VENC':<10}{'VDEC':<10}{'JPEGD':<11}|",
            f"|{'':<30}{'GB':<61}|",
            "|" + "=" * 91 + "|",
        ]
        for t in rows:
            gb = max(1, round(t.memory / 1024))
            out.append(f"|{t.name:<20}{t.aiCore:<10}{str(gb) + 'GB':<10}{t.aiCPU:<10}{'NA':<10}{'NA':<10}"
                       f"{'NA':<10}{'NA':<11}|")
            out.append("+" + "-" * 91 + "+")
        return "\n".join(out) + "\n"

    def vnpu_info(self, npu: int, chip_id: int) -> str:
        d = self._find(npu, chip_id)
        vs = self.vnpus.get(d.index, [])
        chip = self._fw[d.index]
        total_core = chip.ai_core if chip else 0
        used_core = sum((chip.template(v.template).aiCore if chip and chip.template(v.template) else 0) for v in vs)
        out = [
            "+" + "-" * 79 + "+",
            f"| {'NPU resource static info as follow:':<78}|",
            f"| {'Format:Free/Total':<36}{'NA: Currently, query is not supported.':<42}|",
            f"| {'AICORE    Memory    AICPU':<78}|",
            f"| {str(total_core - used_core) + '/' + str(total_core):<78}|",
            "+" + "-" * 79 + "+",
            f"| {'Total number of vnpu: ' + str(len(vs)):<78}|",
        ]
        if vs:
            out += ["+" + "-" * 79 + "+",
                    "|  Vnpu ID  |  Vgroup ID     |  Container ID  |  Status  |  Template Name     |",
                    "+" + "-" * 79 + "+"]
            for v in vs:
                out.append(f"|  {v.vnpu_id:<9}|  {v.vgroup:<14}|  {'ffffffffffff':<14}|  {int(v.in_use):<8}|"
                           f"  {v.template:<18}|")
        out.append("+" + "-" * 79 + "+")
        return "\n".join(out) + "\n"

    # -- control --------------------------------------------------------------------------------

    def create(self, npu: int, chip_id: int, template: str, vnpu_id: int) -> str:
        d = self._find(npu, chip_id)
        chip = self._fw[d.index]
        tpl = chip.template(template) if chip else None
        if tpl is None:
            return f"       Status                         : FAILED\n       Message                        : template {template} is not supported\n"
        vs = self.vnpus.setdefault(d.index, [])
        used_core = sum(chip.template(v.template).aiCore for v in vs)
        used_mem = sum(chip.template(v.template).memory for v in vs)
        if used_core + tpl.aiCore > chip.ai_core or used_mem + tpl.memory > chip.memory_mib:
            return "       Status                         : FAILED\n       Message                        : resources are insufficient\n"
        lo = d.index * 16 + 100
        if vnpu_id < 0:
            free = [i for i in range(lo, lo + VNPU_IDS_PER_CHIP) if all(v.vnpu_id != i for v in vs)]
            vnpu_id = free[0] if free else -1
        if not lo <= vnpu_id < lo + VNPU_IDS_PER_CHIP or any(v.vnpu_id == vnpu_id for v in vs):
            return f"       Status                         : FAILED\n       Message                        : vnpu id {vnpu_id} is invalid or in use\n"
        vs.append(_Vnpu(vnpu_id, template, vgroup=len(vs) % 4))
        return "       Status                         : OK\n       Message                        : Create vnpu success\n"

    def destroy(self, npu: int, chip_id: int, vnpu_id: int) -> str:
        d = self._find(npu, chip_id)
        vs = self.vnpus.get(d.index, [])
        for v in vs:
            if v.vnpu_id == vnpu_id:
                if v.in_use:
                    return "       Status                         : FAILED\n       Message                        : vnpu is in use by a container\n"
                vs.remove(v)
                return f"       Status                         : OK\n       Message                        : Destroy vnpu {vnpu_id} success\n"
        return f"       Status                         : FAILED\n       Message                        : vnpu {vnpu_id} does not exist\n"

    def set_in_use(self, index: int, vnpu_id: int, in_use: bool) -> None:
        """Simulate a container starting/stopping on a vNPU (the Ascend Docker Runtime's part)."""
        for v in self.vnpus.get(index, []):
            if v.vnpu_id == vnpu_id:
                v.in_use = in_use
