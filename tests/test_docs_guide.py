"""The plugin guide's snippets stay true: its YAML profiles compose, its TOML and Python parse."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import yaml

from hami_hal import ENTRY_POINT_GROUP
from hami_hal.simulation import ProfileCatalog

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "writing-a-plugin.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_guide_profiles_compose():
    (text,) = _blocks("yaml")
    cat = ProfileCatalog()
    for doc in yaml.safe_load_all(text):
        cat.add(doc)
    node = cat.compose("acme-mixed-4")
    assert cat.default_nodes() == ["acme-mixed-4"] and [d.fault for d in node.devices] == [None, "xid-79"]


def test_guide_pyproject_declares_the_entry_point():
    (text,) = _blocks("toml")
    data = tomllib.loads(text)
    assert data["project"]["entry-points"][ENTRY_POINT_GROUP] == {"acme": "hami_plugins_acme.plugin"}


def test_guide_python_snippets_parse():
    blocks = _blocks("python")
    assert len(blocks) >= 2
    for code in blocks:
        ast.parse(code)
