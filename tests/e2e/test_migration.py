"""Moves reach the network: three and more real lifeboat pods on loopback exchange
diaspora*'s AccountMigration; forged moves change nothing."""

import base64
import json
import re

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rig import sign_in, wait_until

FAST = {"LIFEBOAT_FEDERATION_DELIVERY_RETRY_FIRST": "1s", "LIFEBOAT_FEDERATION_UNREACHABLE_FOR": "1s"}


def add_contact(pod, session, diaspora_id):
    r = session.post(pod.url + "/contacts", data={"csrf": session.cookies["lb_csrf"], "diaspora_id": diaspora_id})
    assert r.status_code == 200 and "Contact added." in r.text, r.text


def put_in_aspect(pod, session, diaspora_id, aspect):
    r = session.post(pod.url + "/contacts/aspects", data={"csrf": session.cookies["lb_csrf"], "diaspora_id": diaspora_id, f"aspect:{aspect}": "on"})
    assert r.status_code == 200


def export(pod, username, tmp_path):
    out = tmp_path / f"{username}-{pod.port}.json"
    pod.cli("archive", "export", username, "--out", str(out))
    return json.loads(out.read_text())


def contacts_of(pod, username, tmp_path):
    return {c["account_id"]: c for c in export(pod, username, tmp_path)["user"]["contacts"]}


def webfinger_status(pod, user):
    return pod.get("/.well-known/webfinger", params={"resource": f"acct:{user}@{pod.host}"}).status_code


def setup_kate_and_leo(start_pod, tmp_path):
    """kate on A and leo on C know each other; leo keeps kate in his Friends aspect."""
    a, c = start_pod("a", env=FAST), start_pod("c", env=FAST)
    a.cli("user", "add", "kate", "--email", "kate@example.org", input="kate's password\n")
    c.cli("user", "add", "leo", "--email", "leo@example.org", input="leo's password\n")
    leo = sign_in(c, "leo", "leo's password")
    add_contact(c, leo, f"kate@{a.host}")
    put_in_aspect(c, leo, f"kate@{a.host}", "Friends")
    kate = sign_in(a, "kate", "kate's password")
    add_contact(a, kate, f"leo@{c.host}")
    return a, c, kate, leo


def test_a_live_move_from_a_to_b_reaches_c_and_closes_a(start_pod, tmp_path):
    a, c, kate, leo = setup_kate_and_leo(start_pod, tmp_path)
    b = start_pod("b", env=FAST)
    # kate flags her move on A (the settings download), then moves in on B with her archive
    r = kate.post(a.url + "/settings/move", data={"csrf": kate.cookies["lb_csrf"], "password": "kate's password", "passphrase": "violet tractor humming seventeen lanterns"})
    assert r.status_code == 200 and r.content[:4] == b"LFBK"
    archive = tmp_path / "kate.json"
    a.cli("archive", "export", "kate", "--out", str(archive))
    result = b.cli("archive", "import", str(archive), "--username", "kate2", input="kate's new password\n")
    assert f"moved from kate@{a.host}" in result.stdout
    new_id = f"kate2@{b.host}"
    # A closes kate at once (she flagged the move) and says where she went
    wait_until(lambda: webfinger_status(a, "kate") == 404, what="A to close kate")
    person = a.get("/u/kate", allow_redirects=True)
    assert new_id in person.text
    assert "moved to" in a.cli("user", "list").stdout
    r = requests.Session()
    r.get(a.url + "/users/sign_in")
    refused = r.post(a.url + "/users/sign_in", data={"csrf": r.cookies["lb_csrf"], "login": "kate", "password": "kate's password"})
    assert refused.status_code == 410 and new_id in refused.text
    # C re-points leo's contact, in the same aspect, and shows the moved profile
    wait_until(lambda: new_id in contacts_of(c, "leo", tmp_path), what="C to re-point kate")
    contacts = contacts_of(c, "leo", tmp_path)
    assert f"kate@{a.host}" not in contacts
    assert contacts[new_id]["contact_groups_membership"] == ["Friends"]
    page = leo.get(c.url + "/contacts").text
    assert new_id in page and f"moved from kate@{a.host}" in page
    # B shows kate2 her move, delivered to A and C
    kate2 = sign_in(b, "kate2", "kate's new password")
    wait_until(lambda: "0 pending" in kate2.get(b.url + "/settings").text, what="all deliveries")
    settings = kate2.get(b.url + "/settings").text
    assert "2 delivered" in settings and a.host in settings


def test_a_received_move_keeps_blocks_and_re_sends_contacts_to_the_new_identity(start_pod, tmp_path):
    """diaspora*'s AccountMigration#perform!: C re-points leo's and mia's contacts and
    mia's block, then (dispatch_contacts) each of them sends kate's new identity a
    `contact` saying whether they share with her, so B learns it from C itself."""
    a, c, kate, leo = setup_kate_and_leo(start_pod, tmp_path)
    old_id = f"kate@{a.host}"
    c.cli("user", "add", "mia", "--email", "mia@example.org", input="mia's password\n")
    mia = sign_in(c, "mia", "mia's password")
    add_contact(a, kate, f"mia@{c.host}")
    wait_until(lambda: old_id in contacts_of(c, "mia", tmp_path), what="C to learn that kate shares with mia")
    r = mia.post(c.url + "/blocks", data={"csrf": mia.cookies["lb_csrf"], "item": old_id})
    assert r.status_code == 200, r.text
    assert export(c, "mia", tmp_path)["user"]["blocks"] == [old_id]
    b = start_pod("b", env=FAST)
    # kate's archive as a pod that imported it knows it: it does not say that leo shares
    # with her, and it wrongly says that mia does.
    archive = export(a, "kate", tmp_path)
    for contact in archive["user"]["contacts"]:
        shares = {f"leo@{c.host}": False, f"mia@{c.host}": True}[contact["account_id"]]
        contact["sharing"] = contact["following"] = shares
    edited = tmp_path / "kate-edited.json"
    edited.write_text(json.dumps(archive))
    # C is down while B imports, so B's view is the archive's alone until C hears of
    # the move (B's outbox retries it) and re-sends its users' contacts.
    c.stop()
    b.cli("archive", "import", str(edited), "--username", "kate2", input="kate's new password\n")
    new_id = f"kate2@{b.host}"

    def sharing_at_b():
        return {who: contact["sharing"] for who, contact in contacts_of(b, "kate2", tmp_path).items()}

    assert sharing_at_b() == {f"leo@{c.host}": False, f"mia@{c.host}": True}
    c.start()
    # C re-points both contacts, and mia's block now blocks the new identity
    wait_until(lambda: new_id in contacts_of(c, "leo", tmp_path) and new_id in contacts_of(c, "mia", tmp_path),
               what="C to re-point kate for leo and mia")
    assert old_id not in contacts_of(c, "mia", tmp_path)
    assert export(c, "mia", tmp_path)["user"]["blocks"] == [new_id]
    assert contacts_of(c, "leo", tmp_path)[new_id]["contact_groups_membership"] == ["Friends"]
    # B hears from C: leo shares with kate2, mia (who blocks her) does not
    wait_until(lambda: sharing_at_b() == {f"leo@{c.host}": True, f"mia@{c.host}": False},
               what="C's contact messages to reach kate2 on B")
    assert "contact re-sent to a moved identity" in c.log()


class Spy:
    """A pod-shaped listener that keeps what is POSTed to it (B lists it as a seed pod,
    so B's broadcast of the move reaches it)."""

    def __init__(self):
        import http.server
        import threading

        self.bodies = []
        spy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                spy.bodies.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_same_move_twice_is_a_no_op_and_a_second_move_is_refused(start_pod, tmp_path):
    a, c, kate, leo = setup_kate_and_leo(start_pod, tmp_path)
    spy = Spy()
    b = start_pod("b", env=dict(FAST, LIFEBOAT_FEDERATION_SEED_PODS=spy.url))
    archive = tmp_path / "kate.json"
    a.cli("archive", "export", "kate", "--out", str(archive))
    b.cli("archive", "import", str(archive), "--username", "kate2", input="kate's new password\n")
    wait_until(lambda: f"kate2@{b.host}" in contacts_of(c, "leo", tmp_path), what="C to re-point kate")
    # the envelope B broadcast, as any pod received it, delivered to C a second time
    wait_until(lambda: spy.bodies, what="B's broadcast to reach its seed pod")
    path, envelope = spy.bodies[0]
    assert path == "/receive/public"
    again = requests.post(c.url + "/receive/public", data=envelope, headers={"Content-Type": "application/magic-envelope+xml"})
    assert again.status_code == 202 and again.json()["status"] == "already known"
    # a second, different move of the same old identity (to kate3 on B) is refused
    b.cli("archive", "import", str(archive), "--username", "kate3", "--email", "k3@example.org", input="another password\n")
    wait_until(lambda: "refused" in c.log() and "already moved" in c.log(), what="C to refuse the second move")
    assert f"kate3@{b.host}" not in contacts_of(c, "leo", tmp_path)


def b64url(data):
    return base64.urlsafe_b64encode(data).decode()


def envelope_for(entity_xml, author, key):
    data = b64url(entity_xml.encode())
    signed = ".".join([data, b64url(b"application/xml"), b64url(b"base64url"), b64url(b"RSA-SHA256")])
    sig = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<me:env xmlns:me="http://salmon-protocol.org/ns/magic-env">'
        f'<me:data type="application/xml">{data}</me:data><me:encoding>base64url</me:encoding><me:alg>RSA-SHA256</me:alg>'
        f'<me:sig key_id="{b64url(author.encode())}">{b64url(sig)}</me:sig></me:env>'
    )


def migration_xml(old_id, new_id, signature):
    return (
        f"<account_migration>\n  <author>{old_id}</author>\n  <profile>\n    <author>{new_id}</author>\n  </profile>\n"
        f"  <signature>{signature}</signature>\n  <old_identity>{old_id}</old_identity>\n</account_migration>"
    )


def test_forged_moves_change_nothing(start_pod, tmp_path):
    a, c, kate, leo = setup_kate_and_leo(start_pod, tmp_path)
    b = start_pod("b", env=FAST)
    b.cli("user", "add", "mallory", "--email", "mallory@example.org", input="mallory's password\n")
    mallory_key = serialization.load_pem_private_key(export(b, "mallory", tmp_path)["user"]["private_key"].encode(), None)
    kate_key = serialization.load_pem_private_key(export(a, "kate", tmp_path)["user"]["private_key"].encode(), None)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    old_id, new_id = f"kate@{a.host}", f"mallory@{b.host}"

    def entity_sig(key):
        return base64.b64encode(key.sign(f"AccountMigration:{old_id}:{new_id}".encode(), padding.PKCS1v15(), hashes.SHA256())).decode()

    forged = {
        "envelope signed by another key": (envelope_for(migration_xml(old_id, new_id, entity_sig(mallory_key)), old_id, stranger), 401, "Magic Envelope signature does not verify"),
        "entity not signed by the new key": (envelope_for(migration_xml(old_id, new_id, entity_sig(stranger)), old_id, kate_key), 401, "signature does not verify"),
        "key_id names someone else": (envelope_for(migration_xml(old_id, new_id, entity_sig(mallory_key)), new_id, mallory_key), 400, f'the envelope is signed as "{new_id}", but the account_migration\'s author is "{old_id}"'),
    }
    for what, (envelope, code, error) in forged.items():
        r = requests.post(c.url + "/receive/public", data=envelope, headers={"Content-Type": "application/magic-envelope+xml"})
        assert (r.status_code, r.json()) == (code, {"error": error}), (what, r.status_code, r.text)
    doctype = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><me:env xmlns:me="http://salmon-protocol.org/ns/magic-env"/>'
    assert requests.post(c.url + "/receive/public", data=doctype, headers={"Content-Type": "application/magic-envelope+xml"}).status_code == 400
    assert requests.post(c.url + "/receive/public", data="x" * 300_000, headers={"Content-Type": "application/magic-envelope+xml"}).status_code == 413
    assert old_id in contacts_of(c, "leo", tmp_path), "nothing moved on C"
    assert webfinger_status(a, "kate") == 200
    # an honest move by the same keys would be accepted: the checks are what refused the forgeries
    honest = envelope_for(migration_xml(old_id, new_id, entity_sig(mallory_key)), old_id, kate_key)
    r = requests.post(c.url + "/receive/public", data=honest, headers={"Content-Type": "application/magic-envelope+xml"})
    assert r.status_code == 202, r.text
    assert new_id in contacts_of(c, "leo", tmp_path)


def test_an_unflagged_move_waits_and_the_user_cancels_it(start_pod, smtp, tmp_path):
    a, c, kate, leo = setup_kate_and_leo(start_pod, tmp_path)
    b = start_pod("b", env=FAST)
    archive = tmp_path / "kate.json"
    a.cli("archive", "export", "kate", "--out", str(archive))
    b.cli("archive", "import", str(archive), "--username", "kate2", input="kate's new password\n")
    mail = smtp.wait_for("kate@example.org", "is moving to")
    assert 'press "This was not me" in your settings' in smtp.body(mail), smtp.body(mail)
    assert webfinger_status(a, "kate") == 200, "an unflagged move waits"
    settings = kate.get(a.url + "/settings").text
    assert "This was not me" in settings
    r = kate.post(a.url + "/settings/not_me", data={"csrf": kate.cookies["lb_csrf"]})
    assert "move is cancelled" in r.text
    assert "This was not me" not in kate.get(a.url + "/settings").text
    assert webfinger_status(a, "kate") == 200


def test_a_pod_that_was_down_gets_the_move_when_it_returns(start_pod, tmp_path):
    a, c, kate, leo = setup_kate_and_leo(start_pod, tmp_path)
    b = start_pod("b", env=FAST)
    archive = tmp_path / "kate.json"
    a.cli("archive", "export", "kate", "--out", str(archive))
    c.stop()
    b.cli("archive", "import", str(archive), "--username", "kate2", input="kate's new password\n")
    kate2 = sign_in(b, "kate2", "kate's new password")
    wait_until(lambda: "1 delivered, 1 pending" in kate2.get(b.url + "/settings").text, what="A delivered, C pending: " + re.sub(r"<[^>]+>", " ", kate2.get(b.url + "/settings").text)[:2500])
    c.start()
    wait_until(lambda: f"kate2@{b.host}" in contacts_of(c, "leo", tmp_path), timeout=60, what="C to get the move after it returned")


PASSPHRASE = "violet tractor humming seventeen lanterns"


def test_a_dead_pods_account_restored_on_its_backup_pod_reaches_c(start_pod, smtp, tmp_path):
    """kate on A is a contact of leo on C (in his Friends aspect); kate's backup lives on
    B; A dies for good; kate restores on B; C re-points leo's contact to kate's new
    identity on B, in the same aspect, and shows the moved profile."""
    from cryptography.hazmat.primitives import serialization as ser

    from test_backup_holder import ON, confirmed_slot

    a, c, kate, leo = setup_kate_and_leo(start_pod, tmp_path)
    r = kate.post(a.url + "/profile", files={"csrf": (None, kate.cookies["lb_csrf"]), "first_name": (None, "Kate"), "last_name": (None, "Bishop"), "searchable": (None, "on")})
    assert "Saved." in r.text
    b = start_pod("b", env=dict(FAST, **ON))
    sealed = kate.post(a.url + "/settings/download/backup", data={"csrf": kate.cookies["lb_csrf"], "password": "kate's password", "passphrase": PASSPHRASE}).content
    assert sealed[:4] == b"LFBK"
    kate_key = ser.load_pem_private_key(export(a, "kate", tmp_path)["user"]["private_key"].encode(), None)
    confirmed_slot(b, smtp, kate_key, "kate@example.org", sealed, sequence=1)
    old_id = f"kate@{a.host}"
    a.stop()  # for good

    s = requests.Session()
    s.get(b.url + "/restore_backup")
    r = s.post(b.url + "/restore_backup", data={"csrf": s.cookies["lb_csrf"], "email": "kate@example.org"})
    assert r.status_code == 200
    mail = smtp.wait_for("kate@example.org", "Restore your diaspora")
    link = re.search(r"(http://\S+token=\S+)", smtp.body(mail)).group(1)
    token = link.split("token=")[1]
    page = s.get(link)
    assert page.headers.get("referrer-policy") == "no-referrer"
    r = s.post(b.url + "/restore_backup/confirm", data={"csrf": s.cookies["lb_csrf"], "token": token, "passphrase": PASSPHRASE})
    assert r.status_code == 200 and "Kate Bishop" in r.text, r.text[-2000:]
    r = s.post(b.url + "/restore_backup/create", data={"csrf": s.cookies["lb_csrf"], "token": token, "username": "kate", "password": "kate's new password"})
    assert r.status_code == 200 and "Welcome back" in r.text, r.text[-2000:]
    new_id = f"kate@{b.host}"
    assert "kate" in b.cli("user", "list").stdout

    wait_until(lambda: new_id in contacts_of(c, "leo", tmp_path), timeout=60, what="C to re-point kate to her restored identity")
    contacts = contacts_of(c, "leo", tmp_path)
    assert old_id not in contacts
    assert contacts[new_id]["contact_groups_membership"] == ["Friends"]
    assert contacts[new_id]["person_name"] == "Kate Bishop"
    page = leo.get(c.url + "/contacts").text
    assert new_id in page and f"moved from {old_id}" in page and "Kate Bishop" in page
