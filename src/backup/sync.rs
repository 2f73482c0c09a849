//! The home pod's automatic encrypted backups (DESIGN §3, §4): for every local account
//! whose email is confirmed and whose backup pass phrase is set, a backup pod is chosen
//! and the account's archive, sealed with the pass-phrase key, is kept current there.
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
//! - **Deletes** (§3.6) owed to a pod left behind (opt-out, a change of pod or of email,
//!   closing the account) go through the same schedule. They are signed while the
//!   account still has its key: every push also signs, before it is sent, the delete
//!   that would follow it (the *farewell*), so even a closed account whose key is gone
//!   can still delete its backups. A delete for a pod the account moved away from is
//!   sent only once the new pod has acknowledged a backup, so the user never has none.
//!
//! Not here: the pod directory and NodeInfo reads ([`super::pods`]); the formats
//! ([`super::push`], [`crate::sealed`], [`crate::account::archive`]); the HTTP edge
//! (`web::backup_sync`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sled::transaction::ConflictableTransactionError;
use tokio::sync::{broadcast, watch, Notify};

use super::pods::{self, PodView};
use super::push::{push_signed_text, status_signed_text};
use crate::account::{now_unix, Account, AccountStore};
use crate::config::Config;
use crate::federation::signature::{private_key_from_pem, sign_base64};
use crate::mail::Mail;
use crate::pod::Pod;
use crate::retry::Backoff;
use crate::{Error, Result};

/// What a unit of work returns.
pub type TxResult<T> = std::result::Result<T, ConflictableTransactionError<Error>>;

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

/// A signed `backup: null` push (§3.6), ready to send. Signed while the key is there.
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
    wake: Notify,
    events: broadcast::Sender<SyncEvent>,
    bytes_pushed: AtomicU64,
}

impl Default for BackupSync {
    fn default() -> Self {
        BackupSync::new()
    }
}

impl BackupSync {
    pub fn new() -> BackupSync {
        BackupSync {
            inner: Arc::new(Shared {
                wake: Notify::new(),
                events: broadcast::channel(1024).0,
                bytes_pushed: AtomicU64::new(0),
            }),
        }
    }

    /// Tells the worker to look for nudges and due work now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
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

/// `YYYY-MM-DDTHH:MM:SSZ`, as §3 wants `created_at`.
fn created_at(unix: u64) -> String {
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
fn host_of(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, h)| h)
}

// ---------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------

/// Works the backups until `shutdown`: reads pods' NodeInfo when due, takes up nudges,
/// and looks at due accounts, a bounded number at a time.
pub async fn run(pod: Arc<Pod>, mut shutdown: watch::Receiver<bool>) {
    let timing = Timing::from_config(&pod.config);
    if let Err(e) = start(&pod) {
        tracing::error!("backups: cannot start: {e}");
    }
    let mut looks: tokio::task::JoinSet<Result<Report>> = tokio::task::JoinSet::new();
    let mut looking: std::collections::HashMap<tokio::task::Id, String> = std::collections::HashMap::new();
    let mut checks: tokio::task::JoinSet<String> = tokio::task::JoinSet::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut checking: HashSet<String> = HashSet::new();
    // The pod directory is scanned when a check is due, when one finished, and on a
    // wake (a pod may have been noted) — not after every look.
    let mut next_pod: Option<u64> = None;
    let mut rescan = true;
    loop {
        let now = now_unix();
        if rescan || next_pod.is_some_and(|at| at <= now) {
            rescan = false;
            next_pod = spawn_pod_checks(&pod, &timing, now, &mut checks, &mut checking).unwrap_or_else(|e| {
                tracing::error!("backups: pod checks: {e}");
                Some(now + timing.pod_check_interval.min(3600))
            });
        }
        if let Err(e) = take_up_nudges(&pod, &timing, now, &in_flight) {
            tracing::error!("backups: nudges: {e}");
        }
        match pod.store.due_accounts(now, timing.concurrency + in_flight.len()) {
            Ok(due) => {
                for username in due {
                    if in_flight.len() >= timing.concurrency {
                        break;
                    }
                    if !in_flight.insert(username.clone()) {
                        continue;
                    }
                    let task_pod = pod.clone();
                    let name = username.clone();
                    let handle = looks.spawn(async move { look(&task_pod, &name, now_unix()).await });
                    looking.insert(handle.id(), username);
                }
            }
            Err(e) => tracing::error!("backups: reading the schedule: {e}"),
        }
        let next_account = pod.store.next_due().unwrap_or_else(|e| {
            tracing::error!("backups: reading the schedule: {e}");
            None
        });
        let mut sleep = timing.poll();
        for at in [next_pod, next_account].into_iter().flatten() {
            sleep = sleep.min(until(at));
        }
        if in_flight.len() >= timing.concurrency || sleep.is_zero() {
            // Busy, or something is due but waits for a free place: wait for a look
            // to finish (or a short while, when what is due is already in flight).
            sleep = sleep.max(Duration::from_millis(200));
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = pod.backup_sync.inner.wake.notified() => rescan = true,
            Some(done) = looks.join_next_with_id(), if !looks.is_empty() => {
                let (id, result) = match done {
                    Ok((id, result)) => (id, result),
                    Err(e) => (e.id(), Err(Error::internal(format!("a look stopped: {e}")))),
                };
                if let Some(username) = looking.remove(&id) {
                    if let Ok(report) = &result {
                        let _ = pod.backup_sync.inner.events.send(SyncEvent::Looked { username: username.clone(), report: *report });
                    }
                    finish_look(&pod, &timing, &username, result);
                    in_flight.remove(&username);
                }
            }
            Some(done) = checks.join_next(), if !checks.is_empty() => {
                if let Ok(origin) = done {
                    checking.remove(&origin);
                }
                rescan = true;
            }
            _ = tokio::time::sleep(sleep) => {}
        }
    }
    looks.abort_all();
    checks.abort_all();
}

/// How long until the start of the Unix second `at` (zero when it has begun).
fn until(at: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(at).saturating_sub(now)
}

/// At start: every vetted pod gets an entry (so its NodeInfo is read), and every
/// account that has no state yet (made before backups existed, or written around the
/// account code) is nudged.
fn start(pod: &Pod) -> Result<()> {
    pods::ensure_vetted(&pod.store, &pod.config)?;
    let now = now_unix();
    let accounts = AccountStore::accounts(&pod.store)?;
    let missing: Vec<String> = accounts
        .into_iter()
        .map(|a| a.username)
        .filter(|u| matches!(pod.store.sync_state(u), Ok(None)))
        .collect();
    if !missing.is_empty() {
        pod.store.transaction(|tx| {
            for username in &missing {
                tx.nudge(
                    username,
                    Nudge {
                        changed_unix: Some(now),
                        now: false,
                    },
                )?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn finish_look(pod: &Pod, timing: &Timing, username: &str, result: Result<Report>) {
    if let Err(e) = result {
        tracing::error!(%username, "backups: {e}");
        // Look again later rather than at once: the error may well repeat.
        let at = now_unix() + timing.backoff.first.as_secs().max(1);
        if let Err(e) = defer(pod, username, at) {
            tracing::error!(%username, "backups: cannot reschedule: {e}");
        }
    }
}

/// Moves an account's next look to `at` (after a look that failed midway).
fn defer(pod: &Pod, username: &str, at: u64) -> Result<()> {
    pod.store.transaction(|tx| match tx.sync_state(username)? {
        Some(state) => tx.put_sync_state(username, &state, Some(at)),
        None => Ok(()),
    })
}

/// Turns nudges into looks: at once for a nudge that says so, a closed account, or an
/// account without a pod yet (its first push is queued at once); otherwise
/// `push_debounce` after the first change. Accounts being looked at keep their nudge
/// for the next round.
pub fn take_up_nudges(pod: &Pod, timing: &Timing, now: u64, in_flight: &HashSet<String>) -> Result<usize> {
    let mut taken = 0;
    for (username, nudge) in pod.store.nudges()? {
        if in_flight.contains(&username) {
            continue;
        }
        let closed = AccountStore::account(&pod.store, &username)?.is_none_or(|a| a.closed.is_some());
        let took = pod.store.transaction(|tx| {
            if !tx.take_nudge(&username, &nudge)? {
                return Ok(false);
            }
            let mut state = tx.sync_state(&username)?.unwrap_or_else(SyncState::new);
            let due = match nudge.changed_unix {
                _ if nudge.now || closed || state.pod.is_none() => now,
                Some(changed) => changed.saturating_add(timing.debounce),
                None => now,
            };
            state.push_due = Some(state.push_due.map_or(due, |d| d.min(due)));
            tx.put_sync_state(&username, &state, state.next_wake(timing))?;
            Ok(true)
        })?;
        taken += usize::from(took);
    }
    Ok(taken)
}

/// Looks at every account due at `now` (taking up nudges first) and waits until all
/// are done: the daily pass, as the benchmark and tests run it. The worker itself does
/// the same continuously.
pub async fn run_due(pod: &Arc<Pod>, now: u64) -> Result<Report> {
    let timing = Timing::from_config(&pod.config);
    take_up_nudges(pod, &timing, now, &HashSet::new())?;
    let mut report = Report::default();
    let due = pod.store.due_accounts(now, usize::MAX)?;
    let mut looks = tokio::task::JoinSet::new();
    for username in due {
        while looks.len() >= timing.concurrency {
            if let Some(done) = looks.join_next().await {
                report.add(done.map_err(Error::internal)??);
            }
        }
        let pod = pod.clone();
        looks.spawn(async move { look(&pod, &username, now).await });
    }
    while let Some(done) = looks.join_next().await {
        report.add(done.map_err(Error::internal)??);
    }
    Ok(report)
}

/// Reads the NodeInfo of pods that are due (a few at a time); returns when the next
/// pod is due.
fn spawn_pod_checks(
    pod: &Arc<Pod>,
    timing: &Timing,
    now: u64,
    checks: &mut tokio::task::JoinSet<String>,
    checking: &mut HashSet<String>,
) -> Result<Option<u64>> {
    const CONCURRENT_CHECKS: usize = 4;
    let own = pods::own_origin(&pod.config);
    let mut next: Option<u64> = None;
    for (origin, info) in pods::stored(&pod.store)? {
        if own.as_deref() == Some(origin.as_str()) {
            continue;
        }
        if info.next_check_unix > now {
            next = Some(next.map_or(info.next_check_unix, |n| n.min(info.next_check_unix)));
            continue;
        }
        if checking.contains(&origin) || checking.len() >= CONCURRENT_CHECKS {
            continue;
        }
        checking.insert(origin.clone());
        let pod = pod.clone();
        let timing = *timing;
        checks.spawn(async move {
            if let Err(e) = check_pod(&pod, &timing, &origin).await {
                tracing::error!(%origin, "backups: pod check: {e}");
            }
            origin
        });
    }
    Ok(next)
}

/// Reads every known pod's NodeInfo now, one after the other (tests and benchmarks;
/// the worker reads them on its own schedule).
pub async fn refresh_pods(pod: &Arc<Pod>) -> Result<()> {
    pods::ensure_vetted(&pod.store, &pod.config)?;
    let timing = Timing::from_config(&pod.config);
    let own = pods::own_origin(&pod.config);
    for (origin, _) in pods::stored(&pod.store)? {
        if own.as_deref() != Some(origin.as_str()) {
            check_pod(pod, &timing, &origin).await?;
        }
    }
    Ok(())
}

/// Reads one pod's NodeInfo, records it, and nudges the accounts it concerns: those on
/// the pod when it stopped taking backups, those waiting for a pod when it started.
async fn check_pod(pod: &Arc<Pod>, timing: &Timing, origin: &str) -> Result<()> {
    // Our own schedule paces these reads; a failure cached by another caller must not
    // hide a pod that came back.
    pod.http.forget_failures(origin);
    let http = pod.http.clone();
    let target = origin.to_string();
    let outcome = tokio::task::spawn_blocking(move || pods::fetch_nodeinfo(&http, &target))
        .await
        .map_err(Error::internal)?;
    let now = now_unix();
    match &outcome {
        Ok(facts) => tracing::debug!(%origin, accepts = facts.accepts_backups, "backups: NodeInfo read"),
        Err(e) => tracing::info!(%origin, "backups: NodeInfo not read: {e}"),
    }
    // A vetted pod, or one that took backups, that could not be read is tried again
    // within the hour; any other pod at the usual interval.
    let relied_on = pods::vetted_origins(&pod.config).iter().any(|o| o == origin)
        || pods::pod(&pod.store, origin)?.is_some_and(|i| i.accepting());
    let next = match &outcome {
        Err(_) if relied_on => now + timing.pod_check_interval.min(3600),
        _ => now + timing.pod_check_interval,
    };
    let (before, after) = pods::record_check(&pod.store, origin, &outcome, now, next)?;
    let opened = after.accepting() && !before.accepting();
    let closed = after.refuses() && !before.refuses();
    if !opened && !closed {
        return Ok(());
    }
    let concerned: Vec<String> = pod
        .store
        .sync_states()?
        .into_iter()
        .filter(|(_, s)| {
            (closed && s.pod.as_deref() == Some(origin)) || (opened && (s.slot == SlotState::NoPod || s.pod_refuses))
        })
        .map(|(u, _)| u)
        .collect();
    if concerned.is_empty() {
        return Ok(());
    }
    tracing::info!(
        %origin,
        accounts = concerned.len(),
        "backups: pod {}",
        if closed { "no longer takes backups" } else { "takes backups now" }
    );
    pod.store.transaction(|tx| {
        for username in &concerned {
            tx.nudge(
                username,
                Nudge {
                    changed_unix: None,
                    now: true,
                },
            )?;
        }
        Ok(())
    })?;
    pod.backup_sync.wake();
    Ok(())
}

// ---------------------------------------------------------------------------------
// One look at one account
// ---------------------------------------------------------------------------------

/// Looks at one account: settles who holds its backup, pushes when due, checks the
/// holder's copy when due, sends owed deletes, warns. `now` decides what is due (the
/// benchmark passes a day later); what is sent is dated by the clock.
pub async fn look(pod: &Arc<Pod>, username: &str, now: u64) -> Result<Report> {
    let timing = Timing::from_config(&pod.config);
    let mut report = Report {
        looks: 1,
        ..Default::default()
    };
    let Some(mut state) = pod.store.sync_state(username)? else {
        return Ok(report);
    };
    let account = AccountStore::account(&pod.store, username)?;
    let running = account.as_ref().filter(|a| why_off(a).is_none());
    if let Some(why) = account.as_ref().and_then(why_off) {
        tracing::debug!(%username, "backups: not running: {why}");
    }
    for _ in 0..MAX_ROUNDS {
        let choice = pod.store.backup_choice(username)?;
        let mut mails = Vec::new();
        match running {
            Some(account) => settle(pod, &timing, &mut state, account, choice.as_deref(), now, &mut mails)?,
            None => stop(&mut state, now),
        }
        save(pod, username, &mut state, &mails, choice.as_deref(), !mails.is_empty()).await?;
        let Some(account) = running else { break };
        let mut again = false;
        if pushing(&state) && state.push_due.is_some_and(|d| d <= now) {
            again |= push(pod, &timing, &mut state, account, now, &mut report).await?;
        }
        if !again && pushing(&state) && state.acked.is_some() && state.status_due.is_some_and(|d| d <= now) {
            again |= status_check(pod, &timing, &mut state, account, now, &mut report).await?;
        }
        if !again {
            break;
        }
    }
    send_deletes(pod, &timing, &mut state, account.as_ref(), now, &mut report).await?;
    let mut mails = Vec::new();
    if let Some(account) = running {
        warn_if_failing(pod, &timing, &mut state, account, now, &mut mails);
    }
    // Durable when deletes went out, so a restart does not send them again.
    save(pod, username, &mut state, &mails, None, report.deletes > 0).await?;
    Ok(report)
}

/// Whether pushes go out: a pod is chosen, does not refuse, and did not restore the backup.
fn pushing(state: &SyncState) -> bool {
    state.pod.is_some() && !state.pod_refuses && state.slot != SlotState::Restored
}

/// Writes the state (its schedule with it), queues `mails` and takes the applied
/// choice, in one unit of work; durable when asked (or when mails are queued).
async fn save(
    pod: &Pod,
    username: &str,
    state: &mut SyncState,
    mails: &[Mail],
    choice: Option<&str>,
    durable: bool,
) -> Result<()> {
    let timing = Timing::from_config(&pod.config);
    let wake = state.next_wake(&timing);
    let ids = mails
        .iter()
        .map(|_| pod.store.generate_id())
        .collect::<Result<Vec<_>>>()?;
    pod.store.transaction(|tx| {
        tx.put_sync_state(username, state, wake)?;
        for (id, mail) in ids.iter().zip(mails) {
            pod.mailer.enqueue_in(tx, *id, mail)?;
        }
        if let Some(choice) = choice {
            tx.take_backup_choice(username, choice)?;
        }
        Ok(())
    })?;
    state.scheduled = wake;
    if durable || !mails.is_empty() {
        pod.store.durable().await?;
    }
    if !mails.is_empty() {
        pod.mailer.wake();
    }
    Ok(())
}

/// Backups stop (opt-out, no pass phrase, closed): the current pod is left behind and
/// every owed delete is sent at once.
fn stop(state: &mut SyncState, now: u64) {
    if let Some(old) = state.pod.take() {
        leave(state, old, true, now);
    }
    for left in &mut state.left_behind {
        left.armed = true;
    }
    state.slot = SlotState::Off;
    state.acked = None;
    state.chosen_by_user = false;
    state.push_due = None;
    state.status_due = None;
    state.force_push = false;
    state.clear_failures();
    state.pod_refuses = false;
}

/// Leaves the slot at `origin` (under `state.email`): when anything may have been sent
/// there, its farewell delete is owed, armed now or once the next pod acknowledges.
fn leave(state: &mut SyncState, origin: String, armed: bool, now: u64) {
    if let Some(delete) = state.farewell.take() {
        state.next_sequence = state.next_sequence.max(delete.sequence + 1);
        state
            .left_behind
            .retain(|l| !(l.origin == origin && l.delete.email == delete.email));
        state.left_behind.push(LeftBehind {
            origin,
            delete,
            armed,
            created_unix: now,
            attempts: 0,
            next_attempt_unix: now,
            last_error: None,
        });
    }
}

/// Why a change of pod happens (for the mail).
enum Switch {
    /// The first pod of the account.
    First,
    /// The user picked it.
    UserChoice,
    /// Moved away from a pod: why.
    Moved(String),
}

/// Makes `origin` the account's pod: the old one is left behind (its delete waits for
/// the new pod's first acknowledgement), the first push is due at once, and the user is
/// mailed where the backup lives.
#[allow(clippy::too_many_arguments)]
fn switch_to(
    pod: &Pod,
    state: &mut SyncState,
    account: &Account,
    origin: String,
    why: Switch,
    now: u64,
    mails: &mut Vec<Mail>,
) {
    let old = state.pod.take();
    if let Some(old) = old.clone() {
        leave(state, old, false, now);
    }
    state.chosen_by_user = matches!(why, Switch::UserChoice);
    state.pod = Some(origin.clone());
    state.pod_since_unix = now;
    state.email = account.email.clone();
    state.slot = SlotState::Pending;
    state.acked = None;
    state.push_due = Some(now);
    state.force_push = false;
    state.status_due = None;
    state.clear_failures();
    state.pod_refuses = false;
    tracing::info!(username = %account.username, from = old.as_deref().unwrap_or("-"), to = %origin, "backups: pod chosen");
    mails.push(mail_pod_chosen(pod, account, &origin, old.as_deref(), &why));
}

/// Settles who holds the backup of a running account.
#[allow(clippy::too_many_arguments)]
fn settle(
    pod: &Pod,
    timing: &Timing,
    state: &mut SyncState,
    account: &Account,
    choice: Option<&str>,
    now: u64,
    mails: &mut Vec<Mail>,
) -> Result<()> {
    if state.slot == SlotState::Off {
        state.slot = if state.pod.is_some() {
            SlotState::Pending
        } else {
            SlotState::NoPod
        };
    }
    // The address changed: the old address's slot is deleted once the new one holds a
    // backup (the same pod; §3 keys slots by address).
    if let Some(current) = state.pod.clone() {
        if state.email != account.email {
            leave(state, current.clone(), false, now);
            state.email = account.email.clone();
            state.acked = None;
            state.slot = SlotState::Pending;
            state.push_due = Some(now);
            state.status_due = None;
            mails.push(mail_pod_chosen(pod, account, &current, None, &Switch::First));
        }
    }
    // The user's own choice: any available pod (vetted or not), never this one.
    if let Some(choice) = choice {
        if state.pod.as_deref() != Some(choice) || state.slot == SlotState::Restored {
            let candidates = pods::available(&pod.store, &pod.config, 0, &[])?;
            if candidates.iter().any(|p| p.origin == choice) {
                switch_to(pod, state, account, choice.to_string(), Switch::UserChoice, now, mails);
            }
        }
    }
    if state.slot == SlotState::Restored {
        return Ok(());
    }
    // Leave a pod that refuses backups, or that kept failing past the period.
    if let Some(current) = state.pod.clone() {
        let refuses = pods::pod(&pod.store, &current)?.is_some_and(|i| i.refuses());
        let failing_long = state
            .failing_since
            .is_some_and(|since| now >= since.saturating_add(timing.move_after));
        state.pod_refuses = false;
        if refuses || failing_long {
            let candidates = pods::available(&pod.store, &pod.config, state.last_size, &[&current])?;
            match pods::choose_automatic(&candidates) {
                Some(next) => {
                    let why = if refuses {
                        format!("{} no longer accepts backups", host_of(&current))
                    } else {
                        format!(
                            "backups to {} have not succeeded since {}",
                            host_of(&current),
                            utc(state.failing_since.unwrap_or(now))
                        )
                    };
                    switch_to(pod, state, account, next, Switch::Moved(why), now, mails);
                }
                None if refuses => {
                    state.pod_refuses = true;
                    state.failing_since.get_or_insert(now);
                    state.last_error = Some(Event {
                        at_unix: now,
                        text: format!(
                            "{} no longer accepts backups; waiting for another backup pod",
                            host_of(&current)
                        ),
                    });
                    state.push_due = Some(now + timing.pod_check_interval);
                }
                None => {}
            }
        }
    }
    // No pod yet: the automatic choice.
    if state.pod.is_none() {
        let candidates = pods::available(&pod.store, &pod.config, state.last_size, &[])?;
        match pods::choose_automatic(&candidates) {
            Some(origin) => switch_to(pod, state, account, origin, Switch::First, now, mails),
            None => {
                state.slot = SlotState::NoPod;
                state.email = account.email.clone();
                state.failing_since.get_or_insert(now);
                state.push_due = Some(now + timing.pod_check_interval);
            }
        }
    }
    Ok(())
}

/// What a holder answered.
enum Answer {
    Status(u16, Option<Value>),
    Unreachable(String),
}

impl Answer {
    fn sequence(&self) -> Option<u64> {
        match self {
            Answer::Status(_, Some(v)) => v.get("sequence").and_then(Value::as_u64),
            _ => None,
        }
    }

    fn describe(&self, origin: &str) -> String {
        match self {
            Answer::Status(code, body) => {
                let detail = body
                    .as_ref()
                    .and_then(|b| b.get("error").or_else(|| b.get("status")))
                    .and_then(Value::as_str)
                    .map(|s| format!(": {}", tame(s)))
                    .unwrap_or_default();
                format!("{} answered {code}{detail}", host_of(origin))
            }
            Answer::Unreachable(why) => why.clone(),
        }
    }
}

/// Another pod's words, fit to show on a page and in a mail: one line, at most 200
/// characters (a hostile pod must not write our users' mails).
fn tame(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

async fn post(pod: &Pod, origin: &str, path: &str, body: Vec<u8>) -> Result<Answer> {
    let http = pod.http.clone();
    let url = format!("{origin}{path}");
    let response = tokio::task::spawn_blocking(move || http.post(&url, "application/json", &body))
        .await
        .map_err(Error::internal)?;
    Ok(match response {
        Ok(r) => Answer::Status(r.status, serde_json::from_slice(&r.body).ok()),
        Err(e) => Answer::Unreachable(e.client_message()),
    })
}

/// Records a failed attempt: backoff, and since when nothing succeeds.
fn failed(state: &mut SyncState, timing: &Timing, now: u64, text: String) {
    state.failures = state.failures.saturating_add(1);
    state.failing_since.get_or_insert(now);
    state.push_due = Some(now + timing.backoff.delay(state.failures).as_secs());
    state.last_error = Some(Event { at_unix: now, text });
}

/// Pushes the account's backup unless it is unchanged since the last acknowledged
/// push. Returns whether to go round again (a caught-up sequence, a refusal).
async fn push(
    pod: &Arc<Pod>,
    timing: &Timing,
    state: &mut SyncState,
    account: &Account,
    now: u64,
    report: &mut Report,
) -> Result<bool> {
    let Some(origin) = state.pod.clone() else {
        return Ok(false);
    };
    let Some(key) = account.sealing_key.clone() else {
        return Ok(false);
    };
    let archive = crate::account::archive::write_archive(account, &pod.config.public_host(), &pod.config.public_url())?;
    let content = content_digest(&archive, &key);
    if !state.force_push && state.acked.as_ref().is_some_and(|a| a.content == content) {
        tracing::debug!(username = %account.username, "backups: unchanged since the last push, not pushed");
        state.push_due = Some(now + timing.push_interval);
        report.skipped += 1;
        return Ok(false);
    }
    // A changed account: the pods it knows through verified federation join the directory.
    if !account.known_pods.is_empty() {
        let noted = pod.store.transaction(|tx| {
            let mut any = false;
            for origin in &account.known_pods {
                any |= pods::note_seen_in(tx, origin)?;
            }
            Ok(any)
        })?;
        if noted {
            // New pods: the worker reads their NodeInfo now.
            pod.backup_sync.wake();
        }
    }
    let sequence = state.next_sequence;
    let email = state.email.clone();
    let private_pem = account.private_key_pem.clone();
    let public_pem = account.public_key_pem.clone();
    let when = created_at(now_unix());
    let (lfbk, signature, farewell) = {
        let (email, when) = (email.clone(), when.clone());
        tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, String, SignedDelete)> {
            let lfbk = crate::sealed::seal(&archive, &key);
            let digest: [u8; 32] = Sha256::digest(&lfbk).into();
            let private = private_key_from_pem(&private_pem)?;
            let signature = sign_base64(
                &private,
                push_signed_text(&email, sequence, &when, Some(&digest)).as_bytes(),
            );
            let farewell = SignedDelete {
                signature: sign_base64(&private, push_signed_text(&email, sequence + 1, &when, None).as_bytes()),
                email,
                public_key_pem: public_pem,
                sequence: sequence + 1,
                created_at: when,
            };
            Ok((lfbk, signature, farewell))
        })
        .await
        .map_err(Error::internal)??
    };
    let lfbk_sha256: [u8; 32] = Sha256::digest(&lfbk).into();
    state.last_size = lfbk.len() as u64;
    // The sequence is spent, and the delete that would follow is kept, before sending.
    state.next_sequence = sequence + 1;
    state.farewell = Some(farewell);
    save(pod, &account.username, state, &[], None, true).await?;
    let body = json!({
        "version": 1,
        "email": email,
        "public_key": account.public_key_pem,
        "sequence": sequence,
        "created_at": when,
        "backup": base64::engine::general_purpose::STANDARD.encode(&lfbk),
        "signature": signature,
    })
    .to_string()
    .into_bytes();
    let _ = pod.backup_sync.inner.events.send(SyncEvent::PushStarted {
        username: account.username.clone(),
        pod: origin.clone(),
        sequence,
        bytes: lfbk.len() as u64,
        at: Instant::now(),
    });
    pod.backup_sync
        .inner
        .bytes_pushed
        .fetch_add(lfbk.len() as u64, Ordering::Relaxed);
    report.pushes += 1;
    report.bytes_pushed += lfbk.len() as u64;
    let answer = post(pod, &origin, "/api/lifeboat/v1/backups", body).await?;
    let now_done = now_unix().max(now);
    let mut mails = Vec::new();
    let again = match answer {
        Answer::Status(code @ (200 | 202), _) => {
            let confirmed = code == 200;
            state.acked = Some(Acked {
                sequence,
                content,
                lfbk_sha256,
                at_unix: now_done,
                confirmed,
            });
            state.slot = if confirmed {
                SlotState::Stored
            } else {
                SlotState::AwaitingConfirmation
            };
            state.last_success = Some((now_done, sequence));
            state.clear_failures();
            state.force_push = false;
            state.push_due = Some(now + timing.push_interval);
            if state.status_due.is_none() {
                state.status_due = Some(now + timing.status_interval);
            }
            for left in &mut state.left_behind {
                left.armed = true;
            }
            tracing::info!(username = %account.username, %origin, sequence, code, "backups: pushed");
            false
        }
        Answer::Status(409, _) if answer.sequence().is_some_and(|held| held >= sequence) => {
            let held = answer.sequence().unwrap_or(sequence);
            tracing::info!(username = %account.username, %origin, held, "backups: catching up with the held sequence");
            state.next_sequence = state.next_sequence.max(held + 1);
            state.force_push = true;
            state.push_due = Some(now);
            true
        }
        Answer::Status(410, _) => {
            restored(pod, state, account, &origin, now, &mut mails);
            false
        }
        Answer::Status(403, _) => {
            tracing::warn!(username = %account.username, %origin, "backups: the pod refuses backups (403)");
            pods::record_refusal(&pod.store, &origin, now_done)?;
            failed(state, timing, now, answer.describe(&origin));
            state.push_due = Some(now);
            true
        }
        _ => {
            let text = answer.describe(&origin);
            tracing::warn!(username = %account.username, %origin, "backups: push failed: {text}");
            failed(state, timing, now, text);
            false
        }
    };
    save(pod, &account.username, state, &mails, None, true).await?;
    Ok(again)
}

/// The holder answered 410: the backup was restored, so the account lives elsewhere.
fn restored(pod: &Pod, state: &mut SyncState, account: &Account, origin: &str, now: u64, mails: &mut Vec<Mail>) {
    if state.slot != SlotState::Restored {
        tracing::warn!(username = %account.username, %origin, "backups: the backup was restored elsewhere (410)");
        mails.push(mail_restored(pod, account, origin));
    }
    state.slot = SlotState::Restored;
    state.farewell = None;
    state.push_due = None;
    state.status_due = None;
    state.force_push = false;
    state.failing_since = None;
    state.failures = 0;
    state.last_error = Some(Event {
        at_unix: now,
        text: format!("{} answered 410: this backup was restored", host_of(origin)),
    });
}

/// The weekly status check (§3): re-push when the holder's copy is not what we last
/// pushed. Returns whether to go round again (to push).
async fn status_check(
    pod: &Arc<Pod>,
    timing: &Timing,
    state: &mut SyncState,
    account: &Account,
    now: u64,
    report: &mut Report,
) -> Result<bool> {
    let (Some(origin), Some(acked)) = (state.pod.clone(), state.acked.clone()) else {
        return Ok(false);
    };
    report.status_checks += 1;
    let when = created_at(now_unix());
    let email = state.email.clone();
    let private_pem = account.private_key_pem.clone();
    let text = status_signed_text(&email, &when);
    let signature = tokio::task::spawn_blocking(move || -> Result<String> {
        Ok(sign_base64(&private_key_from_pem(&private_pem)?, text.as_bytes()))
    })
    .await
    .map_err(Error::internal)??;
    let body =
        json!({"email": email, "public_key": account.public_key_pem, "created_at": when, "signature": signature})
            .to_string()
            .into_bytes();
    let answer = post(pod, &origin, "/api/lifeboat/v1/backups/status", body).await?;
    state.status_due = Some(now + timing.status_interval);
    let mut mails = Vec::new();
    let again = match &answer {
        Answer::Status(200, Some(held)) => {
            let sequence = held.get("sequence").and_then(Value::as_u64).unwrap_or(0);
            let sha256 = held.get("sha256").and_then(Value::as_str);
            let confirmed = held.get("confirmed").and_then(Value::as_bool) == Some(true);
            if sequence == acked.sequence && sha256 == Some(hex::encode(acked.lfbk_sha256).as_str()) {
                state.slot = if confirmed {
                    SlotState::Stored
                } else {
                    SlotState::AwaitingConfirmation
                };
                if let Some(a) = state.acked.as_mut() {
                    a.confirmed = confirmed;
                }
                false
            } else {
                tracing::warn!(username = %account.username, %origin, held = sequence, ours = acked.sequence, "backups: the holder's copy differs; pushing again");
                state.next_sequence = state.next_sequence.max(sequence + 1);
                state.force_push = true;
                state.push_due = Some(now);
                true
            }
        }
        Answer::Status(404, _) => {
            tracing::warn!(username = %account.username, %origin, "backups: the holder lost the backup; pushing again");
            state.force_push = true;
            state.push_due = Some(now);
            true
        }
        Answer::Status(410, _) => {
            restored(pod, state, account, &origin, now, &mut mails);
            false
        }
        _ => {
            let text = format!("status check: {}", answer.describe(&origin));
            tracing::warn!(username = %account.username, %origin, "backups: {text}");
            state.last_error = Some(Event { at_unix: now, text });
            state.status_due = Some(now + timing.backoff.max.as_secs().max(1));
            false
        }
    };
    save(pod, &account.username, state, &mails, None, !mails.is_empty()).await?;
    Ok(again)
}

/// Sends the armed deletes that are due. A delete is done when the holder deleted it,
/// holds nothing (404, or 403 from a pod with backups off: it answers deletes of held
/// slots), or restored it (410). A stale answer is re-signed above the held sequence
/// while the account still has its key.
async fn send_deletes(
    pod: &Arc<Pod>,
    timing: &Timing,
    state: &mut SyncState,
    account: Option<&Account>,
    now: u64,
    report: &mut Report,
) -> Result<()> {
    let due: Vec<usize> = (0..state.left_behind.len())
        .filter(|&i| state.left_behind[i].armed && state.left_behind[i].next_attempt_unix <= now)
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    let mut done: Vec<usize> = Vec::new();
    for i in due {
        let left = state.left_behind[i].clone();
        report.deletes += 1;
        let answer = post(pod, &left.origin, "/api/lifeboat/v1/backups", left.delete.body()).await?;
        match answer {
            Answer::Status(200 | 202 | 403 | 404 | 410, _) => {
                tracing::info!(origin = %left.origin, sequence = left.delete.sequence, "backups: delete sent to a pod left behind");
                done.push(i);
            }
            Answer::Status(409, _) => {
                let held = answer.sequence().unwrap_or(left.delete.sequence);
                match account.filter(|a| !a.private_key_pem.is_empty()) {
                    Some(account) => {
                        let sequence = state.next_sequence.max(held + 1);
                        state.next_sequence = sequence + 1;
                        let when = created_at(now_unix());
                        let private_pem = account.private_key_pem.clone();
                        let text = push_signed_text(&left.delete.email, sequence, &when, None);
                        let signature = tokio::task::spawn_blocking(move || -> Result<String> {
                            Ok(sign_base64(&private_key_from_pem(&private_pem)?, text.as_bytes()))
                        })
                        .await
                        .map_err(Error::internal)??;
                        let entry = &mut state.left_behind[i];
                        entry.delete.sequence = sequence;
                        entry.delete.created_at = when;
                        entry.delete.signature = signature;
                        entry.next_attempt_unix = now;
                        // Durable before it is sent, like every sequence.
                        save(pod, &account.username, state, &[], None, true).await?;
                    }
                    None => {
                        tracing::warn!(origin = %left.origin, held, "backups: a delete is stale and the key is gone; giving it up");
                        done.push(i);
                    }
                }
            }
            _ => {
                let text = format!("delete: {}", answer.describe(&left.origin));
                let entry = &mut state.left_behind[i];
                entry.attempts = entry.attempts.saturating_add(1);
                entry.next_attempt_unix = now + timing.backoff.delay(entry.attempts).as_secs();
                entry.last_error = Some(text.clone());
                if now.saturating_sub(entry.created_unix) >= DELETE_GIVE_UP_SECS {
                    tracing::warn!(origin = %left.origin, "backups: giving up a delete after 30 days: {text}");
                    done.push(i);
                } else {
                    tracing::info!(origin = %left.origin, "backups: {text}");
                }
            }
        }
    }
    let mut index = 0;
    state.left_behind.retain(|_| {
        let keep = !done.contains(&index);
        index += 1;
        keep
    });
    Ok(())
}

/// Mails the user once when backups have not succeeded for `backups.warn_after_failing`.
fn warn_if_failing(
    pod: &Pod,
    timing: &Timing,
    state: &mut SyncState,
    account: &Account,
    now: u64,
    mails: &mut Vec<Mail>,
) {
    let Some(since) = state.failing_since else {
        return;
    };
    if state.warned || now < since.saturating_add(timing.warn_after) {
        return;
    }
    state.warned = true;
    tracing::warn!(username = %account.username, since, "backups: telling the user that backups are failing");
    mails.push(mail_failing(pod, account, state, since));
}

// ---------------------------------------------------------------------------------
// What the user sees
// ---------------------------------------------------------------------------------

/// An account's backups as its settings show them.
#[derive(Clone, Debug)]
pub struct Overview {
    /// Why backups are not running, or `None` when they are.
    pub off: Option<&'static str>,
    pub state: SyncState,
    /// The current pod as the directory knows it.
    pub pod: Option<PodView>,
    /// Pods the user may choose (available now; vetted first), the current one excluded.
    pub choices: Vec<PodView>,
    /// The short fingerprint of the account key, which the holder's mail shows too.
    pub short_fingerprint: Option<String>,
    /// Since when backups have not succeeded, once that is longer than `warn_after_failing`.
    pub failing_too_long: Option<u64>,
    /// A pod the user picked that the worker has not applied yet.
    pub pending_choice: Option<String>,
}

/// The backups of `account`, for its settings.
pub fn overview(pod: &Pod, account: &Account) -> Result<Overview> {
    let timing = Timing::from_config(&pod.config);
    let state = pod.store.sync_state(&account.username)?.unwrap_or_else(SyncState::new);
    let directory = pods::directory(&pod.store, &pod.config)?;
    let current = state
        .pod
        .as_ref()
        .and_then(|o| directory.iter().find(|p| &p.origin == o).cloned());
    let choices = directory
        .into_iter()
        .filter(|p| p.available && Some(&p.origin) != state.pod.as_ref())
        .collect();
    let short_fingerprint = super::push::AccountKey::from_pem(&account.public_key_pem)
        .ok()
        .map(|k| k.fingerprint().short());
    let now = now_unix();
    let failing_too_long = state
        .failing_since
        .filter(|since| now >= since.saturating_add(timing.warn_after));
    Ok(Overview {
        off: why_off(account),
        pending_choice: pod.store.backup_choice(&account.username)?,
        state,
        pod: current,
        choices,
        short_fingerprint,
        failing_too_long,
    })
}

/// The user picks `url` as their backup pod: it must be available now (vetted or not)
/// and not this pod. The worker applies it at once: the old pod is left behind, the
/// first push to the new one goes out, and the user is mailed.
pub async fn choose(pod: &Pod, account: &Account, url: &str) -> Result<String> {
    if let Some(why) = why_off(account) {
        return Err(Error::Conflict(format!("backups are not running: {why}")));
    }
    let origin = crate::http_client::origin_of(url)?;
    let available = pods::available(&pod.store, &pod.config, 0, &[])?;
    if !available.iter().any(|p| p.origin == origin) {
        return Err(Error::bad(format!(
            "{} is not available as a backup pod now; choose one from the list",
            host_of(&origin)
        )));
    }
    pod.store.transaction(|tx| {
        tx.put_backup_choice(&account.username, &origin)?;
        tx.nudge(
            &account.username,
            Nudge {
                changed_unix: None,
                now: true,
            },
        )
    })?;
    pod.store.durable().await?;
    pod.backup_sync.wake();
    tracing::info!(username = %account.username, %origin, "backups: the user chose a pod");
    Ok(origin)
}

fn diaspora_id(pod: &Pod, account: &Account) -> String {
    account.diaspora_id(&pod.config.public_host())
}

const KEEP_SAFE: &str = "Keep your backup pass phrase safe: write it down and keep it where you will find it even if this pod is gone. It is the only key to your backup. We never store it, never send it, and cannot recover it.";

fn mail_pod_chosen(pod: &Pod, account: &Account, origin: &str, old: Option<&str>, why: &Switch) -> Mail {
    let host = host_of(origin);
    let fingerprint = super::push::AccountKey::from_pem(&account.public_key_pem)
        .map(|k| k.fingerprint().short())
        .unwrap_or_default();
    let (subject, opening) = match (why, old) {
        (Switch::Moved(reason), Some(old)) => (
            format!("Your encrypted backup moved to {host}"),
            format!(
                "the encrypted backup of your account {id} has moved from {old} to {host}, because {reason}. {old} is asked to delete the copy it holds once {host} has yours.",
                id = diaspora_id(pod, account),
                old = host_of(old),
            ),
        ),
        (Switch::UserChoice, _) => (
            format!("Your encrypted backup is now kept at {host}"),
            format!(
                "as you chose, the encrypted backup of your account {id} is now kept at {host}.{left}",
                id = diaspora_id(pod, account),
                left = old
                    .map(|o| format!(" {} is asked to delete the copy it holds once {host} has yours.", host_of(o)))
                    .unwrap_or_default()
            ),
        ),
        _ => (
            format!("Your encrypted backup is kept at {host}"),
            format!(
                "an encrypted backup of your account {id} is now kept at {host}, and kept current as your account changes.",
                id = diaspora_id(pod, account)
            ),
        ),
    };
    Mail::new(
        account.email.clone(),
        subject,
        format!(
            "Hello {user},\n\n{opening}\n\nIf {home} ever disappears, restore your account at\n\n  {origin}/restore_backup\n\nwith this email address ({email}) and your backup pass phrase.\n\n{KEEP_SAFE}\n\n{host} will also write to you, asking you to confirm that this backup is yours: please confirm it. Its message shows the key fingerprint {fingerprint}, as do your settings here.\n\nYour settings show how your backup is doing, and let you choose another backup pod: {url}/settings#backup-pod\n",
            user = account.username,
            home = pod.config.public_host(),
            email = account.email,
            url = pod.config.public_url(),
        ),
    )
}

fn mail_restored(pod: &Pod, account: &Account, origin: &str) -> Mail {
    Mail::new(
        account.email.clone(),
        format!("Your account was restored on {}", host_of(origin)),
        format!(
            "Hello {user},\n\n{host}, which kept the encrypted backup of your account {id}, says that this backup has been restored: your account now lives on elsewhere, restored by someone who had your email and your backup pass phrase.\n\nIf that was you, there is nothing to do. If it was not, sign in at {url}/settings, change your backup pass phrase and choose another backup pod, and tell the podmin of {host}.\n\nBackups of this account are paused until you choose a backup pod again.\n",
            user = account.username,
            host = host_of(origin),
            id = diaspora_id(pod, account),
            url = pod.config.public_url(),
        ),
    )
}

fn mail_failing(pod: &Pod, account: &Account, state: &SyncState, since: u64) -> Mail {
    let detail = match (&state.pod, &state.last_error) {
        (None, _) => "No backup pod is available at the moment; one is chosen as soon as one appears.".to_string(),
        (Some(origin), Some(error)) => format!(
            "Your backup pod is {}. The last error was: {}",
            host_of(origin),
            error.text
        ),
        (Some(origin), None) => format!("Your backup pod is {}.", host_of(origin)),
    };
    Mail::new(
        account.email.clone(),
        "Your encrypted backup is not up to date".to_string(),
        format!(
            "Hello {user},\n\nthe encrypted backup of your account {id} has not been updated since {since}. {detail}\n\nlifeboat keeps trying, and moves your backup to another pod if this one keeps failing. You can choose another backup pod yourself in your settings: {url}/settings#backup-pod\n\n{KEEP_SAFE}\n",
            user = account.username,
            id = diaspora_id(pod, account),
            since = utc(since),
            url = pod.config.public_url(),
        ),
    )
}

/// Every value in the sync trees decodes (for `lifeboat check`).
pub fn check_state(value: &[u8]) -> Result<()> {
    crate::store::decode::<SyncState>(value).map(|_| ())
}

/// See [`check_state`].
pub fn check_nudge(value: &[u8]) -> Result<()> {
    crate::store::decode::<Nudge>(value).map(|_| ())
}

#[cfg(test)]
mod tests;
