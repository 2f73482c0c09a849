//! The home pod's backup state on sled: see [`crate::backup::home::SyncStore`]. Key
//! layouts are documented on the [`Tree`] variants `backup_sync`, `backup_sync_due`,
//! `backup_nudges` and `backup_choices`; and the pod directory
//! ([`crate::backup::home::pods::PodDirectory`], tree `backup_pods`).

use super::{decode, Store, Tree, Tx};
use crate::account::now_unix;
use crate::backup::home::pods::PodInfo;
use crate::backup::home::{Nudge, SyncState, SyncStore, SyncTx, TxResult};
use crate::Result;

/// The schedule key: due time (Unix seconds, big-endian, so keys sort by time), then
/// the username.
fn due_key(at: u64, username: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + username.len());
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(username.as_bytes());
    key
}

fn split_due_key(key: &[u8]) -> Option<(u64, String)> {
    let (at, name) = key.split_at_checked(8)?;
    Some((
        u64::from_be_bytes(at.try_into().ok()?),
        String::from_utf8(name.to_vec()).ok()?,
    ))
}

/// Records, inside the unit of work that writes an account, that its data changed:
/// the backup worker takes it up (debounced). The store's side of
/// `AccountTx::note_account_changed`.
pub fn note_account_changed(tx: &Tx, username: &str) -> TxResult<()> {
    tx.nudge(
        username,
        Nudge {
            changed_unix: Some(now_unix()),
            now: false,
        },
    )
}

impl SyncStore for Store {
    fn sync_state(&self, username: &str) -> Result<Option<SyncState>> {
        self.tree(Tree::BackupSync)
            .get(username)?
            .map(|b| decode(&b))
            .transpose()
    }

    fn sync_states(&self) -> Result<Vec<(String, SyncState)>> {
        self.tree(Tree::BackupSync)
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((String::from_utf8_lossy(&key).into_owned(), decode(&value)?))
            })
            .collect()
    }

    fn due_accounts(&self, now: u64, limit: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for key in self.tree(Tree::BackupSyncDue).range(..due_key(now + 1, "")).keys() {
            if out.len() >= limit {
                break;
            }
            if let Some((_, username)) = split_due_key(&key?) {
                out.push(username);
            }
        }
        Ok(out)
    }

    fn next_due(&self) -> Result<Option<u64>> {
        Ok(match self.tree(Tree::BackupSyncDue).first()? {
            Some((key, _)) => split_due_key(&key).map(|(at, _)| at),
            None => None,
        })
    }

    fn nudges(&self) -> Result<Vec<(String, Nudge)>> {
        self.tree(Tree::BackupNudges)
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((String::from_utf8_lossy(&key).into_owned(), decode(&value)?))
            })
            .collect()
    }

    fn backup_choice(&self, username: &str) -> Result<Option<String>> {
        self.tree(Tree::BackupChoices)
            .get(username)?
            .map(|b| decode(&b))
            .transpose()
    }
}

impl SyncTx for Tx<'_> {
    fn sync_state(&self, username: &str) -> TxResult<Option<SyncState>> {
        self.get(Tree::BackupSync, username.as_bytes())
    }

    fn put_sync_state(&self, username: &str, state: &SyncState, wake: Option<u64>) -> TxResult<()> {
        let previous: Option<SyncState> = self.get(Tree::BackupSync, username.as_bytes())?;
        if let Some(at) = previous.and_then(|p| p.scheduled) {
            self.tree(Tree::BackupSyncDue).remove(due_key(at, username))?;
        }
        if let Some(at) = wake {
            self.tree(Tree::BackupSyncDue).insert(due_key(at, username), &[])?;
        }
        let mut state = state.clone();
        state.scheduled = wake;
        self.put(Tree::BackupSync, username.as_bytes(), &state)
    }

    fn nudge(&self, username: &str, nudge: Nudge) -> TxResult<()> {
        let current: Option<Nudge> = self.get(Tree::BackupNudges, username.as_bytes())?;
        let merged = current.map_or(nudge, |c| c.merge(nudge));
        if current != Some(merged) {
            self.put(Tree::BackupNudges, username.as_bytes(), &merged)?;
        }
        Ok(())
    }

    fn take_nudge(&self, username: &str, seen: &Nudge) -> TxResult<bool> {
        let current: Option<Nudge> = self.get(Tree::BackupNudges, username.as_bytes())?;
        if current.as_ref() != Some(seen) {
            return Ok(false);
        }
        self.tree(Tree::BackupNudges).remove(username.as_bytes())?;
        Ok(true)
    }

    fn put_backup_choice(&self, username: &str, origin: &str) -> TxResult<()> {
        self.put(Tree::BackupChoices, username.as_bytes(), &origin.to_string())
    }

    fn take_backup_choice(&self, username: &str, seen: &str) -> TxResult<()> {
        let current: Option<String> = self.get(Tree::BackupChoices, username.as_bytes())?;
        if current.as_deref() == Some(seen) {
            self.tree(Tree::BackupChoices).remove(username.as_bytes())?;
        }
        Ok(())
    }
}

/// Checks one value of the sync trees (for `lifeboat check`).
pub fn check_value(tree: Tree, key: &[u8], value: &[u8]) -> Result<()> {
    match tree {
        Tree::BackupPods => decode::<PodInfo>(value).map(|_| ()),
        Tree::BackupSync => decode::<SyncState>(value).map(|_| ()),
        Tree::BackupNudges => decode::<Nudge>(value).map(|_| ()),
        Tree::BackupChoices => decode::<String>(value).map(|_| ()),
        Tree::BackupSyncDue => match split_due_key(key) {
            Some(_) => Ok(()),
            None => Err(crate::Error::internal("a schedule key is damaged")),
        },
        _ => Ok(()),
    }
}

impl crate::backup::home::pods::PodDirectory for Store {
    fn pod(&self, origin: &str) -> Result<Option<PodInfo>> {
        self.tree(Tree::BackupPods).get(origin)?.map(|b| decode(&b)).transpose()
    }

    fn pods(&self) -> Result<Vec<(String, PodInfo)>> {
        self.tree(Tree::BackupPods)
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((String::from_utf8_lossy(&key).into_owned(), decode(&value)?))
            })
            .collect()
    }
}

impl crate::backup::home::pods::PodDirectoryTx for Tx<'_> {
    fn pod(&self, origin: &str) -> TxResult<Option<PodInfo>> {
        self.get(Tree::BackupPods, origin.as_bytes())
    }

    fn put_pod(&self, origin: &str, info: &PodInfo) -> TxResult<()> {
        self.put(Tree::BackupPods, origin.as_bytes(), info)
    }
}
