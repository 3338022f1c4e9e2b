"""Is a recorded allocation exactly what the engine gives this request on those devices?

An allocation read back from annotations (HAMi's codec, :mod:`hami_hal.hami_compat.allocation`) is data whoever may
edit the pod wrote: it may name more devices than the request asks for, more memory or cores per device, devices of
another node, or cordoned ones. The engine is the one authority on fit, so the check is the engine's own fit of the
request, held to the recorded devices: on the node with nothing allocated, its slices must equal the recorded ones
(device for device, memory and cores as the request's rules compute them); on the node as it is used now, it must
still fit. Any difference is refused; nothing here changes the node.
"""

from __future__ import annotations

from collections import Counter

from ..errors import AllocationError, InputError
from ..models import (
    Device,
    DeviceSlice,
    DeviceUsage,
    FitFailure,
    FitReason,
    PodAllocation,
    PodRequest,
    ResourceRequest,
)
from .node_state import NodeState, Veto


def _field(ctr: str, word: str) -> str:
    return f"allocation container {ctr!r} {word}".rstrip()


def _held_devices(state: NodeState, pod: PodRequest, alloc: PodAllocation) -> dict[int, set[str]]:
    """``id(request) -> the devices the allocation gives it``; refuses what no fit could produce: a container or a
    family the pod does not ask for, a count unlike the request's, a device twice, of another node, or cordoned."""
    requests = {c.index: c for c in pod.containers}
    out: dict[int, set[str]] = {}
    for held in alloc.containers:
        ctr = requests.get(held.index)
        asked = {r.common_word for r in ctr.requests} if ctr else set()
        for word, n in sorted(Counter(s.common_word for s in held.slices).items()):
            if word not in asked:
                raise InputError(_field(held.name, word), f"{n} devices", "but the container requests none of them")
        uuids = [s.uuid for s in held.slices]
        for uuid in uuids:
            if uuids.count(uuid) > 1:
                raise InputError(_field(held.name, "device"), uuid, "is named twice")
            if uuid not in state.devices:
                raise InputError(_field(held.name, "device"), uuid, f"is not a device of node {state.name}")
            if uuid in state.cordoned:
                raise InputError(_field(held.name, "device"), uuid, f"is cordoned on node {state.name}")
    by_index = {c.index: c for c in alloc.containers}
    for ctr in pod.containers:
        slices = by_index[ctr.index].slices if ctr.index in by_index else []
        for req in ctr.requests:
            out[id(req)] = {s.uuid for s in slices if s.common_word == req.common_word}
            if len(out[id(req)]) != req.count:
                raise InputError(_field(ctr.name, req.common_word), f"{len(out[id(req)])} devices",
                                 f"but the container requests {req.count}")
    return out


def _only(held: dict[int, set[str]], veto: Veto | None) -> Veto:
    """A veto keeping each request to its recorded devices (``fit_pod`` hands the veto the pod's own request
    objects), then the caller's veto (the scheduler's capability gate), as at placement."""

    def only(dev: Device, usage: DeviceUsage, req: ResourceRequest, sl: DeviceSlice) -> FitFailure | None:
        if dev.uuid not in held.get(id(req), ()):
            return FitFailure(uuid=dev.uuid, reason=FitReason.CARD_UUID_MISMATCH, detail="not in the allocation")
        return veto(dev, usage, req, sl) if veto is not None else None

    return only


def _amounts(alloc: PodAllocation) -> dict[tuple[int, str], tuple[str, int, int]]:
    return {(c.index, s.uuid): (c.name, s.memory_mib, s.compute_percent) for c in alloc.containers for s in c.slices}


def check_exact(state: NodeState, pod: PodRequest, alloc: PodAllocation, veto: Veto | None = None) -> Veto:
    """Raise :class:`InputError` (the field and the value) unless ``alloc`` is exactly what ``pod`` gets on
    ``alloc``'s devices of ``state``'s node with nothing else allocated there; ``state``'s usage is not read and
    ``state`` is not changed. Returns the veto that holds each request to its recorded devices (the fit now).

    Why apart from :func:`check_replay`: the scheduler's cache asks only this of a pod not yet bound (whether its
    allocation may count as its claim at all); room on the node is the cache's own commit."""
    held = _held_devices(state, pod, alloc)
    only = _only(held, veto)
    ideal = state.empty_copy().fit_pod(pod, veto=only)
    if not ideal.ok:  # the request's own rules refuse these devices (type, health, size, sets), whatever the usage
        raise InputError(f"allocation of pod {pod.namespace}/{pod.name}", state.name, f"is refused: {ideal.reason}")
    want, have = _amounts(ideal.allocation), _amounts(alloc)
    for key, (ctr, mem, cores) in sorted(have.items()):
        _, want_mem, want_cores = want[key]  # the fit took exactly the recorded devices: counts matched, one each
        if mem != want_mem:
            raise InputError(_field(ctr, f"memory of {key[1]}"), mem, f"but the request gets {want_mem} MiB")
        if cores != want_cores:
            raise InputError(_field(ctr, f"cores of {key[1]}"), cores, f"but the request gets {want_cores} %")
    return only


def check_replay(state: NodeState, pod: PodRequest, alloc: PodAllocation, veto: Veto | None = None) -> None:
    """:func:`check_exact`, then :class:`AllocationError` if ``alloc``'s devices no longer have room for it under
    ``state``'s usage. Every pod's slices in the engine's terms; ``state`` is not changed."""
    only = check_exact(state, pod, alloc, veto)
    now = state.fit_pod(pod, veto=only)
    if not now.ok:
        raise AllocationError(f"pod {pod.namespace}/{pod.name} would over-commit node {state.name}: {now.reason}")
