"""CDI spec files for allocated containers (HAMi's ``deviceListStrategy: cdi-annotations`` analogue).

With ``--device-list-strategy cdi`` the agent writes one spec per container into the CDI folder
(``/var/run/cdi`` by default) and answers the kubelet with the fully-qualified CDI name only; the
container runtime applies the edits. The spec is removed with the container's state folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..models import ContainerEdits

#: CDI vendor (a DNS subdomain) of the specs this agent writes; the class is the plugin vendor key.
CDI_VENDOR = "hami-hal.io"


class CdiWriter:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _file(self, vendor: str, device: str) -> Path:
        return self.folder / f"{CDI_VENDOR}-{vendor}-{device}.json"

    def write(self, vendor: str, device: str, edits: ContainerEdits) -> str:
        """Write the spec atomically; returns the fully-qualified device name ``hami-hal.io/<vendor>=<device>``."""
        kind = f"{CDI_VENDOR}/{vendor}"
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._file(vendor, device)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(edits.to_cdi(kind, device), indent=2))
        os.replace(tmp, path)
        return f"{kind}={device}"

    def remove(self, vendor: str, device: str) -> None:
        self._file(vendor, device).unlink(missing_ok=True)
