//! lifeboat keeps diaspora* accounts alive when their pod dies, and lets them move
//! between pods. See `DESIGN.md` in the project's shared folder for the formats.
//!
//! Modules, one per domain; each says at its top what it owns:
//! - [`error`]: the crate-wide error type and its policy.
//! - [`config`]: every option, declared once; loading and validation.
//! - [`store`]: the embedded store, its trees and key layouts, units of work.
//! - [`mail`]: outgoing mail, its durable queue and its transports.

pub mod admin;
pub mod config;
pub mod error;
pub mod mail;
pub mod pod;
pub mod ratelimit;
pub mod server;
pub mod store;
pub mod web;

pub use error::{Error, Result};
