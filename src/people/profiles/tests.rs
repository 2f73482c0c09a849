//! `profile` and `account_deletion` on a real store in a temporary folder, with the
//! people store filled in advance (no network): received publicly and privately, the
//! refusals, what sharing and deleting an account send, and a closed account's avatar.

use std::sync::Arc;

use rsa::RsaPrivateKey;

use super::*;
use crate::account::{self, credentials, AccountTx, Avatar, Closed, ContactData, ProfileData};
use crate::arrivals::received::{receive_public as receive_at_public, Received as Public};
use crate::config::Config;
use crate::delivery::{Delivery, DeliveryState};
use crate::federation::entities::{parse_entity, Contact};
use crate::federation::signature::public_key_to_pem;
use crate::federation::test_support::{key_2048, other_key_2048, vector_key_pair};
use crate::sharing::{self, Received as Private};
use crate::store::Store;
use crate::testing::{ALICE, BOB, BOB_GUID};

const PASSWORD: &str = "alice's long password";
const MAX: usize = 1 << 20;

struct Rig {
    pod: Arc<Pod>,
    _dir: tempfile::TempDir,
}

fn password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| credentials::hash_password(PASSWORD).unwrap())
}

fn local(username: &str, guid: &str, key: &RsaPrivateKey, contacts: &[&str]) -> Account {
    crate::testing::account(username)
        .guid(guid)
        .key(key)
        .password_hash(password_hash())
        .profile(ProfileData {
            first_name: Some(username.into()),
            bio: Some("private things".into()),
            searchable: true,
            ..Default::default()
        })
        .contacts(
            contacts
                .iter()
                .map(|id| ContactData {
                    diaspora_id: id.to_string(),
                    person_name: Some("Bob".into()),
                    sharing: true,
                    receiving: true,
                    aspects: vec!["Friends".into()],
                    ..Default::default()
                })
                .collect(),
        )
        .build()
}

fn bob() -> Person {
    Person {
        diaspora_id: BOB.into(),
        guid: BOB_GUID.into(),
        public_key_pem: public_key_to_pem(&other_key_2048().to_public_key()),
        full_name: "Bob".into(),
        first_name: "Bob".into(),
        last_name: String::new(),
        photo_url: "https://remote.example/old.png".into(),
        photo_medium_url: "https://remote.example/old.png".into(),
        photo_small_url: "https://remote.example/old.png".into(),
        searchable: true,
        pod_origin: "https://remote.example".into(),
        fetched_unix: now_unix(),
        moved_to: None,
        closed_unix: None,
    }
}

/// alice (key_2048) and carol (the vectors' key) share with bob (other_key_2048, stored);
/// carol also has alice among her contacts.
fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.public_url = Some("https://lifeboat.example".into());
    let pod = Pod::new(config, Store::open(dir.path()).unwrap()).unwrap();
    let alice = local("alice", "a11ce0000000000000000000000000a1", key_2048(), &[BOB]);
    let carol = local(
        "carol",
        "ca401000000000000000000000000ca4",
        &vector_key_pair().0,
        &[BOB, ALICE],
    );
    pod.store
        .transaction(|tx| {
            tx.put_account(None, &alice)?;
            tx.put_account(None, &carol)
        })
        .unwrap();
    people::store_person(&pod.store, bob()).unwrap();
    Rig { pod, _dir: dir }
}

impl Rig {
    fn account(&self, username: &str) -> Account {
        AccountStore::account(&self.pod.store, username).unwrap().unwrap()
    }

    fn bob(&self) -> Person {
        self.pod.store.person(BOB).unwrap().unwrap()
    }

    fn contact_ids(&self, username: &str) -> Vec<String> {
        self.account(username)
            .contacts
            .into_iter()
            .map(|c| c.diaspora_id)
            .collect()
    }

    async fn public(&self, xml: &str) -> Result<Public> {
        receive_at_public(&self.pod, xml).await
    }

    async fn private(&self, body: &[u8]) -> Private {
        let guid = self.account("alice").guid;
        sharing::receive_private(&self.pod, "10.0.0.1", &guid, body)
            .await
            .unwrap()
    }

    fn deliveries(&self, topic: &str) -> Vec<Delivery> {
        crate::delivery::topic_deliveries(&self.pod.store, topic)
            .unwrap()
            .into_iter()
            .filter(|d| d.state == DeliveryState::Pending)
            .collect()
    }

    fn body(&self, delivery: &Delivery) -> String {
        String::from_utf8(crate::delivery::body_of(&self.pod.store, delivery).unwrap().unwrap()).unwrap()
    }
}

fn public_envelope(entity_xml: &str, signer: &str, key: &RsaPrivateKey) -> String {
    MagicEnvelope::sign(entity_xml, signer, key).to_xml()
}

fn private_for_alice(entity_xml: &str, signer: &str, key: &RsaPrivateKey) -> Vec<u8> {
    envelope::encrypt_for(&public_envelope(entity_xml, signer, key), &key_2048().to_public_key())
        .unwrap()
        .into_bytes()
}

fn bobs_profile() -> Profile {
    Profile {
        author: BOB.into(),
        first_name: Some("Robert".into()),
        last_name: Some("Builder".into()),
        image_url: Some("/uploads/large.png".into()),
        image_url_small: Some("https://cdn.example/small.png".into()),
        bio: Some("builds".into()),
        searchable: Some(false),
        public: Some(true),
        ..Default::default()
    }
}

fn deletion_of(author: &str) -> String {
    AccountDeletion { author: author.into() }.to_xml()
}

// ----- receiving -----

#[tokio::test]
async fn a_public_profile_updates_the_person_and_every_local_contact_of_theirs() {
    let rig = rig();
    let before = rig.bob();
    let xml = public_envelope(&bobs_profile().to_xml(), BOB, other_key_2048());
    assert_eq!(rig.public(&xml).await.unwrap(), Public::Applied);
    let bob = rig.bob();
    assert_eq!(
        (bob.full_name.as_str(), bob.first_name.as_str(), bob.last_name.as_str()),
        ("Robert Builder", "Robert", "Builder")
    );
    assert_eq!(
        bob.photo_url, "https://remote.example/uploads/large.png",
        "resolved against their pod"
    );
    assert_eq!(
        bob.photo_medium_url, bob.photo_url,
        "medium falls back to the large one"
    );
    assert_eq!(bob.photo_small_url, "https://cdn.example/small.png");
    assert!(!bob.searchable);
    assert_eq!(
        (&bob.public_key_pem, &bob.guid, &bob.pod_origin, bob.fetched_unix),
        (
            &before.public_key_pem,
            &before.guid,
            &before.pod_origin,
            before.fetched_unix
        ),
        "a profile never touches the key, guid or pod"
    );
    for username in ["alice", "carol"] {
        let account = rig.account(username);
        let contact = account.contacts.iter().find(|c| c.diaspora_id == BOB).unwrap();
        assert_eq!(contact.person_name.as_deref(), Some("Robert Builder"), "{username}");
        assert!(contact.sharing && contact.receiving, "flags stay");
    }
    // The same again changes nothing.
    assert!(matches!(rig.public(&xml).await.unwrap(), Public::Ignored(_)));

    // A profile with a full name and no picture: the name is used, the pictures go.
    let plain = Profile {
        author: BOB.into(),
        full_name: Some("Bob the Builder".into()),
        ..Default::default()
    };
    let xml = public_envelope(&plain.to_xml(), BOB, other_key_2048());
    assert_eq!(rig.public(&xml).await.unwrap(), Public::Applied);
    let bob = rig.bob();
    assert_eq!(bob.display_name(), "Bob the Builder");
    assert_eq!((bob.photo_url.as_str(), bob.photo_small_url.as_str()), ("", ""));
    assert!(bob.searchable, "diaspora*'s default when absent");
}

#[tokio::test]
async fn a_private_profile_arrives_at_receive_users() {
    let rig = rig();
    let profile = Profile {
        public: Some(false),
        ..bobs_profile()
    };
    let outcome = rig
        .private(&private_for_alice(&profile.to_xml(), BOB, other_key_2048()))
        .await;
    assert_eq!(outcome, Private::Updated);
    assert_eq!(rig.bob().full_name, "Robert Builder");
    assert_eq!(
        rig.account("carol").contacts[0].person_name.as_deref(),
        Some("Robert Builder"),
        "every local contact of bob, not only the recipient's"
    );
}

#[tokio::test]
async fn profiles_that_do_not_verify_or_break_the_rules_change_nothing() {
    let rig = rig();
    let (bob, alice, carol) = (rig.bob(), rig.account("alice"), rig.account("carol"));
    let forged = public_envelope(&bobs_profile().to_xml(), BOB, key_2048());
    assert!(matches!(rig.public(&forged).await, Err(Error::Unauthorized(_))));
    let other_author = Profile {
        author: "carol@remote.example".into(),
        ..bobs_profile()
    };
    let xml = public_envelope(&other_author.to_xml(), BOB, other_key_2048());
    let err = rig.public(&xml).await.unwrap_err();
    assert!(
        matches!(err, Error::BadRequest(ref m) if m.contains("not its signer")),
        "{err:?}"
    );
    let not_public = Profile {
        public: Some(false),
        ..bobs_profile()
    };
    let xml = public_envelope(&not_public.to_xml(), BOB, other_key_2048());
    let err = rig.public(&xml).await.unwrap_err();
    assert!(
        matches!(err, Error::BadRequest(ref m) if m.contains("not public")),
        "{err:?}"
    );
    let too_long = Profile {
        first_name: Some("x".repeat(33)),
        ..bobs_profile()
    };
    let xml = public_envelope(&too_long.to_xml(), BOB, other_key_2048());
    let err = rig.public(&xml).await.unwrap_err();
    assert!(matches!(err, Error::BadRequest(ref m) if m.contains("32")), "{err:?}");
    let stranger = Profile {
        author: "zed@remote.invalid".into(),
        ..Default::default()
    };
    let xml = public_envelope(&stranger.to_xml(), "zed@remote.invalid", key_2048());
    assert!(matches!(rig.public(&xml).await, Err(Error::Unauthorized(_))));
    let outcome = rig
        .private(&private_for_alice(&other_author.to_xml(), BOB, other_key_2048()))
        .await;
    assert!(
        matches!(outcome, Private::Refused(ref why) if why.contains("not its signer")),
        "{outcome:?}"
    );
    // A profile claiming this pod's own account is not taken from outside.
    let mine = Profile {
        author: ALICE.into(),
        first_name: Some("Mallory".into()),
        ..Default::default()
    };
    let xml = public_envelope(&mine.to_xml(), ALICE, other_key_2048());
    assert!(matches!(rig.public(&xml).await.unwrap(), Public::Ignored(_)));

    assert_eq!(rig.bob(), bob);
    assert_eq!(rig.account("alice"), alice);
    assert_eq!(rig.account("carol"), carol);
}

#[tokio::test]
async fn an_account_deletion_removes_the_person_everywhere_and_they_are_not_added_again() {
    let rig = rig();
    let forged = public_envelope(&deletion_of(BOB), BOB, key_2048());
    assert!(matches!(rig.public(&forged).await, Err(Error::Unauthorized(_))));
    let not_bobs = public_envelope(&deletion_of("dan@remote.example"), BOB, other_key_2048());
    assert!(matches!(rig.public(&not_bobs).await, Err(Error::BadRequest(_))));
    assert_eq!(rig.contact_ids("alice"), [BOB]);
    assert_eq!(rig.bob().closed_unix, None);

    let xml = public_envelope(&deletion_of(BOB), BOB, other_key_2048());
    assert_eq!(rig.public(&xml).await.unwrap(), Public::Applied);
    assert!(rig.contact_ids("alice").is_empty());
    assert_eq!(rig.contact_ids("carol"), [ALICE]);
    assert!(rig.bob().closed_unix.is_some());
    assert!(
        crate::backup::home::SyncStore::nudges(&rig.pod.store)
            .unwrap()
            .iter()
            .any(|(username, _)| username == "alice"),
        "the changed archive is queued for a backup"
    );

    // Again, or anything else from bob: nothing changes, nobody adds bob again.
    assert!(matches!(rig.public(&xml).await.unwrap(), Public::Ignored(_)));
    let contact = Contact::start_sharing(BOB, ALICE).to_xml();
    let outcome = rig.private(&private_for_alice(&contact, BOB, other_key_2048())).await;
    assert!(
        matches!(outcome, Private::Ignored(ref why) if why.contains("closed")),
        "{outcome:?}"
    );
    assert!(rig.contact_ids("alice").is_empty());
    let profile = public_envelope(&bobs_profile().to_xml(), BOB, other_key_2048());
    assert!(matches!(rig.public(&profile).await.unwrap(), Public::Ignored(_)));
    assert_eq!(rig.bob().full_name, "Bob");
    let err = sharing::add_contact(&rig.pod, &rig.account("alice"), BOB, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Gone(_)), "{err:?}");
    assert!(rig.contact_ids("alice").is_empty());
}

#[tokio::test]
async fn a_private_account_deletion_applies_as_well() {
    let rig = rig();
    let outcome = rig
        .private(&private_for_alice(&deletion_of(BOB), BOB, other_key_2048()))
        .await;
    assert_eq!(outcome, Private::Updated);
    assert!(rig.contact_ids("carol") == [ALICE] && rig.contact_ids("alice").is_empty());
}

// ----- sending -----

/// Opens a private delivery as bob and returns the entity inside, checking that alice
/// signed it.
fn open_as_bob(body: &str) -> Entity {
    let xml = envelope::decrypt(body, other_key_2048(), MAX).unwrap();
    let envelope = MagicEnvelope::parse(&xml).unwrap();
    assert_eq!(envelope.key_id(), ALICE);
    envelope.verify(&key_2048().to_public_key()).unwrap();
    parse_entity(envelope.payload_str().unwrap()).unwrap()
}

/// Checks a public envelope signed by alice and returns its entity.
fn open_public(xml: &str) -> Entity {
    let envelope = MagicEnvelope::parse(xml).unwrap();
    assert_eq!(envelope.key_id(), ALICE);
    envelope.verify(&key_2048().to_public_key()).unwrap();
    parse_entity(envelope.payload_str().unwrap()).unwrap()
}

#[tokio::test]
async fn starting_to_share_sends_the_profile_with_the_contact() {
    let rig = rig();
    rig.pod
        .store
        .transaction(|tx| {
            let before = AccountTx::account(tx, "alice")?.unwrap();
            let mut after = before.clone();
            after.contacts.clear();
            tx.put_account(Some(&before), &after)
        })
        .unwrap();
    sharing::add_contact(&rig.pod, &rig.account("alice"), BOB, None)
        .await
        .unwrap();
    let contacts = rig.deliveries(&sharing::topic("alice", BOB));
    assert_eq!(contacts.len(), 1);
    let profiles = rig.deliveries(&profile_topic("alice", BOB));
    assert_eq!(
        profiles.len(),
        1,
        "the profile goes with the contact, as share_with sends it"
    );
    let delivery = &profiles[0];
    assert_eq!(
        route(delivery),
        (
            "https://remote.example",
            "/receive/users/0123456789abcdef0123456789abcdef",
            "application/json"
        ),
        "a profile that is not public goes encrypted to bob"
    );
    match open_as_bob(&rig.body(delivery)) {
        Entity::Profile(profile) => {
            assert_eq!(profile.author, ALICE);
            assert_eq!(profile.first_name.as_deref(), Some("alice"));
            assert_eq!(profile.bio.as_deref(), Some("private things"));
            assert_eq!(profile.public, Some(false));
        }
        other => panic!("{other:?}"),
    }

    // With a public profile: bob shares with alice, alice stops, then puts bob into an
    // aspect again: the profile goes publicly to bob's pod.
    let contact = Contact::start_sharing(BOB, ALICE).to_xml();
    rig.private(&private_for_alice(&contact, BOB, other_key_2048())).await;
    sharing::remove_contact(&rig.pod, &rig.account("alice"), BOB)
        .await
        .unwrap();
    account::update(&rig.pod, "alice", |a| {
        a.profile.public = true;
        Ok(())
    })
    .await
    .unwrap();
    sharing::set_aspects(&rig.pod, &rig.account("alice"), BOB, vec!["Friends".into()])
        .await
        .unwrap();
    let profiles = rig.deliveries(&profile_topic("alice", BOB));
    assert_eq!(profiles.len(), 1, "the newer profile replaces the one still waiting");
    let delivery = &profiles[0];
    assert_eq!(
        route(delivery),
        (
            "https://remote.example",
            "/receive/public",
            "application/magic-envelope+xml"
        )
    );
    match open_public(&rig.body(delivery)) {
        Entity::Profile(profile) => assert_eq!((profile.author.as_str(), profile.public), (ALICE, Some(true))),
        other => panic!("{other:?}"),
    }
    assert_eq!(rig.deliveries(&sharing::topic("alice", BOB)).len(), 1);
}

#[tokio::test]
async fn deleting_an_account_sends_a_signed_account_deletion_to_its_contacts_pods() {
    let rig = rig();
    account::update(&rig.pod, "alice", |a| {
        a.contacts.push(ContactData {
            diaspora_id: "dan@other.example:8443".into(),
            sharing: true,
            ..Default::default()
        });
        a.contacts.push(ContactData {
            diaspora_id: "carol@lifeboat.example".into(),
            sharing: true,
            ..Default::default()
        });
        a.avatar = Some(Avatar {
            content_type: "image/png".into(),
            data: b"\x89PNG\r\n\x1a\nnot really".to_vec(),
        });
        Ok(())
    })
    .await
    .unwrap();
    assert!(
        crate::people::profiles::delete_account(&rig.pod, "alice", "wrong password")
            .await
            .is_err()
    );
    assert!(rig.deliveries(&deletion_topic("alice")).is_empty());

    crate::people::profiles::delete_account(&rig.pod, "alice", PASSWORD)
        .await
        .unwrap();
    let alice = rig.account("alice");
    assert!(alice.closed.is_some() && alice.private_key_pem.is_empty() && alice.contacts.is_empty());
    assert!(alice.avatar.is_some(), "the avatar stays for 30 days");
    let deliveries = rig.deliveries(&deletion_topic("alice"));
    let mut origins: Vec<&str> = deliveries.iter().map(|d| d.origin.as_str()).collect();
    origins.sort();
    assert_eq!(
        origins,
        ["https://other.example:8443", "https://remote.example"],
        "every contact's pod, never this one"
    );
    for delivery in &deliveries {
        assert_eq!(
            (delivery.path.as_str(), delivery.content_type.as_str()),
            ("/receive/public", "application/magic-envelope+xml")
        );
        match open_public(&rig.body(delivery)) {
            Entity::AccountDeletion(deletion) => assert_eq!(deletion.author, ALICE),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(rig.contact_ids("carol"), [BOB], "local users lose alice too");
}

#[tokio::test]
async fn a_closed_accounts_avatar_is_served_30_days_then_purged() {
    let rig = rig();
    let now = now_unix();
    let png = b"\x89PNG\r\n\x1a\nnot really".to_vec();
    for (username, closed_days_ago) in [("alice", 29), ("carol", 31)] {
        let png = png.clone();
        rig.pod
            .store
            .transaction(|tx| {
                let before = AccountTx::account(tx, username)?.unwrap();
                let mut after = before.clone();
                account::wipe(&mut after, None);
                after.avatar = Some(Avatar {
                    content_type: "image/png".into(),
                    data: png.clone(),
                });
                after.closed = Some(Closed {
                    at_unix: now - closed_days_ago * 86400,
                    moved_to: None,
                });
                tx.put_account(Some(&before), &after)
            })
            .unwrap();
    }
    let (alice, carol) = (rig.account("alice"), rig.account("carol"));
    let served = crate::web::discovery::avatar(&rig.pod, &alice.guid).unwrap();
    assert_eq!(served.body().as_ref(), png.as_slice());
    assert_eq!(served.headers()["content-type"], "image/png");
    assert!(matches!(
        crate::web::discovery::avatar(&rig.pod, &carol.guid),
        Err(Error::NotFound(_))
    ));

    assert_eq!(account::purge_closed_avatars(&rig.pod, now).await.unwrap(), 1);
    assert!(rig.account("carol").avatar.is_none());
    assert!(rig.account("alice").avatar.is_some());
    assert_eq!(account::purge_closed_avatars(&rig.pod, now).await.unwrap(), 0);
    assert_eq!(
        account::purge_closed_avatars(&rig.pod, now + 86400).await.unwrap(),
        1,
        "alice's goes a day later"
    );
    assert!(matches!(
        crate::web::discovery::avatar(&rig.pod, &alice.guid),
        Err(Error::NotFound(_))
    ));
}

// ----- the outputs diaspora_federation judged (tests/reference/lifeboat-output) -----

#[test]
fn the_outputs_diaspora_federation_accepted_still_open_here() {
    use crate::federation::signature::{private_key_from_pem, public_key_from_pem};
    use crate::federation::test_support::reference;
    let keys: serde_json::Value = serde_json::from_str(&reference("lifeboat-output/keys.json")).unwrap();
    let (author, pem) = keys.as_object().unwrap().iter().next().unwrap();
    let alice_key = public_key_from_pem(pem.as_str().unwrap()).unwrap();
    let bob_key = private_key_from_pem(&reference("lifeboat-output/bob.private.pem")).unwrap();
    let opened = |xml: &str, expected: &str| {
        let envelope = MagicEnvelope::parse(xml).unwrap();
        envelope.verify(&alice_key).unwrap();
        let answer: serde_json::Value =
            serde_json::from_str(&reference(&format!("lifeboat-output/{expected}.probe.json"))).unwrap();
        assert_eq!(answer["ok"], true, "{expected}: {answer}");
        assert_eq!(answer["sender"], author.as_str());
        parse_entity(envelope.payload_str().unwrap()).unwrap()
    };
    let private = envelope::decrypt(&reference("lifeboat-output/profile.private.json"), &bob_key, MAX).unwrap();
    assert!(matches!(opened(&private, "profile.private"), Entity::Profile(p) if p.public == Some(false)));
    assert!(matches!(
        opened(&reference("lifeboat-output/profile.public.xml"), "profile.public"),
        Entity::Profile(p) if p.public == Some(true)
    ));
    assert!(matches!(
        opened(&reference("lifeboat-output/account_deletion.public.xml"), "account_deletion.public"),
        Entity::AccountDeletion(d) if d.author == *author
    ));
    let links: serde_json::Value = serde_json::from_str(&reference("lifeboat-output/webfinger.probe.json")).unwrap();
    assert!(links["salmon_url"].as_str().unwrap().contains("/receive/users/"));
    assert!(links["profile_url"].as_str().unwrap().ends_with("/u/alice"));
    let person: serde_json::Value = serde_json::from_str(&reference("lifeboat-output/person.probe.json")).unwrap();
    assert_eq!(person["ok"], true);
}

/// Where a delivery goes and in what form: (origin, path, content type).
fn route(delivery: &Delivery) -> (&str, &str, &str) {
    (&delivery.origin, &delivery.path, &delivery.content_type)
}
