//! Signed-in sessions: a random id in an HttpOnly cookie, only its SHA-256 stored,
//! ended by sign-out, by expiry, by closing the account, or by any change of password
//! (each session carries a stamp of the password hash it was opened with).

use serde::{Deserialize, Serialize};

use super::credentials::{now_unix, random_token, token_hash};
use super::{Account, AccountStore};
use crate::pod::Pod;
use crate::Result;

/// The storage sessions need (implemented in `store::accounts`), keyed by the SHA-256
/// of the session id.
pub trait SessionStore {
    fn session(&self, key: &[u8; 32]) -> Result<Option<Session>>;
    fn put_session(&self, key: &[u8; 32], session: &Session) -> Result<()>;
    fn remove_session(&self, key: &[u8; 32]) -> Result<()>;
}

/// A stored session (under the SHA-256 of its id).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub username: String,
    pub created_unix: u64,
    pub last_seen_unix: u64,
    /// SHA-256 of the account's password hash when the session started.
    pub credential_stamp: [u8; 32],
}

fn stamp(account: &Account) -> [u8; 32] {
    token_hash(&account.password_hash)
}

/// Starts a session; returns the id for the cookie.
pub async fn start(pod: &Pod, account: &Account) -> Result<String> {
    let id = random_token();
    let now = now_unix();
    let session = Session {
        username: account.username.clone(),
        created_unix: now,
        last_seen_unix: now,
        credential_stamp: stamp(account),
    };
    pod.store.put_session(&token_hash(&id), &session)?;
    pod.store.durable().await?;
    Ok(id)
}

/// The open account behind a session id, if the session is valid.
pub fn account(pod: &Pod, id: &str) -> Result<Option<Account>> {
    let key = token_hash(id);
    let Some(mut session) = pod.store.session(&key)? else {
        return Ok(None);
    };
    let now = now_unix();
    if now.saturating_sub(session.last_seen_unix) > pod.config.accounts.session_ttl.get().as_secs() {
        pod.store.remove_session(&key)?;
        return Ok(None);
    }
    let account = match AccountStore::account(&pod.store, &session.username)? {
        Some(account) if account.closed.is_none() && stamp(&account) == session.credential_stamp => account,
        _ => {
            pod.store.remove_session(&key)?;
            return Ok(None);
        }
    };
    // Note activity at most every five minutes: reads should not all become writes.
    if now.saturating_sub(session.last_seen_unix) > 300 {
        session.last_seen_unix = now;
        pod.store.put_session(&key, &session)?;
    }
    Ok(Some(account))
}

/// Ends one session.
pub async fn end(pod: &Pod, id: &str) -> Result<()> {
    pod.store.remove_session(&token_hash(id))?;
    pod.store.durable().await
}
