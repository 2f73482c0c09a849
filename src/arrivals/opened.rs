//! Opened archives, in memory only: a restore whose pass phrase opened a backup waits
//! here for its account form (docs/restore.md, "Where the opened archive waits"),
//! keyed by the SHA-256 of the link's token, bounded in time, count and bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::account::archive::ImportedArchive;
use crate::backup::holder::SlotKey;

// ---------------------------------------------------------------------------------
// Opened archives, in memory only
// ---------------------------------------------------------------------------------

/// How long an opened archive waits in memory for the account form (never past the
/// link's expiry).
pub const OPENED_TTL: Duration = Duration::from_secs(30 * 60);

/// At most this many opened archives are held in memory at once (the oldest goes).
pub const OPENED_MAX: usize = 16;

/// At most this many bytes of opened archives (their JSON size) are held at once.
pub const OPENED_MAX_BYTES: usize = 256 * 1024 * 1024;

/// An archive whose pass phrase was given, waiting for the account form.
#[derive(Clone)]
pub struct OpenedBackup {
    /// The archive (with the old private key, wiped when the last copy drops).
    pub archive: Arc<ImportedArchive>,
    /// The slot that opened.
    pub slot: SlotKey,
    /// SHA-256 of the backup that opened.
    pub sha256: [u8; 32],
    /// Whether the slot was confirmed by the address's owner.
    pub confirmed: bool,
    pub(super) size: usize,
    pub(super) expires: Instant,
}

/// One link's place in [`OpenedBackups`].
enum Held {
    /// Waiting for the account form.
    Open(OpenedBackup),
    /// Taken by an account form being worked on now (another tab finds this).
    Creating { expires: Instant },
}

impl Held {
    fn expires(&self) -> Instant {
        match self {
            Held::Open(opened) => opened.expires,
            Held::Creating { expires } => *expires,
        }
    }

    fn size(&self) -> usize {
        match self {
            Held::Open(opened) => opened.size,
            Held::Creating { .. } => 0,
        }
    }
}

/// What [`OpenedBackups::take`] finds.
pub(super) enum Taken {
    Open(OpenedBackup),
    /// Another request is creating the account from it right now.
    Creating,
    /// Not held (never opened, expired, or the pod restarted).
    Missing,
}

/// The opened archives, keyed by the SHA-256 of their link's token. Memory only.
#[derive(Default)]
pub struct OpenedBackups {
    entries: Mutex<HashMap<[u8; 32], Held>>,
}

impl OpenedBackups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Held>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps an opened archive; drops expired ones and, past the bounds, the oldest.
    pub(super) fn insert(&self, hash: [u8; 32], entry: OpenedBackup) {
        let mut entries = self.lock();
        let now = Instant::now();
        entries.retain(|_, e| e.expires() > now);
        entries.insert(hash, Held::Open(entry));
        loop {
            let bytes: usize = entries.values().map(Held::size).sum();
            if entries.len() <= OPENED_MAX && bytes <= OPENED_MAX_BYTES {
                break;
            }
            let oldest = entries
                .iter()
                .filter(|(k, _)| **k != hash)
                .min_by_key(|(_, e)| e.expires())
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => {
                    entries.remove(&k);
                }
                None => break,
            }
        }
    }

    /// The opened archive of a link, unless it expired or is being used right now.
    pub fn get(&self, hash: &[u8; 32]) -> Option<OpenedBackup> {
        let mut entries = self.lock();
        match entries.get(hash) {
            Some(Held::Open(e)) if e.expires > Instant::now() => Some(e.clone()),
            Some(Held::Creating { .. }) => None,
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Takes the opened archive for the account form, leaving a mark that another
    /// request (a second tab) finds meanwhile.
    pub(super) fn take(&self, hash: &[u8; 32]) -> Taken {
        let mut entries = self.lock();
        let now = Instant::now();
        match entries.remove(hash) {
            Some(Held::Open(opened)) if opened.expires > now => {
                entries.insert(
                    *hash,
                    Held::Creating {
                        expires: opened.expires,
                    },
                );
                Taken::Open(opened)
            }
            Some(held @ Held::Creating { .. }) if held.expires() > now => {
                entries.insert(*hash, held);
                Taken::Creating
            }
            _ => Taken::Missing,
        }
    }

    /// Forgets the opened archive of a link.
    pub fn remove(&self, hash: &[u8; 32]) {
        self.lock().remove(hash);
    }

    /// Drops every expired entry.
    pub fn purge_expired(&self) {
        let now = Instant::now();
        self.lock().retain(|_, e| e.expires() > now);
    }

    /// How many archives are held (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
