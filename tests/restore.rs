//! The restore and move-in domain (docs/restore.md) on a real store, in-process: a
//! backup is pushed to the holder signed by its account's key and confirmed through its
//! mailed link, exactly as over HTTP; then the restore flow runs step by step. (The
//! pages, a real browser, real SMTP and several real pods are in
//! `tests/e2e/test_restore.py`.)

use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use lifeboat::account::archive::write_archive;
use lifeboat::account::{Account, AccountStore, Avatar, ContactData, ProfileData};
use lifeboat::arrivals::move_in::MoveIn;
use lifeboat::arrivals::restore::{self, Create, KeyCheck, RestoreAddress, RestoreStore, RestoreTx, Unlock};
use lifeboat::backup::holder::{ConfirmAction, PushOutcome, SlotKey, SlotStore, RESTORED_KEPT_SECS};
use lifeboat::backup::push::{push_signed_text, Fingerprint};
use lifeboat::config::Config;
use lifeboat::federation::signature::{self, private_key_to_pem, public_key_to_pem};
use lifeboat::mail::QueuedMail;
use lifeboat::passphrase::Passphrase;
use lifeboat::people::{store_person, Person};
use lifeboat::pod::Pod;
use lifeboat::sealed::{self, KdfParams, SealingKey};
use lifeboat::store::{decode, Tree};
use lifeboat::Error;
use rsa::RsaPrivateKey;
use serde_json::json;
use sha2::{Digest, Sha256};

const PASSPHRASE: &str = "violet tractor drifts under 9 quiet lanterns";
const OLD_HOST: &str = "old-pod.invalid";
const AT: &str = "2026-01-01T00:00:00Z";

fn old_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
}

fn other_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
}

fn sealing_key() -> &'static SealingKey {
    static KEY: OnceLock<SealingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SealingKey::derive(
            PASSPHRASE,
            KdfParams {
                memory_kib: 19456,
                time_cost: 2,
            },
        )
        .unwrap()
    })
}

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The account as it lived on its old pod (which does not exist: `.invalid`).
fn old_account(email: &str, key: &RsaPrivateKey) -> Account {
    lifeboat::testing::account("alice")
        .guid("0123456789abcdef0123456789abcdef")
        .email(email)
        .with(|a| {
            a.private_key_pem = private_key_to_pem(key).unwrap();
            a.public_key_pem = public_key_to_pem(&key.to_public_key());
            a.created_unix = 1_700_000_000;
            a.profile = ProfileData {
                first_name: Some("Alice".into()),
                last_name: Some("Liddell".into()),
                bio: Some("Curiouser".into()),
                searchable: true,
                tag_string: Some("#wonder".into()),
                ..Default::default()
            };
            a.aspects = vec!["Family".into(), "Friends".into()];
            a.contacts = vec![
                ContactData {
                    diaspora_id: "bob@pod-b.example".into(),
                    person_guid: Some("fedcba9876543210fedcba9876543210".into()),
                    person_name: Some("Bob".into()),
                    public_key: Some(public_key_to_pem(&other_key().to_public_key())),
                    sharing: true,
                    receiving: true,
                    aspects: vec!["Friends".into()],
                },
                ContactData {
                    diaspora_id: "carol@pod-c.example".into(),
                    receiving: true,
                    aspects: vec!["Family".into(), "Friends".into()],
                    ..Default::default()
                },
            ];
            a.followed_tags = vec!["bees".into(), "lyon".into()];
            a.blocks = vec!["spammer@spam.example".into()];
            a.verbatim_json = json!({"user": {"posts": [{"entity_type": "status_message", "entity_data": {
                "author": "alice@old-pod.invalid", "guid": "a1c6b6d09e13013a8e4d52540071a0a1",
                "created_at": "2023-05-01T09:30:00Z", "public": true, "text": "First honey of the year! #bees",
                "provider_display_name": "diaspora* web"},
                "subscribed_pods_uris": ["https://pod-b.example"]}], "relayables": []}, "top": {}})
            .to_string();
            a.known_pods = vec!["https://pod-d.example".into()];
            a.avatar = Some(Avatar {
                content_type: "image/png".into(),
                data: PNG.to_vec(),
            });
            a.backups_opted_out = false;
        })
        .build()
}

fn sealed_backup(email: &str, key: &RsaPrivateKey) -> Vec<u8> {
    let archive = write_archive(&old_account(email, key), OLD_HOST, &format!("https://{OLD_HOST}")).unwrap();
    sealed::seal(&archive, sealing_key())
}

struct Rig {
    test: lifeboat::testing::TestPod,
    pod: Arc<Pod>,
}

fn rig(tweak: impl FnOnce(&mut Config)) -> Rig {
    let test = lifeboat::testing::TestPod::with(|config| {
        config.server.public_url = Some("http://127.0.0.1:9".into());
        config.backups.allow_backups_and_migration = true;
        config.federation.allow_http = true;
        config.federation.request_timeout = lifeboat::config::Span::secs(5);
        tweak(config);
    });
    Rig {
        pod: test.pod.clone(),
        test,
    }
}

impl Rig {
    fn mails(&self) -> Vec<lifeboat::mail::Mail> {
        self.pod
            .store
            .tree(Tree::MailQueue)
            .iter()
            .map(|e| decode::<QueuedMail>(&e.unwrap().1).unwrap().mail)
            .collect()
    }

    fn token_in_last_mail(&self, marker: &str) -> String {
        let text = self.mails().last().unwrap().text.clone();
        let at = text.find(marker).expect(&text) + marker.len();
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }

    /// Pushes `lfbk` as the slot's backup number `sequence`, signed by `key`.
    async fn push(&self, email: &str, key: &RsaPrivateKey, lfbk: &[u8], sequence: u64) -> PushOutcome {
        let sha: [u8; 32] = Sha256::digest(lfbk).into();
        let text = push_signed_text(email, sequence, AT, Some(&sha));
        let body = json!({"version": 1, "email": email,
            "public_key": public_key_to_pem(&key.to_public_key()), "sequence": sequence, "created_at": AT,
            "backup": B64.encode(lfbk), "signature": signature::sign_base64(key, text.as_bytes())});
        let holder = self.test.services.holder.clone();
        holder.push(body.to_string().as_bytes()).await.unwrap()
    }

    /// Pushes a backup signed by `key` and confirms it through its mailed link.
    async fn held(&self, email: &str, key: &RsaPrivateKey, lfbk: &[u8], confirm: bool) -> SlotKey {
        let holder = self.test.services.holder.clone();
        assert_eq!(self.push(email, key, lfbk, 1).await, PushOutcome::AwaitingConfirmation);
        if confirm {
            let token = self.token_in_last_mail("/backups/confirm?token=");
            holder.decide(&token, ConfirmAction::Confirm).await.unwrap();
        }
        SlotKey {
            email: email.into(),
            fingerprint: Fingerprint(signature::fingerprint(&key.to_public_key())),
        }
    }

    async fn link(&self, email: &str) -> String {
        assert!(
            restore::send_link(&self.pod, &self.test.services.restores, email)
                .await
                .unwrap(),
            "a link is mailed"
        );
        let mail = self.mails().last().unwrap().clone();
        assert_eq!(mail.to, email);
        self.token_in_last_mail("/restore_backup/confirm?token=")
    }

    fn all_bytes_contain(&self, needle: &[u8]) -> bool {
        Tree::ALL.iter().any(|&tree| {
            self.pod
                .store
                .tree(tree)
                .iter()
                .any(|e| e.unwrap().1.windows(needle.len()).any(|w| w == needle))
        })
    }
}

/// Everyone waiting in the discovery queue, by pod.
fn queued(pod: &Pod) -> Vec<String> {
    use lifeboat::people::queue::QueueStore;
    let mut out = Vec::new();
    for (host, _) in pod.store.hosts().unwrap() {
        out.extend(pod.store.queued_on(&host).unwrap());
    }
    out
}

fn pass(text: &str) -> Passphrase {
    Passphrase::new(text.to_string())
}

/// 40 characters from the middle of the old private key's PEM: if the store held the
/// key in any form that keeps its PEM text, this would be found.
fn old_key_fragment() -> Vec<u8> {
    let pem = private_key_to_pem(old_key()).unwrap();
    pem.as_bytes()[400..440].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_becomes_an_account_with_all_its_data_in_one_unit_of_work() {
    let r = rig(|_| {});
    let email = "alice@example.org";
    let slot = r.held(email, old_key(), &sealed_backup(email, old_key()), true).await;
    let token = r.link(email).await;
    let mail = r.mails().last().unwrap().clone();
    assert!(
        mail.text.contains("one hour") && mail.text.contains("5 tries"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("What does not: photos"), "{}", mail.text);

    // Looking at the link changes nothing.
    let info = restore::link_info(&r.pod, &token).unwrap();
    assert_eq!((info.email.as_str(), info.attempts_left), (email, 5));
    assert_eq!(restore::link_info(&r.pod, &token).unwrap().attempts_left, 5);

    match restore::unlock(
        &r.pod,
        &r.test.services.restores,
        &token,
        pass("not my pass phrase at all"),
    )
    .await
    .unwrap()
    {
        Unlock::WrongPassphrase { attempts_left } => assert_eq!(attempts_left, 4),
        other => panic!("{other:?}"),
    }
    let view = match restore::unlock(&r.pod, &r.test.services.restores, &token, pass(PASSPHRASE))
        .await
        .unwrap()
    {
        Unlock::Ready(view) => view,
        other => panic!("{other:?}"),
    };
    assert_eq!(view.display_name, "Alice Liddell");
    assert_eq!(view.old_id.as_deref(), Some("alice@old-pod.invalid"));
    assert_eq!(
        (view.contacts, view.aspects, view.followed_tags, view.blocks, view.posts),
        (2, 2, 2, 1, 1)
    );
    assert!(view.avatar.is_some());
    assert!(
        r.test.services.restores.opened_count() > 0,
        "the opened archive waits in memory"
    );
    // A refusal (reserved or malformed name, short password) creates nothing.
    assert!(restore::create(
        &r.pod,
        &r.test.services.restores,
        &token,
        "Bad Name",
        "long enough password"
    )
    .await
    .is_err());
    assert!(
        restore::create(&r.pod, &r.test.services.restores, &token, "alice2", "short")
            .await
            .is_err()
    );

    // The unit of work: when one of its steps fails, none of them happened. The home pod
    // sends a newer backup after the pass phrase opened this one, so marking the slot
    // restored fails, after the link was consumed and before the account was written,
    // in the same unit.
    let newer = sealed_backup(email, old_key());
    assert_eq!(r.push(email, old_key(), &newer, 2).await, PushOutcome::Stored(2));
    let failed = restore::create(
        &r.pod,
        &r.test.services.restores,
        &token,
        "alice2",
        "a long enough password",
    )
    .await;
    assert!(
        matches!(failed, Err(Error::Conflict(ref m)) if m.contains("the backup changed on this pod")),
        "{failed:?}"
    );
    assert!(AccountStore::accounts(&r.pod.store).unwrap().is_empty(), "no account");
    assert!(
        lifeboat::arrivals::outgoing(&r.pod, "alice2").unwrap().is_none(),
        "no move"
    );
    assert!(r
        .test
        .services
        .outbox
        .topic(&lifeboat::arrivals::topic("alice2"))
        .unwrap()
        .is_empty());
    assert_eq!(
        restore::link_info(&r.pod, &token).unwrap().attempts_left,
        3,
        "the link stays"
    );
    let addresses = RestoreStore::restore_addresses(&r.pod.store).unwrap();
    assert!(
        addresses.iter().any(|(e, a)| e == email && a.current.is_some()),
        "the address still points at the link"
    );
    let holder = r.test.services.holder.clone();
    assert!(
        holder.store().slot(&slot).unwrap().unwrap().restored_at.is_none(),
        "the slot is not restored"
    );
    // The archive is asked for again, and the newer backup opens.
    assert!(matches!(
        restore::create(
            &r.pod,
            &r.test.services.restores,
            &token,
            "alice2",
            "a long enough password"
        )
        .await,
        Ok(Create::Reopen)
    ));
    assert!(matches!(
        restore::unlock(&r.pod, &r.test.services.restores, &token, pass(PASSPHRASE))
            .await
            .unwrap(),
        Unlock::Ready(_)
    ));

    let created = match restore::create(
        &r.pod,
        &r.test.services.restores,
        &token,
        "alice2",
        "a long enough password",
    )
    .await
    .unwrap()
    {
        Create::Done(created) => created,
        Create::Reopen => panic!("the archive should still be open"),
    };
    assert_eq!(created.key_check, KeyCheck::Unknown { why: None });
    let account = AccountStore::account(&r.pod.store, "alice2").unwrap().unwrap();
    assert_eq!(account.email, email);
    assert!(account.email_confirmed, "the link proved the mailbox");
    assert_eq!(account.profile.first_name.as_deref(), Some("Alice"));
    assert_eq!(account.aspects, vec!["Family", "Friends"]);
    assert_eq!(account.contacts.len(), 2);
    assert_eq!(
        account.contacts[1].aspects,
        vec!["Family", "Friends"],
        "contacts keep their aspects"
    );
    assert_eq!(account.followed_tags, vec!["bees", "lyon"]);
    assert_eq!(account.blocks, vec!["spammer@spam.example"]);
    assert_eq!(account.avatar.as_ref().unwrap().data, PNG);
    assert!(
        account.verbatim_json.contains("status_message"),
        "verbatim sections kept"
    );
    let from = account.moved_from.clone().unwrap();
    assert_eq!(from.diaspora_id, "alice@old-pod.invalid");
    assert_eq!(from.public_key_pem, public_key_to_pem(&old_key().to_public_key()));
    assert_ne!(account.public_key_pem, from.public_key_pem, "a fresh key pair");
    assert_ne!(account.guid, "0123456789abcdef0123456789abcdef", "a fresh guid");
    // The contacts are queued for discovery in the background, by pod.
    assert_eq!(queued(&r.pod), ["bob@pod-b.example", "carol@pod-c.example"]);

    // The move is signed once and queued for the old pod, the contacts' pods and known pods.
    let outgoing = lifeboat::arrivals::outgoing(&r.pod, "alice2").unwrap().unwrap();
    assert_eq!(outgoing.old_id, "alice@old-pod.invalid");
    assert_eq!(outgoing.new_id, "alice2@127.0.0.1:9");
    let deliveries = r
        .test
        .services
        .outbox
        .topic(&lifeboat::arrivals::topic("alice2"))
        .unwrap();
    let origins: Vec<&str> = deliveries.iter().map(|d| d.origin.as_str()).collect();
    for origin in [
        "https://old-pod.invalid",
        "https://pod-b.example",
        "https://pod-c.example",
        "https://pod-d.example",
    ] {
        assert!(origins.contains(&origin), "{origin} in {origins:?}");
    }
    assert!(
        !origins.contains(&"http://127.0.0.1:9"),
        "this pod did not know the old identity: nothing to apply here"
    );

    // The slot is restored, with the backup that opened; it cannot be restored again.
    let held = holder.store().slot(&slot).unwrap().unwrap();
    assert!(held.restored_at.is_some());
    assert_eq!(held.sha256, Some(Sha256::digest(&newer).into()));
    assert!(holder.restorable(email).unwrap().is_empty());
    assert!(
        !restore::send_link(&r.pod, &r.test.services.restores, email)
            .await
            .unwrap(),
        "no link for a restored backup"
    );
    // The link is spent.
    assert!(matches!(restore::link_info(&r.pod, &token), Err(Error::Gone(_))));
    assert!(restore::create(
        &r.pod,
        &r.test.services.restores,
        &token,
        "alice3",
        "a long enough password"
    )
    .await
    .is_err());
    assert!(restore::held_backup(&r.pod, &r.test.services.restores, &token).is_err());
    // The old private key is nowhere in the store, and gone from memory's waiting room.
    assert!(r.test.services.restores.opened_count() == 0);
    assert!(!r.all_bytes_contain(&old_key_fragment()));
    assert!(r.pod.store.check().unwrap().problems.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_confirming_at_once_make_one_account() {
    let r = rig(|_| {});
    let email = "tabs@example.org";
    r.held(email, old_key(), &sealed_backup(email, old_key()), true).await;
    let token = r.link(email).await;
    assert!(matches!(
        restore::unlock(&r.pod, &r.test.services.restores, &token, pass(PASSPHRASE))
            .await
            .unwrap(),
        Unlock::Ready(_)
    ));
    let (a, b) = {
        let (pa, pb, ta, tb) = (r.pod.clone(), r.pod.clone(), token.clone(), token.clone());
        let (ra, rb) = (r.test.services.restores.clone(), r.test.services.restores.clone());
        tokio::join!(
            tokio::spawn(async move { restore::create(&pa, &ra, &ta, "tab_one", "a long enough password").await }),
            tokio::spawn(async move { restore::create(&pb, &rb, &tb, "tab_two", "a long enough password").await }),
        )
    };
    let outcomes = [a.unwrap(), b.unwrap()];
    let done = outcomes.iter().filter(|o| matches!(o, Ok(Create::Done(_)))).count();
    assert_eq!(done, 1, "exactly one tab wins");
    for outcome in &outcomes {
        match outcome {
            Ok(Create::Done(_)) => {}
            Err(Error::Gone(message)) => assert!(message.contains("another tab"), "{message}"),
            other => panic!("the other tab is told the link was just used, not {other:?}"),
        }
    }
    let names: Vec<String> = AccountStore::accounts(&r.pod.store)
        .unwrap()
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_pass_phrases_kill_the_link_and_create_nothing() {
    let r = rig(|_| {});
    let email = "wrong@example.org";
    r.held(email, old_key(), &sealed_backup(email, old_key()), true).await;
    let token = r.link(email).await;
    for left in (0..5).rev() {
        match restore::unlock(
            &r.pod,
            &r.test.services.restores,
            &token,
            pass("nine wrong words in a row"),
        )
        .await
        .unwrap()
        {
            Unlock::WrongPassphrase { attempts_left } => assert_eq!(attempts_left, left),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(restore::link_info(&r.pod, &token), Err(Error::Gone(_))));
    assert!(matches!(
        restore::unlock(&r.pod, &r.test.services.restores, &token, pass(PASSPHRASE)).await,
        Err(Error::Gone(_))
    ));
    assert!(restore::create(
        &r.pod,
        &r.test.services.restores,
        &token,
        "nobody",
        "a long enough password"
    )
    .await
    .is_err());
    assert!(AccountStore::accounts(&r.pod.store).unwrap().is_empty());
    // The backup stays, and a new link works.
    let holder = r.test.services.holder.clone();
    assert_eq!(holder.restorable(email).unwrap().len(), 1);
    let again = r.link(email).await;
    assert!(matches!(
        restore::unlock(&r.pod, &r.test.services.restores, &again, pass(PASSPHRASE))
            .await
            .unwrap(),
        Unlock::Ready(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_link_revokes_the_old_one_and_links_are_capped_per_day() {
    let r = rig(|_| {});
    let email = "links@example.org";
    let lfbk = sealed_backup(email, old_key());
    r.held(email, old_key(), &lfbk, false).await;
    let first = r.link(email).await;
    let second = r.link(email).await;
    assert!(restore::link_info(&r.pod, &first).is_err(), "revoked");
    assert!(restore::link_info(&r.pod, &second).is_ok());
    let third = r.link(email).await;
    let mails = r.mails().len();
    assert!(
        !restore::send_link(&r.pod, &r.test.services.restores, email)
            .await
            .unwrap(),
        "the daily cap (3)"
    );
    assert_eq!(r.mails().len(), mails);
    assert!(
        restore::link_info(&r.pod, &third).is_ok(),
        "the capped request revokes nothing"
    );
    // No backup, no mail; and the unconfirmed slot did open (confirmed ones go first).
    assert!(
        !restore::send_link(&r.pod, &r.test.services.restores, "stranger@example.org")
            .await
            .unwrap()
    );
    assert!(matches!(
        restore::unlock(&r.pod, &r.test.services.restores, &third, pass(PASSPHRASE))
            .await
            .unwrap(),
        Unlock::Ready(_)
    ));
    // The download hands back the held file unchanged, and changes nothing.
    let (bytes, name) = restore::held_backup(&r.pod, &r.test.services.restores, &third).unwrap();
    assert_eq!(bytes, lfbk);
    assert!(
        name.starts_with("diaspora-backup-") && name.ends_with(".lfbk"),
        "{name}"
    );
    assert_eq!(
        restore::held_backup(&r.pod, &r.test.services.restores, &third)
            .unwrap()
            .0,
        lfbk
    );
    assert!(restore::link_info(&r.pod, &third).is_ok());
    // A sweep leaves a link that has not expired.
    restore::sweep(&r.pod, &r.test.services.restores).await.unwrap();
    assert!(restore::link_info(&r.pod, &third).is_ok(), "not expired yet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_removes_expired_links_and_stale_address_records_only() {
    // Links that expire within seconds (the configuration allows a minute at least).
    let r = rig(|c| c.backups.restore_link_ttl = lifeboat::config::Span::secs(2));
    let email = "sweep@example.org";
    r.held(email, old_key(), &sealed_backup(email, old_key()), true).await;
    let token = r.link(email).await;
    let now = lifeboat::account::now_unix();
    let day = 86_400;
    // Two other addresses' records: one whose mails are all over a day old, one mailed
    // an hour ago; neither has a live link.
    r.pod
        .store
        .transaction(|tx| {
            tx.put_restore_address(
                "stale@example.org",
                &RestoreAddress {
                    current: None,
                    mailed_unix: vec![now - 2 * day, now - day - 60],
                },
            )?;
            tx.put_restore_address(
                "recent@example.org",
                &RestoreAddress {
                    current: None,
                    mailed_unix: vec![now - 3600],
                },
            )
        })
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while restore::link_info(&r.pod, &token).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the link never expired");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        RestoreStore::restore_tokens(&r.pod.store).unwrap().len(),
        1,
        "an expired link stays stored until the sweep"
    );

    restore::sweep(&r.pod, &r.test.services.restores).await.unwrap();
    assert!(
        RestoreStore::restore_tokens(&r.pod.store).unwrap().is_empty(),
        "the expired link is gone"
    );
    let addresses: std::collections::HashMap<String, RestoreAddress> = RestoreStore::restore_addresses(&r.pod.store)
        .unwrap()
        .into_iter()
        .collect();
    assert!(!addresses.contains_key("stale@example.org"), "{addresses:?}");
    assert_eq!(addresses["recent@example.org"].mailed_unix, vec![now - 3600]);
    // The swept address no longer points at its dead link, and keeps today's mail count.
    let mine = &addresses[email];
    assert_eq!((mine.current, mine.mailed_unix.len()), (None, 1));
    // A new link works.
    let again = r.link(email).await;
    assert!(restore::link_info(&r.pod, &again).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_slots_are_tried_first_and_a_stranger_slot_is_not_used() {
    let r = rig(|_| {});
    let email = "two@example.org";
    // A stranger's unconfirmed slot sealed with another pass phrase, and the owner's.
    let stranger_key = SealingKey::derive(
        "another pass phrase entirely, unknown",
        KdfParams {
            memory_kib: 19456,
            time_cost: 2,
        },
    )
    .unwrap();
    let archive = write_archive(&old_account(email, other_key()), "evil.invalid", "https://evil.invalid").unwrap();
    let owner = r.held(email, old_key(), &sealed_backup(email, old_key()), true).await;
    // Pushed later (so more recent), but unconfirmed.
    r.held(email, other_key(), &sealed::seal(&archive, &stranger_key), false)
        .await;
    let holder = r.test.services.holder.clone();
    let order = holder.restorable(email).unwrap();
    assert_eq!(order[0].0, owner, "confirmed first");
    let token = r.link(email).await;
    match restore::unlock(&r.pod, &r.test.services.restores, &token, pass(PASSPHRASE))
        .await
        .unwrap()
    {
        Unlock::Ready(view) => assert_eq!(view.old_id.as_deref(), Some("alice@old-pod.invalid")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_slot_keeps_its_ciphertext_30_days_then_only_the_tombstone() {
    let r = rig(|_| {});
    let email = "erase@example.org";
    let slot = r.held(email, old_key(), &sealed_backup(email, old_key()), true).await;
    let token = r.link(email).await;
    restore::unlock(&r.pod, &r.test.services.restores, &token, pass(PASSPHRASE))
        .await
        .unwrap();
    assert!(matches!(
        restore::create(
            &r.pod,
            &r.test.services.restores,
            &token,
            "erased",
            "a long enough password"
        )
        .await
        .unwrap(),
        Create::Done(_)
    ));
    let holder = r.test.services.holder.clone();
    let now = lifeboat::account::now_unix();
    assert_eq!(holder.erase_restored(now).await.unwrap(), 0);
    assert!(holder.store().backup(&slot).unwrap().is_some());
    assert_eq!(holder.erase_restored(now + RESTORED_KEPT_SECS + 1).await.unwrap(), 1);
    assert!(holder.store().backup(&slot).unwrap().is_none());
    let tombstone = holder.store().slot(&slot).unwrap().unwrap();
    assert!(tombstone.restored_at.is_some() && !tombstone.holds_backup());
    let stats = holder.stats().unwrap();
    assert_eq!((stats.restored, stats.tombstones, stats.confirmed_bytes), (1, 1, 0));
    assert!(r.pod.store.check().unwrap().problems.is_empty());
}

fn move_in_request(email: Option<&str>, username: &str, file: Vec<u8>) -> MoveIn {
    MoveIn {
        old_id: format!("alice@{OLD_HOST}"),
        username: username.into(),
        password: "a long enough password".into(),
        email: email.map(str::to_string),
        file,
        passphrase: pass(PASSPHRASE),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_in_whose_key_does_not_match_the_stored_one_is_refused() {
    let r = rig(|_| {});
    // This pod knows alice@old-pod.invalid with another key.
    store_person(
        &r.pod.store,
        Person {
            diaspora_id: format!("alice@{OLD_HOST}"),
            guid: "0123456789abcdef0123456789abcdef".into(),
            public_key_pem: public_key_to_pem(&other_key().to_public_key()),
            full_name: "Alice".into(),
            first_name: String::new(),
            last_name: String::new(),
            photo_url: String::new(),
            photo_medium_url: String::new(),
            photo_small_url: String::new(),
            searchable: true,
            pod_origin: format!("https://{OLD_HOST}"),
            fetched_unix: 0,
            moved_to: None,
            closed_unix: None,
        },
    )
    .unwrap();
    let file = sealed_backup("mover@example.org", old_key());
    match lifeboat::arrivals::move_in::move_in(&r.pod, move_in_request(None, "mover", file)).await {
        Err(Error::Forbidden(message)) => assert!(message.contains("not the key this pod knows"), "{message}"),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("a key mismatch must be refused"),
    }
    assert!(
        AccountStore::accounts(&r.pod.store).unwrap().is_empty(),
        "nothing created"
    );
    // The same file with the matching stored key goes through.
    let file = sealed_backup("mover@example.org", other_key());
    let created = lifeboat::arrivals::move_in::move_in(&r.pod, move_in_request(None, "mover", file))
        .await
        .unwrap();
    assert_eq!(created.key_check, KeyCheck::Stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_in_while_the_old_pod_is_down_is_accepted_and_noted() {
    let r = rig(|_| {});
    let wrong = lifeboat::arrivals::move_in::move_in(&r.pod, {
        let mut m = move_in_request(None, "mover", sealed_backup("mover@example.org", old_key()));
        m.passphrase = pass("not the pass phrase of it");
        m
    })
    .await;
    assert!(
        matches!(wrong, Err(Error::BadRequest(ref m)) if m.contains("wrong pass phrase")),
        "{wrong:?}"
    );
    let mismatch = lifeboat::arrivals::move_in::move_in(&r.pod, {
        let mut m = move_in_request(None, "mover", sealed_backup("mover@example.org", old_key()));
        m.old_id = "someone@else.invalid".into();
        m
    })
    .await;
    assert!(matches!(mismatch, Err(Error::BadRequest(ref m)) if m.contains("not of someone@else.invalid")));
    let file = sealed_backup("mover@example.org", old_key());
    let created = lifeboat::arrivals::move_in::move_in(&r.pod, move_in_request(Some("New@Example.org"), "mover", file))
        .await
        .unwrap();
    match &created.key_check {
        KeyCheck::Unknown { why: Some(why) } => assert!(why.contains("could not discover"), "{why}"),
        other => panic!("{other:?}"),
    }
    let account = AccountStore::account(&r.pod.store, "mover").unwrap().unwrap();
    assert_eq!(account.email, "new@example.org");
    assert!(!account.email_confirmed, "a move-in confirms its address by mail");
    assert!(r
        .mails()
        .iter()
        .any(|m| m.to == "new@example.org" && m.subject.contains("Confirm")));
    let deliveries = r
        .test
        .services
        .outbox
        .topic(&lifeboat::arrivals::topic("mover"))
        .unwrap();
    assert!(deliveries.iter().any(|d| d.origin == format!("https://{OLD_HOST}")));
    assert_eq!(queued(&r.pod), ["bob@pod-b.example", "carol@pod-c.example"]);
    assert!(
        deliveries.iter().all(|d| d.origin != "http://127.0.0.1:9"),
        "nothing is re-pointed here"
    );
    // Closed or taken usernames are never given again; admins' names are reserved.
    let again =
        lifeboat::arrivals::move_in::move_in(&r.pod, move_in_request(Some("x@example.org"), "mover", vec![1])).await;
    assert!(matches!(again, Err(Error::Conflict(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_names_are_reserved_and_move_ins_follow_the_configuration() {
    let r = rig(|c| c.accounts.admins = vec!["root".into()]);
    let file = sealed_backup("a@example.org", old_key());
    let refused = lifeboat::arrivals::move_in::move_in(&r.pod, move_in_request(None, "root", file.clone())).await;
    assert!(matches!(refused, Err(Error::Conflict(ref m)) if m.contains("reserved")));
    let closed = rig(|c| c.accounts.open_registrations = false);
    let refused = lifeboat::arrivals::move_in::move_in(&closed.pod, move_in_request(None, "someone", file)).await;
    assert!(matches!(refused, Err(Error::Forbidden(_))));
}
