//! lifeboat keeps diaspora* accounts alive when their pod dies, and lets them move
//! between pods. See `DESIGN.md` in the project's shared folder for the formats.
//!
//! Modules, one per domain; each says at its top what it owns:
//! - [`error`]: the crate-wide error type and its policy.
//! - [`federation`]: diaspora*'s wire formats: entities, Magic Envelope, signatures,
//!   WebFinger and hCard.

pub mod error;
pub mod federation;

pub use error::{Error, Result};
