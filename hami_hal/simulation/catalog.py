"""Load device and node profiles from YAML and compose simulated nodes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from .. import bounded_yaml
from ..errors import ProfileError
from .node import SimDevice, SimLink, SimulatedNode, sim_uuid
from .profile_models import DeviceProfile, NodeProfile

#: Extra profile files or folders, ``:``-separated.
PROFILE_PATH_ENV = "HAMI_HAL_PROFILE_PATH"


def _first_error(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"]) or "document"
    return f"{loc}: {e['msg']}"


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path]


class ProfileCatalog:
    """All known device and node profiles, by name."""

    def __init__(self) -> None:
        self.devices: dict[str, DeviceProfile] = {}
        self.nodes: dict[str, NodeProfile] = {}
        self._origin: dict[str, Path] = {}

    @classmethod
    def from_paths(cls, paths: Iterable[Path], *, include_env: bool = True) -> ProfileCatalog:
        cat = cls()
        all_paths = list(paths)
        if include_env and os.environ.get(PROFILE_PATH_ENV):
            all_paths += [Path(p) for p in os.environ[PROFILE_PATH_ENV].split(":") if p]
        for path in all_paths:
            if not path.exists():
                raise ProfileError(f"{PROFILE_PATH_ENV}: {str(path)!r} does not exist")
            for f in _yaml_files(path):
                cat.load_file(f)
        return cat

    def load_file(self, path: Path) -> None:
        try:
            docs = bounded_yaml.load_all(bounded_yaml.read_text(path))
        except (OSError, UnicodeDecodeError) as err:
            raise ProfileError(f"{path}: cannot be read ({err.__class__.__name__})") from None
        except bounded_yaml.YamlBoundError as err:
            raise ProfileError(f"{path}: refused: the file {err}") from None
        except yaml.YAMLError as err:
            line = getattr(getattr(err, "problem_mark", None), "line", None)
            where = f" line {line + 1}" if line is not None else ""
            raise ProfileError(f"{path}{where}: not valid YAML") from None
        for doc in docs:
            self.add(doc, path)

    def add(self, doc: object, origin: Path | None = None) -> None:
        where = str(origin) if origin else "profile"
        if not isinstance(doc, dict) or doc.get("kind") not in ("DeviceProfile", "NodeProfile"):
            kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
            raise ProfileError(f"{where}: kind {kind!r} is not DeviceProfile or NodeProfile")
        model = DeviceProfile if doc["kind"] == "DeviceProfile" else NodeProfile
        try:
            prof = model.model_validate(doc)
        except ValidationError as err:
            raise ProfileError(f"{where}: {_first_error(err)}") from None
        table = self.devices if isinstance(prof, DeviceProfile) else self.nodes
        name = prof.metadata.name
        if name in table:
            raise ProfileError(f"{where}: {doc['kind']} {name!r} already defined in {self._origin.get(name)}")
        table[name] = prof  # type: ignore[assignment]
        if origin:
            self._origin[name] = origin

    def default_nodes(self) -> list[str]:
        return sorted(n for n, p in self.nodes.items() if p.spec.default)

    def compose(self, node_name: str) -> SimulatedNode:
        """Build the simulated node; every reference is checked so a bad profile fails here."""
        prof = self.nodes.get(node_name)
        if prof is None:
            known = ", ".join(sorted(self.nodes)) or "none"
            raise ProfileError(f"node profile {node_name!r} not found (known: {known})")
        spec = prof.spec
        devices: list[SimDevice] = []
        per_vendor: dict[str, int] = {}
        for group in spec.devices:
            dprof = self.devices.get(group.profile)
            if dprof is None:
                raise ProfileError(f"node profile {node_name!r}: device profile {group.profile!r} not found")
            for i in range(group.count):
                numa = group.numa_nodes[i if len(group.numa_nodes) > 1 else 0] if group.numa_nodes else None
                node_index = len(devices)
                vendor = dprof.spec.vendor
                vidx = per_vendor.get(vendor, 0)
                per_vendor[vendor] = vidx + 1
                devices.append(
                    SimDevice(
                        index=vidx,
                        node_index=node_index,
                        uuid=sim_uuid(node_name, node_index, dprof.spec),
                        profile=group.profile,
                        spec=dprof.spec,
                        numa_node=numa,
                        pci_bus_id=f"00000000:{0x10 + node_index:02X}:00.0",
                    )
                )
        faults = {}
        for f in spec.faults:
            if f.index >= len(devices):
                raise ProfileError(f"node profile {node_name!r}: fault index {f.index} out of range")
            faults[f.index] = f.fault
        devices = [
            SimDevice(**{**d.__dict__, "fault": faults.get(d.node_index)}) if d.node_index in faults else d
            for d in devices
        ]
        links: dict[tuple[int, int], SimLink] = {}
        for ls in spec.links:
            if ls.between == "all":
                pairs = [(a, b) for a in range(len(devices)) for b in range(a + 1, len(devices))]
            else:
                a, b = sorted(ls.between)
                if b >= len(devices):
                    raise ProfileError(f"node profile {node_name!r}: link index {b} out of range")
                pairs = [(a, b)]
            for a, b in pairs:
                links[(a, b)] = SimLink(a, b, ls.kind, ls.count)
        return SimulatedNode(
            name=node_name,
            driver_version=spec.driver_version,
            runtime_version=spec.runtime_version,
            devices=devices,
            links=list(links.values()),
        )
