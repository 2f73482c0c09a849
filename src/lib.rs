//! lifeboat keeps diaspora* accounts alive when their pod dies, and lets them move
//! between pods. See `DESIGN.md` in the project's shared folder for the formats.
//!
//! Modules, one per domain; each says at its top what it owns:
//! - [`error`]: the crate-wide error type and its policy.

pub mod error;

pub use error::{Error, Result};
