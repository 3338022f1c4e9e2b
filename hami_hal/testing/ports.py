"""Ports for tests that start a server process, without the free-port race.

Picking a free port, closing it and handing its number to a server leaves a gap in which another process can
take it (a CI flake). Two ways round it:

* a server that can bind port 0 does, and prints the port it got in its banner (``... on http://host:PORT``):
  :func:`read_banner_port` / :func:`wait_log_port` read it back;
* a server that cannot (its port 0 means "off", or a third-party binary) is started by :func:`retry_taken`,
  which picks another port when the one picked was taken in the gap, a bounded number of times.
"""

from __future__ import annotations

import queue
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: ``hami-scheduler serve``/``webhook`` and ``hami metrics serve`` banners: "... on http(s)://host:PORT ..."
BANNER = re.compile(r"\bon https?://(?:\[[0-9a-fA-F:.]*\]|[^\s/:\[\]]+):(\d{1,5})\b")
#: What a server says when its port was taken (Go and Python wording, and our own one-line refusal).
TAKEN = re.compile(r"address already in use|cannot listen", re.IGNORECASE)


class PortTaken(Exception):
    """The server could not listen: another process took its port between the pick and the bind."""


def banner_port(text: str) -> int | None:
    """The port in a server's banner line, or None when ``text`` holds no banner."""
    m = BANNER.search(text)
    port = int(m.group(1)) if m else 0
    return port if 0 < port <= 65535 else None


def read_banner_port(read_line: Callable[[], str], timeout: float = 60.0, max_lines: int = 200) -> int:
    """Read a process's output line by line until its banner. Its exit (an empty read) first, no banner within
    ``timeout`` (a server that printed another port, or none) or ``max_lines`` lines is an error naming the output.

    The lines are read on a helper thread, so a server that stays up without a banner cannot hang the test; the
    thread stops at the banner, leaving the rest of the output to the caller.
    """
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for _ in range(max_lines):
            line = read_line()
            lines.put(line)
            if not line or banner_port(line) is not None:
                return

    threading.Thread(target=pump, name="banner-reader", daemon=True).start()
    seen: list[str] = []
    end = time.monotonic() + timeout
    for _ in range(max_lines):
        try:
            line = lines.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            seen.append(f"(no listening banner within {timeout:g} s)")
            break
        if not line:
            break
        port = banner_port(line)
        if port is not None:
            return port
        seen.append(line.rstrip())
    raise RuntimeError("no listening banner in the server's output:\n" + "\n".join(seen[-20:]))


def wait_log_port(log: Path, alive: Callable[[], bool], timeout: float = 60.0) -> int:
    """Poll a log file a process writes until its banner appears; the process exiting first is an error."""
    end = time.monotonic() + timeout
    text = ""
    while time.monotonic() < end:
        try:
            text = log.read_text(errors="replace")
        except OSError:
            text = ""
        for line in text.splitlines():
            port = banner_port(line)
            if port is not None:
                return port
        if not alive():
            break
        time.sleep(0.1)
    raise RuntimeError(f"no listening banner in {log} within {timeout:g} s:\n" + "\n".join(text.splitlines()[-20:]))


def free_port(host: str = "127.0.0.1") -> int:
    """A port free at this instant; only for :func:`retry_taken`, which copes with losing it."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def retry_taken(start: Callable[[int], T], attempts: int = 5) -> T:
    """``start(port)`` on a free port; a :class:`PortTaken` from it means another port, up to ``attempts`` tries."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, not {attempts}")
    for attempt in range(attempts):
        try:
            return start(free_port())
        except PortTaken:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
