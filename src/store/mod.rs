//! Storage: the embedded key-value store (sled) behind lifeboat's own small API.
//!
//! Owns: opening the data folder (with an exclusive lock, so a second process gets a
//! clear error), the schema version check, the list of trees and their key layouts,
//! the value encoding (a version byte, then bincode), units of work across trees, and
//! durability: a committer thread batches concurrent callers into one file sync, one
//! transaction and one flush ([`Store::commit`]), and the segment files of held
//! backups live beside the store ([`held`]). Each domain declares the storage trait it
//! needs next to its own code; the implementations on sled live in this module's
//! children, so another engine would replace this folder only.
//!
//! Does not own: what the values mean (the domains do).

use std::any::Any;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use tokio::sync::oneshot;

use crate::{Error, Result};

pub mod accounts;
pub mod backup_sync;
pub mod backups;
mod commit;
pub mod held;
pub mod mail;
pub mod moves;
pub mod outbox;
pub mod people;
pub mod people_queue;
pub mod restore;
mod room;
mod sled_files;

use commit::*;
pub use room::Room;
use room::*;

/// The schema this binary writes. Bump it when a layout changes; start-up refuses a
/// store whose schema is newer than this and upgrades an older one.
/// 2: outbox bodies moved out of the deliveries into `outbox_bodies`.
/// 3: held backups moved out of `backup_data` into files (see [`backups`]).
/// 4: held backups moved from a file each into segments (see [`held`]).
/// 5: contact flags take diaspora*'s meaning (see [`accounts::upgrade_to_schema5`]).
/// 6: known people can be marked closed (see [`people::upgrade_to_schema6`]).
pub const SCHEMA_VERSION: u32 = 6;

/// The store's cache when no size is configured (`server.store_cache_mib`'s default).
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// The free space kept on the data folder's disk when none is configured
/// (`server.min_free_mib`'s default).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;

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
    /// `meta`: ASCII key -> raw bytes. `schema_version` -> u32 big-endian;
    /// `discovery_queued` -> u64 big-endian, how many people `discovery_queue` holds.
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
    /// `outbox`: u64 big-endian id -> [`crate::delivery::Delivery`].
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
    /// `people`: diaspora ID (lower case, UTF-8) -> [`crate::people::Person`]
    /// (remote people found by discovery; a stored key is replaced only by a verified
    /// migration).
    People = "people",
    /// `discovery_queue`: host (the part of the diaspora ID after `@`, UTF-8) 0x00
    /// diaspora ID -> [`crate::people::queue::QueuedPerson`]: people to
    /// discover in the background (contacts an archive brought), grouped by their pod.
    DiscoveryQueue = "discovery_queue",
    /// `discovery_hosts`: host -> [`crate::people::queue::HostState`] (when
    /// its next person is asked for, how long it has been failing). One per host with
    /// people queued.
    DiscoveryHosts = "discovery_hosts",
    /// `discovery_due`: next attempt (Unix seconds, u64 BE) ++ host -> empty; the
    /// schedule of the discovery worker, one entry per host.
    DiscoveryDue = "discovery_due",
    /// `moves_out`: username -> [`crate::arrivals::OutgoingMove`], the signed move of an arrived account.
    MovesOut = "moves_out",
    /// `moves_in`: old diaspora ID -> [`crate::arrivals::received::ReceivedMove`], every verified move applied here.
    MovesIn = "moves_in",
    /// `pending_closures`: username -> [`crate::arrivals::received::PendingClosure`], local accounts whose move waits.
    PendingClosures = "pending_closures",
    /// `contact_moves`: username 0x00 new diaspora ID -> old diaspora ID (UTF-8), shown on the contacts page.
    ContactMoves = "contact_moves",
    /// `contact_resends`: username 0x00 new diaspora ID -> empty: a local user's `contact`
    /// still owed to an identity that moved (see [`moves`]).
    ContactResends = "contact_resends",
    /// `backup_slots`: normalised email, 0x00, key fingerprint (32 bytes, SHA-256 of the
    /// SPKI DER) -> [`crate::backup::holder::Slot`] (state only, never the backup).
    BackupSlots = "backup_slots",
    /// `backup_data`: the same key as `backup_slots` -> the [`held::Location`] (encoded)
    /// of the `.lfbk` bytes exactly as pushed, a range of a segment file
    /// `held/<segment as 16 hex digits>.seg`. Kept apart so listing slots never reads
    /// backups.
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
    /// [`crate::arrivals::restore::RestoreToken`] (address, expiry, attempts left, the slot
    /// the pass phrase opened). The token itself is never stored.
    RestoreTokens = "restore_tokens",
    /// `restore_addresses`: normalised email -> [`crate::arrivals::restore::RestoreAddress`]
    /// (the link that is valid now, the restore mails of the last day).
    RestoreAddresses = "restore_addresses",
    /// `backup_pods`: pod origin (`scheme://host[:port]`, UTF-8) ->
    /// [`crate::backup::home::pods::PodInfo`] (what its NodeInfo last said about backups).
    BackupPods = "backup_pods",
    /// `backup_sync`: username -> [`crate::backup::home::SyncState`] (the account's backup
    /// pod, what it acknowledged, the next sequence, deletes owed to pods left behind).
    BackupSync = "backup_sync",
    /// `backup_sync_due`: next look (Unix seconds, u64 BE) ++ username -> empty; the
    /// schedule of the backup worker, one entry per account at most.
    BackupSyncDue = "backup_sync_due",
    /// `backup_nudges`: username -> [`crate::backup::home::Nudge`]: account changes (and
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
    held: held::HeldLog,
    room: Room,
    sled_files: Arc<sled_files::SledFiles>,
    /// `None` only while the store is dropped.
    committer: Option<std::sync::mpsc::Sender<CommitJob>>,
    committer_thread: Option<std::thread::JoinHandle<()>>,
    /// Work to do after the next successful sync ([`Store::after_durable`]).
    after_durable: Arc<Mutex<Vec<AfterDurable>>>,
    _lock: File,
}

impl Drop for Inner {
    /// Stops the committer and waits for it, so that once the last handle is dropped
    /// the folder can be opened again at once (the thread holds the database too).
    fn drop(&mut self) {
        drop(self.committer.take());
        if let Some(thread) = self.committer_thread.take() {
            // The last handle may go on the committer itself (work run after a sync).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
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
    /// Opens (creating if needed) the store in `dir`, taking its lock, with a cache
    /// of [`DEFAULT_CACHE_BYTES`]. Must be called inside a tokio runtime.
    pub fn open(dir: &Path) -> std::result::Result<Store, OpenFailure> {
        Store::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open`] with a cache of at most `cache_bytes`.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> std::result::Result<Store, OpenFailure> {
        Store::open_with(dir, cache_bytes, DEFAULT_MIN_FREE_BYTES)
    }

    /// [`Store::open`] with a cache of at most `cache_bytes`, keeping `min_free_bytes`
    /// free on the data folder's disk (see [`Room`]).
    pub fn open_with(dir: &Path, cache_bytes: u64, min_free_bytes: u64) -> std::result::Result<Store, OpenFailure> {
        create_folder_durably(dir)?;
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
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|e| Error::internal(format!("cannot open the store in {}: {e}", dir.display())))?;
        let schema = check_schema(&db)?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<sled::Result<Vec<_>>>()
            .map_err(Error::from)?;
        let room = Room {
            dir: dir.to_path_buf(),
            min_free: min_free_bytes,
        };
        let held = held::HeldLog::open(&dir.join(backups::HELD_DIR), db.clone(), room.clone())?;
        let sled_files = Arc::new(sled_files::SledFiles::open(&dir.join("db"))?);
        // The lock file, `db/` and `held/`, which opening may have created.
        held::sync_folder(dir)?;
        let (committer, jobs) = std::sync::mpsc::channel();
        let after_durable = Arc::new(Mutex::new(Vec::new()));
        let committer_thread = {
            let (db, trees, after_durable, files) =
                (db.clone(), trees.clone(), after_durable.clone(), sled_files.clone());
            std::thread::Builder::new()
                .name("store-commit".into())
                .spawn(move || group_commit(db, files, trees, jobs, after_durable))
                .map_err(|e| Error::internal(format!("cannot start the committer thread: {e}")))?
        };
        let store = Store {
            inner: Arc::new(Inner {
                db,
                trees,
                dir: dir.to_path_buf(),
                held,
                room,
                sled_files,
                committer: Some(committer),
                committer_thread: Some(committer_thread),
                after_durable,
                _lock: lock,
            }),
        };
        if schema < 2 {
            let upgrade = outbox::Schema1Upgrade::read(&store)?;
            store.transaction(|tx| {
                upgrade.apply_in(tx)?;
                tx.tree(Tree::Meta).insert("schema_version", &2u32.to_be_bytes())?;
                Ok(())
            })?;
            store.flush()?;
            tracing::info!(deliveries = upgrade.len(), "store upgraded from schema 1 to 2");
        }
        backups::open_held(&store, schema)?;
        if schema < 5 {
            accounts::upgrade_to_schema5(&store)?;
        }
        if schema < 6 {
            people::upgrade_to_schema6(&store)?;
        }
        backups::tidy_held_when_retired(&store);
        Ok(store)
    }

    /// The data folder.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The segments of held backups, for the storage implementations in this module.
    pub(crate) fn held(&self) -> &held::HeldLog {
        &self.inner.held
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
    pub fn transaction<R>(&self, work: impl Fn(&Tx) -> TxResult<R>) -> Result<R> {
        use sled::Transactional;
        self.inner.room.check(0)?;
        let result = self
            .inner
            .trees
            .as_slice()
            .transaction(|trees| work(&Tx { trees }).map_err(|e| e.0));
        Ok(result?)
    }

    /// Makes every write done so far durable. Concurrent callers share one sync.
    pub async fn durable(&self) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.send_job(CommitJob {
            file: None,
            unit: None,
            done: Box::new(move |outcome| {
                let _ = done.send(outcome.map(|_| ()));
            }),
        })?;
        answer.await.map_err(|_| committer_stopped())?
    }

    /// Makes the data written to `file` durable (`fdatasync`), then runs `unit` as a
    /// unit of work, then makes it durable, and returns what `unit` returned.
    ///
    /// The store's committer thread serves concurrent callers in batches: one sync
    /// per file, one transaction for all the batch's units (a unit that aborts is
    /// taken out and the rest run again without it, so each caller gets its own
    /// outcome as if the units had run one after another), and one flush. sled
    /// writes its log at every transaction, so sharing them is what makes many
    /// small units cheap. `unit` runs on that thread, so it must be short; it may run
    /// more than once; it does not run if the file could not be synced.
    pub async fn commit<R: Send + 'static>(
        &self,
        file: Option<Arc<File>>,
        unit: impl Fn(&Tx) -> TxResult<R> + Send + 'static,
    ) -> Result<R> {
        self.inner.room.check(0)?;
        let (done, answer) = oneshot::channel();
        self.send_job(CommitJob {
            file,
            unit: Some(Box::new(move |tx| unit(tx).map(|r| Box::new(r) as UnitValue))),
            done: Box::new(move |outcome| {
                let outcome = outcome.and_then(|value| {
                    value
                        .downcast::<R>()
                        .map(|r| *r)
                        .map_err(|_| Error::internal("a unit of work returned the wrong type"))
                });
                let _ = done.send(outcome);
            }),
        })?;
        answer.await.map_err(|_| committer_stopped())?
    }

    fn send_job(&self, job: CommitJob) -> Result<()> {
        match &self.inner.committer {
            Some(committer) => committer.send(job).map_err(|_| committer_stopped()),
            None => Err(committer_stopped()),
        }
    }

    /// Runs `work` (blocking) once every write done so far is durable, such as freeing
    /// what a committed unit of work stopped pointing at. Not run if the process stops
    /// first: the domain that owns such things tidies them at the next start.
    pub fn after_durable(&self, work: impl FnOnce() + Send + 'static) {
        self.inner
            .after_durable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(work));
    }

    /// Makes every write done so far durable, blocking (CLI and shutdown).
    pub fn flush(&self) -> Result<()> {
        self.inner.db.flush()?;
        self.inner.sled_files.sync()
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
        Tree::Outbox => outbox::check_delivery(value),
        Tree::OutboxDue | Tree::OutboxTopics => Ok(()),
        Tree::OutboxBodies => decode_raw(value).map(|_| ()),
        Tree::OutboxBodyRefs => <[u8; 8]>::try_from(value)
            .map(|_| ())
            .map_err(|_| Error::internal("a reference count is not 8 bytes")),
        Tree::People => decode::<crate::people::Person>(value).map(|_| ()),
        Tree::DiscoveryQueue | Tree::DiscoveryHosts | Tree::DiscoveryDue => people_queue::check_value(tree, key, value),
        Tree::MovesOut => decode::<crate::arrivals::OutgoingMove>(value).map(|_| ()),
        Tree::MovesIn => decode::<crate::arrivals::received::ReceivedMove>(value).map(|_| ()),
        Tree::PendingClosures => decode::<crate::arrivals::received::PendingClosure>(value).map(|_| ()),
        Tree::ContactMoves => Ok(()),
        Tree::ContactResends => moves::check_resend_key(key),
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
    pub fn get<T: DeserializeOwned>(&self, tree: Tree, key: &[u8]) -> TxResult<Option<T>> {
        match self.tree(tree).get(key)? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Encodes and writes a value.
    pub fn put<T: Serialize>(&self, tree: Tree, key: &[u8], value: &T) -> TxResult<()> {
        self.tree(tree).insert(key, encode(value))?;
        Ok(())
    }
}

// The engine's errors, in the crate's terms: only the store names them.
impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => Error::disk_full(),
            e => Error::internal_from("storage", e),
        }
    }
}

impl From<sled::transaction::TransactionError<Error>> for Error {
    fn from(e: sled::transaction::TransactionError<Error>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => e.into(),
        }
    }
}

/// Stored bytes handed out without a copy (a view into the store's own buffer).
#[derive(Clone)]
pub struct StoredBytes(sled::IVec);

impl std::ops::Deref for StoredBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for StoredBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Why a step inside a unit of work failed: a domain error (the unit is abandoned and
/// the error answered to its caller) or the engine's own (a conflict, which the store
/// retries, or a storage failure). The one result type of every unit of work, in the
/// store's terms: domains see only this, never the engine's types. A domain [`Error`]
/// converts with `?`.
pub struct TxError(ConflictableTransactionError<Error>);

/// The result of a step inside a unit of work.
pub type TxResult<T> = std::result::Result<T, TxError>;

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError(ConflictableTransactionError::Abort(e))
    }
}

impl From<sled::transaction::UnabortableTransactionError> for TxError {
    fn from(e: sled::transaction::UnabortableTransactionError) -> Self {
        TxError(e.into())
    }
}

impl std::fmt::Debug for TxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            ConflictableTransactionError::Abort(e) => write!(f, "aborted: {e:?}"),
            ConflictableTransactionError::Conflict => write!(f, "conflict"),
            ConflictableTransactionError::Storage(e) => write!(f, "storage: {e}"),
        }
    }
}

/// Abandons a unit of work with a domain error.
pub fn abort<T>(e: Error) -> TxResult<T> {
    Err(e.into())
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

#[cfg(test)]
mod tests;
