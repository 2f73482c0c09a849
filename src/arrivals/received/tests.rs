//! Receiving moves on a real store in a temporary folder, with the people store filled
//! in advance from the WebFinger and hCard diaspora_federation generated
//! (`tests/reference/diaspora-federation-vectors/people/`), so no network is needed:
//! one test per rule of applying a move, and forged moves that must change nothing.

use std::sync::Arc;

use rsa::RsaPrivateKey;

use super::*;
use crate::account::ContactData;
use crate::config::Config;
use crate::delivery::{Delivery, DeliveryState};
use crate::federation::discovery::{parse_hcard, parse_jrd};
use crate::federation::envelope;
use crate::federation::signature::{private_key_from_pem, sign_base64};
use crate::federation::test_support::{key_2048, other_key_2048, reference};
use crate::store::Store;

pub(super) const HOST: &str = "lifeboat.example";
pub(super) const ALICE: &str = "alice@lifeboat.example";
pub(super) const OTTO: &str = "otto@old.example";
pub(super) const NORA: &str = "nora@new.example";
pub(super) const NORA_GUID: &str = "new0000000000000000000000000nora";
pub(super) const MALLORY: &str = "mallory@evil.example";
const MAX: usize = 1 << 20;

/// A file of the diaspora*-made vectors.
pub(super) fn vector(path: &str) -> String {
    reference(&format!("diaspora-federation-vectors/{path}"))
}

/// The private key diaspora_federation generated for `who` (otto, nora, alice, mallory).
pub(super) fn vector_key(who: &str) -> RsaPrivateKey {
    private_key_from_pem(&vector(&format!("keys/{who}.private.pem"))).unwrap()
}

/// `who` as this pod would store them after discovery: read with lifeboat's own
/// parsers from the WebFinger and hCard diaspora_federation generated.
pub(super) fn vector_person(who: &str) -> Person {
    let generated: serde_json::Value = serde_json::from_str(&vector(&format!("people/{who}.json"))).unwrap();
    let jrd = parse_jrd(generated["webfinger"].to_string().as_bytes()).unwrap();
    let card = parse_hcard(generated["hcard"].as_str().unwrap(), &jrd.hcard_url).unwrap();
    Person::from_hcard(jrd.diaspora_id().unwrap(), card, origin_of(&jrd.seed_location).unwrap())
}

pub(super) struct Rig {
    pub pod: Arc<Pod>,
    _dir: tempfile::TempDir,
}

/// A pod at `https://lifeboat.example` with the local users alice (her vector key),
/// carol and dave, and the remote people otto, nora and mallory already known.
pub(super) async fn rig_with(adjust: impl FnOnce(&mut Config)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.public_url = Some(format!("https://{HOST}"));
    adjust(&mut config);
    let store = Store::open(dir.path()).unwrap();
    let pod = Pod::new(config, store).unwrap();
    let users = [
        local_account("alice", "a11ce0000000000000000000000000a1", &vector_key("alice")),
        local_account("carol", "ca201000000000000000000000000ca2", key_2048()),
        local_account("dave", "da7e0000000000000000000000000da7", other_key_2048()),
    ];
    for user in &users {
        pod.store.transaction(|tx| tx.put_account(None, user)).unwrap();
    }
    for who in ["otto", "nora", "mallory"] {
        people::store_person(&pod.store, vector_person(who)).unwrap();
    }
    Rig { pod, _dir: dir }
}

pub(super) async fn rig() -> Rig {
    rig_with(|_| {}).await
}

pub(super) fn local_account(username: &str, guid: &str, key: &RsaPrivateKey) -> Account {
    crate::testing::account(username)
        .guid(guid)
        .key(key)
        .aspects(&["Friends", "Work"])
        .build()
}

/// A contact for `id` with both flags and aspects as given.
pub(super) fn contact(id: &str, sharing: bool, receiving: bool, aspects: &[&str]) -> ContactData {
    ContactData {
        diaspora_id: id.into(),
        person_guid: None,
        person_name: Some(format!("{id} as known")),
        public_key: None,
        sharing,
        receiving,
        aspects: aspects.iter().map(|a| a.to_string()).collect(),
    }
}

/// Everything a move could change.
#[derive(Debug, PartialEq)]
pub(super) struct Snapshot {
    accounts: Vec<Account>,
    people: Vec<Person>,
    moves: Vec<Option<ReceivedMove>>,
    resends: Vec<Resend>,
    outbox: usize,
}

impl Rig {
    pub fn account(&self, username: &str) -> Account {
        AccountStore::account(&self.pod.store, username).unwrap().unwrap()
    }

    pub fn change(&self, username: &str, change: impl Fn(&mut Account)) {
        self.pod
            .store
            .transaction(|tx| {
                let before = AccountTx::account(tx, username)?.unwrap();
                let mut after = before.clone();
                change(&mut after);
                tx.put_account(Some(&before), &after)
            })
            .unwrap();
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            accounts: AccountStore::accounts(&self.pod.store).unwrap(),
            people: self.pod.store.people().unwrap(),
            moves: [OTTO, NORA, MALLORY]
                .iter()
                .map(|id| received(&self.pod, id).unwrap())
                .collect(),
            resends: self.pod.store.waiting_resends(usize::MAX).unwrap(),
            outbox: crate::delivery::OutboxStore::scheduled(&self.pod.store),
        }
    }

    /// The pending deliveries of `username`'s contact messages to `id`.
    pub fn contact_messages(&self, username: &str, id: &str) -> Vec<Delivery> {
        crate::delivery::topic_deliveries(&self.pod.store, &sharing::topic(username, id))
            .unwrap()
            .into_iter()
            .filter(|d| d.state == DeliveryState::Pending)
            .collect()
    }

    pub fn body(&self, delivery: &Delivery) -> Vec<u8> {
        crate::delivery::body_of(&self.pod.store, delivery).unwrap().unwrap()
    }
}

/// The profile a move to `new_id` carries.
pub(super) fn profile_of(new_id: &str) -> Profile {
    Profile {
        author: new_id.into(),
        full_name: Some("Nora Newly".into()),
        first_name: Some("Nora".into()),
        last_name: Some("Newly".into()),
        image_url: Some("/uploads/nora-large.png".into()),
        image_url_small: Some("https://cdn.example/nora-small.png".into()),
        searchable: Some(false),
        ..Profile::default()
    }
}

/// The form diaspora* sends: author = old, envelope by the old key, `signature` by the
/// new key; `old_identity` written out or left out.
pub(super) fn old_author_move(
    old: &str,
    profile: Profile,
    envelope_key: &RsaPrivateKey,
    signature_key: &RsaPrivateKey,
    with_old_identity: bool,
) -> String {
    let mut migration = AccountMigration::new_signed(old, profile, signature_key);
    if !with_old_identity {
        migration.old_identity = None;
    }
    MagicEnvelope::sign(&migration.to_xml(), old, envelope_key).to_xml()
}

/// The other form: author = new (= profile author), `old_identity` = old, envelope by
/// the new key, `signature` by the old key.
pub(super) fn new_author_move(
    old: Option<&str>,
    author: &str,
    profile: Profile,
    envelope_key: &RsaPrivateKey,
    signature_key: &RsaPrivateKey,
) -> String {
    let text = AccountMigration::signed_text(old.unwrap_or(author), &profile.author);
    let migration = AccountMigration {
        author: author.into(),
        profile,
        signature: sign_base64(signature_key, text.as_bytes()),
        old_identity: old.map(str::to_string),
    };
    MagicEnvelope::sign(&migration.to_xml(), author, envelope_key).to_xml()
}

/// Opens a queued contact message as nora would: decrypted with her key, verified with
/// the author's key.
pub(super) fn open_as_nora(body: &[u8], author_key: &RsaPrivateKey) -> Contact {
    let xml = envelope::decrypt(std::str::from_utf8(body).unwrap(), &vector_key("nora"), MAX).unwrap();
    let envelope = MagicEnvelope::parse(&xml).unwrap();
    envelope.verify(&author_key.to_public_key()).unwrap();
    match parse_entity(envelope.payload_str().unwrap()).unwrap() {
        Entity::Contact(contact) => {
            assert_eq!(envelope.key_id(), contact.author);
            contact
        }
        other => panic!("not a contact: {other:?}"),
    }
}

// ----- both forms -----

#[tokio::test]
async fn a_move_in_either_form_re_points_the_contact() {
    let (otto, nora) = (vector_key("otto"), vector_key("nora"));
    let forms = [
        (
            "author = old, old_identity written",
            old_author_move(OTTO, profile_of(NORA), &otto, &nora, true),
        ),
        (
            "author = old, no old_identity",
            old_author_move(OTTO, profile_of(NORA), &otto, &nora, false),
        ),
        (
            "author = new, with old_identity",
            new_author_move(Some(OTTO), NORA, profile_of(NORA), &nora, &otto),
        ),
    ];
    for (form, xml) in forms {
        let rig = rig().await;
        rig.change("alice", |a| a.contacts.push(contact(OTTO, false, true, &["Friends"])));
        assert_eq!(
            receive_public(&rig.pod, &xml).await.unwrap(),
            Received::Applied,
            "{form}"
        );
        let alice = rig.account("alice");
        assert_eq!(alice.contacts.len(), 1, "{form}");
        let moved = &alice.contacts[0];
        assert_eq!(moved.diaspora_id, NORA, "{form}");
        assert_eq!(moved.aspects, ["Friends"], "{form}");
        assert!(moved.receiving && !moved.sharing, "{form}: the flags stay");
        assert_eq!(moved.person_guid.as_deref(), Some(NORA_GUID), "{form}");
        assert_eq!(received(&rig.pod, OTTO).unwrap().unwrap().new_id, NORA, "{form}");
        assert_eq!(
            rig.pod.store.person(OTTO).unwrap().unwrap().moved_to.as_deref(),
            Some(NORA),
            "{form}"
        );
        assert_eq!(
            receive_public(&rig.pod, &xml).await.unwrap(),
            Received::AlreadyKnown,
            "{form}: the same move again"
        );
    }
}

// ----- blocks -----

#[tokio::test]
async fn blocks_of_the_old_identity_block_the_new_one() {
    let rig = rig().await;
    rig.change("alice", |a| {
        a.blocks = vec!["someone@else.example".into(), OTTO.into(), NORA.into()];
    });
    rig.change("carol", |a| a.blocks = vec![OTTO.into(), "x@y.example".into()]);
    let before_dave = rig.account("dave");
    let xml = old_author_move(OTTO, profile_of(NORA), &vector_key("otto"), &vector_key("nora"), true);
    receive_public(&rig.pod, &xml).await.unwrap();
    assert_eq!(
        rig.account("alice").blocks,
        ["someone@else.example", NORA],
        "the new identity is blocked once"
    );
    assert_eq!(
        rig.account("carol").blocks,
        [NORA, "x@y.example"],
        "in the old one's place"
    );
    assert_eq!(
        rig.account("dave"),
        before_dave,
        "a user who blocked neither is untouched"
    );
}

// ----- contacts re-sent -----

#[tokio::test]
async fn each_user_the_mover_shares_with_sends_the_new_identity_their_contact() {
    let rig = rig().await;
    // alice: mutual. carol: the mover shares with her, she does not share back, and she
    // blocks the mover. dave: he shares with the mover, who does not share with him.
    rig.change("alice", |a| a.contacts.push(contact(OTTO, true, true, &["Friends"])));
    rig.change("carol", |a| {
        a.contacts.push(contact(OTTO, true, false, &[]));
        a.blocks.push(OTTO.into());
    });
    rig.change("dave", |a| a.contacts.push(contact(OTTO, false, true, &["Work"])));
    let xml = old_author_move(OTTO, profile_of(NORA), &vector_key("otto"), &vector_key("nora"), true);
    receive_public(&rig.pod, &xml).await.unwrap();

    let alice = rig.contact_messages("alice", NORA);
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].origin, "https://new.example");
    assert_eq!(alice[0].path, format!("/receive/users/{NORA_GUID}"));
    assert_eq!(alice[0].content_type, "application/json");
    let sent = open_as_nora(&rig.body(&alice[0]), &vector_key("alice"));
    assert_eq!(
        sent,
        Contact::start_sharing(ALICE, NORA),
        "sharing = following = receiving"
    );

    let carol = rig.contact_messages("carol", NORA);
    assert_eq!(carol.len(), 1);
    let sent = open_as_nora(&rig.body(&carol[0]), key_2048());
    assert_eq!(sent.author, "carol@lifeboat.example");
    assert!(!sent.sharing && !sent.following && sent.blocking, "{sent:?}");

    assert!(
        rig.contact_messages("dave", NORA).is_empty(),
        "the mover does not share with dave: diaspora* sends nothing for him"
    );
    assert!(rig.pod.store.waiting_resends(10).unwrap().is_empty(), "all sent");
}

#[tokio::test]
async fn a_re_send_waits_while_the_users_private_key_rate_limit_is_spent() {
    let rig = rig_with(|c| c.federation.receive_private_per_account_per_minute = 1).await;
    rig.change("alice", |a| a.contacts.push(contact(OTTO, true, true, &["Friends"])));
    assert!(
        rig.pod.limits.receive_private_per_account.allow("alice"),
        "the one token"
    );
    let xml = old_author_move(OTTO, profile_of(NORA), &vector_key("otto"), &vector_key("nora"), true);
    receive_public(&rig.pod, &xml).await.unwrap();
    assert_eq!(rig.account("alice").contacts[0].diaspora_id, NORA, "the move applies");
    assert!(rig.contact_messages("alice", NORA).is_empty(), "nothing signed yet");
    assert_eq!(
        rig.pod.store.waiting_resends(10).unwrap(),
        [Resend {
            username: "alice".into(),
            new_id: NORA.into()
        }],
        "the re-send waits, durably, for the minute loop"
    );
}

#[tokio::test]
async fn a_re_send_to_an_account_of_this_pod_is_recorded_there() {
    let rig = rig().await;
    let nora2 = local_account("nora2", "n02a2000000000000000000000000n02", other_key_2048());
    rig.pod.store.transaction(|tx| tx.put_account(None, &nora2)).unwrap();
    rig.change("alice", |a| a.contacts.push(contact(OTTO, true, true, &["Friends"])));
    let new_id = format!("nora2@{HOST}");
    let xml = old_author_move(OTTO, profile_of(&new_id), &vector_key("otto"), other_key_2048(), true);
    assert_eq!(receive_public(&rig.pod, &xml).await.unwrap(), Received::Applied);
    assert_eq!(rig.account("alice").contacts[0].diaspora_id, new_id);
    let recorded = rig.account("nora2").contacts;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].diaspora_id, ALICE);
    assert!(recorded[0].sharing && !recorded[0].receiving, "alice shares with nora2");
    assert_eq!(
        crate::delivery::OutboxStore::scheduled(&rig.pod.store),
        0,
        "nothing goes over the network"
    );
}

// ----- the profile -----

#[tokio::test]
async fn the_entitys_profile_updates_the_stored_person() {
    let rig = rig().await;
    let discovered = rig.pod.store.person(NORA).unwrap().unwrap();
    let xml = new_author_move(
        Some(OTTO),
        NORA,
        profile_of(NORA),
        &vector_key("nora"),
        &vector_key("otto"),
    );
    receive_public(&rig.pod, &xml).await.unwrap();
    let stored = rig.pod.store.person(NORA).unwrap().unwrap();
    assert_eq!(stored.full_name, "Nora Newly");
    assert_eq!(stored.first_name, "Nora");
    assert_eq!(stored.last_name, "Newly");
    assert!(!stored.searchable);
    assert_eq!(
        stored.photo_url, "https://new.example/uploads/nora-large.png",
        "a path, resolved"
    );
    assert_eq!(stored.photo_small_url, "https://cdn.example/nora-small.png");
    assert_eq!(
        stored.photo_medium_url, discovered.photo_medium_url,
        "absent: the discovered one"
    );
    assert_eq!(stored.public_key_pem, discovered.public_key_pem);
    assert_eq!(stored.guid, NORA_GUID);
}

// ----- duplicates -----

#[tokio::test]
async fn an_existing_contact_for_the_new_identity_stays_as_it_is_and_the_old_one_goes() {
    let rig = rig().await;
    rig.change("alice", |a| {
        a.contacts.push(contact(OTTO, true, true, &["Friends"]));
        a.contacts.push(contact(NORA, false, true, &["Work"]));
    });
    let kept = rig.account("alice").contacts[1].clone();
    let xml = old_author_move(OTTO, profile_of(NORA), &vector_key("otto"), &vector_key("nora"), true);
    receive_public(&rig.pod, &xml).await.unwrap();
    assert_eq!(
        rig.account("alice").contacts,
        [kept],
        "diaspora*'s eliminate_person_duplicates: nothing of the old contact is merged"
    );
    assert!(
        rig.contact_messages("alice", NORA).is_empty(),
        "the kept contact does not say nora shares with alice"
    );
}

// ----- forgeries -----

#[tokio::test]
async fn forged_moves_are_refused_and_change_nothing() {
    let (otto, nora, mallory) = (vector_key("otto"), vector_key("nora"), vector_key("mallory"));
    let unauthorized = |e: &Error| matches!(e, Error::Unauthorized(_));
    let bad = |e: &Error| matches!(e, Error::BadRequest(_));
    let mut to_mallory = profile_of(NORA);
    to_mallory.author = MALLORY.into();
    type Forgery<'a> = (&'a str, String, &'a dyn Fn(&Error) -> bool);
    let forged: Vec<Forgery> = vec![
        (
            "author = new, envelope signed by the wrong key",
            new_author_move(Some(OTTO), NORA, profile_of(NORA), &mallory, &otto),
            &unauthorized,
        ),
        (
            "author = new, signature by the wrong key",
            new_author_move(Some(OTTO), NORA, profile_of(NORA), &nora, &mallory),
            &unauthorized,
        ),
        (
            "author = old, envelope signed by the wrong key",
            old_author_move(OTTO, profile_of(NORA), &mallory, &nora, true),
            &unauthorized,
        ),
        (
            "author = old, signature by the wrong key",
            old_author_move(OTTO, profile_of(NORA), &otto, &mallory, true),
            &unauthorized,
        ),
        (
            "the envelope's signer is not the author",
            MagicEnvelope::sign(
                &AccountMigration::new_signed(OTTO, profile_of(NORA), &nora).to_xml(),
                NORA,
                &nora,
            )
            .to_xml(),
            &bad,
        ),
        (
            "author = new without old_identity",
            new_author_move(None, NORA, profile_of(NORA), &nora, &otto),
            &bad,
        ),
        (
            "the profile's author is not the new identity (the author)",
            new_author_move(Some(OTTO), NORA, to_mallory, &nora, &otto),
            &bad,
        ),
        (
            "author = old with an old_identity naming someone else",
            {
                let mut m = AccountMigration::new_signed(OTTO, profile_of(NORA), &nora);
                m.old_identity = Some(MALLORY.into());
                MagicEnvelope::sign(&m.to_xml(), OTTO, &otto).to_xml()
            },
            &bad,
        ),
    ];
    for (what, xml, expected) in forged {
        let rig = rig().await;
        rig.change("alice", |a| {
            a.contacts.push(contact(OTTO, true, true, &["Friends"]));
            a.blocks.push(OTTO.into());
        });
        let before = rig.snapshot();
        let err = receive_public(&rig.pod, &xml).await.unwrap_err();
        assert!(expected(&err), "{what}: {err:?}");
        assert_eq!(rig.snapshot(), before, "{what}: nothing changed");
    }
}
