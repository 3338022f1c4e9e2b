"""Per-container shared-state folders in HAMi's layout: ``<root>/<podUID>_<container>``.

The agent creates a container's folder at ``Allocate`` (mode 0777, as HAMi does, because the workload
may run as any user) and hands it to the plugins as ``ContainerAllocation.state_dir``; a plugin mounts
it (a vendor interposer keeps its region file there). Who the folder belongs to (pod namespace/name,
container, devices per vendor) is recorded *outside* the folder, in ``<root>/.hami-hal/``, because the
container can write into its own folder. Folders whose pod is gone are removed by :meth:`cleanup`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from pydantic import Field

from ..errors import InputError
from ..models.base import HalModel
from ..models.skew import read_document

log = logging.getLogger(__name__)

#: Pod UIDs are RFC 4122 strings; container names are DNS labels (<= 63).
_UID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_CTR = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
RECORDS = ".hami-hal"
#: A record file larger than this is not ours.
MAX_RECORD_BYTES = 64 << 10
#: The records' format major version (:mod:`hami_hal.models.skew`): an agent rolled back reads the records its
#: successor wrote (fields it does not know are ignored); a newer major one is skipped with one line.
RECORD_FORMAT = 1
#: Refusal lines remembered so each is logged once (bounded; past it the memory starts over).
MAX_REFUSALS_REMEMBERED = 1024


class ContainerRecord(HalModel):
    """Who a state folder belongs to and which devices the container got, per vendor (slice order)."""

    format_version: int = Field(default=RECORD_FORMAT, ge=1)
    pod_uid: str
    namespace: str
    pod: str
    container: str
    devices: dict[str, list[str]] = Field(default_factory=dict)
    #: Partition handles created for the container (vendor -> [{uuid, handle}]), destroyed at cleanup.
    partitions: dict[str, list[dict]] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.pod_uid}_{self.container}"


class StateDirs:
    """The folders under ``root`` and their records."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.records = self.root / RECORDS
        self._refused: set[str] = set()

    def path(self, pod_uid: str, container: str) -> Path:
        """The folder of one container; refuses names that could leave ``root``."""
        if not _UID.match(pod_uid or ""):
            raise InputError("metadata.uid", pod_uid, "is not a pod UID")
        if not _CTR.match(container or ""):
            raise InputError("container name", container, "is not a DNS label")
        return self.root / f"{pod_uid}_{container}"

    def create(self, record: ContainerRecord) -> Path:
        """Make (or reuse) the container's folder and write its record; returns the folder."""
        folder = self.path(record.pod_uid, record.container)
        self.records.mkdir(parents=True, exist_ok=True, mode=0o755)
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o777)  # noqa: S103 - HAMi's layout: any container user writes its region here
        tmp = self.records / f".{record.key}.json.tmp"
        tmp.write_text(record.model_dump_json())
        os.replace(tmp, self.records / f"{record.key}.json")
        return folder

    def remove(self, pod_uid: str, container: str) -> None:
        folder = self.path(pod_uid, container)
        shutil.rmtree(folder, ignore_errors=True)
        (self.records / f"{pod_uid}_{container}.json").unlink(missing_ok=True)

    def list(self) -> list[tuple[ContainerRecord, Path]]:
        """Every recorded container with its folder; unreadable or foreign records are skipped."""
        out = []
        try:
            files = sorted(self.records.glob("*.json"))
        except OSError:
            return []
        for f in files:
            try:
                if f.is_symlink() or f.stat().st_size > MAX_RECORD_BYTES:
                    continue
                rec = read_document(ContainerRecord, f.read_text(), where=f"container record {f.name}",
                                    subject=f"node agent state {self.records}", current=RECORD_FORMAT,
                                    max_chars=MAX_RECORD_BYTES).doc
                folder = self.path(rec.pod_uid, rec.container)
            except (OSError, UnicodeDecodeError):
                continue
            except InputError as exc:
                self._refuse_once(str(exc))
                continue
            if f.stem == rec.key:
                out.append((rec, folder))
        return out

    def _refuse_once(self, line: str) -> None:
        """Log why a record is skipped, once per line (list() runs on every Allocate and cleanup)."""
        if line in self._refused:
            return
        if len(self._refused) >= MAX_REFUSALS_REMEMBERED:
            self._refused.clear()
        self._refused.add(line)
        log.warning("skipped: %s", line)

    def cleanup(self, live_pod_uids: set[str]) -> list[ContainerRecord]:
        """Remove the folders and records of pods not in ``live_pod_uids``; also orphan folders.

        Returns the removed records so the caller can destroy their partitions.
        """
        removed = []
        for rec, _ in self.list():
            if rec.pod_uid not in live_pod_uids:
                self.remove(rec.pod_uid, rec.container)
                removed.append(rec)
        try:
            entries = list(self.root.iterdir())
        except OSError:
            return removed
        for entry in entries:
            uid, sep, ctr = entry.name.partition("_")
            if sep and _UID.match(uid) and _CTR.match(ctr) and uid not in live_pod_uids and entry.is_dir() \
                    and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
        return removed

