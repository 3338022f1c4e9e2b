"""metrics/allocation-usage: malformed samples fail; the plugin's usage probe decides, judged against the
catalogue's 1 % target; without a probe the sample check stands; a simulated device never reads supported."""

from __future__ import annotations

import pytest
from conformance_fakes import FakeAccel, factory
from hami_conformance.catalogue import default_catalogue
from hami_conformance.runner import run_suite

from hami_hal import hookimpl
from hami_hal.models import Level, Measurement, MetricSample, ProbeResult

MIB = 1 << 20


class UsageProbe(FakeAccel):
    """Answers the usage probe with a tenant series ``ERROR`` percent off its process's usage."""

    VENDOR = "fakeusage"
    ERROR: float | None = 0.4
    BAD_SAMPLE = False

    @hookimpl
    def hami_hal_allocation_metrics(self, device):
        value = 2 * device.memory_mib * MIB if self.BAD_SAMPLE else 256 * MIB
        return [MetricSample(name="memory_used", value=value, unit="bytes", device_uuid=device.uuid,
                             scope="process", labels={"pid": "4242"})]

    @hookimpl
    def hami_hal_conformance_probe(self, device, behaviour_id, context):
        if behaviour_id != "metrics/allocation-usage" or self.ERROR is None:
            return None
        return ProbeResult(behaviour_id=behaviour_id, level=Level.SUPPORTED, evidence=["two tenants ran"],
                           measurements=[Measurement(name="usage_error", value=self.ERROR, unit="%",
                                                     target="<= 50")])


def cell(hardware: bool = True, **attrs):
    cls = type("UsageProbe_x", (UsageProbe,), attrs)
    cat = default_catalogue().select(["metrics/allocation-usage"])
    run = run_suite(factory(cls, hardware), backend="real" if hardware else "sim", catalogue=cat)
    return run.matrix.entries[0].capabilities[0]


def test_allocation_usage_probe_within_target_is_supported() -> None:
    c = cell()
    assert c.level is Level.SUPPORTED
    assert any("usage_error = 0.4 %" in e for e in c.evidence)
    assert any("per-tenant sample" in e for e in c.evidence)  # the sample check's evidence is kept


@pytest.mark.parametrize(("error", "level"), [(1.0, Level.SUPPORTED), (3.0, Level.PARTIAL)])
def test_allocation_usage_catalogue_target_replaces_the_plugins(error: float, level: Level) -> None:
    assert cell(ERROR=error).level is level  # the plugin's own "<= 50" decides nothing


def test_allocation_usage_malformed_sample_fails_before_the_probe() -> None:
    c = cell(BAD_SAMPLE=True)
    assert c.level is Level.UNSUPPORTED
    assert "more than the device" in c.evidence[0]


def test_allocation_usage_without_probe_keeps_the_sample_check() -> None:
    c = cell(ERROR=None)
    assert c.level is Level.SUPPORTED
    assert "per-tenant sample(s) on" in c.evidence[0]


def test_allocation_usage_never_supported_on_simulated_devices() -> None:
    c = cell(hardware=False)
    assert c.level is Level.UNVERIFIED
    assert "simulated" in " ".join(c.evidence + [c.notes])
