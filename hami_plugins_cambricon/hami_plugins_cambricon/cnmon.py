"""Parser for Cambricon's ``cnmon info`` (all cards). A pure function over text, shared by the real and the
simulated tool.

What is known of the format (public scripts that read it; no vendor specification is public):
``Label : value`` lines; ``Product Name`` (``cnmon info -c 0 | grep "Product Name"``) and
``DDR ECC Err Count`` (``N/A`` when inline ECC is off) are read by public scripts. The per-card header
``Card <n>``, the labels ``UUID``, ``Driver Version``, ``Bus ID`` and the indented ``Physical Memory Usage``
block (``Total``/``Used`` in MiB) are our assumptions, marked so in the fixture. Unknown labels are
ignored; a missing required one is an error naming it. Every error is a
:class:`hami_hal.vendor_tool.ToolError` with one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hami_hal.digits import is_digits
from hami_hal.vendor_tool import ToolError

MAX_CARDS = 64
MAX_MEMORY_MIB = 1 << 20
_CARD = re.compile(r"^Card\s+(\d+)\s*$")
_LABEL = re.compile(r"^(?P<indent>[ \t]*)(?P<label>[A-Za-z][A-Za-z0-9 ./()-]*?)[ \t]*:[ \t]*(?P<value>.*?)[ \t]*$")
_MIB = re.compile(r"^(\d+)\s*MiB$")


@dataclass(frozen=True)
class CardInfo:
    index: int
    model: str
    uuid: str
    bus_id: str
    driver_version: str
    total_mib: int
    used_mib: int
    ecc_errors: int | None


def _blocks(text: str) -> list[tuple[int, dict[str, str]]]:
    cards: list[tuple[int, dict[str, str]]] = []
    current: dict[str, str] | None = None
    block, block_indent = "", -1
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if m := _CARD.match(line.strip()):
            idx = int(m[1])
            if idx >= MAX_CARDS or any(i == idx for i, _ in cards):
                raise ToolError(f"cnmon info: line {n}: Card {idx} repeated or out of range")
            current = {}
            cards.append((idx, current))
            block, block_indent = "", -1
            continue
        m = _LABEL.match(line)
        if m is None:
            continue
        if current is None:
            raise ToolError(f"cnmon info: line {n}: {m['label'].strip()!r} before any 'Card <n>' header")
        indent = len(m["indent"].expandtabs(4))
        label, value = m["label"].strip(), m["value"]
        if indent <= block_indent:
            block, block_indent = "", -1
        if not value:
            block, block_indent = label, indent
            continue
        current.setdefault(f"{block}/{label}" if block else label, value)
    return cards


def parse_info(text: str) -> list[CardInfo]:
    """Every card of ``cnmon info``, in index order."""
    cards = _blocks(text)
    if not cards:
        raise ToolError("cnmon info: no 'Card <n>' section (empty or truncated output)")
    out = []
    for idx, fields in cards:
        def need(key: str, _idx: int = idx, _fields: dict = fields) -> str:
            value = _fields.get(key)
            if not value:
                raise ToolError(f"cnmon info: Card {_idx}: {key!r} missing (unknown output format or truncated output)")
            if len(value) > 128:
                raise ToolError(f"cnmon info: Card {_idx}: {key} longer than 128 characters")
            return value

        def mib(key: str, _idx: int = idx) -> int:
            raw = need(key)
            m = _MIB.match(raw)
            if m is None or int(m[1]) > MAX_MEMORY_MIB:
                raise ToolError(f"cnmon info: Card {_idx}: {key} {raw!r} is not a size in MiB up to {MAX_MEMORY_MIB}")
            return int(m[1])

        total, used = mib("Physical Memory Usage/Total"), mib("Physical Memory Usage/Used")
        if total == 0 or used > total:
            raise ToolError(f"cnmon info: Card {idx}: memory used {used} of total {total} MiB is impossible")
        ecc_raw = fields.get("DDR ECC Err Count", "N/A")
        if ecc_raw != "N/A" and not (is_digits(ecc_raw) and len(ecc_raw) < 10):
            raise ToolError(f"cnmon info: Card {idx}: DDR ECC Err Count {ecc_raw!r} is not a count or N/A")
        out.append(CardInfo(
            index=idx, model=need("Product Name"), uuid=need("UUID"), bus_id=need("Bus ID"),
            driver_version=need("Driver Version"), total_mib=total, used_mib=used,
            ecc_errors=None if ecc_raw == "N/A" else int(ecc_raw),
        ))
    return sorted(out, key=lambda c: c.index)
