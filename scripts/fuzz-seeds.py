#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into a folder per target (default
fuzz/seeds/TARGET/), from the real artifacts in tests/reference/ and tests/fixtures/.

The committed corpus (fuzz/corpus/) is these seeds plus what the fuzzer found, reduced
with `cargo fuzz cmin`; scripts/fuzz.sh runs this first. Each seed is laid out as its
target reads its input (fuzz/src/lib.rs): some targets take a first byte that picks a
mode.
"""

import base64
import gzip
import json
import pathlib
import re
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
REF = ROOT / "tests" / "reference"
EXAMPLES = REF / "diaspora-examples"
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "seeds"

# Written by libsodium (see src/sealed.rs, KAT_FILE): m 19456, t 2, `{"version":"2.0"}`.
KAT_LFBK = bytes.fromhex(
    "4c46424b01010000004c00000200000001000000000102030405060708090a0b0c0d0e0f"
    "6465666768696a6b6c6d6e6f707172737475767778797a7b4720f8b28ee260e6c6f839785c10b9ca"
    "ec830023373e13e1e895f9b3d9a195b85b"
)
ENTITIES = ["profile", "account_migration", "contact", "account_deletion"]
# The private-path target's fixed AES key and IV (fuzz/src/lib.rs).
AES_KEY, AES_IV = bytes([0x42]) * 32, bytes([0x24]) * 16


def write(target, name, data):
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def b64url(data):
    return base64.urlsafe_b64encode(data).decode()


def envelope(entity_xml, key_id="alice@example.org"):
    template = (EXAMPLES / "magic_envelope.example.xml").read_text()
    start = template.index('<me:data type="application/xml">') + len('<me:data type="application/xml">')
    end = template.index("</me:data>")
    out = template[:start] + b64url(entity_xml.strip().encode()) + template[end:]
    return out.replace('key_id="YWxpY2VAZXhhbXBsZS5vcmc="', f'key_id="{b64url(key_id.encode())}"')


def lfbk_header(m, t, version=1, kdf=1, reserved=0, parallelism=1):
    return b"LFBK" + struct.pack("<BBHIII", version, kdf, reserved, m, t, parallelism) + bytes(range(16)) + bytes(24)


def main():
    entity_xml = {name: (EXAMPLES / f"{name}.example.xml").read_text() for name in ENTITIES}
    comments = sorted((REF / "signature-vectors").glob("comment_xml_*.xml"))
    fixture = (ROOT / "tests" / "fixtures" / "diaspora-export.json").read_bytes()
    public_key = (REF / "signature-vectors" / "author_public_key.pem").read_text()

    # .lfbk
    write("lfbk_open", "libsodium-kat.lfbk", KAT_LFBK)
    write("lfbk_open", "header-only-holder-minimum", lfbk_header(19456, 2) + bytes(16))
    write("lfbk_open", "header-format-maximum", lfbk_header(1 << 20, 10) + bytes(16))
    write("lfbk_open", "header-too-costly", lfbk_header((1 << 20) + 1, 11) + bytes(16))
    write("lfbk_open", "header-version-2", lfbk_header(8, 1, version=2) + bytes(16))
    write("lfbk_open", "header-reserved", lfbk_header(8, 1, reserved=1, parallelism=4) + bytes(16))
    write("lfbk_open", "truncated", KAT_LFBK[:40])
    write("lfbk_open", "archive-plaintext", b'{"version":"2.0"}')

    # Entities and envelopes
    for name, xml in entity_xml.items():
        write("entity", f"{name}.xml", xml)
        write("magic_envelope", f"{name}-envelope.xml", envelope(xml))
        write("private_envelope", f"{name}-envelope.mode2", b"\x02" + envelope(xml).encode())
    for path in comments:
        write("entity", path.name, path.read_text())
    data = re.search(r'<me:data[^>]*>([^<]*)<', (EXAMPLES / "magic_envelope.example.xml").read_text()).group(1)
    write("entity", "status_message.xml", base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    write("magic_envelope", "magic_envelope.example.xml", (EXAMPLES / "magic_envelope.example.xml").read_bytes())

    # The private path's wrapper: a real AES layer when `cryptography` is there.
    try:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        plaintext = envelope(entity_xml["contact"]).encode()
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        encryptor = Cipher(algorithms.AES(AES_KEY), modes.CBC(AES_IV)).encryptor()
        ciphertext = encryptor.update(padded) + encryptor.finalize()
        key_json = json.dumps({"key": base64.b64encode(AES_KEY).decode(), "iv": base64.b64encode(AES_IV).decode()})
        for mode, aes_key in [(0, b"rsa-encrypted key stands here"), (1, key_json.encode())]:
            body = json.dumps({
                "aes_key": base64.b64encode(aes_key).decode(),
                "encrypted_magic_envelope": base64.b64encode(ciphertext).decode(),
            })
            write("private_envelope", f"contact-body.mode{mode}", bytes([mode]) + body.encode())
    except ImportError:
        print("python3-cryptography missing: no AES-encrypted private_envelope seeds", file=sys.stderr)
    write("private_envelope", "not-json.mode0", b"\x00{\"aes_key\": 1}")

    # Archives
    write("archive", "diaspora-export.json", fixture)
    write("archive", "diaspora-export.json.gz", gzip.compress(fixture, mtime=0))
    write("archive", "minimal.json", json.dumps({"version": "2.0", "user": {"username": "a"}}))
    write("archive", "lifeboat-key.json", json.dumps({
        "version": "2.0",
        "user": {"username": "a", "email": "a@example.org", "contacts": []},
        "lifeboat": {"guid": "0123456789abcdef", "diaspora_id": "a@pod.example",
                     "known_pods": ["https://pod.example"],
                     "avatar": {"content_type": "image/png",
                                "data": base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(16)).decode()}},
    }))

    # Backup pushes
    spki = json.loads(fixture)["user"]["contacts"][0]["public_key"]
    push = {
        "version": 1, "email": "alice@example.org", "public_key": spki, "sequence": 1,
        "created_at": "2023-11-14T00:00:00Z", "backup": base64.b64encode(KAT_LFBK).decode(),
        "signature": base64.b64encode(bytes(256)).decode(),
    }
    write("push", "push.json", json.dumps(push))
    write("push", "delete.json", json.dumps({**push, "backup": None}))
    status = {k: push[k] for k in ["email", "public_key", "created_at", "signature"]}
    write("push", "status.json", json.dumps(status))
    write("push", "pkcs1-key.json", json.dumps({**push, "public_key": public_key}))

    # Discovery
    write("webfinger", "webfinger.example.json", (EXAMPLES / "webfinger.example.json").read_bytes())
    write("webfinger", "lifeboat-jrd.json", json.dumps({
        "subject": "acct:alice@pod.example",
        "aliases": ["https://pod.example/people/0123456789abcdef"],
        "links": [
            {"rel": "http://microformats.org/profile/hcard", "type": "text/html",
             "href": "https://pod.example/hcard/users/0123456789abcdef"},
            {"rel": "http://joindiaspora.com/seed_location", "type": "text/html", "href": "https://pod.example/"},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": "https://pod.example/u/alice"},
        ],
    }))
    hcard = (EXAMPLES / "hcard.example.html").read_text()
    write("hcard", "hcard.example.html", hcard)
    write("hcard", "hcard-relative-photos.html", hcard.replace('src="https://example.org', 'src="..'))
    for version in ["2.0", "2.1"]:
        write("nodeinfo", f"nodeinfo-{version}.example.json", (REF / f"nodeinfo-{version}.example.json").read_bytes())
    write("nodeinfo", "well-known-links.json", json.dumps({"links": [
        {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "https://pod.example/nodeinfo/2.0"},
        {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": "https://pod.example/nodeinfo/2.1"},
    ]}))
    write("nodeinfo", "backups.json", json.dumps({"metadata": {"acceptsBackups": True, "backupMaxBytes": 16777216}}))

    # Forms
    write("form", "urlencoded.mode0", b"\x00csrf=abc&email=a%40b.example&password=a+long+pass&x&y=%E2%9C%93&z=%4")
    multipart = (
        "--fuzzBoundary\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n"
        "--fuzzBoundary\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"a.lfbk\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\nLFBK\x01\x01\r\n--fuzzBoundary--\r\n"
    )
    write("form", "multipart.mode1", b"\x01" + multipart.encode())
    write("form", "multipart-own-type.mode2",
          b"\x02multipart/form-data; boundary=\"fuzzBoundary\"\n" + multipart.encode())


if __name__ == "__main__":
    main()
