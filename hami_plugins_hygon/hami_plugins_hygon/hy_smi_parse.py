"""Parsers for ``hy-smi`` text output. Pure functions: text in, records out, one clear line on bad input.

Formats (Hygon's hy-smi follows rocm-smi's layout; sources in the fixtures' headers):

- per-device lines ``DCU[<i>] : <Key>: <value>`` (``--showproductname``, ``--showid``, ``--showserial``,
  ``--showbus``, ``--showmeminfo vram``, ``--showtoponuma``); a value may be empty (K100's Card Series)
  or contain ``:`` (a PCI bus id);
- the default summary table: a ``DCU Temp AvgPwr ... DCU% Mode`` header, one row per device, closed by
  ``End of SMI Log``; columns are found by name, unknown ones kept aside;
- ``--showtopotype``: a matrix of link types between DCUs (``XGMI``, ``PCIE``, ``0`` on the diagonal);
- ``hy-smi virtual -show-device-info``: ``Device <n>:`` blocks with ``Actual Device``, ``Compute units``,
  ``Global memory: <bytes> bytes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hami_hal.digits import is_digits
from hami_hal.vendor_tool import ToolError

MAX_DEVICES = 256
_KV = re.compile(r"^\s*DCU\[(\d+)\]\s*:\s*(.*)$")
_VDEV = re.compile(r"^\s*Device\s+(\d+)\s*:\s*$")


@dataclass(frozen=True)
class TableRow:
    index: int
    temp_c: float | None
    power_w: float | None
    vram_percent: float | None
    busy_percent: float | None
    mode: str | None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VirtualDevice:
    index: int
    actual_device: int
    compute_units: int
    memory_bytes: int


def parse_kv(text: str, what: str = "hy-smi") -> dict[int, dict[str, str]]:
    """``DCU[i] : Key: value`` lines → {i: {key: value}}; lines of other shapes are skipped."""
    out: dict[int, dict[str, str]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        m = _KV.match(line)
        if not m:
            continue
        idx, rest = int(m.group(1)), m.group(2)
        if idx >= MAX_DEVICES:
            raise ToolError(f"{what}: line {n}: device index {idx} out of range")
        key, sep, value = rest.partition(":")
        if not sep or not key.strip():
            raise ToolError(f"{what}: line {n}: expected 'DCU[{idx}] : <key>: <value>', got {line.strip()[:60]!r}")
        out.setdefault(idx, {})[key.strip()] = value.strip()
    if not out:
        raise ToolError(f"{what}: no 'DCU[i] : key: value' lines in the output")
    return out


def _num(value: str, what: str, n: int) -> float | None:
    v = value.strip().rstrip("CW%").strip()
    if v in ("N/A", "NA", "-", ""):
        return None
    try:
        return float(v)
    except ValueError:
        raise ToolError(f"hy-smi: line {n}: {what} {value!r} is not a number") from None


def parse_table(text: str) -> dict[int, TableRow]:
    """The default ``hy-smi`` summary table."""
    lines = text.splitlines()
    header = next((i for i, ln in enumerate(lines) if ln.split()[:1] == ["DCU"] and "Temp" in ln), None)
    if header is None:
        raise ToolError("hy-smi: no 'DCU Temp ...' table header in the output")
    names = lines[header].split()
    if not any("End of SMI Log" in ln for ln in lines[header:]):
        raise ToolError("hy-smi: truncated output: no 'End of SMI Log' line after the table")
    rows: dict[int, TableRow] = {}
    for n, line in enumerate(lines[header + 1:], start=header + 2):
        toks = line.split()
        if not toks or not is_digits(toks[0]):
            continue
        if len(toks) < len(names):
            raise ToolError(f"hy-smi: line {n}: {len(toks)} values for {len(names)} columns")
        cols = dict(zip(names, toks, strict=False))
        idx = int(toks[0])
        if idx >= MAX_DEVICES:
            raise ToolError(f"hy-smi: line {n}: device index {idx} out of range")
        known = {"DCU", "Temp", "AvgPwr", "VRAM%", "DCU%", "Mode"}
        rows[idx] = TableRow(
            index=idx, temp_c=_num(cols.get("Temp", "N/A"), "Temp", n), power_w=_num(cols.get("AvgPwr", "N/A"), "AvgPwr", n),
            vram_percent=_num(cols.get("VRAM%", "N/A"), "VRAM%", n), busy_percent=_num(cols.get("DCU%", "N/A"), "DCU%", n),
            mode=cols.get("Mode"), extra={k: v for k, v in cols.items() if k not in known},
        )
    return rows


def parse_topo_type(text: str) -> dict[tuple[int, int], str]:
    """``--showtopotype`` matrix → {(i, j): link type} for i < j."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = next((i for i, ln in enumerate(lines) if ln.split() and all(t.startswith("DCU") for t in ln.split())),
                  None)
    if header is None:
        raise ToolError("hy-smi --showtopotype: no 'DCU0 DCU1 ...' header")
    cols = [int(t[3:]) for t in lines[header].split() if is_digits(t[3:])]
    out: dict[tuple[int, int], str] = {}
    for n, line in enumerate(lines[header + 1:], start=header + 2):
        toks = line.split()
        if not toks or not toks[0].startswith("DCU") or not is_digits(toks[0][3:]):
            continue
        if len(toks) - 1 != len(cols):
            raise ToolError(f"hy-smi --showtopotype: line {n}: {len(toks) - 1} entries for {len(cols)} DCUs")
        a = int(toks[0][3:])
        for b, kind in zip(cols, toks[1:], strict=True):
            if a < b:
                out[(a, b)] = kind.upper()
    return out


def parse_virtual_info(text: str) -> list[VirtualDevice]:
    """``hy-smi virtual -show-device-info`` blocks."""
    out: list[VirtualDevice] = []
    cur: dict[str, str] | None = None
    idx = -1

    def close(n: int) -> None:
        if cur is None:
            return
        try:
            mem = cur["Global memory"].split()[0]
            out.append(VirtualDevice(idx, int(cur["Actual Device"]), int(cur["Compute units"]), int(mem)))
        except (KeyError, ValueError, IndexError):
            raise ToolError(f"hy-smi virtual -show-device-info: truncated or unreadable block for device {idx} "
                            f"(before line {n})") from None

    n = 0
    for n, line in enumerate(text.splitlines(), start=1):
        m = _VDEV.match(line)
        if m:
            close(n)
            cur, idx = {}, int(m.group(1))
            continue
        if cur is not None and ":" in line:
            k, _, v = line.partition(":")
            cur[k.strip()] = v.strip()
    close(n + 1)
    return out
