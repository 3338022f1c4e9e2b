"""Per-container usage from the interposer's region files in the container's shared-state folder.

The node agent creates the folder (``<root>/<podUID>_<container>``), this plugin's edits mount it at
``<hook>/vgpu``, and the interposer inside the container writes ``<random>.cache`` there
(``CUDA_DEVICE_MEMORY_SHARED_CACHE``). The region indexes devices in the container's order
(``NVIDIA_VISIBLE_DEVICES``), which is the slice order the agent passes as ``device_uuids``.
A file that is not one of our regions (HAMi-core's, corrupt, another version) is skipped.
"""

from __future__ import annotations

import time
from pathlib import Path

from hami_hal.models import MetricSample

#: At most this many region files are read per container (one per container is normal).
MAX_REGION_FILES = 8


def _regions(state_dir: Path) -> list:
    try:
        from .interposer.region import RegionError, SharedRegion
    except ImportError:  # cffi missing: the interposer cannot be read on this node
        return []
    out = []
    try:
        files = sorted(p for p in state_dir.glob("*.cache")
                       if not p.is_symlink() and p.is_file())[:MAX_REGION_FILES]
    except OSError:
        return []
    for path in files:
        try:
            out.append(SharedRegion(path))
        except (RegionError, OSError, ValueError):
            continue
    return out


def _last_launch_ns(region, index: int) -> int:
    # The region's device record holds the CLOCK_MONOTONIC time of the last throttled launch
    # (csrc/hami_region.h, hami_device_info.last_launch_ns); SharedRegion has no accessor for it.
    return int(region._r.dev[index].last_launch_ns)  # noqa: SLF001


def container_samples(state_dir: Path, device_uuids: list[str]) -> list[MetricSample]:
    """Samples per container device: memory used/limit (bytes), core limit (ratio), busy and
    last-kernel age (seconds), each labelled with the container's device index."""
    regions = _regions(Path(state_dir))
    if not regions:
        return []
    out: list[MetricSample] = []
    now = time.monotonic_ns()
    try:
        first = regions[0]
        limits, sms = first.limits(), first.sm_limits()
        for i, uuid in enumerate(device_uuids[: len(limits)]):
            labels = {"vdevice_index": str(i)}

            def add(name: str, value: float, unit: str, uuid: str = uuid, labels: dict = labels) -> None:
                out.append(MetricSample(name=name, value=float(value), unit=unit, device_uuid=uuid,
                                        scope="allocation", labels=labels))

            add("memory_used", sum(r.usage(i) for r in regions), "bytes")
            if limits[i]:
                add("memory_limit", limits[i], "bytes")
            sm = sms[i] if 0 < sms[i] <= 100 else 100
            add("core_limit", sm / 100, "ratio")
            add("busy", sum(r.busy_ns(i) for r in regions) / 1e9, "seconds")
            last = max(_last_launch_ns(r, i) for r in regions)
            if last > 0:
                add("last_kernel_age", max(0, now - last) / 1e9, "seconds")
    finally:
        for r in regions:
            r.close()
    return out
