"""The port over ``hy-smi``: the operations the plugin needs, on top of any runner that answers hy-smi
argument lists with the tool's text (the real binary, or :class:`FakeHySmi`).

vDCUs go through ``hy-smi virtual`` (driver >= 6.2.26; older stacks ship the same flags as
``hy-virtual``): ``-create-vdevices 1 -d <dev> -vdevice-compute-units <CUs> -vdevice-memory-size <MiB>``
and ``-destroy-vdevice <n>``; the new vDCU is found by listing ``-show-device-info`` before and after, so
nothing depends on the create command's message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from hami_hal.vendor_tool import C_LOCALE, DRIVER_WORDING, ToolError, find_tool, run_tool

from . import hy_smi_parse as parse

HY_SMI_PATHS = ("/opt/hyhal/bin/hy-smi", "/opt/dtk/bin/hy-smi", "/usr/local/bin/hy-smi")
DEFAULT_TIMEOUT_S = 10.0
#: Largest figure hy-smi may report (bytes of a device: 1 PiB); anything above is a broken tool.
MAX_VALUE = 1 << 50
INFO_ARGS = ["--showproductname", "--showid", "--showserial", "--showbus", "--showmeminfo", "vram", "--showtoponuma"]


class Runner(Protocol):
    source: str

    def run(self, args: list[str]) -> str: ...


class RealRunner:
    source = "real"

    def __init__(self, path: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        found = path or find_tool("hy-smi", candidates=HY_SMI_PATHS)
        self.path, self.timeout_s = found, timeout_s

    def run(self, args: list[str]) -> str:
        return run_tool([self.path, *args], timeout_s=self.timeout_s, env=C_LOCALE, wording=DRIVER_WORDING,
                        label=f"hy-smi {' '.join(args)}".strip())


@dataclass(frozen=True)
class DcuInfo:
    index: int
    series: str
    device_id: str
    serial: str
    bus_id: str
    memory_total_bytes: int
    memory_used_bytes: int | None
    numa_node: int | None


def _int(value: str | None, what: str) -> int | None:
    if value is None or value.strip() in ("", "N/A"):
        return None
    try:
        number = int(value.strip())
    except ValueError:
        raise ToolError(f"hy-smi: {what} {value!r} is not a number") from None
    if not -1 <= number <= MAX_VALUE:
        raise ToolError(f"hy-smi: {what} {value!r} is out of range")
    return number


class HySmi:
    #: On real nodes, one tool run answers health and metrics of every DCU for this long.
    CACHE_S = 2.0

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._cache: dict[tuple[str, ...], tuple[float, str]] = {}

    def _run(self, args: list[str]) -> str:
        """The tool's text; on a real node a repeat of the same query within ``CACHE_S`` is served cached."""
        if self.source != "real":
            return self.runner.run(args)
        key, now = tuple(args), time.monotonic()
        hit = self._cache.get(key)
        if hit and now - hit[0] < self.CACHE_S:
            return hit[1]
        text = self.runner.run(args)
        self._cache[key] = (now, text)
        return text

    @property
    def source(self) -> str:
        return getattr(self.runner, "source", "simulated")

    def devices(self) -> list[DcuInfo]:
        kv = parse.parse_kv(self._run(INFO_ARGS), "hy-smi " + " ".join(INFO_ARGS))
        out = []
        for idx in sorted(kv):
            d = kv[idx]
            total = _int(d.get("vram Total Memory (B)"), f"DCU[{idx}] vram Total Memory (B)")
            if total is None:
                raise ToolError(f"hy-smi: DCU[{idx}] reports no 'vram Total Memory (B)'")
            out.append(DcuInfo(
                index=idx, series=d.get("Card Series", ""), device_id=d.get("Device ID", ""),
                serial=d.get("Serial Number", ""), bus_id=d.get("PCI Bus", ""), memory_total_bytes=total,
                memory_used_bytes=_int(d.get("vram Total Used Memory (B)"), f"DCU[{idx}] vram used"),
                numa_node=_int(d.get("(Topology) Numa Node"), f"DCU[{idx}] numa node"),
            ))
        return out

    def table(self) -> dict[int, parse.TableRow]:
        return parse.parse_table(self._run([]))

    def link_types(self) -> dict[tuple[int, int], str]:
        return parse.parse_topo_type(self.runner.run(["--showtopotype"]))

    def vdevices(self) -> list[parse.VirtualDevice]:
        return parse.parse_virtual_info(self.runner.run(["virtual", "-show-device-info"]))

    def create_vdevice(self, device: int, compute_units: int, memory_mib: int) -> int:
        """Create one vDCU; returns its index (the one ``-show-device-info`` lists after and not before)."""
        before = {v.index for v in self.vdevices()}
        self.runner.run(["virtual", "-create-vdevices", "1", "-d", str(device), "-vdevice-compute-units",
                         str(compute_units), "-vdevice-memory-size", str(memory_mib)])
        new = [v for v in self.vdevices() if v.index not in before and v.actual_device == device]
        if len(new) != 1:
            raise ToolError(f"hy-smi virtual -create-vdevices on DCU {device}: {len(new)} new vDCUs listed, expected 1")
        return new[0].index

    def destroy_vdevice(self, vdevice: int) -> None:
        self.runner.run(["virtual", "-destroy-vdevice", str(vdevice)])
