"""A real Kubernetes control plane for the end-to-end tests: etcd + kube-apiserver (+ kube-scheduler).

The binaries come from ``hack/k8s-bins.sh`` (built from their Go modules, cached by version outside the
tree). Everything listens on 127.0.0.1 on free ports and lives in one temp folder. There is no
controller-manager and no kubelet: the ``ServiceAccount`` and ``TaintNodesByCondition`` admission
plugins are off (nothing would create service-account tokens or lift the not-ready taint), and
``k8s_fakekubelet`` plays the kubelet's part for pods on the test nodes.

TLS is real: one CA (openssl) signs the apiserver's serving certificate and any webhook's; clients
authenticate with a static token in ``system:masters``, authorization is RBAC.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kubernetes import client

from hami_hal.testing.ports import TAKEN, PortTaken, free_port, retry_taken

K8S_VERSION = os.environ.get("K8S_VERSION", "1.37.2")
REPO = Path(__file__).resolve().parents[2]
TOKEN = "hami-hal-e2e-admin-token"


def bin_dir() -> Path:
    """Where hack/k8s-bins.sh puts the binaries (same rule as the script)."""
    if os.environ.get("HAMI_K8S_BIN"):
        return Path(os.environ["HAMI_K8S_BIN"])
    root = os.environ.get("HAMI_K8S_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hami-hal", "k8s")
    return Path(root) / K8S_VERSION


def missing_binaries(names=("etcd", "kube-apiserver", "kube-scheduler")) -> list[str]:
    d = bin_dir()
    return [n for n in names if not os.access(d / n, os.X_OK)]


#: prctl(2) option: the signal the kernel sends this process when the thread that forked it ends.
PR_SET_PDEATHSIG = 1
#: libc, resolved here: the forked child must not load libraries (another thread may hold the loader's lock).
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def die_with_parent(parent: int) -> None:
    """``preexec_fn`` of every control-plane child: it gets SIGKILL when the test process ends in any way.

    The children run in their own session (a Ctrl-C of the test run must not reach etcd before the fixtures
    stop it in order), so no signal sent to pytest reaches them; a pytest killed with SIGKILL or SIGTERM ran
    no teardown and left etcd and kube-apiserver running. The kernel's parent-death signal closes that: it is
    set in the forked child before exec, and a parent already gone by then (the signal would never come) ends
    the child at once. It follows the forking *thread*, so spawn from the main thread (the fixtures do).
    """
    if _LIBC is None:
        return
    if _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(126)  # a child that could outlive the tests is not started
    if os.getppid() != parent:
        os._exit(125)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(pki: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=hami-hal-e2e-ca", cwd=pki)


def make_cert(pki: Path, name: str, sans: str) -> tuple[Path, Path]:
    """A serving certificate signed by the test CA, e.g. ``sans="IP:127.0.0.1,DNS:localhost"``."""
    ext = pki / f"{name}.ext"
    ext.write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}", cwd=pki)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", ext.name, cwd=pki)
    return pki / f"{name}.crt", pki / f"{name}.key"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@dataclass
class ControlPlane:
    work: Path
    bins: Path = field(default_factory=bin_dir)
    procs: list[Proc] = field(default_factory=list)
    api_port: int = 0
    started_s: float = 0.0

    @property
    def pki(self) -> Path:
        return self.work / "pki"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.work / "kubeconfig"

    def spawn(self, name: str, argv: list[str], env: dict | None = None) -> Proc:
        log = self.work / f"{name}.log"
        fh = open(log, "ab")  # noqa: SIM115 - owned by the child
        p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=self.work,
                             env={**os.environ, **(env or {})}, start_new_session=True,
                             preexec_fn=functools.partial(die_with_parent, os.getpid()))
        fh.close()
        proc = Proc(name, p, log)
        self.procs.append(proc)
        return proc

    def start(self) -> ControlPlane:
        t0 = time.monotonic()
        self.pki.mkdir(parents=True, exist_ok=True)
        make_ca(self.pki)
        make_cert(self.pki, "apiserver", "IP:127.0.0.1,DNS:localhost")
        openssl("genrsa", "-out", "sa.key", "2048", cwd=self.pki)
        openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=self.pki)
        (self.work / "tokens.csv").write_text(f'{TOKEN},admin,admin,"system:masters"\n')
        retry_taken(self._start_servers, attempts=3)
        self.started_s = time.monotonic() - t0
        return self

    def _start_servers(self, etcd_port: int) -> None:
        """etcd and kube-apiserver on free ports. Neither can bind port 0 and say which it got, so a port taken
        between the pick and their bind (:class:`PortTaken`) stops both, and :meth:`start` tries fresh ports."""
        peer_port = free_port()
        self.spawn("etcd", [
            str(self.bins / "etcd"), "--name", "e2e", "--data-dir", str(self.work / f"etcd-{etcd_port}"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"e2e=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync", "--log-level", "warn",
        ])
        self.api_port = free_port()
        self.spawn("kube-apiserver", [
            str(self.bins / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.api_port}",
            f"--tls-cert-file={self.pki / 'apiserver.crt'}", f"--tls-private-key-file={self.pki / 'apiserver.key'}",
            f"--client-ca-file={self.pki / 'ca.crt'}",
            f"--token-auth-file={self.work / 'tokens.csv'}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.pki / 'sa.pub'}",
            f"--service-account-signing-key-file={self.pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
            "--enable-priority-and-fairness=false", "--endpoint-reconciler-type=none", "--v=0",
        ])
        self.write_kubeconfig(self.kubeconfig)
        try:
            self.wait_ready()
        except PortTaken:
            self.stop()
            raise

    def write_kubeconfig(self, path: Path) -> None:
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
            "clusters": [{"name": "e2e", "cluster": {"server": self.url,
                                                     "certificate-authority": str(self.pki / "ca.crt")}}],
            "users": [{"name": "admin", "user": {"token": TOKEN}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
        }
        path.write_text(yaml.safe_dump(cfg))

    def api_client(self) -> client.ApiClient:
        cfg = client.Configuration()
        cfg.host = self.url
        cfg.ssl_ca_cert = str(self.pki / "ca.crt")
        cfg.api_key = {"authorization": f"Bearer {TOKEN}"}
        return client.ApiClient(cfg)

    def wait_ready(self, timeout: float = 90) -> None:
        api = self.api_client()
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for p in self.procs:
                if not p.alive():
                    why = f"{p.name} exited ({p.popen.returncode}):\n{p.tail()}"
                    raise PortTaken(why) if TAKEN.search(p.tail(5)) else RuntimeError(why)
            try:
                # the default namespace exists once the bootstrap controller ran (after /readyz)
                client.CoreV1Api(api).read_namespace("default", _request_timeout=5)
                return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = str(exc)[:200]
            time.sleep(0.25)
        raise RuntimeError(f"kube-apiserver not ready in {timeout}s: {last}\n{self.procs[-1].tail()}")

    def start_scheduler(self, name: str, extenders: list[dict], scheduler_name: str = "hami-scheduler",
                        lease: tuple[str, str] | None = None) -> Proc:
        """kube-scheduler with our extender(s), kubescheduler.config.k8s.io/v1; ``lease`` = (namespace, name)
        turns on its leader election with short durations (4 s lease, 3 s renew deadline, 1 s retry)."""
        election = {"leaderElect": False}
        if lease:
            election = {"leaderElect": True, "resourceNamespace": lease[0], "resourceName": lease[1],
                        "leaseDuration": "4s", "renewDeadline": "3s", "retryPeriod": "1s"}
        cfg = {
            "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(self.kubeconfig), "qps": 200, "burst": 400},
            "leaderElection": election,
            "podInitialBackoffSeconds": 1, "podMaxBackoffSeconds": 2,
            "profiles": [{"schedulerName": scheduler_name}],
            "extenders": extenders,
        }
        path = self.work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return self.spawn(name, [str(self.bins / "kube-scheduler"), f"--config={path}", "--secure-port=0", "--v=1"])

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        self.procs.clear()


def extender_stanza(url: str, resources: list[str], prioritize: bool = False) -> dict:
    """Our extender as HAMi configures its own (filter + bind, nodeCacheCapable, managed resources)."""
    out = {
        "urlPrefix": url, "filterVerb": "filter", "bindVerb": "bind", "enableHTTPS": url.startswith("https"),
        "nodeCacheCapable": True, "weight": 1, "httpTimeout": "30s", "ignorable": False,
        "managedResources": [{"name": r, "ignoredByScheduler": True} for r in resources],
    }
    if prioritize:
        out["prioritizeVerb"] = "prioritize"
    return out


def cleanup(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
