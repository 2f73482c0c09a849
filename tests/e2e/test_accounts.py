"""Accounts through the web pages, in a real headless Chromium, with the mails caught
by a real SMTP server; and the podmin's account commands."""

import re
import signal

import requests
from selenium.webdriver.common.by import By

from rig import wait_until


def fill(browser, values, form=None):
    for name, value in values.items():
        field = browser.find_element(By.CSS_SELECTOR, f"form[action='{form}'] [name='{name}']") if form else browser.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)


def submit(browser, form_action):
    browser.find_element(By.CSS_SELECTOR, f"form[action='{form_action}'] button[type=submit]").click()


def link_in(smtp, body_of):
    match = re.search(r"(http://\S+token=\S+)", smtp.body(body_of))
    assert match, smtp.body(body_of)
    return match.group(1)


PASSPHRASE = "violet tractor humming seventeen lanterns"


def sign_up(browser, pod, username="alice", email="alice@example.org", password="correct horse 1", passphrase=PASSPHRASE):
    browser.get(pod.url + "/users/sign_up")
    fill(browser, {"username": username, "email": email, "password": password, "passphrase": passphrase})
    submit(browser, "/users/sign_up")
    wait_until(lambda: "/settings" in browser.current_url, what="the settings page after sign-up")


def test_sign_up_confirm_profile_in_a_browser(start_pod, smtp, browser):
    pod = start_pod()
    sign_up(browser, pod)
    assert "not confirmed yet" in browser.page_source
    mail = smtp.wait_for("alice@example.org", "Confirm your email")
    link = link_in(smtp, mail)
    browser.get(link)
    assert browser.find_elements(By.CSS_SELECTOR, "form[action='/users/confirm_email']"), "the GET only shows a button"
    assert f"alice@{pod.host}\talice@example.org\temail not confirmed\n" in pod.cli("user", "list").stdout
    submit(browser, "/users/confirm_email")
    wait_until(lambda: "Address confirmed" in browser.page_source, what="the confirmation page")
    assert f"alice@{pod.host}\talice@example.org\tactive\n" in pod.cli("user", "list").stdout

    browser.get(pod.url + "/profile")
    fill(browser, {"first_name": "Alice", "last_name": "Liddell", "bio": "Curiouser & curiouser", "tag_string": "#wonder #rabbits"})
    submit(browser, "/profile")
    wait_until(lambda: "done=saved" in browser.current_url, what="the saved profile")
    assert "Saved." in browser.page_source
    guid = pod.get("/.well-known/webfinger", params={"resource": f"acct:alice@{pod.host}"}).json()["aliases"][0].rsplit("/", 1)[1]
    hcard = pod.get(f"/hcard/users/{guid}").text
    assert '<span class="fn">Alice Liddell</span>' in hcard
    assert 'class="given_name">Alice<' in hcard


def test_profile_limits_are_enforced_with_a_clear_message(start_pod, browser):
    pod = start_pod()
    sign_up(browser, pod, "bob", "bob@example.org")
    browser.get(pod.url + "/profile")
    fill(browser, {"first_name": "Bobby"})
    browser.execute_script("document.getElementById('birthday').value='1990-02-28';")
    submit(browser, "/profile")
    wait_until(lambda: "done=saved" in browser.current_url, what="the saved profile")
    guid = pod.get("/.well-known/webfinger", params={"resource": f"acct:bob@{pod.host}"}).json()["aliases"][0].rsplit("/", 1)[1]
    assert 'class="given_name">Bobby<' in pod.get(f"/hcard/users/{guid}").text

    browser.get(pod.url + "/profile")
    # A date input rejects impossible dates itself and the name field has a maxlength:
    # send the form without the browser's help.
    browser.execute_script("document.getElementById('birthday').type='text'; document.getElementById('birthday').value='1990-02-30'; document.getElementById('first_name').removeAttribute('maxlength'); document.getElementById('first_name').value='" + "x" * 33 + "';")
    submit(browser, "/profile")
    alert = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "p.notice.error[role=alert]"), what="the refusal")[0].text
    assert "first name is longer than 32 characters" in alert, alert
    assert "birthday must be a real date written YYYY-MM-DD" in alert, alert
    # Nothing was saved: the form shows the stored values, and so does the hCard other pods read.
    assert browser.find_element(By.ID, "first_name").get_attribute("value") == "Bobby"
    assert browser.find_element(By.ID, "birthday").get_attribute("value") == "1990-02-28"
    hcard = pod.get(f"/hcard/users/{guid}").text
    assert 'class="given_name">Bobby<' in hcard and "xxxxxxxxx" not in hcard, hcard


def test_forms_without_the_csrf_token_change_nothing(start_pod):
    pod = start_pod()
    response = pod.post("/users/sign_up", data={"username": "mallory", "email": "m@example.org", "password": "long enough pw"})
    assert response.status_code == 403
    assert "no accounts" in pod.cli("user", "list").stdout


def test_sign_in_is_rate_limited_per_client_and_per_login_and_wrong_passwords_refused(start_pod):
    pod = start_pod(env={"LIFEBOAT_SERVER_TRUSTED_PROXIES": "127.0.0.1"})
    pod.cli("user", "add", "carol", "--email", "carol@example.org", input="carol's password\n")
    pod.cli("user", "add", "dan", "--email", "dan@example.org", input="dan's password\n")

    def attempt(client, login, password):
        s = requests.Session()
        s.get(pod.url + "/users/sign_in", headers={"X-Forwarded-For": client})
        r = s.post(pod.url + "/users/sign_in", data={"csrf": s.cookies["lb_csrf"], "login": login, "password": password}, headers={"X-Forwarded-For": client}, allow_redirects=False)
        assert (r.status_code == 303) == ("lb_session" in s.cookies), r.status_code
        return r.status_code

    # One client guessing at many logins: its own limit (10 in 10 minutes) stops it,
    # even with the right password.
    codes = [attempt("10.0.0.1", f"nobody{i}", "wrong password") for i in range(10)]
    assert codes == [401] * 10, codes
    assert attempt("10.0.0.1", "carol", "carol's password") == 429
    # Another client is not limited by the first one's use.
    assert attempt("10.0.0.2", "carol", "wrong password") == 401
    assert attempt("10.0.0.2", "carol", "carol's password") == 303
    # Many clients guessing at one login: that login's limit stops them all together,
    # and leaves other logins alone.
    codes = [attempt(f"10.0.1.{i}", "dan", "wrong password") for i in range(11)]
    assert codes == [401] * 10 + [429], codes
    assert attempt("10.0.2.1", "dan", "dan's password") == 429
    assert attempt("10.0.2.2", "carol", "carol's password") == 303


def test_password_reset_by_emailed_link(start_pod, smtp):
    pod = start_pod()
    pod.cli("user", "add", "dave", "--email", "dave@example.org", input="first password\n")
    s = requests.Session()
    s.get(pod.url + "/users/password/forgot")
    r = s.post(pod.url + "/users/password/forgot", data={"csrf": s.cookies["lb_csrf"], "email": "Dave@Example.org"})
    assert "Check your email" in r.text
    r2 = s.post(pod.url + "/users/password/forgot", data={"csrf": s.cookies["lb_csrf"], "email": "nobody@example.org"})
    assert r2.text.replace("nobody", "") == r.text.replace("nobody", ""), "the answer does not tell who has an account"
    link = link_in(smtp, smtp.wait_for("dave@example.org", "Reset your password"))
    token = link.split("token=")[1]
    r = s.post(pod.url + "/users/password/reset", data={"csrf": s.cookies["lb_csrf"], "token": token, "password": "second password"})
    assert "Password changed" in r.text
    again = s.post(pod.url + "/users/password/reset", data={"csrf": s.cookies["lb_csrf"], "token": token, "password": "third password"})
    assert again.status_code == 404, "a reset link works once"
    r = s.post(pod.url + "/users/sign_in", data={"csrf": s.cookies["lb_csrf"], "login": "dave", "password": "second password"}, allow_redirects=False)
    assert r.status_code == 303


def test_usernames_are_unique_reserved_for_admins_and_never_reused(start_pod):
    pod = start_pod(env={"LIFEBOAT_ACCOUNTS_ADMINS": "root"})
    s = requests.Session()
    s.get(pod.url + "/users/sign_up")

    def signup(username, email):
        return s.post(pod.url + "/users/sign_up", data={"csrf": s.cookies["lb_csrf"], "username": username, "email": email, "password": "long enough pw", "no_backups": "on"}, allow_redirects=False)

    assert signup("root", "root@example.org").status_code == 409
    assert signup("Bad Name", "x@example.org").status_code == 400
    assert signup("erin", "erin@example.org").status_code == 303
    s2 = requests.Session()
    s2.get(pod.url + "/users/sign_up")
    r = s2.post(pod.url + "/users/sign_up", data={"csrf": s2.cookies["lb_csrf"], "username": "erin", "email": "other@example.org", "password": "long enough pw", "no_backups": "on"})
    assert r.status_code == 409 and "taken" in r.text
    # erin deletes the account; the name stays taken
    settings = s.get(pod.url + "/settings")
    assert settings.status_code == 200
    r = s.post(pod.url + "/settings/delete", data={"csrf": s.cookies["lb_csrf"], "password": "long enough pw"})
    assert "Account deleted" in r.text
    assert pod.get("/.well-known/webfinger", params={"resource": f"acct:erin@{pod.host}"}).status_code == 404
    r = s2.post(pod.url + "/users/sign_up", data={"csrf": s2.cookies["lb_csrf"], "username": "erin", "email": "other@example.org", "password": "long enough pw", "no_backups": "on"})
    assert r.status_code == 409
    assert "closed" in pod.cli("user", "list").stdout


def test_registrations_can_be_closed(start_pod):
    pod = start_pod(env={"LIFEBOAT_ACCOUNTS_OPEN_REGISTRATIONS": "false"})
    assert pod.get("/users/sign_up").status_code == 403
    assert pod.get("/nodeinfo/2.1").json()["openRegistrations"] is False


def test_user_add_works_with_and_without_a_running_server_and_survives_sigterm(start_pod):
    pod = start_pod()
    pod.cli("user", "add", "frank", "--email", "frank@example.org", input="frank's password\n")
    assert pod.stop(signal.SIGTERM) == 0
    pod.cli("user", "add", "grace", "--email", "grace@example.org", input="grace's password\n")
    listing = pod.cli("user", "list").stdout
    assert f"frank@{pod.host}" in listing and f"grace@{pod.host}" in listing
    pod.start()
    for user in ("frank", "grace"):
        assert pod.get("/.well-known/webfinger", params={"resource": f"acct:{user}@{pod.host}"}).status_code == 200


def test_webfinger_and_hcard_as_diaspora_reads_them(start_pod):
    pod = start_pod()
    pod.cli("user", "add", "heidi", "--email", "heidi@example.org", input="heidi's password\n")
    r = pod.get("/.well-known/webfinger", params={"resource": f"acct:heidi@{pod.host}"})
    assert r.headers["content-type"].startswith("application/jrd+json")
    jrd = r.json()
    assert jrd["subject"] == f"acct:heidi@{pod.host}"
    rels = {l["rel"]: l["href"] for l in jrd["links"]}
    assert rels["http://joindiaspora.com/seed_location"] == pod.url + "/"
    hcard_url = rels["http://microformats.org/profile/hcard"]
    html = requests.get(hcard_url).text
    for cls in ("uid", "nickname", "fn", "given_name", "family_name", "searchable"):
        assert f'class="{cls}"' in html, cls
    assert "-----BEGIN PUBLIC KEY-----" in html
    for photo in ("entity_photo", "entity_photo_medium", "entity_photo_small"):
        assert photo in html
    avatar = requests.get(pod.url + "/assets/default-avatar.png")
    assert avatar.status_code == 200 and avatar.content.startswith(b"\x89PNG")
    assert pod.get("/.well-known/webfinger", params={"resource": f"acct:nobody@{pod.host}"}).status_code == 404
    assert pod.get("/hcard/users/0123456789abcdef0123456789abcdef").status_code == 404


def test_backup_pass_phrase_is_checked_and_never_stored(start_pod):
    pod = start_pod()
    s = requests.Session()
    s.get(pod.url + "/users/sign_up")
    form = {"csrf": s.cookies["lb_csrf"], "username": "ivan", "email": "ivan@example.org", "password": "ivan's password"}
    r = s.post(pod.url + "/users/sign_up", data=dict(form))
    assert r.status_code == 400 and "pass phrase" in r.text, "a pass phrase or an explicit opt-out is required"
    r = s.post(pod.url + "/users/sign_up", data=dict(form, passphrase="short one"))
    assert r.status_code == 400 and "12" in r.text
    r = s.post(pod.url + "/users/sign_up", data=dict(form, passphrase="aaaaaaaaaaaaaaaaaaaa"))
    assert r.status_code == 400 and "guess" in r.text.lower()
    r = s.post(pod.url + "/users/sign_up", data=dict(form, passphrase=PASSPHRASE), allow_redirects=False)
    assert r.status_code == 303
    settings = s.get(pod.url + "/settings").text
    assert "Your backup pass phrase is set" in settings
    second = "copper meadow whistles under nine moons"
    r = s.post(pod.url + "/settings/passphrase", data={"csrf": s.cookies["lb_csrf"], "passphrase": second, "password": "wrong"})
    assert r.status_code == 401
    r = s.post(pod.url + "/settings/passphrase", data={"csrf": s.cookies["lb_csrf"], "passphrase": second, "password": "ivan's password"})
    assert r.status_code == 200 and "pass phrase is set" in r.text
    pod.stop()
    for path in pod.stored_files():
        data = path.read_bytes()
        for secret in (PASSPHRASE, second):
            assert secret.encode() not in data, f"{secret!r} found in {path}"


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000" "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def test_avatar_aspects_tags_and_blocks_in_a_browser(start_pod, browser, tmp_path):
    pod = start_pod()
    sign_up(browser, pod, "nina", "nina@example.org")
    avatar = tmp_path / "me.png"
    avatar.write_bytes(PNG)
    browser.get(pod.url + "/profile")
    browser.find_element(By.NAME, "avatar").send_keys(str(avatar))
    submit(browser, "/profile")
    wait_until(lambda: "done=saved" in browser.current_url, what="the saved profile")
    guid = pod.get("/.well-known/webfinger", params={"resource": f"acct:nina@{pod.host}"}).json()["aliases"][0].rsplit("/", 1)[1]
    served = pod.get(f"/avatars/{guid}")
    assert served.content == PNG and served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert f"/avatars/{guid}" in pod.get(f"/hcard/users/{guid}").text
    # a file that is not a picture is refused by its bytes, whatever its name
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"<svg onload=alert(1)></svg>")
    browser.get(pod.url + "/profile")
    browser.find_element(By.NAME, "avatar").send_keys(str(fake))
    submit(browser, "/profile")
    wait_until(lambda: "PNG, JPEG, GIF or WebP" in browser.page_source and "notice error" in browser.page_source, what="the refusal")
    assert pod.get(f"/avatars/{guid}").content == PNG

    browser.get(pod.url + "/aspects")
    fill(browser, {"name": "Climbing"}, form="/aspects")
    submit(browser, "/aspects")
    wait_until(lambda: "Climbing" in browser.page_source, what="the new aspect")
    browser.get(pod.url + "/tags")
    fill(browser, {"item": "#Photography"}, form="/tags")
    submit(browser, "/tags")
    # the field's placeholder shows the same words: wait for the list entry itself
    wait_until(lambda: '<span class="item">photography</span>' in browser.page_source, what="the followed tag")
    browser.get(pod.url + "/blocks")
    fill(browser, {"item": "troll@pod.example.org"}, form="/blocks")
    submit(browser, "/blocks")
    wait_until(lambda: '<span class="item">troll@pod.example.org</span>' in browser.page_source, what="the block")
    out = tmp_path / "nina.json"
    pod.cli("archive", "export", "nina", "--out", str(out))
    import json

    user = json.loads(out.read_text())["user"]
    assert "Climbing" in [g["name"] for g in user["contact_groups"]]
    assert user["followed_tags"] == ["photography"]
    assert user["blocks"] == ["troll@pod.example.org"]


def test_email_change_is_reconfirmed(start_pod, smtp):
    pod = start_pod()
    pod.cli("user", "add", "olga", "--email", "olga@example.org", input="olga's password\n")
    s = requests.Session()
    s.get(pod.url + "/users/sign_in")
    s.post(pod.url + "/users/sign_in", data={"csrf": s.cookies["lb_csrf"], "login": "olga", "password": "olga's password"})
    r = s.post(pod.url + "/settings/email", data={"csrf": s.cookies["lb_csrf"], "email": "olga@new.example", "password": "olga's password"})
    assert "sent a link to the new address" in r.text
    assert "olga@example.org" in pod.cli("user", "list").stdout, "the address changes only when confirmed"
    link = link_in(smtp, smtp.wait_for("olga@new.example", "Confirm your email"))
    token = link.split("token=")[1]
    r = s.post(pod.url + "/users/confirm_email", data={"csrf": s.cookies["lb_csrf"], "token": token})
    assert "Address confirmed" in r.text
    assert "olga@new.example" in pod.cli("user", "list").stdout
