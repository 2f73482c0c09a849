//! The holder side of backups (docs/holder-api.md): what a backup pod does with pushes
//! from other pods — one slot per (email, key fingerprint), the order of checks,
//! confirmation by the address's owner, quotas, signed deletes that leave tombstones,
//! status answers — and what the podmin sees of it.
//!
//! The domain declares the storage it needs as [`SlotStore`] (a unit of work over
//! slots, their backups, per-address records, totals, confirmation tokens and the mail
//! queue); `store::backups` implements it on sled. The web edge (`web::backups`) only
//! reads bodies and maps [`PushOutcome`]s and errors to HTTP.
//!
//! For the restore flow ([`super::restore`]) it lists an address's restorable slots
//! ([`Holder::restorable`], confirmed first), marks a slot restored inside the restore's
//! own unit of work ([`mark_restored_in`]) and erases a restored slot's ciphertext after
//! [`RESTORED_KEPT_SECS`] ([`Holder::erase_restored`]).
//!
//! Not owned here: the envelope format ([`super::push`]), the `.lfbk` format
//! ([`crate::sealed`]), the restore flow itself ([`super::restore`]).

use std::future::Future;
use std::sync::Arc;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::push::{Fingerprint, Push, RawContent, RawPush, StatusRequest};
use crate::config::Config;
use crate::mail::{Mail, Mailer};
use crate::{Error, Result};

/// What a unit of work returns: a conflict makes the store run it again; an abort
/// carries a domain error out.
pub use crate::store::TxResult;

/// At most this many unconfirmed slots per address; one more evicts the oldest.
pub const MAX_UNCONFIRMED_PER_EMAIL: usize = 3;

/// A confirmation link works this long.
pub const CONFIRM_TOKEN_TTL_SECS: u64 = 30 * 86400;

/// At most one confirmation mail per address in this many seconds.
pub const MAIL_PER_ADDRESS_SECS: u64 = 86400;

/// Room for the JSON envelope around the base64 backup in a push body.
pub const ENVELOPE_BYTES: u64 = 16 * 1024;

/// A restored slot's ciphertext is kept this long after the restore, then erased (its
/// tombstone stays, so pushes keep answering 410).
pub const RESTORED_KEPT_SECS: u64 = 30 * 86400;

/// Which slot: the normalised email and the key's fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlotKey {
    pub email: String,
    pub fingerprint: Fingerprint,
}

impl SlotKey {
    /// The storage key: email bytes, 0x00, the 32 fingerprint bytes. (An email never
    /// holds 0x00: control characters are refused.)
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.email.len() + 33);
        out.extend_from_slice(self.email.as_bytes());
        out.push(0);
        out.extend_from_slice(&self.fingerprint.0);
        out
    }

    /// The inverse of [`SlotKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Option<SlotKey> {
        if bytes.len() < 34 || bytes[bytes.len() - 33] != 0 {
            return None;
        }
        let (email, rest) = bytes.split_at(bytes.len() - 33);
        Some(SlotKey {
            email: String::from_utf8(email.to_vec()).ok()?,
            fingerprint: Fingerprint(rest[1..].try_into().ok()?),
        })
    }
}

/// One slot: the state of the backup held for an (email, key) pair. Never holds the
/// backup itself (that is kept apart, so listing slots never reads backups).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The highest sequence accepted; kept after a delete (the tombstone).
    pub sequence: u64,
    /// The owner pressed "yes, this is my pod's backup".
    pub confirmed: bool,
    /// The owner pressed "not mine": nothing is stored or mailed for this key again.
    pub rejected: bool,
    /// When the backup was restored (Unix seconds); such a slot answers 410.
    pub restored_at: Option<u64>,
    /// When the slot was created (Unix seconds).
    pub created_unix: u64,
    /// When a push last changed the slot (Unix seconds).
    pub last_push_unix: u64,
    /// The `created_at` of that push, as signed.
    pub created_at: String,
    /// Bytes of the held backup; 0 when none.
    pub size: u64,
    /// SHA-256 of the held backup; `None` when none is held (a tombstone).
    pub sha256: Option<[u8; 32]>,
    /// SHA-256 of the confirmation link's token that is valid now, if any.
    pub confirm_token: Option<[u8; 32]>,
    /// When the last confirmation mail for this slot was queued.
    pub confirm_mailed_unix: Option<u64>,
}

impl Slot {
    /// Whether a backup is held (not a tombstone).
    pub fn holds_backup(&self) -> bool {
        self.sha256.is_some()
    }
}

/// Per address: its slots in creation order and the last confirmation mail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressRecord {
    /// Fingerprints of the address's slots, oldest first.
    pub slots: Vec<[u8; 32]>,
    /// When a confirmation mail last went to the address (Unix seconds).
    pub last_mail_unix: Option<u64>,
}

/// Counts and bytes of the held slots, kept up to date in every unit of work (quotas
/// and NodeInfo read them; `backups stats` shows them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub confirmed_slots: u64,
    pub confirmed_bytes: u64,
    pub unconfirmed_slots: u64,
    pub unconfirmed_bytes: u64,
    /// Slots holding no backup (deleted, rejected or erased after a restore).
    pub tombstones: u64,
    pub restored: u64,
}

impl Totals {
    fn apply(&mut self, slot: &Slot, sign: i8) {
        let add = |n: &mut u64, by: u64| {
            *n = if sign > 0 {
                n.saturating_add(by)
            } else {
                n.saturating_sub(by)
            }
        };
        if slot.confirmed {
            add(&mut self.confirmed_slots, 1);
            add(&mut self.confirmed_bytes, slot.size);
        } else {
            add(&mut self.unconfirmed_slots, 1);
            add(&mut self.unconfirmed_bytes, slot.size);
        }
        if !slot.holds_backup() {
            add(&mut self.tombstones, 1);
        }
        if slot.restored_at.is_some() {
            add(&mut self.restored, 1);
        }
    }

    /// Replaces `old` by `new` in the figures.
    pub fn replace(&mut self, old: Option<&Slot>, new: Option<&Slot>) {
        if let Some(old) = old {
            self.apply(old, -1);
        }
        if let Some(new) = new {
            self.apply(new, 1);
        }
    }
}

/// The global hourly count of confirmation mails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailHour {
    /// Unix time / 3600.
    pub hour: u64,
    pub count: u32,
}

/// A confirmation link's token, stored under the SHA-256 of the token only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmToken {
    pub email: String,
    pub fingerprint: [u8; 32],
    pub expires_unix: u64,
}

/// The storage the holder needs. One implementation on sled (`store::backups`);
/// tests use it on a temporary folder.
pub trait SlotStore: Clone + Send + Sync + 'static {
    /// The view of the store inside a unit of work.
    type Tx<'t>: SlotTx<Staged = Self::Staged>
    where
        Self: 't;
    /// Bytes written by [`SlotStore::stage`], not yet given to a slot. Dropping them
    /// leaves them to the storage to reclaim.
    type Staged: Send + 'static;

    /// Runs `work` as one unit: all of its writes happen or none. It may run more than
    /// once, so it must not have effects outside the unit.
    fn unit<R>(&self, work: impl Fn(&Self::Tx<'_>) -> TxResult<R>) -> Result<R>;
    /// One slot.
    fn slot(&self, key: &SlotKey) -> Result<Option<Slot>>;
    /// Every slot, in key order (email, then fingerprint). Reads no backup.
    fn slots(&self) -> Result<Vec<(SlotKey, Slot)>>;
    /// The slots of one normalised address, in fingerprint order. Reads no backup.
    fn slots_of(&self, email: &str) -> Result<Vec<(SlotKey, Slot)>>;
    /// The held backup of a slot.
    fn backup(&self, key: &SlotKey) -> Result<Option<Vec<u8>>>;
    /// Writes a backup's bytes where they will be held, before the unit of work that
    /// gives them to a slot ([`SlotTx::put_backup`]). Blocking: call it off the async
    /// runtime. The bytes are durable only after [`SlotStore::make_durable`].
    fn stage(&self, lfbk: &[u8]) -> Result<Self::Staged>;
    /// Runs `work` as one unit once `staged` (if any) is durable, so the unit may point
    /// a slot at it, and returns once the unit is durable too. Concurrent callers share
    /// the syncs. The unit may run more than once, like [`SlotStore::unit`].
    fn unit_when_durable<R: Send + 'static>(
        &self,
        staged: Option<Self::Staged>,
        work: impl Fn(&Self::Tx<'_>, Option<&Self::Staged>) -> TxResult<R> + Send + 'static,
    ) -> impl Future<Output = Result<R>> + Send;
    /// A confirmation token by the SHA-256 of the token.
    fn token(&self, hash: &[u8; 32]) -> Result<Option<ConfirmToken>>;
    /// The current totals.
    fn totals(&self) -> Result<Totals>;
    /// A fresh id for a queued mail (taken before the unit of work).
    fn mail_id(&self) -> Result<u64>;
    /// Makes every write so far durable (shared with concurrent callers).
    fn durable(&self) -> impl Future<Output = Result<()>> + Send;
}

/// The store inside a unit of work.
pub trait SlotTx {
    /// See [`SlotStore::Staged`].
    type Staged;
    fn slot(&self, key: &SlotKey) -> TxResult<Option<Slot>>;
    fn put_slot(&self, key: &SlotKey, slot: &Slot) -> TxResult<()>;
    fn remove_slot(&self, key: &SlotKey) -> TxResult<()>;
    /// Gives the slot the staged bytes (the bytes it held before are reclaimed later).
    fn put_backup(&self, key: &SlotKey, staged: &Self::Staged) -> TxResult<()>;
    /// Deletes the slot's backup; its bytes are erased once the unit of work is durable.
    fn remove_backup(&self, key: &SlotKey) -> TxResult<()>;
    fn address(&self, email: &str) -> TxResult<AddressRecord>;
    /// Writes the record; an empty one (no slots, no recent mail) is removed.
    fn put_address(&self, email: &str, record: &AddressRecord) -> TxResult<()>;
    fn totals(&self) -> TxResult<Totals>;
    fn put_totals(&self, totals: &Totals) -> TxResult<()>;
    fn mail_hour(&self) -> TxResult<MailHour>;
    fn put_mail_hour(&self, hour: &MailHour) -> TxResult<()>;
    fn token(&self, hash: &[u8; 32]) -> TxResult<Option<ConfirmToken>>;
    fn put_token(&self, hash: &[u8; 32], token: &ConfirmToken) -> TxResult<()>;
    fn remove_token(&self, hash: &[u8; 32]) -> TxResult<()>;
    /// Queues a mail, committed with the rest of the unit.
    fn enqueue_mail(&self, id: u64, mail: &Mail) -> TxResult<()>;
}

/// The configuration the holder follows.
#[derive(Clone, Debug)]
pub struct Policy {
    pub accept_backups: bool,
    pub max_backup_bytes: u64,
    pub quota_bytes: u64,
    pub unconfirmed_quota_bytes: u64,
    pub confirmation_mails_per_hour: u32,
    /// This pod's public URL, without a trailing slash.
    pub public_url: String,
    pub public_host: String,
}

impl Policy {
    pub fn from_config(config: &Config) -> Policy {
        Policy {
            accept_backups: config.backups.allow_backups_and_migration,
            max_backup_bytes: config.backups.max_backup_bytes,
            quota_bytes: config.backups.quota_bytes,
            unconfirmed_quota_bytes: config.backups.unconfirmed_quota_bytes,
            confirmation_mails_per_hour: config.backups.confirmation_mails_per_hour,
            public_url: config.public_url(),
            public_host: config.public_host(),
        }
    }
}

/// How a push was answered (every answer that is not an error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// `202 {"status": "awaiting_confirmation"}`: the slot is not confirmed.
    AwaitingConfirmation,
    /// `200 {"status": "stored", "sequence": N}`, once durable.
    Stored(u64),
    /// `200 {"status": "deleted", "sequence": N}`, once durable.
    Deleted(u64),
    /// `409 {"status": "stale", "sequence": HELD}`.
    Stale(u64),
    /// `410 {"status": "restored"}`.
    Restored,
}

/// What the status request answers for a held slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    pub sequence: u64,
    /// Lowercase hex, `None` once deleted.
    pub sha256: Option<String>,
    pub confirmed: bool,
}

/// How a status request was answered (every answer that is not an error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusOutcome {
    /// `200` with the slot's status.
    Held(SlotStatus),
    /// `410 {"status": "restored"}`.
    Restored,
}

/// What a confirmation link leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmAction {
    /// "Yes, this is my pod's backup."
    Confirm,
    /// "Not mine — delete it."
    Reject,
}

/// What the confirmation page shows about its slot.
#[derive(Clone, Debug)]
pub struct PendingSlot {
    pub email: String,
    pub short_fingerprint: String,
    pub size: u64,
    pub last_push_unix: u64,
}

/// One line of `backups list`: everything but the content.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SlotInfo {
    pub email: String,
    pub fingerprint: String,
    pub confirmed: bool,
    pub rejected: bool,
    pub restored: bool,
    pub holds_backup: bool,
    pub size: u64,
    pub sequence: u64,
    pub last_push_unix: u64,
}

/// The holder: a store and a policy. Cheap to build per request.
pub struct Holder<S> {
    store: S,
    policy: Arc<Policy>,
    /// Woken when a confirmation mail was queued.
    mailer: Mailer,
}

/// What [`apply_push`] needs besides the push, prepared outside the unit of work.
struct PushContext {
    policy: Arc<Policy>,
    now: u64,
    mail_id: Option<u64>,
    token: [u8; 32],
}

/// What a push's unit of work did, so the caller knows to wake the mailer.
struct Applied {
    outcome: PushOutcome,
    mailed: bool,
}

impl<S: SlotStore> Holder<S> {
    pub fn new(store: S, policy: Policy, mailer: Mailer) -> Holder<S> {
        Holder {
            store,
            policy: Arc::new(policy),
            mailer,
        }
    }

    /// The same holder under another policy (a changed configuration, tests).
    pub fn with_policy(&self, policy: Policy) -> Holder<S>
    where
        S: Clone,
    {
        Holder::new(self.store.clone(), policy, self.mailer.clone())
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The largest push body read: about 4/3 of the largest backup plus the envelope.
    /// With backups off only deletes are answered, and they fit in the envelope.
    pub fn body_limit(&self) -> u64 {
        if self.policy.accept_backups {
            self.policy.max_backup_bytes.div_ceil(3) * 4 + ENVELOPE_BYTES
        } else {
            ENVELOPE_BYTES
        }
    }

    /// The answer to a body over [`Holder::body_limit`]: 403 when backups are off
    /// (check 1: such a body can only carry a new backup), else 413.
    pub fn oversized(&self, message: String) -> Error {
        if self.policy.accept_backups {
            Error::TooLarge(message)
        } else {
            not_accepting()
        }
    }

    /// Whether NodeInfo may advertise `acceptsBackups`: opted in and not full.
    pub fn accepts_backups(&self) -> Result<bool> {
        if !self.policy.accept_backups {
            return Ok(false);
        }
        let totals = self.store.totals()?;
        Ok(totals.confirmed_bytes < self.policy.quota_bytes
            && totals.unconfirmed_bytes < self.policy.unconfirmed_quota_bytes)
    }

    /// Handles one push body, in the order of docs/holder-api.md, "Check order": 403,
    /// 413/507, 400, 401, then the slot's state (202, 200, 409, 410). "Stored" and
    /// "deleted" are answered only once durable.
    pub async fn push(&self, body: &[u8]) -> Result<PushOutcome> {
        let now = crate::now_unix();
        // Just enough parsing to name the slot (check 1) and size the backup (check 2).
        let raw = match RawPush::parse(body) {
            Ok(raw) => raw,
            Err(_) if !self.policy.accept_backups => return Err(not_accepting()),
            Err(e) => return Err(e),
        };
        let key = raw.key();
        let held = match (raw.email(), &key) {
            (Some(email), Ok(key)) => self.store.slot(&SlotKey {
                email: email.to_string(),
                fingerprint: key.fingerprint(),
            })?,
            _ => None,
        };
        // 1. Only deletes of held slots are answered while backups are off.
        let is_delete = raw.content() == RawContent::Delete;
        if !self.policy.accept_backups && (held.is_none() || !is_delete) {
            return Err(not_accepting());
        }
        // 2. Size and quota.
        if let Some(len) = raw.backup_len() {
            if len > self.policy.max_backup_bytes {
                return Err(Error::TooLarge(format!(
                    "the backup is larger than this pod's limit of {} bytes",
                    self.policy.max_backup_bytes
                )));
            }
            let totals = self.store.totals()?;
            check_quota(&self.policy, &totals, held.as_ref(), len)?;
        }
        // 3. Format, key, .lfbk header and costs, then the signature.
        let push = raw.validate(key, now as i64)?;
        drop(raw);
        if let Some(lfbk) = &push.backup {
            crate::sealed::check_header_for_holder(lfbk).map_err(|e| Error::bad(format!("backup: {e}")))?;
        }
        // The bytes are staged (written, then synced) only once the signature holds, and only
        // when the slot as read above would take them; a refused push costs no write.
        let worth_staging = held.as_ref().is_none_or(|slot| refusal(slot, push.sequence).is_none());
        let store = self.store.clone();
        let (push, staged) = tokio::task::spawn_blocking(move || {
            push.verify()?;
            let staged = match &push.backup {
                Some(lfbk) if worth_staging => Some(store.stage(lfbk)?),
                _ => None,
            };
            Ok::<_, Error>((push, staged))
        })
        .await
        .map_err(|e| Error::internal(format!("signature check stopped: {e}")))??;
        // 4–7. The slot's state, compared and changed in one unit of work, once the
        // staged bytes are durable; 8. answered once the unit is durable too.
        let needs_mail = held.as_ref().is_none_or(|s| !s.confirmed);
        let mail_id = if needs_mail { Some(self.store.mail_id()?) } else { None };
        let mut token = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut token);
        let context = PushContext {
            policy: self.policy.clone(),
            now,
            mail_id,
            token,
        };
        let applied = self
            .store
            .unit_when_durable(staged, move |tx, staged| apply_push(tx, &push, &context, staged))
            .await?;
        if applied.mailed {
            self.mailer.wake();
        }
        Ok(applied.outcome)
    }

    /// Handles one status body: 403 (unknown slot while backups are off), 400, 401,
    /// then 404, 410 or the slot's status.
    pub async fn status(&self, body: &[u8]) -> Result<StatusOutcome> {
        let raw = match RawPush::parse(body) {
            Ok(raw) => raw,
            Err(_) if !self.policy.accept_backups => return Err(not_accepting()),
            Err(e) => return Err(e),
        };
        let key = raw.key();
        let slot_key = match (raw.email(), &key) {
            (Some(email), Ok(key)) => Some(SlotKey {
                email: email.to_string(),
                fingerprint: key.fingerprint(),
            }),
            _ => None,
        };
        let held = match &slot_key {
            Some(k) => self.store.slot(k)?,
            None => None,
        };
        if !self.policy.accept_backups && held.is_none() {
            return Err(not_accepting());
        }
        let request = StatusRequest::validate(&raw, key, crate::now_unix() as i64)?;
        tokio::task::spawn_blocking(move || request.verify())
            .await
            .map_err(|e| Error::internal(format!("signature check stopped: {e}")))??;
        let Some(slot) = held else {
            return Err(Error::NotFound(
                "this pod holds no backup for that address and key".into(),
            ));
        };
        if slot.restored_at.is_some() {
            return Ok(StatusOutcome::Restored);
        }
        Ok(StatusOutcome::Held(SlotStatus {
            sequence: slot.sequence,
            sha256: slot.sha256.map(hex::encode),
            confirmed: slot.confirmed,
        }))
    }

    /// The slot a confirmation link points at, if the link is still valid. Changes
    /// nothing (a GET must not).
    pub fn pending(&self, token: &str) -> Result<PendingSlot> {
        let (hash, record) = self.valid_token(token)?;
        let key = SlotKey {
            email: record.email.clone(),
            fingerprint: Fingerprint(record.fingerprint),
        };
        match self.store.slot(&key)? {
            Some(slot) if slot.confirm_token == Some(hash) && !slot.confirmed && !slot.rejected => Ok(PendingSlot {
                email: key.email,
                short_fingerprint: key.fingerprint.short(),
                size: slot.size,
                last_push_unix: slot.last_push_unix,
            }),
            _ => Err(invalid_link()),
        }
    }

    fn valid_token(&self, token: &str) -> Result<([u8; 32], ConfirmToken)> {
        let hash = token_hash(token).ok_or_else(invalid_link)?;
        match self.store.token(&hash)? {
            Some(record) if record.expires_unix > crate::now_unix() => Ok((hash, record)),
            _ => Err(invalid_link()),
        }
    }

    /// Confirms a slot or deletes it as "not mine", consuming the link's token; durable
    /// before it returns.
    pub async fn decide(&self, token: &str, action: ConfirmAction) -> Result<PendingSlot> {
        let hash = token_hash(token).ok_or_else(invalid_link)?;
        let now = crate::now_unix();
        let pending = self.store.unit(|tx| {
            let Some(record) = tx.token(&hash)? else {
                return crate::store::abort(invalid_link());
            };
            let key = SlotKey {
                email: record.email.clone(),
                fingerprint: Fingerprint(record.fingerprint),
            };
            tx.remove_token(&hash)?;
            let slot = match tx.slot(&key)? {
                Some(slot)
                    if record.expires_unix > now
                        && slot.confirm_token == Some(hash)
                        && !slot.confirmed
                        && !slot.rejected =>
                {
                    slot
                }
                // Expired or superseded: the token is removed all the same.
                _ => return Ok(None),
            };
            let mut new = slot.clone();
            new.confirm_token = None;
            match action {
                ConfirmAction::Confirm => new.confirmed = true,
                ConfirmAction::Reject => {
                    new.rejected = true;
                    new.size = 0;
                    new.sha256 = None;
                    tx.remove_backup(&key)?;
                }
            }
            let mut totals = tx.totals()?;
            totals.replace(Some(&slot), Some(&new));
            tx.put_totals(&totals)?;
            tx.put_slot(&key, &new)?;
            Ok(Some(PendingSlot {
                email: key.email.clone(),
                short_fingerprint: key.fingerprint.short(),
                size: slot.size,
                last_push_unix: slot.last_push_unix,
            }))
        })?;
        self.store.durable().await?;
        pending.ok_or_else(invalid_link)
    }

    /// Marks a slot restored (the restore flow calls this inside its own work later;
    /// tests use it now). Its pushes then answer 410.
    pub async fn mark_restored(&self, key: &SlotKey) -> Result<()> {
        let now = crate::now_unix();
        self.store.unit(|tx| {
            let Some(slot) = tx.slot(key)? else {
                return crate::store::abort(Error::NotFound("no such slot".into()));
            };
            let mut new = slot.clone();
            new.restored_at.get_or_insert(now);
            let mut totals = tx.totals()?;
            totals.replace(Some(&slot), Some(&new));
            tx.put_totals(&totals)?;
            tx.put_slot(key, &new)
        })?;
        self.store.durable().await
    }

    /// The slots of `email` that a restore may open: holding a backup, not restored,
    /// not rejected as "not mine". Confirmed slots first, then the most recently
    /// pushed first (docs/restore.md, "3. The pass phrase").
    pub fn restorable(&self, email: &str) -> Result<Vec<(SlotKey, Slot)>> {
        let mut slots: Vec<(SlotKey, Slot)> = self
            .store
            .slots_of(email)?
            .into_iter()
            .filter(|(_, s)| s.holds_backup() && s.restored_at.is_none() && !s.rejected)
            .collect();
        slots.sort_by(|(_, a), (_, b)| {
            b.confirmed
                .cmp(&a.confirmed)
                .then(b.last_push_unix.cmp(&a.last_push_unix))
        });
        Ok(slots)
    }

    /// Erases the ciphertext of slots restored at least [`RESTORED_KEPT_SECS`] before
    /// `now`; their tombstones stay. Returns how many were erased.
    pub async fn erase_restored(&self, now: u64) -> Result<usize> {
        let due: Vec<SlotKey> = self
            .store
            .slots()?
            .into_iter()
            .filter(|(_, s)| s.holds_backup() && s.restored_at.is_some_and(|at| at + RESTORED_KEPT_SECS <= now))
            .map(|(k, _)| k)
            .collect();
        let mut erased = 0;
        for key in &due {
            let done = self.store.unit(|tx| {
                let Some(slot) = tx.slot(key)? else { return Ok(false) };
                if !slot.holds_backup() || slot.restored_at.is_none() {
                    return Ok(false);
                }
                let mut new = slot.clone();
                new.size = 0;
                new.sha256 = None;
                tx.remove_backup(key)?;
                let mut totals = tx.totals()?;
                totals.replace(Some(&slot), Some(&new));
                tx.put_totals(&totals)?;
                tx.put_slot(key, &new)?;
                Ok(true)
            })?;
            erased += usize::from(done);
        }
        if erased > 0 {
            self.store.durable().await?;
        }
        Ok(erased)
    }

    /// Every slot, for the podmin: never the content.
    pub fn list(&self) -> Result<Vec<SlotInfo>> {
        Ok(self
            .store
            .slots()?
            .into_iter()
            .map(|(key, slot)| SlotInfo {
                email: key.email,
                fingerprint: key.fingerprint.hex(),
                confirmed: slot.confirmed,
                rejected: slot.rejected,
                restored: slot.restored_at.is_some(),
                holds_backup: slot.holds_backup(),
                size: slot.size,
                sequence: slot.sequence,
                last_push_unix: slot.last_push_unix,
            })
            .collect())
    }

    /// Counts and bytes, confirmed and unconfirmed.
    pub fn stats(&self) -> Result<Totals> {
        self.store.totals()
    }
}

/// Marks a slot restored inside the restore's unit of work (docs/restore.md, "4.
/// Creating the account: one unit of work"): it must still hold the backup whose
/// SHA-256 is `expected_sha256` (the one the pass phrase opened) and not be restored
/// yet. Its link to a pending confirmation goes; its pushes answer 410 from now on.
pub fn mark_restored_in<T: SlotTx>(tx: &T, key: &SlotKey, expected_sha256: &[u8; 32], now: u64) -> TxResult<()> {
    let slot = match tx.slot(key)? {
        Some(slot) if slot.restored_at.is_none() && !slot.rejected => slot,
        Some(_) => {
            return crate::store::abort(Error::Gone(
                "this backup has been restored already; a backup can be restored only once".into(),
            ))
        }
        None => return crate::store::abort(Error::Gone("this pod no longer holds that backup".into())),
    };
    if slot.sha256.as_ref() != Some(expected_sha256) {
        return crate::store::abort(Error::Conflict(
            "the backup changed on this pod since your pass phrase opened it (your home pod sent a newer one): enter your pass phrase again".into(),
        ));
    }
    let mut new = slot.clone();
    new.restored_at = Some(now);
    if let Some(hash) = new.confirm_token.take() {
        tx.remove_token(&hash)?;
    }
    let mut totals = tx.totals()?;
    totals.replace(Some(&slot), Some(&new));
    tx.put_totals(&totals)?;
    tx.put_slot(key, &new)
}

fn not_accepting() -> Error {
    Error::Forbidden("this pod does not accept new backups".into())
}

fn invalid_link() -> Error {
    Error::NotFound(
        "this confirmation link is not valid any more: it was used already, it expired, or a newer one was sent".into(),
    )
}

fn insufficient() -> Error {
    Error::InsufficientStorage("this pod's backup storage is full".into())
}

/// The SHA-256 of a link's token (64 hex digits), or `None` if it is not one.
fn token_hash(token: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(token).ok()?;
    if bytes.len() != 32 {
        return None;
    }
    Some(Sha256::digest(&bytes).into())
}

/// 507 when storing `len` bytes in `held`'s slot (a new slot when `None`) would take
/// its class of slots over its quota.
fn check_quota(policy: &Policy, totals: &Totals, held: Option<&Slot>, len: u64) -> Result<()> {
    let replaced = held.map_or(0, |s| s.size);
    let (used, quota) = match held {
        Some(slot) if slot.confirmed => (totals.confirmed_bytes, policy.quota_bytes),
        _ => (totals.unconfirmed_bytes, policy.unconfirmed_quota_bytes),
    };
    if used.saturating_sub(replaced).saturating_add(len) > quota {
        return Err(insufficient());
    }
    Ok(())
}

/// The compare-and-store of one push, inside a unit of work (so two racing pushes
/// with the same sequence cannot both win).
fn apply_push<T: SlotTx>(tx: &T, push: &Push, cx: &PushContext, staged: Option<&T::Staged>) -> TxResult<Applied> {
    let key = SlotKey {
        email: push.email.clone(),
        fingerprint: push.key.fingerprint(),
    };
    let old = tx.slot(&key)?;
    let nothing = |outcome| Ok(Applied { outcome, mailed: false });
    if let Some(refused) = old.as_ref().and_then(|slot| refusal(slot, push.sequence)) {
        return nothing(refused);
    }
    let mut totals = tx.totals()?;
    let mut address = tx.address(&push.email)?;
    if old.is_none() {
        evict_oldest_unconfirmed(tx, &push.email, &mut address, &mut totals)?;
        address.slots.push(key.fingerprint.0);
    }
    let mut new = old.clone().unwrap_or_else(|| Slot {
        sequence: 0,
        confirmed: false,
        rejected: false,
        restored_at: None,
        created_unix: cx.now,
        last_push_unix: cx.now,
        created_at: String::new(),
        size: 0,
        sha256: None,
        confirm_token: None,
        confirm_mailed_unix: None,
    });
    new.sequence = push.sequence;
    new.last_push_unix = cx.now;
    new.created_at = push.created_at.clone();
    match &push.backup {
        Some(lfbk) => {
            // Not staged: the slot read before the signature check refused this push,
            // and only an eviction (its slot gone) can change that since. Such a push
            // would make a new unconfirmed slot; it is answered as one, and the home
            // pod's next push is stored.
            let Some(staged) = staged else {
                return nothing(PushOutcome::AwaitingConfirmation);
            };
            let quota = if new.confirmed {
                (totals.confirmed_bytes, cx.policy.quota_bytes)
            } else {
                (totals.unconfirmed_bytes, cx.policy.unconfirmed_quota_bytes)
            };
            let replaced = old.as_ref().map_or(0, |s| s.size);
            if quota.0.saturating_sub(replaced).saturating_add(lfbk.len() as u64) > quota.1 {
                return crate::store::abort(insufficient());
            }
            new.size = lfbk.len() as u64;
            new.sha256 = push.sha256;
            tx.put_backup(&key, staged)?;
        }
        None => {
            new.size = 0;
            new.sha256 = None;
            if old.as_ref().is_some_and(Slot::holds_backup) {
                tx.remove_backup(&key)?;
            }
        }
    }
    let mut mailed = false;
    if !new.confirmed && new.holds_backup() {
        mailed = maybe_mail(tx, &key, &mut new, &mut address, cx)?;
    }
    totals.replace(old.as_ref(), Some(&new));
    tx.put_totals(&totals)?;
    tx.put_slot(&key, &new)?;
    tx.put_address(&push.email, &address)?;
    let outcome = match (new.confirmed, push.backup.is_some()) {
        (false, _) => PushOutcome::AwaitingConfirmation,
        (true, true) => PushOutcome::Stored(push.sequence),
        (true, false) => PushOutcome::Deleted(push.sequence),
    };
    Ok(Applied { outcome, mailed })
}

/// Why a slot refuses a push of `sequence` whatever it carries, if it does.
fn refusal(slot: &Slot, sequence: u64) -> Option<PushOutcome> {
    if slot.restored_at.is_some() {
        Some(PushOutcome::Restored)
    } else if slot.confirmed && sequence <= slot.sequence {
        Some(PushOutcome::Stale(slot.sequence))
    } else if !slot.confirmed && (slot.rejected || sequence <= slot.sequence) {
        Some(PushOutcome::AwaitingConfirmation)
    } else {
        None
    }
}

/// Makes room for a new unconfirmed slot: with [`MAX_UNCONFIRMED_PER_EMAIL`] already
/// there, the oldest unconfirmed one goes (its backup and link with it). Confirmed and
/// rejected slots are never evicted: the former go only by their own delete, the
/// latter keep a stranger's key from mailing the address again.
fn evict_oldest_unconfirmed<T: SlotTx>(
    tx: &T,
    email: &str,
    address: &mut AddressRecord,
    totals: &mut Totals,
) -> TxResult<()> {
    let mut unconfirmed = Vec::new();
    for fingerprint in &address.slots {
        let key = SlotKey {
            email: email.to_string(),
            fingerprint: Fingerprint(*fingerprint),
        };
        if let Some(slot) = tx.slot(&key)? {
            if !slot.confirmed && !slot.rejected && slot.restored_at.is_none() {
                unconfirmed.push((key, slot));
            }
        }
    }
    if unconfirmed.len() < MAX_UNCONFIRMED_PER_EMAIL {
        return Ok(());
    }
    // `address.slots` is in creation order, so the first is the oldest.
    let (key, slot) = &unconfirmed[0];
    tx.remove_slot(key)?;
    tx.remove_backup(key)?;
    if let Some(hash) = &slot.confirm_token {
        tx.remove_token(hash)?;
    }
    totals.replace(Some(slot), None);
    address.slots.retain(|f| *f != key.fingerprint.0);
    Ok(())
}

/// Queues the confirmation mail for an unconfirmed slot that holds a backup, when none
/// was sent or its link expired, within the caps: one per address per day, and
/// [`Policy::confirmation_mails_per_hour`] in all. A capped mail is tried again at a
/// later push.
fn maybe_mail<T: SlotTx>(
    tx: &T,
    key: &SlotKey,
    slot: &mut Slot,
    address: &mut AddressRecord,
    cx: &PushContext,
) -> TxResult<bool> {
    let Some(mail_id) = cx.mail_id else {
        return Ok(false);
    };
    let link_alive = slot
        .confirm_mailed_unix
        .is_some_and(|at| at + CONFIRM_TOKEN_TTL_SECS > cx.now);
    if link_alive {
        return Ok(false);
    }
    if address
        .last_mail_unix
        .is_some_and(|at| at + MAIL_PER_ADDRESS_SECS > cx.now)
    {
        return Ok(false);
    }
    let mut hour = tx.mail_hour()?;
    let this_hour = cx.now / 3600;
    if hour.hour != this_hour {
        hour = MailHour {
            hour: this_hour,
            count: 0,
        };
    }
    if hour.count >= cx.policy.confirmation_mails_per_hour {
        return Ok(false);
    }
    hour.count += 1;
    tx.put_mail_hour(&hour)?;
    let hash: [u8; 32] = Sha256::digest(cx.token).into();
    if let Some(previous) = slot.confirm_token.replace(hash) {
        tx.remove_token(&previous)?;
    }
    tx.put_token(
        &hash,
        &ConfirmToken {
            email: key.email.clone(),
            fingerprint: key.fingerprint.0,
            expires_unix: cx.now + CONFIRM_TOKEN_TTL_SECS,
        },
    )?;
    slot.confirm_mailed_unix = Some(cx.now);
    address.last_mail_unix = Some(cx.now);
    tx.enqueue_mail(mail_id, &confirmation_mail(&cx.policy, key, &hex::encode(cx.token)))?;
    Ok(true)
}

/// The mail that asks an address's owner to confirm a slot.
pub fn confirmation_mail(policy: &Policy, key: &SlotKey, token: &str) -> Mail {
    let url = &policy.public_url;
    let host = &policy.public_host;
    let short = key.fingerprint.short();
    Mail {
        to: key.email.clone(),
        subject: format!("Is this your diaspora* account's backup? ({host})"),
        text: format!(
            "Hello,\n\
             \n\
             The lifeboat pod {url} now holds an encrypted backup of a diaspora* account\n\
             that gives this address ({email}). A pod sent it, presumably your diaspora*\n\
             home pod, signed with the account key whose short fingerprint is\n\
             \n\
             \x20   {short}\n\
             \n\
             Your home pod shows the same fingerprint in its backup settings.\n\
             \n\
             The backup is sealed with your backup pass phrase: this pod cannot read it.\n\
             \n\
             - If your home pod ever disappears, restore your account here:\n\
             \x20 {url}/restore_backup\n\
             \x20 with this email address and your backup pass phrase.\n\
             - To move to another pod while yours still works, use \"Move to another pod\"\n\
             \x20 in your pod's settings; you get your backup as a file that any lifeboat\n\
             \x20 pod takes in.\n\
             \n\
             Please tell this pod whether the backup is yours. Open\n\
             \n\
             \x20   {url}/backups/confirm?token={token}\n\
             \n\
             and press \"Yes, this is my pod's backup\", or \"Not mine - delete it\".\n\
             Opening the link alone changes nothing. It works for 30 days.\n\
             \n\
             If you have no diaspora* account, someone gave your address by mistake:\n\
             press \"Not mine\" and this pod deletes the backup and sends you nothing more\n\
             about it.\n\
             \n\
             -- \n\
             lifeboat at {host}\n",
            email = key.email,
        ),
    }
}

/// `backups list` as text: one line per slot, newest activity last in key order.
pub fn format_list(slots: &[SlotInfo]) -> String {
    if slots.is_empty() {
        return "no backup slots held\n".to_string();
    }
    let mut out = format!(
        "{:<40} {:<16} {:<11} {:>12} {:>10} {}\n",
        "EMAIL", "KEY", "STATE", "BYTES", "SEQUENCE", "LAST PUSH (UTC)"
    );
    for s in slots {
        let state = if s.restored {
            "restored"
        } else if s.rejected {
            "not-mine"
        } else if s.confirmed {
            "confirmed"
        } else {
            "unconfirmed"
        };
        let state = if !s.holds_backup && !s.restored && !s.rejected {
            format!("{state}*")
        } else {
            state.to_string()
        };
        out.push_str(&format!(
            "{:<40} {:<16} {:<11} {:>12} {:>10} {}\n",
            s.email,
            &s.fingerprint[..16],
            state,
            s.size,
            s.sequence,
            format_unix(s.last_push_unix)
        ));
    }
    out.push_str("(* deleted by its owner: a tombstone keeps the sequence)\n");
    out
}

/// `backups stats` as text.
pub fn format_stats(t: &Totals) -> String {
    format!(
        "confirmed slots:   {}\nconfirmed bytes:   {}\nunconfirmed slots: {}\nunconfirmed bytes: {}\ntombstones:        {}\nrestored:          {}\n",
        t.confirmed_slots, t.confirmed_bytes, t.unconfirmed_slots, t.unconfirmed_bytes, t.tombstones, t.restored
    )
}

fn format_unix(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
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
            text[at..at + 64].to_string()
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
        assert_eq!(e.status(), warp::http::StatusCode::INSUFFICIENT_STORAGE);
        assert!(r.holder.accepts_backups().unwrap(), "not full yet: 10 bytes left");
        let r = rig(|p| p.unconfirmed_quota_bytes = data.len() as u64);
        r.holder
            .push(&body(&keys()[0], "q@b.org", 1, Some(&data)))
            .await
            .unwrap();
        assert!(!r.holder.accepts_backups().unwrap(), "full");
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
        let forbidden = |e: Error| assert_eq!(e.status(), warp::http::StatusCode::FORBIDDEN, "{e}");
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
}
