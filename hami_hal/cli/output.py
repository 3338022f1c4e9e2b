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
