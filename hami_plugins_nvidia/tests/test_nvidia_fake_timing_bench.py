"""bench/fake_timing.py (`make bench-fake`): runs the fake_timing tests in rounds and writes per test how often it
passed, with each failure's first line (its figures) and what the host was."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "fake_timing.py"

TESTS = """
import pytest
from pathlib import Path

@pytest.mark.fake_timing
def test_share_within_band():
    assert True

@pytest.mark.fake_timing
def test_share_flaky():
    mark = Path(__file__).with_name("ran-once")
    first = not mark.exists()
    mark.write_text("x")
    assert not first, "share 43.4 % > 39"

@pytest.mark.fake_timing
@pytest.mark.skip(reason="needs 3 CPUs")
def test_needs_cpus():
    pass

def test_steady_not_run_here():
    assert False, "not a fake_timing test: the bench must not run it"
"""


@pytest.fixture()
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("hami_fake_timing_under_test", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_shares.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    fake_timing: x\n")
    monkeypatch.setattr(mod, "REPO", tmp_path)
    monkeypatch.setattr(mod, "TESTS", "t")
    return mod


def test_rounds_count_each_tests_passes_and_keep_each_failures_figures(bench, tmp_path: Path) -> None:
    out = tmp_path / "out" / "fake-timing.json"
    assert bench.main(["--out", str(out), "--rounds", "2"]) == 1  # one failure in round 1
    res = json.loads(out.read_text())
    by = {t["id"].rsplit("::", 1)[1]: t for t in res["tests"]}
    assert set(by) == {"test_share_within_band", "test_share_flaky", "test_needs_cpus"}
    assert (by["test_share_flaky"]["runs"], by["test_share_flaky"]["passed"], by["test_share_flaky"]["failed"]) \
        == (2, 1, 1)
    assert "share 43.4 % > 39" in by["test_share_flaky"]["failures"][0]
    assert by["test_share_within_band"]["passed"] == 2 and by["test_needs_cpus"]["skipped"] == 2
    assert res["summary"] == {"tests": 3, "passed_every_round": 1, "failed_at_least_once": 1, "skipped": 1,
                              "runs_failed": 1, "runs": 6}
    assert res["rounds"] == 2 and "not a hardware result" in res["provenance"]
    assert res["host_before"]["cpus"] >= 1 and len(res["loadavg_after_1_5_15"]) == 3
    assert res["tests"][0]["id"].endswith("test_share_flaky")  # failures first


def test_every_round_passing_exits_zero(bench, tmp_path: Path) -> None:
    (tmp_path / "t" / "ran-once").write_text("x")  # the flaky one passes from its first run
    out = tmp_path / "r.json"
    assert bench.main(["--out", str(out), "-k", "share"]) == 0
    assert json.loads(out.read_text())["summary"]["passed_every_round"] == 2


@pytest.mark.parametrize("rounds", ["0", "21"])
def test_rounds_out_of_bounds_is_one_line_and_writes_nothing(bench, tmp_path: Path, rounds: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert bench.main(["--out", str(out), "--rounds", rounds]) == 2
    assert capsys.readouterr().err.strip() == f"--rounds must be 1..20, not {rounds}"
    assert not out.exists()


def test_no_matching_test_is_one_line_and_no_pass(bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert bench.main(["--out", str(out), "-k", "no_such_test"]) == 2
    assert capsys.readouterr().err.strip().endswith("no fake_timing test matched -k 'no_such_test'")
    assert not out.exists()
