//! The holder's slots on sled: see [`crate::backup::holder::SlotStore`]. Key layouts
//! are documented on the [`Tree`] variants `backup_*`.
//!
//! Held backups are not in sled: their bytes are ranges of segment files under
//! `held/` ([`super::held`]), and `backup_data` maps a slot to its range. sled is made
//! for small values; 64 KiB ones cost it most of a push's time and keep its cache
//! growing. A backup's range is written and synced before the unit of work that points
//! a slot at it, so a crash at any moment leaves every slot with its complete backup.
//!
//! The tidy pass ([`tidy`]) gives back the space of backups nothing points at any
//! more: it removes segments that hold no backup and frees the other ranges of the
//! rest, only in segments no longer written to and only after a flush, so no durable
//! pointer ever names freed space. It runs when the store opens, when a segment
//! fills, and hourly (which first retires a segment written to for an hour).
//! Deleted backups (a signed delete, the erasure of a restored one) are erased as soon
//! as their unit of work is durable.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use super::held::{self, Location};
use super::{decode, decode_raw, Store, Tree, Tx};
use crate::backup::holder::{
    AddressRecord, ConfirmToken, MailHour, Slot, SlotKey, SlotStore, SlotTx, Totals, TxResult,
};
use crate::mail::Mail;
use crate::{Error, Result};

/// The folder of held backups, in the data folder.
pub(super) const HELD_DIR: &str = "held";

const TOTALS: &[u8] = b"totals";
const MAIL_HOUR: &[u8] = b"mail_hour";

/// The holder's storage: the store, and the mailer whose queue shares its units of work.
#[derive(Clone)]
pub struct SledSlots {
    store: Store,
}

impl SledSlots {
    pub fn new(store: Store) -> SledSlots {
        SledSlots { store }
    }

    /// The hourly tidy: retires the segment being written if it is an hour old, then
    /// gives back the space of backups nothing points at. Blocking.
    pub fn tidy_held(&self) -> Result<TidyReport> {
        self.store.held().retire_older_than(held::SEGMENT_MAX_AGE);
        tidy(&self.store)
    }
}

/// What a tidy pass gave back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TidyReport {
    /// Segments removed because they held no backup.
    pub segments_removed: usize,
    /// Bytes of replaced or deleted backups freed in the segments kept.
    pub bytes_freed: u64,
}

/// The `.lfbk` file of schema 3 that held one backup.
fn schema3_file(store: &Store, id: u64) -> std::path::PathBuf {
    store.held().dir().join(format!("{id:016x}.lfbk"))
}

/// On a store of schema 3 or older, moves the held backups into segments (from a file
/// each, or from `backup_data` itself before schema 3): one unit of work re-points
/// every slot and sets the schema, then the old files are removed. Then tidies. Runs
/// while the store is opened, before any request.
pub(super) fn open_held(store: &Store, schema: u32) -> Result<()> {
    if schema < 4 {
        let log = store.held();
        let mut moved = Vec::new();
        for entry in store.tree(Tree::BackupData).iter() {
            let (key, value) = entry?;
            let bytes = if schema < 3 {
                decode_raw(&value)?.to_vec()
            } else {
                let path = schema3_file(store, decode::<u64>(&value)?);
                std::fs::read(&path)
                    .map_err(|e| Error::internal(format!("cannot read the held backup {}: {e}", path.display())))?
            };
            moved.push((key, log.stage(&bytes)?));
        }
        let mut synced = HashSet::new();
        for (_, staged) in &moved {
            if synced.insert(staged.location().segment) {
                staged
                    .file()
                    .sync_data()
                    .map_err(|e| Error::internal(format!("cannot sync {}: {e}", log.dir().display())))?;
            }
        }
        store.transaction(|tx| {
            for (key, staged) in &moved {
                tx.put(Tree::BackupData, key, &staged.location())?;
            }
            tx.tree(Tree::Meta).insert("schema_version", &4u32.to_be_bytes())?;
            Ok(())
        })?;
        store.flush()?;
        for path in log.other_files()? {
            if path.extension().is_some_and(|e| e == "lfbk") {
                std::fs::remove_file(&path)
                    .map_err(|e| Error::internal(format!("cannot remove {}: {e}", path.display())))?;
            }
        }
        tracing::info!(
            backups = moved.len(),
            "store upgraded to schema 4: held backups moved into segments in {}",
            log.dir().display()
        );
    }
    let report = tidy(store)?;
    if report != TidyReport::default() {
        tracing::info!(
            segments_removed = report.segments_removed,
            bytes_freed = report.bytes_freed,
            "tidied the held backups"
        );
    }
    Ok(())
}

/// Tidies soon after each segment fills, in the background, for as long as the
/// store is open.
pub(super) fn tidy_held_when_retired(store: &Store) {
    let retirements = store.held().retirements();
    let store = std::sync::Arc::downgrade(&store.inner);
    tokio::spawn(async move {
        loop {
            retirements.notified().await;
            let Some(inner) = store.upgrade() else { return };
            let store = Store { inner };
            match tokio::task::spawn_blocking(move || tidy(&store)).await {
                Ok(Ok(report)) => tracing::debug!(?report, "tidied the held backups"),
                Ok(Err(e)) => tracing::warn!("cannot tidy the held backups: {e}"),
                Err(e) => tracing::warn!("the tidy pass stopped: {e}"),
            }
        }
    });
}

/// Removes the segments no slot points into and frees the unpointed ranges of the
/// others, among the segments no longer written to. Blocking.
pub(super) fn tidy(store: &Store) -> Result<TidyReport> {
    let log = store.held();
    let _alone = log.tidying();
    let quiet = log.quiet_segments()?;
    if quiet.is_empty() {
        return Ok(TidyReport::default());
    }
    // Read after the segments went quiet: every pointer into them there will ever be.
    let ids: HashSet<u64> = quiet.iter().map(|s| s.id).collect();
    let mut live: HashMap<u64, Vec<Location>> = HashMap::new();
    for entry in store.tree(Tree::BackupData).iter() {
        let (_, value) = entry?;
        let location: Location = decode(&value)?;
        if ids.contains(&location.segment) {
            live.entry(location.segment).or_default().push(location);
        }
    }
    // Pointers that moved away from a range before the read above must be durable
    // before the range is given back.
    store.flush()?;
    let mut report = TidyReport::default();
    for segment in quiet {
        match live.get_mut(&segment.id) {
            None => {
                log.remove(segment.id)?;
                report.segments_removed += 1;
            }
            Some(ranges) => {
                ranges.sort_by_key(|l| l.offset);
                report.bytes_freed += log.free_outside(segment.id, segment.len, ranges)?;
            }
        }
    }
    Ok(report)
}

/// Reads every held backup and checks it against its slot (length, SHA-256, a valid
/// `.lfbk` header), for `lifeboat check`.
pub(super) fn check_held(store: &Store, problems: &mut Vec<String>) -> Result<()> {
    for entry in store.tree(Tree::BackupData).iter() {
        let (key, value) = entry?;
        let Ok(location) = decode::<Location>(&value) else {
            continue;
        };
        let name = SlotKey::from_bytes(&key).map_or_else(|| hex::encode(&key), |k| k.email);
        let bytes = match store.held().read(location) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(format!("held backup of {name}: {e}"));
                continue;
            }
        };
        if let Err(e) = crate::sealed::Header::parse(&bytes) {
            problems.push(format!(
                "held backup of {name} (segment {:016x}): {e}",
                location.segment
            ));
        }
        let slot = store
            .tree(Tree::BackupSlots)
            .get(&key)?
            .map(|v| decode::<Slot>(&v))
            .transpose()?;
        match slot {
            None => problems.push(format!("held backup of {name}: no slot points at it")),
            Some(slot) => {
                let digest: [u8; 32] =
                    sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes)).into();
                if slot.sha256 != Some(digest) || slot.size != location.len {
                    problems.push(format!(
                        "held backup of {name} (segment {:016x}): its bytes do not match the slot's size and SHA-256",
                        location.segment
                    ));
                }
            }
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
            decode::<Location>(value).map(|_| ())
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
    /// Backups this unit of work deleted, to erase once it is durable.
    deleted: RefCell<Vec<Location>>,
}

impl<'t> SledSlotTx<'t> {
    /// The holder's view inside a unit of work that spans more than slots (a restore:
    /// token, slot, account and outbox together). Backups such a unit deletes are
    /// left to the tidy pass.
    pub fn new(tx: &'t Tx<'t>) -> SledSlotTx<'t> {
        SledSlotTx {
            tx,
            deleted: RefCell::new(Vec::new()),
        }
    }
}

impl SlotStore for SledSlots {
    type Tx<'t> = SledSlotTx<'t>;
    type Staged = held::Staged;

    fn unit<R>(&self, work: impl Fn(&Self::Tx<'_>) -> TxResult<R>) -> Result<R> {
        // The unit may run more than once: only the attempt that commits counts.
        let deleted = RefCell::new(Vec::new());
        let result = self.store.transaction(|tx| {
            let view = SledSlotTx::new(tx);
            let result = work(&view)?;
            *deleted.borrow_mut() = view.deleted.into_inner();
            Ok(result)
        })?;
        for location in deleted.into_inner() {
            let log = self.store.held().clone();
            self.store.after_durable(move || {
                if let Err(e) = log.erase(location) {
                    tracing::warn!("{e}");
                }
            });
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
        self.store.held().read(decode(&value)?).map(Some)
    }

    fn stage(&self, lfbk: &[u8]) -> Result<held::Staged> {
        self.store.held().stage(lfbk)
    }

    fn unit_when_durable<R: Send + 'static>(
        &self,
        staged: Option<held::Staged>,
        work: impl Fn(&SledSlotTx<'_>, Option<&held::Staged>) -> TxResult<R> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<R>> + Send {
        let store = self.store.clone();
        let file = staged.as_ref().map(|s| s.file().clone());
        async move {
            // The staged range stays in flight (safe from the tidy pass) until the unit
            // that points a slot at it has committed: the closure owns it till then.
            let (result, deleted) = store
                .commit(file, move |tx| {
                    let view = SledSlotTx::new(tx);
                    let result = work(&view, staged.as_ref())?;
                    Ok((result, view.deleted.into_inner()))
                })
                .await?;
            // Durable now: what the unit deleted can be erased.
            for location in deleted {
                if let Err(e) = store.held().erase(location) {
                    tracing::warn!("{e}");
                }
            }
            Ok(result)
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
}

impl SlotTx for SledSlotTx<'_> {
    type Staged = held::Staged;

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

    fn put_backup(&self, key: &SlotKey, staged: &held::Staged) -> TxResult<()> {
        self.tx.put(Tree::BackupData, &key.to_bytes(), &staged.location())
    }

    fn remove_backup(&self, key: &SlotKey) -> TxResult<()> {
        if let Some(old) = self.tx.tree(Tree::BackupData).remove(key.to_bytes())? {
            let location = decode(&old)?;
            self.deleted.borrow_mut().push(location);
        }
        Ok(())
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
        crate::mail::queue_in(self.tx, id, mail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SCHEMA_VERSION as SCHEMA_VERSION_NOW;

    fn slots(store: &Store) -> SledSlots {
        SledSlots::new(store.clone())
    }

    fn key() -> SlotKey {
        SlotKey {
            email: "a@b.org".into(),
            fingerprint: crate::backup::push::Fingerprint([7; 32]),
        }
    }

    fn segments(store: &Store) -> usize {
        std::fs::read_dir(store.held().dir())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".seg"))
            .count()
    }

    fn other_key() -> SlotKey {
        SlotKey {
            email: "c@d.org".into(),
            fingerprint: crate::backup::push::Fingerprint([8; 32]),
        }
    }

    /// Opens the store again once the background tasks of the last one let it go.
    async fn reopen(dir: &std::path::Path) -> Store {
        for _ in 0..100 {
            tokio::task::yield_now().await;
            if let Ok(store) = Store::open(dir) {
                return store;
            }
        }
        panic!("the store stays locked");
    }

    fn location(store: &Store, key: &SlotKey) -> Location {
        decode(&store.tree(Tree::BackupData).get(key.to_bytes()).unwrap().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn staged_bytes_are_held_once_given_and_a_delete_is_erased_once_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let slots = slots(&store);
        let kept = slots.stage(b"kept bytes").unwrap();
        slots
            .unit_when_durable(Some(kept), |tx, kept| tx.put_backup(&key(), kept.unwrap()))
            .await
            .unwrap();
        assert_eq!(slots.backup(&key()).unwrap().unwrap(), b"kept bytes");
        let newer = slots.stage(b"newer bytes").unwrap();
        slots.unit(|tx| tx.put_backup(&key(), &newer)).unwrap();
        assert_eq!(slots.backup(&key()).unwrap().unwrap(), b"newer bytes");
        // An aborted unit erases nothing.
        let aborted: Result<()> = slots.unit(|tx| {
            tx.remove_backup(&key())?;
            crate::store::abort(Error::bad("no"))
        });
        assert!(aborted.is_err());
        store.durable().await.unwrap();
        assert_eq!(slots.backup(&key()).unwrap().unwrap(), b"newer bytes");
        // A delete: the bytes stay until the unit is durable, then are erased.
        let held = location(&store, &key());
        slots.unit(|tx| tx.remove_backup(&key())).unwrap();
        assert!(slots.backup(&key()).unwrap().is_none());
        assert_eq!(store.held().read(held).unwrap(), b"newer bytes");
        store.durable().await.unwrap();
        assert_eq!(store.held().read(held).unwrap(), vec![0u8; held.len as usize]);
    }

    #[tokio::test]
    async fn the_tidy_pass_frees_replaced_backups_and_removes_empty_segments() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let slots = slots(&store);
        let chunk = |b: u8| vec![b; 256 * 1024];
        let give = |key: &SlotKey, bytes: &[u8]| {
            let staged = slots.stage(bytes).unwrap();
            staged.file().sync_data().unwrap();
            slots.unit(|tx| tx.put_backup(key, &staged)).unwrap();
        };
        give(&key(), &chunk(1));
        give(&other_key(), &chunk(2));
        give(&key(), &chunk(3));
        let first = location(&store, &other_key()).segment;
        // Nothing is tidied in the segment being written.
        assert_eq!(slots.tidy_held().unwrap(), TidyReport::default());
        store.held().retire_older_than(std::time::Duration::ZERO);
        // A range still staged keeps its segment as it is.
        let in_flight = slots.stage(b"staged when the pass runs").unwrap();
        store.held().retire_older_than(std::time::Duration::ZERO);
        let report = tidy(&store).unwrap();
        assert_eq!(report.segments_removed, 0);
        assert_eq!(report.bytes_freed, 256 * 1024, "the first backup of a@b.org");
        assert_eq!(slots.backup(&key()).unwrap().unwrap(), chunk(3));
        assert_eq!(slots.backup(&other_key()).unwrap().unwrap(), chunk(2));
        assert_eq!(segments(&store), 2);
        // Both slots move on: the first segment holds nothing and goes.
        give(&key(), &chunk(4));
        give(&other_key(), &chunk(5));
        assert_ne!(location(&store, &other_key()).segment, first);
        assert_eq!(tidy(&store).unwrap().segments_removed, 1);
        assert_eq!(segments(&store), 2);
        // Once dropped, the range staged nowhere is tidied with its segment.
        drop(in_flight);
        store.held().retire_older_than(std::time::Duration::ZERO);
        assert_eq!(tidy(&store).unwrap().segments_removed, 1);
        assert_eq!(slots.backup(&key()).unwrap().unwrap(), chunk(4));
        assert_eq!(slots.backup(&other_key()).unwrap().unwrap(), chunk(5));
    }

    #[tokio::test]
    async fn opening_tidies_what_a_stopped_process_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = slots(&store);
        let held = first.stage(b"held").unwrap();
        first.unit(|tx| tx.put_backup(&key(), &held)).unwrap();
        let stopped_mid_push = first.stage(&vec![9u8; 100_000]).unwrap();
        store.flush().unwrap();
        let segment = location(&store, &key()).segment;
        drop((held, stopped_mid_push, first, store));
        let store = reopen(dir.path()).await;
        assert_eq!(location(&store, &key()).segment, segment);
        assert_eq!(slots(&store).backup(&key()).unwrap().unwrap(), b"held");
        let range = Location {
            segment,
            offset: 4,
            len: 100_000,
        };
        assert_eq!(
            store.held().read(range).unwrap(),
            vec![0u8; 100_000],
            "freed at start-up"
        );
    }

    /// A store as an older lifeboat left it: its schema, and `key()`'s `backup_data` value.
    fn old_store(dir: &std::path::Path, schema: u32, backup_data: Vec<u8>) {
        let db = sled::open(dir.join("db")).unwrap();
        db.open_tree(Tree::Meta.name())
            .unwrap()
            .insert("schema_version", &schema.to_be_bytes())
            .unwrap();
        db.open_tree(Tree::BackupData.name())
            .unwrap()
            .insert(key().to_bytes(), backup_data)
            .unwrap();
        db.flush().unwrap();
    }

    #[tokio::test]
    async fn a_schema_2_store_has_its_held_backups_moved_into_segments() {
        let dir = tempfile::tempdir().unwrap();
        old_store(dir.path(), 2, super::super::encode_raw(b"inline bytes"));
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(slots(&store).backup(&key()).unwrap().unwrap(), b"inline bytes");
        assert_eq!(segments(&store), 1);
        // `lifeboat check` reads the held bytes (these are no .lfbk, and no slot was made).
        let report = store.check().unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains("not a lifeboat backup file")),
            "{:?}",
            report.problems
        );
        assert!(report.problems.iter().any(|p| p.contains("no slot points at it")));
        drop(store);
        // Opening again changes nothing.
        let store = reopen(dir.path()).await;
        assert_eq!(slots(&store).backup(&key()).unwrap().unwrap(), b"inline bytes");
        assert_eq!(segments(&store), 1);
    }

    #[tokio::test]
    async fn a_schema_3_store_has_its_backup_files_moved_into_segments() {
        let dir = tempfile::tempdir().unwrap();
        let held = dir.path().join(HELD_DIR);
        {
            old_store(dir.path(), 3, super::super::encode(&0x2au64));
            std::fs::create_dir(&held).unwrap();
            std::fs::write(held.join("000000000000002a.lfbk"), b"file bytes").unwrap();
            std::fs::write(held.join("000000000000002b.lfbk"), b"staged when it stopped").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(slots(&store).backup(&key()).unwrap().unwrap(), b"file bytes");
        assert_eq!(
            store.tree(Tree::Meta).get("schema_version").unwrap().unwrap().as_ref(),
            &SCHEMA_VERSION_NOW.to_be_bytes()
        );
        let names: Vec<String> = std::fs::read_dir(&held)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".seg")), "{names:?}");
        assert_eq!(names.len(), 1);
    }
}
