"""Parsers for MetaX's ``mx-smi`` output: the summary table (``mx-smi``), memory (``mx-smi --show-memory``)
and the link matrix (``mx-smi topo -m``). Pure functions over text, shared by the real and simulated tool.

What is known of the formats (public scripts that read the tool; no vendor specification is public):

- ``mx-smi``: an ``Attached GPUs : <n>`` line, a banner line holding ``mx-smi`` and the driver version
  at its end, a ``MACA`` version line, and per GPU a row with the index, the model (``MetaX ...``), the
  bus id, and a ``<used>/<total> MiB`` memory cell. The exact cell layout (``|``-separated, two rows per
  GPU) is our assumption, marked so in the fixtures.
- ``mx-smi --show-memory``: per GPU a ``GPU#<n>`` header and ``vis_vram total : <n> KB`` /
  ``vis_vram used : <n> KB`` lines.
- ``mx-smi topo -m``: a matrix like ``nvidia-smi topo -m``; the legend marks MetaXLink as ``MX`` and
  PCIe paths as ``PIX``/``PXB``/``PHB``/``NODE``/``SYS``; ``X`` is the GPU itself.

Every error is a :class:`hami_hal.vendor_tool.ToolError` naming the line or field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hami_hal.digits import is_digits
from hami_hal.vendor_tool import ToolError

MAX_GPUS = 64
MAX_MEMORY_MIB = 1 << 20
LINK_CODES = ("X", "MX", "PIX", "PXB", "PHB", "NODE", "SYS")


@dataclass(frozen=True)
class GpuRow:
    index: int
    model: str
    bus_id: str
    used_mib: int
    total_mib: int
    utilization_pct: int | None


@dataclass(frozen=True)
class Summary:
    driver_version: str
    maca_version: str | None
    gpus: list[GpuRow]


_ATTACHED = re.compile(r"^Attached GPUs\s*:\s*(\d+)\s*$")
_DRIVER = re.compile(r"Kernel Mode Driver Version:\s*(\S+)")
_MACA = re.compile(r"MACA Version:\s*(\S+)")
_ROW1 = re.compile(r"^\|\s*(?P<idx>\d+)\s+(?P<model>MetaX[^|]*?)\s*\|\s*(?P<bus>[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:"
                   r"[0-9a-fA-F]{2}\.[0-7])\s*\|\s*(?P<util>\d+%|N/A)\s*\|\s*$")
_ROW2 = re.compile(r"^\|[^|]*\|\s*(?P<used>\d+)/(?P<total>\d+) MiB\s*\|[^|]*\|\s*$")


def parse_summary(text: str) -> Summary:
    """The GPUs of ``mx-smi``; refuses a count that disagrees with ``Attached GPUs`` (truncated output)."""
    lines = text.splitlines()
    attached = next((int(m[1]) for ln in lines if (m := _ATTACHED.match(ln.strip()))), None)
    if attached is None:
        raise ToolError("mx-smi: no 'Attached GPUs' line (unknown output format or truncated output)")
    if attached > MAX_GPUS:
        raise ToolError(f"mx-smi: Attached GPUs {attached} is above {MAX_GPUS}")
    driver = next((m[1] for ln in lines if (m := _DRIVER.search(ln))), None)
    if driver is None:
        raise ToolError("mx-smi: no 'Kernel Mode Driver Version' in the banner")
    maca = next((m[1] for ln in lines if (m := _MACA.search(ln))), None)
    gpus: list[GpuRow] = []
    for n, line in enumerate(lines):
        m = _ROW1.match(line.strip())
        if m is None:
            continue
        m2 = _ROW2.match(lines[n + 1].strip()) if n + 1 < len(lines) else None
        if m2 is None:
            raise ToolError(f"mx-smi: GPU {m['idx']} has no memory row after line {n + 1} (truncated output?)")
        used, total = int(m2["used"]), int(m2["total"])
        if total == 0 or total > MAX_MEMORY_MIB or used > total:
            raise ToolError(f"mx-smi: GPU {m['idx']}: memory {used}/{total} MiB is impossible")
        idx = int(m["idx"])
        if idx >= MAX_GPUS or any(g.index == idx for g in gpus):
            raise ToolError(f"mx-smi: GPU index {idx} repeated or out of range")
        util = None if m["util"] == "N/A" else int(m["util"].rstrip("%"))
        if util is not None and util > 100:
            raise ToolError(f"mx-smi: GPU {idx}: utilisation {util}% is above 100")
        gpus.append(GpuRow(idx, m["model"].strip(), m["bus"].lower(), used, total, util))
    if len(gpus) != attached:
        raise ToolError(f"mx-smi: Attached GPUs says {attached}, {len(gpus)} GPU rows read "
                        "(unknown row format or truncated output)")
    return Summary(driver, maca, gpus)


_GPU_HEADER = re.compile(r"^GPU#(\d+)\b")
_VRAM = re.compile(r"^vis_vram (total|used)\s*:\s*(\d+)\s*KB\s*$")


def parse_memory(text: str) -> dict[int, tuple[int, int]]:
    """``{gpu index: (used MiB, total MiB)}`` from ``mx-smi --show-memory`` (KB → MiB, rounded down)."""
    out: dict[int, dict[str, int]] = {}
    current: int | None = None
    for line in text.splitlines():
        s = line.strip()
        if m := _GPU_HEADER.match(s):
            current = int(m[1])
            if current >= MAX_GPUS:
                raise ToolError(f"mx-smi --show-memory: GPU#{current} out of range")
            out.setdefault(current, {})
            continue
        if m := _VRAM.match(s):
            if current is None:
                raise ToolError("mx-smi --show-memory: vis_vram line before any GPU# header")
            kb = int(m[2])
            if kb > MAX_MEMORY_MIB * 1024:
                raise ToolError(f"mx-smi --show-memory: GPU#{current} vis_vram {m[1]} {kb} KB is too large")
            out[current][m[1]] = kb // 1024
    result = {}
    for idx, vals in out.items():
        if "total" not in vals or "used" not in vals:
            raise ToolError(f"mx-smi --show-memory: GPU#{idx} lacks vis_vram total/used (truncated output?)")
        result[idx] = (vals["used"], vals["total"])
    if not result:
        raise ToolError("mx-smi --show-memory: no GPU listed (empty or truncated output)")
    return result


def parse_topology(text: str) -> dict[tuple[int, int], str]:
    """``{(i, j): code}`` for i < j from ``mx-smi topo -m``; codes as in :data:`LINK_CODES`."""
    rows: dict[int, list[str]] = {}
    header: list[int] | None = None
    for line in text.splitlines():
        cells = line.split()
        if not cells:
            continue
        if header is None and re.fullmatch(r"GPU\d+", cells[0]) and (len(cells) == 1 or cells[1] not in LINK_CODES):
            header = [int(c[3:]) for c in cells if re.fullmatch(r"GPU\d+", c)]  # the column line (no cells)
            continue
        if header is not None and re.fullmatch(r"GPU\d+", cells[0]):
            codes = cells[1:1 + len(header)]
            if len(codes) != len(header):
                raise ToolError(f"mx-smi topo -m: row {cells[0]} has {len(codes)} cells for {len(header)} GPUs")
            bad = next((c for c in codes if c not in LINK_CODES), None)
            if bad is not None:
                raise ToolError(f"mx-smi topo -m: row {cells[0]}: unknown link code {bad!r}")
            rows[int(cells[0][3:])] = codes
    if header is None or not rows:
        raise ToolError("mx-smi topo -m: no GPU matrix found (unknown output format or truncated output)")
    if sorted(rows) != sorted(header):
        raise ToolError(f"mx-smi topo -m: rows {sorted(rows)} do not match columns {sorted(header)}")
    out: dict[tuple[int, int], str] = {}
    for i, codes in rows.items():
        for j, code in zip(header, codes, strict=True):
            if i == j:
                if code != "X":
                    raise ToolError(f"mx-smi topo -m: GPU{i} to itself is {code!r}, expected 'X'")
                continue
            other = rows[j][header.index(i)]
            if other != code:
                raise ToolError(f"mx-smi topo -m: GPU{i}-GPU{j} is {code} one way and {other} the other")
            if i < j:
                out[(i, j)] = code
    return out


def parse_numa(text: str) -> dict[int, int | None]:
    """GPU index → NUMA node from the ``NUMA Affinity`` column of ``mx-smi topo -m`` (None when absent)."""
    out: dict[int, int | None] = {}
    for line in text.splitlines():
        cells = line.split()
        if len(cells) > 2 and re.fullmatch(r"GPU\d+", cells[0]) and cells[1] in LINK_CODES:
            last = cells[-1]
            out[int(cells[0][3:])] = int(last) if is_digits(last) and len(last) < 4 else None
    return out


_LIST = re.compile(r"^GPU#?\s*(\d+)\s*:\s*(?P<model>.+?)\s*\(UUID:\s*(?P<uuid>[A-Za-z0-9_.-]{1,128})\)\s*$")


def parse_list(text: str) -> dict[int, str]:
    """GPU index → UUID from ``mx-smi -L`` (``GPU 0: MetaX C500 (UUID: ...)``, nvidia-smi -L's layout; assumed)."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LIST.match(line.strip())
        if m is None:
            raise ToolError(f"mx-smi -L: unrecognised line {line.strip()[:80]!r}")
        idx = int(m[1])
        if idx >= MAX_GPUS or idx in out:
            raise ToolError(f"mx-smi -L: GPU {idx} repeated or out of range")
        out[idx] = m["uuid"]
    return out
