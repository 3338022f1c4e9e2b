"""Simulated hardware as data: bad profiles fail with one ProfileError line; users add their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from hami_hal.errors import ProfileError
from hami_hal.simulation import ProfileCatalog

ACME_PROFILES = Path(__file__).parent / "plugins" / "acme_profiles"

NODE = """apiVersion: hami-hal.io/v1alpha1
kind: NodeProfile
metadata: {{name: {name}}}
spec:
  devices: [{{profile: {profile}, count: {count}}}]
{extra}
"""


def _catalog(tmp_path: Path, text: str) -> ProfileCatalog:
    f = tmp_path / "user.yaml"
    f.write_text(text)
    return ProfileCatalog.from_paths([ACME_PROFILES, f], include_env=False)


def test_plugin_profiles_compose_into_nodes():
    cat = ProfileCatalog.from_paths([ACME_PROFILES], include_env=False)
    assert set(cat.devices) == {"acme-x100", "acme-t200"} and cat.default_nodes() == ["acme-mixed-4"]
    node = cat.compose("acme-mixed-4")
    assert [d.index for d in node.devices] == [0, 1, 2, 3] and [d.numa_node for d in node.devices] == [0, 0, 1, 1]
    again = ProfileCatalog.from_paths([ACME_PROFILES], include_env=False).compose("acme-mixed-4")
    assert [d.uuid for d in node.devices] == [d.uuid for d in again.devices]  # stable across restarts


@pytest.mark.parametrize(("text", "message"), [
    ("kind: NodeProfile\nmetadata: {name: [x\n", "line"),
    ("kind: GpuProfile\nmetadata: {name: x}\n", "kind 'GpuProfile' is not DeviceProfile or NodeProfile"),
    ("- just\n- a list\n", "kind 'list'"),
    ("kind: DeviceProfile\nmetadata: {name: x}\nspec: {vendor: acme, model: m, memory_mib: -1}\n",
     "spec.memory_mib"),
    ("kind: DeviceProfile\nmetadata: {name: x}\nspec: {vendor: acme, model: m, memory_mib: 1, colour: red}\n",
     "spec.colour"),
    ("kind: DeviceProfile\nmetadata: {name: acme-x100}\nspec: {vendor: acme, model: m, memory_mib: 1}\n",
     "DeviceProfile 'acme-x100' already defined"),
])
def test_bad_profile_files(tmp_path, text, message):
    with pytest.raises(ProfileError) as exc:
        _catalog(tmp_path, text)
    assert message in str(exc.value) and "user.yaml" in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(("profile", "count", "extra", "message"), [
    ("acme-z999", 1, "", "device profile 'acme-z999' not found"),
    ("acme-x100", 2, "  faults: [{index: 5, fault: xid-79}]", "fault index 5 out of range"),
    ("acme-x100", 2, "  links: [{between: [0, 9], kind: nvlink}]", "link index 9 out of range"),
])
def test_bad_references_fail_at_compose(tmp_path, profile, count, extra, message):
    cat = _catalog(tmp_path, NODE.format(name="u", profile=profile, count=count, extra=extra))
    with pytest.raises(ProfileError, match=message):
        cat.compose("u")


def test_unknown_node_lists_the_known_ones():
    cat = ProfileCatalog.from_paths([ACME_PROFILES], include_env=False)
    with pytest.raises(ProfileError, match=r"node profile 'nope' not found \(known: acme-faulty-2, acme-mixed-4\)"):
        cat.compose("nope")


def test_user_profiles_from_the_environment(hal, tmp_path, monkeypatch):
    (tmp_path / "big.yaml").write_text(NODE.format(name="acme-big-8", profile="acme-x100", count=8, extra=""))
    monkeypatch.setenv("HAMI_HAL_PROFILE_PATH", str(tmp_path))
    inv = hal.discover("sim", sim_node="acme-big-8")
    assert len(inv.devices) == 8 and {d.provenance.profile for d in inv.devices} == {"acme-big-8"}


def test_missing_profile_path(hal, monkeypatch, tmp_path):
    monkeypatch.setenv("HAMI_HAL_PROFILE_PATH", str(tmp_path / "absent"))
    with pytest.raises(ProfileError, match="does not exist"):
        hal.catalog()
