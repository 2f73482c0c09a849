//! Durability that sled's own flush leaves undone, made good after each flush.
//!
//! sled 0.34 (`Db::flush`) writes its log (`db/db`) with `sync_file_range`, which
//! neither flushes the disk's cache nor writes the size of a file that grew, so an
//! acknowledged commit could be lost with the power until its background thread's
//! `fsync`, half a second later. It writes values over about 128 KiB to files of their
//! own (`db/blobs/<lsn>`) that it never syncs, and it syncs no folder after creating a
//! file in it (the store itself, `conf`, blobs, the snapshot it renames into place at
//! every start). [`SledFiles::sync`] runs after every flush, before anything is
//! acknowledged: `fdatasync` of the log, `fsync` of each new blob and of their folder.
//! [`SledFiles::open`] makes the folders and files that opening the store made durable.
//! After each flush, 4–8 MiB of disk are kept reserved past the log's end, so that a
//! disk filled by another program does not fail sled's next writes (sled fails for
//! good after one such failure; see [`super::Room`] for lifeboat's own writes).
//! The power-loss test (`tests/e2e/test_powerloss.py`) fails without either.
//!
//! Left to sled: a blob is synced here after the flush that points at it, so a cut in
//! the moment between sled's background `fsync` of the log and this one could leave a
//! pointer to a blob that is not whole. lifeboat's values stay far below that size
//! (held backups are in [`super::held`] segments, not in sled).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::held::sync_folder;
use crate::{Error, Result};

/// sled's files in the store's folder (`<data dir>/db`).
pub struct SledFiles {
    dir: PathBuf,
    /// sled's log, opened a second time: `fdatasync` covers every descriptor's writes.
    log: File,
    /// The blobs synced so far, by name.
    blobs: Mutex<HashSet<OsString>>,
    /// How far the log's blocks are reserved ahead of its end ([`LOG_AHEAD`]).
    reserved_to: Mutex<u64>,
}

/// Disk space reserved past the end of sled's log, so that its next writes land in
/// blocks it already has. sled fails for good after one write fails for want of
/// space, and [`super::Room`] only stops lifeboat's own writes: another program may
/// take the last free byte while sled still has writes on their way.
const LOG_AHEAD: u64 = 8 << 20;

impl SledFiles {
    /// Opens the log of the store sled has just opened in `dir` and makes what is in
    /// the folder now durable: the log, `conf`, every blob, and the folder's entries.
    pub fn open(dir: &Path) -> Result<SledFiles> {
        let log_path = dir.join("db");
        // Writable only for the space reserved past its end; nothing is written here.
        let log = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(|e| io_error("open", &log_path, e))?;
        let files = SledFiles {
            dir: dir.to_path_buf(),
            log,
            blobs: Mutex::new(HashSet::new()),
            reserved_to: Mutex::new(0),
        };
        let conf = dir.join("conf");
        match File::open(&conf) {
            Ok(file) => file.sync_all().map_err(|e| io_error("sync", &conf, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("open", &conf, e)),
        }
        files.sync()?;
        sync_folder(dir)?;
        Ok(files)
    }

    /// Makes what the last sled flush wrote durable. Call it after every flush, before
    /// telling anyone that something is stored.
    pub fn sync(&self) -> Result<()> {
        self.log
            .sync_data()
            .map_err(|e| io_error("sync", &self.dir.join("db"), e))?;
        self.reserve_ahead();
        let blobs = self.dir.join("blobs");
        let mut synced = self.blobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut present = HashSet::with_capacity(synced.len());
        let mut new = false;
        let listing = match std::fs::read_dir(&blobs) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("list", &blobs, e)),
        };
        for entry in listing {
            let entry = entry.map_err(|e| io_error("list", &blobs, e))?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                match File::open(entry.path()) {
                    Ok(file) => file.sync_all().map_err(|e| io_error("sync", &entry.path(), e))?,
                    // Removed by sled since the listing: nothing left to sync.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error("open", &entry.path(), e)),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            sync_folder(&blobs)?;
        }
        *synced = present;
        Ok(())
    }
}

impl SledFiles {
    /// Keeps between half of [`LOG_AHEAD`] and all of it reserved past the log's end
    /// (again after sled shortened the log). A reservation that fails (the disk is
    /// full) is tried again after the next flush.
    fn reserve_ahead(&self) {
        use std::os::fd::AsRawFd;
        let Ok(len) = self.log.metadata().map(|m| m.len()) else {
            return;
        };
        let mut reserved_to = self.reserved_to.lock().unwrap_or_else(|e| e.into_inner());
        if len + LOG_AHEAD / 2 <= *reserved_to && *reserved_to <= len + LOG_AHEAD {
            return;
        }
        let (Ok(start), Ok(count)) = (libc::off_t::try_from(len), libc::off_t::try_from(LOG_AHEAD)) else {
            return;
        };
        // SAFETY: a plain system call on a descriptor this struct owns.
        let done = unsafe { libc::fallocate(self.log.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, start, count) };
        if done == 0 {
            *reserved_to = len + LOG_AHEAD;
        } else {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot reserve space past the store's log");
        }
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::internal(format!("cannot {what} {}: {e}", path.display()))
}
