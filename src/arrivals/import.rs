//! `lifeboat archive import`: a diaspora* archive (`.json`, `.json.gz`, or what lifeboat
//! exports) brought by the podmin becomes an account here — a move into this pod like a
//! move-in (a fresh key pair and guid, the archive's identity recorded as the old one,
//! the move announced), with the address counted as confirmed.

use super::{arrive, Arrival};
use crate::account::archive::read_archive;
use crate::account::{normalize_email, Account};
use crate::pod::Pod;
use crate::Result;

/// What an import made.
pub struct Imported {
    pub account: Account,
    /// What the import repaired or left out, in words for the podmin.
    pub repairs: Vec<String>,
    /// The identity the archive belonged to, when it names one (its move is announced).
    pub old_id: Option<String>,
}

/// Reads `archive` (checked, size-capped) and creates its account under `username`;
/// `email` overrides the archive's address.
pub async fn import_archive(
    pod: &Pod,
    archive: &[u8],
    username: String,
    password: String,
    email: Option<String>,
) -> Result<Imported> {
    let archive = read_archive(archive, pod.config.accounts.max_import_bytes)?;
    let email = normalize_email(email.as_deref().unwrap_or(&archive.email))?;
    let old_id = archive.old_diaspora_id.clone();
    let arrival = Arrival {
        archive,
        username,
        password,
        email,
        email_confirmed: true,
    };
    let (account, repairs) = arrive(pod, arrival).await?;
    Ok(Imported {
        account,
        repairs,
        old_id,
    })
}
