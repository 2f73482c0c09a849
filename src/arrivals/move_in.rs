//! Move in (docs/restore.md, "Move in"): a `.lfbk` the user downloaded from their old
//! pod, still alive, becomes an account here. The archive's key must be the key this
//! pod stores for the old identity, else the one its pod publishes, or the move is
//! refused; when neither can be had the account is created without re-pointing
//! anything locally.

use zeroize::Zeroizing;

use super::checks::*;
use super::outcome::{Created, KeyCheck};
use crate::account::archive::read_sealed_archive;
use crate::account::{check_password, normalize_email};
use crate::arrivals::{prepare, write_in, Arrival};
use crate::config::Config;
use crate::federation::entities::valid_diaspora_id;
use crate::passphrase::Passphrase;
use crate::people::{fetch_person, store_person, PeopleStore};
use crate::pod::Pod;
use crate::sealed::KdfBounds;
use crate::{Error, Result};

// ---------------------------------------------------------------------------------
// Move in
// ---------------------------------------------------------------------------------

/// Whether this pod takes accounts moving in: it offers migration and registrations
/// are open.
pub fn accepts_move_ins(config: &Config) -> bool {
    config.backups.allow_backups_and_migration && config.accounts.open_registrations
}

/// What the "Moving from another pod" form gives.
pub struct MoveIn {
    /// The old diaspora ID, as typed.
    pub old_id: String,
    pub username: String,
    pub password: String,
    /// The new account's address; the archive's when `None`.
    pub email: Option<String>,
    /// The `.lfbk` file.
    pub file: Vec<u8>,
    pub passphrase: Passphrase,
}

/// Creates an account from a `.lfbk` the user brings (see the module doc).
pub async fn move_in(pod: &Pod, request: MoveIn) -> Result<Created> {
    if !accepts_move_ins(&pod.config) {
        return Err(Error::Forbidden("this pod does not take accounts moving in".into()));
    }
    let old_id = request.old_id.trim().to_ascii_lowercase();
    if !valid_diaspora_id(&old_id) {
        return Err(Error::bad(
            "your old diaspora* ID must look like username@pod.example.org",
        ));
    }
    if old_id.split_once('@').map(|(_, host)| host) == Some(pod.config.public_host().as_str()) {
        return Err(Error::bad(format!(
            "{old_id} is an account of this pod already: there is nothing to move"
        )));
    }
    check_new_username(pod, &request.username)?;
    check_password(&request.password)?;
    let typed_email = request.email.as_deref().map(normalize_email).transpose()?;
    if request.file.is_empty() {
        return Err(Error::bad("choose your backup file (.lfbk)"));
    }
    let plaintext = Zeroizing::new(
        pod.kdf
            .open(request.file, request.passphrase, KdfBounds::HOLDER)
            .await?,
    );
    let max = pod.config.accounts.max_import_bytes;
    let archive = tokio::task::spawn_blocking(move || read_sealed_archive(&plaintext, max))
        .await
        .map_err(Error::internal)??;
    match &archive.old_diaspora_id {
        Some(id) if id.eq_ignore_ascii_case(&old_id) => {}
        Some(id) => {
            return Err(Error::bad(format!(
                "this file is the backup of {id}, not of {old_id}"
            )))
        }
        None => {
            return Err(Error::bad(
                "this file names no diaspora* identity, so there is no move to make; a podmin can import it as a new account",
            ))
        }
    }
    let email = match typed_email {
        Some(email) => email,
        None => normalize_email(&archive.email)
            .map_err(|e| Error::bad(format!("the address in your backup cannot be used ({e}): type one")))?,
    };
    check_email_free(pod, &email)?;
    let (key_check, discovered) = move_in_key_check(pod, &old_id, &archive.public_key_pem).await?;
    let arrival = Arrival {
        archive,
        username: request.username.clone(),
        password: request.password.clone(),
        email: email.clone(),
        email_confirmed: false,
    };
    let prepared = prepare(pod, arrival).await?;
    let confirm_token = crate::token::LinkToken::generate();
    let mail_id = pod.store.generate_id()?;
    pod.store.transaction(|tx| {
        write_in(pod, tx, &prepared)?;
        crate::account::queue_confirmation(pod, tx, &prepared.account, &email, &confirm_token, mail_id)
    })?;
    pod.store.durable().await?;
    if let Some(person) = discovered {
        // The key its pod publishes now, so this pod's receiving path verifies the move
        // with it even once the old pod has closed the account.
        if let Err(e) = store_person(&pod.store, person) {
            tracing::error!(%old_id, "storing the discovered old identity: {e}");
        }
    }
    pod.signals.outbox.ring();
    pod.mailer.wake();
    pod.signals.discovery.ring();
    if key_check.applies_here() {
        crate::arrivals::apply_locally(pod, &prepared).await;
    }
    tracing::info!(
        username = %prepared.account.username,
        from = %old_id,
        key = ?key_check,
        deliveries = prepared.deliveries.len(),
        "account moved in"
    );
    Ok(Created {
        announced_to: prepared.deliveries.len(),
        account: prepared.account,
        old_id: Some(old_id),
        key_check,
        repairs: prepared.repairs,
    })
}

/// The archive's key against the key this pod stores for `old_id`, else the one its pod
/// publishes; a mismatch is refused. Also returns the discovered person to store.
async fn move_in_key_check(
    pod: &Pod,
    old_id: &str,
    archive_key: &str,
) -> Result<(KeyCheck, Option<crate::people::Person>)> {
    let refused = |whose: &str| {
        Error::Forbidden(format!(
            "the key in this file is not the key {whose} for {old_id}, so the move is refused: \
             the file belongs to another account, or to an older key of this one. Download a new \
             file from your old pod's settings (\"Move to another pod\")."
        ))
    };
    if let Some(person) = pod.store.person(old_id)? {
        if let Some(to) = person.moved_to {
            return Err(Error::Conflict(format!(
                "{old_id} has already moved to {to}; an identity moves only once"
            )));
        }
        return if same_key(&person.public_key_pem, archive_key) {
            Ok((KeyCheck::Stored, None))
        } else {
            Err(refused("this pod knows"))
        };
    }
    let http = pod.http.clone();
    let id = old_id.to_string();
    let allow_http = pod.config.federation.allow_http;
    let found = tokio::task::spawn_blocking(move || fetch_person(&http, &id, allow_http))
        .await
        .map_err(Error::internal)?;
    match found {
        Ok(person) if same_key(&person.public_key_pem, archive_key) => Ok((KeyCheck::Published, Some(person))),
        Ok(_) => Err(refused("its pod publishes")),
        Err(e) => Ok((
            KeyCheck::Unknown {
                why: Some(e.client_message()),
            },
            None,
        )),
    }
}
