"""GPU health: XID critical events, uncorrectable ECC, failed row remapping, fallen off the bus.

The rules follow NVIDIA's k8s-device-plugin, which HAMi reuses: every XID critical event marks the GPU
unhealthy except the application-caused ones (13, 31, 43, 45, 68, 109); a fatal XID stays until the
plugin restarts (the GPU needs a reset). Uncorrectable volatile ECC errors and a failed row remap mark
the GPU unhealthy; a pending remap is reported as an event only. NVML "GPU is lost" = fallen off the bus.
A check NVML does not support is recorded as an event, never as a failure.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from hami_hal.models import Device, HealthStatus

from .nvml_port import NvmlCode, NvmlFailure, NvmlPort

#: XIDs caused by applications, not the GPU (k8s-device-plugin's default skip list).
APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68, 109})

#: Short meanings of common XIDs (NVIDIA "XID Errors" guide) for the reason line.
XID_TEXT = {
    48: "double-bit ECC error",
    61: "internal micro-controller breakpoint/warning",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping recorded",
    64: "ECC page retirement or row remapping failure",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    119: "GSP RPC timeout",
    120: "GSP error",
}


@dataclass
class _XidState:
    fatal: dict[str, list[int]] = field(default_factory=dict)
    seen: dict[str, list[int]] = field(default_factory=dict)
    unsupported: str | None = None


_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def xid_text(xid: int) -> str:
    return f"XID {xid}: {XID_TEXT[xid]}" if xid in XID_TEXT else f"XID {xid}"


def _poll(port: NvmlPort) -> _XidState:
    state = _STATES.setdefault(port, _XidState())
    if state.unsupported:
        return state
    try:
        events = port.poll_xid_events()
    except NvmlFailure as err:
        if err.code is NvmlCode.GPU_LOST:
            return state
        state.unsupported = f"XID events not available ({err})"
        return state
    for ev in events:
        state.seen.setdefault(ev.uuid, []).append(ev.xid)
        if ev.xid not in APPLICATION_XIDS:
            state.fatal.setdefault(ev.uuid, []).append(ev.xid)
    return state


def check(port: NvmlPort, device: Device) -> HealthStatus:
    """Current health of one GPU, with the reason an operator needs."""
    if not device.healthy and device.uuid.startswith("NVIDIA-UNREADABLE-"):
        return HealthStatus(uuid=device.uuid, healthy=False, reason=device.health_reason)
    events: list[str] = []
    try:
        index = port.index_of(device.uuid)
    except NvmlFailure as err:
        if err.code is NvmlCode.GPU_LOST:
            return HealthStatus(uuid=device.uuid, healthy=False,
                                reason=f"GPU has fallen off the bus (NVML: {err})")
        return HealthStatus(uuid=device.uuid, healthy=False, reason=f"GPU not visible to NVML ({err})")
    state = _poll(port)
    if state.unsupported:
        events.append(state.unsupported)
    events += [xid_text(x) for x in state.seen.get(device.uuid, [])]
    reasons: list[str] = [xid_text(x) for x in state.fatal.get(device.uuid, [])]
    try:
        ecc = port.ecc_uncorrected_volatile(index)
        if ecc > 0:
            reasons.append(f"{ecc} uncorrectable ECC errors since the driver loaded")
    except NvmlFailure as err:
        if err.code is NvmlCode.GPU_LOST:
            return HealthStatus(uuid=device.uuid, healthy=False, reason=f"GPU has fallen off the bus ({err})")
        events.append(f"ECC: {err.code.value}")
    try:
        rows = port.remapped_rows(index)
        if rows.failure:
            reasons.append("row remapping failed (memory cannot be repaired)")
        elif rows.pending:
            events.append("row remapping pending (takes effect at the next GPU reset)")
    except NvmlFailure as err:
        if err.code is NvmlCode.GPU_LOST:
            return HealthStatus(uuid=device.uuid, healthy=False, reason=f"GPU has fallen off the bus ({err})")
        events.append(f"row remapping: {err.code.value}")
    return HealthStatus(uuid=device.uuid, healthy=not reasons, reason="; ".join(reasons) or None, events=events)
