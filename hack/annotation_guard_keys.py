"""Print (or write into charts/hami-hal/values.yaml) the pod annotations and labels the chart's admission policy guards.

The lists come from the code: hami_hal.hami_compat.keys.guarded_pod_keys over every installed vendor plugin,
plus the keys each plugin's ``hami_hal_pod_annotations`` writes, keys.guarded_pod_labels, and the request
annotations (keys.request_pod_keys), guarded once the pod is placed.
``tests/test_chart_annotation_guard.py`` fails when the chart's lists differ, so run
``.venv/bin/python hack/annotation_guard_keys.py --write`` after adding a vendor, a family, a key or a label (it
imports every vendor plugin, so run it with the venv of ``make setup``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

VALUES = Path(__file__).resolve().parents[1] / "charts" / "hami-hal" / "values.yaml"
BEGIN = "    # BEGIN guarded keys (hack/annotation_guard_keys.py --write; do not edit by hand)"
END = "    # END guarded keys"
#: scheduler.annotationGuard.<name>: guarded pod annotations, guarded pod labels, request annotations (guarded once
#: the pod is placed)
LISTS = ("keys", "labels", "requestKeys")


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


def installed_vendors():
    from hami_hal.manager import Hal

    hal = Hal()
    names = {v.name for v in hal.vendors()}
    want = {"ascend", "cambricon", "hygon", "kunlun", "metax", "nvidia"}
    if names != want:
        raise SystemExit(f"hack/annotation_guard_keys.py: installed vendor plugins are {sorted(names)}, "
                         f"not {sorted(want)} (skipped: {hal.skipped})")
    return hal.vendors()


def expected_keys() -> list[str]:
    from hami_hal.hami_compat.keys import guarded_pod_keys

    vendors = installed_vendors()
    return guarded_pod_keys(vendors, vendor_extras(vendors))


def expected() -> dict[str, list[str]]:
    """``{"keys": annotations, "labels": labels, "requestKeys": request annotations}``: what the values.yaml block
    must hold."""
    from hami_hal.hami_compat.keys import guarded_pod_labels, request_pod_keys

    return {"keys": expected_keys(), "labels": guarded_pod_labels(), "requestKeys": request_pod_keys(installed_vendors())}


def block(lists: dict[str, list[str]]) -> str:
    lines = [BEGIN]
    for name in LISTS:
        lines += [f"    {name}:", *(f"      - {k}" for k in lists[name])]
    return "\n".join([*lines, END])


def chart_lists(text: str) -> dict[str, list[str]]:
    """The lists between the markers of values.yaml (each empty when the markers or its heading are missing)."""
    out: dict[str, list[str]] = {name: [] for name in LISTS}
    m = re.search(re.escape(BEGIN) + r"\n((?:.*?\n)?)" + re.escape(END), text, re.S)
    if not m:
        return out
    current = None
    for ln in m.group(1).splitlines():
        item = ln.strip()
        if item.endswith(":") and item[:-1] in out:
            current = item[:-1]
        elif item.startswith("- ") and current is not None:
            out[current].append(item[2:])
    return out


def chart_keys(text: str) -> list[str]:
    """The guarded annotation keys between the markers of values.yaml."""
    return chart_lists(text)["keys"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="replace the block in charts/hami-hal/values.yaml")
    args = ap.parse_args(argv)
    lists = expected()
    if not args.write:
        print(block(lists))
        return 0
    text = VALUES.read_text()
    new, n = re.subn(re.escape(BEGIN) + r"\n(?:.*?\n)?" + re.escape(END), lambda _: block(lists), text, flags=re.S)
    if n != 1:
        print(f"{VALUES}: the guarded-keys markers are missing", file=sys.stderr)
        return 1
    VALUES.write_text(new)
    print(f"{VALUES}: {len(lists['keys'])} guarded annotations, {len(lists['labels'])} guarded labels, "
          f"{len(lists['requestKeys'])} request annotations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
