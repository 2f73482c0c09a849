"""Known people across real pods: an imported archive's contacts are discovered in the
background, so that a contact's later move verifies with the stored key even once their
old pod is gone; and WebFinger answers as diaspora* serves it."""

import json

from rig import ROOT, wait_until

FIXTURE = ROOT / "tests" / "fixtures" / "diaspora-export.json"
FAST = {"LIFEBOAT_FEDERATION_DELIVERY_RETRY_FIRST": "1s", "LIFEBOAT_FEDERATION_UNREACHABLE_FOR": "1s"}


def export(pod, username, tmp_path):
    out = tmp_path / f"{username}-{pod.port}.json"
    pod.cli("archive", "export", username, "--out", str(out))
    return json.loads(out.read_text())


def people(pod):
    """`lifeboat people list` as {diaspora ID: its state}."""
    lines = pod.cli("people", "list").stdout.splitlines()
    return {line.split("\t")[0]: line.split("\t")[-1] for line in lines if "\t" in line}


def test_an_imported_contact_is_discovered_and_their_move_verifies_after_their_pod_is_gone(start_pod, tmp_path):
    a, b, c = start_pod("a", env=FAST), start_pod("b", env=FAST), start_pod("c", env=FAST)
    b.cli("user", "add", "bob", "--email", "bob@example.org", input="bob's password\n")
    bob = f"bob@{b.host}"
    # alice's archive (from some diaspora* pod) names bob among her contacts.
    archive = json.loads(FIXTURE.read_text())
    contact = dict(archive["user"]["contacts"][0], account_id=bob)
    del contact["person_guid"], contact["public_key"]
    archive["user"]["contacts"] = [contact]
    path = tmp_path / "alice.json"
    path.write_text(json.dumps(archive))
    a.cli("archive", "import", str(path), "--username", "alice", input="alice's password\n")
    # A finds bob in the background, as his pod publishes him.
    wait_until(lambda: people(a).get(bob) == "active", timeout=30, what="A to discover bob")
    queue = a.cli("people", "queue").stdout
    assert queue.startswith("0 people waiting"), queue

    # bob knew alice too; his pod then dies, and he moves to C with his archive.
    bobs = export(b, "bob", tmp_path)
    bobs["user"]["contacts"].append(
        {"account_id": f"alice@{a.host}", "sharing": True, "receiving": True, "following": True, "followed": True,
         "contact_groups_membership": [bobs["user"]["contact_groups"][0]["name"]]}
    )
    b.stop()
    moved = tmp_path / "bob.json"
    moved.write_text(json.dumps(bobs))
    c.cli("archive", "import", str(moved), "--username", "bob2", input="bob's new password\n")
    new_id = f"bob2@{c.host}"

    # A verifies the move with the key it stored for bob, and re-points alice's contact.
    def repointed():
        return {x["account_id"] for x in export(a, "alice", tmp_path)["user"]["contacts"]} == {new_id}

    wait_until(repointed, timeout=40, what="A to re-point bob")
    contact = export(a, "alice", tmp_path)["user"]["contacts"][0]
    assert contact["contact_groups_membership"] == ["Friends"]
    assert people(a)[bob] == f"moved to {new_id}"


def test_webfinger_as_diaspora_serves_it(start_pod):
    pod = start_pod("wf")
    pod.cli("user", "add", "wendy", "--email", "wendy@example.org", input="wendy's password\n")
    jrd = pod.get("/.well-known/webfinger", params={"resource": f"acct:wendy@{pod.host}"}).json()
    guid = jrd["aliases"][0].rsplit("/", 1)[1]
    links = {link["rel"]: link["href"] for link in jrd["links"]}
    assert links["salmon"] == f"{pod.url}/receive/users/{guid}"
    profile_page = pod.get(links["http://webfinger.net/rel/profile-page"][len(pod.url):])
    assert profile_page.status_code == 200 and f"wendy@{pod.host}" in profile_page.text
    for resource in ("wendy", "https://example.org/people/x", f"{pod.url}/u/wendy"):
        assert pod.get("/.well-known/webfinger", params={"resource": resource}).status_code == 404, resource
    assert pod.get("/.well-known/webfinger").status_code == 400
