"""Parsers for ``npu-smi`` text output. Pure functions: text in, records out, one clear line on bad input.

Formats (from Huawei's npu-smi command reference and the outputs quoted in HAMi's issues and blog; see
the recorded fixtures in ``tests/fixtures/``):

- ``npu-smi info``: a table of two rows per chip. Row 1 ``| NPU Name | Health | Power(W) Temp(C) ... |``,
  row 2 ``| Chip [Device|Phy-ID] | Bus-Id | AICore(%) Memory-Usage(MB) [HBM-Usage(MB)] |``. Columns are
  found by their header names, so an extra column is skipped and a missing required one is an error.
  ``used / total`` pairs count as one column.
- ``npu-smi info -m``: ``NPU ID  Chip ID  Chip Logic ID  Chip Name`` (``-`` = not an NPU chip, e.g. MCU).
- ``npu-smi info -t template-info``: a header with ``Name``, ``AICORE``, ``Memory``; rows after the
  ``==`` line start with ``vir``; memory is in GB.
- ``npu-smi info -t info-vnpu -i <id> -c <chip>``: the vNPU table ``Vnpu ID | Vgroup ID | Container ID |
  Status | Template Name`` (status 1 = used by a container, 0 = idle).
- ``npu-smi set -t create-vnpu|destroy-vnpu``: ``Status : OK`` / ``Message : ...`` lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hami_hal.digits import is_digits
from hami_hal.vendor_tool import ToolError

#: Bounds on what a sane table holds (refuse a runaway or hostile output early).
MAX_ROWS = 4096
#: Largest memory figure (MiB) a chip may report; anything above is a broken tool.
MAX_MIB = 1 << 31
_PAIR = re.compile(r"\s*/\s*")
_BUS = re.compile(r"^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$")


@dataclass(frozen=True)
class ChipRow:
    """One chip of ``npu-smi info``."""

    npu_id: int
    chip_id: int
    name: str
    health: str
    bus_id: str
    power_w: float | None
    temp_c: float | None
    aicore_percent: float | None
    hbm_used_mib: int | None
    hbm_total_mib: int | None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateRow:
    name: str
    aicore: int
    memory_gb: int
    aicpu: int | None


@dataclass(frozen=True)
class VnpuRow:
    vnpu_id: int
    vgroup_id: int
    container_id: str
    in_use: bool
    template: str


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _tokens(cell: str) -> list[str]:
    return _PAIR.sub("/", cell).split()


def _number(value: str, what: str, line_no: int) -> float | None:
    if value in ("NA", "-", "--", "N/A"):
        return None
    try:
        return float(value)
    except ValueError:
        raise ToolError(f"npu-smi info: line {line_no}: {what} {value!r} is not a number") from None


def _pair(value: str, what: str, line_no: int) -> tuple[int | None, int | None]:
    used, sep, total = value.partition("/")
    if not sep:
        raise ToolError(f"npu-smi info: line {line_no}: {what} {value!r} is not 'used / total'")
    u, t = _number(used, what, line_no), _number(total, what, line_no)
    if any(v is not None and not 0 <= v <= MAX_MIB for v in (u, t)):
        raise ToolError(f"npu-smi info: line {line_no}: {what} {value!r} is out of range")
    return (None if u is None else int(u)), (None if t is None else int(t))


def _header_names(cells: list[str]) -> list[list[str]]:
    return [c.split() for c in cells]


def parse_info(text: str) -> list[ChipRow]:
    """Chips of ``npu-smi info``; raises ToolError naming the line on malformed or truncated output."""
    lines = text.splitlines()
    head1 = head2 = None
    start = 0
    for i, line in enumerate(lines):
        if line.lstrip().startswith("|") and "Health" in line and "Name" in line:
            head1 = _header_names(_cells(line))
            if i + 1 < len(lines) and "Bus-Id" in lines[i + 1]:
                head2 = _header_names(_cells(lines[i + 1]))
                start = i + 2
            break
    if head1 is None or head2 is None:
        raise ToolError("npu-smi info: no chip table header (NPU/Name/Health, Chip/Bus-Id) in the output")
    if len(head1) < 3 or len(head2) < 3 or "Power(W)" not in head1[2] or "AICore(%)" not in head2[2]:
        raise ToolError("npu-smi info: chip table header lacks Power(W)/AICore(%) columns")
    rows: list[ChipRow] = []
    pending: tuple[int, list[str], int] | None = None
    for n, line in enumerate(lines[start:], start=start + 1):
        s = line.strip()
        if not s.startswith("|") or set(s) <= set("|+-= "):
            continue
        if "Process id" in s or "No running processes" in s or "Process name" in s:
            break
        cells = _cells(s)
        if len(cells) < 3:
            raise ToolError(f"npu-smi info: line {n}: expected 3 cells, got {len(cells)}")
        if pending is None:
            pending = (n, cells, n)
            continue
        rows.append(_chip(pending[1], cells, head1, head2, pending[0], n))
        pending = None
        if len(rows) > MAX_ROWS:
            raise ToolError(f"npu-smi info: more than {MAX_ROWS} chips")
    if pending is not None:
        raise ToolError(f"npu-smi info: truncated output: line {pending[0]} has no second (Chip/Bus-Id) row")
    return rows


def _columns(names: list[str], values: list[str], line_no: int) -> dict[str, str]:
    toks = _tokens(" ".join(values)) if len(values) > 1 else _tokens(values[0])
    if len(toks) < len(names):
        raise ToolError(f"npu-smi info: line {line_no}: {len(toks)} values for {len(names)} columns "
                        f"({' '.join(names)})")
    return dict(zip(names, toks, strict=False))


def _chip(c1: list[str], c2: list[str], h1: list[list[str]], h2: list[list[str]], n1: int, n2: int) -> ChipRow:
    first = c1[0].split(None, 1)
    if len(first) != 2 or not is_digits(first[0]):
        raise ToolError(f"npu-smi info: line {n1}: expected '<NPU id> <name>', got {c1[0]!r}")
    chip_tok = c2[0].split()
    if not chip_tok or not is_digits(chip_tok[0]):
        raise ToolError(f"npu-smi info: line {n2}: expected a chip id, got {c2[0]!r}")
    bus = c2[1].split()[0] if c2[1].split() else ""
    if not _BUS.match(bus):
        raise ToolError(f"npu-smi info: line {n2}: bus id {bus!r} is not dddd:bb:dd.f")
    health = c1[1].split()[0] if c1[1].split() else ""
    if not health:
        raise ToolError(f"npu-smi info: line {n1}: empty Health column")
    m1 = _columns(h1[2], [c1[2]], n1)
    m2 = _columns(h2[2], [c2[2]], n2)
    hbm_key = "HBM-Usage(MB)" if "HBM-Usage(MB)" in m2 else "Memory-Usage(MB)"
    if hbm_key not in m2:
        raise ToolError(f"npu-smi info: line {n2}: no HBM-Usage(MB) or Memory-Usage(MB) column")
    used, total = _pair(m2[hbm_key], hbm_key, n2)
    known = {"Power(W)", "Temp(C)", "AICore(%)", hbm_key}
    extra = {k: v for k, v in {**m1, **m2}.items() if k not in known}
    return ChipRow(
        npu_id=int(first[0]), chip_id=int(chip_tok[0]), name=first[1].strip(), health=health, bus_id=bus.upper(),
        power_w=_number(m1["Power(W)"], "Power(W)", n1), temp_c=_number(m1.get("Temp(C)", "NA"), "Temp(C)", n1),
        aicore_percent=_number(m2["AICore(%)"], "AICore(%)", n2), hbm_used_mib=used, hbm_total_mib=total,
        extra=extra,
    )


def parse_chip_map(text: str) -> dict[tuple[int, int], int]:
    """``npu-smi info -m``: (NPU id, chip id) -> chip logic id, NPU chips only."""
    out: dict[tuple[int, int], int] = {}
    seen_header = False
    for n, line in enumerate(text.splitlines(), start=1):
        toks = line.split()
        if not toks:
            continue
        if toks[:2] == ["NPU", "ID"]:
            seen_header = True
            continue
        if not seen_header:
            continue
        if len(toks) < 4 or not is_digits(toks[0]) or not is_digits(toks[1]):
            raise ToolError(f"npu-smi info -m: line {n}: expected 'NPU ID  Chip ID  Logic ID  Name'")
        if toks[2] == "-":
            continue  # MCU and other non-NPU chips
        if not is_digits(toks[2]):
            raise ToolError(f"npu-smi info -m: line {n}: logic id {toks[2]!r} is not a number")
        out[(int(toks[0]), int(toks[1]))] = int(toks[2])
    if not seen_header:
        raise ToolError("npu-smi info -m: no 'NPU ID  Chip ID' header in the output")
    return out


def parse_template_info(text: str) -> list[TemplateRow]:
    """``npu-smi info -t template-info``: the vNPU templates this chip offers."""
    lines = text.splitlines()
    header = next((i for i, ln in enumerate(lines)
                   if all(w in ln for w in ("Name", "AICORE", "Memory"))), None)
    if header is None:
        raise ToolError("npu-smi info -t template-info: no header with Name, AICORE and Memory")
    names = [t.upper() for t in _cells(lines[header])[0].split()] if "|" in lines[header] \
        else [t.upper() for t in lines[header].split()]
    sep = next((i for i in range(header, len(lines)) if "==" in lines[i]), None)
    if sep is None:
        raise ToolError("npu-smi info -t template-info: truncated output: no '==' line after the header")
    out: list[TemplateRow] = []
    for n, line in enumerate(lines[sep + 1:], start=sep + 2):
        body = line.strip().strip("|").strip()
        if not body.startswith("vir"):
            continue
        cols = dict(zip(names, body.split(), strict=False))
        try:
            mem = cols["MEMORY"].upper().removesuffix("GB")
            row = TemplateRow(name=cols["NAME"], aicore=int(cols["AICORE"]), memory_gb=int(float(mem)),
                              aicpu=int(cols["AICPU"]) if "AICPU" in cols else None)
        except (KeyError, ValueError):
            raise ToolError(f"npu-smi info -t template-info: line {n}: cannot read {body[:60]!r}") from None
        out.append(row)
    if not out:
        raise ToolError("npu-smi info -t template-info: no template rows (vir...) after the header")
    return out


def parse_vnpu_info(text: str) -> list[VnpuRow]:
    """``npu-smi info -t info-vnpu``: the vNPUs that exist on one chip."""
    lines = text.splitlines()
    header = next((i for i, ln in enumerate(lines) if "Vnpu ID" in ln and "Template" in ln), None)
    total = None
    for ln in lines:
        m = re.search(r"Total number of vnpu:\s*(\d+)", ln)
        if m:
            total = int(m.group(1))
    if total is None:
        raise ToolError("npu-smi info -t info-vnpu: no 'Total number of vnpu' line")
    if header is None:
        if total:
            raise ToolError(f"npu-smi info -t info-vnpu: {total} vNPUs announced but no vNPU table")
        return []
    out: list[VnpuRow] = []
    for n, line in enumerate(lines[header + 1:], start=header + 2):
        cells = _cells(line)
        if len(cells) < 5 or not is_digits(cells[0]):
            continue
        if cells[3] not in ("0", "1"):
            raise ToolError(f"npu-smi info -t info-vnpu: line {n}: status {cells[3]!r} is not 0 or 1")
        try:
            out.append(VnpuRow(vnpu_id=int(cells[0]), vgroup_id=int(cells[1]), container_id=cells[2],
                               in_use=cells[3] == "1", template=cells[4]))
        except ValueError:
            raise ToolError(f"npu-smi info -t info-vnpu: line {n}: cannot read {line.strip()[:60]!r}") from None
    if len(out) != total:
        raise ToolError(f"npu-smi info -t info-vnpu: truncated output: {len(out)} of {total} vNPUs listed")
    return out


def parse_status(text: str, what: str) -> str:
    """``Status : OK`` / ``Message : ...`` of an ``npu-smi set`` command; the message, or ToolError."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    status = fields.get("status")
    if status is None:
        raise ToolError(f"{what}: no 'Status :' line in the output")
    if status.upper() != "OK":
        raise ToolError(f"{what}: {status}: {fields.get('message', 'no message')}")
    return fields.get("message", "")
