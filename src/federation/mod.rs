//! diaspora*'s federation wire formats, as pure library code (no network, no storage;
//! what does I/O with them lives in `people`, `sharing`, `delivery` and `arrivals`):
//!
//! - [`signature`]: RSA PKCS#1 v1.5 / SHA-256 signatures, PEM keys, fingerprints and
//!   the key-strength rule;
//! - [`entities`]: the `profile`, `account_migration`, `contact` and
//!   `account_deletion` entities, recognition of any entity, and diaspora*'s
//!   validation rules;
//! - [`envelope`]: the public Magic Envelope and its encrypted wrapper for one
//!   recipient;
//! - [`discovery`]: WebFinger JRD and hCard, rendered and parsed;
//!
//! The private `xml` and `html` modules are the strict XML reader/writer and the
//! tolerant HTML reader underneath.

pub mod discovery;
pub mod entities;
pub mod envelope;
mod html;
pub mod signature;
#[cfg(test)]
pub(crate) mod test_support;
mod xml;

pub use discovery::{parse_hcard, parse_jrd, render_hcard, render_jrd, HcardPerson, Jrd};
pub use entities::{
    parse_entity, valid_diaspora_id, valid_guid, validate_profile, AccountDeletion, AccountMigration, Contact, Entity,
    Profile,
};
pub use envelope::MagicEnvelope;
