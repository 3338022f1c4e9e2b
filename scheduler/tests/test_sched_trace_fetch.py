"""``hami-scheduler trace fetch`` against a local HTTP server on 127.0.0.1 serving a small fixture.

Nothing here touches the network: the server runs in this process and serves made-up CSV bytes whose
checksums the tests pin in place of the real ones.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hami_scheduler import cli
from hami_scheduler.sim import trace_fetch
from hami_scheduler.sim.trace import (
    NODE_FILE,
    VARIANTS,
    cache_trace_dir,
    default_trace_dir,
    pod_file,
    trace_files,
)
from hami_scheduler.sim.trace_fetch import PINNED, TraceFetchError, TraceFile, fetch_trace
from sched_trace_skip import TRACE_SKIP_REASON

NODES = b"sn,cpu_milli,memory_mib,gpu,model\n" + b"".join(
    b"n-%04d,64000,262144,2,T4\n" % i for i in range(400))
PODS = b"name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n" + b"".join(
    b"p-%04d,1000,2048,1,500,\n" % i for i in range(900))
FIXTURE = {NODE_FILE: NODES, pod_file("default"): PODS}


def _pin(name: str, data: bytes) -> TraceFile:
    return TraceFile(name, hashlib.sha256(data).hexdigest(), len(data))


FIXTURE_PINS = {n: _pin(n, d) for n, d in FIXTURE.items()}


class TraceServer:
    """State the handler reads: what to serve and how to misbehave; what it was asked."""

    def __init__(self) -> None:
        self.files = dict(FIXTURE)
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: int | None = None  # close the connection after this many body bytes
        self.ranges = True  # honour Range requests
        self.url = ""


def _handler(state: TraceServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            name = self.path.rsplit("/", 1)[-1]
            rng = self.headers.get("Range")
            state.requests.append((name, rng))
            data = state.files.get(name)
            if data is None:
                self.send_error(404, "not found")
                return
            start = 0
            if rng and state.ranges:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_error(416, "range not satisfiable")
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.cut_after is not None:
                self.wfile.write(body[: state.cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server() -> Iterator[TraceServer]:
    state = TraceServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/csv"
    # a 0.05 s poll: serve_forever's default 0.5 s would make each teardown's shutdown() wait half a second
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _fetch(dest: Path, server: TraceServer, **kw):
    return fetch_trace(dest, list(FIXTURE), base_url=server.url, pinned=FIXTURE_PINS, timeout=5, **kw)


def test_fetch_downloads_and_verifies_every_file(tmp_path, server):
    results = _fetch(tmp_path / "trace", server)
    assert [r.status for r in results] == ["downloaded", "downloaded"]
    for name, data in FIXTURE.items():
        assert (tmp_path / "trace" / name).read_bytes() == data
    assert not list((tmp_path / "trace").glob("*.part"))
    # A second run verifies the files and asks the server for nothing.
    server.requests.clear()
    assert [r.status for r in _fetch(tmp_path / "trace", server)] == ["present", "present"]
    assert server.requests == []


def test_fetch_resumes_a_cut_download_with_a_range_request(tmp_path, server):
    dest = tmp_path / "trace"
    server.cut_after = 5000
    with pytest.raises(TraceFetchError, match="run the same command again to resume"):
        _fetch(dest, server)
    part = dest / (NODE_FILE + ".part")
    assert part.stat().st_size == 5000 and not (dest / NODE_FILE).exists()
    server.cut_after = None
    server.requests.clear()
    results = _fetch(dest, server)
    assert results[0].status == "resumed" and results[0].transferred == len(NODES) - 5000
    assert server.requests[0] == (NODE_FILE, "bytes=5000-")
    assert (dest / NODE_FILE).read_bytes() == NODES and not part.exists()


def test_fetch_restarts_when_the_server_ignores_range(tmp_path, server):
    dest = tmp_path / "trace"
    dest.mkdir()
    (dest / (NODE_FILE + ".part")).write_bytes(NODES[:3000])
    server.ranges = False
    results = _fetch(dest, server)
    assert results[0].status == "downloaded" and results[0].transferred == len(NODES)
    assert (dest / NODE_FILE).read_bytes() == NODES


def test_fetch_rejects_a_checksum_mismatch_and_keeps_nothing(tmp_path, server):
    server.files[NODE_FILE] = NODES.replace(b"T4", b"A1")  # same size, other bytes
    dest = tmp_path / "trace"
    with pytest.raises(TraceFetchError, match="SHA-256 .* differs from the pinned"):
        _fetch(dest, server)
    assert not (dest / NODE_FILE).exists() and not (dest / (NODE_FILE + ".part")).exists()


def test_fetch_refuses_more_bytes_than_pinned(tmp_path, server):
    server.files[NODE_FILE] = NODES + b"x" * 100_000
    dest = tmp_path / "trace"
    with pytest.raises(TraceFetchError, match="more than the pinned"):
        _fetch(dest, server)
    assert not (dest / NODE_FILE).exists() and not (dest / (NODE_FILE + ".part")).exists()


def test_fetch_leaves_a_different_existing_file_alone(tmp_path, server):
    dest = tmp_path / "trace"
    dest.mkdir()
    (dest / NODE_FILE).write_bytes(b"my own edited copy\n")
    with pytest.raises(TraceFetchError, match="is not the published file"):
        _fetch(dest, server)
    assert (dest / NODE_FILE).read_bytes() == b"my own edited copy\n"


def test_fetch_http_error_and_offline_are_one_line(tmp_path, server):
    del server.files[NODE_FILE]
    with pytest.raises(TraceFetchError, match="HTTP 404") as err:
        _fetch(tmp_path / "a", server)
    assert "\n" not in str(err.value)
    # A port nothing listens on: connection refused, as when offline.
    with pytest.raises(TraceFetchError, match="cannot download http://127.0.0.1:9/") as err:
        fetch_trace(tmp_path / "b", [NODE_FILE], base_url="http://127.0.0.1:9/csv", pinned=FIXTURE_PINS, timeout=2)
    assert "offline?" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "/just/a/path", "https://", "javascript:alert(1)"])
def test_fetch_refuses_other_url_schemes(tmp_path, url):
    with pytest.raises(Exception, match="--base-url"):
        fetch_trace(tmp_path, [NODE_FILE], base_url=url, pinned=FIXTURE_PINS)
    assert not any(tmp_path.iterdir())


def test_fetch_refuses_names_without_a_pin(tmp_path):
    with pytest.raises(Exception, match="no pinned checksum"):
        fetch_trace(tmp_path, ["../../etc/passwd"], pinned=FIXTURE_PINS)


def test_cli_fetch_then_status(tmp_path, server, monkeypatch, capsys):
    monkeypatch.setattr(trace_fetch, "PINNED", {**PINNED, **FIXTURE_PINS})
    dest = tmp_path / "trace"
    rc = cli.main(["trace", "fetch", "--variant", "default", "--dest", str(dest), "--base-url", server.url,
                   "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "2 file(s) verified (SHA-256), 2 downloaded" in out and "cite" in out
    rc = cli.main(["trace", "status", "--dest", str(dest)])
    out = capsys.readouterr().out
    assert rc == 1  # the other variants are missing
    assert f"ok       {NODE_FILE}" in out and "missing  openb_pod_list_cpu050.csv" in out


def test_cli_fetch_offline_is_one_line_exit_2(tmp_path, capsys):
    rc = cli.main(["trace", "fetch", "--variant", "default", "--dest", str(tmp_path),
                   "--base-url", "http://127.0.0.1:9/csv", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "cannot download" in err[0]


def test_default_trace_dir_is_the_cache_unless_env_says_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("HAMI_TRACE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_trace_dir() == tmp_path / "xdg" / "hami-hal" / "openb-gpu-v2023" == cache_trace_dir()
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert cache_trace_dir() == Path.home() / ".cache" / "hami-hal" / "openb-gpu-v2023"
    monkeypatch.setenv("HAMI_TRACE_DIR", str(tmp_path / "mine"))
    assert default_trace_dir() == tmp_path / "mine"


def test_every_file_the_simulator_reads_is_pinned():
    assert set(trace_files(list(VARIANTS))) == set(PINNED)
    assert all(len(p.sha256) == 64 and p.size > 10_000 for p in PINNED.values())


_LOCAL = default_trace_dir()


@pytest.mark.skipif(not (_LOCAL / NODE_FILE).is_file(), reason=TRACE_SKIP_REASON)
def test_pinned_checksums_match_the_local_trace_copy():
    for name, pin in PINNED.items():
        path = _LOCAL / name
        if path.is_file():
            assert trace_fetch.file_state(path, pin) == "ok", name


def test_verified_folder_is_not_written_to(tmp_path, server):
    dest = tmp_path / "trace"
    _fetch(dest, server)
    (dest / ".fetch.lock").unlink()
    server.requests.clear()
    assert [r.status for r in _fetch(dest, server)] == ["present", "present"]
    assert not (dest / ".fetch.lock").exists() and server.requests == []


def test_progress_bar_sees_every_byte(tmp_path, server):
    import io

    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(file=io.StringIO(), force_terminal=True))
    with bar:
        _fetch(tmp_path / "trace", server, progress=cli._FetchBar(bar))
    done = {t.description: (t.completed, t.total) for t in bar.tasks}
    assert done == {n: (len(d), len(d)) for n, d in FIXTURE.items()}
