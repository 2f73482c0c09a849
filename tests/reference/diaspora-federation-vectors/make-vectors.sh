#!/bin/sh
# Remakes the diaspora*-made vectors in this folder with diaspora_federation's own code
# (the probe of ../../../../shared/tools/diaspora-reference, installed at /tmp/dfed).
# Step 1 (this script, `./make-vectors.sh diaspora`): keys, contact, migrations, forgeries.
# Step 2: lifeboat writes its own output (`LIFEBOAT_WRITE_VECTORS=1 cargo test --lib vectors`).
# Step 3 (`./make-vectors.sh probe`): diaspora_federation opens lifeboat's output.
# Needs ruby, python3 and the probe; not run in CI (no RubyGems there).
set -eu
cd "$(dirname "$0")"
R="ruby /tmp/dfed/ref.rb"
pem() { python3 -c "import json,sys; sys.stdout.write(json.load(open('people/$1.json'))['$2'])"; }

case "${1:-}" in
diaspora)
    mkdir -p people keys forged
    $R gen-person otto@old.example old0000000000000000000000000otto https://old.example "Otto Old" > people/otto.json
    $R gen-person nora@new.example new0000000000000000000000000nora https://new.example "Nora New" > people/nora.json
    $R gen-person alice@lifeboat.example a11ce0000000000000000000000000a1 https://lifeboat.example "Alice Local" > people/alice.json
    $R gen-person mallory@evil.example ma11047000000000000000000000000e https://evil.example "Mallory Evil" > people/mallory.json
    for who in otto nora alice mallory; do
        pem $who private_pem > keys/$who.private.pem
        pem $who public_pem > keys/$who.public.pem
    done
    # What lifeboat must accept.
    $R make-contact otto@old.example alice@lifeboat.example keys/otto.private.pem keys/alice.public.pem > contact-otto-to-alice.json
    $R make-contact otto@old.example alice@lifeboat.example keys/otto.private.pem keys/alice.public.pem false > contact-otto-to-alice-stop.json
    $R make-migration otto@old.example nora@new.example keys/otto.private.pem keys/nora.private.pem > migration-old-author.xml
    $R make-migration otto@old.example nora@new.example keys/otto.private.pem keys/nora.private.pem new-author > migration-new-author.xml
    # What lifeboat must refuse: made with the wrong key...
    $R make-contact otto@old.example alice@lifeboat.example keys/mallory.private.pem keys/alice.public.pem > forged/contact-signed-by-mallory.json
    $R make-migration otto@old.example nora@new.example keys/mallory.private.pem keys/nora.private.pem > forged/old-author-envelope-by-mallory.xml
    $R make-migration otto@old.example nora@new.example keys/otto.private.pem keys/mallory.private.pem > forged/old-author-signature-by-mallory.xml
    $R make-migration otto@old.example nora@new.example keys/otto.private.pem keys/mallory.private.pem new-author > forged/new-author-envelope-by-mallory.xml
    $R make-migration otto@old.example nora@new.example keys/mallory.private.pem keys/nora.private.pem new-author > forged/new-author-signature-by-mallory.xml
    # ...and diaspora*'s bytes changed afterwards.
    python3 forge.py
    # diaspora_federation's own verdict on each (it must accept the first four only).
    python3 -c "import json; print(json.dumps({i: open('keys/%s.public.pem' % i.split('@')[0]).read() for i in ['otto@old.example', 'nora@new.example', 'alice@lifeboat.example']}))" > keys/known.json
    : > diaspora-verdicts.jsonl
    for f in migration-*.xml forged/*.xml; do
        printf '{"file": "%s", "answer": %s}\n' "$f" "$($R open-public "$f" keys/known.json 2>/dev/null || true)" >> diaspora-verdicts.jsonl
    done
    for f in contact-*.json forged/contact-*.json; do
        printf '{"file": "%s", "answer": %s}\n' "$f" "$($R open-private "$f" keys/alice.private.pem keys/known.json 2>/dev/null || true)" >> diaspora-verdicts.jsonl
    done
    ;;
probe)
    python3 -c "import json; print(json.dumps({'alice@lifeboat.example': open('keys/alice.public.pem').read(), 'otto@old.example': open('keys/otto.public.pem').read()}))" > lifeboat-output/keys.json
    for f in contact-alice-to-nora contact-alice-to-nora-blocking; do
        $R open-private lifeboat-output/$f.json keys/nora.private.pem lifeboat-output/keys.json > lifeboat-output/$f.probe.json || true
    done
    $R open-public lifeboat-output/migration-otto-to-alice.xml lifeboat-output/keys.json > lifeboat-output/migration-otto-to-alice.probe.json || true
    ;;
*)
    echo "usage: $0 diaspora|probe" >&2
    exit 2
    ;;
esac
