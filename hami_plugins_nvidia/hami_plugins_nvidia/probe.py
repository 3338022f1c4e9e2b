"""Conformance probes: run the CUDA interposer's measurement workloads on a real GPU.

A simulated GPU never proves isolation, so simulated devices get None (the suite records
``unverified``). The interposer package is optional: without it there is no probe either.
"""

from __future__ import annotations

from hami_hal.models import Device, Level, Measurement, ProbeResult

_UNITS = {"_mib": "MiB", "_bytes": "bytes", "_percent": "%", "_pct": "%", "_ratio": "ratio", "_us": "us",
          "_ns": "ns", "_ms": "ms", "_s": "s"}


def _unit(key: str) -> str:
    return next((u for suffix, u in _UNITS.items() if key.endswith(suffix)), "")


def _to_result(behaviour_id: str, device: Device, raw: dict, call: str) -> ProbeResult:
    measurements: list[Measurement] = []
    for m in raw.get("measurements") or []:
        measurements.append(m if isinstance(m, Measurement) else Measurement(**m))
    if not measurements:
        for key, value in raw.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                measurements.append(Measurement(name=key, value=float(value), unit=_unit(key), conditions=call))
    if raw.get("level") in {lv.value for lv in Level}:
        level = Level(raw["level"])
    elif isinstance(raw.get("ok", raw.get("passed")), bool):
        level = Level.SUPPORTED if raw.get("ok", raw.get("passed")) else Level.UNSUPPORTED
    else:
        level = Level.UNVERIFIED
    evidence = [f"{call} on {device.provenance.label()}", *[str(e) for e in raw.get("evidence") or []]]
    return ProbeResult(behaviour_id=behaviour_id, level=level, evidence=evidence, measurements=measurements,
                       notes=str(raw.get("notes", "")))


def run_probe(device: Device, behaviour_id: str) -> ProbeResult | None:
    """The interposer measurement for ``behaviour_id`` on ``device``; None when there is none."""
    if device.provenance.simulated or not device.healthy:
        return None
    try:
        from .interposer import probe as iprobe
    except ImportError:
        return None
    limit = max(256, min(4096, device.memory_mib // 8))
    calls = {
        "isolation/memory-hard": ("measure_memory_isolation", (device.index, limit)),
        "isolation/memory-reported-total": ("measure_memory_isolation", (device.index, limit)),
        "isolation/compute-share": ("measure_compute_share", (device.index, 30)),
        "isolation/launch-overhead": ("measure_launch_overhead", (device.index,)),
    }
    if behaviour_id not in calls:
        return None
    name, args = calls[behaviour_id]
    fn = getattr(iprobe, name, None)
    if fn is None:
        return None
    raw = fn(*args)
    if not isinstance(raw, dict):
        return ProbeResult(behaviour_id=behaviour_id, level=Level.UNVERIFIED,
                           evidence=[f"interposer {name} returned {type(raw).__name__}, not a dict"])
    return _to_result(behaviour_id, device, raw, f"{name}{args}")
