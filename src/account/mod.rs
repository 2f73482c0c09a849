//! Local accounts: the account model, sign-up and credentials, profile, aspects,
//! contacts, tags and blocks, and the archive that is an account's portable form.
//!
//! Owns the rules of what an account may hold (diaspora*'s validators, DESIGN §6) and
//! declares the storage it needs. Does not own: HTTP (see `web`),
//! federation formats (see `federation`), backups (see `backup`).

pub mod model;

pub use model::{Account, Avatar, Closed, ContactData, MovedFrom, ProfileData};
