"""Container edits that enforce an allocation, convertible to a CDI spec."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from .base import HalModel

#: CDI spec version we emit (kubernetes-contracts.md, CDI section).
CDI_VERSION = "0.6.0"


class Mount(HalModel):
    host_path: str
    container_path: str
    options: list[str] = Field(default_factory=lambda: ["ro", "nosuid", "nodev", "bind"])


def host_path(mounts: Iterable, path: str) -> str:
    """The host path that a path inside the container resolves to through ``mounts`` (the longest mount
    wins), else ``path`` itself. Takes anything with ``container_path``/``host_path``: these models or the
    kubelet's ``Mount`` message, so benchmarks can run a container's answer as a host process."""
    best: tuple[str, str] | None = None
    for m in mounts:
        ctr = m.container_path.rstrip("/")
        if (path == ctr or path.startswith(ctr + "/")) and (best is None or len(ctr) > len(best[0])):
            best = (ctr, m.host_path)
    return best[1] + path[len(best[0]):] if best else path


class DeviceNode(HalModel):
    path: str
    host_path: str | None = None
    permissions: str = "rw"


class ContainerEdits(HalModel):
    """Env, mounts and device nodes for one container (the CDI ``containerEdits`` object)."""

    env: dict[str, str] = Field(default_factory=dict)
    mounts: list[Mount] = Field(default_factory=list)
    device_nodes: list[DeviceNode] = Field(default_factory=list)

    def merged(self, other: ContainerEdits) -> ContainerEdits:
        """Combine edits of two vendors; a conflicting env value is an error, not a silent win."""
        env = dict(self.env)
        for key, value in other.env.items():
            if key in env and env[key] != value:
                raise ValueError(f"env {key} set to both {env[key]!r} and {value!r}")
            env[key] = value
        return ContainerEdits(
            env=env,
            mounts=[*self.mounts, *other.mounts],
            device_nodes=[*self.device_nodes, *other.device_nodes],
        )

    def to_cdi(self, kind: str, device_name: str) -> dict:
        """A CDI spec (JSON-ready dict) with one device carrying these edits."""
        edits: dict = {}
        if self.env:
            edits["env"] = [f"{k}={v}" for k, v in sorted(self.env.items())]
        if self.device_nodes:
            edits["deviceNodes"] = [
                {"path": d.path, **({"hostPath": d.host_path} if d.host_path else {}), "permissions": d.permissions}
                for d in self.device_nodes
            ]
        if self.mounts:
            edits["mounts"] = [
                {"hostPath": m.host_path, "containerPath": m.container_path, "options": m.options}
                for m in self.mounts
            ]
        return {"cdiVersion": CDI_VERSION, "kind": kind, "devices": [{"name": device_name, "containerEdits": edits}]}
