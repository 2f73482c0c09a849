//! lifeboat keeps diaspora* accounts alive when their pod dies, and lets them move
//! between pods. The formats and rules it follows are in `docs/` (start at
//! `docs/README.md`).
//!
//! Modules, one per domain; each says at its top what it owns:
//! - [`error`]: the crate-wide error type and its policy.
//! - [`account`]: local accounts, their data and their archive form.
//! - [`config`]: every option, declared once; loading and validation.
//! - [`delivery`]: the durable outbox every message to another pod goes through.
//! - [`store`]: the embedded store, its trees and key layouts, units of work.
//! - [`mail`]: outgoing mail, its durable queue and its transports.
//! - [`arrivals`]: accounts arriving from another identity (archive import, restore,
//!   move-in) and moves received from other pods (the AccountMigration).
//! - [`http_client`]: the one hardened outbound HTTP client, pod origins, and the
//!   address rules every request to another pod obeys.
//! - [`tls`]: the certificate authorities trusted as a TLS client, and refused
//!   certificates put into words.
//! - [`web`]: the HTTP edge: routing, pages, NodeInfo, request logging.
//! - [`admin`]: podmin commands and the local admin socket.
//! - [`pod`], [`services`], [`server`]: the pod's infrastructure, the services built
//!   once around it, and its start-up and shutdown;
//!   [`systemd`]: readiness and watchdog notifications to systemd.
//! - [`ratelimit`]: token buckets for per-client and per-account limits.
//! - [`retry`]: the backoff schedule the durable queues share.
//! - [`passphrase`]: the backup pass-phrase strength policy, and a redacting type.
//! - [`sealed`]: the sealed backup file `.lfbk`: header, seal, open, key derivation.
//! - [`backup`]: backups between pods: the push format and the holder side.
//! - [`federation`]: diaspora*'s wire formats: entities, Magic Envelope, signatures,
//!   WebFinger and hCard.
//! - [`people`]: the people this pod knows (discovery, the background queue for
//!   archive contacts, profile updates and deletions they send).
//! - [`sharing`]: diaspora*'s `contact` messages, sent and received.
//! - `testing` (tests and benchmarks only): test keys, an account builder, a test pod.

pub mod account;
pub mod admin;
pub mod arrivals;
pub mod backup;
pub mod config;
pub mod delivery;
pub mod error;
pub mod federation;
pub mod http_client;
pub mod mail;
pub mod passphrase;
pub mod people;
pub mod pod;
pub mod ratelimit;
pub mod retry;
pub mod sealed;
pub mod server;
pub mod services;
pub mod sharing;
pub mod store;
pub mod systemd;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;
pub mod token;
pub mod web;

pub use error::{Error, Result};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
