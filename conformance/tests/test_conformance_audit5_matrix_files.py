"""Audit 5: matrix files given to ``hami conformance validate|merge|diff`` are bounded and every bad one
is one line naming the file, exit 2.

Found attacking main at 0fc1629 (record: docs/results/2026-12-05-audit5.md): a matrix file nested 100,000
deep, holding a 5,000-digit integer or not UTF-8 ended in a Python traceback (exit 1), and a file of any
size was read whole.
"""

from __future__ import annotations

import pytest
from fuzz_profiles import FUZZ
from hami_conformance.matrix_io import MAX_MATRIX_BYTES, load_matrix
from hypothesis import given
from hypothesis import strategies as st

from hami_hal.cli.main import main as hami
from hami_hal.errors import InputError

BAD = [
    ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    ("a 5,000-digit integer", b"9" * 5000, "cannot be read"),
    ("not UTF-8", b"\xff\xfe{}", "is not UTF-8 text"),
    ("a JSON object of the wrong shape", b'{"a": 1}', "CapabilityMatrix schema"),
]


@pytest.mark.parametrize(("what", "data", "why"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("verb", ["validate", "merge", "diff"])
def test_bad_matrix_file_is_one_line_and_exit_2(tmp_path, capsys, verb, what, data, why):
    bad = tmp_path / "bad.json"
    bad.write_bytes(data)
    argv = {"validate": [str(bad)], "merge": [str(bad), str(bad), "-o", str(tmp_path / "m.json")],
            "diff": [str(bad), str(bad)]}[verb]
    rc = hami(["conformance", verb, *argv])
    out = capsys.readouterr()
    assert rc == 2 and "Traceback" not in out.err + out.out
    (line,) = out.err.strip().splitlines()
    assert str(bad) in line and why in line


def test_oversized_matrix_file_is_refused_before_reading_it_whole(tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(MAX_MATRIX_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(InputError, match="too large"):
        load_matrix(big)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), st.text(alphabet='[]{}",:0123456789e.-truefalsn ', max_size=300)
                      .map(str.encode)))
def test_any_bytes_give_a_matrix_or_one_input_error(tmp_path_factory, data):
    f = tmp_path_factory.mktemp("m") / "m.json"
    f.write_bytes(data)
    try:
        load_matrix(f)
    except InputError as exc:
        assert "\n" not in str(exc)
