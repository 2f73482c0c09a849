"""The test rig: real lifeboat processes, a real SMTP server, a real browser.

`Pod` starts `lifeboat serve` as a child process on a temporary data folder and a
free loopback port, configured through LIFEBOAT_* variables exactly as an operator
would; `SmtpSink` is an aiosmtpd server that keeps every message it receives;
`browser()` is headless Debian Chromium driven through chromedriver (Selenium).
Multi-pod tests start several `Pod`s.

TLS as it runs in production: `Pod(tls=ca)` puts a `TlsFront` (a TLS-terminating
proxy, as nginx or Caddy is for a real pod) before the pod, with a certificate from
the test CA (`testca.TestCA`); the pod's public URL is then https, plain http to peers
is off, and the pod trusts the test CA through `federation.extra_ca_file`.
`SmtpSink(tls="starttls"|"implicit", cert=...)` is the SMTP server with TLS.
"""

import asyncio
import email
import email.policy
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests

from testca import ServerCert, TestCA  # noqa: F401 (re-exported for the tests)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "reference"


def binary():
    return Path(os.environ.get("LIFEBOAT_BIN", ROOT / "target" / "debug" / "lifeboat"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign_in(pod, username, password):
    """A requests session signed in to `pod` through its sign-in form."""
    s = requests.Session()
    s.get(pod.url + "/users/sign_in")
    r = s.post(pod.url + "/users/sign_in", data={"csrf": s.cookies["lb_csrf"], "login": username, "password": password}, allow_redirects=False)
    assert r.status_code == 303, r.text
    return s


def wait_until(predicate, timeout=20.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives.

    `tls=None` speaks plain text; `tls="starttls"` offers STARTTLS with `cert` (and,
    with `require_starttls`, refuses mail before it); `tls="implicit"` speaks TLS from
    the first byte. Each kept message records whether it came over TLS. `ca` is the
    authority the pods should trust for `cert` (`pod_env()` says so)."""

    def __init__(self, tls=None, cert=None, ca=None, require_starttls=True):
        from aiosmtpd.controller import Controller

        self.messages = []
        self.lock = threading.Lock()
        self.tls, self.ca = tls, ca
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                ssl_object = server.transport.get_extra_info("ssl_object")
                with sink.lock:
                    sink.messages.append({"envelope_from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos), "message": msg,
                                          "tls": ssl_object.version() if ssl_object else None})
                return "250 OK"

        self.port = free_port()
        options = {}
        if tls == "starttls":
            options = dict(tls_context=cert.server_context(), require_starttls=require_starttls)
        elif tls == "implicit":
            options = dict(ssl_context=cert.server_context())
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    def pod_env(self):
        """The LIFEBOAT_MAIL_* settings of a pod sending through this server."""
        env = {
            "LIFEBOAT_MAIL_SMTP_HOST": "127.0.0.1",
            "LIFEBOAT_MAIL_SMTP_PORT": str(self.port),
            "LIFEBOAT_MAIL_SMTP_TLS": self.tls or "none",
        }
        if self.ca is not None:
            env["LIFEBOAT_MAIL_SMTP_CA_FILE"] = str(self.ca.pem)
        return env

    def all(self):
        with self.lock:
            return list(self.messages)

    def stop(self):
        self.controller.stop()

    def to(self, address):
        with self.lock:
            return [m["message"] for m in self.messages if address in m["rcpt"]]

    def wait_for(self, address, subject_contains="", timeout=20.0, count=1):
        def found():
            hits = [m for m in self.to(address) if subject_contains in str(m["Subject"])]
            return hits if len(hits) >= count else None

        return wait_until(found, timeout, what=f"mail to {address} about {subject_contains!r}")[-1]

    @staticmethod
    def body(message):
        part = message.get_body(preferencelist=("plain",))
        return part.get_content() if part else message.get_content()


class _Pipe(asyncio.Protocol):
    """One direction of a proxied connection: what arrives goes to `peer` (kept until
    the peer is known)."""

    def __init__(self):
        self.peer, self.early, self.transport = None, [], None

    def connection_made(self, transport):
        self.transport = transport

    def join(self, peer):
        self.peer = peer
        for data in self.early:
            peer.write(data)
        self.early.clear()

    def data_received(self, data):
        if self.peer is None:
            self.early.append(data)
        else:
            self.peer.write(data)

    def eof_received(self):
        return False  # close, which closes the other side too

    def connection_lost(self, exc):
        if self.peer is not None:
            self.peer.close()


class _Accepted(asyncio.Protocol):
    """A connection the front just accepted: not read from until TLS takes it over,
    so that no byte of the client's hello is read outside TLS."""

    def __init__(self, front):
        self.front = front

    def connection_made(self, transport):
        transport.pause_reading()
        self.front.loop.create_task(self.front._upgrade(transport, self))


class TlsFront:
    """A TLS-terminating proxy on a free loopback port, as nginx or Caddy is before a
    real pod: it accepts TLS with the current certificate and passes the bytes on, in
    plain text, to `backend_port`. Python's own TLS (OpenSSL) in one asyncio loop on a
    thread of its own; nothing is installed for it.

    `use(cert)` serves another certificate from the next connection on and closes the
    open ones, so that no kept-alive connection outlives the change. `handshakes`
    counts completed handshakes; `refused` keeps why the others failed (for a client
    that refuses the certificate: the alert it sent)."""

    def __init__(self, cert, backend_port):
        self.backend_port = backend_port
        self.context = cert.server_context()
        self.handshakes = 0
        self.refused = []
        self._open = set()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

        async def serve():
            return await self.loop.create_server(lambda: _Accepted(self), "127.0.0.1", 0)

        self.server = asyncio.run_coroutine_threadsafe(serve(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _upgrade(self, transport, accepted):
        self._open.add(transport)
        client = _Pipe()
        try:
            tls = await asyncio.wait_for(self.loop.start_tls(transport, client, self.context, server_side=True), 10)
        except (OSError, asyncio.TimeoutError) as e:  # ssl.SSLError is an OSError
            self.refused.append(f"{type(e).__name__}: {e}")
            transport.close()
            self._open.discard(transport)
            return
        self._open.discard(transport)
        self._open.add(tls)
        self.handshakes += 1
        try:
            backend_transport, backend = await self.loop.create_connection(_Pipe, "127.0.0.1", self.backend_port)
        except OSError:
            tls.close()
            return
        self._open.add(backend_transport)
        client.join(backend_transport)
        backend.join(tls)

    def use(self, cert):
        def swap():
            self.context = cert.server_context()
            for t in list(self._open):
                t.close()
            self._open.clear()

        self.loop.call_soon_threadsafe(swap)
        # the swap has run once a no-op scheduled after it has
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self.loop).result(10)

    def stop(self):
        def close():
            self.server.close()
            for t in list(self._open):
                t.close()

        self.loop.call_soon_threadsafe(close)
        self.loop.call_soon_threadsafe(self.loop.stop)


class Pod:
    """One `lifeboat serve` child process on a free port and a temporary folder.

    With `tls=` a TestCA, the pod is reached the production way: https through a
    `TlsFront` holding a certificate from that CA for 127.0.0.1 (`self.front`), its
    public URL and diaspora IDs on the front's port, `federation.allow_http` off, and
    the CA trusted through `federation.extra_ca_file`. `self.url` is then the https
    URL (requests trust it when REQUESTS_CA_BUNDLE names the CA) and `self.local_url`
    the plain one the front forwards to."""

    def __init__(self, smtp=None, env=None, name="pod", data_dir=None, port=None, tls=None, log_path=None):
        self.name = name
        self.port = port or free_port()
        self.local_url = f"http://127.0.0.1:{self.port}"
        self.front = None
        if tls is not None:
            self.front = TlsFront(tls.issue(), self.port)
            self.url = f"https://127.0.0.1:{self.front.port}"
        else:
            self.url = self.local_url
        self.host = self.url.split("://", 1)[1]
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"lifeboat-{name}-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.env = dict(os.environ)
        self.env.update(
            {
                "LIFEBOAT_SERVER_LISTEN": f"127.0.0.1:{self.port}",
                "LIFEBOAT_SERVER_PUBLIC_URL": self.url,
                "LIFEBOAT_SERVER_DATA_DIR": str(self.data_dir),
                "LIFEBOAT_FEDERATION_ALLOW_HTTP": "false" if tls is not None else "true",
                "LIFEBOAT_FEDERATION_ALLOW_PRIVATE_ADDRESSES": "true",
                "LIFEBOAT_ACCOUNTS_KEY_BITS": "2048",
                "LIFEBOAT_BACKUPS_KDF_MEMORY_KIB": "19456",
                "LIFEBOAT_BACKUPS_KDF_TIME_COST": "2",
                "LIFEBOAT_LOG": "info,lifeboat=debug",
            }
        )
        if smtp is not None:
            self.env.update(smtp.pod_env())
            self.env["LIFEBOAT_MAIL_FROM"] = f"lifeboat@{name}.test"
        if tls is not None:
            self.env["LIFEBOAT_FEDERATION_EXTRA_CA_FILE"] = str(tls.pem)
        self.env.update(env or {})
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / f"{self.data_dir.name}.log"
        self.process = None

    def start(self, wait=True):
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(binary()), "serve"], env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        if wait:
            wait_until(self._ready, 30, what=f"{self.name} to answer on {self.url}")
        return self

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
        try:
            return requests.get(self.local_url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"{self.name} did not stop within {timeout}s after {sig!r}")
        if self.process:
            self._log.close()
        return self.process.returncode if self.process else None

    def restart(self):
        self.stop()
        return self.start()

    def close(self):
        try:
            self.stop()
        except AssertionError:
            pass
        if self.front:
            self.front.stop()
        if self._tmp:
            self._tmp.cleanup()

    def stored_files(self):
        """Every file this pod has written: all of its data folder, and its log beside it.
        Scans for what must never be stored read these."""
        files = [p for p in self.data_dir.rglob("*") if p.is_file()]
        assert self.log_path.is_file(), f"no log at {self.log_path}"
        return files + [self.log_path]

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def cli(self, *args, input=None, check=True, env=None):
        """Runs a podmin command against this pod's data folder."""
        e = dict(self.env)
        e.update(env or {})
        result = subprocess.run([str(binary()), *args], env=e, input=input, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"lifeboat {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)

    def post(self, path, **kw):
        return requests.post(self.url + path, timeout=kw.pop("timeout", 30), **kw)


def browser():
    """Headless Debian Chromium through chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='lifeboat-chromium-')}")
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver
