"""Shared output: rich tables on stdout, JSON with ``--json``, one red line on stderr for errors."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.markup import escape

from ..models import NodeInventory


def console() -> Console:
    """A stdout console: no markup (data may hold brackets), wide enough for UUIDs when piped."""
    c = Console(highlight=False, markup=False)
    if not c.is_terminal:
        c = Console(highlight=False, markup=False, width=max(c.width, 160))
    return c


def error_line(message: str) -> None:
    """Print one red line to stderr; the message must already be a complete sentence."""
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(message)}", markup=True,
                                                soft_wrap=True)


def warn_line(message: str) -> None:
    Console(stderr=True, highlight=False).print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def sim_profile(inv: NodeInventory) -> str | None:
    """The simulated node profile the inventory came from, or None when it is real."""
    names = sorted({d.provenance.profile or "?" for d in inv.devices if d.provenance.simulated})
    return ",".join(names) if names else None


def source_label(inv: NodeInventory) -> str:
    """The line every table carries: ``simulated (profile X)``, ``real``, or ``no devices``."""
    if inv.source == "empty":
        return "no devices found"
    if inv.source == "simulated":
        return f"simulated (profile {sim_profile(inv)})"
    real = next((d.provenance for d in inv.devices if not d.provenance.simulated), None)
    return real.label() if real else inv.source


def skipped_lines(inv: NodeInventory) -> list[str]:
    """Why plugins contributed no real devices, once each.

    A plugin whose real backend is absent but whose simulated devices are listed gets one line saying the
    devices above are simulated and why, not a 'skipped' line that contradicts the table.
    """
    simulated = {d.vendor for d in inv.devices if d.provenance.simulated}
    lines = []
    for s in inv.skipped:
        if s.name in simulated:
            lines.append(f"{s.name}: the devices above are simulated, because the real backend is absent: {s.reason}")
        else:
            lines.append(f"skipped {s.name}: {s.reason}")
    return lines
