"""Broken plugins get the right levels, and only there; a correct one passes; acme needs no suite change."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conformance_fakes import (
    FakeAccel,
    HealthBlindFake,
    MemoryLiarFake,
    MigLikeFake,
    NoProbeFake,
    OverCommitFake,
    UnstableIdsFake,
    WrongTotalFake,
    factory,
)
from hami_conformance.runner import run_suite
from hami_conformance.validate import validate_matrix

from hami_hal.errors import HalError
from hami_hal.manager import Hal
from hami_hal.models import Level, Requirement

PROBE_IDS = {"isolation/memory-hard", "isolation/memory-reported-total", "isolation/compute-share",
             "isolation/launch-overhead"}


def levels(cls, hardware: bool) -> dict[str, Level]:
    run = run_suite(factory(cls, hardware), backend="real" if hardware else "sim")
    assert run.crashed == []
    (entry,) = run.matrix.entries
    return {c.id: c for c in entry.capabilities}


@pytest.fixture(scope="module")
def good_hw():
    return levels(FakeAccel, True)


@pytest.fixture(scope="module")
def good_sim():
    return levels(FakeAccel, False)


def test_correct_plugin_on_hardware_meets_every_must(good_hw):
    for cell in good_hw.values():
        if cell.requirement is Requirement.MUST:
            assert cell.level in (Level.SUPPORTED, Level.NOT_APPLICABLE), (cell.id, cell.evidence)
    for bid in PROBE_IDS:
        assert good_hw[bid].level is Level.SUPPORTED
        assert good_hw[bid].measurements and good_hw[bid].measurements[0].unit
    assert good_hw["isolation/priority"].level is Level.UNVERIFIED  # the fake has no priority probe
    assert good_hw["partition/templates-exact"].level is Level.NOT_APPLICABLE
    assert good_hw["partition/templates-exact"].notes


def test_simulated_probe_results_are_never_supported(good_sim):
    for bid in PROBE_IDS:
        cell = good_sim[bid]
        assert cell.level is Level.UNVERIFIED
        assert cell.measurements, "figures are kept, labelled"
        assert "simulated" in cell.notes


# Each broken plugin must differ from the correct one in exactly these cells (hardware backend).
BROKEN = [
    (OverCommitFake, {"partition/no-overcommit": Level.UNSUPPORTED}, "offers 49152 MiB on a 24576 MiB device"),
    (MemoryLiarFake, {"metrics/device-memory": Level.UNSUPPORTED, "isolation/memory-hard": Level.PARTIAL},
     "outside 0..memory_total"),
    (WrongTotalFake, {"metrics/device-memory": Level.UNSUPPORTED}, "memory_total 12288 MiB but the device has 24576"),
    (UnstableIdsFake, {"discovery/ids-stable-across-restarts": Level.UNSUPPORTED}, "disappeared after a restart"),
    (HealthBlindFake, {"health/reported": Level.UNSUPPORTED, "health/unhealthy-unallocatable": Level.UNSUPPORTED},
     "is reported healthy"),
    (NoProbeFake, {b: Level.UNVERIFIED for b in PROBE_IDS}, "implements no hami_hal_conformance_probe"),
]


@pytest.mark.parametrize(("cls", "expected", "reason"), BROKEN, ids=[c.__name__ for c, _, _ in BROKEN])
def test_broken_plugin_fails_exactly_the_behaviour_it_breaks(good_hw, cls, expected, reason):
    got = levels(cls, True)
    changed = {bid: c.level for bid, c in got.items() if c.level is not good_hw[bid].level}
    assert changed == expected
    # Injected-fault evidence is kept apart from a real row's own evidence; the reason may be in either.
    texts = [e for bid in expected for e in got[bid].evidence + (got[bid].injected.evidence if got[bid].injected else [])]
    assert any(reason in t for t in texts), texts


def test_broken_plugins_on_the_simulated_backend_are_caught_too():
    assert levels(OverCommitFake, False)["partition/no-overcommit"].level is Level.UNSUPPORTED
    assert levels(WrongTotalFake, False)["metrics/device-memory"].level is Level.UNSUPPORTED
    unstable = levels(UnstableIdsFake, False)
    assert unstable["discovery/ids-stable-across-restarts"].level is Level.UNSUPPORTED
    # the simulated node is ground truth: UUIDs not in it are extra devices
    assert unstable["discovery/inventory-complete"].level is Level.UNSUPPORTED
    liar = levels(MemoryLiarFake, False)["isolation/memory-hard"]
    assert liar.level is Level.PARTIAL and "misses the catalogue target" in liar.notes


def test_no_overcommit_records_decision_latency_with_units(good_hw):
    ms = {m.name: m for m in good_hw["partition/no-overcommit"].measurements}
    assert ms["allocation decision latency p50"].unit == "µs"
    assert 0 < ms["allocation decision latency p50"].value <= ms["allocation decision latency p99"].value
    assert "real: Fake F1 24GB" in ms["allocation decision latency p50"].conditions


def test_matrices_of_correct_plugin_validate_without_errors():
    for hw in (True, False):
        run = run_suite(factory(FakeAccel, hw), backend="real" if hw else "sim")
        errors = [f for f in validate_matrix(run.matrix) if f.severity == "error"]
        assert errors == []


def test_real_backend_without_devices_is_an_error_naming_the_reason():
    with pytest.raises(HalError, match="no real devices found.*libfake.so not found"):
        run_suite(factory(FakeAccel, False), backend="real")


def test_unknown_plugin_is_an_error_listing_the_installed_ones():
    with pytest.raises(HalError, match="--plugin: 'nvidiaa' is not an installed plugin.*fakegood"):
        run_suite(factory(FakeAccel, False), plugins=["nvidiaa"])


def test_auto_backend_gives_real_rows_for_present_hardware():
    run = run_suite(factory(FakeAccel, True), backend="auto")
    assert [e.provenance.source for e in run.matrix.entries] == ["real"]
    assert run.matrix.entries[0].provenance.driver_version == "fake-driver-9.9"


def test_acme_plugin_written_from_the_guide_runs_unchanged():
    plugins = str(Path(__file__).resolve().parents[2] / "tests" / "plugins")
    if plugins not in sys.path:
        sys.path.insert(0, plugins)
    acme = pytest.importorskip("acme_plugin")
    run = run_suite(lambda: Hal(entrypoints=False, modules=[acme]), backend="sim")
    assert run.crashed == []
    assert sorted(e.model for e in run.matrix.entries) == ["Acme T200 32GB", "Acme X100 16GB"]
    for e in run.matrix.entries:
        assert e.provenance.simulated and e.provenance.profile
        for c in e.capabilities:
            if c.requirement is Requirement.MUST and not c.id.startswith("isolation/memory"):
                assert c.level in (Level.SUPPORTED, Level.NOT_APPLICABLE), (e.model, c.id, c.evidence)
    t200 = run.matrix.entry("acme", "Acme T200 32GB")
    assert t200.cell("partition/templates-exact").level is Level.SUPPORTED
    assert t200.cell("partition/arbitrary-memory").level is Level.UNSUPPORTED
    # acme ships a faulty node profile (xid-79): the suite uses it rather than injecting its own
    assert "acme-faulty-2" in t200.cell("health/unhealthy-unallocatable").evidence[0]


def test_partitions_needing_creation_are_created_and_destroyed_for_the_edits():
    plugin = MigLikeFake()
    run = run_suite(lambda: _single(plugin), backend="sim")
    cells = {c.id: c for c in run.matrix.entries[0].capabilities}
    assert cells["isolation/container-edits"].level is Level.SUPPORTED
    assert "created partition {'instance': 1}" in cells["isolation/container-edits"].evidence[0]
    assert cells["partition/templates-exact"].level is Level.SUPPORTED
    assert plugin.live == {}  # destroyed again


def test_real_partitions_are_only_created_on_opt_in(monkeypatch):
    plugin = MigLikeFake(hardware=True)
    run = run_suite(lambda: _single(plugin), backend="real", catalogue=_only("isolation/container-edits"))
    (cell,) = run.matrix.entries[0].capabilities
    assert cell.level is Level.UNVERIFIED and "HAMI_CONFORMANCE_CREATE_PARTITIONS=1" in cell.evidence[0]
    monkeypatch.setenv("HAMI_CONFORMANCE_CREATE_PARTITIONS", "1")
    run = run_suite(lambda: _single(plugin), backend="real", catalogue=_only("isolation/container-edits"))
    assert run.matrix.entries[0].capabilities[0].level is Level.SUPPORTED and plugin.live == {}


def _single(plugin) -> Hal:
    hal = Hal(entrypoints=False)
    hal.register(plugin, plugin.VENDOR, plugin.__version__)
    return hal


def _only(prefix: str):
    from hami_conformance.catalogue import default_catalogue

    return default_catalogue().select([prefix])


def test_every_fault_free_node_profile_becomes_rows_and_default_or_named_selects_one():
    from hami_conformance.runner import sim_nodes

    plugins = str(Path(__file__).resolve().parents[2] / "tests" / "plugins")
    if plugins not in sys.path:
        sys.path.insert(0, plugins)
    acme = pytest.importorskip("acme_plugin")
    hal = Hal(entrypoints=False, modules=[acme])
    assert sim_nodes(hal, None, {"acme"}) == ["acme-mixed-4"]  # acme-faulty-2 only serves the health check
    assert sim_nodes(hal, "default", {"acme"}) == [None]
    assert sim_nodes(hal, "acme-faulty-2", {"acme"}) == ["acme-faulty-2"]
    run = run_suite(lambda: Hal(entrypoints=False, modules=[acme]), backend="sim", sim_node="acme-faulty-2")
    (row,) = run.matrix.entries
    assert row.provenance.profile == "acme-faulty-2" and row.device_count == 2


def test_configured_oversubscription_is_not_an_overcommit():
    cfg = {"device_memory_scaling": 2, "device_core_scaling": 2}
    run = run_suite(factory(OverCommitFake, True), backend="real", config=cfg)
    cell = run.matrix.entries[0].cell("partition/no-overcommit")
    assert cell.level is Level.SUPPORTED, cell.evidence


def test_real_row_keeps_injected_fault_evidence_apart(good_hw):
    """A real row's evidence names only real devices; the injected fault is shown separately, and no
    environment variable is rewritten to inject it."""
    import os

    before = dict(os.environ)
    cell = good_hw["health/unhealthy-unallocatable"]
    assert cell.injected is not None and cell.injected.level is Level.SUPPORTED
    assert cell.injected.profile.startswith("conformance-fault-") and "simulated node" in cell.injected.evidence[0]
    assert all("simulated node" not in e for e in cell.evidence)
    assert any("real device(s) are healthy" in e for e in cell.evidence)
    assert "injected fault" in cell.notes
    assert levels(HealthBlindFake, True)["health/unhealthy-unallocatable"].injected.level is Level.UNSUPPORTED
    assert dict(os.environ) == before


def test_markdown_report_shows_injected_fault_evidence_apart(good_hw):
    from datetime import UTC, datetime

    from hami_conformance.report.markdown import render_markdown

    from hami_hal.models import CapabilityMatrix, DeviceModelEntry, MatrixMetadata, Provenance

    cell = good_hw["health/unhealthy-unallocatable"]
    now = datetime(2026, 12, 4, tzinfo=UTC)
    entry = DeviceModelEntry(vendor="fakegood", model="F1", plugin="fake", plugin_version="0", tested_at=now,
                             provenance=Provenance(source="real", device_model="F1"), capabilities=[cell])
    md = render_markdown(CapabilityMatrix(metadata=MatrixMetadata(generated_at=now), entries=[entry]))
    assert "supported (injected fault)" in md
    assert "injected fault on simulated profile conformance-fault-fakegood (not real-device evidence)" in md


def test_health_check_falls_back_to_one_device_at_a_time_under_a_node_budget():
    """A vendor budget that refuses all healthy devices at once is not a health failure (vendors2 14:35)."""
    from hami_hal import hookimpl
    from hami_hal.models import NodeBudget, PartitionKind, PartitionModel, PartitionTemplate

    class BudgetFake(FakeAccel):
        VENDOR = "fakebudget"

        @hookimpl
        def hami_hal_partition_model(self, device):
            return PartitionModel(kind=PartitionKind.SLICES, memory_mib=device.memory_mib, max_slots=4,
                                  node_budget=NodeBudget(name="handles", limit=4), templates=[
                                      PartitionTemplate(name="quarter", memory_mib=device.memory_mib // 4,
                                                        compute_percent=25, node_cost=4)])

    cell = levels(BudgetFake, False)["health/unhealthy-unallocatable"]
    assert cell.level is Level.SUPPORTED, cell.evidence
    assert any("each alone was placed, none on the faulty one" in e for e in cell.evidence)
