"""Archives in and out: the podmin's import/export commands, the settings downloads,
schema validity with a real JSON Schema validator, sealed files opened by libsodium,
and contacts found across two real pods."""

import gzip
import html
import http.server
import json
import re
import socket
import threading
from pathlib import Path

import jsonschema
import nacl.pwhash
import nacl.secret
import requests
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from rig import REFERENCE, ROOT, sign_in, wait_until

FIXTURE = ROOT / "tests" / "fixtures" / "diaspora-export.json"
PASSPHRASE = "violet tractor humming seventeen lanterns"


def archive_validator():
    archive_schema = json.loads((REFERENCE / "diaspora-archive-format.schema.json").read_text())
    entity_schema = json.loads((REFERENCE / "diaspora-federation-entities.schema.json").read_text())
    # Both schemas are registered under their own ids: validating needs no network.
    registry = Registry().with_resources([(s["id"], Resource.from_contents(s, default_specification=DRAFT4)) for s in (archive_schema, entity_schema)])
    return jsonschema.Draft4Validator(archive_schema, registry=registry)


def test_import_then_export_loses_nothing_and_validates(start_pod, tmp_path):
    pod = start_pod()
    result = pod.cli("archive", "import", str(FIXTURE), "--username", "alice2", input="a long password\n")
    assert "moved from alice@old-pod.example" in result.stdout
    out = tmp_path / "export.json"
    pod.cli("archive", "export", "alice2", "--out", str(out))
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    exported = json.loads(out.read_text())
    original = json.loads(FIXTURE.read_text())
    archive_validator().validate(exported)
    for section in ("posts", "relayables", "post_subscriptions", "disable_mail", "auto_follow_back"):
        assert exported["user"][section] == original["user"][section], section
    assert exported["others_data"] == original["others_data"]
    assert exported["user"]["username"] == "alice2"
    assert exported["user"]["profile"]["entity_data"]["author"] == f"alice2@{pod.host}"
    assert [g["name"] for g in exported["user"]["contact_groups"]] == [g["name"] for g in original["user"]["contact_groups"]]
    assert {c["account_id"] for c in exported["user"]["contacts"]} == {c["account_id"] for c in original["user"]["contacts"]}
    assert exported["user"]["followed_tags"] == original["user"]["followed_tags"]
    assert exported["user"]["blocks"] == original["user"]["blocks"]
    assert exported["user"]["private_key"] != original["user"]["private_key"], "a fresh key pair, as diaspora* does"
    assert exported["lifeboat"]["diaspora_id"] == f"alice2@{pod.host}"


def test_an_archive_with_a_broken_contact_and_bad_aspects_imports_with_the_repair_listed(start_pod, tmp_path):
    pod = start_pod()
    damaged = json.loads(FIXTURE.read_text())
    damaged["user"]["contact_groups"] = [{"name": "Family"}, {"name": "FAMILY"}, {"name": "Friends of friends of friends"}]
    damaged["user"]["contacts"][0]["contact_groups_membership"] = ["FAMILY"]
    damaged["user"]["contacts"][1]["account_id"] = "Not a diaspora ID"
    damaged["user"]["contacts"][2]["receiving"] = True
    damaged["user"]["contacts"][2]["contact_groups_membership"] = []
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(damaged))
    result = pod.cli("archive", "import", str(path), "--username", "repaired", "--email", "r@example.org", input="a long password\n")
    out = result.stdout
    assert "created repaired@" in out
    assert "Repaired so that diaspora* pods keep it:" in out
    assert 'contact 2 ("Not a diaspora ID") was left out: not a valid diaspora ID' in out
    assert 'the aspect "FAMILY" is now called "FAMILY 2"' in out
    assert 'the aspect "Friends of friends of friends" is now called "Friends of friends o"' in out
    assert "1 contact you share with was in no aspect" in out
    exported_path = tmp_path / "export.json"
    pod.cli("archive", "export", "repaired", "--out", str(exported_path))
    exported = json.loads(exported_path.read_text())
    archive_validator().validate(exported)
    names = [g["name"] for g in exported["user"]["contact_groups"]]
    assert names == ["Family", "FAMILY 2", "Friends of friends o"]
    assert len(exported["user"]["contacts"]) == 2, "the broken contact alone is left out"
    for contact in exported["user"]["contacts"]:
        if contact["receiving"]:
            assert contact["contact_groups_membership"] and set(contact["contact_groups_membership"]) <= set(names), contact


def test_gzip_import_and_refusals(start_pod, tmp_path):
    pod = start_pod()
    gz = tmp_path / "export.json.gz"
    gz.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    pod.cli("archive", "import", str(gz), "--username", "gzipped", "--email", "gz@example.org", input="a long password\n")
    broken = json.loads(FIXTURE.read_text())
    broken["user"]["profile"]["entity_data"]["first_name"] = "x" * 40
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    result = pod.cli("archive", "import", str(bad), "--username", "broken", "--email", "b@example.org", input="a long password\n", check=False)
    assert result.returncode != 0
    assert "first_name" in result.stderr and "32" in result.stderr
    assert "broken" not in pod.cli("user", "list").stdout, "a refused import creates nothing"
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b" " * (300 * 1024 * 1024), compresslevel=9))
    result = pod.cli("archive", "import", str(bomb), "--username", "bomb", "--email", "x@example.org", input="a long password\n", check=False)
    assert result.returncode != 0 and "decompressed" in result.stderr


def test_settings_downloads_the_archive_and_a_sealed_backup_libsodium_opens(start_pod):
    pod = start_pod()
    pod.cli("user", "add", "judy", "--email", "judy@example.org", input="judy's password\n")
    s = sign_in(pod, "judy", "judy's password")
    csrf = s.cookies["lb_csrf"]
    r = s.post(pod.url + "/settings/download/archive", data={"csrf": csrf, "password": "wrong"})
    assert r.status_code == 401
    r = s.post(pod.url + "/settings/download/archive", data={"csrf": csrf, "password": "judy's password"})
    assert r.headers["content-disposition"].startswith("attachment")
    archive_validator().validate(r.json())
    r = s.post(pod.url + "/settings/download/backup", data={"csrf": csrf, "password": "judy's password", "passphrase": PASSPHRASE})
    assert r.status_code == 200, r.text
    sealed = r.content
    assert sealed[:4] == b"LFBK"
    m, t = int.from_bytes(sealed[8:12], "little"), int.from_bytes(sealed[12:16], "little")
    key = nacl.pwhash.argon2id.kdf(32, PASSPHRASE.encode(), sealed[20:36], opslimit=t, memlimit=m * 1024)
    plain = nacl.secret.SecretBox(key).decrypt(sealed[60:], sealed[36:60])
    assert json.loads(plain)["user"]["username"] == "judy"


def test_a_user_adds_a_contact_on_another_pod_through_discovery(start_pod, browser):
    a = start_pod("a")
    c = start_pod("c")
    a.cli("user", "add", "kate", "--email", "kate@example.org", input="kate's password\n")
    c.cli("user", "add", "leo", "--email", "leo@example.org", input="leo's password\n")
    ka = sign_in(a, "kate", "kate's password")
    r = ka.post(a.url + "/profile", files={"csrf": (None, ka.cookies["lb_csrf"]), "first_name": (None, "Kate"), "last_name": (None, "Bishop"), "searchable": (None, "on")})
    assert r.status_code == 200 and "Saved." in r.text
    # leo adds kate through the contacts page, in a real browser
    browser.get(c.url + "/users/sign_in")
    browser.find_element("name", "login").send_keys("leo")
    browser.find_element("name", "password").send_keys("leo's password")
    browser.find_element("css selector", "form[action='/users/sign_in'] button").click()
    wait_until(lambda: "/settings" in browser.current_url, what="sign-in")
    browser.get(c.url + "/contacts")
    browser.find_element("css selector", "form[action='/contacts'] [name='diaspora_id']").send_keys(f"kate@{a.host}")
    browser.find_element("css selector", "form[action='/contacts'] button").click()
    wait_until(lambda: "Contact added." in browser.page_source, what="the contact to be added")
    assert "Kate Bishop" in browser.page_source
    out = c.data_dir.parent / "leo.json"
    c.cli("archive", "export", "leo", "--out", str(out))
    contact = json.loads(out.read_text())["user"]["contacts"][0]
    assert contact["account_id"] == f"kate@{a.host}"
    kate_hcard = a.get("/.well-known/webfinger", params={"resource": f"acct:kate@{a.host}"}).json()
    hcard = requests.get(next(l["href"] for l in kate_hcard["links"] if l["rel"].endswith("hcard"))).text
    key = re.search(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", hcard, re.S).group(0)
    assert contact["public_key"].split() == key.split(), "the contact carries kate's real key"


class MalformedPod:
    """A small HTTP server on loopback that answers discovery as a broken pod would:
    `user@host` picks the answer (see `answers`). TLS attempts are closed at once (the
    pod tries https first, then http, which the rig allows)."""

    def __init__(self, hcard):
        self.hcard = hcard
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle(self):
                if self.connection.recv(1, socket.MSG_PEEK) == b"\x16":
                    return  # a TLS ClientHello: this pod speaks plain http only
                super().handle()

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.answer(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def jrd(self, name, hcard=True):
        links = [{"rel": "http://joindiaspora.com/seed_location", "type": "text/html", "href": self.url + "/"}]
        if hcard:
            links.append({"rel": "http://microformats.org/profile/hcard", "type": "text/html", "href": f"{self.url}/hcard/{name}"})
        return json.dumps({"subject": f"acct:{name}@{self.host}", "links": links}).encode()

    def answer(self, h):
        def send(body, status=200, content_type="application/jrd+json", length=True, headers=()):
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            for header in headers:
                h.send_header(*header)
            if length:
                h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)

        path = h.path
        if path.startswith("/.well-known/webfinger"):
            name = re.search(r"resource=acct:([a-z_]+)%40|resource=acct:([a-z_]+)@", path)
            name = (name.group(1) or name.group(2)) if name else ""
            if name == "notjson":
                return send(b"{this is not JSON")
            if name == "nohcard":
                return send(self.jrd(name, hcard=False))
            if name in ("nokey", "badkey"):
                return send(self.jrd(name))
            if name == "huge":
                return send(b" " * (3 * 1024 * 1024))
            if name == "endless":
                return send(b" " * (3 * 1024 * 1024), length=False)
            if name == "loop":
                return send(b"", status=302, headers=[("Location", path)])
        key = re.compile(r'<pre class="key">.*?</pre>', re.S)
        if path == "/hcard/nokey":
            return send(key.sub("", self.hcard).encode(), content_type="text/html")
        if path == "/hcard/badkey":
            broken = '<pre class="key">-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PUBLIC KEY-----</pre>'
            return send(key.sub(broken, self.hcard).encode(), content_type="text/html")
        send(b"not found", status=404, content_type="text/plain")


def test_malformed_discovery_answers_give_a_clear_error_and_add_nothing(start_pod, tmp_path):
    c = start_pod("c")
    c.cli("user", "add", "mia", "--email", "mia@example.org", input="mia's password\n")
    c.cli("user", "add", "ned", "--email", "ned@example.org", input="ned's password\n")
    ned = c.get("/.well-known/webfinger", params={"resource": f"acct:ned@{c.host}"}).json()
    real_hcard = requests.get(next(l["href"] for l in ned["links"] if l["rel"].endswith("hcard"))).text
    assert '<pre class="key">' in real_hcard, "the broken hCards below are a real one with its key taken out or spoilt"
    broken = MalformedPod(real_hcard)
    s = sign_in(c, "mia", "mia's password")
    cases = [
        ("nobody@127.0.0.1:9", "could not be reached"),  # a pod that is down
        (f"ghost@{c.host}", "has no such account (WebFinger answered 404)"),
        (f"notjson@{broken.host}", "WebFinger answer is not JSON"),
        (f"nohcard@{broken.host}", "WebFinger answer has no http(s) hCard link"),
        (f"nokey@{broken.host}", "hCard has no public key (.key)"),
        (f"badkey@{broken.host}", "hCard public key (.key) is not an RSA public key"),
        (f"huge@{broken.host}", f"{broken.url} sent a response larger than {2 * 1024 * 1024} bytes"),
        (f"endless@{broken.host}", f"{broken.url} sent a response larger than {2 * 1024 * 1024} bytes"),
        (f"loop@{broken.host}", f"{broken.url} redirected more than 5 times"),
    ]
    try:
        for target, reason in cases:
            r = s.post(c.url + "/contacts", data={"csrf": s.cookies["lb_csrf"], "diaspora_id": target})
            assert r.status_code == 502, (target, r.status_code)
            alert = re.search(r'<p class="notice error" role="alert">(.*?)</p>', r.text, re.S)
            assert alert, (target, r.text)
            message = html.unescape(alert.group(1))
            assert message.startswith(f"could not discover {target}: "), (target, message)
            assert reason in message, (target, message)
    finally:
        broken.close()
    assert "No contacts yet." in s.get(c.url + "/contacts").text
    out = tmp_path / "mia.json"
    c.cli("archive", "export", "mia", "--out", str(out))
    archive = json.loads(out.read_text())
    assert archive["user"]["contacts"] == []
    assert not [p for p in archive["lifeboat"]["known_pods"] if broken.host in p or "127.0.0.1:9" in p], archive["lifeboat"]["known_pods"]
