"""The test rig: real lifeboat processes, a real SMTP server, a real browser.

`Pod` starts `lifeboat serve` as a child process on a temporary data folder and a
free loopback port, configured through LIFEBOAT_* variables exactly as an operator
would; `SmtpSink` is an aiosmtpd server that keeps every message it receives;
`browser()` is headless Debian Chromium driven through chromedriver (Selenium).
Multi-pod tests start several `Pod`s.
"""

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
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with sink.lock:
                    sink.messages.append({"envelope_from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos), "message": msg})
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

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


class Pod:
    """One `lifeboat serve` child process on a free port and a temporary folder."""

    def __init__(self, smtp=None, env=None, name="pod", data_dir=None, port=None):
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
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
                "LIFEBOAT_FEDERATION_ALLOW_HTTP": "true",
                "LIFEBOAT_FEDERATION_ALLOW_PRIVATE_ADDRESSES": "true",
                "LIFEBOAT_ACCOUNTS_KEY_BITS": "2048",
                "LIFEBOAT_BACKUPS_KDF_MEMORY_KIB": "19456",
                "LIFEBOAT_BACKUPS_KDF_TIME_COST": "2",
                "LIFEBOAT_LOG": "info,lifeboat=debug",
            }
        )
        if smtp is not None:
            self.env.update(
                {
                    "LIFEBOAT_MAIL_SMTP_HOST": "127.0.0.1",
                    "LIFEBOAT_MAIL_SMTP_PORT": str(smtp.port),
                    "LIFEBOAT_MAIL_SMTP_TLS": "none",
                    "LIFEBOAT_MAIL_FROM": f"lifeboat@{name}.test",
                }
            )
        self.env.update(env or {})
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
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
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
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
