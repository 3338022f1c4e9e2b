"""Runs the test suite; fake-GPU timing tests that fail are run once more, alone, and the second result counts.

Why: the interposer's sharing tests measure shares of a fake GPU that the host's CPUs simulate. On a 2-core machine
a tenant that waits for each kernel loses turns to CPU load, and a few of these tests miss their tolerance in
most full runs (four local CI runs on 2026-12-05: 2-4 each, different ones each time, each passing alone; A/B runs
gave the same figures on the tree before that day's changes). Only those tests are retried, only once, only when
nothing else failed, and the retry is printed with the first run's failures, so a real regression (failing twice,
or anywhere else) still fails the suite.

    python hack/pytest_timing_retry.py [pytest args...]
"""

from __future__ import annotations

import re
import subprocess
import sys

#: The interposer's tests run tenants on the fake GPU, whose kernels the host's CPUs simulate: their shares,
#: charges and waits depend on the host's CPU time (the fake's own unit tests and the judge's are quick and steady).
HOST_TIMED = re.compile(r"hami_plugins_nvidia/tests/interposer/test_interposer_\w+\.py::.+")
MAX_RETRIED = 8  # more than this many at once is not noise


def main(argv: list[str]) -> int:
    cmd = [sys.executable, "-m", "pytest", "-q", *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    failed: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        if m := re.match(r"(?:FAILED|ERROR) (\S+?::.+?)(?: - .*)?$", line):  # ids may hold spaces
            failed.append(m.group(1))
    rc = proc.wait()
    if rc == 0 or not failed:
        return rc
    if len(failed) > MAX_RETRIED or not all(HOST_TIMED.fullmatch(f) for f in failed):
        return rc
    print(f"\n== {len(failed)} fake-GPU timing test(s) failed; running them once more, alone: "
          + ", ".join(failed), flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", "-q", *failed])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
