"""Make ``hami_plugins_cambricon`` the real package in tests, not pytest's placeholder for the test files' dotted
names (the distribution folder has the package's name; see hami_plugins_nvidia/tests/conftest.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

_DIST = Path(__file__).resolve().parents[1]
if str(_DIST) not in sys.path:
    sys.path.insert(0, str(_DIST))
_placeholder = sys.modules.get("hami_plugins_cambricon")
if _placeholder is not None and getattr(_placeholder, "__file__", None) is None:
    del sys.modules["hami_plugins_cambricon"]
    _real = importlib.import_module("hami_plugins_cambricon")
    if "hami_plugins_cambricon.tests" in sys.modules:
        _real.tests = sys.modules["hami_plugins_cambricon.tests"]  # type: ignore[attr-defined]
