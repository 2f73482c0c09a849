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

mod mail;
mod ops;
mod report;
mod units;

pub use mail::*;
pub use report::*;
pub use units::*;

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::push::{Fingerprint, Push, RawContent, RawPush, StatusRequest};
use crate::config::Config;
use crate::mail::{Mail, Mailer};
use crate::token::LinkToken;
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
    token: LinkToken,
}

/// What a push's unit of work did, so the caller knows to wake the mailer.
struct Applied {
    outcome: PushOutcome,
    mailed: bool,
}

#[cfg(test)]
mod tests;
