"""Meta-tests (datasette style): every hook is documented with its exact signature, and tested."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from hami_hal import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(n for n, f in vars(hookspecs).items() if n.startswith("hami_hal_") and inspect.isfunction(f))


def _signature(name: str) -> str:
    args = inspect.signature(getattr(hookspecs, name)).parameters
    return f"{name}({', '.join(args)})"


def _test_sources() -> str:
    files = [*ROOT.joinpath("tests").rglob("test_*.py"), *ROOT.glob("hami_plugins_*/tests/**/test_*.py")]
    return "\n".join(f.read_text() for f in files)


def test_hookspecs_are_found():
    """The hooks the core calls are all declared (a renamed or lost spec fails here)."""
    core = {"hami_hal_vendor", "hami_hal_sim_profiles", "hami_hal_discover", "hami_hal_partition_model",
            "hami_hal_admit_request", "hami_hal_create_partition", "hami_hal_destroy_partition",
            "hami_hal_container_edits", "hami_hal_pod_annotations", "hami_hal_topology", "hami_hal_device_metrics",
            "hami_hal_allocation_metrics", "hami_hal_device_health", "hami_hal_conformance_probe"}
    assert core <= set(HOOKS) and len(HOOKS) >= 14
    assert "hami_hal_fit" not in HOOKS  # a rule the scheduler cannot see is data now


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_signature(hook):
    doc = ROOT.joinpath("docs", "hooks.md").read_text()
    assert _signature(hook) in doc, f"docs/hooks.md lacks `{_signature(hook)}`"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_documents_firstresult(hook):
    doc = ROOT.joinpath("docs", "hooks.md").read_text()
    section = doc.split(f"### {hook}", 1)[1].split("\n### ", 1)[0]
    firstresult = getattr(hookspecs, hook).hami_hal_spec["firstresult"]
    assert ("firstresult: yes" if firstresult else "firstresult: no") in section


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    assert re.search(rf"def test_hook_{hook}\b", _test_sources()), f"no test named test_hook_{hook}"
