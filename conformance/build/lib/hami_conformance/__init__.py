"""hami-conformance: run behaviours against installed hami-hal plugins and emit the capability matrix.

Behaviours (what conformance means) are data in ``behaviors/*.yaml``; checks (how it is verified) are
functions in ``checks/`` registered under the same IDs. ``runner.run_suite`` ties them to a node's devices.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
