"""A standard-library HTTP/1.1 server hardened for an exposed control endpoint.

Why not ``ThreadingHTTPServer`` as is: one unbounded thread per connection with no timeout (1,000
half-open connections held 1,005 threads), a listen backlog of 5 (resets under 200 clients), TLS
handshakes done in the accept loop (one silent client would stall every other), and a handler
exception drops the connection instead of answering. Why not a third-party server: the production
WSGI/ASGI servers are not in the project's dependency list, and the ones without TLS client
authentication (waitress) would not cover the extender's main need. This module adds, and tests:

- a listen backlog of :data:`BACKLOG`; at most ``max_connections`` connection threads, extra ones
  are closed at once (counted) instead of queueing without bound;
- TLS with optional client-certificate verification, the handshake done in the connection's own
  thread under ``handshake_timeout``;
- a socket timeout on every read (``idle_timeout``), a total deadline for a request's line and
  headers (``header_deadline``, enforced by the accept loop closing late connections) and, in the
  handler, one for its body;
- graceful shutdown: stop accepting, close idle keep-alive connections, let in-flight requests
  finish within ``grace_s``.

Request parsing rules (Content-Length, body cap, JSON depth) live in the extender's handler
(server.py), which uses :class:`BoundedHTTPServer`.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from http.server import HTTPServer

log = logging.getLogger("hami_scheduler.http")

IDLE, READING, BUSY = "idle", "reading", "busy"


def _close_now(conn: socket.socket) -> None:
    """Unblock the thread reading ``conn``: its recv returns and the handler ends."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


#: listen(2) backlog. kube-scheduler opens a handful of connections; a load test opens hundreds.
BACKLOG = 1024


def tls_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    """Server-side TLS 1.2+ context; with ``client_ca`` every client must present a certificate it signed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class BoundedHTTPServer(HTTPServer):
    """HTTPServer with a bounded number of connection threads, timeouts, TLS and graceful shutdown."""

    request_queue_size = BACKLOG
    allow_reuse_address = True

    def __init__(self, address, handler, *, ssl_context: ssl.SSLContext | None = None,
                 max_connections: int = 512, handshake_timeout: float = 5.0, grace_s: float = 10.0,
                 header_deadline: float = 10.0) -> None:
        self.ssl_context = ssl_context
        self.handshake_timeout = handshake_timeout
        self.grace_s = grace_s
        self.max_connections = max_connections
        self.header_deadline = header_deadline
        #: connections closed because their request line and headers took longer than ``header_deadline``
        self.slow_headers = 0
        self._slots = threading.BoundedSemaphore(max_connections)
        #: connection -> (state, since): IDLE between requests, READING a request line and headers,
        #: BUSY from parsed headers to the answer (only BUSY ones are waited for on shutdown)
        self._conns: dict[socket.socket, tuple[str, float]] = {}
        self._conns_lock = threading.Lock()
        self.closing = threading.Event()
        #: connections closed at once because ``max_connections`` were open
        self.refused_connections = 0
        #: TLS handshakes that failed or timed out (no client certificate, wrong CA, silent client)
        self.tls_failures = 0
        super().__init__(address, handler)

    # -- accept loop (one thread): never blocks on a client ------------------------------------

    def process_request(self, request, client_address) -> None:
        if self.closing.is_set() or not self._slots.acquire(blocking=False):
            self.refused_connections += 1
            request.close()  # no lingering here: the accept loop must never wait on a client
            return
        t = threading.Thread(target=self._serve_connection, args=(request, client_address), daemon=True)
        try:
            t.start()
        except RuntimeError:  # cannot start a thread: answer nothing rather than die
            self._slots.release()
            self.refused_connections += 1
            request.close()

    # -- per-connection thread ----------------------------------------------------------------

    def _serve_connection(self, request: socket.socket, client_address) -> None:
        conn = request
        try:
            if self.ssl_context is not None:
                request.settimeout(self.handshake_timeout)
                try:
                    conn = self.ssl_context.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError) as exc:
                    self.tls_failures += 1
                    log.info("TLS handshake from %s failed: %s", client_address[0], exc)
                    return
            with self._conns_lock:
                self._conns[conn] = (IDLE, time.monotonic())
            self.finish_request(conn, client_address)
        except Exception:  # a handler bug must not kill the thread silently
            log.exception("connection from %s failed", client_address[0])
        finally:
            with self._conns_lock:
                self._conns.pop(conn, None)
            self.shutdown_request(conn)
            self._slots.release()

    def shutdown_request(self, request) -> None:
        """Lingering close: send FIN, then discard what the client still sends (at most 256 KiB, 0.2 s),
        so an error answered before reading a body is not destroyed by a reset."""
        if not isinstance(request, ssl.SSLSocket):
            try:
                request.shutdown(socket.SHUT_WR)
                request.settimeout(0.2)
                left = 256 * 1024
                while left > 0:
                    chunk = request.recv(min(left, 65536))
                    if not chunk:
                        break
                    left -= len(chunk)
            except OSError:
                pass
        super().shutdown_request(request)

    def mark(self, conn: socket.socket, state: str) -> None:
        """The handler says where a connection is (IDLE, READING, BUSY)."""
        with self._conns_lock:
            if conn in self._conns:
                self._conns[conn] = (state, time.monotonic())

    def service_actions(self) -> None:
        """Run by serve_forever every poll interval: close connections whose headers trickle in."""
        limit = time.monotonic() - self.header_deadline
        with self._conns_lock:
            late = [c for c, (state, since) in self._conns.items() if state == READING and since < limit]
        for c in late:
            self.slow_headers += 1
            _close_now(c)

    @property
    def open_connections(self) -> int:
        with self._conns_lock:
            return len(self._conns)

    def graceful_stop(self) -> None:
        """Stop accepting, close idle keep-alive connections, wait for in-flight requests, close."""
        self.closing.set()
        self.shutdown()  # returns once serve_forever has left its loop
        deadline = time.monotonic() + self.grace_s
        while True:
            with self._conns_lock:
                idle = [c for c, (state, _) in self._conns.items() if state != BUSY]
                busy_left = any(state == BUSY for state, _ in self._conns.values())
            for c in idle:
                _close_now(c)
            if not busy_left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.server_close()
