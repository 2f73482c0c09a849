"""Restore and move in (docs/restore.md), in a real headless Chromium against real
lifeboat processes, with every mail caught by a real SMTP server.

A backup reaches pod B the honest way: an account is made on pod A and given data
through A's pages, its sealed backup is downloaded from A's settings, and it is pushed
to B signed with the account's own key (from A's `archive export`), then confirmed
through B's mailed confirmation page. Stopping A plays the dead home pod.
"""

import base64
import hashlib
import json
import re
import struct
import time
import os
from datetime import datetime, timezone

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from nacl import bindings as nacl
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

from rig import sign_in, wait_until

ON = {"LIFEBOAT_BACKUPS_ALLOW_BACKUPS_AND_MIGRATION": "true"}
PASSPHRASE = "violet tractor humming seventeen lanterns"
PASSWORD = "alice's old password"
NEW_PASSWORD = "a brand new password"
# A 1×1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
# What B logs when it decides, after answering, that a restore request mails nothing.
NOT_HELD = "restore link not mailed: no backup that can be restored is held for the address"
CAPPED = "restore link not mailed: the address's daily limit is reached"
LINK = re.compile(r"(http://\S+/restore_backup/confirm\?token=[A-Za-z0-9_-]{43})")


# ----- helpers -----


def fill(browser, values):
    for name, value in values.items():
        field = browser.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)


def replaced(element):
    """Whether the page holding `element` has gone. Chromium answers either "stale
    element" or, when the new document is mid-load, an inspector error naming the node."""
    try:
        element.is_enabled()
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as e:
        if "does not belong to the document" in str(e):
            return True
        raise


def submit(browser, action, wait=True):
    """Clicks the form's button and waits until the next page has replaced this one."""
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, f"form[action='{action}'] button[type=submit]").click()
    if wait:
        WebDriverWait(browser, 60).until(lambda _: replaced(page))
        WebDriverWait(browser, 60).until(lambda b: b.execute_script("return document.readyState") == "complete")


def users(pod):
    return pod.cli("user", "list").stdout


def export(pod, username, tmp_path):
    out = tmp_path / f"{pod.name}-{username}.json"
    pod.cli("archive", "export", username, "--out", str(out))
    return json.loads(out.read_text())


def make_old_account(a, username, email, contact=None):
    """An account on pod A with a profile, a picture, an aspect, a followed tag, a block
    and (optionally) a contact in two aspects, made through A's own pages."""
    a.cli("user", "add", username, "--email", email, input=PASSWORD + "\n")
    s = sign_in(a, username, PASSWORD)
    csrf = s.cookies["lb_csrf"]
    r = s.post(
        a.url + "/profile",
        files={
            "csrf": (None, csrf),
            "first_name": (None, "Alice"),
            "last_name": (None, "Liddell"),
            "bio": (None, "Curiouser and curiouser"),
            "searchable": (None, "on"),
            "avatar": ("me.png", PNG, "image/png"),
        },
    )
    assert r.status_code == 200 and "Saved." in r.text, r.text
    assert "Book club" in s.post(a.url + "/aspects", data={"csrf": csrf, "name": "Book club"}).text
    assert s.post(a.url + "/tags", data={"csrf": csrf, "item": "bees"}).status_code == 200
    assert s.post(a.url + "/blocks", data={"csrf": csrf, "item": "spammer@spam.example"}).status_code == 200
    if contact:
        r = s.post(a.url + "/contacts", data={"csrf": csrf, "diaspora_id": contact})
        assert "Contact added." in r.text, r.text
        r = s.post(a.url + "/contacts/aspects", data={"csrf": csrf, "diaspora_id": contact, "aspect:Book club": "on", "aspect:Friends": "on"})
        assert r.status_code == 200, r.text
    return s


def sealed_backup(a, session):
    r = session.post(a.url + "/settings/download/backup", data={"csrf": session.cookies["lb_csrf"], "password": PASSWORD, "passphrase": PASSPHRASE})
    assert r.status_code == 200 and r.content[:4] == b"LFBK", r.text
    return r.content


def now_text():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def push_backup(b, private_key_pem, email, lfbk, sequence=1):
    """A push to B exactly as a home pod makes it (docs/holder-api.md, "A push"), signed with
    the account's key."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    created_at = now_text()
    text = f"lifeboat-backup:1:{email}:{sequence}:{created_at}:{hashlib.sha256(lfbk).hexdigest()}"
    signature = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    body = {"version": 1, "email": email, "public_key": public, "sequence": sequence, "created_at": created_at, "backup": base64.b64encode(lfbk).decode(), "signature": signature}
    return b.post("/api/lifeboat/v1/backups", json=body)


def confirm_held_backup(b, smtp, email):
    body = smtp.body(smtp.wait_for(email, "backup"))
    link = re.search(r"(http://\S+/backups/confirm\?token=[A-Za-z0-9_-]{43})", body).group(1)
    page = b.get(link[len(b.url):])
    token = re.search(r'name="token" value="([A-Za-z0-9_-]{43})"', page.text).group(1)
    r = b.post("/backups/confirm", data={"token": token, "action": "confirm"})
    assert r.status_code == 200 and "Backup confirmed" in r.text, r.text


def held_on_b(a, b, smtp, tmp_path, username="alice", email="alice@example.org", contact=None):
    """Alice's account on A, her backup pushed to B and confirmed there. Returns A's export."""
    session = make_old_account(a, username, email, contact)
    lfbk = sealed_backup(a, session)
    old = export(a, username, tmp_path)
    r = push_backup(b, old["user"]["private_key"], email, lfbk)
    assert r.status_code == 202, r.text
    confirm_held_backup(b, smtp, email)
    old["sealed"] = lfbk
    return old


def ask_for_link(browser, b, smtp, email, count=1):
    browser.get(b.url + "/restore_backup")
    fill(browser, {"email": email})
    submit(browser, "/restore_backup")
    assert "Check your email" in browser.page_source
    mail = smtp.wait_for(email, "Restore your diaspora", count=count)
    return LINK.search(smtp.body(mail)).group(1)


def enter_passphrase(browser, passphrase):
    fill(browser, {"passphrase": passphrase})
    submit(browser, "/restore_backup/confirm")


def choose_account(browser, username, password=NEW_PASSWORD):
    fill(browser, {"username": username, "password": password})
    submit(browser, "/restore_backup/create")


# ----- the restore -----


def test_the_full_restore_brings_back_the_account_with_all_its_data(start_pod, smtp, browser, tmp_path):
    a = start_pod("a")
    b = start_pod("b", env=ON)
    # Bob on B follows Alice, so B knows her identity and key before her pod dies.
    b.cli("user", "add", "bob", "--email", "bob@example.org", input="bob's password\n")
    old = held_on_b(a, b, smtp, tmp_path, contact=f"bob@{b.host}")
    bob = sign_in(b, "bob", "bob's password")
    assert "Contact added." in bob.post(b.url + "/contacts", data={"csrf": bob.cookies["lb_csrf"], "diaspora_id": f"alice@{a.host}"}).text
    a.stop()  # the home pod is gone

    link = ask_for_link(browser, b, smtp, "alice@example.org")
    token = link.rsplit("=", 1)[1]
    # Opening the link changes nothing and leaks nothing.
    for _ in range(2):
        r = requests.get(link)
        assert r.status_code == 200
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        assert "5 of 5 attempts left" in r.text
    browser.get(link)
    assert "alice@example.org" in browser.page_source
    enter_passphrase(browser, PASSPHRASE)
    page = browser.page_source
    assert "Your backup is open" in page
    assert "Alice Liddell" in page and f"alice@{a.host}" in page
    avatar = browser.find_element(By.CSS_SELECTOR, ".restored img.avatar").get_attribute("src")
    assert avatar.startswith("data:image/png;base64,") and base64.b64decode(avatar.split(",", 1)[1]) == PNG
    assert "Download my backup (.lfbk)" in page
    assert "Does not come back" in page and "photos, conversations" in page, "the page says what does not come back"
    choose_account(browser, "alice2")
    wait_until(lambda: "Welcome back" in browser.page_source, what="the welcome page")
    page = browser.page_source
    assert f"alice2@{b.host}" in page
    assert "This pod knew" in page, "B stored alice's key: the move goes through B's own receiving path"
    # ... which re-pointed Bob's contact on B to the new identity.
    bob_contacts = [c["account_id"] for c in export(b, "bob", tmp_path)["user"]["contacts"]]
    assert bob_contacts == [f"alice2@{b.host}"], bob_contacts

    # Signed in; the settings show the move and its deliveries (to the old pod; B applied it itself).
    browser.get(b.url + "/settings")
    page = browser.page_source
    assert "Your move" in page and f"alice@{a.host}" in page
    assert a.url in page and b.url not in page

    # Everything came back.
    new = export(b, "alice2", tmp_path)
    ou, nu = old["user"], new["user"]
    assert nu["email"] == "alice@example.org"
    for field in ("first_name", "last_name", "bio", "searchable"):
        assert nu["profile"]["entity_data"][field] == ou["profile"]["entity_data"][field], field
    assert new["lifeboat"]["avatar"] == old["lifeboat"]["avatar"]
    assert [g["name"] for g in nu["contact_groups"]] == [g["name"] for g in ou["contact_groups"]]
    # Bob added alice after her backup was made: the backup says he does not share with her,
    # and the move's re-send (diaspora*'s dispatch_contacts) told alice2 that he does.
    bob_id = f"bob@{b.host}"
    assert [c["sharing"] for c in ou["contacts"] if c["account_id"] == bob_id] == [False]
    expected = [dict(c, sharing=True, following=True) if c["account_id"] == bob_id else c for c in ou["contacts"]]
    assert nu["contacts"] == expected, "contacts, in their aspects"
    assert sorted(nu["contacts"][0]["contact_groups_membership"]) == ["Book club", "Friends"]
    assert nu["followed_tags"] == ou["followed_tags"] == ["bees"]
    assert nu["blocks"] == ou["blocks"]
    assert nu["private_key"] != ou["private_key"], "a fresh key pair"
    assert new["lifeboat"]["guid"] != old["lifeboat"]["guid"], "a fresh guid"
    assert new["lifeboat"]["diaspora_id"] == f"alice2@{b.host}"
    assert "alice2" in users(b) and "active" in users(b)
    # Restored once: the slot answers 410 to its home pod, and no new link is mailed.
    r = push_backup(b, ou["private_key"], "alice@example.org", old["sealed"], sequence=2)
    assert (r.status_code, r.json()) == (410, {"status": "restored"})
    assert "restored" in b.cli("backups", "list").stdout
    # The token never reached the log; the old private key is nowhere in B's files.
    assert token not in b.log()
    line = ou["private_key"].split("\n")[5].encode()
    for path in b.stored_files():
        assert line not in path.read_bytes(), path


def test_the_restore_stops_while_the_old_account_still_answers(start_pod, smtp, browser, tmp_path):
    a = start_pod("a")
    b = start_pod("b", env=ON)
    held_on_b(a, b, smtp, tmp_path)
    link = ask_for_link(browser, b, smtp, "alice@example.org")
    browser.get(link)
    enter_passphrase(browser, PASSPHRASE)
    page = browser.page_source
    assert "Your account is still alive" in page
    assert f"alice@{a.host}" in page and a.url in page
    assert "Move to another pod" in page, "a living account moves from its own pod's settings"
    assert "alice" not in users(b), "nothing was created"
    # Once the old pod is gone, the same link restores.
    a.stop()
    browser.get(link)
    assert "4 of 5 attempts left" in browser.page_source, "the stopped restore took one attempt"
    enter_passphrase(browser, PASSPHRASE)
    assert "Your backup is open" in browser.page_source


def test_five_wrong_pass_phrases_kill_the_link_and_create_nothing(start_pod, smtp, browser, tmp_path):
    a = start_pod("a")
    b = start_pod("b", env=ON)
    held_on_b(a, b, smtp, tmp_path)
    a.stop()
    link = ask_for_link(browser, b, smtp, "alice@example.org")
    browser.get(link)
    for left in (4, 3, 2, 1):
        enter_passphrase(browser, "not the right pass phrase at all")
        page = browser.page_source
        assert "did not open the backup" in page, page
        assert f"{left} attempt" in page
    enter_passphrase(browser, "not the right pass phrase at all")
    page = browser.page_source
    assert "last attempt" in page and "no longer works" in page
    browser.get(link)
    assert "This link does not work" in browser.page_source
    assert "alice" not in users(b), "nothing was created"
    # The right pass phrase on the dead link does nothing either.
    s = requests.Session()
    s.get(b.url + "/restore_backup")
    r = s.post(b.url + "/restore_backup/confirm", data={"csrf": s.cookies["lb_csrf"], "token": link.rsplit("=", 1)[1], "passphrase": PASSPHRASE})
    assert r.status_code == 410
    # The backup is still there: a new link works.
    again = ask_for_link(browser, b, smtp, "alice@example.org", count=2)
    assert again != link
    browser.get(again)
    enter_passphrase(browser, PASSPHRASE)
    assert "Your backup is open" in browser.page_source


def test_the_link_used_twice(start_pod, smtp, browser, tmp_path):
    a = start_pod("a")
    b = start_pod("b", env=ON)
    held_on_b(a, b, smtp, tmp_path)
    a.stop()
    link = ask_for_link(browser, b, smtp, "alice@example.org")
    browser.get(link)
    enter_passphrase(browser, PASSPHRASE)
    choose_account(browser, "alice2")
    wait_until(lambda: "Welcome back" in browser.page_source, what="the welcome page")
    # Again: the link is spent.
    browser.get(link)
    assert "This link does not work" in browser.page_source
    # Re-sending the account form (say, from the browser's history) creates nothing either.
    s = requests.Session()
    s.get(b.url + "/restore_backup")
    r = s.post(b.url + "/restore_backup/create", data={"csrf": s.cookies["lb_csrf"], "token": link.rsplit("=", 1)[1], "username": "alice3", "password": NEW_PASSWORD})
    assert r.status_code == 410 and "does not work any more" in r.text
    assert "alice3" not in users(b)
    # A restored backup is not restored again: asking sends no new link.
    browser.get(b.url + "/restore_backup")
    fill(browser, {"email": "alice@example.org"})
    submit(browser, "/restore_backup")
    wait_until(lambda: NOT_HELD in b.log(), what="B to decide that no link goes out")
    assert len([m for m in smtp.to("alice@example.org") if "Restore" in str(m["Subject"])]) == 1


def test_two_tabs_confirming_at_once_make_one_account(start_pod, smtp, browser, tmp_path):
    a = start_pod("a")
    b = start_pod("b", env=ON)
    held_on_b(a, b, smtp, tmp_path)
    a.stop()
    link = ask_for_link(browser, b, smtp, "alice@example.org")
    first = browser.current_window_handle
    browser.get(link)
    enter_passphrase(browser, PASSPHRASE)
    assert "Your backup is open" in browser.page_source
    fill(browser, {"username": "tab_one", "password": NEW_PASSWORD})
    browser.switch_to.new_window("tab")
    second = browser.current_window_handle
    browser.get(link)
    enter_passphrase(browser, PASSPHRASE)
    assert "Your backup is open" in browser.page_source
    fill(browser, {"username": "tab_two", "password": NEW_PASSWORD})
    # Both tabs submit at the same moment (scheduled on the wall clock, a whole second
    # ahead, where even a background tab's timers fire).
    at = (int(time.time()) + 2) * 1000
    schedule = "const at = arguments[0]; setTimeout(() => document.querySelector(\"form[action='/restore_backup/create']\").submit(), at - Date.now());"
    browser.execute_script(schedule, at)
    browser.switch_to.window(first)
    browser.execute_script(schedule, at)

    def outcome(handle):
        browser.switch_to.window(handle)
        try:
            page = browser.page_source
        except WebDriverException:
            return None  # mid-navigation
        if "Welcome back" in page:
            return "created"
        if "The account was not created" in page:
            return "refused"
        return None

    results = wait_until(lambda: (lambda r: r if all(r) else None)([outcome(first), outcome(second)]), what="both tabs answered")
    assert sorted(results) == ["created", "refused"], results
    listed = users(b)
    assert ("tab_one" in listed) != ("tab_two" in listed), listed
    # The loser got past every check before the commit and lost the compare-and-swap.
    browser.switch_to.window(second if results[0] == "created" else first)
    loser = browser.find_element(By.TAG_NAME, "main").text
    assert "perhaps in another tab" in loser and "A backup is restored only once" in loser, loser


def test_the_address_form_answers_the_same_whether_or_not_a_backup_is_held(start_pod, smtp, tmp_path):
    a = start_pod("a")
    b = start_pod("b", env=ON)
    held_on_b(a, b, smtp, tmp_path)
    s = requests.Session()
    s.get(b.url + "/restore_backup")
    answers = []
    for email in ("alice@example.org", "nobody@example.org"):
        started = time.monotonic()
        r = s.post(b.url + "/restore_backup", data={"csrf": s.cookies["lb_csrf"], "email": email})
        answers.append((r.status_code, r.text, time.monotonic() - started))
    assert answers[0][:2] == answers[1][:2], "the same page"
    assert all(t < 1.0 for *_, t in answers)
    smtp.wait_for("alice@example.org", "Restore your diaspora")
    wait_until(lambda: NOT_HELD in b.log(), what="B to decide that nobody@ gets no link")
    assert smtp.to("nobody@example.org") == []
    # A new link revokes the earlier one; at most three a day.
    for _ in range(3):
        s.post(b.url + "/restore_backup", data={"csrf": s.cookies["lb_csrf"], "email": "alice@example.org"})
    smtp.wait_for("alice@example.org", "Restore your diaspora", count=3)
    wait_until(lambda: CAPPED in b.log(), what="B to refuse the fourth link")
    restore_mails = [m for m in smtp.to("alice@example.org") if "Restore" in str(m["Subject"])]
    assert len(restore_mails) == 3, "a few per address per day"
    links = [LINK.search(smtp.body(m)).group(1) for m in restore_mails]
    assert requests.get(links[0]).status_code == 410, "revoked by the newer link"
    assert requests.get(links[-1]).status_code == 200


# ----- moving between pods -----


def download_move_file(a, username, password=PASSWORD):
    s = sign_in(a, username, password)
    r = s.post(a.url + "/settings/move", data={"csrf": s.cookies["lb_csrf"], "password": password, "passphrase": PASSPHRASE})
    assert r.status_code == 200 and r.content[:4] == b"LFBK", r.text
    assert r.headers["content-disposition"].startswith("attachment")
    return r.content


def seal(plaintext, passphrase=PASSPHRASE.encode(), m=19456, t=2):
    """A .lfbk made with libsodium alone (docs/formats.md, "Key derivation and cipher")."""
    salt, nonce = os.urandom(16), os.urandom(24)
    key = nacl.crypto_pwhash_alg(32, passphrase, salt, t, m * 1024, nacl.crypto_pwhash_ALG_ARGON2ID13)
    return b"LFBK" + bytes([1, 1, 0, 0]) + struct.pack("<III", m, t, 1) + salt + nonce + nacl.crypto_secretbox_easy(plaintext, nonce, key)


def move_in(browser, b, old_id, username, path, passphrase=PASSPHRASE):
    browser.get(b.url + "/move_in")
    fill(browser, {"old_id": old_id, "username": username, "password": NEW_PASSWORD, "passphrase": passphrase})
    browser.find_element(By.NAME, "backup").send_keys(str(path))
    submit(browser, "/move_in")


def test_a_move_in_with_a_file_whose_key_does_not_match_is_refused(start_pod, smtp, browser, tmp_path):
    a = start_pod("a")
    b = start_pod("b", env=ON)
    make_old_account(a, "alice", "alice@example.org")
    # A file that claims alice@A but carries another key.
    archive = export(a, "alice", tmp_path)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    archive["user"]["private_key"] = stranger.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode()
    forged = tmp_path / "forged.lfbk"
    forged.write_bytes(seal(json.dumps(archive).encode()))
    move_in(browser, b, f"alice@{a.host}", "alice2", forged)
    page = browser.page_source
    assert "not the key its pod publishes" in page and "refused" in page, page
    assert "nothing was created" in page
    assert "alice2" not in users(b)
    # The real file from alice's "Move to another pod" passes the same check.
    real = tmp_path / "alice.lfbk"
    real.write_bytes(download_move_file(a, "alice"))
    move_in(browser, b, f"alice@{a.host}", "alice2", real)
    page = browser.page_source
    assert "Welcome to your new pod" in page, page
    assert "publishes the same key" in page
    assert "alice2" in users(b)


def test_a_move_in_while_the_old_pod_is_down_is_accepted_and_noted(start_pod, smtp, browser, tmp_path):
    a = start_pod("a")
    b = start_pod("b", env=ON)
    make_old_account(a, "alice", "alice@example.org")
    path = tmp_path / "alice.lfbk"
    path.write_bytes(download_move_file(a, "alice"))
    a.stop()
    # A wrong pass phrase first: a plain refusal, nothing created.
    move_in(browser, b, f"alice@{a.host}", "alice2", path, passphrase="certainly not the pass phrase")
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "wrong pass phrase" in main.lower() and "nothing was created" in main, main
    move_in(browser, b, f"alice@{a.host}", "alice2", path)
    page = browser.page_source
    assert "Welcome to your new pod" in page, page
    assert "could not be checked" in page and "without re-pointing anything on this pod" in page
    assert "alice2" in users(b) and "email not confirmed" in users(b)
    smtp.wait_for("alice@example.org", "Confirm your email")
    new = export(b, "alice2", tmp_path)
    assert new["user"]["followed_tags"] == ["bees"]
    assert new["user"]["profile"]["entity_data"]["first_name"] == "Alice"
    # Closed or taken usernames are never reused.
    move_in(browser, b, f"alice@{a.host}", "alice2", path)
    assert "this username is taken" in browser.page_source.lower()


def test_admins_cannot_move_away_and_the_page_says_why(start_pod, smtp):
    a = start_pod("a", env={"LIFEBOAT_ACCOUNTS_ADMINS": "root"})
    a.cli("user", "add", "root", "--email", "root@example.org", input=PASSWORD + "\n")
    s = sign_in(a, "root", PASSWORD)
    assert "An admin account cannot move away" in s.get(a.url + "/settings").text
    r = s.post(a.url + "/settings/move", data={"csrf": s.cookies["lb_csrf"], "password": PASSWORD, "passphrase": PASSPHRASE})
    assert r.status_code == 403
    assert "an admin account cannot move away" in r.text and "hand the admin role" in r.text
    assert r.headers["content-type"].startswith("text/html")


def test_the_front_page_links_restore_and_move_in(start_pod):
    b = start_pod("b", env=ON)
    page = b.get("/").text
    assert 'href="/restore_backup"' in page and 'href="/move_in"' in page
    closed = start_pod("c")
    page = closed.get("/").text
    assert 'href="/move_in"' not in page
    assert closed.get("/move_in").status_code == 403
