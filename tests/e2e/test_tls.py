"""TLS as it runs by default: pods that reach each other over https only, and mail over
STARTTLS and implicit TLS, with certificates from a certificate authority made for the
test (testca.py).

Each pod stands behind a TLS-terminating proxy (rig.TlsFront, the part nginx or Caddy
plays in production) with `server.public_url` on https, `federation.allow_http` off,
and the test CA trusted through `federation.extra_ca_file`; mail goes to aiosmtpd with
`mail.smtp_tls` = starttls or implicit and the CA in `mail.smtp_ca_file`. A peer or a
mail server whose certificate the pod should not trust (another CA, another name) is
refused: nothing is delivered, the log says why, and the delivery stays queued.
"""

import re

import pytest
import requests

import test_migration
import test_sharing
from rig import SmtpSink, TestCA, sign_in, wait_until

FAST = test_migration.FAST


@pytest.fixture
def ca(tmp_path, monkeypatch):
    """The test CA; the test's own requests (requests, through rig) trust it too."""
    authority = TestCA(tmp_path / "ca", "lifeboat test CA")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(authority.pem))
    return authority


@pytest.fixture
def https_pod(start_pod, ca):
    """start_pod, behind a TLS front with a certificate from the test CA."""

    def start(name, env=None, **kw):
        pod = start_pod(name, env=dict(FAST, **(env or {})), tls=ca, **kw)
        assert pod.url.startswith("https://") and pod.env["LIFEBOAT_FEDERATION_ALLOW_HTTP"] == "false"
        return pod

    return start


def refused_deliveries(pod, words):
    return [line for line in pod.log().splitlines() if "delivery failed" in line and words in line]


def test_pods_find_share_with_and_move_between_each_other_over_https(https_pod, tmp_path):
    # Discovery: leo on C adds kate on A (C reads A's WebFinger and hCard over https),
    # and kate adds leo; each side's `contact` message is delivered over https.
    a, c, kate, leo = test_migration.setup_kate_and_leo(lambda name, env=None: https_pod(name, env), tmp_path)
    kate_id, leo_id = f"kate@{a.host}", f"leo@{c.host}"
    assert re.fullmatch(r"kate@127\.0\.0\.1:\d+", kate_id) and a.host != f"127.0.0.1:{a.port}", "IDs are on the https front"
    wait_until(lambda: test_sharing.contacts(kate, a).get(leo_id) == "mutual", what="leo's contact message, delivered to A over https")
    wait_until(lambda: test_sharing.contacts(leo, c).get(kate_id) == "mutual", what="kate's contact message, delivered to C over https")
    contact = test_migration.contacts_of(c, "leo", tmp_path)[kate_id]
    assert "-----BEGIN PUBLIC KEY-----" in contact["public_key"], "C found kate's key in her hCard"

    # The move: kate flags it on A and moves in on B; B's AccountMigration reaches A and C.
    b = https_pod("b")
    r = kate.post(a.url + "/settings/move", data={"csrf": kate.cookies["lb_csrf"], "password": "kate's password", "passphrase": test_migration.PASSPHRASE})
    assert r.status_code == 200 and r.content[:4] == b"LFBK"
    archive = tmp_path / "kate.json"
    a.cli("archive", "export", "kate", "--out", str(archive))
    result = b.cli("archive", "import", str(archive), "--username", "kate2", input="kate's new password\n")
    assert f"moved from {kate_id}" in result.stdout
    new_id = f"kate2@{b.host}"
    wait_until(lambda: test_migration.webfinger_status(a, "kate") == 404, what="A to close kate on the move it received over https")
    wait_until(lambda: new_id in test_migration.contacts_of(c, "leo", tmp_path), what="C to re-point kate on the move it received over https")
    assert test_migration.contacts_of(c, "leo", tmp_path)[new_id]["contact_groups_membership"] == ["Friends"]
    kate2 = sign_in(b, "kate2", "kate's new password")
    wait_until(lambda: "0 pending" in kate2.get(b.url + "/settings").text, what="B's deliveries")
    assert "2 delivered" in kate2.get(b.url + "/settings").text

    # It all went through the fronts' TLS, none of it was refused.
    for pod in (a, b, c):
        assert pod.front.handshakes > 0 and pod.front.refused == [], (pod.name, pod.front.refused)
        assert "delivery failed" not in pod.log(), pod.log()[-3000:]
    assert "trusting the built-in Mozilla roots and 1 more from" in a.log()


def test_a_peer_whose_certificate_is_not_trusted_gets_nothing_and_the_delivery_is_retried(https_pod, ca, tmp_path):
    a, c = https_pod("a"), https_pod("c")
    test_sharing.add_user(a, "anna")
    test_sharing.add_user(a, "axel")
    test_sharing.add_user(c, "carl")
    anna_id, carl_id = f"anna@{a.host}", f"carl@{c.host}"
    anna, carl = test_sharing.sign_in(a, "anna"), test_sharing.sign_in(c, "carl")
    test_sharing.post_form(carl, c, "/contacts", diaspora_id=anna_id)
    wait_until(lambda: test_sharing.contacts(anna, a).get(carl_id) == "shares with you", what="carl's first contact message")

    # A now presents a certificate from a CA that C does not trust.
    stranger = TestCA(tmp_path / "stranger", "stranger CA")
    a.front.use(stranger.issue())
    handshakes = a.front.handshakes
    # Discovery of someone new on A is refused at once, with the reason on the page.
    r = carl.post(c.url + "/contacts", data={"csrf": carl.cookies["lb_csrf"], "diaspora_id": f"axel@{a.host}"})
    assert "certificate" in r.text and f"axel@{a.host}" not in test_sharing.contacts(carl, c), r.text[-1500:]
    # A delivery to A is refused, logged with the reason, and retried.
    test_sharing.post_form(carl, c, "/contacts/remove", diaspora_id=anna_id)
    untrusted = "its certificate is not from a certificate authority this pod trusts"
    wait_until(lambda: len(refused_deliveries(c, untrusted)) >= 2, what="two refused attempts in C's log")
    assert any("UnknownIssuer" in line and a.host in line for line in refused_deliveries(c, untrusted))
    assert len(a.front.refused) >= 2 and a.front.handshakes == handshakes, "C broke off every handshake"
    # (A is read through its admin socket: the test itself cannot reach it over https now)
    assert test_migration.contacts_of(a, "anna", tmp_path)[carl_id]["sharing"] is True, "nothing reached A: carl still shares with anna there"

    # A certificate from the trusted CA but for another name is refused as well.
    a.front.use(ca.issue(["elsewhere.test"]))
    wait_until(lambda: refused_deliveries(c, "its certificate is for another host name"), what="a refusal for the wrong name")
    assert test_migration.contacts_of(a, "anna", tmp_path)[carl_id]["sharing"] is True, "still nothing reached A"

    # With a good certificate again, the retried delivery arrives, once.
    a.front.use(ca.issue())
    wait_until(lambda: carl_id not in test_sharing.contacts(anna, a), timeout=40, what="the retried removal to reach A")


def mail_pod(start_pod, name, sink):
    return start_pod(name, with_smtp=False, env=dict(sink.pod_env(), LIFEBOAT_MAIL_FROM=f"lifeboat@{name}.test"))


def forgot_password(pod, address):
    s = requests.Session()
    s.get(pod.url + "/users/password/forgot")
    r = s.post(pod.url + "/users/password/forgot", data={"csrf": s.cookies["lb_csrf"], "email": address})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_mail_goes_out_over_tls_to_a_server_with_a_certificate_from_the_ca(start_pod, ca, mode):
    sink = SmtpSink(tls=mode, cert=ca.issue(), ca=ca)
    try:
        pod = mail_pod(start_pod, "m", sink)
        test_sharing.add_user(pod, "dave")
        out = pod.cli("mail", "test", "--to", "podmin@example.org").stdout
        assert "test message sent" in out
        forgot_password(pod, "dave@example.org")
        sink.wait_for("dave@example.org", "Reset your password")
        sent = sink.all()
        assert len(sent) == 2 and all(m["tls"] and m["tls"].startswith("TLS") for m in sent), [m["tls"] for m in sent]
        expected = {"starttls": "STARTTLS", "implicit": "implicit TLS"}[mode]
        assert f"({expected}, trusting the system's certificate authorities and 1 more from {ca.pem})" in pod.log()
    finally:
        sink.stop()


@pytest.mark.parametrize(
    "mode, which, words",
    [
        ("starttls", "stranger", "its certificate is not from a certificate authority this pod trusts"),
        ("implicit", "misnamed", "its certificate is for another host name"),
    ],
)
def test_mail_to_a_server_whose_certificate_is_not_trusted_is_not_sent(start_pod, ca, tmp_path, mode, which, words):
    cert = TestCA(tmp_path / "stranger", "stranger CA").issue() if which == "stranger" else ca.issue(["elsewhere.test"])
    # This server would take mail in clear text too: a client that fell back to it
    # after the refused certificate would be caught here.
    sink = SmtpSink(tls=mode, cert=cert, ca=ca, require_starttls=False)
    try:
        pod = mail_pod(start_pod, "m", sink)
        test_sharing.add_user(pod, "dave")
        result = pod.cli("mail", "test", "--to", "podmin@example.org", check=False)
        assert result.returncode != 0 and words in result.stderr, result.stderr
        assert "the message was not sent" in result.stderr and "internal error" not in result.stderr
        forgot_password(pod, "dave@example.org")
        wait_until(lambda: re.search(r"mail to dave@example\.org failed \(attempt 1\), next try in \d+s: .*" + words, pod.log()), what="the queued mail's refusal in the log")
        assert sink.all() == [], "nothing was sent, in clear text or otherwise"
    finally:
        sink.stop()
