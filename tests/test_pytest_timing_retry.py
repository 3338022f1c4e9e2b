"""hack/pytest_timing_retry.py (`make test`): the interposer's fake-GPU tests run in a second phase, after the first
phase's session fixtures are torn down; one that fails once is run again alone and the second result counts; a
failure anywhere else, or one that fails twice, still fails the suite. Tests marked fake_timing (host-speed
dependent) are `make bench-fake`'s, never run here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "hack" / "pytest_timing_retry.py"

FLAKY = """
from pathlib import Path
def test_share(tmp_path_factory):
    mark = Path(__file__).with_name("ran-once")
    first = not mark.exists()
    mark.write_text("x")
    assert not first, "first run misses its tolerance"
"""
ALWAYS = "def test_share():\n    assert False, 'a real regression'\n"


def _run(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    # The installed pytest plugins (hypothesis, benchmark, hami-conformance) play no part in these toy suites;
    # not loading them makes each of the ~15 nested pytest runs start in a fraction of the time.
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    return subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


TIMED = "hami_plugins_nvidia/tests/interposer/test_interposer_timeslice.py"


def test_a_timing_test_failing_once_is_retried_and_passes(tmp_path: Path) -> None:
    done = _run(tmp_path, {TIMED: FLAKY})
    assert done.returncode == 0, done.stdout
    assert "1 fake-GPU test(s) failed; running them once more, alone" in done.stdout


def test_a_timing_test_failing_twice_fails(tmp_path: Path) -> None:
    done = _run(tmp_path, {TIMED: ALWAYS})
    assert done.returncode != 0 and "running them once more" in done.stdout, done.stdout


def test_a_failure_elsewhere_is_never_retried(tmp_path: Path) -> None:
    done = _run(tmp_path, {TIMED: FLAKY, "tests/test_core.py": ALWAYS})
    assert done.returncode != 0, done.stdout
    assert "running them once more" not in done.stdout


# Phase 1's session fixture (as the e2e control plane) writes a mark at its teardown; phase 2's test needs it.
SESSION_FIXTURE = """
import pytest
from pathlib import Path
@pytest.fixture(scope="session")
def control_plane():
    mark = Path(__file__).parent.parent / "torn-down"
    mark.unlink(missing_ok=True)
    yield
    mark.write_text("x")
def test_uses_it(control_plane):
    assert not (Path(__file__).parent.parent / "torn-down").exists()
"""
NEEDS_TEARDOWN = """
from pathlib import Path
def test_share():
    assert (Path.cwd() / "torn-down").exists(), "phase 1's session fixture still up"
"""


def test_timing_tests_run_after_the_other_phase_is_torn_down(tmp_path: Path) -> None:
    done = _run(tmp_path, {TIMED: NEEDS_TEARDOWN, "tests/test_e2e.py": SESSION_FIXTURE})
    assert done.returncode == 0, done.stdout
    assert done.stdout.index("== phase 1") < done.stdout.index("== phase 2"), done.stdout
    assert "running them once more" not in done.stdout


def test_a_failure_in_phase_one_fails_even_when_phase_two_passes(tmp_path: Path) -> None:
    done = _run(tmp_path, {TIMED: "def test_share():\n    pass\n", "tests/test_core.py": ALWAYS})
    assert done.returncode != 0 and "== phase 1 failed" in done.stdout, done.stdout


def test_a_suite_without_timing_tests_is_one_phase(tmp_path: Path) -> None:
    done = _run(tmp_path, {"tests/test_core.py": "def test_ok():\n    pass\n"})
    assert done.returncode == 0 and "== phase 2" not in done.stdout, done.stdout


MARKED = """
import pytest
@pytest.mark.fake_timing
def test_share_figure():
    assert False, "a share the fake measured"
def test_call_counts():
    pass
"""


def test_fake_timing_tests_are_left_to_the_bench_in_both_phases(tmp_path: Path) -> None:
    done = _run(tmp_path, {TIMED: MARKED, "tests/test_core.py": MARKED})
    assert done.returncode == 0, done.stdout
    assert done.stdout.count("1 passed, 1 deselected") == 2, done.stdout
    assert "running them once more" not in done.stdout
