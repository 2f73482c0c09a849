"""The home pod's automatic encrypted backups (issue 7, docs/holder-api.md, "The home
pod's side"), with real lifeboat processes on loopback: a home pod A and backup pods B
and C, a real SMTP server.

Periods are shortened through the environment (debounce 1 s, daily pass 2 s, NodeInfo
read every second, retries after 1–2 s). What B holds is read as B's podmin sees it
(`backups list`), through the status API signed with the account's own key (exported
from A by its podmin), and — to open it with the pass phrase — as the exact bytes B
stored, found in B's store files by the SHA-256 that B's status answer gives. The last
test restores the automatic backup through B's own restore flow, so B answers 410."""

import base64
import hashlib
import json
import os
import re
import shutil
import time
from datetime import datetime, timezone

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from nacl import bindings as nacl

from rig import ROOT, wait_until

FIXTURE = ROOT / "tests" / "fixtures" / "diaspora-export.json"
PASSPHRASE = "violet tractor humming seventeen lanterns"
PASSWORD = "correct horse 1"
STATUS = "/api/lifeboat/v1/backups/status"
ON = {"LIFEBOAT_BACKUPS_ALLOW_BACKUPS_AND_MIGRATION": "true"}
FAST = {
    "LIFEBOAT_BACKUPS_PUSH_DEBOUNCE": "1s",
    "LIFEBOAT_BACKUPS_PUSH_INTERVAL": "2s",
    "LIFEBOAT_BACKUPS_POD_CHECK_INTERVAL": "1s",
    "LIFEBOAT_BACKUPS_PUSH_RETRY_MIN": "1s",
    "LIFEBOAT_BACKUPS_PUSH_RETRY_MAX": "2s",
}


def home_pod(start_pod, seeds=(), approved=(), **extra):
    env = dict(FAST)
    env["LIFEBOAT_FEDERATION_SEED_PODS"] = ",".join(p.url for p in seeds)
    env["LIFEBOAT_BACKUPS_APPROVED_PODS"] = ",".join(p.url for p in approved)
    env.update(extra)
    return start_pod("a", env=env)


def sign_up(pod, username, email, passphrase=PASSPHRASE):
    s = requests.Session()
    s.get(pod.url + "/users/sign_up")
    r = s.post(pod.url + "/users/sign_up", data={"csrf": s.cookies["lb_csrf"], "username": username, "email": email, "password": PASSWORD, "passphrase": passphrase}, allow_redirects=False)
    assert r.status_code == 303, r.text
    return s


def confirm_email(pod, smtp, session, email):
    body = smtp.body(smtp.wait_for(email, "Confirm your email"))
    token = re.search(r"confirm_email\?token=(\S+)", body).group(1)
    r = session.post(pod.url + "/users/confirm_email", data={"csrf": session.cookies["lb_csrf"], "token": token})
    assert r.status_code == 200 and "Address confirmed" in r.text, r.text


def post(session, pod, path, **fields):
    r = session.post(pod.url + path, data={"csrf": session.cookies["lb_csrf"], **fields})
    assert r.status_code == 200, r.text
    return r


def set_first_name(session, pod, name):
    r = session.post(pod.url + "/profile", files={"csrf": (None, session.cookies["lb_csrf"]), "first_name": (None, name), "searchable": (None, "on")})
    assert r.status_code == 200 and "Saved." in r.text, r.text


def settings(session, pod):
    return session.get(pod.url + "/settings").text


def exported(pod, username, tmp_path):
    """The account's archive as its podmin exports it (its private key included)."""
    out = tmp_path / f"{username}-{time.monotonic_ns()}.json"
    pod.cli("archive", "export", username, "--out", str(out))
    return json.loads(out.read_text())


def account_key(pod, username, tmp_path):
    pem = exported(pod, username, tmp_path)["user"]["private_key"]
    return serialization.load_pem_private_key(pem.encode(), password=None)


def status(holder, key, email):
    """The holder's answer to a status check signed with the account's key."""
    created_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    signature = base64.b64encode(key.sign(f"lifeboat-backup-status:1:{email}:{created_at}".encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    return holder.post(STATUS, json={"email": email, "public_key": public, "created_at": created_at, "signature": signature})


def held(holder, key, email):
    """(sequence, sha256) of the backup the holder holds, or None."""
    r = status(holder, key, email)
    if r.status_code != 200:
        return None
    body = r.json()
    return (body["sequence"], body["sha256"]) if body["sha256"] else None


def held_bytes(holder, email, sha256):
    """The .lfbk bytes the holder stored for `email`, found in its data folder by their SHA-256."""
    line = next(l for l in holder.cli("backups", "list").stdout.splitlines() if l.startswith(email + " "))
    size = int(line.split()[3])
    for root, _, files in os.walk(holder.data_dir / "held"):
        for name in files:
            data = open(os.path.join(root, name), "rb").read()
            at = data.find(b"LFBK\x01\x01\x00\x00")
            while at >= 0:
                candidate = data[at : at + size]
                if hashlib.sha256(candidate).hexdigest() == sha256:
                    return candidate
                at = data.find(b"LFBK\x01\x01\x00\x00", at + 1)
    raise AssertionError(f"no stored bytes with sha256 {sha256}")


def unseal(lfbk, passphrase=PASSPHRASE):
    """Opens a .lfbk with libsodium alone (docs/formats.md, "Key derivation and cipher")."""
    m, t = int.from_bytes(lfbk[8:12], "little"), int.from_bytes(lfbk[12:16], "little")
    key = nacl.crypto_pwhash_alg(32, passphrase.encode(), lfbk[20:36], t, m * 1024, nacl.crypto_pwhash_ALG_ARGON2ID13)
    return json.loads(nacl.crypto_secretbox_open_easy(lfbk[60:], lfbk[36:60], key))


def confirm_at_holder(holder, smtp, email):
    body = smtp.body(smtp.wait_for(email, f"Is this your diaspora* account's backup? ({holder.host})"))
    link = re.search(r"(http://\S+/backups/confirm\?token=[A-Za-z0-9_-]{43})", body).group(1)
    page = holder.get(link[len(holder.url) :])
    token = re.search(r'name="token" value="([A-Za-z0-9_-]{43})"', page.text).group(1)
    r = holder.post("/backups/confirm", data={"token": token, "action": "confirm"})
    assert r.status_code == 200 and "Backup confirmed" in r.text, r.text


def backed_up(start_pod, smtp, tmp_path, holders, username="alice", approved=(), **extra):
    """A home pod seeded with `holders`, one account signed up, confirmed, with a pass
    phrase, and its first backup held by holders[0]. Returns (a, session, email, key)."""
    a = home_pod(start_pod, seeds=holders, approved=approved, **extra)
    email = f"{username}@example.org"
    s = sign_up(a, username, email)
    confirm_email(a, smtp, s, email)
    key = account_key(a, username, tmp_path)
    wait_until(lambda: held(holders[0], key, email), what="the first backup at the holder")
    return a, s, email, key


def test_a_confirmed_account_with_a_pass_phrase_is_backed_up_on_b_and_opens_with_it(start_pod, smtp, tmp_path):
    b = start_pod("b", env=ON)
    b.cli("user", "add", "bob", "--email", "bob@example.org", input="bob's password\n")
    a = home_pod(start_pod, seeds=[b])
    email = "alice@example.org"
    s = sign_up(a, "alice", email)
    # The account's data, all changed before the address is confirmed.
    set_first_name(s, a, "Alice")
    post(s, a, "/aspects", name="Book club")
    r = post(s, a, "/contacts", diaspora_id=f"bob@{b.host}")
    assert "Contact added." in r.text
    since = len(a.log())
    post(s, a, "/tags", item="#wonderland")
    assert "backups start once your email address is confirmed" in settings(s, a)

    # Before the address is confirmed nothing is pushed: A's worker looks at the account
    # after its last change (at once: it has no backup pod yet) and does not run its backups.
    wait_until(lambda: "backups: not running: backups start once your email address is confirmed" in a.log()[since:], what="A to look at the unconfirmed account")
    assert b.cli("backups", "list").stdout.strip() == "no backup slots held"
    assert not [m for m in smtp.to(email) if "backup" in str(m["Subject"]).lower()]
    assert "Sending backup" not in a.log() and "backups: pushed" not in a.log()

    confirm_email(a, smtp, s, email)
    mail = smtp.wait_for(email, f"Your encrypted backup is kept at {b.host}")
    body = smtp.body(mail)
    assert f"{b.url}/restore_backup" in body, body
    assert "Keep your backup pass phrase safe" in body and "cannot recover it" in body
    assert PASSPHRASE not in body and PASSPHRASE.split()[0] not in body, "never the pass phrase"

    key = account_key(a, "alice", tmp_path)
    first = wait_until(lambda: held(b, key, email), what="the backup at B")
    page = settings(s, a)
    assert b.host in page and "awaiting your confirmation" in page and "check your email" in page, page
    confirm_at_holder(b, smtp, email)

    archive = unseal(held_bytes(b, email, first[1]))
    mine = exported(a, "alice", tmp_path)
    user = archive["user"]
    assert user["profile"]["entity_data"]["first_name"] == "Alice"
    assert "Book club" in [g["name"] for g in user["contact_groups"]]
    assert [c["account_id"] for c in user["contacts"]] == [f"bob@{b.host}"]
    assert user["followed_tags"] == mine["user"]["followed_tags"] and user["followed_tags"]
    assert user["private_key"] == mine["user"]["private_key"], "the account key is in the backup"
    assert archive == mine, "the backup is exactly the account's archive"

    # A profile change: a new push with a higher sequence, holding the change.
    set_first_name(s, a, "Alicia")
    second = wait_until(lambda: (h := held(b, key, email)) and h[0] > first[0] and h, what="a higher sequence at B")
    assert unseal(held_bytes(b, email, second[1]))["user"]["profile"]["entity_data"]["first_name"] == "Alicia"
    wait_until(lambda: f"(sequence {second[0]})" in settings(s, a), what="the settings to show the last success")
    assert "stored" in settings(s, a)

    # No change: several daily passes (2 s here) go by and nothing new is pushed.
    since = len(a.log())
    wait_until(lambda: a.log()[since:].count("backups: unchanged since the last push, not pushed") >= 3, what="three daily passes at A")
    assert "backups: pushed" not in a.log()[since:]
    assert held(b, key, email) == second
    line = next(l for l in b.cli("backups", "list").stdout.splitlines() if l.startswith(email))
    assert f" {second[0]} " in line, line


def test_when_b_turns_backups_off_a_moves_to_c_deletes_at_b_and_tells_the_user(start_pod, smtp, tmp_path):
    b = start_pod("b", env=ON)
    c = start_pod("c", env=ON, start=False)
    a, s, email, key = backed_up(start_pod, smtp, tmp_path, [b], approved=[c])
    confirm_at_holder(b, smtp, email)
    c.start()
    wait_until(lambda: re.search(rf"backups: NodeInfo read origin={re.escape(c.url)} accepts=true", a.log()), what="A to read C's NodeInfo")
    b.env["LIFEBOAT_BACKUPS_ALLOW_BACKUPS_AND_MIGRATION"] = "false"
    b.restart()

    mail = smtp.wait_for(email, f"Your encrypted backup moved to {c.host}")
    body = smtp.body(mail)
    assert f"{b.host} no longer accepts backups" in body and f"{c.url}/restore_backup" in body, body
    assert PASSPHRASE not in body
    at_c = wait_until(lambda: held(c, key, email), what="the backup at C")
    assert unseal(held_bytes(c, email, at_c[1]))["user"]["username"] == "alice"
    # B, backups off, still answers deletes and status checks of the slots it holds.
    wait_until(lambda: (r := status(b, key, email)).status_code == 200 and r.json()["sha256"] is None, what="the delete at B")
    page = settings(s, a)
    assert f"Your backup pod is <strong>{c.host}</strong>" in page, page


def test_the_weekly_status_check_re_pushes_what_b_silently_lost(start_pod, smtp, tmp_path):
    b = start_pod("b", env=ON)
    a, s, email, key = backed_up(start_pod, smtp, tmp_path, [b], LIFEBOAT_BACKUPS_STATUS_CHECK_INTERVAL="3s")
    before = held(b, key, email)
    b.stop()
    shutil.rmtree(b.data_dir / "db")
    b.start()
    assert status(b, key, email).status_code == 404, "B lost it, and told nobody"
    after = wait_until(lambda: held(b, key, email), timeout=30, what="the re-push after the status check")
    assert after[0] > before[0]
    assert "the holder lost the backup; pushing again" in a.log()


def test_a_restarted_mid_retry_still_pushes(start_pod, smtp, tmp_path):
    b = start_pod("b", env=ON)
    a, s, email, key = backed_up(start_pod, smtp, tmp_path, [b], LIFEBOAT_BACKUPS_WARN_AFTER_FAILING="3s")
    before = held(b, key, email)
    b.stop()
    set_first_name(s, a, "Alice, offline")
    wait_until(lambda: "Failing" in settings(s, a), what="A to see its pushes fail")
    assert "Last error" in settings(s, a)
    # Failing for longer than warn_after_failing: the user is told, on the page and by mail.
    warning = smtp.body(smtp.wait_for(email, "Your encrypted backup is not up to date"))
    assert b.host in warning and PASSPHRASE not in warning
    assert "Your backup has not succeeded since" in settings(s, a)
    a.restart()
    b.start()
    after = wait_until(lambda: (h := held(b, key, email)) and h[0] > before[0] and h, timeout=30, what="the push after the restart")
    assert unseal(held_bytes(b, email, after[1]))["user"]["profile"]["entity_data"]["first_name"] == "Alice, offline"
    assert after[0] > before[0] + 1, "the failed attempts used up their sequences: they only grow"
    wait_until(lambda: "Failing" not in settings(s, a), what="the failure to clear")
    assert "Your backup has not succeeded since" not in settings(s, a)


def test_opting_out_and_deleting_the_account_send_deletes(start_pod, smtp, tmp_path):
    b = start_pod("b", env=ON)
    a, s, email, key = backed_up(start_pod, smtp, tmp_path, [b])
    carol = sign_up(a, "carol", "carol@example.org")
    confirm_email(a, smtp, carol, "carol@example.org")
    carol_key = account_key(a, "carol", tmp_path)
    wait_until(lambda: held(b, carol_key, "carol@example.org"), what="carol's backup at B")

    post(s, a, "/settings/backups/opt_out", password=PASSWORD)
    wait_until(lambda: (r := status(b, key, email)).status_code == 202 or (r.status_code == 200 and r.json()["sha256"] is None), what="alice's delete at B")
    assert "Encrypted backups are not running" in settings(s, a)

    post(carol, a, "/settings/delete", password=PASSWORD)
    wait_until(lambda: (r := status(b, carol_key, "carol@example.org")).status_code == 200 and r.json()["sha256"] is None, what="carol's delete at B, signed before her key was erased")


def test_the_user_chooses_another_pod_in_the_settings_even_one_not_vetted(start_pod, smtp, tmp_path):
    b = start_pod("b", env=ON)
    c = start_pod("c", env=ON)
    a = home_pod(start_pod, seeds=[b])
    # An account moves in with an archive whose known pods (docs/formats.md, "known_pods":
    # only verified ones) name C: A learns of C through federation, and does not vet it.
    archive = json.loads(FIXTURE.read_text())
    archive["lifeboat"] = {"known_pods": [c.url]}
    path = tmp_path / "moving-in.json"
    path.write_text(json.dumps(archive))
    email = "alice@example.org"
    a.cli("archive", "import", str(path), "--username", "alice", "--email", email, input=PASSWORD + "\n")
    s = requests.Session()
    s.get(a.url + "/users/sign_in")
    s.post(a.url + "/users/sign_in", data={"csrf": s.cookies["lb_csrf"], "login": "alice", "password": PASSWORD})
    assert "backups start once you set a backup pass phrase" in settings(s, a)
    post(s, a, "/settings/passphrase", password=PASSWORD, passphrase=PASSPHRASE)
    key = account_key(a, "alice", tmp_path)
    wait_until(lambda: held(b, key, email), what="the backup at B, the only vetted pod")
    page = wait_until(lambda: (p := settings(s, a)) and f"{c.host} — not vetted" in p and p, what="C offered, marked as not vetted")
    assert "chosen automatically" in page

    r = s.post(a.url + "/settings/backups/pod", data={"csrf": s.cookies["lb_csrf"], "pod": "http://example.invalid"})
    assert r.status_code == 400 and "not available" in r.text
    r = s.post(a.url + "/settings/backups/pod", data={"csrf": s.cookies["lb_csrf"], "pod": c.url})
    assert r.status_code == 200 and "Your choice is saved" in r.text, r.text
    mail = smtp.wait_for(email, f"Your encrypted backup is now kept at {c.host}")
    assert f"{c.url}/restore_backup" in smtp.body(mail) and PASSPHRASE not in smtp.body(mail)
    wait_until(lambda: held(c, key, email), what="the backup at C")
    wait_until(lambda: held(b, key, email) is None, what="the delete at B once C has it")
    page = settings(s, a)
    assert "chosen by you" in page and "not vetted by this pod's admins" in page


def test_a_backup_restored_on_b_makes_a_tell_the_user(start_pod, smtp, tmp_path):
    b = start_pod("b", env=ON)
    a, s, email, key = backed_up(start_pod, smtp, tmp_path, [b], LIFEBOAT_BACKUPS_STATUS_CHECK_INTERVAL="2s")
    confirm_at_holder(b, smtp, email)
    a.stop()  # A goes away; its user restores the automatic backup on B
    r = requests.Session()
    r.get(b.url + "/restore_backup")
    assert r.post(b.url + "/restore_backup", data={"csrf": r.cookies["lb_csrf"], "email": email}).status_code == 200
    token = re.search(r"token=(\S+)", smtp.body(smtp.wait_for(email, "Restore your diaspora"))).group(1)
    page = r.post(b.url + "/restore_backup/confirm", data={"csrf": r.cookies["lb_csrf"], "token": token, "passphrase": PASSPHRASE})
    assert page.status_code == 200, page.text[-2000:]
    done = r.post(b.url + "/restore_backup/create", data={"csrf": r.cookies["lb_csrf"], "token": token, "username": "alice", "password": "alice's new password"})
    assert done.status_code == 200 and "Welcome back" in done.text, done.text[-2000:]

    a.start()  # A comes back: B answers its status check 410
    mail = smtp.wait_for(email, f"Your account was restored on {b.host}")
    assert "restored" in smtp.body(mail) and PASSPHRASE not in smtp.body(mail)
    page = settings(s, a)
    assert "restored elsewhere" in page, page
    assert status(b, key, email).status_code == 410
