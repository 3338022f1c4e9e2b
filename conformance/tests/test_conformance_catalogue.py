"""The behaviour catalogue: stable IDs as data, validated on load, each with a check."""

from __future__ import annotations

import pytest
from hami_conformance.catalogue import AREAS, CatalogueError, default_catalogue, load_catalogue
from hami_conformance.checks import check_for, registry
from hami_conformance.checks.probe import probe_check

ISSUE_IDS = [
    "discovery/inventory-complete", "discovery/ids-stable-across-restarts", "partition/arbitrary-memory",
    "partition/templates-exact", "partition/no-overcommit", "isolation/memory-hard",
    "isolation/memory-reported-total", "isolation/compute-share", "isolation/priority", "topology/links",
    "topology/numa", "metrics/device-memory", "metrics/allocation-usage", "health/unhealthy-unallocatable",
    "oversubscription/memory",
]


def test_every_behaviour_named_in_the_issue_is_in_the_catalogue():
    ids = default_catalogue().ids()
    assert [i for i in ISSUE_IDS if i not in ids] == []


def test_catalogue_is_grouped_by_area_in_hook_order():
    areas = [b.area for b in default_catalogue()]
    assert areas == sorted(areas, key=AREAS.index)
    assert set(areas) == set(AREAS)


def test_every_behaviour_has_a_check_and_probe_ones_use_the_probe():
    for b in default_catalogue():
        fn = check_for(b)
        assert fn is not None, b.id
        if b.id.startswith("isolation/") and b.needs_probe:
            assert fn is probe_check
    assert set(registry()) <= set(default_catalogue().ids())


def test_suite_version_changes_with_the_catalogue(tmp_path):
    (tmp_path / "discovery.yaml").write_text(
        "area: discovery\nbehaviours:\n  - {id: discovery/x, requirement: MUST, title: X, "
        "description: Discovery MUST do x.}\n")
    v1 = load_catalogue(tmp_path).version
    (tmp_path / "discovery.yaml").write_text(
        "area: discovery\nbehaviours:\n  - {id: discovery/x, requirement: SHOULD, title: X, "
        "description: Discovery SHOULD do x.}\n")
    assert load_catalogue(tmp_path).version != v1


@pytest.mark.parametrize(("text", "message"), [
    ("area: discovery\nbehaviours:\n  - {id: discovery/a, requirement: MUST, title: A, description: Must do a.}\n"
     "  - {id: discovery/a, requirement: MUST, title: A, description: Must do a.}\n", "already defined"),
    ("area: nonsense\nbehaviours: []\n", "area 'nonsense'"),
    ("area: discovery\nbehaviours:\n  - {id: Discovery/A, requirement: MUST, title: A, description: Must do a.}\n",
     "is not a lower-case path"),
    ("area: discovery\nbehaviours:\n  - {id: discovery/a, requirement: OFTEN, title: A, description: Must do a.}\n",
     "requirement"),
    ("area: discovery\nbehaviours:\n  - {id: discovery/a, requirement: MUST, title: A, description: x, bogus: 1}\n",
     "behaviours.0"),
    ("area: [unclosed\n", "not valid YAML"),
])
def test_malformed_behaviour_files_fail_with_one_line_naming_the_file(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(CatalogueError) as err:
        load_catalogue(tmp_path)
    assert "bad.yaml" in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_select_by_prefix_and_exact_id():
    cat = default_catalogue()
    assert {b.area for b in cat.select(["partition/"])} == {"partition"}
    assert cat.select(["topology/numa"]).ids() == ["topology/numa"]
    with pytest.raises(CatalogueError, match="matches no behaviour"):
        cat.select(["nope/"])


def test_every_behaviour_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "conformance.md").read_text()
    assert [b.id for b in default_catalogue() if f"`{b.id}`" not in doc] == []
