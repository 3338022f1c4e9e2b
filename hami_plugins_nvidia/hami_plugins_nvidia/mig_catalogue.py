"""MIG GPU-instance profiles of known SKUs, from the plugin's own device profiles.

Used only when NVML will not list the profiles of a MIG-capable GPU (some drivers answer only while
MIG mode is enabled). The result is marked ``mig_profiles_source: catalogue:<profile>`` so it is never
mistaken for an NVML answer.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from .nvml_port import MigProfile

PROFILE_DIR = Path(__file__).parent / "profiles"


@cache
def _by_model() -> dict[str, tuple[str, tuple[MigProfile, ...]]]:
    out: dict[str, tuple[str, tuple[MigProfile, ...]]] = {}
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "DeviceProfile":
                continue
            spec = doc["spec"]
            profiles = spec.get("vendor_data", {}).get("mig_profiles") or []
            if not profiles or spec["model"] in out:
                continue
            out[spec["model"]] = (doc["metadata"]["name"], tuple(
                MigProfile(int(p["index"]), int(p["id"]), str(p["name"]), int(p["memory_mib"]), int(p["slices"]),
                           int(p["instances"]), int(p["sms"]), tuple((int(s), int(z)) for s, z in p["placements"]))
                for p in profiles
            ))
    return out


def catalogue_profiles(model: str) -> tuple[str, list[MigProfile]] | None:
    """``(device profile name, profiles)`` for an exact product name, or None when unknown."""
    found = _by_model().get(model)
    return (found[0], list(found[1])) if found else None
