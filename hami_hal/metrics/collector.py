"""A prometheus-client custom collector that asks the plugins for metrics at scrape time.

No module-global gauges and no state between scrapes (Prometheus "writing exporters" rules): every
scrape calls ``hami_hal_device_metrics`` / ``hami_hal_allocation_metrics`` per device and builds fresh
metric families. One failing vendor never fails the scrape: it is reported through
``hami_hal_scrape_backend_success{vendor}``. ``hami_hal_device_info`` carries the provenance, so a
simulated device is visibly simulated in every dashboard.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..errors import HalError
from ..manager import Hal
from ..models import Device, MetricSample, NodeInventory
from .naming import COUNTER_UNITS, PREFIX, metric_name

try:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError:  # pragma: no cover - prometheus-client is optional for the core
    Collector = object  # type: ignore[assignment,misc]
    CounterMetricFamily = GaugeMetricFamily = None  # type: ignore[assignment,misc]

DEVICE_LABELS = ("vendor", "model", "device_uuid", "device_index")


def _device_labels(dev: Device) -> dict[str, str]:
    return {"vendor": dev.vendor, "model": dev.model, "device_uuid": dev.uuid, "device_index": str(dev.index)}


class HalCollector(Collector):
    """Collects every plugin's device and allocation metrics for the devices of ``inventory``."""

    def __init__(self, hal: Hal, inventory: NodeInventory) -> None:
        if GaugeMetricFamily is None:
            raise HalError("prometheus-client is not installed (pip install prometheus-client)")
        self.hal = hal
        self.inventory = inventory

    def samples(self) -> tuple[list[tuple[Device, MetricSample]], dict[str, tuple[bool, float]]]:
        """One round of hook calls: (device, sample) pairs and per-vendor (success, seconds)."""
        pairs: list[tuple[Device, MetricSample]] = []
        status: dict[str, tuple[bool, float]] = {}
        for vendor in sorted({d.vendor for d in self.inventory.devices}):
            start, ok, got = time.perf_counter(), True, []
            try:
                for dev in (d for d in self.inventory.devices if d.vendor == vendor):
                    got += [(dev, s) for s in self.hal.device_metrics(dev)]
                    got += [(dev, s) for s in self.hal.allocation_metrics(dev)]
            except Exception:  # noqa: BLE001 - a broken backend is reported, not raised
                ok, got = False, []
            pairs += got
            status[vendor] = (ok, time.perf_counter() - start)
        return pairs, status

    def collect(self) -> Iterator:
        pairs, status = self.samples()
        info = GaugeMetricFamily(f"{PREFIX}_device_info", "Device identity and provenance (1 per device).",
                                 labels=[*DEVICE_LABELS, "hami_type", "mode", "source", "profile"])
        for d in self.inventory.devices:
            info.add_metric([*_device_labels(d).values(), d.hami_type, d.mode, d.provenance.source,
                             d.provenance.profile or ""], 1)
        yield info
        families: dict[str, list[tuple[Device, MetricSample]]] = {}
        for dev, s in pairs:
            families.setdefault(metric_name(s), []).append((dev, s))
        for name, items in sorted(families.items()):
            extra = sorted({k for _, s in items for k in s.labels if k not in DEVICE_LABELS})
            labels = [*DEVICE_LABELS, *extra]
            unit = items[0][1].unit
            doc = f"{items[0][1].name} in {unit}, from the vendor plugin's metrics hook."
            if unit in COUNTER_UNITS:
                fam = CounterMetricFamily(name.removesuffix("_total"), doc, labels=labels)
            else:
                fam = GaugeMetricFamily(name, doc, labels=labels)
            for dev, s in items:
                fam.add_metric([*_device_labels(dev).values(), *(s.labels.get(k, "") for k in extra)], s.value)
            yield fam
        ok = GaugeMetricFamily(f"{PREFIX}_scrape_backend_success", "1 when the vendor's metrics hooks answered.",
                               labels=["vendor"])
        took = GaugeMetricFamily(f"{PREFIX}_scrape_backend_duration_seconds",
                                 "Seconds the vendor's metrics hooks took in this scrape.", labels=["vendor"])
        for vendor, (success, seconds) in status.items():
            ok.add_metric([vendor], 1.0 if success else 0.0)
            took.add_metric([vendor], seconds)
        yield ok
        yield took
