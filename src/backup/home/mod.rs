//! The home pod's automatic encrypted backups (docs/holder-api.md, "The home pod's
//! side"): for every local account whose email is confirmed and whose backup pass
//! phrase is set, a backup pod is chosen and the account's archive, sealed with the
//! pass-phrase key, is kept current there.
//!
//! How the work flows:
//! - **Changes.** Every write of an account (`AccountTx::put_account`, whatever code
//!   path made it) leaves a [`Nudge`] in the tree `backup_nudges` in the same unit of
//!   work, so no change is ever lost, even by a crash. The worker turns nudges into the
//!   account's next look, `backups.push_debounce` after the first change (changes in
//!   that window go in one push); a new account, a closed one, a pod's availability
//!   changing or the user's own choice of pod are looked at at once.
//! - **State.** One [`SyncState`] per account (tree `backup_sync`) says which pod holds
//!   its backup, what that pod last acknowledged, the next sequence number, failures,
//!   and the signed deletes still owed to pods left behind; the tree
//!   `backup_sync_due` is the schedule of looks. Only the worker writes a state (one
//!   look per account at a time), so the settings page and the pod checks only leave
//!   nudges and choices for it.
//! - **A look** ([`look`]) settles who holds the backup (choose a pod; follow an email
//!   change; leave a pod that refuses backups or kept failing past
//!   `backups.move_after_failing`; apply the user's choice; stop and delete on opt-out
//!   or closing), pushes when due, runs the weekly status check, sends owed deletes and
//!   warns the user by mail when nothing has succeeded for `backups.warn_after_failing`.
//! - **Pushes.** Skipped when the archive (and the key it is sealed with) is
//!   byte-identical to the last acknowledged push (`200` or `202`). Otherwise sealed,
//!   signed, and the next sequence number is **made durable before the request is
//!   sent**, so sequences only grow, across restarts too; a `409` that carries a higher
//!   held sequence is caught up at once. Failures retry with capped exponential backoff
//!   ([`Backoff`]); `403` moves the account to another vetted pod; `507` is retried;
//!   `410` tells the user the account was restored elsewhere.
//! - **Deletes** (docs/holder-api.md, "Tombstones") owed to a pod left behind (opt-out,
//!   a change of pod or of email, closing the account) go through the same schedule.
//!   They are signed while the account still has its key: every push also signs, before
//!   it is sent, the delete that would follow it (the *farewell*), so even a closed
//!   account whose key is gone can still delete its backups. A delete for a pod the
//!   account moved away from is sent only once the new pod has acknowledged a backup,
//!   so the user never has none.
//!
//! In this folder: [`worker`], [`look`], [`client`] (the holder API as a client),
//! [`overview`] (the settings), [`mail`] (the wording of its mails), [`pods`] (the
//! directory of backup pods and their NodeInfo).
//!
//! the formats
//! ([`crate::backup::push`], [`crate::sealed`], [`crate::account::archive`]); the HTTP edge
//! (`web::backup_sync`).

pub mod client;
pub mod look;
pub mod mail;
pub mod overview;
pub mod pods;
pub mod worker;

use client::*;
pub use look::*;
use mail::*;
pub use overview::*;
pub use worker::*;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};

use super::push::{push_signed_text, status_signed_text};
use crate::account::{now_unix, Account, AccountStore};
use crate::config::Config;
use crate::federation::signature::{private_key_from_pem, sign_base64};
use crate::mail::Mail;
use crate::pod::{Pod, Signal};
use crate::retry::Backoff;
use crate::{Error, Result};
use pods::PodView;

/// What a unit of work returns.
pub use crate::store::TxResult;

/// A delete owed to a pod is given up this long after it was first owed.
pub const DELETE_GIVE_UP_SECS: u64 = 30 * 86400;

/// The most pushes one look makes (a stale answer caught up, a move after a 403, a
/// re-push after a status mismatch), so a confused holder cannot keep a look busy.
const MAX_ROUNDS: usize = 3;

/// Where an account's backup slot stands, as the settings show it. Whether pushes are
/// failing is told apart by [`SyncState::failing_since`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotState {
    /// Backups are not running: no pass phrase, email not confirmed, opted out or closed.
    #[default]
    Off,
    /// No backup pod is available; one is picked as soon as one appears.
    NoPod,
    /// A pod is chosen; it has acknowledged nothing yet.
    Pending,
    /// The pod keeps the backup, and waits for its owner to confirm it by email (202).
    AwaitingConfirmation,
    /// The pod stores the backup (200).
    Stored,
    /// The pod answered 410: the backup was restored, the account lives on elsewhere.
    Restored,
}

/// The last push a pod acknowledged (`200` or `202`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    pub sequence: u64,
    /// [`content_digest`] of what was sealed: an unchanged account is not pushed again.
    pub content: [u8; 32],
    /// SHA-256 of the `.lfbk` sent: what the weekly status check compares.
    pub lfbk_sha256: [u8; 32],
    pub at_unix: u64,
    /// The slot's owner has confirmed it at the pod.
    pub confirmed: bool,
}

/// A signed `backup: null` push (docs/holder-api.md, "Tombstones"), ready to send.
/// Signed while the key is there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDelete {
    /// The address the slot is held under.
    pub email: String,
    /// SPKI PEM of the account key.
    pub public_key_pem: String,
    pub sequence: u64,
    pub created_at: String,
    /// Standard base64.
    pub signature: String,
}

impl SignedDelete {
    /// The push body.
    pub fn body(&self) -> Vec<u8> {
        json!({
            "version": 1,
            "email": self.email,
            "public_key": self.public_key_pem,
            "sequence": self.sequence,
            "created_at": self.created_at,
            "backup": Value::Null,
            "signature": self.signature,
        })
        .to_string()
        .into_bytes()
    }
}

/// A pod that may still hold a backup of the account, and the delete it is owed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftBehind {
    pub origin: String,
    pub delete: SignedDelete,
    /// Sent only when armed: a pod moved away from is armed once the new pod has
    /// acknowledged a backup; opting out and closing arm every delete at once.
    pub armed: bool,
    pub created_unix: u64,
    pub attempts: u32,
    pub next_attempt_unix: u64,
    pub last_error: Option<String>,
}

/// A time and what happened then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at_unix: u64,
    pub text: String,
}

/// An account's backups (tree `backup_sync`, keyed by username). Written only by the
/// worker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// The origin of the pod that holds (or is to hold) the backup.
    pub pod: Option<String>,
    /// The address the slot at `pod` is held under (the account's, unless it just changed).
    pub email: String,
    /// The user picked `pod` in the settings (otherwise it was chosen automatically).
    pub chosen_by_user: bool,
    /// Since when `pod` holds the backup.
    pub pod_since_unix: u64,
    pub slot: SlotState,
    /// The sequence number the next push or delete uses. Only grows, and is made
    /// durable before any request that uses it is sent.
    pub next_sequence: u64,
    /// What `pod` last acknowledged; `None` until it acknowledges a push.
    pub acked: Option<Acked>,
    /// The last acknowledged push: when, and its sequence.
    pub last_success: Option<(u64, u64)>,
    /// The last failure (of a push, a status check or a delete).
    pub last_error: Option<Event>,
    /// Since when backups have not succeeded (failures in a row, or no pod at all).
    pub failing_since: Option<u64>,
    /// Failed attempts in a row (the backoff's exponent).
    pub failures: u32,
    /// The user was mailed that backups have not succeeded since `failing_since`.
    pub warned: bool,
    /// `pod` refuses backups and no other pod is available: nothing is pushed until one is.
    pub pod_refuses: bool,
    /// When to look at the push side next (the debounced change, the daily pass, a retry).
    pub push_due: Option<u64>,
    /// Push even if the archive is unchanged (the pod's copy does not match ours).
    pub force_push: bool,
    /// When to run the next status check.
    pub status_due: Option<u64>,
    /// The delete that would follow the last push at `pod`; `None` when nothing was sent there.
    pub farewell: Option<SignedDelete>,
    /// Pods that may still hold a backup, and the deletes owed to them.
    pub left_behind: Vec<LeftBehind>,
    /// Size of the last sealed backup (to skip pods whose limit is smaller).
    pub last_size: u64,
    /// The time of this account's entry in `backup_sync_due` (kept by the store).
    pub scheduled: Option<u64>,
}

impl SyncState {
    /// Forgets a run of failures: counted, dated and warned about.
    fn clear_failures(&mut self) {
        self.failures = 0;
        self.failing_since = None;
        self.warned = false;
    }

    fn new() -> SyncState {
        SyncState {
            next_sequence: 1,
            ..Default::default()
        }
    }

    /// When the worker must look at the account next.
    pub fn next_wake(&self, timing: &Timing) -> Option<u64> {
        let mut times: Vec<u64> = Vec::new();
        times.extend(self.push_due);
        if self.acked.is_some() {
            times.extend(self.status_due);
        }
        times.extend(self.left_behind.iter().filter(|l| l.armed).map(|l| l.next_attempt_unix));
        if let Some(since) = self.failing_since {
            if !self.warned {
                times.push(since + timing.warn_after);
            }
            if self.pod.is_some() {
                times.push(since + timing.move_after);
            }
        }
        times.into_iter().min()
    }
}

/// Why the worker should look at an account (tree `backup_nudges`, by username).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nudge {
    /// The first change to the account's data not yet taken up (Unix seconds).
    pub changed_unix: Option<u64>,
    /// Look at once: a pod's availability changed, or the user chose a pod.
    pub now: bool,
}

impl Nudge {
    /// This nudge and `other` together.
    pub fn merge(self, other: Nudge) -> Nudge {
        Nudge {
            changed_unix: match (self.changed_unix, other.changed_unix) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            now: self.now || other.now,
        }
    }
}

/// The storage backups need besides accounts (implemented on sled in
/// `store::backup_sync`).
pub trait SyncStore {
    fn sync_state(&self, username: &str) -> Result<Option<SyncState>>;
    /// Every state, by username.
    fn sync_states(&self) -> Result<Vec<(String, SyncState)>>;
    /// At most `limit` accounts whose look is due at `now` or earlier, earliest first.
    fn due_accounts(&self, now: u64, limit: usize) -> Result<Vec<String>>;
    /// The earliest scheduled look.
    fn next_due(&self) -> Result<Option<u64>>;
    /// Every pending nudge.
    fn nudges(&self) -> Result<Vec<(String, Nudge)>>;
    /// The pod the user picked and the worker has not applied yet.
    fn backup_choice(&self, username: &str) -> Result<Option<String>>;
}

/// The same inside a unit of work, and the writes.
pub trait SyncTx {
    fn sync_state(&self, username: &str) -> TxResult<Option<SyncState>>;
    /// Writes a state and moves its schedule entry to `wake` (none when `None`).
    fn put_sync_state(&self, username: &str, state: &SyncState, wake: Option<u64>) -> TxResult<()>;
    /// Adds to the account's nudge.
    fn nudge(&self, username: &str, nudge: Nudge) -> TxResult<()>;
    /// Removes the account's nudge if it is still `seen`; false when it changed meanwhile.
    fn take_nudge(&self, username: &str, seen: &Nudge) -> TxResult<bool>;
    fn put_backup_choice(&self, username: &str, origin: &str) -> TxResult<()>;
    /// Removes the user's choice if it is still `seen`.
    fn take_backup_choice(&self, username: &str, seen: &str) -> TxResult<()>;
}

/// The periods the worker follows, in seconds (from the `backups.*` options).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub debounce: u64,
    pub push_interval: u64,
    pub pod_check_interval: u64,
    pub status_interval: u64,
    pub move_after: u64,
    pub warn_after: u64,
    pub backoff: Backoff,
    pub concurrency: usize,
}

impl Timing {
    pub fn from_config(config: &Config) -> Timing {
        let b = &config.backups;
        Timing {
            debounce: b.push_debounce.get().as_secs(),
            push_interval: b.push_interval.get().as_secs().max(1),
            pod_check_interval: b.pod_check_interval.get().as_secs().max(1),
            status_interval: b.status_check_interval.get().as_secs().max(1),
            move_after: b.move_after_failing.get().as_secs(),
            warn_after: b.warn_after_failing.get().as_secs(),
            backoff: Backoff {
                first: b.push_retry_min.get(),
                max: b.push_retry_max.get().max(b.push_retry_min.get()),
                give_up_after: Duration::from_secs(DELETE_GIVE_UP_SECS),
            },
            concurrency: b.push_concurrency.max(1),
        }
    }

    /// How often the worker looks for nudges even without a wake: half the debounce
    /// (so a change is always taken up before its push is due), at most 30 s.
    fn poll(&self) -> Duration {
        Duration::from_millis((self.debounce * 500).clamp(500, 30_000))
    }
}

/// Something the worker did, for tests and benchmarks ([`BackupSync::subscribe`]).
#[derive(Clone, Debug)]
pub enum SyncEvent {
    /// The worker finished looking at an account.
    Looked { username: String, report: Report },
    /// A push is about to be sent.
    PushStarted {
        username: String,
        pod: String,
        sequence: u64,
        bytes: u64,
        at: Instant,
    },
}

/// The worker's handle on the pod: wakes it, and tells who listens what it does.
#[derive(Clone)]
pub struct BackupSync {
    inner: Arc<Shared>,
}

struct Shared {
    wake: Signal,
    events: broadcast::Sender<SyncEvent>,
    bytes_pushed: AtomicU64,
}

impl Default for BackupSync {
    /// A handle with a signal of its own (tests, benchmarks).
    fn default() -> Self {
        BackupSync::new(Signal::default())
    }
}

impl BackupSync {
    /// The worker's handle, woken by `wake` (the pod's `signals.backups`).
    pub fn new(wake: Signal) -> BackupSync {
        BackupSync {
            inner: Arc::new(Shared {
                wake,
                events: broadcast::channel(1024).0,
                bytes_pushed: AtomicU64::new(0),
            }),
        }
    }

    /// Tells the worker to look for nudges and due work now.
    pub fn wake(&self) {
        self.inner.wake.ring();
    }

    /// What the worker does from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SyncEvent> {
        self.inner.events.subscribe()
    }

    /// Bytes of `.lfbk` pushed since the start (backups only, not deletes).
    pub fn bytes_pushed(&self) -> u64 {
        self.inner.bytes_pushed.load(Ordering::Relaxed)
    }
}

/// What one look (or a pass of looks) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub looks: u64,
    pub pushes: u64,
    pub skipped: u64,
    pub bytes_pushed: u64,
    pub deletes: u64,
    pub status_checks: u64,
}

impl Report {
    fn add(&mut self, other: Report) {
        self.looks += other.looks;
        self.pushes += other.pushes;
        self.skipped += other.skipped;
        self.bytes_pushed += other.bytes_pushed;
        self.deletes += other.deletes;
        self.status_checks += other.status_checks;
    }
}

/// Why backups are not running for an account, or `None` when they should.
pub fn why_off(account: &Account) -> Option<&'static str> {
    if account.closed.is_some() {
        Some("the account is closed")
    } else if account.backups_opted_out {
        Some("you chose not to have encrypted backups")
    } else if !account.email_confirmed {
        Some("backups start once your email address is confirmed")
    } else if account.sealing_key.is_none() {
        Some("backups start once you set a backup pass phrase")
    } else if account.private_key_pem.is_empty() {
        Some("the account has no key")
    } else {
        None
    }
}

/// What decides whether an account's backup changed: the archive and the key it is
/// sealed with (its salt and costs, never the key), so a new pass phrase is pushed too.
pub fn content_digest(archive: &[u8], key: &crate::sealed::SealingKey) -> [u8; 32] {
    let params = key.params();
    let mut hash = Sha256::new();
    hash.update(b"lifeboat-backup-content:1\0");
    hash.update(key.salt());
    hash.update(params.memory_kib.to_le_bytes());
    hash.update(params.time_cost.to_le_bytes());
    hash.update(archive);
    hash.finalize().into()
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as docs/holder-api.md, "Field rules", wants `created_at`.
pub(super) fn created_at(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// A time for people: `YYYY-MM-DD HH:MM UTC`.
pub fn utc(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// The host part of an origin, for messages.
pub(super) fn host_of(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, h)| h)
}

#[cfg(test)]
mod tests;
