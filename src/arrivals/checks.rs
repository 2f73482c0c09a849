//! Checks every arrival (restore, move-in) runs before it creates an account: the new
//! username and address are free, and what this pod knows of the old identity's key.

use crate::account::archive::ImportedArchive;
use crate::account::{check_username, AccountStore};
use crate::federation::signature::{fingerprint, public_key_from_pem};
use crate::people::PeopleStore;
use crate::pod::Pod;
use crate::{Error, Result};

use super::outcome::KeyCheck;

/// Whether `username` may be given to a new account here: well formed, not an admin's
/// name, never used before (closed accounts keep theirs for good).
pub(crate) fn check_new_username(pod: &Pod, username: &str) -> Result<()> {
    check_username(username)?;
    if pod.config.accounts.admins.iter().any(|a| a == username) {
        return Err(Error::Conflict("this username is reserved".into()));
    }
    if AccountStore::account(&pod.store, username)?.is_some() {
        return Err(Error::Conflict("this username is taken".into()));
    }
    Ok(())
}

pub(crate) fn check_email_free(pod: &Pod, email: &str) -> Result<()> {
    if AccountStore::username_for_email(&pod.store, email)?.is_some() {
        return Err(Error::Conflict(format!(
            "an account on this pod already uses the address {email}; an address belongs to one account only"
        )));
    }
    Ok(())
}

pub(crate) fn same_key(a: &str, b: &str) -> bool {
    match (public_key_from_pem(a), public_key_from_pem(b)) {
        (Ok(a), Ok(b)) => fingerprint(&a) == fingerprint(&b),
        _ => false,
    }
}

/// What this pod's people store says about the archive's identity and key.
pub(crate) fn stored_key_check(pod: &Pod, archive: &ImportedArchive) -> Result<KeyCheck> {
    let Some(old_id) = &archive.old_diaspora_id else {
        return Ok(KeyCheck::NoIdentity);
    };
    Ok(match pod.store.person(&old_id.to_ascii_lowercase())? {
        None => KeyCheck::Unknown { why: None },
        Some(person) => match person.moved_to {
            Some(to) => KeyCheck::AlreadyMoved { to },
            None if same_key(&person.public_key_pem, &archive.public_key_pem) => KeyCheck::Stored,
            None => KeyCheck::Mismatch,
        },
    })
}
