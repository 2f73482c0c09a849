//! Backups between pods (DESIGN §3).
//!
//! - [`push`]: the push and status formats — the account key and its fingerprint, the
//!   strict envelope rules, the signed texts.
//! - [`holder`]: the holder side — slots, the order of checks, confirmation, quotas,
//!   tombstones, status answers, podmin figures — and the storage it needs
//!   ([`holder::SlotStore`], implemented on sled in `store::backups`).
//!
//! Not here: sealing (`sealed`), pushing our own accounts' backups, restoring.

pub mod holder;
pub mod push;
