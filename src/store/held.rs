//! Held backups on disk: append-only segment files `held/<id>.seg` (`id` a store id
//! as 16 hex digits), each backup's bytes one range of one segment. `backup_data`
//! points a slot at its range (a [`Location`]); nothing else is in a segment, and a
//! segment is only ever read through such a pointer.
//!
//! Why segments: a backup pod's work is many pushes of tens of KiB, each durable
//! before its answer. A file per backup costs a create, a sync of its data and of its
//! inode, a folder sync and an unlink per push; appending to one file lets concurrent
//! pushes share a single `fdatasync` (measured on this project's machine: 64 KiB
//! records in batches of 8 sync at about 7,000/s with 51 µs of CPU each, against
//! about 1,000/s and 355 µs as files).
//!
//! The rules that keep a crash harmless:
//! - bytes are written to a range nobody else is given ([`HeldLog::stage`]), and synced
//!   ([`Staged::file`], shared syncs) before any unit of work points a slot at them;
//! - a new segment's folder entry is synced before anything is written to it;
//! - after a restart, writing continues in a new segment, so a torn tail is never
//!   behind a pointer;
//! - space is given back only for ranges no durable pointer can still name: by the
//!   tidy pass ([`crate::store::backups`]) for segments no longer written to, after a
//!   flush, and by [`HeldLog::erase`] once the unit of work that dropped the pointer
//!   is durable.
//!
//! Replaced backups are not erased one by one (punching a hole in the file being
//! synced would make every sync write metadata too, which halves the rate): they stay
//! until their segment is retired and tidied, at most about two hours.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A segment stops taking new backups once this long (a larger backup still goes
/// whole into one segment).
pub const SEGMENT_TARGET_BYTES: u64 = 32 << 20;

/// The segment written to is retired by the tidy pass once it is this old, so replaced
/// backups do not stay on disk long on a quiet pod.
pub const SEGMENT_MAX_AGE: Duration = Duration::from_secs(3600);

const SEGMENT_SUFFIX: &str = ".seg";

/// Where a held backup's bytes are, as `backup_data` stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    pub segment: u64,
    pub offset: u64,
    pub len: u64,
}

/// The folder of segments. Cheap to clone.
#[derive(Clone)]
pub struct HeldLog {
    inner: Arc<LogInner>,
}

struct LogInner {
    dir: PathBuf,
    /// Where segment ids come from (ids increase over the life of the store).
    ids: sled::Db,
    /// The free space a backup must leave on the disk.
    room: super::Room,
    state: Mutex<State>,
    /// One tidy pass at a time.
    tidying: Mutex<()>,
    /// Told when a segment is retired, so its space can be tidied soon.
    retired: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    /// Staged ranges not yet given to a slot or dropped, per segment.
    in_flight: HashMap<u64, usize>,
    /// The live ranges each quiet segment was last freed around (a hash), so a pass
    /// frees again only where a backup was dropped since.
    freed_around: HashMap<u64, u64>,
}

struct Current {
    id: u64,
    file: Arc<File>,
    len: u64,
    created: Instant,
}

/// Bytes written to a range of a segment and not yet given to a slot. Dropping it
/// leaves the range to the tidy pass.
pub struct Staged {
    location: Location,
    file: Arc<File>,
    log: HeldLog,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged").field("location", &self.location).finish()
    }
}

impl Staged {
    /// Where the bytes are.
    pub fn location(&self) -> Location {
        self.location
    }

    /// The segment holding them: syncing it (`fdatasync`) makes them durable.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let mut state = self.log.state();
        if let Some(count) = state.in_flight.get_mut(&self.location.segment) {
            *count -= 1;
            if *count == 0 {
                state.in_flight.remove(&self.location.segment);
            }
        }
    }
}

/// A segment no backup is being staged to, with its length on disk.
#[derive(Clone, Copy, Debug)]
pub struct QuietSegment {
    pub id: u64,
    pub len: u64,
}

impl HeldLog {
    /// Opens the folder (creating it, owner-only). Writing starts in a new segment.
    pub fn open(dir: &Path, ids: sled::Db, room: super::Room) -> Result<HeldLog> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
        Ok(HeldLog {
            inner: Arc::new(LogInner {
                dir: dir.to_path_buf(),
                ids,
                room,
                state: Mutex::new(State::default()),
                tidying: Mutex::new(()),
                retired: Arc::new(tokio::sync::Notify::new()),
            }),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, segment: u64) -> PathBuf {
        self.inner.dir.join(format!("{segment:016x}{SEGMENT_SUFFIX}"))
    }

    /// Writes `bytes` to a fresh range of the current segment, not synced yet.
    /// Blocking: call it off the async runtime.
    pub fn stage(&self, bytes: &[u8]) -> Result<Staged> {
        let len = bytes.len() as u64;
        self.inner.room.check(len)?;
        let staged = {
            let mut state = self.state();
            let full = state
                .current
                .as_ref()
                .is_some_and(|c| c.len > 0 && c.len + len > SEGMENT_TARGET_BYTES);
            if full {
                state.current = None;
                self.inner.retired.notify_one();
            }
            if state.current.is_none() {
                state.current = Some(self.new_segment()?);
            }
            let current = state.current.as_mut().expect("a current segment was just made");
            let location = Location {
                segment: current.id,
                offset: current.len,
                len,
            };
            current.len += len;
            let file = current.file.clone();
            *state.in_flight.entry(location.segment).or_default() += 1;
            Staged {
                location,
                file,
                log: self.clone(),
            }
        };
        staged.file.write_all_at(bytes, staged.location.offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::StorageFull {
                return Error::disk_full();
            }
            Error::internal(format!(
                "cannot write to {}: {e}",
                self.path(staged.location.segment).display()
            ))
        })?;
        Ok(staged)
    }

    /// Creates a segment and syncs the folder, so its entry is durable before any
    /// backup in it is pointed at.
    fn new_segment(&self) -> Result<Current> {
        use std::os::unix::fs::OpenOptionsExt;
        let id = self.inner.ids.generate_id()?;
        let path = self.path(id);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", path.display())))?;
        sync_folder(&self.inner.dir)?;
        Ok(Current {
            id,
            file: Arc::new(file),
            len: 0,
            created: Instant::now(),
        })
    }

    /// Reads the bytes at `location`.
    pub fn read(&self, location: Location) -> Result<Vec<u8>> {
        let path = self.path(location.segment);
        let len = usize::try_from(location.len).map_err(|_| Error::internal("a held backup's length is too large"))?;
        let mut bytes = vec![0; len];
        File::open(&path)
            .and_then(|file| file.read_exact_at(&mut bytes, location.offset))
            .map_err(|e| Error::internal(format!("cannot read the held backup in {}: {e}", path.display())))?;
        Ok(bytes)
    }

    /// Stops writing to the current segment if it is older than `max_age`, so the
    /// tidy pass can give back the space of the backups replaced in it.
    pub fn retire_older_than(&self, max_age: Duration) {
        let mut state = self.state();
        if state.current.as_ref().is_some_and(|c| c.created.elapsed() >= max_age) {
            state.current = None;
        }
    }

    /// Notified when a segment is retired for being full (holding it does not keep
    /// the log open).
    pub fn retirements(&self) -> Arc<tokio::sync::Notify> {
        self.inner.retired.clone()
    }

    /// Holds off other tidy passes while the guard lives.
    pub fn tidying(&self) -> MutexGuard<'_, ()> {
        self.inner.tidying.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every segment that is not written to and has no staged range in flight. No
    /// pointer into such a segment can appear any more, so pointers read after this
    /// call are all the pointers into it there will ever be.
    pub fn quiet_segments(&self) -> Result<Vec<QuietSegment>> {
        let mut found = Vec::new();
        for (entry, id) in self.entries()? {
            let Some(id) = id else { continue };
            let metadata = entry.metadata().map_err(|e| self.listing_error(e))?;
            found.push(QuietSegment {
                id,
                len: metadata.len(),
            });
        }
        let state = self.state();
        found.retain(|s| state.current.as_ref().is_none_or(|c| c.id != s.id) && !state.in_flight.contains_key(&s.id));
        found.sort_by_key(|s| s.id);
        Ok(found)
    }

    /// Removes a segment no durable pointer names.
    pub fn remove(&self, segment: u64) -> Result<()> {
        let path = self.path(segment);
        std::fs::remove_file(&path).map_err(|e| Error::internal(format!("cannot remove {}: {e}", path.display())))?;
        // Else a power cut brings the segment back, with the backups erased from it.
        sync_folder(&self.inner.dir)?;
        self.state().freed_around.remove(&segment);
        Ok(())
    }

    /// Frees the ranges of a quiet segment outside `live` (sorted by offset), which no
    /// durable pointer names, up to `len`: the filesystem gives back their blocks and
    /// the rest of them reads as zeroes. Returns the bytes freed this time (none when
    /// nothing was dropped since the last call with the same ranges).
    pub fn free_outside(&self, segment: u64, len: u64, live: &[Location]) -> Result<u64> {
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (len, live).hash(&mut hasher);
            hasher.finish()
        };
        if self.state().freed_around.get(&segment) == Some(&fingerprint) {
            return Ok(0);
        }
        let path = self.path(segment);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))?;
        let mut freed = 0;
        let mut at = 0;
        for range in live.iter().map(|l| (l.offset, l.offset + l.len)).chain([(len, len)]) {
            if range.0 > at {
                free_range(&file, at, range.0 - at)
                    .map_err(|e| Error::internal(format!("cannot free space in {}: {e}", path.display())))?;
                freed += range.0 - at;
            }
            at = at.max(range.1);
        }
        // Synced, so the freed bytes do not come back with a power cut (a hole is
        // metadata; the zeroes written where holes are not supported are data).
        file.sync_data()
            .map_err(|e| Error::internal(format!("cannot sync {}: {e}", path.display())))?;
        self.state().freed_around.insert(segment, fingerprint);
        Ok(freed)
    }

    /// Erases a range no durable pointer names any more (a deleted or restored
    /// backup): the filesystem frees its blocks, or zeroes are written over it.
    pub fn erase(&self, location: Location) -> Result<()> {
        let path = self.path(location.segment);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|file| {
                free_range(&file, location.offset, location.len)?;
                // Erased for good only once synced: a power cut would bring it back.
                file.sync_data()
            })
            .map_err(|e| Error::internal(format!("cannot erase a held backup in {}: {e}", path.display())))
    }

    /// Every file of the folder that is not a segment (the per-backup files of schema 3).
    pub fn other_files(&self) -> Result<Vec<PathBuf>> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(_, id)| id.is_none())
            .map(|(entry, _)| entry.path())
            .collect())
    }

    /// The folder's entries, each with its segment id if it is a segment.
    fn entries(&self) -> Result<Vec<(std::fs::DirEntry, Option<u64>)>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.inner.dir).map_err(|e| self.listing_error(e))? {
            let entry = entry.map_err(|e| self.listing_error(e))?;
            let id = entry.file_name().to_str().and_then(segment_id);
            found.push((entry, id));
        }
        Ok(found)
    }

    fn listing_error(&self, e: std::io::Error) -> Error {
        Error::internal(format!("cannot list {}: {e}", self.inner.dir.display()))
    }
}

fn segment_id(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SEGMENT_SUFFIX)?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

/// Syncs a folder, so the entries made in it are durable.
pub fn sync_folder(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::internal(format!("cannot sync {}: {e}", dir.display())))
}

/// Frees a range of a file without changing its length (a hole), or, where the
/// filesystem cannot, writes zeroes over it.
fn free_range(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(start), Ok(count)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(std::io::Error::other("range too large"));
    };
    let punched = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            start,
            count,
        )
    };
    if punched == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(error);
    }
    let zeroes = vec![0u8; 64 * 1024];
    let mut at = offset;
    while at < offset + len {
        let n = (offset + len - at).min(zeroes.len() as u64) as usize;
        file.write_all_at(&zeroes[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> (tempfile::TempDir, HeldLog) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let room = super::super::Room {
            dir: dir.path().to_path_buf(),
            min_free: 0,
        };
        let log = HeldLog::open(&dir.path().join("held"), db, room).unwrap();
        (dir, log)
    }

    #[test]
    fn staged_bytes_get_ranges_of_their_own_and_read_back() {
        let (_dir, log) = log();
        let a = log.stage(b"first").unwrap();
        let b = log.stage(b"second").unwrap();
        assert_eq!(a.location().segment, b.location().segment);
        assert_eq!(b.location().offset, 5);
        assert_eq!(log.read(a.location()).unwrap(), b"first");
        assert_eq!(log.read(b.location()).unwrap(), b"second");
    }

    #[test]
    fn a_segment_is_quiet_once_retired_and_nothing_is_in_flight() {
        let (_dir, log) = log();
        let a = log.stage(b"bytes").unwrap();
        assert!(log.quiet_segments().unwrap().is_empty(), "being written");
        log.retire_older_than(Duration::ZERO);
        assert!(log.quiet_segments().unwrap().is_empty(), "a range is still in flight");
        let segment = a.location().segment;
        drop(a);
        let quiet = log.quiet_segments().unwrap();
        assert_eq!(quiet.len(), 1);
        assert_eq!((quiet[0].id, quiet[0].len), (segment, 5));
        // The next backup goes to a new segment.
        let b = log.stage(b"more").unwrap();
        assert_ne!(b.location().segment, segment);
    }

    #[test]
    fn a_full_segment_is_retired_and_a_large_backup_goes_whole_into_one() {
        let (_dir, log) = log();
        let big = vec![7u8; (SEGMENT_TARGET_BYTES + 10) as usize];
        let a = log.stage(b"small").unwrap();
        let b = log.stage(&big).unwrap();
        assert_ne!(a.location().segment, b.location().segment);
        assert_eq!(b.location().offset, 0);
        assert_eq!(log.read(b.location()).unwrap(), big);
        let c = log.stage(b"after").unwrap();
        assert_ne!(c.location().segment, b.location().segment);
    }

    #[test]
    fn freeing_keeps_the_live_ranges_and_erasing_zeroes_one() {
        let (_dir, log) = log();
        let chunk = vec![1u8; 256 * 1024];
        let staged: Vec<Staged> = (0..4).map(|_| log.stage(&chunk).unwrap()).collect();
        let segment = staged[0].location().segment;
        let live = [staged[1].location(), staged[3].location()];
        log.retire_older_than(Duration::ZERO);
        let len = 4 * chunk.len() as u64;
        assert_eq!(log.free_outside(segment, len, &live).unwrap(), 2 * chunk.len() as u64);
        assert_eq!(log.read(live[0]).unwrap(), chunk);
        assert_eq!(log.read(live[1]).unwrap(), chunk);
        assert_eq!(log.read(staged[0].location()).unwrap(), vec![0u8; chunk.len()]);
        drop(staged);
        let allocated = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(log.path(segment)).unwrap().blocks() * 512
        };
        assert!(allocated <= len / 2 + 8192, "{allocated} bytes still allocated");
        assert_eq!(
            log.free_outside(segment, len, &live).unwrap(),
            0,
            "nothing dropped since"
        );
        log.erase(live[0]).unwrap();
        assert_eq!(log.read(live[0]).unwrap(), vec![0u8; chunk.len()]);
        assert_eq!(log.read(live[1]).unwrap(), chunk);
    }
}
