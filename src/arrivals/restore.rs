//! Restore and move in (docs/restore.md): a backup held here, or a `.lfbk` file a user
//! brings, becomes a live account `username@this-pod`.
//!
//! **Restore** (the home pod is gone):
//! 1. [`request_link`]: the form gives only an address. The answer never depends on
//!    whether a backup is held — neither its words nor its timing: the lookup and the
//!    mail run after the answer is sent (a task that only queues a durable mail; if the
//!    pod stops in between, nothing was promised and the user asks again). A link is
//!    mailed only when a restorable slot is held for the address, at most
//!    `backups.restore_links_per_day` per address per day; a new link revokes the
//!    earlier one.
//! 2. The link's token is 32 random bytes; only its SHA-256 is stored
//!    ([`RestoreToken`], tree `restore_tokens`), with the address, the expiry
//!    (`backups.restore_link_ttl`, 1 hour by default) and [`ATTEMPTS`] pass-phrase
//!    attempts. Opening the link ([`link_info`]) changes nothing.
//! 3. [`unlock`] takes one attempt durably *before* any key derivation (parallel tries
//!    cannot exceed five), then tries the address's slots, confirmed first, each on the
//!    bounded KDF pool off the runtime. The first that opens and holds a valid archive
//!    wins. If the archive's old identity still answers WebFinger as an active account,
//!    the restore stops ([`Unlock::StillActive`]): a living account moves from its own
//!    pod's settings. After the fifth wrong pass phrase the link dies.
//! 4. [`create`] is one unit of work: the token is consumed (compare-and-swap inside the
//!    transaction, so two tabs cannot both succeed), the slot is marked restored, the
//!    account is created with a fresh key pair and guid and the archive's data, and the
//!    AccountMigration, signed once with the old key, is queued in the outbox
//!    ([`crate::arrivals::prepare`] and [`crate::arrivals::write_in`]); the
//!    archive's contacts are queued for discovery in the background
//!    ([`crate::people::queue`]). A failure at
//!    any step leaves no account and the backup restorable.
//!
//! **Where the opened archive waits between steps 3 and 4**: in memory only
//! ([`OpenedBackups`], keyed by the token's hash, at most [`OPENED_TTL`] and never past
//! the link's expiry, bounded in count and bytes), never on disk in clear. Re-opening
//! at step 4 instead would need the pass phrase a second time — typed again, or echoed
//! back into the page as a hidden field, where it would sit in the browser's page and
//! form caches — and a second Argon2 run. What the store keeps is which slot opened
//! (and the SHA-256 of its backup), so the "download my backup" button works across a
//! restart; after a restart only the pass phrase must be entered again.
//!
//! **The old private key** lives only in the opened [`ImportedArchive`] (which wipes it
//! when dropped): it signs the migration once in `prepare`, and the entry is removed when
//! the account exists. The account gets fresh keys; `moved_from` keeps the old *public*
//! key only.
//!
//! **Applying the move to this pod's own data** happens only through its receiving path
//! ([`crate::arrivals::apply_locally`], every check of docs/migration.md), once the
//! account is durable, and only when this pod knows the old identity with the archive's
//! key — stored, or (for a move-in) just discovered at its pod and stored. Otherwise
//! nothing is re-pointed here (the receiving path would refuse anyway: the old pod is
//! gone or the key differs), and the pages say so ([`KeyCheck`]).
//!
//! **Move in** ([`move_in`], the old pod still alive): the file and pass phrase give the
//! archive; its key must be the key this pod stores for the old identity, else the one
//! its pod publishes, or the move is refused; when neither can be had the account is
//! created without re-pointing anything locally. The address is confirmed by mail, as
//! at sign-up.
//!
//! Periodic work ([`run`]): restored slots' ciphertext erased after 30 days, expired
//! links and stale per-address records removed, expired opened archives dropped.
//!
//! The storage this needs beyond slots and accounts is [`RestoreStore`] /
//! [`RestoreTx`], implemented in `store::restore`. Not owned here: the pages
//! (`web::restore`), slots (`holder`), the migration's format and outbox (`migration`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::account::archive::read_sealed_archive;
use crate::account::{check_password, normalize_email, now_unix};
use crate::arrivals::{prepare, write_in, Arrival};
use crate::backup::holder::{mark_restored_in, Holder, SlotKey, SlotStore};
use crate::backup::push::Fingerprint;
use crate::config::Config;
use crate::mail::Mail;
use crate::passphrase::Passphrase;
use crate::people::fetch_person;
use crate::pod::Pod;
use crate::sealed::KdfBounds;
use crate::store::abort;
use crate::store::backups::{SledSlotTx, SledSlots};
use crate::token::LinkToken;
use crate::{Error, Result};

use super::checks::*;
use super::opened::Taken;
pub use super::opened::{OpenedBackup, OpenedBackups, OPENED_TTL};
pub use super::outcome::{Create, Created, KeyCheck, LinkInfo, RestoreView, Unlock};
/// What a unit of work returns.
pub use crate::store::TxResult;

/// Pass-phrase attempts a restore link allows.
pub const ATTEMPTS: u8 = 5;

/// The window of the per-address mail limit.
const MAIL_WINDOW_SECS: u64 = 86400;

/// What comes back with a restore or a move, and what does not (docs/restore.md, "What
/// comes back, and what does not"), in the words pages and mails use.
pub const WHAT_COMES_BACK: &str = "your profile and picture, your aspects, your contacts (in their aspects), \
     your followed tags and your blocks; your posts and comments are carried along in the archive \
     (kept, and written into every later backup and export) but not shown here";
/// See [`WHAT_COMES_BACK`].
pub const WHAT_DOES_NOT: &str = "photos, conversations (private messages) and notifications";

/// A restore link, stored under the SHA-256 of its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreToken {
    /// The normalised address whose slots the link may open.
    pub email: String,
    pub created_unix: u64,
    pub expires_unix: u64,
    pub attempts_left: u8,
    /// The slot the pass phrase opened, once it did.
    pub opened: Option<OpenedSlot>,
}

/// Which slot a pass phrase opened, and which backup it held then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedSlot {
    pub fingerprint: [u8; 32],
    pub sha256: [u8; 32],
}

/// Per address: the link valid now and the restore mails of the last day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreAddress {
    /// SHA-256 of the token of the one link that works now.
    pub current: Option<[u8; 32]>,
    /// When restore mails went to the address (Unix seconds), within the last day.
    pub mailed_unix: Vec<u64>,
}

/// The storage the restore flow reads outside units of work.
pub trait RestoreStore {
    fn restore_token(&self, hash: &[u8; 32]) -> Result<Option<RestoreToken>>;
    /// Every link, for the periodic sweep.
    fn restore_tokens(&self) -> Result<Vec<([u8; 32], RestoreToken)>>;
    /// Every per-address record, for the periodic sweep.
    fn restore_addresses(&self) -> Result<Vec<(String, RestoreAddress)>>;
}

/// The restore flow's trees inside a unit of work.
pub trait RestoreTx {
    fn restore_token(&self, hash: &[u8; 32]) -> TxResult<Option<RestoreToken>>;
    fn put_restore_token(&self, hash: &[u8; 32], token: &RestoreToken) -> TxResult<()>;
    fn remove_restore_token(&self, hash: &[u8; 32]) -> TxResult<()>;
    fn restore_address(&self, email: &str) -> TxResult<RestoreAddress>;
    /// Writes the record; an empty one is removed.
    fn put_restore_address(&self, email: &str, record: &RestoreAddress) -> TxResult<()>;
}

// ---------------------------------------------------------------------------------
// The restore flow
// ---------------------------------------------------------------------------------

/// The restore flow's service, built once (`server.rs`) and handed to the pages that
/// run it: the opened backups waiting for their account form (memory only) and the
/// holder whose slots they come from.
#[derive(Clone)]
pub struct Restores {
    opened: Arc<OpenedBackups>,
    holder: Arc<Holder<SledSlots>>,
}

impl Restores {
    pub fn new(holder: Arc<Holder<SledSlots>>) -> Restores {
        Restores {
            opened: Arc::default(),
            holder,
        }
    }

    /// How many opened backups wait for their account form.
    pub fn opened_count(&self) -> usize {
        self.opened.len()
    }
}

/// The SHA-256 of a link's token, or `None` when the text cannot be one.
fn link_hash(token: &str) -> Option<[u8; 32]> {
    LinkToken::hash_of(token)
}

fn invalid_link() -> Error {
    Error::Gone(
        "this restore link does not work any more: it was used, it expired, a newer link was sent, \
         or the pass phrase was wrong five times. Ask for a new link on the restore page."
            .into(),
    )
}

fn used_link() -> Error {
    Error::Gone(
        "this restore link has just been used to create an account (perhaps in another tab or \
         window), or it stopped working meanwhile. A backup is restored only once; if it was you, \
         sign in with the username you chose."
            .into(),
    )
}

/// Answers at once; looks up the address and mails a link afterwards (see the module
/// doc for why the answer must not wait). Malformed addresses are ignored the same way.
pub fn request_link(pod: &Arc<Pod>, restores: &Restores, email: &str) {
    let Ok(email) = normalize_email(email) else { return };
    let (pod, restores) = (pod.clone(), restores.clone());
    tokio::spawn(async move {
        if let Err(e) = send_link(&pod, &restores, &email).await {
            tracing::error!("restore link: {e}");
        }
    });
}

/// Mails a restore link when a restorable backup is held for `email` (normalised) and
/// the address's daily limit allows; revokes the earlier link. Returns whether a mail
/// was queued.
pub async fn send_link(pod: &Pod, restores: &Restores, email: &str) -> Result<bool> {
    if restores.holder.restorable(email)?.is_empty() {
        tracing::info!("restore link not mailed: no backup that can be restored is held for the address");
        return Ok(false);
    }
    let token = LinkToken::generate();
    let hash = token.hash();
    let mail_id = pod.store.generate_id()?;
    let now = now_unix();
    let ttl = pod.config.backups.restore_link_ttl.get().as_secs();
    let per_day = pod.config.backups.restore_links_per_day as usize;
    let mail = link_mail(&pod.config, email, token.as_str());
    let revoked = pod.store.transaction(|tx| {
        let mut address = tx.restore_address(email)?;
        address.mailed_unix.retain(|at| at + MAIL_WINDOW_SECS > now);
        if address.mailed_unix.len() >= per_day {
            return Ok(None);
        }
        let previous = address.current.replace(hash);
        if let Some(previous) = &previous {
            tx.remove_restore_token(previous)?;
        }
        address.mailed_unix.push(now);
        tx.put_restore_token(
            &hash,
            &RestoreToken {
                email: email.to_string(),
                created_unix: now,
                expires_unix: now + ttl,
                attempts_left: ATTEMPTS,
                opened: None,
            },
        )?;
        tx.put_restore_address(email, &address)?;
        pod.mailer.enqueue_in(tx, mail_id, &mail)?;
        Ok(Some(previous))
    })?;
    let Some(previous) = revoked else {
        tracing::info!("restore link not mailed: the address's daily limit is reached");
        return Ok(false);
    };
    pod.store.durable().await?;
    pod.mailer.wake();
    if let Some(previous) = previous {
        restores.opened.remove(&previous);
    }
    tracing::info!("restore link mailed");
    Ok(true)
}

fn format_ttl(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 && s == 3600 => "one hour".into(),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s if s >= 60 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// The mail carrying a restore link.
pub fn link_mail(config: &Config, email: &str, token: &str) -> Mail {
    let url = config.public_url();
    let host = config.public_host();
    let ttl = format_ttl(config.backups.restore_link_ttl.get().as_secs());
    Mail {
        to: email.to_string(),
        subject: format!("Restore your diaspora* account on {host}"),
        text: format!(
            "Hello,\n\
             \n\
             someone (we hope it was you) asked the lifeboat pod {url} to restore a\n\
             diaspora* account from the encrypted backup it holds for {email}.\n\
             \n\
             To go on, open this link and enter your backup pass phrase:\n\
             \n\
             \x20   {url}/restore_backup/confirm?token={token}\n\
             \n\
             The link works for {ttl} and allows {ATTEMPTS} tries of the pass phrase.\n\
             Any earlier restore link for this address no longer works.\n\
             \n\
             What comes back: {WHAT_COMES_BACK}.\n\
             What does not: {WHAT_DOES_NOT}.\n\
             \n\
             If you did not ask for this, ignore this message: nothing happens without\n\
             your pass phrase.\n\
             \n\
             -- \n\
             lifeboat at {host}\n"
        ),
    }
}

fn valid_record(pod: &Pod, hash: &[u8; 32], now: u64) -> Result<RestoreToken> {
    match RestoreStore::restore_token(&pod.store, hash)? {
        Some(record) if record.expires_unix > now && record.attempts_left > 0 => Ok(record),
        // Opened with the last attempt: still good for the account form and the download.
        Some(record) if record.expires_unix > now && record.opened.is_some() => Ok(record),
        _ => Err(invalid_link()),
    }
}

/// What a link shows before anything is entered; changes nothing.
pub fn link_info(pod: &Pod, token: &str) -> Result<LinkInfo> {
    let hash = link_hash(token).ok_or_else(invalid_link)?;
    let record = valid_record(pod, &hash, now_unix())?;
    Ok(LinkInfo {
        email: record.email,
        attempts_left: record.attempts_left,
        expires_unix: record.expires_unix,
    })
}

/// The account form's view of a link whose archive is open in memory.
pub fn opened_view(pod: &Pod, restores: &Restores, token: &str) -> Option<RestoreView> {
    let hash = link_hash(token)?;
    let record = valid_record(pod, &hash, now_unix()).ok()?;
    let opened = restores.opened.get(&hash)?;
    Some(RestoreView::of(&opened.archive, &record.email))
}

/// One pass-phrase attempt (see the module doc, step 3).
pub async fn unlock(pod: &Pod, restores: &Restores, token: &str, passphrase: Passphrase) -> Result<Unlock> {
    let hash = link_hash(token).ok_or_else(invalid_link)?;
    let now = now_unix();
    // The attempt is taken, durably, before any derivation runs.
    let record = pod.store.transaction(|tx| {
        let Some(mut record) = tx.restore_token(&hash)? else {
            return abort(invalid_link());
        };
        if record.expires_unix <= now || record.attempts_left == 0 {
            return abort(invalid_link());
        }
        record.attempts_left -= 1;
        tx.put_restore_token(&hash, &record)?;
        Ok(record)
    })?;
    pod.store.durable().await?;
    let holder = &restores.holder;
    let slots = holder.restorable(&record.email)?;
    if slots.is_empty() {
        return Err(Error::Gone(
            "this pod no longer holds a backup for this address that can be restored".into(),
        ));
    }
    let mut unusable: Option<Error> = None;
    for (key, slot) in slots {
        let (Some(sha256), Some(bytes)) = (slot.sha256, holder.store().backup(&key)?) else {
            continue;
        };
        let plaintext = match pod.kdf.open(bytes, passphrase.clone(), KdfBounds::HOLDER).await {
            Ok(plaintext) => Zeroizing::new(plaintext),
            Err(crate::sealed::OpenError::WrongPassphraseOrDamaged) => continue,
            Err(e) => {
                tracing::warn!(slot = %key.fingerprint.short(), "a held backup cannot be opened: {e}");
                continue;
            }
        };
        let size = plaintext.len();
        let max = pod.config.accounts.max_import_bytes;
        let archive = tokio::task::spawn_blocking(move || read_sealed_archive(&plaintext, max))
            .await
            .map_err(Error::internal)?;
        match archive {
            Ok(archive) => {
                let opened = OpenedBackup {
                    archive: Arc::new(archive),
                    slot: key,
                    sha256,
                    confirmed: slot.confirmed,
                    size,
                    expires: Instant::now(),
                };
                return opened_backup(pod, restores, hash, opened).await;
            }
            Err(e) => unusable = Some(e),
        }
    }
    if let Some(e) = unusable {
        return Err(Error::bad(format!(
            "your pass phrase opened the backup, but what it holds is not a usable account archive: {}",
            e.client_message()
        )));
    }
    if record.attempts_left == 0 && record.opened.is_none() {
        kill_link(pod, restores, &hash, &record.email).await?;
    }
    Ok(Unlock::WrongPassphrase {
        attempts_left: record.attempts_left,
    })
}

/// Removes a link for good (the fifth wrong pass phrase).
async fn kill_link(pod: &Pod, restores: &Restores, hash: &[u8; 32], email: &str) -> Result<()> {
    pod.store.transaction(|tx| {
        tx.remove_restore_token(hash)?;
        let mut address = tx.restore_address(email)?;
        if address.current == Some(*hash) {
            address.current = None;
            tx.put_restore_address(email, &address)?;
        }
        Ok(())
    })?;
    pod.store.durable().await?;
    restores.opened.remove(hash);
    tracing::info!("a restore link died after the last wrong pass phrase");
    Ok(())
}

/// A backup opened: stops when its identity is alive, else remembers the slot (in the
/// store) and the archive (in memory).
async fn opened_backup(pod: &Pod, restores: &Restores, hash: [u8; 32], mut opened: OpenedBackup) -> Result<Unlock> {
    if let Some(old_id) = opened.archive.old_diaspora_id.clone() {
        if let Some(pod_origin) = still_active(pod, &old_id).await? {
            tracing::info!(%old_id, "restore stopped: the old identity still answers as an active account");
            return Ok(Unlock::StillActive { old_id, pod_origin });
        }
    }
    let slot = OpenedSlot {
        fingerprint: opened.slot.fingerprint.0,
        sha256: opened.sha256,
    };
    let now = now_unix();
    let record = pod.store.transaction(|tx| {
        let Some(mut current) = tx.restore_token(&hash)? else {
            return abort(invalid_link());
        };
        if current.expires_unix <= now {
            return abort(invalid_link());
        }
        current.opened = Some(slot);
        tx.put_restore_token(&hash, &current)?;
        Ok(current)
    })?;
    pod.store.durable().await?;
    let left = Duration::from_secs(record.expires_unix.saturating_sub(now));
    opened.expires = Instant::now() + left.min(OPENED_TTL);
    let view = RestoreView::of(&opened.archive, &record.email);
    restores.opened.insert(hash, opened);
    Ok(Unlock::Ready(view))
}

/// The origin of the pod where `old_id` still answers WebFinger and hCard as an active
/// account, or `None` when it does not (gone, closed, unreachable).
pub(super) async fn still_active(pod: &Pod, old_id: &str) -> Result<Option<String>> {
    let http = pod.http.clone();
    let id = old_id.to_string();
    let allow_http = pod.config.federation.allow_http;
    let found = tokio::task::spawn_blocking(move || fetch_person(&http, &id, allow_http))
        .await
        .map_err(Error::internal)?;
    Ok(match found {
        Ok(person) => Some(person.pod_origin),
        Err(e) => {
            tracing::info!(%old_id, "the old identity does not answer as an active account: {e}");
            None
        }
    })
}

/// Creates the account from an opened archive (see the module doc, step 4).
pub async fn create(pod: &Pod, restores: &Restores, token: &str, username: &str, password: &str) -> Result<Create> {
    let hash = link_hash(token).ok_or_else(invalid_link)?;
    let now = now_unix();
    let record = valid_record(pod, &hash, now)?;
    // The cheap checks first, while the archive stays open for another try.
    check_new_username(pod, username)?;
    check_password(password)?;
    check_email_free(pod, &record.email)?;
    let opened = match restores.opened.take(&hash) {
        Taken::Open(opened) => opened,
        Taken::Creating => return Err(used_link()),
        Taken::Missing => return Ok(Create::Reopen),
    };
    // From here the archive is this request's: whatever happens, the link's entry goes
    // (on success the account exists; on failure the pass phrase is entered again).
    let outcome = create_from(pod, hash, now, &record, opened, username, password).await;
    restores.opened.remove(&hash);
    outcome
}

async fn create_from(
    pod: &Pod,
    hash: [u8; 32],
    now: u64,
    record: &RestoreToken,
    opened: OpenedBackup,
    username: &str,
    password: &str,
) -> Result<Create> {
    if record.opened.map(|o| o.fingerprint) != Some(opened.slot.fingerprint.0) {
        return Ok(Create::Reopen);
    }
    let key_check = stored_key_check(pod, &opened.archive)?;
    let old_id = opened.archive.old_diaspora_id.clone();
    // Usually the only copy: moved, not cloned (thousands of contacts).
    let archive = Arc::try_unwrap(opened.archive).unwrap_or_else(|shared| (*shared).clone());
    let arrival = Arrival {
        archive,
        username: username.to_string(),
        password: password.to_string(),
        email: record.email.clone(),
        email_confirmed: true,
    };
    let prepared = prepare(pod, arrival).await?;
    let (slot, sha256, email) = (&opened.slot, &opened.sha256, &record.email);
    pod.store.transaction(|tx| {
        // Compare-and-swap: the first unit of work that still finds the token takes it.
        match tx.restore_token(&hash)? {
            Some(current)
                if current.expires_unix > now && current.opened.map(|o| o.fingerprint) == Some(slot.fingerprint.0) =>
            {
                tx.remove_restore_token(&hash)?
            }
            _ => return abort(used_link()),
        }
        let mut address = tx.restore_address(email)?;
        if address.current == Some(hash) {
            address.current = None;
            tx.put_restore_address(email, &address)?;
        }
        mark_restored_in(&SledSlotTx::new(tx), slot, sha256, now)?;
        write_in(pod, tx, &prepared)
    })?;
    pod.store.durable().await?;
    pod.signals.outbox.ring();
    pod.signals.discovery.ring();
    if key_check.applies_here() {
        crate::arrivals::apply_locally(pod, &prepared).await;
    }
    tracing::info!(
        username = %prepared.account.username,
        from = old_id.as_deref().unwrap_or("-"),
        deliveries = prepared.deliveries.len(),
        "backup restored"
    );
    Ok(Create::Done(Box::new(Created {
        announced_to: prepared.deliveries.len(),
        account: prepared.account,
        old_id,
        key_check,
        repairs: prepared.repairs,
    })))
}

/// The held `.lfbk` of the slot a link's pass phrase opened ("download my backup"), and
/// a file name for it. Changes nothing: the backup stays restorable.
pub fn held_backup(pod: &Pod, restores: &Restores, token: &str) -> Result<(Vec<u8>, String)> {
    let hash = link_hash(token).ok_or_else(invalid_link)?;
    let record = valid_record(pod, &hash, now_unix())?;
    let Some(opened) = record.opened else {
        return Err(Error::Forbidden(
            "enter your pass phrase first: the download is offered once it has opened your backup".into(),
        ));
    };
    let key = SlotKey {
        email: record.email,
        fingerprint: Fingerprint(opened.fingerprint),
    };
    let bytes = restores
        .holder
        .store()
        .backup(&key)?
        .ok_or_else(|| Error::Gone("this pod no longer holds that backup".into()))?;
    Ok((bytes, format!("diaspora-backup-{}.lfbk", key.fingerprint.short())))
}

// ---------------------------------------------------------------------------------
// Periodic work
// ---------------------------------------------------------------------------------

/// Erases restored slots' ciphertext after 30 days, removes expired links and stale
/// per-address records, and drops expired opened archives.
pub async fn sweep(pod: &Pod, restores: &Restores) -> Result<()> {
    let now = now_unix();
    let holder = &restores.holder;
    let erased = holder.erase_restored(now).await?;
    if erased > 0 {
        tracing::info!(erased, "erased the ciphertext of backups restored 30 days ago");
    }
    let slots = holder.store().clone();
    let tidied = tokio::task::spawn_blocking(move || slots.tidy_held())
        .await
        .map_err(|e| Error::internal(format!("the tidy pass stopped: {e}")))??;
    if tidied.segments_removed > 0 || tidied.bytes_freed > 0 {
        tracing::info!(
            segments_removed = tidied.segments_removed,
            bytes_freed = tidied.bytes_freed,
            "gave back the space of held backups replaced or deleted"
        );
    }
    let mut changed = false;
    for (hash, token) in RestoreStore::restore_tokens(&pod.store)? {
        if token.expires_unix > now {
            continue;
        }
        pod.store.transaction(|tx| {
            tx.remove_restore_token(&hash)?;
            let mut address = tx.restore_address(&token.email)?;
            if address.current == Some(hash) {
                address.current = None;
                tx.put_restore_address(&token.email, &address)?;
            }
            Ok(())
        })?;
        changed = true;
    }
    for (email, record) in RestoreStore::restore_addresses(&pod.store)? {
        if record.mailed_unix.iter().all(|at| at + MAIL_WINDOW_SECS <= now) && record.current.is_none() {
            pod.store.transaction(|tx| {
                let mut address = tx.restore_address(&email)?;
                address.mailed_unix.retain(|at| at + MAIL_WINDOW_SECS > now);
                tx.put_restore_address(&email, &address)
            })?;
            changed = true;
        }
    }
    if changed {
        pod.store.durable().await?;
    }
    restores.opened.purge_expired();
    Ok(())
}

/// Runs [`sweep`] at start and hourly until `shutdown`.
pub async fn run(pod: Arc<Pod>, restores: Restores, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = sweep(&pod, &restores).await {
            tracing::error!("restore sweep: {e}");
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
