"""Simulated rows say which MUSTs cannot be verified without hardware instead of "MUST not met", and
``run --fail-on-unmet-must`` turns an unmet MUST into exit 1 for a vendor's CI."""

from __future__ import annotations

import pytest
from conformance_matrices import REAL, SIM, cell, entry, matrix
from hami_conformance import cli
from hami_conformance.musts import must_status
from hami_conformance.report.markdown import render_markdown
from hami_conformance.runner import SuiteRun, summary_line

from hami_hal.models import Level, Requirement


def _row(prov, *cells):
    return entry(prov=prov, cells=[cell("partition/no-overcommit", Level.SUPPORTED), *cells])


def test_simulated_row_names_what_needs_hardware_not_a_failure():
    e = _row(SIM, cell("isolation/memory-hard", Level.UNVERIFIED),
             cell("isolation/memory-reported-total", Level.UNVERIFIED))
    st = must_status(e)
    assert st.unmet == [] and st.needs_hardware == ["isolation/memory-hard", "isolation/memory-reported-total"]
    line = summary_line(e)
    assert "MUST not met" not in line
    assert "cannot be verified without hardware: isolation/memory-hard, isolation/memory-reported-total" in line


def test_real_row_with_an_unproven_must_is_unmet():
    e = _row(REAL, cell("isolation/memory-hard", Level.UNVERIFIED))
    assert must_status(e).unmet == ["isolation/memory-hard"] and must_status(e).needs_hardware == []
    assert "MUST not met: isolation/memory-hard" in summary_line(e)


def test_simulated_row_with_a_checkable_must_unsupported_is_unmet():
    e = entry(prov=SIM, cells=[cell("partition/no-overcommit", Level.UNSUPPORTED),
                               cell("isolation/memory-hard", Level.UNVERIFIED)])
    st = must_status(e)
    assert st.unmet == ["partition/no-overcommit"] and st.needs_hardware == ["isolation/memory-hard"]
    assert st.text().startswith("MUST not met: partition/no-overcommit; cannot be verified without hardware")


def test_should_behaviours_never_count():
    e = _row(REAL, cell("topology/links", Level.UNSUPPORTED, Requirement.SHOULD))
    assert must_status(e).text() == "every MUST met"


def test_markdown_rows_carry_the_must_wording():
    md = render_markdown(matrix(_row(SIM, cell("isolation/memory-hard", Level.UNVERIFIED))))
    assert "| MUST behaviours |" in md and "cannot be verified without hardware: isolation/memory-hard" in md


@pytest.mark.parametrize(("rows", "flag", "code"), [
    ([_row(SIM, cell("isolation/memory-hard", Level.UNVERIFIED))], True, 0),
    ([_row(REAL, cell("isolation/memory-hard", Level.UNSUPPORTED))], True, 1),
    ([_row(REAL, cell("isolation/memory-hard", Level.UNSUPPORTED))], False, 0),
])
def test_run_exit_code_with_and_without_the_flag(monkeypatch, tmp_path, capsys, rows, flag, code):
    monkeypatch.setattr(cli, "run_suite", lambda *a, **kw: SuiteRun(matrix=matrix(*rows)))
    argv = ["run", "--no-progress", "--out", str(tmp_path / "out"), *(["--fail-on-unmet-must"] if flag else [])]
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert (tmp_path / "out" / "capability-matrix.json").exists()  # the matrix is written either way
    if code:
        assert len(err) == 1 and "MUST not met on 1 row(s)" in err[0] and "isolation/memory-hard" in err[0]
    else:
        assert not any("MUST not met" in ln for ln in err)
