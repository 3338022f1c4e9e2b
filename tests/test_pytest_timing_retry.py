"""hack/pytest_timing_retry.py (`make test`): a fake-GPU timing test that fails once is run again alone and the
second result counts; a failure anywhere else, or one that fails twice, still fails the suite."""

from __future__ import annotations

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
    return subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=120)


TIMED = "hami_plugins_nvidia/tests/interposer/test_interposer_timeslice.py"


def test_a_timing_test_failing_once_is_retried_and_passes(tmp_path: Path) -> None:
    done = _run(tmp_path, {TIMED: FLAKY})
    assert done.returncode == 0, done.stdout
    assert "1 fake-GPU timing test(s) failed; running them once more, alone" in done.stdout


def test_a_timing_test_failing_twice_fails(tmp_path: Path) -> None:
    done = _run(tmp_path, {TIMED: ALWAYS})
    assert done.returncode != 0 and "running them once more" in done.stdout, done.stdout


def test_a_failure_elsewhere_is_never_retried(tmp_path: Path) -> None:
    done = _run(tmp_path, {TIMED: FLAKY, "tests/test_core.py": ALWAYS})
    assert done.returncode != 0, done.stdout
    assert "running them once more" not in done.stdout
