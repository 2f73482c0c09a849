//! The vectors diaspora_federation's own code made
//! (`tests/reference/diaspora-federation-vectors/`, README there): what it signed goes
//! through lifeboat's real receiving code and is accepted, its forgeries are refused,
//! and lifeboat's own output is still what diaspora_federation verified.
//!
//! `LIFEBOAT_WRITE_VECTORS=1 cargo test --lib vectors` rewrites lifeboat's output files
//! (step 2 of `make-vectors.sh`); the probe's answers to them are then remade by hand.

use super::tests::*;
use super::*;
use crate::federation::envelope;
use crate::sharing::{contact_delivery, contact_entity_delivery, receive_private, Received as Private};

const OUTPUT: &str = "lifeboat-output";

async fn receive_contact(rig: &Rig, body: &str) -> Private {
    let alice = rig.account("alice");
    receive_private(&rig.pod, "test-client", &alice.guid, body.as_bytes())
        .await
        .unwrap()
}

#[tokio::test]
async fn contacts_diaspora_federation_made_are_accepted() {
    let rig = rig().await;
    assert_eq!(
        receive_contact(&rig, &vector("contact-otto-to-alice.json")).await,
        Private::Recorded
    );
    let alice = rig.account("alice");
    assert_eq!(alice.contacts.len(), 1);
    assert_eq!(alice.contacts[0].diaspora_id, OTTO);
    assert!(alice.contacts[0].sharing && !alice.contacts[0].receiving);
    assert_eq!(
        receive_contact(&rig, &vector("contact-otto-to-alice-stop.json")).await,
        Private::Removed
    );
    assert!(rig.account("alice").contacts.is_empty());
}

#[tokio::test]
async fn contacts_forged_after_diaspora_federation_made_them_are_refused() {
    for file in [
        "forged/contact-signed-by-mallory.json",
        "forged/contact-ciphertext-changed.json",
    ] {
        let rig = rig().await;
        let before = rig.snapshot();
        let outcome = receive_contact(&rig, &vector(file)).await;
        assert!(matches!(outcome, Private::Refused(_)), "{file}: {outcome:?}");
        assert_eq!(rig.snapshot(), before, "{file}");
    }
}

#[tokio::test]
async fn migrations_diaspora_federation_made_in_both_forms_are_accepted() {
    for file in ["migration-old-author.xml", "migration-new-author.xml"] {
        let rig = rig().await;
        rig.change("alice", |a| {
            a.contacts.push(contact(OTTO, true, true, &["Friends"]));
            a.blocks.push(OTTO.into());
        });
        let outcome = receive_public(&rig.pod, &vector(file)).await;
        assert_eq!(outcome.unwrap(), Received::Applied, "{file}");
        let alice = rig.account("alice");
        assert_eq!(alice.contacts[0].diaspora_id, NORA, "{file}");
        assert_eq!(alice.blocks, [NORA], "{file}");
        let nora = rig.pod.store.person(NORA).unwrap().unwrap();
        assert_eq!(nora.full_name, "Moved Person", "{file}: the entity's profile");
        assert_eq!(nora.first_name, "Moved", "{file}");
        let sent = rig.contact_messages("alice", NORA);
        assert_eq!(sent.len(), 1, "{file}");
        let contact = open_as_nora(&rig.body(&sent[0]), &vector_key("alice"));
        assert!(!contact.sharing && contact.blocking, "{file}: alice blocks nora now");
    }
}

#[tokio::test]
async fn migrations_forged_with_or_after_diaspora_federation_are_refused() {
    let files = [
        "forged/old-author-envelope-by-mallory.xml",
        "forged/old-author-signature-by-mallory.xml",
        "forged/new-author-envelope-by-mallory.xml",
        "forged/new-author-signature-by-mallory.xml",
        "forged/old-author-profile-changed.xml",
        "forged/new-author-old-identity-changed.xml",
        "forged/new-author-without-old-identity.xml",
        "forged/old-author-key-id-changed.xml",
    ];
    for file in files {
        let rig = rig().await;
        rig.change("alice", |a| a.contacts.push(contact(OTTO, true, true, &["Friends"])));
        let before = rig.snapshot();
        let err = receive_public(&rig.pod, &vector(file)).await.unwrap_err();
        assert!(
            matches!(err, Error::Unauthorized(_) | Error::BadRequest(_)),
            "{file}: {err:?}"
        );
        assert_eq!(rig.snapshot(), before, "{file}: nothing changed");
    }
}

/// alice as lifeboat's tests know her: a profile with names, her vector key.
fn alice_account() -> Account {
    let mut alice = local_account("alice", "a11ce0000000000000000000000000a1", &vector_key("alice"));
    alice.profile.first_name = Some("Alice".into());
    alice.profile.last_name = Some("Local".into());
    alice.profile.searchable = true;
    alice
}

/// What lifeboat makes: alice's `contact` to nora (start sharing, and the re-send after
/// a move when alice blocks her), and the AccountMigration of otto moving to alice.
fn lifeboat_output() -> Vec<(&'static str, String)> {
    let nora = vector_person("nora");
    let key = vector_key("alice");
    let start = contact_delivery("alice", ALICE, &key, &nora, true).unwrap();
    let resend = contact_entity_delivery("alice", &key, &nora, &contact_for(ALICE, NORA, true, true)).unwrap();
    let base = format!("https://{HOST}");
    let profile = crate::account::profile::entity(&alice_account(), HOST, &base);
    let migration = crate::arrivals::sign_move(OTTO, profile, &vector_key("otto"), &key);
    vec![
        (
            "contact-alice-to-nora.json",
            String::from_utf8(start.body.to_vec()).unwrap(),
        ),
        (
            "contact-alice-to-nora-blocking.json",
            String::from_utf8(resend.body.to_vec()).unwrap(),
        ),
        ("migration-otto-to-alice.xml", migration),
    ]
}

/// The inner Magic Envelope of an encrypted message, opened with nora's key.
fn opened_by_nora(body: &str) -> String {
    envelope::decrypt(body, &vector_key("nora"), 1 << 20).unwrap()
}

#[test]
fn lifeboat_output_is_what_diaspora_federation_verified() {
    let output = lifeboat_output();
    if std::env::var_os("LIFEBOAT_WRITE_VECTORS").is_some() {
        let dir = format!(
            "{}/tests/reference/diaspora-federation-vectors/{OUTPUT}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &output {
            std::fs::write(format!("{dir}/{name}"), text).unwrap();
        }
        return;
    }
    for (name, now) in &output {
        let committed = vector(&format!("{OUTPUT}/{name}"));
        if name.ends_with(".json") {
            // Encryption is random; the signed envelope inside is not.
            assert_eq!(opened_by_nora(now), opened_by_nora(&committed), "{name}");
        } else {
            assert_eq!(now, &committed, "{name}: byte for byte");
        }
        let probe: serde_json::Value = serde_json::from_str(&vector(&format!(
            "{OUTPUT}/{}",
            name.replace(".json", ".probe.json").replace(".xml", ".probe.json")
        )))
        .unwrap();
        assert_eq!(probe["ok"], true, "{name}: diaspora_federation accepted it: {probe}");
    }
    let answer = |name: &str| -> serde_json::Value {
        serde_json::from_str(&vector(&format!("{OUTPUT}/{name}.probe.json"))).unwrap()
    };
    let start = answer("contact-alice-to-nora");
    assert_eq!(start["type"], "contact");
    assert_eq!(start["sender"], ALICE);
    assert_eq!(
        start["entity"],
        serde_json::json!({"author": ALICE, "recipient": NORA, "following": true, "sharing": true, "blocking": false})
    );
    let blocking = answer("contact-alice-to-nora-blocking");
    assert_eq!(
        blocking["entity"],
        serde_json::json!({"author": ALICE, "recipient": NORA, "following": false, "sharing": false, "blocking": true})
    );
    let migration = answer("migration-otto-to-alice");
    assert_eq!(migration["type"], "account_migration");
    assert_eq!(migration["sender"], OTTO);
    assert_eq!(migration["entity"]["author"], OTTO);
    assert_eq!(migration["entity"]["old_identity"], OTTO);
    assert_eq!(migration["entity"]["profile"]["author"], ALICE);
    assert_eq!(migration["entity"]["profile"]["full_name"], "Alice Local");
}

#[tokio::test]
async fn lifeboat_agrees_with_diaspora_federation_on_every_vector() {
    let verdicts = vector("diaspora-verdicts.jsonl");
    let mut seen = 0;
    for line in verdicts.lines().filter(|l| !l.trim().is_empty()) {
        let verdict: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = verdict["file"].as_str().unwrap();
        let diaspora_accepts = verdict["answer"]["ok"].as_bool().unwrap();
        let rig = rig().await;
        let lifeboat_accepts = if file.ends_with(".json") {
            !matches!(receive_contact(&rig, &vector(file)).await, Private::Refused(_))
        } else {
            receive_public(&rig.pod, &vector(file)).await.is_ok()
        };
        assert_eq!(lifeboat_accepts, diaspora_accepts, "{file}: {}", verdict["answer"]);
        seen += 1;
    }
    assert_eq!(seen, 14, "every vector has diaspora_federation's verdict");
}
