"""The holder side of backups (docs/holder-api.md) over real HTTP against a running lifeboat:
every status of `POST /api/lifeboat/v1/backups` and `/status`, the confirmation mail
at a real SMTP server and its page (a GET changes nothing), replays, rollbacks,
deletes with tombstones, a second key for the same address, racing pushes, quotas,
NodeInfo, backups turned off, the podmin commands, and a data folder and log that
hold nothing readable without the pass phrase, even while a restore has the backup
open. (410 for a restored slot is shown over HTTP by
`tests/backup_holder_http.rs`, which can mark a slot restored in-process.)"""

import base64
import hashlib
import json
import os
import re
import struct
import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from nacl import bindings as nacl

from rig import ROOT, wait_until

PASS = b"violet tractor drifts under 9 quiet lanterns"
PUSH = "/api/lifeboat/v1/backups"
STATUS = "/api/lifeboat/v1/backups/status"
ON = {"LIFEBOAT_BACKUPS_ALLOW_BACKUPS_AND_MIGRATION": "true"}

_keys = {}


def key(n, bits=2048):
    """The n-th test key (generated once per run)."""
    if (n, bits) not in _keys:
        _keys[(n, bits)] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _keys[(n, bits)]


def pem(k):
    return k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint(k):
    der = k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


_derived = {}


def seal(plaintext, passphrase=PASS, m=19456, t=2):
    """A .lfbk made with libsodium alone (docs/formats.md, "Key derivation and cipher")."""
    if (passphrase, m, t) not in _derived:
        salt = os.urandom(16)
        _derived[(passphrase, m, t)] = (salt, nacl.crypto_pwhash_alg(32, passphrase, salt, t, m * 1024, nacl.crypto_pwhash_ALG_ARGON2ID13))
    salt, k = _derived[(passphrase, m, t)]
    nonce = os.urandom(24)
    header = b"LFBK" + bytes([1, 1, 0, 0]) + struct.pack("<III", m, t, 1) + salt + nonce
    return header + nacl.crypto_secretbox_easy(plaintext, nonce, k)


def unseal(lfbk, passphrase):
    m, t = struct.unpack_from("<II", lfbk, 8)
    k = nacl.crypto_pwhash_alg(32, passphrase, lfbk[20:36], t, m * 1024, nacl.crypto_pwhash_ALG_ARGON2ID13)
    return nacl.crypto_secretbox_open_easy(lfbk[60:], lfbk[36:60], k)


def now_text(delta=timedelta()):
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(k, text):
    return base64.b64encode(k.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def envelope(k, email, sequence, data, created_at=None, **override):
    """A signed push of `data` (a .lfbk, or None to delete); `override` replaces fields after signing."""
    created_at = created_at or now_text()
    backup = data
    digest = "delete" if backup is None else hashlib.sha256(backup).hexdigest()
    body = {
        "version": 1,
        "email": email,
        "public_key": pem(k),
        "sequence": sequence,
        "created_at": created_at,
        "backup": None if backup is None else base64.b64encode(backup).decode(),
        "signature": sign(k, f"lifeboat-backup:1:{email}:{sequence}:{created_at}:{digest}"),
    }
    body.update(override)
    return body


def push(pod, k, email, sequence, data, client=None, **override):
    """`client`: the address a trusted proxy (the rig's loopback) says the push came from."""
    headers = {"X-Forwarded-For": client} if client else {}
    return pod.post(PUSH, json=envelope(k, email, sequence, data, **override), headers=headers)


def status(pod, k, email):
    created_at = now_text()
    return pod.post(STATUS, json={"email": email, "public_key": pem(k), "created_at": created_at, "signature": sign(k, f"lifeboat-backup-status:1:{email}:{created_at}")})


def confirm_link(smtp, email):
    body = smtp.body(smtp.wait_for(email, "backup"))
    return re.search(r"(http://\S+/backups/confirm\?token=[A-Za-z0-9_-]{43})", body).group(1), body


def decide(pod, link, action):
    page = pod.get(link[len(pod.url):])
    assert page.status_code == 200, page.text
    token = re.search(r'name="token" value="([A-Za-z0-9_-]{43})"', page.text).group(1)
    return pod.post("/backups/confirm", data={"token": token, "action": action})


def confirmed_slot(pod, smtp, k, email, backup, sequence=1):
    r = push(pod, k, email, sequence, backup)
    assert r.status_code == 202, r.text
    link, _ = confirm_link(smtp, email)
    r = decide(pod, link, "confirm")
    assert r.status_code == 200 and "Backup confirmed" in r.text, r.text
    return link


def test_first_push_mails_the_address_and_a_get_of_the_link_confirms_nothing(start_pod, smtp):
    pod = start_pod(env=ON)
    k = key(0)
    r = push(pod, k, "alice@example.org", 1, seal(b'{"user": "alice"}'))
    assert r.status_code == 202
    assert r.json() == {"status": "awaiting_confirmation"}

    link, text = confirm_link(smtp, "alice@example.org")
    assert fingerprint(k)[:16] in text, "the key's short fingerprint"
    assert f"{pod.url}/restore_backup" in text, "how to restore"
    assert "Move to another pod" in text, "how to move"
    assert pod.url in text, "which pod holds it"

    # Opening the link (even twice) changes nothing.
    for _ in range(2):
        page = pod.get(link[len(pod.url):])
        assert page.status_code == 200
        assert "Yes, this is my pod's backup" in page.text
        assert page.text.count('method="post"') == 2
        assert page.headers["referrer-policy"] == "no-referrer"
    assert status(pod, k, "alice@example.org").json()["confirmed"] is False
    assert push(pod, k, "alice@example.org", 2, seal(b"2")).status_code == 202

    r = decide(pod, link, "confirm")
    assert r.status_code == 200 and "Backup confirmed" in r.text
    held = status(pod, k, "alice@example.org").json()
    assert (held["sequence"], held["confirmed"]) == (2, True)
    r = push(pod, k, "alice@example.org", 3, seal(b"3"))
    assert (r.status_code, r.json()) == (200, {"status": "stored", "sequence": 3})
    # The link is single-use.
    assert pod.get(link[len(pod.url):]).status_code == 404
    assert len(smtp.to("alice@example.org")) == 1


def test_202_is_the_same_whether_or_not_the_address_has_other_backups(start_pod, smtp):
    pod = start_pod(env=ON)
    first = push(pod, key(0), "fresh@example.org", 1, seal(b"a"))
    push(pod, key(1), "busy@example.org", 1, seal(b"b"))
    second = push(pod, key(2), "busy@example.org", 1, seal(b"c"))
    assert first.status_code == second.status_code == 202
    assert first.content == second.content
    strip = lambda h: {k: v for k, v in h.items() if k.lower() != "date"}
    assert strip(first.headers) == strip(second.headers)


def test_replays_and_rollbacks_are_refused_with_the_held_sequence(start_pod, smtp):
    pod = start_pod(env=ON)
    k, email = key(0), "bob@example.org"
    confirmed_slot(pod, smtp, k, email, seal(b"1"))
    five = seal(b"five")
    five_push = envelope(k, email, 5, five)
    assert pod.post(PUSH, json=five_push).json() == {"status": "stored", "sequence": 5}
    replay = pod.post(PUSH, json=five_push)
    assert (replay.status_code, replay.json()) == (409, {"status": "stale", "sequence": 5})
    rollback = push(pod, k, email, 3, seal(b"three"))
    assert (rollback.status_code, rollback.json()) == (409, {"status": "stale", "sequence": 5})
    held = status(pod, k, email).json()
    assert held == {"sequence": 5, "sha256": hashlib.sha256(five).hexdigest(), "confirmed": True}, "the stored backup is intact"


def test_a_second_key_for_the_same_address_never_touches_the_first_slot(start_pod, smtp):
    pod = start_pod(env=ON)
    a, b, email = key(0), key(1), "carol@example.org"
    backup = seal(b"carol's")
    confirmed_slot(pod, smtp, a, email, backup, sequence=4)
    before = status(pod, a, email).json()
    assert push(pod, b, email, 100, seal(b"stranger")).status_code == 202
    assert push(pod, b, email, 101, None).status_code == 202
    assert status(pod, a, email).json() == before
    assert push(pod, a, email, 5, seal(b"next")).json() == {"status": "stored", "sequence": 5}
    assert status(pod, b, email).json()["confirmed"] is False


def test_a_delete_leaves_a_tombstone_and_an_older_push_replayed_is_refused(start_pod, smtp):
    pod = start_pod(env=ON)
    k, email = key(0), "dave@example.org"
    confirmed_slot(pod, smtp, k, email, seal(b"1"))
    old = envelope(k, email, 2, seal(b"2"))
    assert pod.post(PUSH, json=old).status_code == 200
    r = push(pod, k, email, 3, None)
    assert (r.status_code, r.json()) == (200, {"status": "deleted", "sequence": 3})
    assert status(pod, k, email).json() == {"sequence": 3, "sha256": None, "confirmed": True}
    r = pod.post(PUSH, json=old)
    assert (r.status_code, r.json()) == (409, {"status": "stale", "sequence": 3})
    assert status(pod, k, email).json()["sha256"] is None


def test_two_concurrent_pushes_with_one_sequence_have_one_winner(start_pod, smtp):
    pod = start_pod(env=ON)
    k, email = key(0), "erin@example.org"
    confirmed_slot(pod, smtp, k, email, seal(b"1"))
    for sequence in range(2, 8):
        bodies = [envelope(k, email, sequence, seal(f"{side}{sequence}".encode())) for side in "ab"]
        results = [None, None]
        gate = threading.Barrier(2)

        def send(i):
            gate.wait()
            results[i] = pod.post(PUSH, json=bodies[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sorted(r.status_code for r in results) == [200, 409]
        winner = next(i for i in range(2) if results[i].status_code == 200)
        loser = results[1 - winner]
        assert loser.json() == {"status": "stale", "sequence": sequence}
        held = status(pod, k, email).json()
        assert held["sha256"] == hashlib.sha256(base64.b64decode(bodies[winner]["backup"])).hexdigest()


def test_bad_input_is_400_and_a_bad_signature_401(start_pod, smtp):
    pod = start_pod(env=ON)
    k, email = key(0), "frank@example.org"
    good = seal(b"x")

    def refused(body, code=400, contains=""):
        r = pod.post(PUSH, json=body) if not isinstance(body, (bytes, str)) else pod.post(PUSH, data=body, headers={"content-type": "application/json"})
        assert r.status_code == code, (r.status_code, r.text)
        assert contains in r.json()["error"], r.json()
        return r

    refused(b"{nope", contains="not valid JSON")
    refused(envelope(k, email, 1, good, version=2), contains="version must be 1")
    refused(envelope(k, "Frank@example.org", 1, good), contains="lower-cased")
    refused(envelope(k, " frank@example.org", 1, good), contains="whitespace")
    refused(envelope(k, "frank@bücher.example", 1, good), contains="A-label")
    refused(envelope(k, email, 0, good), contains="sequence")
    refused(envelope(k, email, 2**53, good), contains="sequence")
    refused(envelope(k, email, 1, good, created_at="2026-01-01T00:00:00+00:00"), contains="created_at")
    refused(envelope(k, email, 1, good, created_at=now_text(timedelta(hours=25))), contains="24 hours")
    padded = base64.b64encode(good).decode()
    assert padded.endswith("=")
    refused(envelope(k, email, 1, good, backup=padded.rstrip("=")), contains="base64")
    refused(envelope(k, email, 1, good, backup="QUJD\nQUJD"), contains="base64")
    refused(envelope(key(9, 1024), email, 1, good), contains="1024 bits")
    small_e = rsa.generate_private_key(public_exponent=3, key_size=2048)
    refused(envelope(small_e, email, 1, good), contains="65537")
    refused(envelope(k, email, 1, b"not an lfbk at all" * 10), contains="not a lifeboat backup")
    refused(envelope(k, email, 1, seal(b"x", m=8192)), contains="memory cost")
    refused(envelope(k, email, 1, seal(b"x", t=11)), contains="time cost")
    # 401: a signature by another key, or over other data.
    r = refused(envelope(k, email, 1, good, signature=sign(key(1), "lifeboat-backup:1:x")), code=401)
    tampered = envelope(k, email, 1, good)
    tampered["sequence"] = 2
    refused(tampered, code=401)
    # Nothing was created by any of these.
    assert status(pod, k, email).status_code == 404


def test_too_large_is_413_while_reading_and_a_full_quota_507(start_pod, smtp):
    pod = start_pod(env={**ON, "LIFEBOAT_BACKUPS_MAX_BACKUP_BYTES": "65536", "LIFEBOAT_BACKUPS_UNCONFIRMED_QUOTA_BYTES": "100000"})
    k = key(0)
    big = seal(os.urandom(70000))
    r = push(pod, k, "gina@example.org", 1, big)
    assert r.status_code == 413
    # Refused while reading: a declared length over the limit is answered before the body is sent.
    import socket

    with socket.create_connection(("127.0.0.1", pod.port)) as s:
        s.sendall(f"POST {PUSH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n".encode())
        s.settimeout(10)
        assert s.recv(100).startswith(b"HTTP/1.1 413")
    ok = seal(os.urandom(60000))
    assert push(pod, k, "gina@example.org", 1, ok).status_code == 202
    assert pod.get("/nodeinfo/2.1").json()["metadata"]["acceptsBackups"] is True
    r = push(pod, key(1), "hank@example.org", 1, ok)
    assert r.status_code == 507, r.text
    # 507 comes before 400 and 401 (docs/holder-api.md, "Check order"), even for a bad
    # signature.
    assert push(pod, key(1), "hank@example.org", 1, ok, signature=sign(key(2), "x")).status_code == 507
    # Filling the unconfirmed quota exactly does not close NodeInfo (issue #17: strangers
    # must not switch a backup pod off); only the confirmed quota or the podmin does.
    rest = 100000 - len(ok) - 76
    assert push(pod, key(1), "hank@example.org", 1, seal(os.urandom(rest))).status_code == 202
    assert pod.get("/nodeinfo/2.1").json()["metadata"]["acceptsBackups"] is True


def test_pushes_are_rate_limited_per_client(start_pod, smtp):
    pod = start_pod(env={**ON, "LIFEBOAT_BACKUPS_PUSHES_PER_MINUTE": "2", "LIFEBOAT_SERVER_TRUSTED_PROXIES": "127.0.0.1"})
    codes = [push(pod, key(0), "ivy@example.org", n, seal(b"r"), client="10.0.0.1").status_code for n in (1, 2, 3)]
    assert codes == [202, 202, 429]
    # Another client is not limited by the first one's use, for the same slot or another.
    assert push(pod, key(0), "ivy@example.org", 3, seal(b"r"), client="10.0.0.2").status_code == 202
    assert push(pod, key(1), "jo@example.org", 1, seal(b"r"), client="10.0.0.2").status_code == 202
    assert push(pod, key(1), "jo@example.org", 2, seal(b"r"), client="10.0.0.2").status_code == 429
    assert push(pod, key(0), "ivy@example.org", 4, seal(b"r"), client="10.0.0.1").status_code == 429, "the first is still limited"


def test_with_backups_off_held_slots_are_still_answered(start_pod, smtp):
    pod = start_pod(env=ON)
    k, email = key(0), "jack@example.org"
    backup = seal(b"held")
    confirmed_slot(pod, smtp, k, email, backup)
    pod.stop()
    pod.env["LIFEBOAT_BACKUPS_ALLOW_BACKUPS_AND_MIGRATION"] = "false"
    pod.start()
    assert pod.get("/nodeinfo/2.1").json()["metadata"]["acceptsBackups"] is False
    r = push(pod, k, email, 2, seal(b"new"))
    assert r.status_code == 403, "no new backup"
    assert push(pod, key(1), "kate@example.org", 1, seal(b"n")).status_code == 403, "no new slot"
    assert push(pod, key(1), "kate@example.org", 1, None).status_code == 403
    # Check 1 comes first: a new slot with a bad signature, or an oversized body, is 403.
    assert push(pod, key(1), "kate@example.org", 1, None, signature=sign(key(2), "x")).status_code == 403
    assert pod.post(PUSH, data=b"x" * 100000, headers={"content-type": "application/json"}).status_code == 403
    assert status(pod, key(1), "kate@example.org").status_code == 403
    # The held slot still answers status and deletes.
    assert status(pod, k, email).json() == {"sequence": 1, "sha256": hashlib.sha256(backup).hexdigest(), "confirmed": True}
    r = push(pod, k, email, 2, None)
    assert (r.status_code, r.json()) == (200, {"status": "deleted", "sequence": 2})


def test_status_answers_404_for_an_unknown_slot_and_checks_its_signature(start_pod, smtp):
    pod = start_pod(env=ON)
    assert status(pod, key(0), "nobody@example.org").status_code == 404
    created_at = now_text()
    r = pod.post(STATUS, json={"email": "nobody@example.org", "public_key": pem(key(0)), "created_at": created_at, "signature": sign(key(1), "x")})
    assert r.status_code == 401
    r = pod.post(STATUS, json={"email": "Nobody@example.org", "public_key": pem(key(0)), "created_at": created_at, "signature": sign(key(0), "x")})
    assert r.status_code == 400


def test_not_mine_deletes_the_backup_and_stops_the_mails(start_pod, smtp):
    pod = start_pod(env=ON)
    k, email = key(3), "lena@example.org"
    assert push(pod, k, email, 1, seal(b"someone else's")).status_code == 202
    link, _ = confirm_link(smtp, email)
    r = decide(pod, link, "reject")
    assert r.status_code == 200 and "Backup deleted" in r.text
    assert status(pod, k, email).json() == {"sequence": 1, "sha256": None, "confirmed": False}
    assert push(pod, k, email, 2, seal(b"again")).status_code == 202
    assert status(pod, k, email).json()["sha256"] is None, "nothing is stored for that key again"


def test_mail_caps_one_per_address_per_day_and_an_hourly_cap(start_pod, smtp):
    pod = start_pod(env={**ON, "LIFEBOAT_BACKUPS_CONFIRMATION_MAILS_PER_HOUR": "2"})
    push(pod, key(0), "mia@example.org", 1, seal(b"1"))
    push(pod, key(1), "mia@example.org", 1, seal(b"2"))
    push(pod, key(2), "ned@example.org", 1, seal(b"3"))
    push(pod, key(3), "ola@example.org", 1, seal(b"4"))
    smtp.wait_for("mia@example.org", "backup")
    smtp.wait_for("ned@example.org", "backup")
    sent_so_far(pod, smtp, "ned@example.org")
    assert len(smtp.to("mia@example.org")) == 1, "one per address per day"
    assert smtp.to("ola@example.org") == [], "the hourly cap"


def test_podmin_lists_and_counts_slots_without_their_content(start_pod, smtp):
    pod = start_pod(env=ON)
    k = key(0)
    backup = seal(b"podmin must not see this")
    confirmed_slot(pod, smtp, k, "pat@example.org", backup, sequence=7)
    push(pod, key(1), "quinn@example.org", 1, seal(b"q"))
    for when in ("running", "stopped"):
        listed = pod.cli("backups", "list").stdout
        assert "pat@example.org" in listed and fingerprint(k)[:16] in listed
        line = next(l for l in listed.splitlines() if l.startswith("pat@example.org"))
        assert "confirmed" in line and str(len(backup)) in line and " 7 " in line, line
        assert "unconfirmed" in next(l for l in listed.splitlines() if l.startswith("quinn@example.org"))
        assert base64.b64encode(backup).decode()[:40] not in listed
        stats = pod.cli("backups", "stats").stdout
        assert "confirmed slots:   1" in stats and f"confirmed bytes:   {len(backup)}" in stats, stats
        assert "unconfirmed slots: 1" in stats, stats
        pod.stop()


def restore_link(pod, smtp, email):
    """A requests session and the token of a restore link mailed for `email`."""
    s = requests.Session()
    s.get(pod.url + "/restore_backup")
    r = s.post(pod.url + "/restore_backup", data={"csrf": s.cookies["lb_csrf"], "email": email})
    assert r.status_code == 200 and "Check your email" in r.text, r.text
    body = smtp.body(smtp.wait_for(email, "Restore your diaspora"))
    return s, re.search(r"/restore_backup/confirm\?token=([A-Za-z0-9_-]{43})", body).group(1)


def sent_so_far(pod, smtp, email):
    """Waits until every mail queued so far has been sent: asks for a restore link for
    `email` (which must hold a slot) and waits for it. The mail worker sends in queue
    order, so once that mail is in, every mail queued before it has been sent."""
    restore_link(pod, smtp, email)


def test_the_store_and_log_hold_nothing_that_opens_without_the_pass_phrase_even_during_a_restore(start_pod, smtp):
    """The pass phrase and the archive's plaintext do reach a backup pod: the user types
    the pass phrase into the restore page, and the opened archive waits in memory for the
    account form. A restore is driven up to a wrong and then a right pass phrase (the
    account is not created, so the opened archive is still waiting), the pod is stopped,
    and no file in its data folder nor its log holds the pass phrase or a text that
    lives only inside the sealed archive."""
    pod = start_pod(env=ON)
    k, email = key(0), "rosa@example.org"
    marker = "SECRET-POST-" + os.urandom(8).hex()
    archive = json.loads((ROOT / "tests" / "fixtures" / "diaspora-export.json").read_text().replace("old-pod.example", "127.0.0.1:9"))
    archive["user"]["posts"][0]["entity_data"]["text"] = f"Only in the sealed archive: {marker}"
    backup = seal(json.dumps(archive).encode())
    confirmed_slot(pod, smtp, k, email, backup)

    s, token = restore_link(pod, smtp, email)
    wrong = b"a wrong pass phrase, typed with care"
    r = s.post(pod.url + "/restore_backup/confirm", data={"csrf": s.cookies["lb_csrf"], "token": token, "passphrase": wrong.decode()})
    assert r.status_code == 401 and "did not open the backup" in r.text, r.text
    r = s.post(pod.url + "/restore_backup/confirm", data={"csrf": s.cookies["lb_csrf"], "token": token, "passphrase": PASS.decode()})
    assert r.status_code == 200 and "Your backup is open" in r.text, r.text
    assert "2 posts and 2 comments" in r.text, "the archive holding the marker is the one opened"
    pod.stop()

    found_backup = False
    for path in pod.stored_files():
        data = path.read_bytes()
        for secret, what in ((marker.encode(), "plaintext"), (PASS, "the pass phrase"), (wrong, "a tried pass phrase")):
            assert secret not in data, f"{what} in {path}"
        found_backup = found_backup or backup in data
    assert found_backup, "the sealed file is held as pushed"
    # (The token is in the data folder's mail queue, as the mail had to be durable before it was sent.)
    assert token not in pod.log()
    assert marker.encode() in unseal(backup, PASS)
    with pytest.raises(Exception):
        unseal(backup, wrong)


def test_a_killed_pod_keeps_every_acknowledged_push_and_checks_clean(start_pod, smtp):
    """Held backups are appended to shared segment files and synced in batches: a pod
    killed mid-push still holds, for every slot, the last push it answered 200 (or the
    one in flight, if that committed), byte for byte, and `lifeboat check` finds
    nothing wrong. The pushes are large enough to fill segments, so tidy passes run.
    Every slot must have made progress of its own before the kill."""
    import signal

    pod = start_pod(env=dict(ON, LIFEBOAT_BACKUPS_PUSHES_PER_MINUTE="100000"))
    slots = [(key(i), f"crash{i}@example.org") for i in range(4)]
    for k, email in slots:
        confirmed_slot(pod, smtp, k, email, seal(b"first"))
    per_slot = 50
    acked = {email: 1 for _, email in slots}
    sent = {email: {} for _, email in slots}
    failures = []
    killed = threading.Event()

    def pusher(k, email):
        sequence = 2
        while True:  # until the kill: a push is in flight when it comes
            data = seal(os.urandom(256 * 1024))
            sent[email][sequence] = hashlib.sha256(data).hexdigest()
            try:
                r = push(pod, k, email, sequence, data)
            except requests.RequestException as e:
                if not killed.is_set():
                    failures.append(f"{email} push {sequence}: {e!r} before the kill")
                return
            if r.status_code != 200:
                failures.append(f"{email} push {sequence}: {r.status_code} {r.text}")
                return
            acked[email] = sequence
            sequence += 1

    threads = [threading.Thread(target=pusher, args=slot) for slot in slots]
    [t.start() for t in threads]
    wait_until(lambda: failures or min(acked.values()) >= 1 + per_slot, timeout=90, interval=0.01, what=f"{per_slot} acknowledged pushes to every slot")
    killed.set()
    pod.stop(sig=signal.SIGKILL)
    [t.join() for t in threads]
    assert failures == [], failures
    assert all(n >= 1 + per_slot for n in acked.values()), acked

    pod.start()
    held = {email: status(pod, k, email).json() for k, email in slots}
    for email, answer in held.items():
        # The last push answered 200, or the one in flight at the kill if it had committed
        # (its answer was lost with the process): both are right, nothing else is.
        in_flight = acked[email] + 1 if acked[email] + 1 in sent[email] else None
        assert answer["sequence"] == acked[email] or answer["sequence"] == in_flight, (email, answer, acked[email])
        assert answer["sha256"] == sent[email][answer["sequence"]], "the push answered last, byte for byte"
    # `check` reads every held backup and compares it with its slot's size and SHA-256.
    assert "store OK" in pod.cli("check").stdout
    for k, email in slots:
        r = push(pod, k, email, held[email]["sequence"] + 1, seal(b"after the restart"))
        assert r.status_code == 200, r.text
    assert "store OK" in pod.cli("check").stdout
