"""Parsers for Kunlunxin's ``xpu-smi`` output: the machine table (``xpu-smi -m``) and one card's query
(``xpu-smi -i <n> -q``). Pure functions over text, shared by the real tool and the simulated one.

What is known of the formats (public scripts that read the tool; no vendor specification is public):

- ``xpu-smi -m``: one line per card, 32 whitespace-separated fields. Field 2 (1-based) is the card
  index, 18 the used memory in MiB, 19 the total memory in MiB (FlagPerf reads ``awk '{print $19}'``),
  20 the utilisation in percent. The meaning of the other fields is not public, so they are not read;
  a line with another field count is refused rather than guessed at.
- ``xpu-smi -i <n> -q``: ``Label : value`` lines. ``Driver Version`` and ``XPU-RT Version`` start at
  column 0; an indented ``Memory Usage`` block holds ``Total``/``Used``/``Free`` in MiB; ``Xpu : <n> %``,
  ``XPU Current Temp : <n> C``, ``Power Draw : <n> W``. ``Product Name``, ``Serial Number`` and
  ``Bus Id`` are the labels we assume for identity (marked so in the fixtures); unknown labels are
  ignored, a missing required one is an error.

Every error is a :class:`hami_hal.vendor_tool.ToolError` with one line naming the line or label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hami_hal.digits import is_digits
from hami_hal.vendor_tool import ToolError

MACHINE_FIELDS = 32
#: Bounds: a card has at most 1 TiB of memory; a node at most 64 cards.
MAX_MEMORY_MIB = 1 << 20
MAX_CARDS = 64


@dataclass(frozen=True)
class MachineRow:
    """One card from ``xpu-smi -m``."""

    index: int
    used_mib: int
    total_mib: int
    utilization_pct: int


@dataclass(frozen=True)
class QueryRecord:
    """One card from ``xpu-smi -i <n> -q``."""

    model: str
    serial: str
    bus_id: str
    driver_version: str
    runtime_version: str | None
    total_mib: int
    used_mib: int
    utilization_pct: int | None
    temperature_c: float | None
    power_w: float | None


def _int(text: str, where: str, hi: int) -> int:
    if not is_digits(text) or len(text) > 10:
        raise ToolError(f"xpu-smi: {where}: {text!r} is not a non-negative integer")
    value = int(text)
    if value > hi:
        raise ToolError(f"xpu-smi: {where}: {value} is above {hi}")
    return value


def parse_machine(text: str) -> list[MachineRow]:
    """Rows of ``xpu-smi -m``; refuses truncated lines, other field counts and duplicate cards."""
    rows: list[MachineRow] = []
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != MACHINE_FIELDS:
            raise ToolError(f"xpu-smi -m: line {n} has {len(fields)} fields, expected {MACHINE_FIELDS} "
                            "(unknown output format or truncated output)")
        row = MachineRow(
            index=_int(fields[1], f"-m line {n} field 2 (card index)", MAX_CARDS - 1),
            used_mib=_int(fields[17], f"-m line {n} field 18 (used MiB)", MAX_MEMORY_MIB),
            total_mib=_int(fields[18], f"-m line {n} field 19 (total MiB)", MAX_MEMORY_MIB),
            utilization_pct=_int(fields[19], f"-m line {n} field 20 (utilisation %)", 100),
        )
        if row.total_mib == 0 or row.used_mib > row.total_mib:
            raise ToolError(f"xpu-smi -m: line {n}: used {row.used_mib} MiB / total {row.total_mib} MiB is impossible")
        if any(r.index == row.index for r in rows):
            raise ToolError(f"xpu-smi -m: line {n}: card {row.index} listed twice")
        rows.append(row)
        if len(rows) > MAX_CARDS:
            raise ToolError(f"xpu-smi -m: more than {MAX_CARDS} cards")
    if not rows:
        raise ToolError("xpu-smi -m: no card listed (empty or truncated output)")
    return rows


_LABEL = re.compile(r"^(?P<indent>[ \t]*)(?P<label>[A-Za-z][A-Za-z0-9 ./()-]*?)[ \t]*:[ \t]*(?P<value>.*?)[ \t]*$")
_NUMBER_UNIT = re.compile(r"^(?P<num>\d+(?:\.\d+)?)[ \t]*(?P<unit>[A-Za-z%]*)$")


def _labels(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(top-level labels, labels inside the ``Memory Usage`` block)."""
    top: dict[str, str] = {}
    memory: dict[str, str] = {}
    in_memory = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.strip() == "Memory Usage":
            in_memory = True
            continue
        m = _LABEL.match(line)
        if m is None:
            in_memory = in_memory and line.startswith("        ")
            continue
        indent, label, value = len(m["indent"].expandtabs(4)), m["label"].strip(), m["value"]
        if in_memory and indent >= 8 and label in ("Total", "Used", "Free"):
            memory[label] = value
            continue
        in_memory = False
        top.setdefault(label, value)
    return top, memory


def _measure(value: str | None, unit: str, where: str, hi: float) -> float | None:
    if value is None or value in ("N/A", ""):
        return None
    m = _NUMBER_UNIT.match(value)
    if m is None or m["unit"] != unit:
        raise ToolError(f"xpu-smi -q: {where}: {value!r} is not a number in {unit}")
    out = float(m["num"])
    if out > hi:
        raise ToolError(f"xpu-smi -q: {where}: {out:g} {unit} is above {hi:g}")
    return out


def parse_query(text: str) -> QueryRecord:
    """One card's ``xpu-smi -i <n> -q``."""
    top, memory = _labels(text)

    def need(label: str) -> str:
        value = top.get(label)
        if not value:
            raise ToolError(f"xpu-smi -q: label {label!r} missing (unknown output format or truncated output)")
        if len(value) > 128:
            raise ToolError(f"xpu-smi -q: {label}: value longer than 128 characters")
        return value

    for label in ("Total", "Used"):
        if label not in memory:
            raise ToolError(f"xpu-smi -q: 'Memory Usage' block lacks {label!r} (truncated output?)")
    total = _measure(memory["Total"], "MiB", "Memory Usage/Total", MAX_MEMORY_MIB)
    used = _measure(memory["Used"], "MiB", "Memory Usage/Used", MAX_MEMORY_MIB)
    if not total or used is None or used > total:
        raise ToolError(f"xpu-smi -q: memory used {memory['Used']!r} of total {memory['Total']!r} is impossible")
    util = _measure(top.get("Xpu"), "%", "Xpu", 100)
    return QueryRecord(
        model=need("Product Name"), serial=need("Serial Number"), bus_id=need("Bus Id"),
        driver_version=need("Driver Version"), runtime_version=top.get("XPU-RT Version") or None,
        total_mib=int(total), used_mib=int(used), utilization_pct=None if util is None else int(util),
        temperature_c=_measure(top.get("XPU Current Temp"), "C", "XPU Current Temp", 200),
        power_w=_measure(top.get("Power Draw"), "W", "Power Draw", 5000),
    )
