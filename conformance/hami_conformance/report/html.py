"""A static, self-contained HTML page a person can read at a glance.

Behaviours are rows, device models columns; each cell is coloured by level, shows its figures, carries the
evidence as a tooltip and in a fold-out below. Provenance is a banner per row: simulated rows can never
be mistaken for hardware results.
"""

from __future__ import annotations

from html import escape

from hami_hal.models import CapabilityMatrix, DeviceModelEntry, Level

from ..catalogue import default_catalogue
from ..musts import must_status
from ..targets import describe, meets_target
from .common import columns, row_title

#: Glyphs present in common fonts (DejaVu, Liberation); emoji fonts are often missing on servers.
GLYPH = {Level.SUPPORTED: "✓", Level.PARTIAL: "◐", Level.UNSUPPORTED: "✗", Level.UNVERIFIED: "?",
         Level.NOT_APPLICABLE: "–"}

CSS = """
:root { --ok:#1a7f37; --ok-bg:#dafbe1; --part:#9a6700; --part-bg:#fff3bf; --bad:#cf222e; --bad-bg:#ffebe9;
        --unv:#57606a; --unv-bg:#eaeef2; --na:#8c959f; --na-bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 22px; margin: 0 0 4px; }
.meta { color: #57606a; margin-bottom: 16px; }
.banner { border-radius: 6px; padding: 10px 14px; margin: 6px 0; font-weight: 600; }
.banner.simulated { background: #fff3bf; border: 2px solid #d4a72c; color: #6b4c00; }
.banner.real { background: #dafbe1; border: 2px solid #1a7f37; color: #0f5323; }
.banner small { font-weight: 400; display: block; }
.legend { margin: 14px 0; display: flex; gap: 10px; flex-wrap: wrap; }
.legend span { padding: 2px 10px; border-radius: 10px; font-size: 12px; }
table.matrix { border-collapse: collapse; width: 100%; table-layout: fixed; }
table.matrix th, table.matrix td { border: 1px solid #d0d7de; padding: 6px 8px; vertical-align: top; }
table.matrix thead th { background: #f6f8fa; text-align: left; font-size: 13px; }
table.matrix thead th .prov { font-weight: 400; font-size: 11px; display: block; color: #57606a; }
table.matrix thead th .tag { font-size: 10px; padding: 1px 6px; border-radius: 8px; color: #fff; }
.tag.simulated { background: #bf8700; } .tag.real { background: #1a7f37; }
th.behaviour { width: 300px; background: #fff; text-align: left; font-weight: 400; }
th.behaviour code { font-weight: 600; font-size: 12.5px; }
th.behaviour .req { font-size: 10px; border-radius: 6px; padding: 0 5px; margin-left: 4px; border: 1px solid #8c959f; }
th.behaviour .title { display: block; color: #57606a; font-size: 12px; }
td.cell { font-size: 12px; }
td.cell .lvl { font-weight: 700; font-size: 12.5px; }
td.level-supported { background: var(--ok-bg); } td.level-supported .lvl { color: var(--ok); }
td.level-partial { background: var(--part-bg); } td.level-partial .lvl { color: var(--part); }
td.level-unsupported { background: var(--bad-bg); } td.level-unsupported .lvl { color: var(--bad); }
td.level-unverified { background: var(--unv-bg); } td.level-unverified .lvl { color: var(--unv); }
td.level-not-applicable { background: var(--na-bg); } td.level-not-applicable .lvl { color: var(--na); }
td.missing { background: #fff; color: #8c959f; }
ul.figs { margin: 4px 0 0; padding-left: 16px; }
ul.figs li.miss { color: var(--bad); }
details { margin-top: 4px; } summary { cursor: pointer; color: #0969da; font-size: 11.5px; }
details ul { margin: 4px 0 0; padding-left: 16px; color: #3d444d; }
.notes { font-style: italic; color: #3d444d; }
.why { color: #82071e; margin-top: 2px; }
footer { margin-top: 20px; color: #57606a; font-size: 12px; }
"""


def _banners(matrix: CapabilityMatrix) -> str:
    """One banner for every simulated row together, one per real provenance: simulation can't be missed."""
    sims = [(i, e) for i, e in enumerate(matrix.entries, 1) if e.provenance.simulated]
    reals: dict[str, list[tuple[int, DeviceModelEntry]]] = {}
    for i, e in enumerate(matrix.entries, 1):
        if not e.provenance.simulated:
            reals.setdefault(e.provenance.label(), []).append((i, e))
    out = []
    for label, rows in reals.items():
        which = "; ".join(f"#{i} {escape(e.vendor)} {escape(e.model)} ×{e.device_count}" for i, e in rows)
        nodes = ", ".join(dict.fromkeys(n for _, e in rows for n in e.nodes))
        ids = " ".join(str(i) for i, _ in rows)
        out.append(f'<div class="banner real" data-entries="{ids}">REAL HARDWARE — {escape(label)}'
                   f"<small>{which} on {escape(nodes)}: measured on this hardware.</small></div>")
    if sims:
        profiles = "; ".join(f"#{i} {escape(e.model)} ×{e.device_count} (profile {escape(e.provenance.profile or '?')})"
                             for i, e in sims)
        ids = " ".join(str(i) for i, _ in sims)
        names = ", ".join(dict.fromkeys(escape(e.provenance.profile or "?") for _, e in sims))
        out.append(
            f'<div class="banner simulated" data-entries="{ids}">SIMULATED — profile{"s" if len(sims) > 1 else ""} '
            f"{names}<small>{profiles}.<br>These rows come from simulated hardware through each plugin's fake "
            "SDK; isolation accuracy cannot be verified there. Never read them as hardware results.</small></div>")
    return "".join(out)


def _cell(e: DeviceModelEntry, cid: str, i: int) -> str:
    c = e.cell(cid)
    if c is None:
        return f'<td class="cell missing" data-entry="{i}">not run</td>'
    level = c.level.value
    tip = "\n".join([*c.evidence, *(f"{describe(m)} — {m.conditions}" if m.conditions else describe(m)
                                    for m in c.measurements)]) or level
    parts = [f'<span class="lvl">{GLYPH[c.level]} {escape(level)}</span>']
    if c.measurements:
        items = []
        for m in c.measurements:
            cls = ' class="miss"' if meets_target(m) is False else ""
            items.append(f'<li{cls} title="{escape(m.conditions)}">{escape(describe(m))}</li>')
        parts.append(f'<ul class="figs">{"".join(items)}</ul>')
    if c.notes:
        parts.append(f'<div class="notes">{escape(c.notes)}</div>')
    if c.level in (Level.UNSUPPORTED, Level.PARTIAL) and c.evidence:
        why = c.evidence[0] if len(c.evidence[0]) <= 110 else c.evidence[0][:107] + "…"
        parts.append(f'<div class="why">{escape(why)}</div>')
    if c.evidence:
        evs = "".join(f"<li>{escape(ev)}</li>" for ev in c.evidence)
        parts.append(f"<details><summary>evidence ({len(c.evidence)})</summary><ul>{evs}</ul></details>")
    return (f'<td class="cell level-{level}" data-entry="{i}" data-level="{level}" '
            f'title="{escape(tip)}">{"".join(parts)}</td>')


def render_html(matrix: CapabilityMatrix) -> str:
    cat = default_catalogue()
    md = matrix.metadata
    cols = columns(matrix, cat)
    banners = _banners(matrix)
    legend = "".join(f'<span class="legend-item level-{lv.value}" style="background:var(--{_var(lv)}-bg)">'
                     f"{GLYPH[lv]} {lv.value}</span>" for lv in Level)
    head = "".join(
        f'<th data-entry="{i}">#{i} {escape(row_title(e))}'
        f'<span class="prov"><span class="tag {"simulated" if e.provenance.simulated else "real"}">'
        f'{"SIMULATED" if e.provenance.simulated else "REAL"}</span> {escape(_short(e))}</span>'
        f'<span class="prov">{escape(e.plugin)} {escape(e.plugin_version)}</span>'
        f'<span class="prov">{escape(must_status(e).text())}</span></th>'
        for i, e in enumerate(matrix.entries, 1)
    )
    rows = []
    for cid in cols:
        b = cat.get(cid)
        req = next((c.requirement.value for e in matrix.entries if (c := e.cell(cid))), "")
        title = escape(b.title) if b else "(not in this suite's catalogue)"
        desc = escape(b.description) if b else ""
        cells = "".join(_cell(e, cid, i) for i, e in enumerate(matrix.entries, 1))
        rows.append(f'<tr data-behaviour="{escape(cid)}"><th class="behaviour" title="{desc}">'
                    f'<code>{escape(cid)}</code><span class="req">{req}</span>'
                    f'<span class="title">{title}</span></th>{cells}</tr>')
    body = (f'<table class="matrix"><thead><tr><th class="behaviour">Behaviour</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>') if matrix.entries else "<p>No device was tested.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hami-hal capability matrix</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>hami-hal capability matrix</h1>
<div class="meta">Generated {md.generated_at:%Y-%m-%d %H:%M UTC} by {escape(md.generator)} {escape(md.generator_version)}
 · suite {escape(md.suite_version)} · {len(matrix.entries)} device model(s)</div>
<section class="provenance">{banners}</section>
<div class="legend">{legend}</div>
{body}
<footer>Each cell's evidence is in its tooltip and under “evidence”. Figures show their unit and target;
a figure that misses its target is red. Unverified = no probe could prove it on this device.</footer>
</body></html>
"""


def _short(e: DeviceModelEntry) -> str:
    p = e.provenance
    return f"profile {p.profile or '?'}" if p.simulated else p.label().removeprefix("real: ")


def _var(lv: Level) -> str:
    return {Level.SUPPORTED: "ok", Level.PARTIAL: "part", Level.UNSUPPORTED: "bad", Level.UNVERIFIED: "unv",
            Level.NOT_APPLICABLE: "na"}[lv]
