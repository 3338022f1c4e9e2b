"""How a cell becomes a test outcome when the suite runs inside pytest (a vendor's own CI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hami_hal.models import CapabilityResult, DeviceModelEntry, Level, Requirement

from .targets import describe

Outcome = Literal["pass", "fail", "skip", "xfail"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str


def explain(entry: DeviceModelEntry, cell: CapabilityResult) -> str:
    lines = [f"{cell.id} ({cell.requirement.value}) on {entry.vendor} {entry.model} "
             f"[{entry.provenance.label()}]: {cell.level.value}"]
    if cell.notes:
        lines.append(f"  notes: {cell.notes}")
    lines += [f"  - {e}" for e in cell.evidence]
    lines += [f"  - {describe(m)}" for m in cell.measurements]
    return "\n".join(lines)


def verdict(entry: DeviceModelEntry, cell: CapabilityResult, expected: Level | None = None) -> Verdict:
    """MUST not met fails; SHOULD/MAY not met is an expected failure; unverified is skipped.

    ``expected`` pins a level the vendor declared (a known gap or a probe-only capability); a cell that
    differs from it fails either way, so a silent improvement is noticed as well as a regression.
    """
    text = explain(entry, cell)
    if expected is not None:
        return Verdict("pass", text) if cell.level is expected else Verdict(
            "fail", f"expected {expected.value}, got {cell.level.value}\n{text}")
    if cell.level in (Level.SUPPORTED, Level.NOT_APPLICABLE):
        return Verdict("pass", text)
    if cell.level is Level.UNVERIFIED:
        return Verdict("skip", text.replace("\n", " "))
    if cell.requirement is Requirement.MUST:
        return Verdict("fail", text)
    return Verdict("xfail", text.replace("\n", " "))
