//! The holder on a real store in a temporary folder.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use rsa::RsaPrivateKey;
use serde_json::json;

use super::*;
use crate::federation::signature;
use crate::mail::MailQueueStore;
use crate::sealed::{self, KdfParams, SealingKey};
use crate::store::backups::SledSlots;
use crate::store::Store;

fn keys() -> &'static [RsaPrivateKey] {
    static KEYS: OnceLock<Vec<RsaPrivateKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..5)
            .map(|_| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
            .collect()
    })
}

fn lfbk(text: &str) -> Vec<u8> {
    static KEY: OnceLock<SealingKey> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        SealingKey::derive(
            "violet tractor drifts under 9 quiet lanterns",
            KdfParams {
                memory_kib: 19456,
                time_cost: 2,
            },
        )
        .unwrap()
    });
    sealed::seal(text.as_bytes(), key)
}

const AT: &str = "2026-01-01T00:00:00Z";

fn body(key: &RsaPrivateKey, email: &str, sequence: u64, backup: Option<&[u8]>) -> Vec<u8> {
    let sha = backup.map(|b| <[u8; 32]>::from(Sha256::digest(b)));
    let text = super::super::push::push_signed_text(email, sequence, AT, sha.as_ref());
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "version": 1, "email": email,
        "public_key": signature::public_key_to_pem(&key.to_public_key()),
        "sequence": sequence, "created_at": AT,
        "backup": backup.map(|b| b64.encode(b)),
        "signature": b64.encode(signature::sign(key, text.as_bytes())),
    })
    .to_string()
    .into_bytes()
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    holder: Arc<Holder<SledSlots>>,
}

fn rig(tweak: impl FnOnce(&mut Policy)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let config = Config::default();
    let mailer = crate::mail::Mailer::new(&config, store.clone()).unwrap();
    let mut policy = Policy::from_config(&config);
    policy.accept_backups = true;
    tweak(&mut policy);
    let holder = Arc::new(Holder::new(SledSlots::new(store.clone()), policy, mailer));
    Rig {
        _dir: dir,
        store,
        holder,
    }
}

impl Rig {
    fn mails(&self) -> Vec<Mail> {
        self.store
            .queued_mails()
            .unwrap()
            .into_iter()
            .map(|(_, queued)| queued.mail)
            .collect()
    }

    fn token_in_last_mail(&self) -> String {
        let text = self.mails().last().unwrap().text.clone();
        let at = text.find("token=").unwrap() + 6;
        text[at..at + crate::token::TOKEN_CHARS].to_string()
    }

    fn key(&self, key: &RsaPrivateKey, email: &str) -> SlotKey {
        SlotKey {
            email: email.into(),
            fingerprint: Fingerprint(signature::fingerprint(&key.to_public_key())),
        }
    }
}

#[tokio::test]
async fn a_new_slot_waits_for_confirmation_then_refuses_replays() {
    let r = rig(|_| {});
    let k = &keys()[0];
    let one = lfbk("one");
    let out = r.holder.push(&body(k, "a@b.org", 1, Some(&one))).await.unwrap();
    assert_eq!(out, PushOutcome::AwaitingConfirmation);
    assert_eq!(r.mails().len(), 1, "the first push mails the address");
    let mail = &r.mails()[0];
    assert_eq!(mail.to, "a@b.org");
    assert!(mail.text.contains(&r.key(k, "a@b.org").fingerprint.short()));
    assert!(mail.text.contains("/restore_backup"));
    // A second push to the unconfirmed slot: 202 again, stored, no second mail.
    let two = lfbk("two");
    assert_eq!(
        r.holder.push(&body(k, "a@b.org", 2, Some(&two))).await.unwrap(),
        PushOutcome::AwaitingConfirmation
    );
    assert_eq!(r.mails().len(), 1);
    assert_eq!(r.holder.store().backup(&r.key(k, "a@b.org")).unwrap().unwrap(), two);
    // Looking at the link changes nothing; deciding confirms.
    let token = r.token_in_last_mail();
    r.holder.pending(&token).unwrap();
    assert!(!r.holder.store().slot(&r.key(k, "a@b.org")).unwrap().unwrap().confirmed);
    r.holder.decide(&token, ConfirmAction::Confirm).await.unwrap();
    assert!(
        r.holder.decide(&token, ConfirmAction::Confirm).await.is_err(),
        "single use"
    );
    let stats = r.holder.stats().unwrap();
    assert_eq!((stats.confirmed_slots, stats.confirmed_bytes), (1, two.len() as u64));
    assert_eq!((stats.unconfirmed_slots, stats.unconfirmed_bytes), (0, 0));
    // Confirmed: replay and rollback are stale, newer is stored.
    assert_eq!(
        r.holder.push(&body(k, "a@b.org", 2, Some(&one))).await.unwrap(),
        PushOutcome::Stale(2)
    );
    assert_eq!(
        r.holder.push(&body(k, "a@b.org", 1, Some(&one))).await.unwrap(),
        PushOutcome::Stale(2)
    );
    assert_eq!(r.holder.store().backup(&r.key(k, "a@b.org")).unwrap().unwrap(), two);
    assert_eq!(
        r.holder.push(&body(k, "a@b.org", 3, Some(&one))).await.unwrap(),
        PushOutcome::Stored(3)
    );
    // Delete leaves a tombstone; an older push replayed later is refused.
    assert_eq!(
        r.holder.push(&body(k, "a@b.org", 4, None)).await.unwrap(),
        PushOutcome::Deleted(4)
    );
    assert!(r.holder.store().backup(&r.key(k, "a@b.org")).unwrap().is_none());
    assert_eq!(
        r.holder.push(&body(k, "a@b.org", 3, Some(&one))).await.unwrap(),
        PushOutcome::Stale(4)
    );
    let stats = r.holder.stats().unwrap();
    assert_eq!(
        (stats.confirmed_slots, stats.confirmed_bytes, stats.tombstones),
        (1, 0, 1)
    );
    // Restored: 410.
    r.holder.mark_restored(&r.key(k, "a@b.org")).await.unwrap();
    assert_eq!(
        r.holder.push(&body(k, "a@b.org", 9, Some(&one))).await.unwrap(),
        PushOutcome::Restored
    );
}

#[tokio::test]
async fn a_fourth_unconfirmed_key_evicts_the_oldest_and_confirmed_slots_stay() {
    let r = rig(|_| {});
    let ks = keys();
    let data = lfbk("x");
    r.holder.push(&body(&ks[0], "a@b.org", 1, Some(&data))).await.unwrap();
    let token = r.token_in_last_mail();
    r.holder.decide(&token, ConfirmAction::Confirm).await.unwrap();
    for k in &ks[1..5] {
        assert_eq!(
            r.holder.push(&body(k, "a@b.org", 1, Some(&data))).await.unwrap(),
            PushOutcome::AwaitingConfirmation
        );
    }
    let slots = r.holder.store().slots().unwrap();
    let present: Vec<_> = slots.iter().map(|(k, _)| k.fingerprint).collect();
    assert_eq!(slots.len(), 4, "one confirmed and three unconfirmed");
    assert!(
        present.contains(&r.key(&ks[0], "a@b.org").fingerprint),
        "the confirmed slot stays"
    );
    assert!(
        !present.contains(&r.key(&ks[1], "a@b.org").fingerprint),
        "the oldest unconfirmed went"
    );
    assert!(r.holder.store().backup(&r.key(&ks[1], "a@b.org")).unwrap().is_none());
    let stats = r.holder.stats().unwrap();
    assert_eq!((stats.confirmed_slots, stats.unconfirmed_slots), (1, 3));
    assert_eq!(stats.unconfirmed_bytes, 3 * data.len() as u64);
    assert_eq!(r.mails().len(), 1, "one mail per address per day");
}

#[tokio::test]
async fn racing_pushes_with_one_sequence_have_one_winner() {
    let r = rig(|_| {});
    let k = &keys()[0];
    r.holder
        .push(&body(k, "race@b.org", 1, Some(&lfbk("1"))))
        .await
        .unwrap();
    r.holder
        .decide(&r.token_in_last_mail(), ConfirmAction::Confirm)
        .await
        .unwrap();
    for sequence in 2..12 {
        let (a, b) = (
            body(k, "race@b.org", sequence, Some(&lfbk("a"))),
            body(k, "race@b.org", sequence, Some(&lfbk("b"))),
        );
        let (ha, hb) = (r.holder.clone(), r.holder.clone());
        let (x, y) = tokio::join!(
            tokio::spawn(async move { ha.push(&a).await.unwrap() }),
            tokio::spawn(async move { hb.push(&b).await.unwrap() })
        );
        let mut outcomes = [x.unwrap(), y.unwrap()];
        outcomes.sort_by_key(|o| matches!(o, PushOutcome::Stale(_)));
        assert_eq!(outcomes, [PushOutcome::Stored(sequence), PushOutcome::Stale(sequence)]);
    }
}

#[tokio::test]
async fn quotas_answer_507_and_close_nodeinfo() {
    let data = lfbk("quota");
    let r = rig(|p| p.unconfirmed_quota_bytes = data.len() as u64 + 10);
    assert!(r.holder.accepts_backups().unwrap());
    r.holder
        .push(&body(&keys()[0], "q@b.org", 1, Some(&data)))
        .await
        .unwrap();
    let e = r
        .holder
        .push(&body(&keys()[1], "q@b.org", 1, Some(&data)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InsufficientStorage(_)), "{e:?}");
    assert!(r.holder.accepts_backups().unwrap(), "not full yet: 10 bytes left");
    // Strangers filling the unconfirmed quota do not switch the pod off.
    let r = rig(|p| p.unconfirmed_quota_bytes = data.len() as u64);
    r.holder
        .push(&body(&keys()[0], "q@b.org", 1, Some(&data)))
        .await
        .unwrap();
    assert!(
        r.holder.accepts_backups().unwrap(),
        "a full unconfirmed quota must not close NodeInfo"
    );
    // A full confirmed quota does.
    let r = rig(|p| p.quota_bytes = data.len() as u64);
    r.holder
        .push(&body(&keys()[0], "q@b.org", 1, Some(&data)))
        .await
        .unwrap();
    assert!(r.holder.accepts_backups().unwrap(), "unconfirmed bytes do not count");
    let token = r.token_in_last_mail();
    r.holder.decide(&token, ConfirmAction::Confirm).await.unwrap();
    assert!(!r.holder.accepts_backups().unwrap(), "confirmed quota full");
}

#[tokio::test]
async fn the_mail_caps_hold() {
    let r = rig(|p| p.confirmation_mails_per_hour = 2);
    let data = lfbk("m");
    for (i, email) in ["m1@b.org", "m2@b.org", "m3@b.org"].iter().enumerate() {
        r.holder.push(&body(&keys()[i], email, 1, Some(&data))).await.unwrap();
    }
    assert_eq!(r.mails().len(), 2, "the hourly cap");
}

#[tokio::test]
async fn not_mine_deletes_and_silences_that_key() {
    let r = rig(|_| {});
    let k = &keys()[2];
    r.holder.push(&body(k, "n@b.org", 1, Some(&lfbk("n")))).await.unwrap();
    r.holder
        .decide(&r.token_in_last_mail(), ConfirmAction::Reject)
        .await
        .unwrap();
    assert!(r.holder.store().backup(&r.key(k, "n@b.org")).unwrap().is_none());
    assert_eq!(
        r.holder.push(&body(k, "n@b.org", 2, Some(&lfbk("n")))).await.unwrap(),
        PushOutcome::AwaitingConfirmation
    );
    assert!(
        r.holder.store().backup(&r.key(k, "n@b.org")).unwrap().is_none(),
        "nothing stored again"
    );
    let stats = r.holder.stats().unwrap();
    assert_eq!(
        (stats.unconfirmed_slots, stats.unconfirmed_bytes, stats.tombstones),
        (1, 0, 1)
    );
    assert!(r.store.check().unwrap().problems.is_empty());
}

#[tokio::test]
async fn with_backups_off_only_held_slots_are_answered() {
    let r = rig(|_| {});
    let k = &keys()[0];
    r.holder.push(&body(k, "off@b.org", 1, Some(&lfbk("1")))).await.unwrap();
    let mut policy = r.holder.policy().clone();
    policy.accept_backups = false;
    let off = r.holder.with_policy(policy);
    let forbidden = |e: Error| assert!(matches!(e, Error::Forbidden(_)), "{e}");
    forbidden(off.push(&body(k, "off@b.org", 2, Some(&lfbk("2")))).await.unwrap_err());
    forbidden(off.push(&body(&keys()[1], "off@b.org", 1, None)).await.unwrap_err());
    // Check 1 comes before the signature check.
    let mut bad = body(&keys()[1], "new@b.org", 1, None);
    let at = bad.len() - 10;
    bad[at] = b'A';
    forbidden(off.push(&bad).await.unwrap_err());
    forbidden(off.push(b"not json").await.unwrap_err());
    assert_eq!(
        off.push(&body(k, "off@b.org", 2, None)).await.unwrap(),
        PushOutcome::AwaitingConfirmation,
        "a delete of a held slot is answered"
    );
    assert!(!off.accepts_backups().unwrap());
}

#[test]
fn slot_keys_round_trip() {
    let key = SlotKey {
        email: "a@b.org".into(),
        fingerprint: Fingerprint([7; 32]),
    };
    assert_eq!(SlotKey::from_bytes(&key.to_bytes()), Some(key));
    assert_eq!(SlotKey::from_bytes(b"short"), None);
}

/// Everything written under `held/`, every file end to end.
fn held_bytes(r: &Rig) -> Vec<u8> {
    let mut paths: Vec<_> = std::fs::read_dir(r.store.dir().join("held"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().flat_map(|p| std::fs::read(p).unwrap()).collect()
}

fn holds(r: &Rig, bytes: &[u8]) -> bool {
    held_bytes(r).windows(bytes.len()).any(|w| w == bytes)
}

/// What the hourly pass does, without waiting for the segment to be an hour old.
fn tidy_now(r: &Rig) {
    r.store.held().retire_older_than(std::time::Duration::ZERO);
    r.holder.store().tidy_held().unwrap();
}

#[tokio::test]
async fn a_slot_keeps_its_latest_bytes_and_refused_replaced_or_deleted_ones_are_not_kept() {
    let r = rig(|_| {});
    let k = &keys()[0];
    let one = lfbk("one");
    r.holder.push(&body(k, "a@b.org", 1, Some(&one))).await.unwrap();
    let token = r.token_in_last_mail();
    r.holder.decide(&token, ConfirmAction::Confirm).await.unwrap();
    let two = lfbk("two");
    assert_eq!(
        r.holder.push(&body(k, "a@b.org", 2, Some(&two))).await.unwrap(),
        PushOutcome::Stored(2)
    );
    assert_eq!(r.holder.store().backup(&r.key(k, "a@b.org")).unwrap().unwrap(), two);
    // A replay and a rollback are refused before anything is written.
    let written = held_bytes(&r).len();
    for sequence in [2, 1] {
        assert_eq!(
            r.holder
                .push(&body(k, "a@b.org", sequence, Some(&lfbk("old"))))
                .await
                .unwrap(),
            PushOutcome::Stale(2)
        );
    }
    assert_eq!(held_bytes(&r).len(), written);
    // A push over the quota is refused, and its bytes are not kept.
    let big = lfbk(&"x".repeat(4096));
    let mut tight = r.holder.policy().clone();
    tight.quota_bytes = 1000;
    let tight = r.holder.with_policy(tight);
    assert!(tight.push(&body(k, "a@b.org", 3, Some(&big))).await.is_err());
    // The replaced bytes and the refused ones go at the next tidy pass.
    assert!(holds(&r, &one));
    tidy_now(&r);
    assert!(!holds(&r, &one), "the replaced backup is freed");
    assert!(!holds(&r, &big), "the refused backup is freed");
    assert!(holds(&r, &two));
    // A delete leaves the tombstone and erases the bytes once durable.
    assert_eq!(
        r.holder.push(&body(k, "a@b.org", 4, None)).await.unwrap(),
        PushOutcome::Deleted(4)
    );
    assert!(!holds(&r, &two), "the deleted backup is erased");
    tidy_now(&r);
    assert!(held_bytes(&r).is_empty(), "no segment is left");
}

#[tokio::test]
async fn a_confirmation_link_mailed_before_tokens_took_one_form_still_works() {
    let r = rig(|_| {});
    let k = &keys()[0];
    r.holder.push(&body(k, "old@b.org", 1, Some(&lfbk("1")))).await.unwrap();
    // An older holder mailed 64 hex digits and stored the SHA-256 of the bytes they spell.
    let raw = [7u8; 32];
    let legacy = hex::encode(raw);
    let legacy_hash: [u8; 32] = Sha256::digest(raw).into();
    let key = r.key(k, "old@b.org");
    let current = crate::token::LinkToken::hash_of(&r.token_in_last_mail()).unwrap();
    r.holder
        .store()
        .unit(|tx| {
            let record = tx.token(&current)?.unwrap();
            tx.remove_token(&current)?;
            tx.put_token(&legacy_hash, &record)?;
            let mut slot = tx.slot(&key)?.unwrap();
            slot.confirm_token = Some(legacy_hash);
            tx.put_slot(&key, &slot)
        })
        .unwrap();
    assert_eq!(r.holder.pending(&legacy).unwrap().email, "old@b.org");
    r.holder.decide(&legacy, ConfirmAction::Confirm).await.unwrap();
    assert!(r.holder.store().slot(&key).unwrap().unwrap().confirmed);
    assert!(r.holder.pending(&"0".repeat(63)).is_err(), "neither form");
}
