//! The holder's slots on sled: see [`crate::backup::holder::SlotStore`]. Key layouts
//! are documented on the [`Tree`] variants `backup_*`.
//!
//! Held backups are not in sled: each is a file `held/<id>.lfbk` in the data folder
//! (`id` a store id as 16 hex digits), and `backup_data` maps a slot to its file's id.
//! sled is made for small values; 64 KiB ones cost it most of a push's time and keep
//! its cache growing. A file is written and synced (with its folder) before the unit
//! of work that points a slot at it, and removed once the unit that stopped pointing
//! at it is durable, so a crash at any moment leaves every slot with its complete file
//! and at worst a file nothing points at, which the next start removes (and an hourly
//! sweep, for files older than an hour).

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{decode, decode_raw, encode, Store, Tree, Tx};
use crate::backup::holder::{
    AddressRecord, ConfirmToken, MailHour, Slot, SlotKey, SlotStore, SlotTx, StagedBackup, Totals, TxResult,
};
use crate::mail::{Mail, Mailer};
use crate::{Error, Result};

/// The folder of held backups, in the data folder.
const HELD_DIR: &str = "held";
/// Unreferenced files younger than this are left to the unit of work staging them.
const SWEEP_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

const TOTALS: &[u8] = b"totals";
const MAIL_HOUR: &[u8] = b"mail_hour";

/// The holder's storage: the store, and the mailer whose queue shares its units of work.
#[derive(Clone)]
pub struct SledSlots {
    store: Store,
    mailer: Mailer,
}

impl SledSlots {
    pub fn new(store: Store, mailer: Mailer) -> SledSlots {
        SledSlots { store, mailer }
    }

    /// Removes held files that no slot points at and that are older than an hour
    /// (younger ones may be staged for a unit of work still running). Returns how many.
    pub fn sweep_unreferenced(&self) -> Result<usize> {
        sweep(&self.store, Some(SWEEP_MIN_AGE))
    }
}

fn held_dir(store: &Store) -> PathBuf {
    store.dir().join(HELD_DIR)
}

fn held_path(store: &Store, id: u64) -> PathBuf {
    held_dir(store).join(format!("{id:016x}.lfbk"))
}

fn held_id(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".lfbk")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

/// Writes `lfbk` to a new file, not synced yet.
fn write_held(path: &Path, lfbk: &[u8]) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(lfbk)?;
        Ok(file)
    })();
    written.map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(path);
        Error::internal(format!("cannot write {}: {e}", path.display()))
    })
}

/// Writes `lfbk` to a new file and syncs it and its folder, blocking.
fn write_held_synced(path: &Path, lfbk: &[u8]) -> Result<()> {
    let file = write_held(path, lfbk)?;
    let folder = path.parent().unwrap_or(Path::new("."));
    file.sync_data()
        .and_then(|()| std::fs::File::open(folder)?.sync_all())
        .map_err(|e| Error::internal(format!("cannot sync {}: {e}", path.display())))
}

/// Makes the folder of held backups; on a store of schema 2 or older, moves the held
/// backups out of `backup_data` into files (one unit of work, then the schema); then
/// removes files nothing points at. Runs while the store is opened, before any request.
pub(super) fn open_held(store: &Store, schema: u32) -> Result<()> {
    let dir = held_dir(store);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
    }
    if schema < 3 {
        let mut moved = Vec::new();
        for entry in store.tree(Tree::BackupData).iter() {
            let (key, value) = entry?;
            let id = store.generate_id()?;
            write_held_synced(&held_path(store, id), decode_raw(&value)?)?;
            moved.push((key, id));
        }
        store.transaction(|tx| {
            for (key, id) in &moved {
                tx.put(Tree::BackupData, key, id)?;
            }
            tx.tree(Tree::Meta).insert("schema_version", &3u32.to_be_bytes())?;
            Ok(())
        })?;
        store.flush()?;
        tracing::info!(
            backups = moved.len(),
            "store upgraded to schema 3: held backups moved to {}",
            dir.display()
        );
    }
    let removed = sweep(store, None)?;
    if removed > 0 {
        tracing::info!(removed, "removed held backup files that no slot points at");
    }
    Ok(())
}

/// Removes the files under `held/` that no slot points at (and, with `min_age`, that
/// were last changed at least that long ago).
fn sweep(store: &Store, min_age: Option<std::time::Duration>) -> Result<usize> {
    let dir = held_dir(store);
    // Listed before the pointers are read: a file staged after the listing is not
    // seen, and one given to a slot before the read is seen as pointed at.
    let mut candidates = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::internal(format!("cannot list {}: {e}", dir.display())))? {
        let entry = entry.map_err(|e| Error::internal(format!("cannot list {}: {e}", dir.display())))?;
        let Some(id) = entry.file_name().to_str().and_then(held_id) else {
            continue;
        };
        if let Some(min_age) = min_age {
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok());
            if age.is_none_or(|age| age < min_age) {
                continue;
            }
        }
        candidates.push(id);
    }
    if candidates.is_empty() {
        return Ok(0);
    }
    let mut pointed = std::collections::HashSet::new();
    for entry in store.tree(Tree::BackupData).iter() {
        let (_, value) = entry?;
        pointed.insert(decode::<u64>(&value)?);
    }
    let mut removed = 0;
    for id in candidates.into_iter().filter(|id| !pointed.contains(id)) {
        let path = held_path(store, id);
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
        }
    }
    Ok(removed)
}

/// Checks that every held backup's file is there and starts with a valid `.lfbk`
/// header, for `lifeboat check`.
pub(super) fn check_held(store: &Store, problems: &mut Vec<String>) -> Result<()> {
    for entry in store.tree(Tree::BackupData).iter() {
        let (key, value) = entry?;
        let Ok(id) = decode::<u64>(&value) else { continue };
        let path = held_path(store, id);
        let slot = SlotKey::from_bytes(&key).map_or_else(|| hex::encode(&key), |k| k.email);
        match std::fs::read(&path) {
            Ok(bytes) => {
                if let Err(e) = crate::sealed::Header::parse(&bytes) {
                    problems.push(format!("held backup of {slot} ({}): {e}", path.display()));
                }
            }
            Err(e) => problems.push(format!("held backup of {slot}: cannot read {}: {e}", path.display())),
        }
    }
    Ok(())
}

/// Checks one value of a `backup_*` tree, for `lifeboat check`.
pub(super) fn check_value(tree: Tree, key: &[u8], value: &[u8]) -> Result<()> {
    let bad_key = || Error::internal("key is not email 0x00 fingerprint");
    match tree {
        Tree::BackupSlots => {
            SlotKey::from_bytes(key).ok_or_else(bad_key)?;
            decode::<Slot>(value).map(|_| ())
        }
        Tree::BackupData => {
            SlotKey::from_bytes(key).ok_or_else(bad_key)?;
            decode::<u64>(value).map(|_| ())
        }
        Tree::BackupAddresses => decode::<AddressRecord>(value).map(|_| ()),
        Tree::BackupTokens => decode::<ConfirmToken>(value).map(|_| ()),
        Tree::BackupCounters => match key {
            TOTALS => decode::<Totals>(value).map(|_| ()),
            MAIL_HOUR => decode::<MailHour>(value).map(|_| ()),
            _ => Err(Error::internal("unknown counter")),
        },
        _ => Ok(()),
    }
}

/// The holder's view inside a unit of work.
pub struct SledSlotTx<'t> {
    tx: &'t Tx<'t>,
    mailer: &'t Mailer,
    /// Files this unit of work stopped pointing at.
    released: RefCell<Vec<u64>>,
}

impl<'t> SledSlotTx<'t> {
    /// The holder's view inside a unit of work that spans more than slots (a restore:
    /// token, slot, account and outbox together). Files such a unit releases are left
    /// to the hourly sweep.
    pub fn new(tx: &'t Tx<'t>, mailer: &'t Mailer) -> SledSlotTx<'t> {
        SledSlotTx {
            tx,
            mailer,
            released: RefCell::new(Vec::new()),
        }
    }

    fn release(&self, old: Option<sled::IVec>) -> TxResult<()> {
        if let Some(old) = old {
            self.released
                .borrow_mut()
                .push(decode::<u64>(&old).map_err(sled::transaction::ConflictableTransactionError::Abort)?);
        }
        Ok(())
    }
}

impl SlotStore for SledSlots {
    type Tx<'t> = SledSlotTx<'t>;

    fn unit<R>(&self, work: impl Fn(&Self::Tx<'_>) -> TxResult<R>) -> Result<R> {
        // The unit may run more than once: only the attempt that commits counts.
        let released = RefCell::new(Vec::new());
        let result = self.store.transaction(|tx| {
            let view = SledSlotTx::new(tx, &self.mailer);
            let result = work(&view)?;
            *released.borrow_mut() = view.released.into_inner();
            Ok(result)
        })?;
        for id in released.into_inner() {
            self.store.remove_after_durable(held_path(&self.store, id));
        }
        Ok(result)
    }

    fn slot(&self, key: &SlotKey) -> Result<Option<Slot>> {
        self.store
            .tree(Tree::BackupSlots)
            .get(key.to_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    fn slots(&self) -> Result<Vec<(SlotKey, Slot)>> {
        let mut out = Vec::new();
        for entry in self.store.tree(Tree::BackupSlots).iter() {
            let (key, value) = entry?;
            let key = SlotKey::from_bytes(&key)
                .ok_or_else(|| Error::internal(format!("backup_slots: bad key {}", hex::encode(&key))))?;
            out.push((key, decode(&value)?));
        }
        Ok(out)
    }

    fn slots_of(&self, email: &str) -> Result<Vec<(SlotKey, Slot)>> {
        let mut prefix = email.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for entry in self.store.tree(Tree::BackupSlots).scan_prefix(&prefix) {
            let (key, value) = entry?;
            let key = SlotKey::from_bytes(&key)
                .ok_or_else(|| Error::internal(format!("backup_slots: bad key {}", hex::encode(&key))))?;
            // A longer address can share the prefix only up to its own 0x00, which an
            // address never holds: every key under this prefix is this address's.
            if key.email == email {
                out.push((key, decode(&value)?));
            }
        }
        Ok(out)
    }

    fn backup(&self, key: &SlotKey) -> Result<Option<Vec<u8>>> {
        let Some(value) = self.store.tree(Tree::BackupData).get(key.to_bytes())? else {
            return Ok(None);
        };
        let path = held_path(&self.store, decode::<u64>(&value)?);
        std::fs::read(&path)
            .map(Some)
            .map_err(|e| Error::internal(format!("cannot read the held backup {}: {e}", path.display())))
    }

    fn stage(&self, lfbk: &[u8]) -> Result<StagedBackup> {
        let id = self.store.generate_id()?;
        let file = write_held(&held_path(&self.store, id), lfbk)?;
        Ok(StagedBackup {
            id,
            unsynced: Some(file),
        })
    }

    fn make_durable(&self, staged: &mut StagedBackup) -> impl std::future::Future<Output = Result<()>> + Send {
        let store = self.store.clone();
        let file = staged.unsynced.take();
        async move {
            match file {
                Some(file) => store.sync_file(file, held_dir(&store)).await,
                None => Ok(()),
            }
        }
    }

    fn discard(&self, staged: StagedBackup) {
        let path = held_path(&self.store, staged.id);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!("cannot remove {}: {e}", path.display());
        }
    }

    fn token(&self, hash: &[u8; 32]) -> Result<Option<ConfirmToken>> {
        self.store
            .tree(Tree::BackupTokens)
            .get(hash)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn totals(&self) -> Result<Totals> {
        Ok(self
            .store
            .tree(Tree::BackupCounters)
            .get(TOTALS)?
            .map(|v| decode(&v))
            .transpose()?
            .unwrap_or_default())
    }

    fn mail_id(&self) -> Result<u64> {
        self.store.generate_id()
    }

    fn durable(&self) -> impl std::future::Future<Output = Result<()>> + Send {
        let store = self.store.clone();
        async move { store.durable().await }
    }

    fn wake_mailer(&self) {
        self.mailer.wake();
    }
}

impl SlotTx for SledSlotTx<'_> {
    fn slot(&self, key: &SlotKey) -> TxResult<Option<Slot>> {
        self.tx.get(Tree::BackupSlots, &key.to_bytes())
    }

    fn put_slot(&self, key: &SlotKey, slot: &Slot) -> TxResult<()> {
        self.tx.put(Tree::BackupSlots, &key.to_bytes(), slot)
    }

    fn remove_slot(&self, key: &SlotKey) -> TxResult<()> {
        self.tx.tree(Tree::BackupSlots).remove(key.to_bytes())?;
        Ok(())
    }

    fn put_backup(&self, key: &SlotKey, staged: &StagedBackup) -> TxResult<()> {
        let old = self
            .tx
            .tree(Tree::BackupData)
            .insert(key.to_bytes(), encode(&staged.id))?;
        self.release(old)
    }

    fn remove_backup(&self, key: &SlotKey) -> TxResult<()> {
        let old = self.tx.tree(Tree::BackupData).remove(key.to_bytes())?;
        self.release(old)
    }

    fn address(&self, email: &str) -> TxResult<AddressRecord> {
        Ok(self
            .tx
            .get(Tree::BackupAddresses, email.as_bytes())?
            .unwrap_or_default())
    }

    fn put_address(&self, email: &str, record: &AddressRecord) -> TxResult<()> {
        if record.slots.is_empty() && record.last_mail_unix.is_none() {
            self.tx.tree(Tree::BackupAddresses).remove(email.as_bytes())?;
            return Ok(());
        }
        self.tx.put(Tree::BackupAddresses, email.as_bytes(), record)
    }

    fn totals(&self) -> TxResult<Totals> {
        Ok(self.tx.get(Tree::BackupCounters, TOTALS)?.unwrap_or_default())
    }

    fn put_totals(&self, totals: &Totals) -> TxResult<()> {
        self.tx.put(Tree::BackupCounters, TOTALS, totals)
    }

    fn mail_hour(&self) -> TxResult<MailHour> {
        Ok(self.tx.get(Tree::BackupCounters, MAIL_HOUR)?.unwrap_or_default())
    }

    fn put_mail_hour(&self, hour: &MailHour) -> TxResult<()> {
        self.tx.put(Tree::BackupCounters, MAIL_HOUR, hour)
    }

    fn token(&self, hash: &[u8; 32]) -> TxResult<Option<ConfirmToken>> {
        self.tx.get(Tree::BackupTokens, hash)
    }

    fn put_token(&self, hash: &[u8; 32], token: &ConfirmToken) -> TxResult<()> {
        self.tx.put(Tree::BackupTokens, hash, token)
    }

    fn remove_token(&self, hash: &[u8; 32]) -> TxResult<()> {
        self.tx.tree(Tree::BackupTokens).remove(&hash[..])?;
        Ok(())
    }

    fn enqueue_mail(&self, id: u64, mail: &Mail) -> TxResult<()> {
        self.mailer.enqueue_in(self.tx, id, mail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::SCHEMA_VERSION as SCHEMA_VERSION_NOW;

    fn slots(store: &Store) -> SledSlots {
        SledSlots::new(store.clone(), Mailer::new(&Config::default(), store.clone()).unwrap())
    }

    fn key() -> SlotKey {
        SlotKey {
            email: "a@b.org".into(),
            fingerprint: crate::backup::push::Fingerprint([7; 32]),
        }
    }

    fn files(store: &Store) -> usize {
        std::fs::read_dir(held_dir(store)).unwrap().count()
    }

    #[tokio::test]
    async fn staged_bytes_are_files_until_given_or_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let slots = slots(&store);
        let mut kept = slots.stage(b"kept bytes").unwrap();
        slots.make_durable(&mut kept).await.unwrap();
        assert!(kept.unsynced.is_none());
        let dropped = slots.stage(b"dropped bytes").unwrap();
        assert_eq!(files(&store), 2);
        slots.discard(dropped);
        assert_eq!(files(&store), 1);
        slots.unit(|tx| tx.put_backup(&key(), &kept)).unwrap();
        assert_eq!(slots.backup(&key()).unwrap().unwrap(), b"kept bytes");
        // Replaced: the old file stays until the change is durable.
        let newer = slots.stage(b"newer bytes").unwrap();
        slots.unit(|tx| tx.put_backup(&key(), &newer)).unwrap();
        assert_eq!(files(&store), 2);
        store.durable().await.unwrap();
        assert_eq!(files(&store), 1);
        assert_eq!(slots.backup(&key()).unwrap().unwrap(), b"newer bytes");
        // An aborted unit releases nothing.
        let aborted: Result<()> = slots.unit(|tx| {
            tx.remove_backup(&key())?;
            crate::store::abort(Error::bad("no"))
        });
        assert!(aborted.is_err());
        store.durable().await.unwrap();
        assert_eq!(slots.backup(&key()).unwrap().unwrap(), b"newer bytes");
    }

    #[tokio::test]
    async fn opening_removes_files_nothing_points_at_and_the_sweep_spares_young_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let slots = slots(&store);
        let held = slots.stage(b"held").unwrap();
        slots.unit(|tx| tx.put_backup(&key(), &held)).unwrap();
        let _orphan = slots.stage(b"staged when the process stopped").unwrap();
        assert_eq!(
            slots.sweep_unreferenced().unwrap(),
            0,
            "a young file may still be staged"
        );
        assert_eq!(files(&store), 2);
        // What opening the store does after a restart (no unit of work running yet).
        open_held(&store, SCHEMA_VERSION_NOW).unwrap();
        assert_eq!(files(&store), 1);
        assert_eq!(slots.backup(&key()).unwrap().unwrap(), b"held");
    }

    #[tokio::test]
    async fn a_schema_2_store_has_its_held_backups_moved_to_files() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            db.open_tree(Tree::Meta.name())
                .unwrap()
                .insert("schema_version", &2u32.to_be_bytes())
                .unwrap();
            db.open_tree(Tree::BackupData.name())
                .unwrap()
                .insert(key().to_bytes(), super::super::encode_raw(b"inline bytes"))
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(slots(&store).backup(&key()).unwrap().unwrap(), b"inline bytes");
        assert_eq!(files(&store), 1);
        // `lifeboat check` reads the file (these bytes are no .lfbk).
        let report = store.check().unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains("not a lifeboat backup file")),
            "{:?}",
            report.problems
        );
        // Opening again changes nothing.
        open_held(&store, SCHEMA_VERSION_NOW).unwrap();
        assert_eq!(slots(&store).backup(&key()).unwrap().unwrap(), b"inline bytes");
        assert_eq!(files(&store), 1);
    }
}
