"""Each distribution, built as a wheel by ``make wheels`` (what ``make dist`` runs), installs alone into a
fresh virtualenv and works: its console scripts and ``hami`` subcommands answer ``--help``, a vendor plugin
shows up in ``hami plugins`` and finds (simulated) devices, and a command of an absent distribution says
what to install.

Offline by design: the wheels of this repository come from ``--find-links`` with ``--no-index``, and the
third-party dependencies (pydantic, kubernetes, numpy, ...) are the ones already installed in the
interpreter running the tests, made visible to the fresh venv through a folder of links that leaves out
this repository's own distributions. So pip must resolve ``hami-hal`` and every other project dependency
from the wheels alone, and a missing or misnamed requirement fails here. Marked ``dist`` (about ten
seconds); ``pytest -m 'not dist'`` skips it while iterating.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.dist

REPO = Path(__file__).resolve().parents[1]
OURS = re.compile(r"^hami[_-]|^__editable__|^_?hami")
#: Packaging tools of the running venv: the fresh venv must not borrow them.
TOOLS = re.compile(r"^(pip|setuptools|wheel|_distutils_hack|distutils-precedence)([-_.]|$)")


def _dist_folders() -> list[Path]:
    """``*/pyproject.toml`` as the Makefile's wildcard sees it: hidden folders (scratch copies) are not dists."""
    return sorted(p for p in REPO.glob("*/pyproject.toml") if not p.parent.name.startswith("."))


def _projects() -> dict[str, dict]:
    """Every distribution of the repository: ``[project]`` of the root and of each ``*/pyproject.toml``."""
    out = {}
    for path in [REPO / "pyproject.toml", *_dist_folders()]:
        project = tomllib.loads(path.read_text())["project"]
        out[project["name"]] = project
    return out


PROJECTS = _projects()


def _env() -> dict[str, str]:
    """The environment without this session's plugin selection or import paths."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("HAMI_", "PYTHON", "VIRTUAL_ENV", "PIP_"))} | {"PIP_NO_INPUT": "1"}


def _run(argv: list, cwd: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = tmp_path_factory.mktemp("wheels")
    proc = _run(["make", "-s", "-C", REPO, "wheels", f"BIN={Path(sys.executable).parent}", f"DIST_DIR={out}"],
                cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # setuptools' complaints about our own pyproject/setup files (license table, undeclared package data...)
    noise = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "Warning" in ln]
    assert not noise, "building the wheels warned:\n" + "\n".join(noise)
    return out


@pytest.fixture(scope="module")
def deps(tmp_path_factory) -> Path:
    """Links to the running interpreter's third-party packages, without this repo's or pip's own."""
    site = Path(sysconfig.get_paths()["purelib"])
    out = tmp_path_factory.mktemp("deps")
    for entry in site.iterdir():
        if OURS.search(entry.name) or TOOLS.search(entry.name) or entry.suffix == ".pth":
            continue
        (out / entry.name).symlink_to(entry)
    return out


def _fresh_venv(where: Path, deps: Path) -> Path:
    """A venv with no pip and no packages; the dependency links are on its path through a .pth file."""
    proc = _run([sys.executable, "-m", "venv", "--without-pip", where], cwd=where.parent)
    assert proc.returncode == 0, proc.stderr
    python = where / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=where)
    Path(purelib.stdout.strip(), "_hami_test_deps.pth").write_text(f"{deps}\n")
    return python


def _install(python: Path, wheels: Path, dist: str) -> set[str]:
    """pip (of the running interpreter) installs ``dist`` into the venv of ``python`` from the wheels only;
    returns the distributions that landed in that venv."""
    proc = _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index",
                 "--no-cache-dir", "--find-links", wheels, dist], cwd=python.parent)
    assert proc.returncode == 0, f"pip install {dist}:\n{proc.stdout}\n{proc.stderr}"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=python.parent).stdout.strip())
    platlib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"],
                        cwd=python.parent).stdout.strip())
    found = {p.name.split("-")[0].replace("_", "-") for d in {purelib, platlib} for p in d.glob("*.dist-info")}
    return found


def _closure(name: str) -> set[str]:
    """``name`` and the repository distributions it requires, transitively."""
    out, todo = set(), [name]
    while todo:
        n = todo.pop()
        if n in out:
            continue
        out.add(n)
        for req in PROJECTS[n].get("dependencies", []):
            dep = re.split(r"[<>=!~; \[]", req, maxsplit=1)[0].strip().lower().replace("_", "-")
            if dep in PROJECTS:
                todo.append(dep)
    return out


@pytest.mark.parametrize("dist", sorted(PROJECTS))
def test_distribution_installs_alone_and_works(dist, wheels, deps, tmp_path):
    project = PROJECTS[dist]
    python = _fresh_venv(tmp_path / "venv", deps)
    installed = _install(python, wheels, dist)
    # Exactly the distribution and the repository distributions it declares, nothing else of ours.
    assert installed == _closure(dist), installed
    bindir = python.parent
    work = tmp_path / "work"  # outside the repository, so nothing is imported from the source tree
    work.mkdir()

    package = project["name"].replace("-", "_")
    proc = _run([python, "-c", f"import {package}, sys; print({package}.__file__)"], cwd=work)
    assert proc.returncode == 0 and str(tmp_path / "venv") in proc.stdout, proc.stdout + proc.stderr

    for script in project.get("scripts", {}):
        proc = _run([bindir / script, "--help"], cwd=work)
        assert proc.returncode == 0 and proc.stdout.startswith("usage:"), f"{script}: {proc.stderr}"

    entry_points = project.get("entry-points", {})
    for command in entry_points.get("hami_hal.cli", {}):
        proc = _run([bindir / "hami", command, "--help"], cwd=work)
        assert proc.returncode == 0 and "usage:" in proc.stdout, f"hami {command}: {proc.stderr}"

    plugins = entry_points.get("hami_hal.plugins", {})
    if plugins:
        proc = _run([bindir / "hami", "plugins", "--json"], cwd=work)
        assert proc.returncode == 0, proc.stderr
        loaded = {p["name"] for p in json.loads(proc.stdout)["plugins"]}
        assert set(plugins) <= loaded, loaded
        proc = _run([bindir / "hami", "devices", "--json", "--backend", "sim"], cwd=work)
        assert proc.returncode == 0, proc.stderr
        inv = json.loads(proc.stdout)
        assert inv["source"] == "simulated" and inv["devices"], "a plugin alone finds its simulated devices"

    if "hami-conformance" not in installed:
        proc = _run([bindir / "hami", "conformance", "run"], cwd=work)
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(err) == 1 and "pip install hami-conformance" in err[0], proc.stderr


def test_make_wheels_builds_every_distribution(wheels):
    built = {p.name.split("-")[0].replace("_", "-") for p in wheels.glob("*.whl")}
    assert built == set(PROJECTS)


def test_pyproject_files_use_the_forms_setuptools_does_not_warn_about():
    for path in [REPO / "pyproject.toml", *_dist_folders()]:
        doc = tomllib.loads(path.read_text())
        where = path.relative_to(REPO)
        assert isinstance(doc["project"].get("license"), str), f"{where}: license must be an SPDX string"
        setuptools = [r for r in doc["build-system"]["requires"] if r.startswith("setuptools")]
        floor = re.search(r">=\s*(\d+)", setuptools[0]) if len(setuptools) == 1 else None
        assert floor and int(floor.group(1)) >= 77, f"{where}: needs setuptools>=77 for an SPDX license"
