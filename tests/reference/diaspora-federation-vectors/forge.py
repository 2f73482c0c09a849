"""Changes bytes of what diaspora_federation made (run by make-vectors.sh): each output
in forged/ is one of diaspora*'s files with one thing altered afterwards."""

import base64
import json
import re


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def b64url(data):
    return base64.urlsafe_b64encode(data).decode()


def unb64url(text):
    return base64.urlsafe_b64decode(re.sub(r"\s", "", text))


def with_payload(envelope, change):
    """The envelope with its me:data decoded, changed and encoded again; the
    signature is left as diaspora* made it."""
    data = re.search(r"<me:data[^>]*>([^<]*)</me:data>", envelope).group(1)
    payload = unb64url(data).decode()
    changed = change(payload)
    assert changed != payload, "the change must change something"
    return envelope.replace(data, b64url(changed.encode()))


old_author = read("migration-old-author.xml")
new_author = read("migration-new-author.xml")

write("forged/old-author-profile-changed.xml",
      with_payload(old_author, lambda p: p.replace("<first_name>Moved</first_name>", "<first_name>Mover</first_name>")))
write("forged/new-author-old-identity-changed.xml",
      with_payload(new_author, lambda p: p.replace("<old_identity>otto@old.example</old_identity>",
                                                   "<old_identity>mallory@evil.example</old_identity>")))
write("forged/new-author-without-old-identity.xml",
      with_payload(new_author, lambda p: re.sub(r"\s*<old_identity>[^<]*</old_identity>", "", p)))
key_id = b64url(b"otto@old.example")
assert key_id in old_author
write("forged/old-author-key-id-changed.xml", old_author.replace(key_id, b64url(b"nora@new.example")))

contact = json.loads(read("contact-otto-to-alice.json"))
blob = bytearray(base64.b64decode(contact["encrypted_magic_envelope"]))
blob[len(blob) // 2] ^= 0x01
contact["encrypted_magic_envelope"] = base64.b64encode(bytes(blob)).decode()
write("forged/contact-ciphertext-changed.json", json.dumps(contact))
