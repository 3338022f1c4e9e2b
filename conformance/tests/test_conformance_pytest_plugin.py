"""The pytest plugin: a vendor's own test run, by option or by subclassing ConformanceSuite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

HERE = Path(__file__).resolve().parent
ACME = HERE.parents[1] / "tests" / "plugins"


def pytest_run(cwd: Path, *args: str, **env: str) -> tuple[int, str]:
    plugin = [] if any(ep.name == "hami_conformance" for ep in entry_points(group="pytest11")) else [
        "-p", "hami_conformance.pytest_plugin"]
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ACME)]), **env}
    environ.pop("HAMI_HAL_PROFILE_PATH", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfs", *plugin, *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120, env=environ)
    return proc.returncode, proc.stdout + proc.stderr


def counts(output: str) -> dict[str, int]:
    return {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|xfailed|xpassed|error)", output)}


def test_command_line_option_runs_an_installed_plugin(tmp_path):
    rc, out = pytest_run(tmp_path, "--hami-conformance=acme", f"--hami-conformance-out={tmp_path / 'm'}",
                         HAMI_HAL_PLUGIN_MODULES="acme_plugin", HAMI_HAL_PLUGINS="acme")
    assert rc == 0, out
    c = counts(out)
    assert c["passed"] >= 20 and c.get("failed", 0) == 0 and c["skipped"] >= 10, out
    assert (tmp_path / "m" / "capability-matrix.json").exists()


def test_subclassed_suite_fails_the_broken_behaviour_with_its_evidence(tmp_path):
    (tmp_path / "test_vendor.py").write_text(
        "from conformance_fakes import OverCommitFake\n"
        "from hami_conformance.testing import ConformanceSuite\n\n"
        "class TestOver(ConformanceSuite):\n"
        "    plugin = OverCommitFake(hardware=True)\n"
        "    backend = 'real'\n\n"
        "class TestOverDeclared(ConformanceSuite):\n"
        "    plugin = OverCommitFake(hardware=True)\n"
        "    backend = 'real'\n"
        "    behaviours = ['partition/']\n"
        "    expected = {'partition/no-overcommit': 'unsupported'}\n"
    )
    rc, out = pytest_run(tmp_path)
    assert rc == 1, out
    assert counts(out)["failed"] == 1, out
    assert "FAILED test_vendor.py::TestOver::test_behaviour[fakeover:Fake F1 24GB:real::partition/no-overcommit]" in out
    assert "offers 49152 MiB on a 24576 MiB device" in out
