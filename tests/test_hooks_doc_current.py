"""docs/hooks.md is generated from the hookspec docstrings and must be current."""

from __future__ import annotations

from pathlib import Path

from hami_hal import hookdoc

ROOT = Path(__file__).resolve().parent.parent


def test_hooks_reference_is_generated_and_current():
    doc = ROOT.joinpath("docs", "hooks.md")
    assert doc.read_text() == hookdoc.render(), "docs/hooks.md is stale: python -m hami_hal.hookdoc --write docs/hooks.md"
    assert hookdoc.main(["--check", str(doc)]) == 0


def test_check_mode_catches_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "hooks.md"
    stale.write_text(hookdoc.render().replace("firstresult: yes", "firstresult: maybe", 1))
    assert hookdoc.main(["--check", str(stale)]) == 1
    assert "is stale" in capsys.readouterr().err


def test_every_hook_documents_when_and_default_or_required():
    from hami_hal.plugin_loading import REQUIRED_HOOKS

    for section, name in hookdoc._hooks():
        summary, _, when, _, ret, default = hookdoc._parts(getattr(hookdoc.hookspecs, name).__doc__ or "")
        assert summary and when.startswith("When:") and ret.startswith("Return:"), name
        assert default.startswith("Default:") or name in REQUIRED_HOOKS, name
        assert section != "Other", name
