"""hami_hal.testing.ports: tests that start servers learn their port without the pick-close-bind race."""

from __future__ import annotations

import errno
import io
import socket
import threading
import time

import pytest

from hami_hal.testing.ports import PortTaken, banner_port, read_banner_port, retry_taken, wait_log_port


@pytest.mark.parametrize(("line", "port"), [
    ("hami-scheduler extender on https://0.0.0.0:43121 (TLS, client certificates required; 1 nodes", 43121),
    ("hami-scheduler webhook on https://127.0.0.1:9443 (scheduler hami-scheduler, 3 managed", 9443),
    ("serving hami-hal metrics on http://127.0.0.1:40001/metrics", 40001),
    ("listening on http://[::1]:8080/", 8080),
    ("hami-scheduler extender on http://127.0.0.1:0 (plain HTTP", None),  # 0 is not a port a client can use
    ("on http://127.0.0.1:99999/", None),
    ("GET /readyz 200", None),
])
def test_banner_port(line, port):
    assert banner_port(line) == port


def test_read_banner_port_skips_notes_and_fails_on_exit_with_the_output():
    out = io.StringIO("note: --device-config has no nvidia section\nserving hami-hal metrics on http://x:4242/m\n")
    assert read_banner_port(out.readline) == 4242
    with pytest.raises(RuntimeError, match="error: --bind"):
        read_banner_port(io.StringIO("error: --bind: 'x' must be host:port\n").readline)


def test_read_banner_port_gives_up_on_a_server_that_stays_up_without_a_usable_banner():
    gate = threading.Event()
    out = iter(["serving hami-hal metrics on http://127.0.0.1:0/metrics\n"])

    def read_line() -> str:  # then blocks, as a pipe from a live server does
        line = next(out, None)
        if line is None:
            gate.wait(30)
            return ""
        return line

    t0 = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match=r"127\.0\.0\.1:0/metrics\n\(no listening banner within 0\.5 s\)"):
            read_banner_port(read_line, timeout=0.5)
    finally:
        gate.set()
    assert time.monotonic() - t0 < 10


def test_wait_log_port_reads_a_growing_log_and_stops_when_the_process_dies(tmp_path):
    log = tmp_path / "srv.log"
    log.write_text("starting\nhami-scheduler extender on http://127.0.0.1:5123 (plain HTTP)\n")
    assert wait_log_port(log, lambda: True, timeout=5) == 5123
    log.write_text("panic: listen tcp 127.0.0.1:1: bind: permission denied\n")
    with pytest.raises(RuntimeError, match="permission denied"):
        wait_log_port(log, lambda: False, timeout=5)


def _bind_or_taken(port: int) -> socket.socket:
    """What a server does with the port it was handed: bind it, or report it taken."""
    srv = socket.socket()
    try:
        srv.bind(("127.0.0.1", port))
    except OSError as exc:
        srv.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken(port) from None
        raise
    return srv


def test_retry_taken_survives_a_rival_taking_the_port_in_the_gap():
    tried: list[int] = []
    rivals: list[socket.socket] = []

    def start(port: int) -> socket.socket:
        tried.append(port)
        if len(tried) == 1:  # another process binds the picked port before the server does
            rival = socket.socket()
            rival.bind(("127.0.0.1", port))
            rival.listen()
            rivals.append(rival)
        return _bind_or_taken(port)

    try:
        with retry_taken(start) as srv:
            assert len(tried) == 2 and srv.getsockname()[1] == tried[1] != tried[0]
    finally:
        for r in rivals:
            r.close()


def test_retry_taken_is_bounded():
    calls = []

    def start(port: int) -> None:
        calls.append(port)
        raise PortTaken(port)

    with pytest.raises(PortTaken):
        retry_taken(start, attempts=3)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="attempts"):
        retry_taken(start, attempts=0)


def test_other_start_failures_are_not_retried():
    calls = []

    def start(port: int) -> None:
        calls.append(port)
        raise RuntimeError("bad flag")

    with pytest.raises(RuntimeError, match="bad flag"):
        retry_taken(start)
    assert len(calls) == 1
