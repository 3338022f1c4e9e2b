"""HalCollector: plugin samples named by the core at scrape time; a broken vendor never fails a scrape."""

from __future__ import annotations

import pytest

prometheus_client = pytest.importorskip("prometheus_client")

from hami_hal.metrics import HalCollector, metric_name  # noqa: E402
from hami_hal.models import MetricSample  # noqa: E402


def _scrape(hal, inv) -> str:
    registry = prometheus_client.CollectorRegistry()
    registry.register(HalCollector(hal, inv))
    return prometheus_client.generate_latest(registry).decode()


@pytest.mark.parametrize(("name", "unit", "scope", "expected"), [
    ("memory_used", "bytes", "device", "hami_hal_device_memory_used_bytes"),
    ("utilization", "ratio", "device", "hami_hal_device_utilization_ratio"),
    ("temperature_celsius", "celsius", "device", "hami_hal_device_temperature_celsius"),
    ("ecc errors", "count", "device", "hami_hal_device_ecc_errors"),
    ("memory_limit", "bytes", "allocation", "hami_hal_allocation_memory_limit_bytes"),
])
def test_metric_names(name, unit, scope, expected):
    assert metric_name(MetricSample(name=name, value=1, unit=unit, device_uuid="u", scope=scope)) == expected


def test_scrape_names_labels_and_provenance(hal, inv):
    text = _scrape(hal, inv)
    x0 = inv.devices[0]
    assert (f'hami_hal_device_memory_total_bytes{{device_index="0",device_uuid="{x0.uuid}",'
            f'model="Acme X100 16GB",vendor="acme"}} 1.7179869184e+10') in text
    assert 'source="simulated"' in text and 'profile="acme-mixed-4"' in text
    assert 'hami_hal_scrape_backend_success{vendor="acme"} 1.0' in text


def test_allocation_samples_appear_at_the_next_scrape(hal, inv):
    assert "hami_hal_allocation_memory_limit_bytes" not in _scrape(hal, inv)
    t200 = inv.devices[2]
    from hami_hal.models import DeviceSlice, Placement

    hal.create_partition(t200, DeviceSlice(vendor="acme", uuid=t200.uuid, device_index=t200.index,
                                           common_word="ACME", memory_mib=8192, compute_percent=25,
                                           template="t1.8gb", placement=Placement(start=3, size=1)))
    text = _scrape(hal, inv)
    assert 'hami_hal_allocation_memory_limit_bytes{' in text and 'template="t1.8gb"' in text


def test_a_failing_vendor_is_reported_not_raised(hal, inv, monkeypatch):
    def boom(device):
        raise RuntimeError("driver went away")

    monkeypatch.setattr(hal, "device_metrics", boom)
    text = _scrape(hal, inv)
    assert 'hami_hal_scrape_backend_success{vendor="acme"} 0.0' in text
    assert "hami_hal_device_info{" in text and "hami_hal_device_memory_used_bytes" not in text
