"""The sibling-edges bench's own parts (bench/sibling_edges.py): the round order it shares with the other fake benches
(launch_path_cost.alternating), its table, and the checks on its command-line values. No GPU, no fake run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "sibling_edges.py"


@pytest.fixture(scope="module")
def se(load_script):
    return load_script("hami_sibling_edges_bench_under_test", BENCH)


def test_rounds_alternate_the_builds(se) -> None:
    runs = list(se.alternating(2, ["a", "b"], ["before", "after"]))
    assert [n for n, _, _ in runs] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [(c, b) for _, c, b in runs] == [("a", "before"), ("a", "after"), ("b", "before"), ("b", "after"),
                                           ("b", "after"), ("b", "before"), ("a", "after"), ("a", "before")]


def test_the_table_shows_each_process_and_the_survivor(se) -> None:
    pair = {"share_pct": 28.4, "load1": 5.0,
            "procs": [{"share_pct": 14.2, "charge_ratio": 1.03, "coarse_pct": 0.0},
                      {"share_pct": 14.2, "charge_ratio": 1.04, "coarse_pct": 0.0}]}
    gone = {"after_pct": [30.1, 27.0], "after_charge_ratio": 1.01, "load1": 4.9}
    result = {"date": "2026-12-05", "host": "vm", "command": "x",
              "rows": [{"case": "memory: 2 GPU-bound, one without, 30", "build": "after", "runs": [pair]},
                       {"case": "gone: exit mid-slice, 30", "build": "after", "runs": [gone]}]}
    md = se.markdown(result, "")
    assert "| memory: 2 GPU-bound, one without, 30 | after | 28.4 (5.0) | 14.2 % 1.03 x 0.0 %, 14.2 % 1.04 x 0.0 % |" in md
    assert "| gone: exit mid-slice, 30 (survivor per 0.5 s after) | after | 30.1/27.0 (4.9) | charged 1.01 x |" in md


@pytest.mark.parametrize("args, word", [(["--cases", "coarse,bogus"], "--cases"), (["--rounds", "0"], "--rounds")])
def test_bad_values_end_with_one_usage_line(tmp_path: Path, args: list[str], word: str) -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--out", str(tmp_path / "x.json"), *args], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert word in proc.stderr.splitlines()[-1] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "x.json").exists()
