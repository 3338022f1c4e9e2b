"""HAMi's node monitor, computed at scrape time: host series from the plugins' device metrics and
per-container series from what each container's isolation layer recorded in its state folder.

Which containers exist, and who they belong to, comes from the node agent's state records (written at
``Allocate``), so namespace/pod/container labels never depend on anything the container can write.
Utilization per container is the growth of the recorded busy time between two scrapes, divided by the
wall time between them; a container's first scrape therefore has no utilization series yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..manager import Hal
from ..models import Device, MetricSample
from . import hami_names as H
from .families import Families

try:
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError:  # pragma: no cover - prometheus-client comes with hami-hal[node]
    Collector = object  # type: ignore[assignment,misc]
    GaugeMetricFamily = None  # type: ignore[assignment,misc]


#: HAMi labels ``device_uuid`` with the first 40 characters of the UUID.
UUID_CHARS = 40


class ContainerSource:
    """One allocated container: labels and, per vendor, its devices and state folder."""

    def __init__(self, namespace: str, pod: str, container: str, folder: Path, devices: dict[str, list[str]],
                 partitions: dict[str, list[dict]] | None = None) -> None:
        self.namespace, self.pod, self.container, self.folder = namespace, pod, container, folder
        self.devices = devices
        self.partitions = partitions or {}


class NodeMonitorCollector(Collector):
    def __init__(self, hal: Hal, node: str, devices: Callable[[], list[Device]],
                 containers: Callable[[], Iterable[ContainerSource]], legacy: bool = False) -> None:
        if GaugeMetricFamily is None:
            from ..errors import HalError

            raise HalError("prometheus-client is not installed (pip install 'hami-hal[node]')")
        self.hal = hal
        self.node = node
        self.devices = devices
        self.containers = containers
        self.legacy = legacy
        self._busy: dict[tuple[str, str, str, str], tuple[float, float]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        fams = Families(self.legacy)
        self._host(fams)
        self._containers(fams)
        fams.add_build_info()
        yield from fams

    def _host(self, fams: Families) -> None:
        for d in self.devices():
            try:
                samples = self.hal.device_metrics(d)
            except Exception:  # noqa: BLE001 - one unreadable device must not fail the scrape
                continue
            uuid = d.uuid[:UUID_CHARS]
            labels = [self.node, str(d.index), uuid, d.hami_type]
            for s in samples:
                if s.name == "memory_used" and s.unit == "bytes":
                    fams.add(H.HOST_MEMORY_USED, labels, s.value)
                elif s.name == "utilization" and s.unit == "ratio":
                    fams.add(H.HOST_UTILIZATION, labels, s.value * 100)
                elif s.name == "memory_utilization" and s.unit == "ratio":
                    fams.add(H.HOST_MEMORY_CONTROLLER, labels[1:], s.value * 100)

    def _containers(self, fams: Families) -> None:
        now = time.monotonic()
        seen: set[tuple[str, str, str, str]] = set()
        for c in self.containers():
            for vendor, uuids in sorted(c.devices.items()):
                try:
                    samples = self.hal.container_usage(vendor, c.folder, uuids)
                except Exception:  # noqa: BLE001
                    samples = []
                for s in samples:
                    self._container_sample(fams, c, s, now, seen)
                for h in c.partitions.get(vendor, []):
                    self._mig(fams, c, uuids, h)
        self._busy = {k: v for k, v in self._busy.items() if k in seen}

    def _container_sample(self, fams: Families, c: ContainerSource, s: MetricSample, now: float,
                          seen: set) -> None:
        vidx = s.labels.get("vdevice_index", "0")
        labels = [c.namespace, c.pod, c.container, vidx, s.device_uuid[:UUID_CHARS]]
        if s.name == "memory_used":
            fams.add(H.VGPU_MEMORY_USED, labels, s.value)
            fams.add(H.CTR_DEVICE_MEMORY, labels, s.value)
        elif s.name == "memory_limit":
            fams.add(H.VGPU_MEMORY_LIMIT, labels, s.value)
        elif s.name == "last_kernel_age":
            fams.add(H.CTR_LAST_KERNEL, labels, s.value)
        elif s.name == "busy" and s.unit == "seconds":
            key = (c.namespace, c.pod, c.container, f"{vidx}/{s.device_uuid}")
            seen.add(key)
            prev = self._busy.get(key)
            self._busy[key] = (now, s.value)
            if prev is not None and now > prev[0] and s.value >= prev[1]:
                fams.add(H.CTR_UTILIZATION, labels, min(100.0, 100 * (s.value - prev[1]) / (now - prev[0])))

    def _mig(self, fams: Families, c: ContainerSource, uuids: list[str], h: dict) -> None:
        handle = h.get("handle") or {}
        if not handle.get("migUUID"):
            return
        uuid = str(h.get("uuid", ""))
        vidx = str(uuids.index(uuid)) if uuid in uuids else "0"
        base = [c.namespace, c.pod, c.container, vidx, uuid[:UUID_CHARS]]
        extra = [str(handle.get("migUUID")), str(handle.get("profile", "")), str(handle.get("gpuInstanceID", "")),
                 str(handle.get("computeInstanceID", ""))]
        fams.add(H.MIG_DEVICE_INFO, base + extra, 1, base + [str(handle.get("gpuInstanceID", ""))])
