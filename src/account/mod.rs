//! Local accounts: the account model, sign-up and credentials, sessions and emailed
//! tokens, and the archive that is an account's portable form.
//!
//! Owns the rules of what an account may hold and how it changes, and declares
//! [`AccountStore`], the storage it needs (implemented in `store::accounts`). Does not
//! own: HTTP (see `web`), federation formats (see `federation`), backups (see `backup`).

pub mod archive;
pub mod credentials;
pub mod keys;
pub mod model;
pub mod profile;
pub mod session;

use serde::{Deserialize, Serialize};

pub use credentials::{check_password, check_username, normalize_email, now_unix};
pub use model::{Account, Avatar, Closed, ContactData, MovedFrom, ProfileData};

use crate::mail::Mail;
use crate::pod::Pod;
use crate::store::{abort, Store, Tx};
use crate::token::LinkToken;
use crate::{Error, Result};

/// How long an emailed link to confirm an address stays valid.
pub const CONFIRM_EMAIL_TTL: u64 = 7 * 86400;
/// How long an emailed password-reset link stays valid.
pub const RESET_PASSWORD_TTL: u64 = 3600;

/// The storage accounts need.
pub trait AccountStore {
    /// The account of that username, closed ones included.
    fn account(&self, username: &str) -> Result<Option<Account>>;
    /// The username owning a normalised email address.
    fn username_for_email(&self, email: &str) -> Result<Option<String>>;
    /// The account of a guid.
    fn account_by_guid(&self, guid: &str) -> Result<Option<Account>>;
    /// Every account, in username order.
    fn accounts(&self) -> Result<Vec<Account>>;
}

/// The same reads and the writes, inside a unit of work.
pub trait AccountTx {
    fn account(&self, username: &str) -> TxResult<Option<Account>>;
    fn username_for_email(&self, email: &str) -> TxResult<Option<String>>;
    /// Writes `account`, keeping the email and guid indexes in step with `previous`.
    fn write_account(&self, previous: Option<&Account>, account: &Account) -> TxResult<()>;
    /// Notes that an account's data changed, for the worker that keeps its backup
    /// current (it takes the note up, debounced).
    fn note_account_changed(&self, username: &str) -> TxResult<()>;
    /// Writes `account` ([`AccountTx::write_account`]) and notes the change: any
    /// change to an account may change its backup, so every path that writes one
    /// goes through here.
    fn put_account(&self, previous: Option<&Account>, account: &Account) -> TxResult<()> {
        self.write_account(previous, account)?;
        self.note_account_changed(&account.username)
    }
    /// Stores a token's record under the token's hash ([`LinkToken::hash`]).
    fn put_token(&self, hash: &[u8; 32], record: &TokenRecord) -> TxResult<()>;
    /// Removes and returns a token's record (single use).
    fn take_token(&self, hash: &[u8; 32]) -> TxResult<Option<TokenRecord>>;
}

pub use crate::store::TxResult;

/// What an emailed link may do.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum TokenPurpose {
    /// Confirm that `email` belongs to the account (sign-up or an email change).
    ConfirmEmail { email: String },
    /// Set a new password.
    ResetPassword,
}

/// A stored token (kept under the SHA-256 of the token itself).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TokenRecord {
    pub username: String,
    pub purpose: TokenPurpose,
    pub expires_unix: u64,
}

/// What a person types to sign up.
pub struct SignUp {
    pub username: String,
    pub email: String,
    pub password: String,
    /// The backup pass phrase, or None to decide later (podmin-made accounts) or when
    /// the person opted out (`backups_opted_out`).
    pub passphrase: Option<String>,
    pub backups_opted_out: bool,
}

/// Creates an account from the web sign-up form and mails the address a link to
/// confirm it.
pub async fn sign_up(pod: &Pod, form: SignUp) -> Result<Account> {
    if !pod.config.accounts.open_registrations {
        return Err(Error::Forbidden("registrations are closed on this pod".into()));
    }
    if pod.config.accounts.admins.contains(&form.username) {
        return Err(Error::Conflict("this username is reserved".into()));
    }
    let account = create(pod, form, false).await?;
    Ok(account)
}

/// Creates an account as the podmin does (`lifeboat user add`): the address counts as
/// confirmed and no mail is sent.
pub async fn create_by_podmin(pod: &Pod, form: SignUp) -> Result<Account> {
    create(pod, form, true).await
}

async fn create(pod: &Pod, form: SignUp, email_confirmed: bool) -> Result<Account> {
    check_username(&form.username)?;
    let email = normalize_email(&form.email)?;
    check_password(&form.password)?;
    ensure_free(&pod.store, &form.username, &email)?;
    let sealing_key = match &form.passphrase {
        Some(passphrase) if !form.backups_opted_out => {
            Some(derive_sealing_key(pod, passphrase, &[&form.username, &email]).await?)
        }
        _ => None,
    };
    let password = form.password;
    let password_hash = tokio::task::spawn_blocking(move || credentials::hash_password(&password))
        .await
        .map_err(Error::internal)??;
    let keys = crate::account::keys::take(&pod.store, pod.config.accounts.key_bits, &pod.signals.keys).await?;
    let mut account = Account::fresh(&form.username, &email, &keys, now_unix());
    account.email_confirmed = email_confirmed;
    account.password_hash = password_hash;
    account.profile.searchable = true;
    account.aspects = vec!["Family".into(), "Friends".into(), "Work".into(), "Acquaintances".into()];
    account.sealing_key = sealing_key;
    account.backups_opted_out = form.backups_opted_out;
    let confirmation = (!email_confirmed).then(|| (LinkToken::generate(), pod.store.generate_id()));
    let confirmation = match confirmation {
        Some((token, id)) => Some((token, id?)),
        None => None,
    };
    pod.store.transaction(|tx| {
        if AccountTx::account(tx, &account.username)?.is_some() {
            return abort(Error::Conflict("this username is taken".into()));
        }
        if AccountTx::username_for_email(tx, &account.email)?.is_some() {
            return abort(Error::Conflict(
                "an account with this email address exists already".into(),
            ));
        }
        tx.put_account(None, &account)?;
        if let Some((token, mail_id)) = &confirmation {
            queue_confirmation(pod, tx, &account, &account.email, token, *mail_id)?;
        }
        Ok(())
    })?;
    pod.store.durable().await?;
    pod.mailer.wake();
    tracing::info!(username = %account.username, "account created");
    Ok(account)
}

fn ensure_free(store: &Store, username: &str, email: &str) -> Result<()> {
    if AccountStore::account(store, username)?.is_some() {
        return Err(Error::Conflict("this username is taken".into()));
    }
    if AccountStore::username_for_email(store, email)?.is_some() {
        return Err(Error::Conflict(
            "an account with this email address exists already".into(),
        ));
    }
    Ok(())
}

/// Queues the mail that confirms `email` for `account`, with its link's token, inside a
/// unit of work.
pub(crate) fn queue_confirmation(
    pod: &Pod,
    tx: &Tx,
    account: &Account,
    email: &str,
    token: &LinkToken,
    mail_id: u64,
) -> TxResult<()> {
    tx.put_token(
        &token.hash(),
        &TokenRecord {
            username: account.username.clone(),
            purpose: TokenPurpose::ConfirmEmail {
                email: email.to_string(),
            },
            expires_unix: now_unix() + CONFIRM_EMAIL_TTL,
        },
    )?;
    let host = pod.config.public_host();
    let link = format!(
        "{}/users/confirm_email?token={}",
        pod.config.public_url(),
        token.as_str()
    );
    let mail = Mail {
        to: email.to_string(),
        subject: format!("Confirm your email address for {}@{host}", account.username),
        text: format!(
            "Hello {user},\n\nplease confirm that this address belongs to your account {user}@{host} by opening this link:\n\n{link}\n\nThe link works for 7 days. Your encrypted backups start once the address is confirmed, because restoring an account depends on this mailbox.\n\nIf you did not ask for this, ignore this message.\n",
            user = account.username
        ),
    };
    pod.mailer.enqueue_in(tx, mail_id, &mail)
}

/// Confirms an address from an emailed link; returns the username.
pub async fn confirm_email(pod: &Pod, token: &str) -> Result<String> {
    let unknown = || Error::NotFound("this link is unknown, used or expired".into());
    let hash = LinkToken::hash_of(token).ok_or_else(unknown)?;
    let username = pod.store.transaction(|tx| {
        let Some(record) = tx.take_token(&hash)? else {
            return abort(unknown());
        };
        let TokenPurpose::ConfirmEmail { email } = &record.purpose else {
            return abort(Error::NotFound("this link is unknown, used or expired".into()));
        };
        if record.expires_unix < now_unix() {
            return abort(Error::Gone(
                "this link has expired; sign in and ask for a new one".into(),
            ));
        }
        let Some(previous) = AccountTx::account(tx, &record.username)? else {
            return abort(Error::NotFound("this account no longer exists".into()));
        };
        if previous.closed.is_some() {
            return abort(Error::Gone("this account is closed".into()));
        }
        if *email != previous.email {
            if let Some(owner) = AccountTx::username_for_email(tx, email)? {
                if owner != previous.username {
                    return abort(Error::Conflict("another account uses this email address now".into()));
                }
            }
        }
        let mut account = previous.clone();
        account.email = email.clone();
        account.email_confirmed = true;
        tx.put_account(Some(&previous), &account)?;
        Ok(account.username)
    })?;
    pod.store.durable().await?;
    // Backups start once the address is confirmed.
    pod.signals.backups.ring();
    tracing::info!(%username, "email address confirmed");
    Ok(username)
}

/// Checks a sign-in; returns the open account.
pub async fn sign_in(pod: &Pod, login: &str, password: &str) -> Result<Account> {
    let refused = || Error::Unauthorized("wrong username or password".into());
    let login = login.trim();
    let username = if login.contains('@') {
        normalize_email(login)
            .ok()
            .and_then(|e| AccountStore::username_for_email(&pod.store, &e).ok().flatten())
    } else {
        Some(login.to_ascii_lowercase())
    };
    let account = match username {
        Some(u) => AccountStore::account(&pod.store, &u)?,
        None => None,
    };
    // Hash even when there is no such account, so timing does not tell which names exist.
    let hash = match &account {
        Some(a) => a.password_hash.clone(),
        None => dummy_hash().to_string(),
    };
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || credentials::verify_password(&password, &hash))
        .await
        .map_err(Error::internal)?;
    match account {
        // Where a closed account went is public (its profile page says it), and its
        // password is gone with its data: say so whatever was typed.
        Some(account) if account.closed.is_some() => Err(Error::Gone(match account.closed.and_then(|c| c.moved_to) {
            Some(new_id) => format!("this account moved to {new_id}"),
            None => "this account is closed".into(),
        })),
        Some(account) if ok => Ok(account),
        _ => Err(refused()),
    }
}

/// A real Argon2id hash of a random password, checked when the account is unknown.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| credentials::hash_password(&credentials::random_token()).unwrap_or_default())
}

/// Mails a password-reset link when an account has this address. Says nothing about
/// whether one does.
pub async fn request_password_reset(pod: &Pod, email: &str) -> Result<()> {
    let Ok(email) = normalize_email(email) else {
        return Ok(());
    };
    let Some(username) = AccountStore::username_for_email(&pod.store, &email)? else {
        return Ok(());
    };
    let Some(account) = AccountStore::account(&pod.store, &username)? else {
        return Ok(());
    };
    if account.closed.is_some() {
        return Ok(());
    }
    let token = LinkToken::generate();
    let mail_id = pod.store.generate_id()?;
    let link = format!(
        "{}/users/password/reset?token={}",
        pod.config.public_url(),
        token.as_str()
    );
    let mail = Mail {
        to: account.email.clone(),
        subject: format!("Reset your password for {}@{}", account.username, pod.config.public_host()),
        text: format!(
            "Hello {},\n\nsomeone asked to reset the password of your account. To choose a new password, open:\n\n{link}\n\nThe link works for one hour and only once. If you did not ask for this, ignore this message: your password stays as it is.\n",
            account.username
        ),
    };
    pod.store.transaction(|tx| {
        tx.put_token(
            &token.hash(),
            &TokenRecord {
                username: username.clone(),
                purpose: TokenPurpose::ResetPassword,
                expires_unix: now_unix() + RESET_PASSWORD_TTL,
            },
        )?;
        pod.mailer.enqueue_in(tx, mail_id, &mail)
    })?;
    pod.store.durable().await?;
    pod.mailer.wake();
    Ok(())
}

/// Sets a new password from a reset link; ends every session of the account.
pub async fn reset_password(pod: &Pod, token: &str, new_password: &str) -> Result<String> {
    check_password(new_password)?;
    let password = new_password.to_string();
    let hash = tokio::task::spawn_blocking(move || credentials::hash_password(&password))
        .await
        .map_err(Error::internal)??;
    let link = LinkToken::hash_of(token)
        .ok_or_else(|| Error::NotFound("this link is unknown, used or expired; ask for a new one".into()))?;
    let username = pod.store.transaction(|tx| {
        let record = match tx.take_token(&link)? {
            Some(r) if r.purpose == TokenPurpose::ResetPassword && r.expires_unix >= now_unix() => r,
            _ => {
                return abort(Error::NotFound(
                    "this link is unknown, used or expired; ask for a new one".into(),
                ))
            }
        };
        let Some(previous) = AccountTx::account(tx, &record.username)? else {
            return abort(Error::NotFound("this account no longer exists".into()));
        };
        let mut account = previous.clone();
        account.password_hash = hash.clone();
        // Sessions carry a stamp of the password hash, so this ends every session.
        tx.put_account(Some(&previous), &account)?;
        Ok(account.username)
    })?;
    pod.store.durable().await?;
    tracing::info!(%username, "password reset");
    Ok(username)
}

/// Re-checks the password of a signed-in user before a sensitive change.
pub async fn check_current_password(account: &Account, password: &str) -> Result<()> {
    let hash = account.password_hash.clone();
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || credentials::verify_password(&password, &hash))
        .await
        .map_err(Error::internal)?;
    if ok {
        Ok(())
    } else {
        Err(Error::Unauthorized("the current password is wrong".into()))
    }
}

/// Changes the password of a signed-in user.
pub async fn change_password(pod: &Pod, username: &str, current: &str, new_password: &str) -> Result<()> {
    let account = open_account(&pod.store, username)?;
    check_current_password(&account, current).await?;
    check_password(new_password)?;
    let password = new_password.to_string();
    let hash = tokio::task::spawn_blocking(move || credentials::hash_password(&password))
        .await
        .map_err(Error::internal)??;
    update(pod, username, |account| {
        account.password_hash = hash.clone();
        Ok(())
    })
    .await?;
    Ok(())
}

/// Starts an email change: mails the new address a confirmation link. The address
/// changes when the link is opened.
pub async fn change_email(pod: &Pod, username: &str, password: &str, new_email: &str) -> Result<String> {
    let account = open_account(&pod.store, username)?;
    check_current_password(&account, password).await?;
    let email = normalize_email(new_email)?;
    if email == account.email {
        return Err(Error::bad("this is already your email address"));
    }
    if AccountStore::username_for_email(&pod.store, &email)?.is_some() {
        return Err(Error::Conflict(
            "an account with this email address exists already".into(),
        ));
    }
    let token = LinkToken::generate();
    let mail_id = pod.store.generate_id()?;
    pod.store
        .transaction(|tx| queue_confirmation(pod, tx, &account, &email, &token, mail_id))?;
    pod.store.durable().await?;
    pod.mailer.wake();
    Ok(email)
}

/// How long a closed account's uploaded avatar is still served, so that the
/// `image_url`s other pods and exported archives hold keep working while the network
/// learns of the closing.
pub const AVATAR_KEPT_SECS: u64 = 30 * 86400;

/// Removes everything personal from a closed account; keeps the username and guid
/// (so neither is reused), where it went, and the uploaded avatar, which
/// [`purge_closed_avatars`] deletes [`AVATAR_KEPT_SECS`] later.
pub fn wipe(account: &mut Account, moved_to: Option<String>) {
    account.closed = Some(Closed {
        at_unix: now_unix(),
        moved_to,
    });
    account.private_key_pem.clear();
    account.password_hash.clear();
    account.profile = ProfileData::default();
    account.aspects.clear();
    account.contacts.clear();
    account.followed_tags.clear();
    account.blocks.clear();
    account.verbatim_json = "{}".into();
    account.known_pods.clear();
}

/// Deletes the avatars of accounts closed [`AVATAR_KEPT_SECS`] or more before `now`
/// (run periodically). Returns how many went.
pub async fn purge_closed_avatars(pod: &Pod, now: u64) -> Result<usize> {
    let due: Vec<String> = AccountStore::accounts(&pod.store)?
        .into_iter()
        .filter(|a| a.avatar.is_some() && a.closed.as_ref().is_some_and(|c| !c.keeps_avatar(now)))
        .map(|a| a.username)
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    pod.store.transaction(|tx| {
        for username in &due {
            let Some(previous) = AccountTx::account(tx, username)? else {
                continue;
            };
            if previous.closed.as_ref().is_some_and(|c| !c.keeps_avatar(now)) && previous.avatar.is_some() {
                let mut purged = previous.clone();
                purged.avatar = None;
                tx.put_account(Some(&previous), &purged)?;
            }
        }
        Ok(())
    })?;
    pod.store.durable().await?;
    tracing::info!(
        accounts = due.len(),
        "deleted the avatars of accounts closed 30 days ago"
    );
    Ok(due.len())
}

/// The account of a username if it exists and is open.
pub fn open_account(store: &Store, username: &str) -> Result<Account> {
    match AccountStore::account(store, username)? {
        Some(account) if account.closed.is_none() => Ok(account),
        Some(_) => Err(Error::Gone("this account is closed".into())),
        None => Err(Error::NotFound(format!("no account named {username}"))),
    }
}

/// Applies `change` to an open account in one unit of work and makes it durable.
pub async fn update(pod: &Pod, username: &str, change: impl Fn(&mut Account) -> Result<()>) -> Result<Account> {
    let (account, ()) = pod.store.transaction(|tx| update_in(tx, username, &change))?;
    pod.store.durable().await?;
    // The account's backup may have changed: the worker schedules its push.
    pod.signals.backups.ring();
    Ok(account)
}

/// [`update`] inside a caller's unit of work, so that more can be written with the
/// change (a delivery to another pod). `change` may also answer something (`R`). An
/// account that `change` leaves as it was is not written again. The caller makes the
/// unit durable.
pub fn update_in<R>(tx: &Tx, username: &str, change: impl Fn(&mut Account) -> Result<R>) -> TxResult<(Account, R)> {
    let Some(previous) = AccountTx::account(tx, username)? else {
        return abort(Error::NotFound(format!("no account named {username}")));
    };
    if previous.closed.is_some() {
        return abort(Error::Gone("this account is closed".into()));
    }
    let mut account = previous.clone();
    let answer = match change(&mut account) {
        Ok(answer) => answer,
        Err(e) => return abort(e),
    };
    if account != previous {
        tx.put_account(Some(&previous), &account)?;
    }
    Ok((account, answer))
}

/// Changes an account inside a unit of work when it exists and is open — the rule for
/// what others' messages do to local accounts (a missing or closed one is left alone):
/// `change` edits a copy, written back only if it differs. Returns the account as it
/// now stands and whether it was written; None when it was left alone.
pub fn update_open_in(
    tx: &Tx,
    username: &str,
    change: impl FnOnce(&mut Account) -> TxResult<()>,
) -> TxResult<Option<(Account, bool)>> {
    let Some(previous) = AccountTx::account(tx, username)? else {
        return Ok(None);
    };
    if previous.closed.is_some() {
        return Ok(None);
    }
    let mut account = previous.clone();
    change(&mut account)?;
    let written = account != previous;
    if written {
        tx.put_account(Some(&previous), &account)?;
    }
    Ok(Some((account, written)))
}

/// Checks a backup pass phrase's strength and derives the key backups are sealed with
/// (off the runtime, a bounded number at a time). The pass phrase itself is dropped.
pub async fn derive_sealing_key(
    pod: &Pod,
    passphrase: &str,
    user_inputs: &[&str],
) -> Result<crate::sealed::SealingKey> {
    crate::passphrase::check_strength(passphrase, user_inputs).map_err(Error::BadRequest)?;
    let params = crate::sealed::KdfParams {
        memory_kib: pod.config.backups.kdf_memory_kib,
        time_cost: pod.config.backups.kdf_time_cost,
    };
    pod.kdf
        .derive(crate::passphrase::Passphrase::new(passphrase.to_string()), params)
        .await
}

/// Sets or changes the backup pass phrase (after the password is re-entered). Not a
/// move: the next backup is simply sealed with the new key.
pub async fn set_passphrase(pod: &Pod, username: &str, password: &str, passphrase: &str) -> Result<Account> {
    let account = open_account(&pod.store, username)?;
    check_current_password(&account, password).await?;
    let key = derive_sealing_key(pod, passphrase, &[&account.username, &account.email]).await?;
    update(pod, username, |a| {
        a.sealing_key = Some(key.clone());
        a.backups_opted_out = false;
        Ok(())
    })
    .await
}

/// Removes the pass phrase and stops backups (after the password is re-entered).
pub async fn opt_out_of_backups(pod: &Pod, username: &str, password: &str) -> Result<Account> {
    let account = open_account(&pod.store, username)?;
    check_current_password(&account, password).await?;
    update(pod, username, |a| {
        a.sealing_key = None;
        a.backups_opted_out = true;
        Ok(())
    })
    .await
}

/// The account's archive, sealed as a `.lfbk` with its backup key, or with a key
/// derived from `passphrase` when none is set (or one is given). The password is
/// re-checked first. With `moving`, the account is flagged as moving: a migration to
/// it that arrives later applies at once.
pub async fn sealed_download(
    pod: &Pod,
    username: &str,
    password: &str,
    passphrase: Option<&str>,
    moving: bool,
) -> Result<Vec<u8>> {
    let account = open_account(&pod.store, username)?;
    check_current_password(&account, password).await?;
    if moving && pod.config.accounts.admins.contains(&account.username) {
        return Err(Error::Forbidden(
            "an admin account cannot move away: hand the admin role to another account first".into(),
        ));
    }
    let key = match (passphrase.filter(|p| !p.is_empty()), &account.sealing_key) {
        (Some(passphrase), _) => derive_sealing_key(pod, passphrase, &[&account.username, &account.email]).await?,
        (None, Some(key)) => key.clone(),
        (None, None) => return Err(Error::bad("choose a pass phrase to seal the file with")),
    };
    let account = if moving {
        update(pod, username, |a| {
            a.moving = true;
            Ok(())
        })
        .await?
    } else {
        account
    };
    let archive = archive::write_archive(&account, &pod.config.public_host(), &pod.config.public_url())?;
    Ok(crate::sealed::seal(&archive, &key))
}
