//! Storage: the embedded key-value store (sled) behind lifeboat's own small API.
//!
//! Owns: opening the data folder (with an exclusive lock, so a second process gets a
//! clear error), the schema version check, the list of trees and their key layouts,
//! the value encoding (a version byte, then bincode), units of work across trees, and
//! durability (group-committed flushes). Each domain declares the storage trait it
//! needs next to its own code; the implementations on sled live in this module's
//! children, so another engine would replace this folder only.
//!
//! Does not own: what the values mean (the domains do).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

pub mod accounts;
pub mod backup_sync;
pub mod backups;
pub mod mail;
pub mod people;
pub mod restore;

/// The schema this binary writes. Bump it when a layout changes; start-up refuses a
/// store whose schema is newer than this and upgrades an older one.
/// 2: outbox bodies moved out of the deliveries into `outbox_bodies`.
/// 3: held backups moved out of `backup_data` into files (see [`backups`]).
pub const SCHEMA_VERSION: u32 = 3;

/// The first byte of every stored value: the encoding of what follows.
const VALUE_VERSION: u8 = 1;

macro_rules! trees {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, )*) => {
        /// Every tree of the store. The doc of each variant is its key layout.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Tree { $( $(#[doc = $doc])* $variant, )* }

        impl Tree {
            /// All trees, in declaration order (their index in a transaction).
            pub const ALL: &'static [Tree] = &[ $( Tree::$variant, )* ];

            /// The tree's name on disk.
            pub fn name(self) -> &'static str {
                match self { $( Tree::$variant => $name, )* }
            }
        }
    };
}

trees! {
    /// `meta`: ASCII key -> raw bytes. `schema_version` -> u32 big-endian.
    Meta = "meta",
    /// `mail_queue`: u64 big-endian id (sled-generated, so in creation order) -> [`mail::QueuedMail`].
    MailQueue = "mail_queue",
    /// `accounts`: username (UTF-8) -> [`crate::account::Account`]. Closed accounts stay, so names are never reused.
    Accounts = "accounts",
    /// `account_emails`: normalised email -> username (String). Open accounts only.
    AccountEmails = "account_emails",
    /// `account_guids`: guid -> username (String).
    AccountGuids = "account_guids",
    /// `tokens`: SHA-256 of an emailed token (32 bytes) -> [`crate::account::TokenRecord`].
    Tokens = "tokens",
    /// `sessions`: SHA-256 of a session id (32 bytes) -> [`crate::account::session::Session`].
    Sessions = "sessions",
    /// `key_pool`: u64 big-endian id -> [`crate::account::keys::KeyPair`], generated ahead of need.
    KeyPool = "key_pool",
    /// `outbox`: u64 big-endian id -> [`crate::federation::outbox::Delivery`].
    Outbox = "outbox",
    /// `outbox_due`: next attempt (Unix seconds, u64 BE) ++ id (u64 BE) -> empty; the schedule.
    OutboxDue = "outbox_due",
    /// `outbox_topics`: topic (UTF-8) 0x00 id (u64 BE) -> empty; deliveries by topic.
    OutboxTopics = "outbox_topics",
    /// `outbox_bodies`: SHA-256 of a message body (32 bytes) -> the body, raw behind the
    /// value version byte; one copy however many deliveries send it.
    OutboxBodies = "outbox_bodies",
    /// `outbox_body_refs`: SHA-256 of a body (32 bytes) -> u64 BE, how many deliveries
    /// that may still be sent (pending or failed) hold it.
    OutboxBodyRefs = "outbox_body_refs",
    /// `people`: diaspora ID (lower case, UTF-8) -> [`crate::federation::people::Person`]
    /// (remote people found by discovery; a stored key is replaced only by a verified
    /// migration).
    People = "people",
    /// `moves_out`: username -> [`crate::migration::OutgoingMove`], the signed move of an arrived account.
    MovesOut = "moves_out",
    /// `moves_in`: old diaspora ID -> [`crate::migration::receive::ReceivedMove`], every verified move applied here.
    MovesIn = "moves_in",
    /// `pending_closures`: username -> [`crate::migration::receive::PendingClosure`], local accounts whose move waits.
    PendingClosures = "pending_closures",
    /// `contact_moves`: username 0x00 new diaspora ID -> old diaspora ID (UTF-8), shown on the contacts page.
    ContactMoves = "contact_moves",
    /// `backup_slots`: normalised email, 0x00, key fingerprint (32 bytes, SHA-256 of the
    /// SPKI DER) -> [`crate::backup::holder::Slot`] (state only, never the backup).
    BackupSlots = "backup_slots",
    /// `backup_data`: the same key as `backup_slots` -> the id (u64, encoded) of the file
    /// `held/<id as 16 hex digits>.lfbk` holding the `.lfbk` bytes exactly as pushed
    /// (see [`backups`]). Kept apart so listing slots never reads backups.
    BackupData = "backup_data",
    /// `backup_addresses`: normalised email -> [`crate::backup::holder::AddressRecord`]
    /// (its slots' fingerprints in creation order, the last confirmation mail).
    BackupAddresses = "backup_addresses",
    /// `backup_tokens`: SHA-256 of a confirmation link's token (32 bytes) ->
    /// [`crate::backup::holder::ConfirmToken`]. The token itself is never stored.
    BackupTokens = "backup_tokens",
    /// `backup_counters`: ASCII key -> value: `totals` -> [`crate::backup::holder::Totals`]
    /// (kept in the same unit of work as every slot change), `mail_hour` ->
    /// [`crate::backup::holder::MailHour`] (the global hourly confirmation-mail count).
    BackupCounters = "backup_counters",
    /// `restore_tokens`: SHA-256 of a restore link's token (32 bytes) ->
    /// [`crate::backup::restore::RestoreToken`] (address, expiry, attempts left, the slot
    /// the pass phrase opened). The token itself is never stored.
    RestoreTokens = "restore_tokens",
    /// `restore_addresses`: normalised email -> [`crate::backup::restore::RestoreAddress`]
    /// (the link that is valid now, the restore mails of the last day).
    RestoreAddresses = "restore_addresses",
    /// `backup_pods`: pod origin (`scheme://host[:port]`, UTF-8) ->
    /// [`crate::backup::pods::PodInfo`] (what its NodeInfo last said about backups).
    BackupPods = "backup_pods",
    /// `backup_sync`: username -> [`crate::backup::sync::SyncState`] (the account's backup
    /// pod, what it acknowledged, the next sequence, deletes owed to pods left behind).
    BackupSync = "backup_sync",
    /// `backup_sync_due`: next look (Unix seconds, u64 BE) ++ username -> empty; the
    /// schedule of the backup worker, one entry per account at most.
    BackupSyncDue = "backup_sync_due",
    /// `backup_nudges`: username -> [`crate::backup::sync::Nudge`]: account changes (and
    /// other reasons to look) not yet taken up by the backup worker.
    BackupNudges = "backup_nudges",
    /// `backup_choices`: username -> origin (String): the backup pod the user picked in
    /// the settings, until the worker applies it.
    BackupChoices = "backup_choices",
}

/// Encodes a value for storage: the value version byte, then bincode.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![VALUE_VERSION];
    // Encoding plain serde structs into a Vec cannot fail.
    out.extend(
        bincode::serde::encode_to_vec(value, bincode::config::standard()).expect("bincode encoding of plain data"),
    );
    out
}

/// Decodes a stored value, refusing an unknown version byte or trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&VALUE_VERSION, rest)) => {
            let (value, used) = bincode::serde::decode_from_slice(rest, bincode::config::standard())
                .map_err(|e| Error::internal(format!("stored value does not decode: {e}")))?;
            if used != rest.len() {
                return Err(Error::internal("stored value has trailing bytes"));
            }
            Ok(value)
        }
        Some((v, _)) => Err(Error::internal(format!("stored value has unknown version {v}"))),
        None => Err(Error::internal("stored value is empty")),
    }
}

/// Encodes opaque bytes for storage (outbox bodies): the value version
/// byte, then the bytes unchanged — not bincode, which would cost a second copy.
pub fn encode_raw(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(VALUE_VERSION);
    out.extend_from_slice(bytes);
    out
}

/// The inverse of [`encode_raw`].
pub fn decode_raw(value: &[u8]) -> Result<&[u8]> {
    match value.split_first() {
        Some((&VALUE_VERSION, rest)) => Ok(rest),
        Some((v, _)) => Err(Error::internal(format!("stored value has unknown version {v}"))),
        None => Err(Error::internal("stored value is empty")),
    }
}

/// The open store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    dir: PathBuf,
    flusher: mpsc::UnboundedSender<oneshot::Sender<Result<()>>>,
    file_syncer: mpsc::UnboundedSender<FileSync>,
    /// Files to remove after the next successful sync ([`Store::remove_after_durable`]).
    released: Arc<Mutex<Vec<PathBuf>>>,
    _lock: File,
}

/// What holds the data folder when it cannot be opened.
#[derive(Debug)]
pub enum OpenFailure {
    /// Another lifeboat process holds the folder.
    Busy(String),
    /// Anything else.
    Other(Error),
}

impl From<Error> for OpenFailure {
    fn from(e: Error) -> Self {
        OpenFailure::Other(e)
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, taking its lock. Must be called
    /// inside a tokio runtime (the group-commit flusher is a task).
    pub fn open(dir: &Path) -> std::result::Result<Store, OpenFailure> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("cannot create data folder {}: {e}", dir.display())))?;
        let lock_path = dir.join("lifeboat.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::internal(format!("cannot open {}: {e}", lock_path.display())))?;
        if fs2::FileExt::try_lock_exclusive(&lock).is_err() {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(OpenFailure::Busy(format!(
                "the data folder {} is in use by another lifeboat process{}",
                dir.display(),
                holder
                    .trim()
                    .parse::<u32>()
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default()
            )));
        }
        {
            use std::io::Write;
            let mut f = &lock;
            let _ = f.set_len(0);
            let _ = write!(f, "{}", std::process::id());
            let _ = f.sync_all();
        }
        let db = sled::Config::new()
            .path(dir.join("db"))
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| Error::internal(format!("cannot open the store in {}: {e}", dir.display())))?;
        let schema = check_schema(&db)?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<sled::Result<Vec<_>>>()
            .map_err(Error::from)?;
        let (flusher, rx) = mpsc::unbounded_channel();
        let released = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(group_commit(db.clone(), rx, released.clone()));
        let (file_syncer, file_syncs) = mpsc::unbounded_channel();
        tokio::spawn(group_sync_files(file_syncs));
        let store = Store {
            inner: Arc::new(Inner {
                db,
                trees,
                dir: dir.to_path_buf(),
                flusher,
                file_syncer,
                released,
                _lock: lock,
            }),
        };
        if schema < 2 {
            let upgrade = crate::federation::outbox::Schema1Upgrade::read(&store)?;
            store.transaction(|tx| {
                upgrade.apply_in(tx)?;
                tx.tree(Tree::Meta).insert("schema_version", &2u32.to_be_bytes())?;
                Ok(())
            })?;
            store.flush()?;
            tracing::info!(deliveries = upgrade.len(), "store upgraded from schema 1 to 2");
        }
        backups::open_held(&store, schema)?;
        Ok(store)
    }

    /// The data folder.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// One tree, for the storage implementations in this module.
    pub fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.inner.trees[tree as usize]
    }

    /// A fresh id, increasing over the life of the store.
    pub fn generate_id(&self) -> Result<u64> {
        Ok(self.inner.db.generate_id()?)
    }

    /// Runs `work` as one unit across all trees: all of its writes happen or none.
    /// `work` may run more than once (on conflict), so it must not have side effects
    /// outside the transaction.
    pub fn transaction<R>(
        &self,
        work: impl Fn(&Tx) -> std::result::Result<R, ConflictableTransactionError<Error>>,
    ) -> Result<R> {
        use sled::Transactional;
        let result = self.inner.trees.as_slice().transaction(|trees| work(&Tx { trees }));
        Ok(result?)
    }

    /// Makes every write done so far durable. Concurrent callers share one sync.
    pub async fn durable(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .flusher
            .send(tx)
            .map_err(|_| Error::internal("flusher stopped"))?;
        rx.await.map_err(|_| Error::internal("flusher stopped"))?
    }

    /// Makes a file written outside the store durable, with the entry of the folder
    /// holding it. Concurrent callers are served in batches, one folder sync each.
    pub async fn sync_file(&self, file: File, folder: PathBuf) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.inner
            .file_syncer
            .send(FileSync { file, folder, done })
            .map_err(|_| Error::internal("file syncer stopped"))?;
        rx.await.map_err(|_| Error::internal("file syncer stopped"))?
    }

    /// Removes `path` once every write done so far is durable (a file that a committed
    /// unit of work stopped pointing at). Left behind if the process stops first: the
    /// domain that owns such files sweeps the ones nothing points at.
    pub fn remove_after_durable(&self, path: PathBuf) {
        self.inner.released.lock().unwrap_or_else(|e| e.into_inner()).push(path);
    }

    /// Makes every write done so far durable, blocking (CLI and shutdown).
    pub fn flush(&self) -> Result<()> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// Reads every value of every tree and reports what does not decode.
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        for &tree in Tree::ALL {
            if tree == Tree::Meta {
                continue;
            }
            let mut count = 0u64;
            for entry in self.tree(tree).iter() {
                let (key, value) = entry?;
                count += 1;
                if let Some(problem) = check_value(tree, &key, &value) {
                    report.problems.push(problem);
                }
            }
            report.trees.push((tree.name(), count));
        }
        backups::check_held(self, &mut report.problems)?;
        Ok(report)
    }
}

/// The result of [`Store::check`].
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Each tree and its number of entries.
    pub trees: Vec<(&'static str, u64)>,
    /// One line per value that is damaged.
    pub problems: Vec<String>,
}

fn check_value(tree: Tree, key: &[u8], value: &[u8]) -> Option<String> {
    let result = match tree {
        Tree::Meta => Ok(()),
        Tree::MailQueue => decode::<mail::QueuedMail>(value).map(|_| ()),
        Tree::Accounts => decode::<crate::account::Account>(value).map(|_| ()),
        Tree::AccountEmails | Tree::AccountGuids => decode::<String>(value).map(|_| ()),
        Tree::Tokens => decode::<crate::account::TokenRecord>(value).map(|_| ()),
        Tree::Sessions => decode::<crate::account::session::Session>(value).map(|_| ()),
        Tree::KeyPool => decode::<crate::account::keys::KeyPair>(value).map(|_| ()),
        Tree::Outbox => crate::federation::outbox::check_delivery(value),
        Tree::OutboxDue | Tree::OutboxTopics => Ok(()),
        Tree::OutboxBodies => decode_raw(value).map(|_| ()),
        Tree::OutboxBodyRefs => <[u8; 8]>::try_from(value)
            .map(|_| ())
            .map_err(|_| Error::internal("a reference count is not 8 bytes")),
        Tree::People => decode::<crate::federation::people::Person>(value).map(|_| ()),
        Tree::MovesOut => decode::<crate::migration::OutgoingMove>(value).map(|_| ()),
        Tree::MovesIn => decode::<crate::migration::receive::ReceivedMove>(value).map(|_| ()),
        Tree::PendingClosures => decode::<crate::migration::receive::PendingClosure>(value).map(|_| ()),
        Tree::ContactMoves => Ok(()),
        Tree::BackupSlots | Tree::BackupData | Tree::BackupAddresses | Tree::BackupTokens | Tree::BackupCounters => {
            backups::check_value(tree, key, value)
        }
        Tree::RestoreTokens | Tree::RestoreAddresses => restore::check_value(tree, key, value),
        Tree::BackupPods | Tree::BackupSync | Tree::BackupSyncDue | Tree::BackupNudges | Tree::BackupChoices => {
            backup_sync::check_value(tree, key, value)
        }
    };
    result
        .err()
        .map(|e| format!("{}: key {}: {e}", tree.name(), hex::encode(key)))
}

/// The trees inside a [`Store::transaction`].
pub struct Tx<'a> {
    trees: &'a [TransactionalTree],
}

impl Tx<'_> {
    /// One tree inside the transaction.
    pub fn tree(&self, tree: Tree) -> &TransactionalTree {
        &self.trees[tree as usize]
    }

    /// Reads and decodes a value.
    pub fn get<T: DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> std::result::Result<Option<T>, ConflictableTransactionError<Error>> {
        match self.tree(tree).get(key)? {
            Some(bytes) => decode(&bytes).map(Some).map_err(ConflictableTransactionError::Abort),
            None => Ok(None),
        }
    }

    /// Encodes and writes a value.
    pub fn put<T: Serialize>(
        &self,
        tree: Tree,
        key: &[u8],
        value: &T,
    ) -> std::result::Result<(), ConflictableTransactionError<Error>> {
        self.tree(tree).insert(key, encode(value))?;
        Ok(())
    }
}

/// Aborts a transaction with a domain error.
pub fn abort<T>(e: Error) -> std::result::Result<T, ConflictableTransactionError<Error>> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Refuses a newer schema; returns the store's schema (this binary's for a new store).
fn check_schema(db: &sled::Db) -> Result<u32> {
    let meta = db.open_tree(Tree::Meta.name())?;
    match meta.get("schema_version")? {
        None => {
            meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            db.flush()?;
            Ok(SCHEMA_VERSION)
        }
        Some(bytes) => {
            let version = u32::from_be_bytes(
                bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| Error::internal("schema_version is damaged"))?,
            );
            if version > SCHEMA_VERSION {
                return Err(Error::internal(format!(
                    "this store was written by a newer lifeboat (schema {version}); this binary understands schema {SCHEMA_VERSION} and older. Run the newer version, or restore a backup of the data folder."
                )));
            }
            Ok(version)
        }
    }
}

/// Syncs once for every batch of waiters: whoever asked while a sync ran is served by
/// the next one, so many concurrent writers share few fsyncs.
/// A file waiting for [`group_sync_files`].
struct FileSync {
    file: File,
    folder: PathBuf,
    done: oneshot::Sender<Result<()>>,
}

/// Syncs every file that asked while the previous batch ran, then their folders once.
async fn group_sync_files(mut rx: mpsc::UnboundedReceiver<FileSync>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let synced = tokio::task::spawn_blocking(move || {
            let outcomes: Vec<std::io::Result<()>> = batch.iter().map(|s| s.file.sync_data()).collect();
            let mut folders: Vec<&PathBuf> = batch.iter().map(|s| &s.folder).collect();
            folders.sort();
            folders.dedup();
            let folders_synced = folders.into_iter().try_for_each(|folder| {
                File::open(folder)
                    .and_then(|dir| dir.sync_all())
                    .map_err(|e| format!("{}: {e}", folder.display()))
            });
            for (sync, outcome) in batch.into_iter().zip(outcomes) {
                let outcome = match (outcome, &folders_synced) {
                    (Err(e), _) => Err(Error::internal(format!("sync: {e}"))),
                    (Ok(()), Err(e)) => Err(Error::internal(format!("sync: {e}"))),
                    (Ok(()), Ok(())) => Ok(()),
                };
                let _ = sync.done.send(outcome);
            }
        })
        .await;
        if let Err(e) = synced {
            tracing::error!("file sync stopped: {e}");
        }
    }
}

/// Files released before a sync started are removed once it succeeded.
async fn group_commit(
    db: sled::Db,
    mut rx: mpsc::UnboundedReceiver<oneshot::Sender<Result<()>>>,
    released: Arc<Mutex<Vec<PathBuf>>>,
) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(more) = rx.try_recv() {
            waiters.push(more);
        }
        let db = db.clone();
        let to_remove = std::mem::take(&mut *released.lock().unwrap_or_else(|e| e.into_inner()));
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            db.flush().map_err(|e| e.to_string())?;
            for path in to_remove {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!("cannot remove {}: {e}", path.display());
                }
            }
            Ok::<(), String>(())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        tracing::trace!(
            waiters = waiters.len(),
            us = started.elapsed().as_micros() as u64,
            "group commit"
        );
        for waiter in waiters {
            let _ = waiter.send(outcome.clone().map_err(|e| Error::internal(format!("flush: {e}"))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_round_trip_and_bad_versions_are_refused() {
        let bytes = encode(&("alice".to_string(), 7u64));
        assert_eq!(bytes[0], VALUE_VERSION);
        let back: (String, u64) = decode(&bytes).unwrap();
        assert_eq!(back, ("alice".to_string(), 7));
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert!(decode::<(String, u64)>(&wrong).is_err());
        let mut longer = bytes;
        longer.push(0);
        assert!(decode::<(String, u64)>(&longer).is_err());
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        match Store::open(dir.path()) {
            Err(OpenFailure::Busy(msg)) => {
                assert!(msg.contains("in use by another lifeboat process"), "{msg}")
            }
            _ => panic!("second open must be refused"),
        }
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        match Store::open(dir.path()) {
            Err(OpenFailure::Other(e)) => assert!(e.to_string().contains("newer lifeboat"), "{e}"),
            _ => panic!("a newer schema must be refused"),
        }
    }

    #[tokio::test]
    async fn transactions_are_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let result: Result<()> = store.transaction(|tx| {
            tx.put(Tree::Meta, b"a", &1u64)?;
            abort(Error::bad("no"))
        });
        assert!(result.is_err());
        assert!(store.tree(Tree::Meta).get(b"a").unwrap().is_none());
        store.transaction(|tx| tx.put(Tree::Meta, b"a", &1u64)).unwrap();
        store.durable().await.unwrap();
        assert_eq!(
            decode::<u64>(&store.tree(Tree::Meta).get(b"a").unwrap().unwrap()).unwrap(),
            1
        );
    }
}
