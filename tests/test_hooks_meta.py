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
    assert "hami_hal_discover" in HOOKS and "hami_hal_pod_annotations" in HOOKS and len(HOOKS) == 14


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
