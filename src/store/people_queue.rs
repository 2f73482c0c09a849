//! The discovery queue on sled: see [`crate::people::queue::QueueStore`] and
//! [`QueueTx`]. Key layouts are documented on the [`Tree`] variants `discovery_queue`
//! (host 0x00 diaspora ID -> [`QueuedPerson`]), `discovery_hosts` (host ->
//! [`HostState`]) and `discovery_due` (next attempt u64 BE ++ host -> empty); the count
//! of queued people is `meta` `discovery_queued` (u64 BE), kept in the same unit of work
//! as every change to `discovery_queue`.

use super::{decode, Store, Tree, Tx};
use crate::people::queue::{HostState, QueueStore, QueueTx, QueuedPerson};
use crate::people::TxResult;
use crate::{Error, Result};

const COUNT_KEY: &str = "discovery_queued";

fn person_key(host: &str, diaspora_id: &str) -> Vec<u8> {
    [host.as_bytes(), &[0], diaspora_id.as_bytes()].concat()
}

fn host_prefix(host: &str) -> Vec<u8> {
    [host.as_bytes(), &[0]].concat()
}

fn due_key(at: u64, host: &str) -> Vec<u8> {
    [&at.to_be_bytes()[..], host.as_bytes()].concat()
}

fn split_due_key(key: &[u8]) -> Option<(u64, String)> {
    let (at, host) = key.split_at_checked(8)?;
    Some((
        u64::from_be_bytes(at.try_into().ok()?),
        String::from_utf8(host.to_vec()).ok()?,
    ))
}

fn count_of(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

impl QueueStore for Store {
    fn due_hosts(&self, now: u64, limit: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for key in self
            .tree(Tree::DiscoveryDue)
            .range(..due_key(now.saturating_add(1), ""))
            .keys()
        {
            if out.len() >= limit {
                break;
            }
            if let Some((_, host)) = split_due_key(&key?) {
                out.push(host);
            }
        }
        Ok(out)
    }

    fn next_due(&self) -> Result<Option<u64>> {
        Ok(match self.tree(Tree::DiscoveryDue).first()? {
            Some((key, _)) => split_due_key(&key).map(|(at, _)| at),
            None => None,
        })
    }

    fn first_queued(&self, host: &str) -> Result<Option<(String, QueuedPerson)>> {
        let prefix = host_prefix(host);
        match self.tree(Tree::DiscoveryQueue).scan_prefix(&prefix).next() {
            Some(entry) => {
                let (key, value) = entry?;
                let id = String::from_utf8(key[prefix.len()..].to_vec())
                    .map_err(|_| Error::internal("a queued diaspora ID is not UTF-8"))?;
                Ok(Some((id, decode(&value)?)))
            }
            None => Ok(None),
        }
    }

    fn queued_on(&self, host: &str) -> Result<Vec<String>> {
        let prefix = host_prefix(host);
        self.tree(Tree::DiscoveryQueue)
            .scan_prefix(&prefix)
            .keys()
            .map(|key| {
                let key = key?;
                Ok(String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            })
            .collect()
    }

    fn queued_count(&self) -> Result<u64> {
        Ok(count_of(self.tree(Tree::Meta).get(COUNT_KEY)?.as_deref()))
    }

    fn hosts(&self) -> Result<Vec<(String, HostState)>> {
        self.tree(Tree::DiscoveryHosts)
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((String::from_utf8_lossy(&key).into_owned(), decode(&value)?))
            })
            .collect()
    }
}

impl QueueTx for Tx<'_> {
    fn queued_count(&self) -> TxResult<u64> {
        Ok(count_of(self.tree(Tree::Meta).get(COUNT_KEY)?.as_deref()))
    }

    fn queued(&self, host: &str, diaspora_id: &str) -> TxResult<Option<QueuedPerson>> {
        self.get(Tree::DiscoveryQueue, &person_key(host, diaspora_id))
    }

    fn put_queued(&self, host: &str, diaspora_id: &str, person: &QueuedPerson) -> TxResult<()> {
        let key = person_key(host, diaspora_id);
        if self.tree(Tree::DiscoveryQueue).get(&key)?.is_none() {
            let count = QueueTx::queued_count(self)?;
            self.tree(Tree::Meta).insert(COUNT_KEY, &(count + 1).to_be_bytes())?;
        }
        self.put(Tree::DiscoveryQueue, &key, person)
    }

    fn remove_queued(&self, host: &str, diaspora_id: &str) -> TxResult<bool> {
        let removed = self
            .tree(Tree::DiscoveryQueue)
            .remove(person_key(host, diaspora_id))?
            .is_some();
        if removed {
            let count = QueueTx::queued_count(self)?;
            self.tree(Tree::Meta)
                .insert(COUNT_KEY, &count.saturating_sub(1).to_be_bytes())?;
        }
        Ok(removed)
    }

    fn host(&self, host: &str) -> TxResult<Option<HostState>> {
        self.get(Tree::DiscoveryHosts, host.as_bytes())
    }

    fn put_host(&self, host: &str, state: Option<&HostState>) -> TxResult<()> {
        if let Some(previous) = self.get::<HostState>(Tree::DiscoveryHosts, host.as_bytes())? {
            self.tree(Tree::DiscoveryDue)
                .remove(due_key(previous.next_unix, host))?;
        }
        match state {
            Some(state) => {
                self.tree(Tree::DiscoveryDue)
                    .insert(due_key(state.next_unix, host), &[])?;
                self.put(Tree::DiscoveryHosts, host.as_bytes(), state)
            }
            None => {
                self.tree(Tree::DiscoveryHosts).remove(host.as_bytes())?;
                Ok(())
            }
        }
    }
}

/// Checks one value of the queue trees (for `lifeboat check`).
pub fn check_value(tree: Tree, key: &[u8], value: &[u8]) -> Result<()> {
    let check_person = |v: &[u8]| decode::<QueuedPerson>(v).map(|_| ());
    let check_host = |v: &[u8]| decode::<HostState>(v).map(|_| ());
    match tree {
        Tree::DiscoveryQueue => match key.iter().position(|&b| b == 0) {
            Some(_) => check_person(value),
            None => Err(Error::internal("a queue key has no host part")),
        },
        Tree::DiscoveryHosts => check_host(value),
        Tree::DiscoveryDue => match split_due_key(key) {
            Some(_) => Ok(()),
            None => Err(Error::internal("a schedule key is damaged")),
        },
        _ => Ok(()),
    }
}
