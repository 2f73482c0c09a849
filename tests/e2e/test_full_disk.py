"""A full disk: the data folder on a small tmpfs, filled once by another program
(to the last byte) and once by lifeboat's own pushes (up to the kept margin,
`server.min_free_mib`). Each time every push, web sign-up and `user add` answers 507
with a clear message (never 500, never a panic), nothing acknowledged is lost and
`lifeboat check` stays clean; once space returns (the file removed, the disk grown)
the same process takes writes again, and a restart finds everything."""

import hashlib
import os
import re
import subprocess
import uuid

import pytest
import requests

from rig import Pod
from test_backup_holder import ON, confirmed_slot, key, push, seal, status

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs (needs root)")

DISK_FULL = "disk is full"


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m,mode=0700", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(path):
    """Writes `path` until the disk says no; returns how much it took."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    written = 0
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    written += os.write(fd, bytes(size))
            except OSError as e:
                assert e.errno == 28, e
    finally:
        os.close(fd)
    return written


def sign_up(pod, name):
    s = requests.Session()
    s.get(pod.url + "/users/sign_up")
    return s.post(
        pod.url + "/users/sign_up",
        data={"csrf": s.cookies["lb_csrf"], "username": name, "email": f"{name}@example.org", "password": "a long password for the test", "no_backups": "on"},
        allow_redirects=False,
    )


def user_add(pod, name):
    return pod.cli("user", "add", name, "--email", f"{name}@example.org", input="a long password for the test\n", check=False)


def test_a_full_disk_answers_507_loses_nothing_and_recovers_without_a_restart(small_disk, smtp, tmp_path):
    env = {**ON, "LIFEBOAT_SERVER_MIN_FREE_MIB": "8", "LIFEBOAT_BACKUPS_PUSHES_PER_MINUTE": "100000", "LIFEBOAT_BACKUPS_MAX_BACKUP_BYTES": str(2 << 20)}
    pod = Pod(smtp=smtp, env=env, name="full", data_dir=small_disk / "data", log_path=tmp_path / "full.log").start()
    try:
        slots = [(key(i), f"disk{i}@example.org") for i in range(3)]
        for k, email in slots:
            confirmed_slot(pod, smtp, k, email, seal(b"first"))
        acked = {}
        assert user_add(pod, "before").returncode == 0

        for k, email in slots:
            data = seal(os.urandom(1_500_000))
            assert push(pod, k, email, 2, data).status_code == 200
            acked[email] = (2, hashlib.sha256(data).hexdigest())

        def refused_cleanly(sequence, name):
            for k, email in slots:
                r = push(pod, k, email, sequence, seal(os.urandom(1000)))
                assert r.status_code == 507 and DISK_FULL in r.json()["error"], r.text
            r = sign_up(pod, f"web{name}")
            assert r.status_code == 507 and DISK_FULL in r.text, r.status_code
            added = user_add(pod, f"cli{name}")
            assert added.returncode != 0 and DISK_FULL in added.stderr, added.stderr
            assert "panicked" not in added.stderr
            # Reads still work, and what was acknowledged is there, whole.
            for k, email in slots:
                held = status(pod, k, email).json()
                assert (held["sequence"], held["sha256"]) == acked[email], (email, held)
            check = pod.cli("check")
            assert "store OK" in check.stdout, check.stdout

        def accepted(sequence, name):
            for k, email in slots:
                data = seal(os.urandom(1000))
                r = push(pod, k, email, sequence, data)
                assert r.status_code in (200, 202), r.text
                acked[email] = (sequence, hashlib.sha256(data).hexdigest())
            assert sign_up(pod, f"web{name}").status_code == 303
            assert user_add(pod, f"cli{name}").returncode == 0
            assert pod.process.poll() is None, "the same process, never restarted"

        # Another program takes the whole disk: lifeboat answers cleanly...
        assert fill(small_disk / "filler") > 0
        refused_cleanly(3, "one")
        # ... and works again, without a restart, once that space is back.
        os.unlink(small_disk / "filler")
        accepted(3, "one")

        # Pushes of ~1.5 MiB for new addresses (each one held) fill the disk up to the
        # kept margin: then 507, never 500.
        refused = None
        for n in range(60):
            k, email = key(3), f"filler{n}@example.org"
            data = seal(os.urandom(1_500_000))
            r = push(pod, k, email, 1, data)
            if r.status_code == 202:
                slots.append((k, email))
                acked[email] = (1, hashlib.sha256(data).hexdigest())
                continue
            refused = r
            break
        assert refused is not None, "the disk never filled"
        assert refused.status_code == 507 and DISK_FULL in refused.json()["error"], refused.text
        assert len(slots) > 10, slots
        # (Smaller writes still fit above the margin; another program takes that too.)
        fill(small_disk / "filler")
        refused_cleanly(4, "two")
        # The podmin grows the disk: the same process takes writes again.
        subprocess.run(["mount", "-o", "remount,size=80m", str(small_disk)], check=True)
        accepted(4, "two")
        assert "panicked" not in pod.log()

        # And after a restart too, with nothing half-written.
        pod.restart()
        for k, email in slots:
            held = status(pod, k, email).json()
            assert (held["sequence"], held["sha256"]) == acked[email], (email, held)
        listed = pod.cli("user", "list").stdout
        for name in ("before", "webone", "clione", "webtwo", "clitwo"):
            assert re.search(rf"^{name}\b", listed, re.M), listed
        assert "store OK" in pod.cli("check").stdout
    finally:
        pod.close()
