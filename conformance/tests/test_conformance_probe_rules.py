"""How probe answers become cells: never over-claim, judge figures against their own targets."""

from __future__ import annotations

import pytest
from conformance_fakes import FakeAccel, factory
from hami_conformance.catalogue import default_catalogue
from hami_conformance.runner import run_suite
from hami_conformance.targets import describe, meets_target

from hami_hal import hookimpl
from hami_hal.models import Level, Measurement, ProbeResult


class OddProbe(FakeAccel):
    """Answers isolation/memory-hard in one of several wrong ways, chosen by ``MODE``."""

    VENDOR = "fakeodd"
    MODE = "raise"

    @hookimpl
    def hami_hal_conformance_probe(self, device, behaviour_id):
        if behaviour_id != "isolation/memory-hard":
            return None
        if self.MODE == "raise":
            raise RuntimeError("CUDA_ERROR_LAUNCH_FAILED")
        if self.MODE == "wrong-id":
            return ProbeResult(behaviour_id="isolation/priority", level=Level.SUPPORTED,
                               measurements=[Measurement(name="x", value=1, unit="%")])
        if self.MODE == "bare-claim":
            return ProbeResult(behaviour_id=behaviour_id, level=Level.SUPPORTED, evidence=["trust me"])
        if self.MODE == "not-a-result":
            return {"level": "supported"}
        if self.MODE == "loose-target":  # 20 points off, but the plugin says its target is <= 100
            return ProbeResult(behaviour_id=behaviour_id, level=Level.SUPPORTED, evidence=["ran"],
                               measurements=[Measurement(name="memory_overshoot", value=20, unit="MiB",
                                                         target="<= 100")])
        if self.MODE == "other-figure":  # supported, but not the figure the catalogue judges
            return ProbeResult(behaviour_id=behaviour_id, level=Level.SUPPORTED, evidence=["ran"],
                               measurements=[Measurement(name="something_else", value=0, unit="MiB", target="<= 0")])
        return ProbeResult(behaviour_id=behaviour_id, level=Level.UNSUPPORTED, evidence=["allocated 2x the limit"],
                           measurements=[Measurement(name="memory overshoot", value=4096, unit="MiB", target="<= 0")])


def memory_hard(mode: str):
    cls = type(f"OddProbe_{mode}", (OddProbe,), {"MODE": mode})
    cat = default_catalogue().select(["isolation/memory-hard"])
    run = run_suite(factory(cls, True), backend="real", catalogue=cat)
    return run.matrix.entries[0].capabilities[0]


@pytest.mark.parametrize(("mode", "level", "text"), [
    ("raise", Level.UNVERIFIED, "probe raised RuntimeError: CUDA_ERROR_LAUNCH_FAILED"),
    ("wrong-id", Level.UNVERIFIED, "probe answered for 'isolation/priority'"),
    ("bare-claim", Level.UNVERIFIED, "trust me"),
    ("not-a-result", Level.UNVERIFIED, "probe returned dict, not a ProbeResult"),
    ("honest-failure", Level.UNSUPPORTED, "memory overshoot = 4096 MiB (target <= 0)"),
    ("loose-target", Level.PARTIAL, "memory_overshoot = 20 MiB (target <= 0)"),
    ("other-figure", Level.UNVERIFIED, "something_else = 0 MiB (target <= 0)"),
])
def test_probe_answers_map_to_levels(mode, level, text):
    cell = memory_hard(mode)
    assert cell.level is level
    assert any(text in e for e in cell.evidence), cell.evidence


def test_catalogue_owns_the_targets():
    """A plugin cannot loosen a target: the catalogue's replaces its own, and a missing figure is noted."""
    assert default_catalogue().get("isolation/compute-share").targets == {"compute_share_error": "<= 5"}
    loose = memory_hard("loose-target")
    assert loose.measurements[0].target == "<= 0" and "misses the catalogue target" in loose.notes
    assert memory_hard("other-figure").notes == "probe did not report memory_overshoot (catalogue target <= 0)"


def test_a_bare_supported_claim_is_noted():
    assert memory_hard("bare-claim").notes == "probe claimed supported without any measurement"


@pytest.mark.parametrize(("value", "target", "ok"), [
    (0, "<= 0", True), (1, "<= 0", False), (4.9, "< 5 %", True), (5, "< 5", False), (0.95, ">= 0.9", True),
    (0.5, "≥ 0.9", False), (3, "== 3", True), (3, "about three", None), (3, None, None),
])
def test_targets(value, target, ok):
    assert meets_target(Measurement(name="m", value=value, unit="%", target=target)) is ok


def test_describe_carries_unit_and_target():
    assert describe(Measurement(name="share error", value=1.25, unit="%", target="<= 5")) == \
        "share error = 1.25 % (target <= 5)"


def test_a_device_list_env_naming_the_index_names_the_device():
    from hami_conformance.checks.isolation import _lists_device

    from hami_hal.models import Device, Provenance

    dev = Device(vendor="v", index=3, uuid="U-3", model="m", hami_type="m", memory_mib=1,
                 attributes={"phy_id": 7}, provenance=Provenance(source="real"))
    assert _lists_device({"V_VISIBLE_DEVICES": "1,3"}, dev) and _lists_device({"V_DEVICE_IDS": "7"}, dev)
    assert not _lists_device({"V_VISIBLE_DEVICES": "1,2"}, dev) and not _lists_device({"V_MEMORY_LIMIT": "3"}, dev)
