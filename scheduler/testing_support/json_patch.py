"""RFC 6902 JSON Patch, the parts a webhook patch may use, strict like the apiserver's: ``add`` into an array needs
an index up to its length or ``-``, ``replace`` needs the target to exist. Tests apply the webhook's patch with it
and check the resulting pod, so a patch the apiserver would refuse fails there too."""

from __future__ import annotations

import copy


def _walk(doc, pointer: str):
    assert pointer.startswith("/"), pointer
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    parent = doc
    for p in parts[:-1]:
        parent = parent[int(p)] if isinstance(parent, list) else parent[p]
    return parent, parts[-1]


def apply_patch(doc: dict, ops: list[dict]) -> dict:
    doc = copy.deepcopy(doc)
    for op in ops:
        parent, last = _walk(doc, op["path"])
        value = copy.deepcopy(op.get("value"))
        if op["op"] == "add":
            if isinstance(parent, list):
                if last == "-":
                    parent.append(value)
                else:
                    assert 0 <= int(last) <= len(parent), f"add past the end: {op}"
                    parent.insert(int(last), value)
            else:
                assert isinstance(parent, dict), f"add under a non-container: {op}"
                parent[last] = value
        elif op["op"] == "replace":
            if isinstance(parent, list):
                assert 0 <= int(last) < len(parent), f"replace of a missing index: {op}"
                parent[int(last)] = value
            else:
                assert last in parent, f"replace of a missing member: {op}"
                parent[last] = value
        else:
            raise AssertionError(f"unexpected op {op}")
    return doc
