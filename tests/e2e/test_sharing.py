"""Sharing both ways with diaspora*'s `contact` messages, between real lifeboat pods on
loopback: a user on C adds a user on A, A learns that C's user shares with its user
(and the archive carries it), removing the contact updates A, a forged message changes
nothing, and flooding `/receive/users/GUID` is rate-limited."""

import base64
import json
import os
import re
import tempfile
from pathlib import Path

import requests
from cryptography.hazmat.primitives import hashes, padding as sym_padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import rig
from rig import wait_until

ROW = re.compile(r'<tr class="contact">(.*?)</tr>', re.S)


def add_user(pod, name):
    pod.cli("user", "add", name, "--email", f"{name}@example.org", input=f"{name}'s password\n")


def sign_in(pod, name):
    return rig.sign_in(pod, name, f"{name}'s password")


def contacts(session, pod):
    """The contacts page as {diaspora ID: what the sharing column says}."""
    page = session.get(pod.url + "/contacts")
    assert page.status_code == 200
    found = {}
    for row in ROW.findall(page.text):
        ident = re.search(r'<code class="contact-id">([^<]*)</code>', row).group(1)
        found[ident] = re.search(r"<td>([^<]*)</td>", row).group(1).strip()
    return found


def post_form(session, pod, path, **fields):
    r = session.post(pod.url + path, data={"csrf": session.cookies["lb_csrf"], **fields}, allow_redirects=False)
    assert r.status_code == 303, f"{path}: {r.status_code} {r.text[:500]}"
    return r


def person(pod, name):
    """(guid, public key PEM) as diaspora* finds them: WebFinger, then the hCard."""
    jrd = pod.get("/.well-known/webfinger", params={"resource": f"acct:{name}@{pod.host}"}).json()
    hcard_url = next(l["href"] for l in jrd["links"] if l["rel"] == "http://microformats.org/profile/hcard")
    html = requests.get(hcard_url, timeout=10).text
    guid = re.search(r'class="uid"[^>]*>([^<]+)<', html).group(1).strip()
    pem = re.search(r'<pre class="key">([^<]+)</pre>', html).group(1).strip()
    return guid, pem


def b64url(data):
    return base64.urlsafe_b64encode(data).decode()


def sealed_contact(author, recipient, signing_key, recipient_pem, sharing=True):
    """diaspora*'s encrypted `contact` message, built independently of lifeboat: a
    Magic Envelope signed with `signing_key` whose key_id names `author`, encrypted
    for `recipient_pem` (AES-256-CBC, RSA PKCS#1 v1.5 key wrap, standard base64)."""
    flag = "true" if sharing else "false"
    entity = (f"<contact><author>{author}</author><recipient>{recipient}</recipient>"
              f"<following>{flag}</following><sharing>{flag}</sharing><blocking>false</blocking></contact>")
    data = b64url(entity.encode())
    signed = ".".join([data, b64url(b"application/xml"), b64url(b"base64url"), b64url(b"RSA-SHA256")])
    signature = signing_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    envelope = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<me:env xmlns:me="http://salmon-protocol.org/ns/magic-env">'
                f'<me:data type="application/xml">{data}</me:data>'
                '<me:encoding>base64url</me:encoding><me:alg>RSA-SHA256</me:alg>'
                f'<me:sig key_id="{b64url(author.encode())}">{b64url(signature)}</me:sig></me:env>')
    key, iv = os.urandom(32), os.urandom(16)
    padder = sym_padding.PKCS7(128).padder()
    plain = padder.update(envelope.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plain) + encryptor.finalize()
    recipient_key = serialization.load_pem_public_key(recipient_pem.encode())
    key_json = json.dumps({"key": base64.b64encode(key).decode(), "iv": base64.b64encode(iv).decode()})
    aes_key = recipient_key.encrypt(key_json.encode(), padding.PKCS1v15())
    return json.dumps({"aes_key": base64.b64encode(aes_key).decode(),
                       "encrypted_magic_envelope": base64.b64encode(ciphertext).decode()})


def test_sharing_reaches_the_other_pod_both_ways_and_a_forgery_changes_nothing(start_pod):
    a = start_pod("a")
    c = start_pod("c")
    add_user(a, "anna")
    add_user(c, "carl")
    anna_id, carl_id = f"anna@{a.host}", f"carl@{c.host}"
    anna, carl = sign_in(a, "anna"), sign_in(c, "carl")

    # carl on C adds anna on A: A's anna sees carl sharing with her.
    post_form(carl, c, "/contacts", diaspora_id=anna_id)
    assert contacts(carl, c) == {anna_id: "you share"}
    wait_until(lambda: contacts(anna, a).get(carl_id) == "shares with you", what="carl among anna's contacts on A")
    assert "shares with you" in anna.get(a.url + "/contacts").text

    # anna shares back by putting carl into an aspect: mutual on both pods.
    post_form(anna, a, "/contacts/aspects", diaspora_id=carl_id, **{"aspect:Friends": "on"})
    assert contacts(anna, a) == {carl_id: "mutual"}
    wait_until(lambda: contacts(carl, c).get(anna_id) == "mutual", what="anna sharing back, seen on C")

    # carl removes anna: A's record updates (anna still shares, so carl stays listed).
    post_form(carl, c, "/contacts/remove", diaspora_id=anna_id)
    assert contacts(carl, c) == {anna_id: "shares with you"}
    wait_until(lambda: contacts(anna, a).get(carl_id) == "you share", what="carl's removal, seen on A")

    # A forged contact message: says it is from carl, signed by another key.
    anna_guid, anna_pem = person(a, "anna")
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = sealed_contact(carl_id, anna_id, forger, anna_pem)
    r = a.post(f"/receive/users/{anna_guid}", data=forged, headers={"Content-Type": "application/json"})
    assert r.status_code == 202, "the sender learns nothing from the answer"
    assert r.text == ""
    assert contacts(anna, a) == {carl_id: "you share"}, "the forgery changed nothing"
    wait_until(lambda: "private message refused" in a.log() and "does not verify" in a.log(), what="the refusal in A's log")

    # The same message built by the same code but signed with carl's real key would
    # have been taken: a real one does arrive when carl adds anna again.
    post_form(carl, c, "/contacts", diaspora_id=anna_id)
    wait_until(lambda: contacts(anna, a).get(carl_id) == "mutual", what="carl sharing again, seen on A")

    # anna removes carl too: on C, anna's record goes (neither shares any more from
    # anna's side, and carl shares: carl's page says "you share").
    post_form(anna, a, "/contacts/remove", diaspora_id=carl_id)
    assert contacts(anna, a) == {carl_id: "shares with you"}
    wait_until(lambda: contacts(carl, c).get(anna_id) == "you share", what="anna's removal, seen on C")


def test_the_archive_carries_both_directions_with_diasporas_meaning(start_pod):
    """diaspora*'s Contact: `sharing` = the person shares with the user (`following`
    mirrors it), `receiving` = the user shares with the person (`followed` mirrors it);
    its importer keeps the contacts with `receiving`, in their aspects."""
    a = start_pod("a")
    c = start_pod("c")
    add_user(a, "anna")
    add_user(c, "carl")
    add_user(c, "dora")
    anna_id, carl_id, dora_id = f"anna@{a.host}", f"carl@{c.host}", f"dora@{c.host}"
    anna, carl = sign_in(a, "anna"), sign_in(c, "carl")
    # (a) anna adds dora, into her "Work" aspect; (b) carl's contact arrives at anna.
    post_form(anna, a, "/contacts", diaspora_id=dora_id, aspect="Work")
    post_form(carl, c, "/contacts", diaspora_id=anna_id)
    wait_until(lambda: carl_id in contacts(anna, a), what="carl among anna's contacts on A")
    assert contacts(anna, a) == {dora_id: "you share", carl_id: "shares with you"}

    out = Path(tempfile.mkdtemp(prefix="lifeboat-archive-")) / "anna.json"
    a.cli("archive", "export", "anna", "--out", str(out))
    archive = json.loads(out.read_text())
    by_id = {x["account_id"]: x for x in archive["user"]["contacts"]}
    flags = lambda x: {k: x[k] for k in ("sharing", "following", "receiving", "followed")}
    assert flags(by_id[dora_id]) == {"sharing": False, "following": False, "receiving": True, "followed": True}
    assert by_id[dora_id]["contact_groups_membership"] == ["Work"], "diaspora*'s importer keeps her, in Work"
    assert flags(by_id[carl_id]) == {"sharing": True, "following": True, "receiving": False, "followed": False}
    assert by_id[carl_id]["contact_groups_membership"] == []
    assert "Work" in [g["name"] for g in archive["user"]["contact_groups"]]
    contact = by_id[carl_id]
    assert contact["person_guid"] == person(c, "carl")[0]
    assert "-----BEGIN PUBLIC KEY-----" in contact["public_key"]
    assert c.url in archive["lifeboat"]["known_pods"], "a verified message's pod is known"

    post_form(carl, c, "/contacts/remove", diaspora_id=anna_id)
    wait_until(lambda: carl_id not in contacts(anna, a), what="carl gone from anna's contacts")
    a.cli("archive", "export", "anna", "--out", str(out))
    assert all(x["account_id"] != carl_id for x in json.loads(out.read_text())["user"]["contacts"])


def test_receive_is_capped_and_rate_limited_per_client_and_per_account(start_pod):
    a = start_pod("a", env={
        "LIFEBOAT_SERVER_TRUSTED_PROXIES": "127.0.0.1",
        "LIFEBOAT_FEDERATION_RECEIVE_PRIVATE_PER_CLIENT_PER_MINUTE": "10",
        "LIFEBOAT_FEDERATION_RECEIVE_PRIVATE_PER_ACCOUNT_PER_MINUTE": "25",
    })
    add_user(a, "anna")
    add_user(a, "bert")
    anna_guid, anna_pem = person(a, "anna")
    bert_guid, _ = person(a, "bert")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = sealed_contact(f"mallory@{a.host}", f"anna@{a.host}", key, anna_pem)

    def send(guid, client, data=body):
        return a.post(f"/receive/users/{guid}", data=data, headers={"Content-Type": "application/json", "X-Forwarded-For": client}).status_code

    assert send("0123456789abcdef0123456789abcdef", "10.9.9.9") == 404, "unknown users are not found"
    assert send(anna_guid, "10.9.9.8", data="x" * (600 * 1024)) == 413, "the body is capped"

    # One client floods anna: its own limit stops it.
    codes = [send(anna_guid, "10.0.0.1") for _ in range(15)]
    assert codes[:10] == [202] * 10 and set(codes[10:]) == {429}, codes
    # Many clients flood anna: the account's limit stops them all together.
    codes = [send(anna_guid, f"10.0.1.{i}") for i in range(1, 31)]
    assert codes.count(429) >= 10 and codes[-1] == 429, codes
    assert send(anna_guid, "10.0.2.1") == 429
    # Other accounts are not affected.
    assert send(bert_guid, "10.0.2.2") == 202
    log = a.log()
    assert "private message refused" in log
    assert anna_pem not in log
