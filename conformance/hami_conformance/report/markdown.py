"""The matrix as a Markdown table: behaviours as rows (they are many), device models as columns."""

from __future__ import annotations

from hami_hal.models import CapabilityMatrix

from ..musts import must_status
from ..targets import describe
from .common import SYMBOL, columns, row_title


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(matrix: CapabilityMatrix) -> str:
    md = matrix.metadata
    lines = [
        "# hami-hal capability matrix",
        "",
        f"Generated {md.generated_at:%Y-%m-%d %H:%M UTC} by {md.generator} {md.generator_version} "
        f"(suite {md.suite_version}).",
        "",
    ]
    if not matrix.entries:
        return "\n".join(lines + ["No device was tested.", ""])
    lines += ["| # | Device model | Plugin | Provenance | Nodes | MUST behaviours |", "|---|---|---|---|---|---|"]
    for i, e in enumerate(matrix.entries, 1):
        flag = "**SIMULATED**" if e.provenance.simulated else "**REAL**"
        lines.append(f"| {i} | {_esc(row_title(e))} | {e.plugin} {e.plugin_version} | "
                     f"{flag} {_esc(e.provenance.label())} | {_esc(', '.join(e.nodes))} | "
                     f"{_esc(must_status(e).text())} |")
    lines += ["", "Legend: " + " · ".join(f"{s} {lv.value}" for lv, s in SYMBOL.items()), ""]
    cols = columns(matrix)
    header = "| Behaviour | Req | " + " | ".join(f"#{i}" for i in range(1, len(matrix.entries) + 1)) + " |"
    lines += [header, "|---|---|" + "---|" * len(matrix.entries)]
    for cid in cols:
        req = next((c.requirement.value for e in matrix.entries if (c := e.cell(cid))), "")
        cells = []
        for e in matrix.entries:
            c = e.cell(cid)
            if c is None:
                cells.append(" ")
                continue
            figs = "; ".join(describe(m) for m in c.measurements)
            shown = " (injected fault)" if c.injected else ""
            cells.append(f"{SYMBOL[c.level]} {c.level.value}{shown}" + (f"<br>{_esc(figs)}" if figs else ""))
        lines.append(f"| `{cid}` | {req} | " + " | ".join(cells) + " |")
    lines += ["", "## Evidence", ""]
    for i, e in enumerate(matrix.entries, 1):
        lines.append(f"### #{i} {_esc(e.vendor)} {_esc(e.model)} ({_esc(e.provenance.label())})")
        lines.append("")
        for c in e.capabilities:
            lines.append(f"- `{c.id}` {SYMBOL[c.level]} **{c.level.value}** ({c.requirement.value})"
                         + (f": {_esc(c.notes)}" if c.notes else ""))
            for ev in c.evidence:
                lines.append(f"  - {_esc(ev)}")
            for m in c.measurements:
                lines.append(f"  - 📏 {_esc(describe(m))}" + (f" — {_esc(m.conditions)}" if m.conditions else ""))
            if c.injected:  # kept apart: not evidence from this row's devices
                lines.append(f"  - injected fault on simulated profile {_esc(c.injected.profile)} "
                             f"(not real-device evidence): {c.injected.level.value}")
                for ev in c.injected.evidence:
                    lines.append(f"    - {_esc(ev)}")
        lines.append("")
    return "\n".join(lines)
