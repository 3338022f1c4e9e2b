"""Download the openb GPU trace (Alibaba ``cluster-trace-gpu-v2023``) with pinned checksums.

The CSV files are public in github.com/alibaba/clusterdata; the repository never copies them. Each file is
fetched to ``<name>.part`` first, resumed with an HTTP ``Range`` request when a previous run was cut off,
bounded by its pinned size, and only renamed to its final name once its SHA-256 matches the pinned one. A
file that is already there with the right checksum is not fetched again; one with a different checksum is
left alone (it may be the user's own copy) and reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

from hami_hal.errors import HalError, InputError

#: Raw files of the trace's ``csv`` folder (branch ``master``; the pinned checksums catch any change).
SOURCE_URL = "https://raw.githubusercontent.com/alibaba/clusterdata/master/cluster-trace-gpu-v2023/csv"
#: The dataset's home page: its README describes the fields, asks to cite the paper, and states the terms.
HOMEPAGE = "https://github.com/alibaba/clusterdata/tree/master/cluster-trace-gpu-v2023"
TERMS = ("openb GPU trace published by Alibaba Group (github.com/alibaba/clusterdata): use it for research or study; "
         "cite Weng et al., \"Beware of Fragmentation\", USENIX ATC '23")
OFFLINE_HINT = ("offline? fetch on a connected machine and copy the folder, or pass --base-url with a mirror "
                "or a file:// copy")
CHUNK = 64 * 1024
TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class TraceFile:
    """One file of the trace as published: name, SHA-256 and size in bytes."""

    name: str
    sha256: str
    size: int


def _pins(*rows: tuple[str, str, int]) -> dict[str, TraceFile]:
    return {name: TraceFile(name, sha, size) for name, sha, size in rows}


#: Checksums and sizes computed from the published files (2026-12-04); every file the simulator reads.
PINNED: dict[str, TraceFile] = _pins(
    ("openb_node_list_gpu_node.csv", "2beca64b4d3dfa342036a34b56a495c6cef9225db836c81f541282cb1df320b5", 42353),
    ("openb_pod_list_default.csv", "1ee7ed79c27a3b0861cda8ddba86a004c6aba904caafa329a76ae93ca63834a8", 575468),
    ("openb_pod_list_cpu050.csv", "747f43247bffc2b0bb081d7f61f0705ca8d390dafc0b647e642c92f3baf3ba1e", 525811),
    ("openb_pod_list_cpu200.csv", "b7e9d8a1a601da84d6e0b4110b19ef5001be5e4796d33e7b82f166ba95161f87", 622703),
    ("openb_pod_list_gpushare40.csv", "d83ce79a4eb6987524bedbb0c65e41aed3a36bf6c1b78b86234c3687a07e1d40", 572662),
    ("openb_pod_list_gpushare80.csv", "88b6649369ced40d0fde287d2498ea61ff4b05fccba8bdc95daf6042f2f8431e", 563740),
    ("openb_pod_list_gpuspec10.csv", "2dc7e4cb9480484f08539720b433a9ec9ab5d76b396f3f7557c53a2ff78a7611", 579461),
    ("openb_pod_list_gpuspec25.csv", "9d030679a2ccd7e27a7ec9ff15baff34480d22a0012515691fc187e3f35ee68c", 584915),
    ("openb_pod_list_multigpu20.csv", "d9ec6f6c74fb980cc0b81239470c6353fceea077ea9abd610003b604c7cc2b01", 271530),
    ("openb_pod_list_multigpu40.csv", "32c9e8731ca07ef96108aa65f2a289bb9aacb47f642ed9e3789f99b242df60eb", 286202),
)

Status = Literal["present", "downloaded", "resumed"]
FileState = Literal["ok", "missing", "partial", "differs"]


class TraceFetchError(HalError):
    """A download failed (offline, HTTP error, wrong size or checksum); the message is one line."""


class FetchProgress(Protocol):
    """What :func:`fetch_trace` reports to (the CLI draws it as a rich progress bar)."""

    def begin(self, name: str, total: int, done: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def end(self, name: str, status: Status) -> None: ...


class _Silent:
    def begin(self, name: str, total: int, done: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def end(self, name: str, status: Status) -> None:
        pass


@dataclass(frozen=True, slots=True)
class FetchResult:
    name: str
    status: Status
    #: Bytes transferred by this run (0 when the file was already present).
    transferred: int


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_state(path: Path, pin: TraceFile) -> FileState:
    """``ok`` (right checksum), ``missing``, ``partial`` (only a ``.part`` exists) or ``differs``."""
    if path.is_file():
        return "ok" if path.stat().st_size == pin.size and sha256_of(path) == pin.sha256 else "differs"
    return "partial" if _part(path).is_file() else "missing"


def check_base_url(url: str) -> str:
    """Only http(s) and file URLs; a trailing slash is dropped so file names join with one."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http", "file") or (parts.scheme != "file" and not parts.netloc):
        raise InputError("--base-url", url, "must be an https://, http:// or file:// folder URL")
    return url.rstrip("/")


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


@contextlib.contextmanager
def _folder_lock(dest: Path) -> Iterator[None]:
    """One fetch per folder at a time: two would write the same ``.part`` files."""
    try:
        fh = (dest / ".fetch.lock").open("w")
    except OSError as err:
        raise TraceFetchError(f"cannot write into {dest}: {err.strerror}; choose another folder with --dest") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TraceFetchError(f"another `trace fetch` is writing into {dest}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": "hami-scheduler-trace-fetch"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            raise TraceFetchError(f"{url}: the server refused to resume at byte {offset}; delete "
                                  f"{Path(urlsplit(url).path).name}.part and run again") from None
        raise TraceFetchError(f"cannot download {url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TraceFetchError(f"cannot download {url}: {reason} ({OFFLINE_HINT})") from None


def _download(url: str, pin: TraceFile, final: Path, progress: FetchProgress, timeout: float) -> FetchResult:
    part = _part(final)
    offset = part.stat().st_size if part.is_file() else 0
    if offset > pin.size:
        part.unlink()
        offset = 0
    resp = _open(url, offset, timeout) if offset < pin.size else None
    transferred = 0
    if resp is not None:
        with resp:
            status = getattr(resp, "status", None)
            content_range = resp.headers.get("Content-Range", "") if resp.headers else ""
            resumed = offset > 0 and status == 206
            if resumed and not content_range.startswith(f"bytes {offset}-"):
                raise TraceFetchError(f"{url}: asked for bytes from {offset}, got range {content_range!r}")
            if not resumed and status not in (200, None):  # None: a file:// URL
                raise TraceFetchError(f"cannot download {url}: unexpected HTTP status {status}")
            if not resumed:
                offset = 0  # the server sent the whole file (no Range support): start again
            progress.begin(pin.name, pin.size, offset)
            try:
                with part.open("ab" if resumed else "wb") as out:
                    while block := resp.read(CHUNK):
                        if offset + transferred + len(block) > pin.size:
                            out.close()
                            part.unlink()
                            raise TraceFetchError(
                                f"{url}: the server sent more than the pinned {pin.size} bytes; not kept")
                        out.write(block)
                        transferred += len(block)
                        progress.advance(len(block))
            except (urllib.error.URLError, OSError) as err:
                raise TraceFetchError(f"download of {url} broke off after {offset + transferred} of {pin.size} "
                                      f"bytes ({err}); run the same command again to resume") from None
    size = part.stat().st_size if part.is_file() else 0
    if size < pin.size:
        raise TraceFetchError(f"download of {url} ended after {size} of {pin.size} bytes; "
                              "run the same command again to resume")
    digest = sha256_of(part)
    if digest != pin.sha256:
        part.unlink()
        raise TraceFetchError(f"{url}: SHA-256 {digest} differs from the pinned {pin.sha256}; not kept")
    os.replace(part, final)
    result = FetchResult(pin.name, "resumed" if offset else "downloaded", transferred)
    progress.end(pin.name, result.status)
    return result


def fetch_trace(
    dest: Path,
    names: Sequence[str],
    *,
    base_url: str = SOURCE_URL,
    pinned: Mapping[str, TraceFile] | None = None,
    progress: FetchProgress | None = None,
    timeout: float = TIMEOUT_S,
) -> list[FetchResult]:
    """Make ``dest`` hold ``names`` with their pinned checksums; download only what is missing."""
    base = check_base_url(base_url)
    pinned = PINNED if pinned is None else pinned
    unknown = [n for n in names if n not in pinned]
    if unknown:
        raise InputError("trace file", unknown[0], "has no pinned checksum")
    progress = progress or _Silent()
    if all(file_state(dest / n, pinned[n]) == "ok" for n in names):
        for n in names:  # verified already: nothing to write, so a read-only folder is fine
            progress.end(n, "present")
        return [FetchResult(n, "present", 0) for n in names]
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError("--dest", str(dest), f"cannot be created ({err.strerror})") from None
    results: list[FetchResult] = []
    with _folder_lock(dest):
        for name in names:
            pin, final = pinned[name], dest / name
            state = file_state(final, pin)
            if state == "ok":
                results.append(FetchResult(name, "present", 0))
                progress.end(name, "present")
                continue
            if state == "differs":
                raise TraceFetchError(f"{final} exists but is not the published file (size or SHA-256 differs); "
                                      "move it away to download it again")
            results.append(_download(f"{base}/{name}", pin, final, progress, timeout))
    return results
