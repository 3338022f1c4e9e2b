"""The extender's HTTP layer under hostile clients: every request answered, nothing stalls it, bounded threads."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from hami_scheduler.httpserver import BACKLOG
from hami_scheduler.server import ExtenderServer
from sched_testing import gpu_node, gpu_pod, synced_stack


@pytest.fixture
def stack():
    with synced_stack(gpu_node("node1", gpus=2)) as s:
        yield s


def raw(server: ExtenderServer, data: bytes, timeout: float = 5.0) -> tuple[int, dict, bytes, bool]:
    """Send raw bytes; return (status, headers, body, closed-by-server-after-the-response)."""
    host, port = server.httpd.server_address[:2]
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed without an answer: {buf!r}")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        n = int(headers.get("content-length", 0))
        while len(rest) < n:
            rest += s.recv(65536)
        if headers.get("connection") != "close":
            return status, headers, rest[:n], False
        s.settimeout(2.0)  # the server said close: it must close now
        try:
            closed = s.recv(1) == b""
        except TimeoutError:
            closed = False
        return status, headers, rest[:n], closed


def post_raw(server, verb: str, body: bytes, extra: str = "") -> tuple[int, dict, bytes, bool]:
    head = f"POST /{verb} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
    if "Content-Length" not in extra and "Transfer-Encoding" not in extra and "NoLength" not in extra:
        head += f"Content-Length: {len(body)}\r\n"
    return raw(server, head.encode() + b"\r\n" + body)


@pytest.mark.parametrize(("header", "code"), [
    ("Content-Length: abc\r\n", 400), ("Content-Length: -1\r\n", 400), ("Content-Length: 1e3\r\n", 400),
    ("Content-Length: 5\r\nContent-Length: 7\r\n", 400), ("Transfer-Encoding: chunked\r\n", 411),
    ("X-NoLength: 1\r\n", 411),  # no Content-Length at all
])
def test_bad_framing_is_answered_and_closes(stack, header, code):
    status, headers, body, closed = post_raw(stack.server, "filter", b"{}", header)
    assert status == code and "Error" in json.loads(body)
    assert headers.get("connection") == "close" and closed


def test_413_closes_instead_of_reading_the_body_as_a_second_request(stack):
    smuggled = b"POST /bind HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
    data = (f"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Length: {(1 << 20) + 1}\r\n\r\n").encode() + smuggled
    status, headers, body, closed = raw(stack.server, data)
    assert status == 413 and headers["connection"] == "close" and closed
    assert stack.server.metrics.requests.labels("bind", "ok")._value.get() == 0


@pytest.mark.parametrize(("body", "why"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    (b'{"a":' * 40 + b"1" + b"}" * 40, "nested deeper"),
    (b"{not json", "not JSON"), (b"[1, 2]", "JSON object"), (b"\xff\xfe", "not JSON"),
])
def test_bad_json_gets_400(stack, body, why):
    status, _, out, _ = post_raw(stack.server, "filter", body)
    assert status == 400 and why in json.loads(out)["Error"]


def test_unknown_verb_and_method_answer_json(stack):
    assert post_raw(stack.server, "evict", b"{}")[0] == 404
    status, _, body, _ = raw(stack.server, b"DELETE /filter HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and "Error" in json.loads(body)
    status, _, body, closed = raw(stack.server, b"GARBAGE\r\n\r\n")
    assert status == 400 and "Error" in json.loads(body) and closed


def test_handler_crash_answers_500_and_keeps_serving(stack, monkeypatch):
    def boom(args):
        raise KeyError("kaput")

    monkeypatch.setattr(stack.extender, "filter", boom)
    status, _, body, _ = post_raw(stack.server, "filter", b"{}")
    assert status == 500 and "KeyError" in json.loads(body)["Error"]
    assert raw(stack.server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_cpu_bomb_quantity_does_not_stall_other_requests(stack):
    """`gpumem: "1e999999"` used to burn 25 s of CPU with the GIL held; now refused by the bounded parser."""
    bomb = stack.api.add_pod(gpu_pod("bomb", mem=None))
    bomb["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpumem"] = "1e999999"
    stack.api.pods[("default", "bomb")]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpumem"] = "1e999999"
    t0 = time.perf_counter()
    status, _, body, _ = post_raw(stack.server, "filter", json.dumps({"Pod": bomb, "NodeNames": ["node1"]}).encode())
    assert status == 200 and "exponent" in json.loads(body)["FailedAndUnresolvableNodes"]["node1"]
    assert time.perf_counter() - t0 < 2.0  # generous: the parse itself takes microseconds


def test_half_open_connections_are_bounded_and_time_out(stack):
    srv = ExtenderServer(stack.extender, max_connections=8, idle_timeout=0.5).start()
    try:
        before = threading.active_count()
        socks = [socket.create_connection(srv.httpd.server_address[:2]) for _ in range(40)]
        time.sleep(0.2)
        assert threading.active_count() - before <= 8 + 1
        assert srv.httpd.refused_connections >= 40 - 8
        for s in socks:
            s.close()
        time.sleep(0.8)  # the held ones time out
        assert raw(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    finally:
        srv.stop()


def test_trickled_body_is_cut_off(stack):
    srv = ExtenderServer(stack.extender, idle_timeout=2.0, body_deadline=0.5).start()
    try:
        with socket.create_connection(srv.httpd.server_address[:2], timeout=5) as s:
            s.sendall(b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            t0 = time.monotonic()
            for _ in range(8):
                time.sleep(0.15)
                try:
                    s.sendall(b" ")
                except OSError:
                    break
            data = s.recv(4096)
            assert b" 408 " in data.split(b"\r\n")[0] and time.monotonic() - t0 < 3
    finally:
        srv.stop()


def test_trickled_headers_are_cut_off(stack):
    """Slowloris: one header byte every 0.2 s never trips the per-read timeout; the header deadline does."""
    srv = ExtenderServer(stack.extender, idle_timeout=5.0, header_deadline=0.6).start()
    try:
        with socket.create_connection(srv.httpd.server_address[:2], timeout=5) as s:
            s.sendall(b"POST /filter HTTP/1.1\r\n")
            t0 = time.monotonic()
            closed = False
            while time.monotonic() - t0 < 4:
                try:
                    s.sendall(b"X")
                    time.sleep(0.2)
                except OSError:
                    closed = True
                    break
            if not closed:
                s.settimeout(1)
                try:
                    closed = s.recv(1) == b""
                except OSError:
                    closed = True
            assert closed and srv.httpd.slow_headers == 1
        assert raw(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200  # a prompt client is served
    finally:
        srv.stop()


def test_listen_backlog_and_200_concurrent_clients(stack):
    assert BACKLOG >= 128
    errors: list[BaseException] = []

    def one() -> None:
        try:
            assert raw(stack.server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_graceful_stop_finishes_in_flight_request(stack, monkeypatch):
    srv = ExtenderServer(stack.extender).start()
    real = stack.extender.prioritize

    def slow(args):
        time.sleep(0.5)
        return real(args)

    monkeypatch.setattr(stack.extender, "prioritize", slow)
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("r", post_raw(srv, "prioritize", b'{"NodeNames": []}')))
    t.start()
    time.sleep(0.15)
    srv.stop()
    t.join(5)
    assert out["r"][0] == 200 and json.loads(out["r"][2]) == []
    with pytest.raises(OSError):
        socket.create_connection(srv.httpd.server_address[:2], timeout=1).close()
