"""Runs the test suite in two phases; an interposer test that fails in phase 2 is run once more, alone.

Why: the interposer's tests run tenants on the fake GPU, whose kernels the host's CPUs simulate. Those that judge a
share, a wait or a charge the fake measured (pytest marker ``fake_timing``) depend on the host's speed: they are not
run here but by ``make bench-fake`` (hami_plugins_nvidia/bench/fake_timing.py, which writes a result file), as
the project keeps speed and accuracy targets in benchmarks. The rest of the interposer's tests still start
processes on the fake GPU, so two things keep the host quiet for them:

- Phase 1 runs everything else; its session fixtures (the e2e suite's etcd, kube-apiserver and kube-scheduler stay
  up until the session ends) are torn down before phase 2 runs the interposer's tests.
- A phase-2 failure is run once more, alone, only when nothing else failed and at most ``MAX_RETRIED`` of them;
  the retry is printed with the first run's failures, so a real regression (failing twice, or anywhere else) still
  fails the suite.

    python hack/pytest_timing_retry.py            # both phases (what `make test` runs)
    python hack/pytest_timing_retry.py [args...]  # one pytest run with these arguments, same retry rule
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

#: The interposer's tests run tenants on the fake GPU, whose kernels the host's CPUs simulate.
TIMED_DIR = "hami_plugins_nvidia/tests/interposer"
HOST_TIMED = re.compile(re.escape(TIMED_DIR) + r"/test_interposer_\w+\.py::.+")
MAX_RETRIED = 8  # more than this many at once is not noise
NO_TESTS = 5  # pytest's exit status when a run collected nothing
#: Tests judging what the fake GPU measured (shares, waits, charges): `make bench-fake` runs them, not `make test`.
NOT_TIMING = ["-m", "not fake_timing"]


def _pytest(args: list[str]) -> tuple[int, list[str]]:
    """One pytest run, streamed; its exit status and the node ids it reported failed or in error."""
    cmd = [sys.executable, "-m", "pytest", "-q", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    failed: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        if m := re.match(r"(?:FAILED|ERROR) (\S+?::.+?)(?: - .*)?$", line):  # ids may hold spaces
            failed.append(m.group(1))
    rc = proc.wait()
    return (0 if rc == NO_TESTS else rc), failed


def _retry(rc: int, failed: list[str]) -> int:
    """Runs the failed timing tests once more, alone, when they are all there is to it; else ``rc``."""
    if rc == 0 or not failed:
        return rc
    if len(failed) > MAX_RETRIED or not all(HOST_TIMED.fullmatch(f) for f in failed):
        return rc
    print(f"\n== {len(failed)} fake-GPU test(s) failed; running them once more, alone: "
          + ", ".join(failed), flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", "-q", *failed])


def main(argv: list[str]) -> int:
    if argv:
        return _retry(*_pytest(argv))
    print(f"== phase 1: every test but {TIMED_DIR}/ (tests marked fake_timing: `make bench-fake`)", flush=True)
    rc1, failed1 = _pytest([f"--ignore={TIMED_DIR}", *NOT_TIMING])
    if not Path(TIMED_DIR).is_dir():
        return rc1
    print(f"\n== phase 2: {TIMED_DIR}/ but its fake_timing tests, after phase 1's processes are gone", flush=True)
    rc2, failed2 = _pytest([TIMED_DIR, *NOT_TIMING])
    if rc1 != 0:
        print(f"\n== phase 1 failed ({len(failed1)} reported); phase 2's failures are not retried", flush=True)
        return rc1
    return _retry(rc2, failed2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
