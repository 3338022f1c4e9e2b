"""Print (or write into charts/hami-hal/values.yaml) the pod annotations the chart's admission policy guards.

The list comes from the code: hami_hal.hami_compat.keys.guarded_pod_keys over every installed vendor plugin,
plus the keys each plugin's ``hami_hal_pod_annotations`` writes. ``tests/test_chart_annotation_guard.py`` fails
when the chart's list differs, so run ``.venv/bin/python hack/annotation_guard_keys.py --write`` after adding a
vendor, a family or a key (it imports every vendor plugin, so run it with the venv of ``make setup``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

VALUES = Path(__file__).resolve().parents[1] / "charts" / "hami-hal" / "values.yaml"
BEGIN = "    # BEGIN guarded keys (hack/annotation_guard_keys.py --write; do not edit by hand)"
END = "    # END guarded keys"


def vendor_extras(vendors) -> list[str]:
    """The keys the plugins' ``hami_hal_pod_annotations`` write (their own constants)."""
    from hami_plugins_ascend.runtime_info import PREDICATE_TIME as ASCEND_TIME
    from hami_plugins_cambricon.vendor import ASSIGNED_ANNOTATION, PROFILE_ANNOTATION
    from hami_plugins_kunlun.vendor import DEVICE_IDX_ANNOTATION
    from hami_plugins_metax.vendor import GPU_DEVICES_ALLOCATED
    from hami_plugins_metax.vendor import PREDICATE_TIME as METAX_TIME

    # Ascend's runtime annotation: huawei.com/<common word> per family (runtime_info.runtime_annotations)
    ascend = [f"huawei.com/{f.common_word}" for v in vendors if v.name == "ascend" for f in v.resources]
    return [*ascend, ASCEND_TIME, PROFILE_ANNOTATION, ASSIGNED_ANNOTATION, DEVICE_IDX_ANNOTATION,
            GPU_DEVICES_ALLOCATED, METAX_TIME]


def expected_keys() -> list[str]:
    from hami_hal.hami_compat.keys import guarded_pod_keys
    from hami_hal.manager import Hal

    hal = Hal()
    names = {v.name for v in hal.vendors()}
    want = {"ascend", "cambricon", "hygon", "kunlun", "metax", "nvidia"}
    if names != want:
        raise SystemExit(f"hack/annotation_guard_keys.py: installed vendor plugins are {sorted(names)}, "
                         f"not {sorted(want)} (skipped: {hal.skipped})")
    vendors = hal.vendors()
    return guarded_pod_keys(vendors, vendor_extras(vendors))


def block(keys: list[str]) -> str:
    return "\n".join([BEGIN, "    keys:", *(f"      - {k}" for k in keys), END])


def chart_keys(text: str) -> list[str]:
    """The list between the markers of values.yaml (empty when the markers are missing)."""
    m = re.search(re.escape(BEGIN) + r"\n((?:.*?\n)?)" + re.escape(END), text, re.S)
    if not m:
        return []
    return [ln.strip()[2:] for ln in m.group(1).splitlines() if ln.strip().startswith("- ")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="replace the block in charts/hami-hal/values.yaml")
    args = ap.parse_args(argv)
    keys = expected_keys()
    if not args.write:
        print(block(keys))
        return 0
    text = VALUES.read_text()
    new, n = re.subn(re.escape(BEGIN) + r"\n(?:.*?\n)?" + re.escape(END), lambda _: block(keys), text, flags=re.S)
    if n != 1:
        print(f"{VALUES}: the guarded-keys markers are missing", file=sys.stderr)
        return 1
    VALUES.write_text(new)
    print(f"{VALUES}: {len(keys)} guarded keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
