//! lifeboat keeps diaspora* accounts alive when their pod dies, and lets them move
//! between pods. See `DESIGN.md` in the project's shared folder for the formats.
//!
//! Modules, one per domain; each says at its top what it owns:
//! - [`error`]: the crate-wide error type and its policy.
//! - [`http_client`]: the one hardened outbound HTTP client, pod origins, and the
//!   address rules every request to another pod obeys.

pub mod error;
pub mod http_client;

pub use error::{Error, Result};
