"""Makes the files in this folder: lifeboat's own `profile` (private and public) and
`account_deletion`, and its WebFinger + hCard, each as a real `lifeboat serve` sent or
served them, with diaspora_federation's own answer about each (its `*.probe.json`).

bob is a person diaspora_federation made (`ref.rb gen-person`: key pair, WebFinger and
hCard) and that a small HTTP server on loopback serves; it keeps what lifeboat POSTs to
it. alice on lifeboat adds bob (a `contact` and her `profile`, encrypted for bob since her
profile is not public), makes her profile public and shares with bob again (the profile,
now a public envelope), then deletes her account (`account_deletion`, public).

Run from the repository root after `cargo build`, with the probe installed at /tmp/dfed
(see ../../shared/tools/diaspora-reference/README.md; not something CI can run):

    .venv/bin/python tests/reference/lifeboat-output/make.py
"""

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "e2e"))

from rig import Pod, free_port, sign_in, wait_until  # noqa: E402

# `-rtime`: diaspora*'s Rails loads Ruby's `time` library, which the probe does not (profiles
# carry `edited_at`, read with `Time.parse`).
PROBE = ["ruby", "-rtime", "/tmp/dfed/ref.rb"]
BOB_GUID = "b0b5b0b5b0b5b0b5b0b5b0b5b0b5b0b5"
WEBFINGER_LINKS = """
$stdout = $stderr
require "/tmp/dfed/boot"
wf = DiasporaFederation::Discovery::WebFinger.from_json(File.read(ARGV[0]))
STDOUT.puts JSON.generate(acct_uri: wf.acct_uri, hcard_url: wf.hcard_url, seed_url: wf.seed_url,
                          profile_url: wf.profile_url, salmon_url: wf.salmon_url)
"""


def probe(*args):
    result = subprocess.run(PROBE + [str(a) for a in args], capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def save(name, data):
    (HERE / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def main():
    port = free_port()
    bob_id = f"bob@127.0.0.1:{port}"
    base = f"http://127.0.0.1:{port}"
    made = subprocess.run(PROBE + ["gen-person", bob_id, BOB_GUID, base, "Bob"], capture_output=True, text=True, check=True)
    bob = json.loads(made.stdout)
    save("bob.private.pem", bob["private_pem"])
    received = []

    class Bob(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/.well-known/webfinger"):
                body, kind = json.dumps(bob["webfinger"]), "application/jrd+json"
            elif self.path == f"/hcard/users/{BOB_GUID}":
                body, kind = bob["hcard"], "text/html"
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(body.encode())

        def do_POST(self):
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Bob)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    pod = Pod(name="reference", env={"LIFEBOAT_FEDERATION_DELIVERY_RETRY_FIRST": "1s"}).start()
    try:
        pod.cli("user", "add", "alice", "--email", "alice@example.org", input="alice's password\n")
        alice = sign_in(pod, "alice", "alice's password")
        jrd = pod.get("/.well-known/webfinger", params={"resource": f"acct:alice@{pod.host}"}).text
        hcard_url = next(l["href"] for l in json.loads(jrd)["links"] if l["rel"] == "http://microformats.org/profile/hcard")
        save("webfinger.json", jrd)
        save("hcard.html", pod.get(hcard_url[len(pod.url):]).text)

        def form(path, **fields):
            r = alice.post(pod.url + path, files={k: (None, v) for k, v in {"csrf": alice.cookies["lb_csrf"], **fields}.items()})
            assert r.status_code in (200, 303), (path, r.status_code, r.text[:300])

        form("/profile", first_name="Alice", last_name="Liddell", bio="Curiouser", searchable="on")
        form("/contacts", diaspora_id=bob_id)
        wait_until(lambda: len(received) >= 2, what="the contact and the profile")
        form("/contacts/remove", diaspora_id=bob_id)
        form("/profile", first_name="Alice", last_name="Liddell", bio="Curiouser", searchable="on", public="on")
        form("/contacts", diaspora_id=bob_id)
        wait_until(lambda: len(received) >= 5, what="the second profile")
        form("/settings/delete", password="alice's password")
        wait_until(lambda: len(received) >= 6, what="the account deletion")
    finally:
        pod.stop()
        server.shutdown()

    # alice's public key, as her hCard published it.
    pem = (HERE / "hcard.html").read_text().split('<pre class="key">')[1].split("</pre>")[0]
    (HERE / "keys.json").write_text(json.dumps({f"alice@{pod.host}": pem.strip()}, indent=1) + "\n")

    # Each message as diaspora_federation reads it; the profiles and the deletion are kept.
    kept = {}
    for path, body in received:
        public = path == "/receive/public"
        tmp = HERE / "message.tmp"
        tmp.write_bytes(body)
        if public:
            answer = probe("open-public", tmp, HERE / "keys.json")
        else:
            answer = probe("open-private", tmp, HERE / "bob.private.pem", HERE / "keys.json")
        tmp.unlink()
        print(path, answer.get("ok"), answer.get("type"), answer.get("error", ""))
        name = {("profile", False): "profile.private", ("profile", True): "profile.public",
                ("account_deletion", True): "account_deletion.public"}.get((answer.get("type"), public))
        if name and name not in kept:
            kept[name] = True
            save(name + (".xml" if public else ".json"), body)
            (HERE / f"{name}.probe.json").write_text(json.dumps(answer, indent=1) + "\n")
    assert sorted(kept) == ["account_deletion.public", "profile.private", "profile.public"], kept
    answer = probe("parse-person", HERE / "webfinger.json", HERE / "hcard.html")
    (HERE / "person.probe.json").write_text(json.dumps(answer, indent=1) + "\n")
    print("person", answer.get("ok"), answer.get("error", ""))
    # parse-person does not show every link diaspora_federation reads: ask its WebFinger.
    links = subprocess.run(
        ["ruby", "-rtime", "-e", WEBFINGER_LINKS, HERE / "webfinger.json"], capture_output=True, text=True, check=True
    )
    (HERE / "webfinger.probe.json").write_text(json.dumps(json.loads(links.stdout), indent=1) + "\n")
    print("webfinger links", links.stdout.strip())


if __name__ == "__main__":
    main()
