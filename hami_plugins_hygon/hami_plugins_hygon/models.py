"""Hygon DCU models: compute units and PCI device ids (``dcu-dcgm:pkg/dcgm/structs.go``).

hy-smi's "Card Series" can be empty (K100), so the model falls back to the PCI device id.
"""

from __future__ import annotations

#: Compute units per model (dcu-dcgm structs.go:642).
COMPUTE_UNITS = {
    "K100_AI": 120,
    "K100_LC_AI": 120,
    "K100_LC_E_AI": 128,
    "K100": 120,
    "Z100": 60,
    "Z100L": 60,
}

#: PCI device id (lower-case hex, no 0x) -> model.
DEVICE_IDS = {"6210": "K100_AI", "54b7": "Z100", "55b7": "Z100L", "62b7": "K100"}


def model_name(series: str | None, device_id: str | None) -> str | None:
    """The model from hy-smi's Card Series, else from the device id; None when neither says."""
    s = (series or "").strip()
    if s:
        up = s.upper().replace("-", "_").replace(" ", "_")
        for name in sorted(COMPUTE_UNITS, key=len, reverse=True):
            if up == name or up.endswith("_" + name) or up.endswith(name):
                return name
        return s
    did = (device_id or "").strip().lower().removeprefix("0x")
    return DEVICE_IDS.get(did)
