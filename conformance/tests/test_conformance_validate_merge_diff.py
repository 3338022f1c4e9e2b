"""validate (rules beyond the schema), merge (nodes into a cluster matrix) and diff (what changed)."""

from __future__ import annotations

import json

import pytest
from conformance_matrices import SIM, cell, entry, matrix, overshoot
from hami_conformance.diff import diff_matrices
from hami_conformance.matrix_io import dump_matrix, load_matrix
from hami_conformance.merge import merge_matrices
from hami_conformance.validate import validate_matrix

from hami_hal.errors import InputError
from hami_hal.models import CapabilityMatrix, Level, Requirement


def errors(m, **kw) -> list[str]:
    return [f.line() for f in validate_matrix(m, **kw) if f.severity == "error"]


def warnings(m) -> list[str]:
    return [f.line() for f in validate_matrix(m) if f.severity == "warning"]


def test_a_well_formed_matrix_has_no_errors_but_lists_behaviours_not_run():
    m = matrix(entry())
    assert errors(m) == []
    assert any("topology/numa: behaviour was not run" in w for w in warnings(m))


@pytest.mark.parametrize(("bad", "message"), [
    (cell("partition/no-overcommit", Level.SUPPORTED, evidence=()), "supported needs evidence"),
    (cell("partition/templates-exact", Level.NOT_APPLICABLE), "not-applicable needs notes"),
    (cell("isolation/memory-hard", Level.SUPPORTED), "needs measurements from the plugin's probe"),
    (cell("partition/no-overcommit", Level.SUPPORTED, Requirement.SHOULD), "catalogue says MUST"),
])
def test_rule_violations_are_errors(bad, message):
    assert any(message in e for e in errors(matrix(entry(cells=[bad]))))


def test_supported_isolation_on_simulated_hardware_is_an_error():
    m = matrix(entry(prov=SIM, cells=[cell("isolation/memory-hard", Level.SUPPORTED, measurements=[overshoot(0)])]))
    assert any("only a real probe can prove it" in e for e in errors(m))


def test_unmet_must_is_listed_and_strict_makes_it_an_error():
    m = matrix(entry(cells=[cell("partition/no-overcommit", Level.UNSUPPORTED)]))
    assert any("MUST behaviour is unsupported" in w for w in warnings(m))
    assert errors(m) == []
    assert any("MUST behaviour is unsupported" in e for e in errors(m, strict=True))


def test_duplicate_cells_and_rows_are_errors():
    dup = entry(cells=[cell("topology/numa", Level.SUPPORTED, Requirement.SHOULD)] * 2)
    assert any("cell appears 2 times" in e for e in errors(matrix(dup)))
    assert any("row appears 2 times" in e for e in errors(matrix(entry(), entry())))


def test_merge_joins_nodes_and_takes_the_worst_level():
    a = entry("gpu-1")
    b = entry("gpu-2", minutes=5, cells=[cell("partition/no-overcommit", Level.SUPPORTED),
                                         cell("isolation/memory-hard", Level.PARTIAL, measurements=[overshoot(64)])])
    merged = merge_matrices([matrix(a), matrix(b)])
    (row,) = merged.entries
    assert row.nodes == ["gpu-1", "gpu-2"] and row.device_count == 16
    hard = row.cell("isolation/memory-hard")
    assert hard.level is Level.PARTIAL
    assert "nodes disagree: gpu-1 supported, gpu-2 partial" in hard.notes
    assert [m.value for m in hard.measurements] == [0, 64]
    assert hard.measurements[1].conditions.startswith("[gpu-2]")
    assert "not run on 1 of 2" in row.cell("topology/links").notes
    assert errors(merged) == []


def test_merge_counts_a_node_once_and_keeps_real_and_simulated_apart():
    old, new = entry("gpu-1"), entry("gpu-1", minutes=30)
    merged = merge_matrices([matrix(old), matrix(new), matrix(entry("sim-node", prov=SIM))])
    real = [e for e in merged.entries if e.provenance.source == "real"]
    assert len(merged.entries) == 2 and real[0].device_count == 8 and real[0].tested_at == new.tested_at


def test_diff_reports_level_measurement_and_row_changes():
    a = matrix(entry())
    b_entry = entry(version="0.2.0", cells=[
        cell("partition/no-overcommit", Level.UNSUPPORTED),
        cell("isolation/memory-hard", Level.SUPPORTED, measurements=[overshoot(12)]),
        cell("topology/links", Level.SUPPORTED, Requirement.SHOULD),
    ])
    b = matrix(b_entry, entry(prov=SIM))
    changes = {(c.kind, c.behaviour): c for c in diff_matrices(a, b)}
    assert changes[("level", "partition/no-overcommit")].direction == "worse"
    assert changes[("level", "topology/links")].direction == "better"
    m = changes[("measurement", "isolation/memory-hard memory overshoot")]
    assert (m.before, m.after, m.direction) == ("0 MiB", "12 MiB", "worse")
    assert changes[("cell-removed", "partition/templates-exact")].before == "not-applicable"
    assert ("row-added", None) in changes and ("version", None) in changes
    assert diff_matrices(a, a) == []


def test_matrix_json_round_trips_through_the_core_model(tmp_path):
    m = matrix(entry(), entry(prov=SIM))
    path = tmp_path / "m.json"
    path.write_text(dump_matrix(m))
    data = json.loads(path.read_text())
    assert data["apiVersion"] == "hami-hal.io/v1alpha1" and data["kind"] == "CapabilityMatrix"
    back = load_matrix(path)
    assert back == m
    # what the scheduler does: the core model alone reads it
    assert CapabilityMatrix.model_validate_json(path.read_text()).level(
        "nvidia", "NVIDIA H100 80GB HBM3", "isolation/memory-hard") is Level.SUPPORTED


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not valid JSON"),
    ('{"apiVersion": "hami-hal.io/v1alpha1", "kind": "CapabilityMatrix", "metadata": {}}',
     "metadata.generated_at"),
    ('{"apiVersion": "v0", "kind": "CapabilityMatrix", "metadata": {"generated_at": "2026-11-23T00:00:00Z"}}',
     "apiVersion"),
])
def test_bad_matrix_files_give_one_line_naming_file_and_field(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        load_matrix(path)
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot be read"):
        load_matrix(tmp_path / "nope.json")


def test_diff_ignores_timing_noise_but_not_a_missed_target():
    def lat(v):
        from hami_hal.models import Measurement

        return cell("partition/no-overcommit", Level.SUPPORTED,
                    measurements=[Measurement(name="latency p50", value=v, unit="µs", target="<= 100")])

    assert diff_matrices(matrix(entry(cells=[lat(50)])), matrix(entry(cells=[lat(53)]))) == []
    (c,) = diff_matrices(matrix(entry(cells=[lat(98)])), matrix(entry(cells=[lat(103)])))
    assert c.direction == "worse"
