//! Sharing on a real store in a temporary folder, with the people store filled in
//! advance (no network): what is sent, what is recorded, and what is refused.

use std::sync::Arc;

use aes::Aes256;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};

use super::*;
use crate::account::{AccountTx, Closed};
use crate::delivery::DeliveryState;
use crate::federation::signature::public_key_to_pem;
use crate::federation::test_support::{key_2048, other_key_2048, vector_key_pair};
use crate::testing::{ALICE, BOB, BOB_GUID, BOB_POD};

const MAX: usize = 1 << 20;

struct Rig {
    pod: Arc<Pod>,
    _test: crate::testing::TestPod,
}

/// A pod at `https://lifeboat.example` with the local user alice (key_2048) and the
/// remote person bob (other_key_2048) already known.
async fn rig_with(adjust: impl FnOnce(&mut Config)) -> Rig {
    let test = crate::testing::TestPod::with(adjust);
    test.add(&local_account("alice", "a11ce0000000000000000000000000a1", key_2048()));
    people::store_person(
        &test.pod.store,
        remote_person(BOB, BOB_GUID, &other_key_2048().to_public_key()),
    )
    .unwrap();
    Rig {
        pod: test.pod.clone(),
        _test: test,
    }
}

async fn rig() -> Rig {
    rig_with(|_| {}).await
}

fn local_account(username: &str, guid: &str, key: &RsaPrivateKey) -> Account {
    crate::testing::account(username).guid(guid).key(key).build()
}

fn remote_person(id: &str, guid: &str, key: &RsaPublicKey) -> Person {
    Person {
        diaspora_id: id.into(),
        guid: guid.into(),
        public_key_pem: public_key_to_pem(key),
        full_name: "Bob Builder".into(),
        first_name: "Bob".into(),
        last_name: "Builder".into(),
        photo_url: String::new(),
        photo_medium_url: String::new(),
        photo_small_url: String::new(),
        searchable: true,
        pod_origin: BOB_POD.into(),
        fetched_unix: crate::account::now_unix(),
        moved_to: None,
        closed_unix: None,
    }
}

impl Rig {
    fn alice(&self) -> Account {
        AccountStore::account(&self.pod.store, "alice").unwrap().unwrap()
    }

    async fn receive(&self, client: &str, body: &[u8]) -> Result<Received> {
        receive_private(&self.pod, client, &self.alice().guid, body).await
    }

    fn change_alice(&self, change: impl Fn(&mut Account)) {
        self.pod
            .store
            .transaction(|tx| {
                let before = AccountTx::account(tx, "alice")?.unwrap();
                let mut after = before.clone();
                change(&mut after);
                tx.put_account(Some(&before), &after)
            })
            .unwrap();
    }
}

/// An entity signed as `signer_id` with `signer_key`, encrypted for alice.
fn sealed_for_alice(entity_xml: &str, signer_id: &str, signer_key: &RsaPrivateKey) -> Vec<u8> {
    let envelope = MagicEnvelope::sign(entity_xml, signer_id, signer_key).to_xml();
    envelope::encrypt_for(&envelope, &key_2048().to_public_key())
        .unwrap()
        .into_bytes()
}

fn from_bob(sharing: bool) -> Vec<u8> {
    let contact = if sharing {
        Contact::start_sharing(BOB, ALICE)
    } else {
        Contact::stop_sharing(BOB, ALICE)
    };
    sealed_for_alice(&contact.to_xml(), BOB, other_key_2048())
}

fn refused(outcome: Received) -> String {
    match outcome {
        Received::Refused(why) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Opens a queued delivery as bob would and returns the contact inside.
fn open_as_bob(body: &[u8]) -> Contact {
    let xml = envelope::decrypt(std::str::from_utf8(body).unwrap(), other_key_2048(), MAX).unwrap();
    let envelope = MagicEnvelope::parse(&xml).unwrap();
    assert_eq!(envelope.key_id(), ALICE);
    envelope.verify(&key_2048().to_public_key()).unwrap();
    match parse_entity(envelope.payload_str().unwrap()).unwrap() {
        Entity::Contact(contact) => contact,
        other => panic!("not a contact: {other:?}"),
    }
}

/// The stored body of a queued delivery.
fn body_of(rig: &Rig, delivery: &crate::delivery::Delivery) -> Vec<u8> {
    crate::delivery::body_of(&rig.pod.store, delivery)
        .unwrap()
        .expect("a pending delivery holds its body")
}

fn pending(rig: &Rig) -> Vec<crate::delivery::Delivery> {
    crate::delivery::topic_deliveries(&rig.pod.store, &topic("alice", BOB))
        .unwrap()
        .into_iter()
        .filter(|d| d.state == DeliveryState::Pending)
        .collect()
}

// ----- sending -----

#[test]
fn a_contact_message_opens_for_its_recipient_only_and_verifies_with_the_authors_key() {
    let bob = remote_person(BOB, BOB_GUID, &other_key_2048().to_public_key());
    for sharing in [true, false] {
        let delivery = contact_delivery("alice", ALICE, key_2048(), &bob, sharing).unwrap();
        assert_eq!(delivery.origin, BOB_POD);
        assert_eq!(delivery.path, format!("/receive/users/{BOB_GUID}"));
        assert_eq!(delivery.content_type, "application/json");
        assert_eq!(delivery.topic, "contact:alice:bob@remote.example");
        let contact = open_as_bob(&delivery.body);
        let expected = if sharing {
            Contact::start_sharing(ALICE, BOB)
        } else {
            Contact::stop_sharing(ALICE, BOB)
        };
        assert_eq!(contact, expected);
        assert!(!contact.blocking);
        // Standard base64 (not base64url) in both fields, as diaspora* writes them.
        let body: serde_json::Value = serde_json::from_slice(&delivery.body).unwrap();
        for field in ["aes_key", "encrypted_magic_envelope"] {
            let text = body[field].as_str().unwrap();
            assert!(STANDARD.decode(text).is_ok(), "{field} is standard base64");
        }
        // Nobody else can open it, the author included.
        let json = std::str::from_utf8(&delivery.body).unwrap();
        assert!(envelope::decrypt(json, key_2048(), MAX).is_err());
    }
    let mut odd = bob.clone();
    odd.guid = "../admin".into();
    assert!(contact_delivery("alice", ALICE, key_2048(), &odd, true).is_err());
}

#[tokio::test]
async fn adding_and_removing_a_contact_queues_one_message_each_the_newer_replacing_the_waiting_one() {
    let rig = rig().await;
    add_contact(&rig.pod, &rig.alice(), " @Bob@Remote.example ", None)
        .await
        .unwrap();
    let alice = rig.alice();
    let contact = &alice.contacts[0];
    assert_eq!(contact.diaspora_id, BOB);
    assert!(
        contact.receiving && !contact.sharing,
        "diaspora*'s meaning: the user shares with bob (receiving), bob does not share yet"
    );
    assert_eq!(contact.person_guid.as_deref(), Some(BOB_GUID));
    assert_eq!(contact.person_name.as_deref(), Some("Bob Builder"));
    assert_eq!(
        contact.aspects,
        ["Friends"],
        "into the first aspect when none is chosen"
    );
    assert_eq!(alice.known_pods, [BOB_POD]);
    let queued = pending(&rig);
    assert_eq!(queued.len(), 1);
    assert_eq!(
        open_as_bob(&body_of(&rig, &queued[0])),
        Contact::start_sharing(ALICE, BOB)
    );

    let again = add_contact(&rig.pod, &rig.alice(), BOB, None).await.unwrap_err();
    assert!(matches!(again, Error::Conflict(_)), "{again:?}");
    assert!(
        add_contact(&rig.pod, &rig.alice(), ALICE, None).await.is_err(),
        "not yourself"
    );

    remove_contact(&rig.pod, &rig.alice(), BOB).await.unwrap();
    assert!(rig.alice().contacts.is_empty());
    let queued = pending(&rig);
    assert_eq!(
        queued.len(),
        1,
        "the waiting start message is replaced, not sent after the stop"
    );
    assert_eq!(
        open_as_bob(&body_of(&rig, &queued[0])),
        Contact::stop_sharing(ALICE, BOB)
    );

    // Removing someone we do not share with tells nobody.
    remove_contact(&rig.pod, &rig.alice(), BOB).await.unwrap();
    assert_eq!(pending(&rig).len(), 1);
}

#[tokio::test]
async fn blocked_people_cannot_be_added() {
    let rig = rig().await;
    rig.change_alice(|a| a.blocks.push(BOB.into()));
    let err = add_contact(&rig.pod, &rig.alice(), BOB, None).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert!(pending(&rig).is_empty());
}

#[tokio::test]
async fn a_contact_goes_into_the_aspect_chosen_and_needs_one() {
    let rig = rig().await;
    rig.change_alice(|a| a.aspects = vec!["Friends".into(), "Work".into()]);
    let err = add_contact(&rig.pod, &rig.alice(), BOB, Some("Garden"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    add_contact(&rig.pod, &rig.alice(), BOB, Some("work")).await.unwrap();
    assert_eq!(rig.alice().contacts[0].aspects, ["Work"], "matched ignoring case");
    remove_contact(&rig.pod, &rig.alice(), BOB).await.unwrap();

    rig.change_alice(|a| a.aspects.clear());
    let err = add_contact(&rig.pod, &rig.alice(), BOB, None).await.unwrap_err();
    assert!(err.to_string().contains("make an aspect first"), "{err}");
    assert!(rig.alice().contacts.is_empty());
}

#[tokio::test]
async fn deleting_the_only_aspect_of_a_contact_stops_sharing_with_them() {
    let rig = rig().await;
    rig.change_alice(|a| a.aspects = vec!["Friends".into(), "Work".into()]);
    add_contact(&rig.pod, &rig.alice(), BOB, Some("Work")).await.unwrap();
    rig.receive("10.0.0.1", &from_bob(true)).await.unwrap();
    delete_aspect(&rig.pod, &rig.alice(), "Friends").await.unwrap();
    assert!(rig.alice().contacts[0].receiving, "Work is still theirs");
    assert_eq!(pending(&rig).len(), 1, "only the start message");

    delete_aspect(&rig.pod, &rig.alice(), "Work").await.unwrap();
    let alice = rig.alice();
    assert!(alice.aspects.is_empty());
    let contact = &alice.contacts[0];
    assert!(
        !contact.receiving && contact.sharing,
        "bob still shares, the user no longer does"
    );
    assert!(contact.aspects.is_empty());
    assert_only_the_stop_waits(&rig);
}

// ----- receiving -----

#[tokio::test]
async fn a_contact_from_a_known_sender_is_recorded_then_removed() {
    let rig = rig().await;
    assert_eq!(
        rig.receive("10.0.0.1", &from_bob(true)).await.unwrap(),
        Received::Recorded
    );
    let alice = rig.alice();
    assert_eq!(alice.contacts.len(), 1);
    let contact = &alice.contacts[0];
    assert_eq!(contact.diaspora_id, BOB);
    assert!(contact.sharing, "bob shares with the user (diaspora*'s `sharing`)");
    assert!(!contact.receiving, "the user does not share back by being shared with");
    assert!(
        contact.aspects.is_empty(),
        "in no aspect until the user puts them in one"
    );
    assert_eq!(contact.person_guid.as_deref(), Some(BOB_GUID));
    assert_eq!(contact.person_name.as_deref(), Some("Bob Builder"));
    assert_eq!(
        contact.public_key.as_deref(),
        Some(public_key_to_pem(&other_key_2048().to_public_key()).as_str())
    );
    assert_eq!(alice.known_pods, [BOB_POD], "a verified message's pod is known");
    assert!(pending(&rig).is_empty(), "receiving sends nothing");

    // The archive carries them (docs/formats.md, "Contacts"), so backups and moves do.
    let archive: serde_json::Value = serde_json::from_slice(
        &crate::account::archive::write_archive(&alice, "lifeboat.example", "https://lifeboat.example").unwrap(),
    )
    .unwrap();
    let exported = &archive["user"]["contacts"][0];
    assert_eq!(exported["account_id"], BOB);
    assert_eq!(exported["sharing"], true);
    assert_eq!(
        exported["following"], true,
        "mirrors sharing, as diaspora*'s exporter writes it"
    );
    assert_eq!(exported["receiving"], false);
    assert_eq!(exported["followed"], false);

    let same = rig.receive("10.0.0.1", &from_bob(true)).await.unwrap();
    assert!(matches!(same, Received::Ignored(_)), "{same:?}");
    assert_eq!(rig.alice(), alice, "the same message again changes nothing");

    assert_eq!(
        rig.receive("10.0.0.1", &from_bob(false)).await.unwrap(),
        Received::Removed
    );
    assert!(rig.alice().contacts.is_empty(), "neither side shares: gone");
    let again = rig.receive("10.0.0.1", &from_bob(false)).await.unwrap();
    assert!(matches!(again, Received::Ignored(_)), "{again:?}");
}

#[tokio::test]
async fn a_mutual_contact_stays_when_the_other_side_stops() {
    let rig = rig().await;
    add_contact(&rig.pod, &rig.alice(), BOB, None).await.unwrap();
    assert_eq!(
        rig.receive("10.0.0.1", &from_bob(true)).await.unwrap(),
        Received::Updated
    );
    let contact = rig.alice().contacts[0].clone();
    assert!(contact.sharing && contact.receiving);
    assert_eq!(contact.aspects, ["Friends"], "aspects are the user's, untouched");

    assert_eq!(
        rig.receive("10.0.0.1", &from_bob(false)).await.unwrap(),
        Received::Updated
    );
    let contact = rig.alice().contacts[0].clone();
    assert!(!contact.sharing && contact.receiving, "the user still shares with bob");
    assert_eq!(contact.aspects, ["Friends"]);
}

#[tokio::test]
async fn putting_a_follower_into_an_aspect_shares_back() {
    let rig = rig().await;
    rig.receive("10.0.0.1", &from_bob(true)).await.unwrap();
    set_aspects(&rig.pod, &rig.alice(), BOB, vec![]).await.unwrap();
    assert!(pending(&rig).is_empty(), "no aspect: still not sharing");
    set_aspects(&rig.pod, &rig.alice(), BOB, vec!["Friends".into()])
        .await
        .unwrap();
    let contact = rig.alice().contacts[0].clone();
    assert!(contact.sharing && contact.receiving);
    assert_eq!(contact.aspects, ["Friends"]);
    let queued = pending(&rig);
    assert_eq!(queued.len(), 1);
    assert_eq!(
        open_as_bob(&body_of(&rig, &queued[0])),
        Contact::start_sharing(ALICE, BOB)
    );
    rig.change_alice(|a| a.aspects.push("Work".into()));
    set_aspects(&rig.pod, &rig.alice(), BOB, vec!["Work".into()])
        .await
        .unwrap();
    assert_eq!(pending(&rig).len(), 1, "moving between aspects sends nothing");
    assert!(rig.alice().contacts[0].receiving);

    set_aspects(&rig.pod, &rig.alice(), BOB, vec![]).await.unwrap();
    let contact = rig.alice().contacts[0].clone();
    assert!(
        !contact.receiving && contact.sharing,
        "out of every aspect: no longer shared with"
    );
    assert_only_the_stop_waits(&rig);
}

#[tokio::test]
async fn what_fails_to_decrypt_or_verify_changes_nothing() {
    let rig = rig().await;
    let before = rig.alice();
    let good = from_bob(true);
    let good_json: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let with = |aes_key: &str, ciphertext: &str| {
        serde_json::json!({"aes_key": aes_key, "encrypted_magic_envelope": ciphertext})
            .to_string()
            .into_bytes()
    };
    let aes_key = good_json["aes_key"].as_str().unwrap();
    let ciphertext = STANDARD
        .decode(good_json["encrypted_magic_envelope"].as_str().unwrap())
        .unwrap();

    // Encrypted for another key than alice's.
    let envelope = MagicEnvelope::sign(&Contact::start_sharing(BOB, ALICE).to_xml(), BOB, other_key_2048()).to_xml();
    let for_bob = envelope::encrypt_for(&envelope, &other_key_2048().to_public_key()).unwrap();
    let wrong_key = refused(rig.receive("10.0.0.1", for_bob.as_bytes()).await.unwrap());

    // A tampered ciphertext, in the first block and in the middle.
    for at in [3, ciphertext.len() / 2] {
        let mut damaged = ciphertext.clone();
        damaged[at] ^= 0x20;
        refused(
            rig.receive("10.0.0.1", &with(aes_key, &STANDARD.encode(&damaged)))
                .await
                .unwrap(),
        );
    }

    // Bad PKCS#7 padding under the right key: says the same as the wrong key.
    let (key, iv) = ([7u8; 32], [9u8; 16]);
    let mut block = *b"<me:env/>\x05\x05\x05\x05\x05\x05\x03";
    let bad_padding = cbc::Encryptor::<Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_mut::<NoPadding>(&mut block, 16)
        .unwrap()
        .to_vec();
    let key_json = serde_json::json!({"key": STANDARD.encode(key), "iv": STANDARD.encode(iv)}).to_string();
    let wrapped = key_2048()
        .to_public_key()
        .encrypt(&mut rand::rngs::OsRng, Pkcs1v15Encrypt, key_json.as_bytes())
        .unwrap();
    let padding = refused(
        rig.receive(
            "10.0.0.1",
            &with(&STANDARD.encode(wrapped), &STANDARD.encode(bad_padding)),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        padding, wrong_key,
        "the log cannot tell the RSA layer from the AES layer either"
    );

    // The inner signature tampered with.
    let envelope = MagicEnvelope::sign(&Contact::start_sharing(BOB, ALICE).to_xml(), BOB, other_key_2048());
    let xml = envelope.to_xml();
    let signature_end = xml.rfind("</me:sig>").unwrap();
    let signature_start = xml[..signature_end].rfind('>').unwrap() + 1;
    let mut signature = URL_SAFE.decode(&xml[signature_start..signature_end]).unwrap();
    signature[10] ^= 1;
    let tampered = format!(
        "{}{}{}",
        &xml[..signature_start],
        URL_SAFE.encode(signature),
        &xml[signature_end..]
    );
    let body = envelope::encrypt_for(&tampered, &key_2048().to_public_key()).unwrap();
    let why = refused(rig.receive("10.0.0.1", body.as_bytes()).await.unwrap());
    assert!(why.contains("does not verify"), "{why}");

    // Signed by another key, claiming to be bob (a forgery).
    let (forger, _) = vector_key_pair();
    let forged = sealed_for_alice(&Contact::start_sharing(BOB, ALICE).to_xml(), BOB, &forger);
    let why = refused(rig.receive("10.0.0.1", &forged).await.unwrap());
    assert!(why.contains(BOB) && why.contains("does not verify"), "{why}");

    // Signed by bob, but naming someone else as the author, or addressed to someone else.
    let other_author = sealed_for_alice(
        &Contact::start_sharing("carol@remote.example", ALICE).to_xml(),
        BOB,
        other_key_2048(),
    );
    let why = refused(rig.receive("10.0.0.1", &other_author).await.unwrap());
    assert!(why.contains("signed by"), "{why}");
    let other_recipient = sealed_for_alice(
        &Contact::start_sharing(BOB, "dave@lifeboat.example").to_xml(),
        BOB,
        other_key_2048(),
    );
    let why = refused(rig.receive("10.0.0.1", &other_recipient).await.unwrap());
    assert!(why.contains("addressed to"), "{why}");

    // Not JSON, not UTF-8, not an envelope inside, a malformed entity, an unknown signer.
    refused(rig.receive("10.0.0.1", b"not json").await.unwrap());
    refused(rig.receive("10.0.0.1", &[0xff, 0xfe, b'{']).await.unwrap());
    let not_envelope = envelope::encrypt_for("<hello/>", &key_2048().to_public_key()).unwrap();
    refused(rig.receive("10.0.0.1", not_envelope.as_bytes()).await.unwrap());
    let malformed = sealed_for_alice("<contact><author>bob</author></contact>", BOB, other_key_2048());
    refused(rig.receive("10.0.0.1", &malformed).await.unwrap());
    let unknown_signer = sealed_for_alice(
        &Contact::start_sharing("eve@unknown.invalid", ALICE).to_xml(),
        "eve@unknown.invalid",
        other_key_2048(),
    );
    let why = refused(rig.receive("10.0.0.1", &unknown_signer).await.unwrap());
    assert!(why.contains("no key for the signer"), "{why}");

    assert_eq!(rig.alice(), before, "nothing changed");
    assert!(pending(&rig).is_empty());
}

#[tokio::test]
async fn an_envelope_over_the_cap_is_refused() {
    let rig = rig().await;
    let body = from_bob(true);
    let size = envelope::decrypt(std::str::from_utf8(&body).unwrap(), key_2048(), MAX)
        .unwrap()
        .len();
    let alice = rig.alice();
    let why = refused(receive_for(&rig.pod, &alice, &body, size - 1).await.unwrap());
    assert!(why.contains("larger than"), "{why}");
    assert_eq!(rig.alice(), alice);
    assert_eq!(
        receive_for(&rig.pod, &alice, &body, size).await.unwrap(),
        Received::Recorded
    );
    assert_eq!(body_limit(&rig.pod.config), MAX_PRIVATE_BODY_BYTES);
}

#[tokio::test]
async fn other_private_entities_are_accepted_and_ignored() {
    let rig = rig().await;
    let before = rig.alice();
    let status = "<status_message><author>bob@remote.example</author><guid>0123456789abcdef</guid><text>hi</text></status_message>";
    let outcome = rig
        .receive("10.0.0.1", &sealed_for_alice(status, BOB, other_key_2048()))
        .await
        .unwrap();
    assert!(
        matches!(outcome, Received::Ignored(ref why) if why.contains("status_message")),
        "{outcome:?}"
    );
    assert_eq!(rig.alice(), before);
}

#[tokio::test]
async fn blocked_senders_are_not_recorded() {
    let rig = rig().await;
    rig.change_alice(|a| a.blocks.push(BOB.into()));
    let outcome = rig.receive("10.0.0.1", &from_bob(true)).await.unwrap();
    assert!(matches!(outcome, Received::Ignored(_)), "{outcome:?}");
    assert!(rig.alice().contacts.is_empty());
}

#[tokio::test]
async fn unknown_and_closed_users_are_not_found() {
    let rig = rig().await;
    let err = receive_private(
        &rig.pod,
        "10.0.0.1",
        "ffffffffffffffffffffffffffffffff",
        &from_bob(true),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let guid = rig.alice().guid;
    rig.change_alice(|a| {
        a.closed = Some(Closed {
            at_unix: 1,
            moved_to: None,
        })
    });
    let err = receive_private(&rig.pod, "10.0.0.1", &guid, &from_bob(true))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn private_messages_are_rate_limited_per_client_and_per_account() {
    let rig = rig_with(|config| {
        config.federation.receive_private_per_client_per_minute = 3;
        config.federation.receive_private_per_account_per_minute = 5;
    })
    .await;
    for _ in 0..3 {
        refused(rig.receive("10.0.0.1", b"{}").await.unwrap());
    }
    let err = rig.receive("10.0.0.1", b"{}").await.unwrap_err();
    assert!(matches!(err, Error::RateLimited(_)), "{err:?}");
    // Other clients share the account's budget: 5 in all, 3 already used.
    refused(rig.receive("10.0.0.2", b"{}").await.unwrap());
    refused(rig.receive("10.0.0.3", b"{}").await.unwrap());
    let err = rig.receive("10.0.0.4", b"{}").await.unwrap_err();
    assert!(matches!(err, Error::RateLimited(_)), "{err:?}");
}

/// One delivery waits for bob: alice's stop, which replaced the start still waiting.
fn assert_only_the_stop_waits(rig: &Rig) {
    let queued = pending(rig);
    assert_eq!(queued.len(), 1, "the stop replaces the waiting start");
    assert_eq!(
        open_as_bob(&body_of(rig, &queued[0])),
        Contact::stop_sharing(ALICE, BOB)
    );
}
