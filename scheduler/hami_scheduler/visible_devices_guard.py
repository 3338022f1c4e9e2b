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
(the value is not known at admission).

``envFrom`` (a ConfigMap or Secret, each key becoming ``<prefix><key>``) is refused where it could set a guarded
variable (its prefix, empty by default, starts the variable's name) in a container that asks for the vendor's
devices: its keys are not readable at admission and may change before any later container start, and there it
would replace the list the plugin handed over. It passes where the container's own ``env`` names the variable
(the kubelet lets ``env`` win over ``envFrom``), and in a container that asks for none of the vendor's devices:
with ``overwriteEnv`` the webhook's entry wins over it, and without, the image's own ``ENV`` line can show as much
(docs/install.md, "Isolation on the node", says what covers that).
Image ``ENV`` lines are no concern otherwise: both the plugin's and the spec's entries override them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from .device_config import VisibleDevicesEnv

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_SHOWN = 64  # characters of a refused value shown in the answer


def _allowed(guard: VisibleDevicesEnv) -> str:
    return ", ".join(repr(v) if v else '""' for v in guard.no_device)


def _shown(value: object) -> str:
    return repr(value if not isinstance(value, str) or len(value) <= _SHOWN else value[:_SHOWN] + "...")


#: envFrom source field -> the object kind named in a refusal.
_SOURCES = {"configMapRef": "ConfigMap", "secretRef": "Secret"}


def _source(src: dict) -> str:
    """``ConfigMap 'app'`` for one envFrom entry (any other source field by its own name)."""
    for field, kind in _SOURCES.items():
        if src.get(field) is not None:
            ref = src[field]
            name = ref.get("name") if isinstance(ref, dict) else None
            return f"{kind} {_shown(name if name is not None else '?')}"
    other = sorted(k for k in src if k != "prefix")
    return f"source {_shown(other[0]) if other else '(none)'}"


def _asked(ctr: dict, names: Collection[str] | None) -> str | None:
    """The first of ``names`` (a vendor's resources) the container names in its limits or requests, or None;
    with no names known, every container counts as asking (the safe side)."""
    if names is None:
        return "devices"
    res = ctr.get("resources") if isinstance(ctr.get("resources"), dict) else {}
    for part in ("limits", "requests"):
        amounts = res.get(part) if isinstance(res.get(part), dict) else {}
        hit = next((n for n in amounts if n in names), None)
        if hit is not None:
            return hit
    return None


def check_env_from(where: str, ctr: dict, guards: Iterable[VisibleDevicesEnv],
                   resources: Mapping[str, Collection[str]] | None = None) -> str | None:
    """One line naming the container and the source when an ``envFrom`` entry could set a guarded variable of a
    vendor whose devices the container asks for (``resources``: variable -> that vendor's resource names), and
    the container's ``env`` does not name the variable (env wins over envFrom); None otherwise."""
    env_from = ctr.get("envFrom")
    if env_from is None:
        return None
    if not isinstance(env_from, list):
        return f"{where}.envFrom: must be a list"
    guards = list(guards)
    env = ctr.get("env") if isinstance(ctr.get("env"), list) else []
    pinned = {e.get("name") for e in env if isinstance(e, dict) and isinstance(e.get("name"), str)}
    name_of = ctr.get("name") if isinstance(ctr.get("name"), str) else "?"
    for j, src in enumerate(env_from):
        if not isinstance(src, dict):
            return f"{where}.envFrom[{j}]: must be an object"
        prefix = src.get("prefix")
        if prefix is None:
            prefix = ""
        if not isinstance(prefix, str):
            return f"{where}.envFrom[{j}].prefix: {_shown(prefix)} must be a string"
        for g in guards:
            var = g.variable
            if var in pinned or not var.startswith(prefix):
                continue
            asked = _asked(ctr, None if resources is None else resources.get(var, ()))
            if asked is None:
                continue
            how = f"with prefix {_shown(prefix)}" if prefix else "without a prefix"
            return (f"{where}.envFrom[{j}]: container {_shown(name_of)} asks for {asked} and takes variables from "
                    f"{_source(src)} {how}, which could set {var} (unreadable at admission, and it may change later) "
                    f"and widen the devices it sees; give it a prefix that {var} does not start with, or take the "
                    "keys it needs one by one with env[].valueFrom")
    return None


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
            return (f"{where}.env[{j}]: container {_shown(name_of)} sets {var} from valueFrom, which the webhook cannot "
                    f"check; a pod may set {var} only to {_allowed(guard)} (any other value widens the devices it "
                    "sees past those it was given)")
        value = e.get("value")
        if value is None:
            value = ""
        if not isinstance(value, str) or value not in guard.no_device:
            return (f"{where}.env[{j}]: container {_shown(name_of)} sets {var}={_shown(value)}, which widens the devices it sees "
                    f"past those it was given; a pod may set {var} only to {_allowed(guard)}")
    return None


def check_pod_spec(spec: dict, guards: list[VisibleDevicesEnv],
                   resources: Mapping[str, Collection[str]] | None = None) -> str | None:
    """The first refusal over every container list of a pod spec, or None. ``resources``: guarded variable -> the
    resource names of its vendor, for the ``envFrom`` rule (None: every container counts as asking)."""
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
            where = f"spec.{key}[{i}]"
            denial = check_container(where, ctr, guards) or check_env_from(where, ctr, guards, resources)
            if denial:
                return denial
    return None
