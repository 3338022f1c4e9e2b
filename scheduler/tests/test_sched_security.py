"""Who may control placement: TLS with client certificates, and a request body that is never trusted."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time

import pytest
from hami_scheduler.cli import main
from hami_scheduler.server import ExtenderServer
from hami_scheduler.testing_tls import have_openssl, make_pki
from sched_fakeapi import FakeApiServer
from sched_testing import gpu_node, gpu_pod, synced_stack

from hami_hal.testing.ports import banner_port

ALLOC = "hami.io/vgpu-devices-allocated"
LOCK = "hami.io/mutex.lock"

needs_openssl = pytest.mark.skipif(not have_openssl(), reason="the openssl CLI makes the test certificates")


@pytest.fixture
def stack():
    with synced_stack(gpu_node("node1", gpus=4)) as s:
        yield s


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if not have_openssl():
        pytest.skip("the openssl CLI makes the test certificates")
    return make_pki(tmp_path_factory.mktemp("pki"))


def call(stack_or_server, verb: str, body: dict, ctx: ssl.SSLContext | None = None) -> dict:
    server = getattr(stack_or_server, "server", stack_or_server)
    host, port = server.httpd.server_address[:2]
    conn = (http.client.HTTPSConnection(host, port, context=ctx, timeout=10) if ctx
            else http.client.HTTPConnection(host, port, timeout=10))
    try:
        conn.request("POST", f"/{verb}", json.dumps(body), {"Content-Type": "application/json"})
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


# -- TLS and client certificates ---------------------------------------------------------------

@needs_openssl
def test_tls_requires_a_client_certificate_from_the_ca(stack, pki):
    from hami_scheduler.httpserver import tls_context

    srv = ExtenderServer(stack.extender, ssl_context=tls_context(str(pki.server_cert), str(pki.server_key),
                                                                 str(pki.ca)), handshake_timeout=1.0).start()
    try:
        assert srv.url.startswith("https://")
        pod = stack.api.add_pod(gpu_pod("tls"))
        ok = call(srv, "filter", {"Pod": pod, "NodeNames": ["node1"]}, pki.client_context())
        assert ok["NodeNames"] == ["node1"] and ok["Error"] == ""
        for ctx in (pki.client_context(cert=False), pki.client_context(pki.rogue_cert, pki.rogue_key)):
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                call(srv, "prioritize", {"NodeNames": []}, ctx)
        with pytest.raises((ConnectionError, OSError, http.client.HTTPException)):
            call(srv, "prioritize", {"NodeNames": []})  # plain HTTP to the TLS port
        for _ in range(50):  # the server thread counts its side of the failure a moment later
            if srv.httpd.tls_failures >= 3:
                break
            time.sleep(0.05)
        assert srv.httpd.tls_failures >= 3
    finally:
        srv.stop()


@needs_openssl
def test_silent_tls_client_does_not_block_the_others(stack, pki):
    from hami_scheduler.httpserver import tls_context

    srv = ExtenderServer(stack.extender, ssl_context=tls_context(str(pki.server_cert), str(pki.server_key),
                                                                 str(pki.ca)), handshake_timeout=2.0).start()
    try:
        silent = [socket.create_connection(srv.httpd.server_address[:2]) for _ in range(5)]
        t0 = time.perf_counter()
        assert call(srv, "prioritize", {"NodeNames": []}, pki.client_context()) == []
        assert time.perf_counter() - t0 < 1.5  # the handshakes happen in each connection's thread
        for s in silent:
            s.close()
    finally:
        srv.stop()


def test_serve_refuses_a_network_listener_without_client_auth(capsys):
    rc = main(["serve", "--bind", "0.0.0.0:18888", "--api-server", "http://127.0.0.1:9"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "--bind" in err and "--client-ca" in err and "--insecure-listen" in err
    rc = main(["serve", "--bind", "10.0.0.1:1", "--tls-cert", "x.pem", "--api-server", "http://127.0.0.1:9"])
    assert rc == 2 and "together" in capsys.readouterr().err
    rc = main(["serve", "--max-connections", "-1", "--api-server", "http://127.0.0.1:9"])
    assert rc == 2 and "--max-connections" in capsys.readouterr().err


def test_insecure_listen_is_an_explicit_choice(capsys):
    # passes the listener check, then stops at the (absent) API server with one line
    rc = main(["serve", "--bind", "0.0.0.0:0", "--insecure-listen", "--api-server", "http://127.0.0.1:9",
               "--vendors", "/nonexistent.json"])
    err = capsys.readouterr().err
    assert rc == 2 and "--bind" not in err and len(err.strip().splitlines()) == 1


# -- the body is not trusted -------------------------------------------------------------------

def test_forged_filter_body_cannot_rewrite_another_pods_allocation(stack):
    stack.api.add_pod(gpu_pod("victim", ns="team-a", gpus=1, mem=1024, cores=10))
    forged = gpu_pod("victim", ns="team-a", gpus=4, mem=None, cores=100)
    out = call(stack, "filter", {"Pod": forged, "NodeNames": ["node1"]})
    assert out["Error"] == ""
    written = stack.api.pods[("team-a", "victim")]["metadata"]["annotations"][ALLOC]
    devs = [d for d in written.strip(";").split(":") if d]
    assert len(devs) == 1 and devs[0].split(",")[2:] == ["1024", "10"]  # what the API's pod asks, not the body
    forged["metadata"]["uid"] = "not-the-victims-uid"
    out = call(stack, "filter", {"Pod": forged, "NodeNames": ["node1"]})
    assert "uid" in out["Error"] and out["NodeNames"] == []
    assert stack.api.pods[("team-a", "victim")]["metadata"]["annotations"][ALLOC] == written


def test_filter_of_a_pod_the_api_does_not_have_is_refused(stack):
    out = call(stack, "filter", {"Pod": gpu_pod("ghost"), "NodeNames": ["node1"]})
    assert "does not exist on the API server" in out["Error"] and stack.cluster.pods == {}


def test_bind_refuses_a_device_pod_that_was_never_filtered(stack):
    stack.api.add_pod(gpu_pod("sneaky"))
    out = call(stack, "bind", {"PodName": "sneaky", "PodNamespace": "default", "PodUID": "uid-sneaky",
                               "Node": "node1"})
    assert "no allocation annotation" in out["Error"]
    assert "nodeName" not in stack.api.pods[("default", "sneaky")]["spec"]
    assert LOCK not in stack.api.nodes["node1"]["metadata"]["annotations"]


def test_bind_with_a_foreign_uid_touches_nothing(stack):
    pod = stack.api.add_pod(gpu_pod("owned"))
    assert call(stack, "filter", {"Pod": pod, "NodeNames": ["node1"]})["NodeNames"] == ["node1"]
    before = dict(stack.api.pods[("default", "owned")]["metadata"]["annotations"])
    out = call(stack, "bind", {"PodName": "owned", "PodNamespace": "default", "PodUID": "forged", "Node": "node1"})
    assert "PodUID" in out["Error"]
    assert stack.api.pods[("default", "owned")]["metadata"]["annotations"] == before
    assert "default/owned" in stack.cluster.pods  # the real pod's reservation stays


def test_bind_to_an_unknown_node_answers_and_releases(stack):
    pod = stack.api.add_pod(gpu_pod("lost"))
    assert call(stack, "filter", {"Pod": pod, "NodeNames": ["node1"]})["NodeNames"] == ["node1"]
    out = call(stack, "bind", {"PodName": "lost", "PodNamespace": "default", "PodUID": "uid-lost", "Node": "nowhere"})
    assert "nowhere" in out["Error"]
    assert stack.cluster.pods == {} and ALLOC not in stack.api.pods[("default", "lost")]["metadata"]["annotations"]


def test_concurrent_binds_of_one_scheduler_queue_instead_of_failing_on_the_node_lock(stack):
    import threading

    names = [f"q{i}" for i in range(6)]
    for n in names:
        pod = stack.api.add_pod(gpu_pod(n, mem=1024, cores=5))
        assert call(stack, "filter", {"Pod": pod, "NodeNames": ["node1"]})["NodeNames"] == ["node1"]
    errors: list[str] = []

    def bind(n: str) -> None:
        errors.append(call(stack, "bind", {"PodName": n, "PodNamespace": "default", "PodUID": f"uid-{n}",
                                           "Node": "node1"})["Error"])

    threads = [threading.Thread(target=bind, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [""] * len(names)
    assert LOCK not in stack.api.nodes["node1"]["metadata"]["annotations"]


@needs_openssl
def test_serve_over_tls_end_to_end_and_graceful_sigterm(pki, tmp_path):
    import signal
    import subprocess
    import sys

    from sched_testing import NVIDIA

    api = FakeApiServer().start()
    api.add_node(gpu_node("node1", gpus=2))
    pod = api.add_pod(gpu_pod("tls-e2e"))
    vendors = tmp_path / "vendors.json"
    vendors.write_text(json.dumps([NVIDIA.model_dump(mode="json")]))
    proc = subprocess.Popen(  # port 0: the server binds a port of its choosing and prints it (no race)
        [sys.executable, "-m", "hami_scheduler.cli", "serve", "--api-server", api.url, "--bind", "0.0.0.0:0",
         "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--client-ca", str(pki.ca),
         "--vendors", str(vendors)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()
        assert "https://" in first and "client certificates required" in first, first
        port = banner_port(first)
        ctx = pki.client_context()
        for _ in range(100):
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)

        class Srv:  # call() wants an object with .httpd.server_address
            class httpd:  # noqa: N801
                server_address = ("127.0.0.1", port)

        assert call(Srv, "filter", {"Pod": pod, "NodeNames": ["node1"]}, ctx)["NodeNames"] == ["node1"]
        assert call(Srv, "bind", {"PodName": "tls-e2e", "PodNamespace": "default", "PodUID": "uid-tls-e2e",
                                  "Node": "node1"}, ctx) == {"Error": ""}
        keepalive = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
        keepalive.request("GET", "/healthz")
        assert keepalive.getresponse().read() == b"ok"  # an idle keep-alive connection stays open
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - t0 < 5  # idle connections are closed at once, not waited for (grace 10 s)
        keepalive.close()
        assert "stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        api.stop()
