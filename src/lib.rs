//! lifeboat keeps diaspora* accounts alive when their pod dies, and lets them move
//! between pods. See `DESIGN.md` in the project's shared folder for the formats.
//!
//! Modules, one per domain; each says at its top what it owns:
//! - [`error`]: the crate-wide error type and its policy.
//! - [`passphrase`]: the backup pass-phrase strength policy, and a redacting type.
//! - [`sealed`]: the sealed backup file `.lfbk`: header, seal, open, key derivation.

pub mod error;
pub mod passphrase;
pub mod sealed;

pub use error::{Error, Result};
