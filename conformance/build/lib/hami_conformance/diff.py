"""What changed between two matrices (two runs, two plugin versions, two suite versions)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hami_hal.models import CapabilityMatrix, DeviceModelEntry

from .levels import direction
from .targets import meets_target


@dataclass(frozen=True)
class Change:
    kind: str  # row-added, row-removed, cell-added, cell-removed, level, measurement, version
    row: str
    behaviour: str | None
    before: str | None
    after: str | None
    #: better, worse, changed or info
    direction: str

    def as_dict(self) -> dict:
        return asdict(self)


def _key(e: DeviceModelEntry) -> tuple[str, str, str, str]:
    p = e.provenance
    return (e.vendor, e.model, p.source, (p.profile or "") if p.simulated else "")


def _name(key: tuple[str, str, str, str]) -> str:
    vendor, model, source, profile = key
    return f"{vendor} {model} [{source}{' ' + profile if profile else ''}]"


#: Relative change below which a figure counts as noise (timings vary run to run).
NOISE = 0.10


def _small(a: float, b: float) -> bool:
    scale = max(abs(a), abs(b))
    return scale == 0 or abs(a - b) / scale < NOISE


def diff_matrices(a: CapabilityMatrix, b: CapabilityMatrix) -> list[Change]:
    """Changes from ``a`` to ``b``, row by row and cell by cell."""
    out: list[Change] = []
    rows_a = {_key(e): e for e in a.entries}
    rows_b = {_key(e): e for e in b.entries}
    for k in rows_a.keys() - rows_b.keys():
        out.append(Change("row-removed", _name(k), None, rows_a[k].plugin_version, None, "changed"))
    for k in rows_b.keys() - rows_a.keys():
        out.append(Change("row-added", _name(k), None, None, rows_b[k].plugin_version, "changed"))
    for k in [k for k in rows_a if k in rows_b]:
        ea, eb = rows_a[k], rows_b[k]
        row = _name(k)
        if (ea.plugin_version, ea.provenance.driver_version) != (eb.plugin_version, eb.provenance.driver_version):
            out.append(Change("version", row, None, f"{ea.plugin} {ea.plugin_version} / driver "
                              f"{ea.provenance.driver_version}", f"{eb.plugin} {eb.plugin_version} / driver "
                              f"{eb.provenance.driver_version}", "info"))
        ids = list(dict.fromkeys([c.id for c in ea.capabilities] + [c.id for c in eb.capabilities]))
        for cid in ids:
            ca, cb = ea.cell(cid), eb.cell(cid)
            if ca is None:
                out.append(Change("cell-added", row, cid, None, cb.level.value, "changed"))
                continue
            if cb is None:
                out.append(Change("cell-removed", row, cid, ca.level.value, None, "changed"))
                continue
            if ca.level != cb.level:
                out.append(Change("level", row, cid, ca.level.value, cb.level.value, direction(ca.level, cb.level)))
            ma = {m.name: m for m in ca.measurements}
            for m in cb.measurements:
                old = ma.get(m.name)
                if old is None or (old.value == m.value and old.unit == m.unit):
                    continue
                was, now = meets_target(old), meets_target(m)
                if old.unit == m.unit and was == now and _small(old.value, m.value):
                    continue
                d = "worse" if (was, now) == (True, False) else "better" if (was, now) == (False, True) else "changed"
                out.append(Change("measurement", row, f"{cid} {m.name}", f"{old.value:g} {old.unit}",
                                  f"{m.value:g} {m.unit}", d))
    return out
