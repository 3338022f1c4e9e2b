"""The admission check that keeps a pod from widening its own device access through a visible-devices variable.

A vendor's node plugin gives a container its devices by setting the vendor's variable (``NVIDIA_VISIBLE_DEVICES=
<uuids>``) in the container edits of its Allocate answer, and the vendor's runtime hook mounts what the variable
names. The kubelet puts the pod spec's ``env`` (and ``envFrom``) after the device plugin's entries and the runtime
keeps the last entry of a name, so a spec value such as ``all`` or another device's UUID replaces the plugin's list:
the container sees devices it was not given, without the interposer's limits on them. A pod asking for no device
gets the same through the hook unless the webhook's ``overwriteEnv`` replaces its value.

The check: each container, init container and ephemeral container may give a guarded variable (one entry of
:data:`.device_config.HIDE_DEVICES_ENV` per vendor, data so the scheduler stays vendor-neutral) only a value that
shows no device (``none``, ``void``, ``""`` for NVIDIA). A literal other value is refused, and so is ``valueFrom``
(the value is not known at admission). ``envFrom`` is not checked: the webhook cannot see a ConfigMap's or Secret's
keys, and they may change after admission (docs/install.md, "Isolation on the node", says what covers it).
Image ``ENV`` lines are no concern: both the plugin's and the spec's entries override them.
"""

from __future__ import annotations

from collections.abc import Iterable

from .device_config import VisibleDevicesEnv

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_SHOWN = 64  # characters of a refused value shown in the answer


def _allowed(guard: VisibleDevicesEnv) -> str:
    return ", ".join(repr(v) if v else '""' for v in guard.no_device)


def check_container(where: str, ctr: dict, guards: Iterable[VisibleDevicesEnv]) -> str | None:
    """One line naming the container, the variable and the value when the container's spec ``env`` widens a guarded
    variable; None when it does not. ``where`` is the container's field path (``spec.containers[1]``)."""
    env = ctr.get("env")
    if env is None:
        return None
    if not isinstance(env, list):
        return f"{where}.env: must be a list"
    by_name = {g.variable: g for g in guards}
    name_of = ctr.get("name") if isinstance(ctr.get("name"), str) else "?"
    for j, e in enumerate(env):
        if not isinstance(e, dict):
            return f"{where}.env[{j}]: must be an object"
        name = e.get("name")
        guard = by_name.get(name) if isinstance(name, str) else None
        if guard is None:
            continue
        var = guard.variable
        if e.get("valueFrom") is not None:
            return (f"{where}.env[{j}]: container {name_of!r} sets {var} from valueFrom, which the webhook cannot "
                    f"check; a pod may set {var} only to {_allowed(guard)} (any other value widens the devices it "
                    "sees past those it was given)")
        value = e.get("value")
        if value is None:
            value = ""
        if not isinstance(value, str) or value not in guard.no_device:
            shown = repr(value if not isinstance(value, str) or len(value) <= _SHOWN else value[:_SHOWN] + "...")
            return (f"{where}.env[{j}]: container {name_of!r} sets {var}={shown}, which widens the devices it sees "
                    f"past those it was given; a pod may set {var} only to {_allowed(guard)}")
    return None


def check_pod_spec(spec: dict, guards: list[VisibleDevicesEnv]) -> str | None:
    """The first refusal over every container list of a pod spec, or None."""
    if not guards:
        return None
    for key in CONTAINER_LISTS:
        items = spec.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            return f"spec.{key}: must be a list"
        for i, ctr in enumerate(items):
            if not isinstance(ctr, dict):
                return f"spec.{key}[{i}]: must be an object"
            denial = check_container(f"spec.{key}[{i}]", ctr, guards)
            if denial:
                return denial
    return None
