"""The port over ``npu-smi``: the operations the plugin needs, on top of any runner that answers
``npu-smi`` argument lists with the tool's text (the real binary, or :class:`FakeNpuSmi`).

The real tool is looked up where HAMi's hami-vnpu-core expects it, then on PATH; each call has a time
limit (config ``npu_smi_timeout_s``, default 10 s). Nothing here imports a vendor library.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hami_hal.vendor_tool import C_LOCALE, DRIVER_WORDING, ToolError, find_tool, run_tool

from . import npu_smi_parse as parse

NPU_SMI_PATHS = ("/usr/local/Ascend/driver/tools/npu-smi", "/usr/local/sbin/npu-smi", "/usr/local/bin/npu-smi")
DEFAULT_TIMEOUT_S = 10.0
#: vNPU ids of one chip: [phy*16 + 100, phy*16 + 107] (npu-smi create-vnpu reference).
VNPU_ID_BASE, VNPU_ID_STRIDE, VNPU_IDS_PER_CHIP = 100, 16, 8


class Runner(Protocol):
    source: str

    def run(self, args: list[str]) -> str: ...

    def die_id(self, npu: int, chip: int) -> str | None: ...

    def numa_node(self, bus_id: str) -> int | None: ...


class RealRunner:
    """Runs the installed ``npu-smi`` binary."""

    source = "real"

    def __init__(self, path: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        found = path or find_tool("npu-smi", candidates=NPU_SMI_PATHS)
        self.path, self.timeout_s = found, timeout_s

    def die_id(self, npu: int, chip: int) -> str | None:
        """npu-smi prints no VDIE die id (HAMi reads it through DCMI); discovery falls back."""
        return None

    def numa_node(self, bus_id: str) -> int | None:
        """The chip's NUMA node from sysfs (npu-smi does not print it); None when unknown."""
        try:
            value = int(Path(f"/sys/bus/pci/devices/{bus_id.lower()}/numa_node").read_text().strip())
        except (OSError, ValueError):
            return None
        return value if value >= 0 else None

    def run(self, args: list[str]) -> str:
        return run_tool([self.path, *args], timeout_s=self.timeout_s, env=C_LOCALE, wording=DRIVER_WORDING,
                        label=f"npu-smi {' '.join(args)}")


@dataclass(frozen=True)
class Chip:
    """One NPU chip: ``npu-smi info`` joined with its logic id from ``npu-smi info -m``."""

    row: parse.ChipRow
    logic_id: int

    @property
    def npu_id(self) -> int:
        return self.row.npu_id

    @property
    def chip_id(self) -> int:
        return self.row.chip_id


class NpuSmi:
    """High-level npu-smi operations; every failure is a :class:`ToolError` with one line."""

    #: On real nodes, ``chips()`` answers health and metrics for every chip from one pair of tool runs.
    CACHE_S = 2.0

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._chips: tuple[float, tuple[list[Chip], str | None]] | None = None

    @property
    def source(self) -> str:
        return getattr(self.runner, "source", "simulated")

    def version(self, info_text: str) -> str | None:
        m = re.search(r"Version:\s*(\S+)", info_text)
        return m.group(1) if m else None

    def chips(self) -> tuple[list[Chip], str | None]:
        """All NPU chips, in logic-id order, and the driver version the table header shows."""
        now = time.monotonic()
        if self.source == "real" and self._chips and now - self._chips[0] < self.CACHE_S:
            return self._chips[1]
        got = self._read_chips()
        self._chips = (now, got)
        return got

    def _read_chips(self) -> tuple[list[Chip], str | None]:
        text = self.runner.run(["info"])
        rows = parse.parse_info(text)
        logic = parse.parse_chip_map(self.runner.run(["info", "-m"]))
        out = []
        for r in rows:
            lid = logic.get((r.npu_id, r.chip_id))
            if lid is None:
                raise ToolError(f"npu-smi info -m: NPU {r.npu_id} chip {r.chip_id} has no logic id")
            out.append(Chip(r, lid))
        return sorted(out, key=lambda c: c.logic_id), self.version(text)

    def templates(self, npu: int, chip: int) -> list[parse.TemplateRow]:
        return parse.parse_template_info(self.runner.run(["info", "-t", "template-info", "-i", str(npu),
                                                          "-c", str(chip)]))

    def vnpus(self, npu: int, chip: int) -> list[parse.VnpuRow]:
        return parse.parse_vnpu_info(self.runner.run(["info", "-t", "info-vnpu", "-i", str(npu), "-c", str(chip)]))

    def device_share(self, npu: int, chip: int) -> bool:
        text = self.runner.run(["info", "-t", "device-share", "-i", str(npu), "-c", str(chip)])
        m = re.search(r"Device-share Status\s*:\s*(\w+)", text)
        if m is None:
            raise ToolError(f"npu-smi info -t device-share -i {npu}: no 'Device-share Status' line")
        return m.group(1).lower() in ("true", "enable", "enabled", "1")

    def create_vnpu(self, npu: int, chip: int, logic_id: int, template: str) -> int:
        """Create a vNPU from ``template``; returns its id (the lowest free id of the chip's range)."""
        taken = {v.vnpu_id for v in self.vnpus(npu, chip)}
        lo = logic_id * VNPU_ID_STRIDE + VNPU_ID_BASE
        free = [i for i in range(lo, lo + VNPU_IDS_PER_CHIP) if i not in taken]
        if not free:
            raise ToolError(f"npu-smi set -t create-vnpu -i {npu} -c {chip}: all {VNPU_IDS_PER_CHIP} vNPU ids in use")
        args = ["set", "-t", "create-vnpu", "-i", str(npu), "-c", str(chip), "-f", template, "-v", str(free[0])]
        parse.parse_status(self.runner.run(args), "npu-smi " + " ".join(args))
        return free[0]

    def destroy_vnpu(self, npu: int, chip: int, vnpu_id: int) -> None:
        args = ["set", "-t", "destroy-vnpu", "-i", str(npu), "-c", str(chip), "-v", str(vnpu_id)]
        parse.parse_status(self.runner.run(args), "npu-smi " + " ".join(args))
