//! Backups between pods (docs/holder-api.md, docs/restore.md).
//!
//! - [`push`]: the push and status formats — the account key and its fingerprint, the
//!   strict envelope rules, the signed texts.
//! - [`holder`]: the holder side — slots, the order of checks, confirmation, quotas,
//!   tombstones, status answers, podmin figures — and the storage it needs
//!   ([`holder::SlotStore`], implemented on sled in `store::backups`).
//! - [`pods`]: the directory of backup pods this pod knows — vetted or not, available
//!   or not, from their NodeInfo — and the automatic choice among them.
//! - [`sync`]: the home pod side — our accounts' backups kept current on a backup pod:
//!   the durable push queue, sequences, status checks, moves, deletes, and what the
//!   user is told ([`sync::SyncStore`], implemented on sled in `store::backup_sync`).
//! - [`restore`]: restore and move in — a held backup, or a `.lfbk` a user brings,
//!   becomes a live account; the emailed links, pass-phrase attempts, the one unit of
//!   work that consumes the link, marks the slot restored and creates the account.
//!
//! Not here: sealing (`sealed`).

pub mod holder;

pub mod home;
pub mod push;
