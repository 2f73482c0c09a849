//! Room on the data folder's disk: the free-space margin the store keeps (sled fails for
//! good after one out-of-space write), and folders created durably.

use super::*;

/// The free space kept on the data folder's disk. sled, once one of its writes fails
/// for want of space, refuses every later one until the process restarts; so the
/// store refuses work that would write (an [`Error::InsufficientStorage`], 507) while
/// less than `min_free` is free, before anything is written, and the pod takes
/// writes again as soon as space returns. The margin covers what is already on its
/// way to disk (a batch of commits, sled's own upkeep).
#[derive(Clone, Debug)]
pub struct Room {
    pub(super) dir: PathBuf,
    pub(super) min_free: u64,
}

impl Room {
    /// Refuses when writing `more` bytes would leave less than the margin free. A
    /// filesystem that cannot tell its free space is not refused.
    pub fn check(&self, more: u64) -> Result<()> {
        match free_bytes(&self.dir) {
            Some(free) if free < self.min_free.saturating_add(more) => {
                tracing::warn!(
                    free,
                    min_free = self.min_free,
                    more,
                    "the data folder's disk is full; writes refused"
                );
                Err(Error::disk_full())
            }
            _ => Ok(()),
        }
    }
}

/// The bytes an unprivileged process can still write on `dir`'s filesystem.
pub(super) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `stats` is written by the call before it is read.
    let stats = unsafe {
        if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

/// Creates the data folder, and each missing folder above it, so that its entry
/// survives a power cut: each one's parent is synced once it exists.
pub(super) fn create_folder_durably(dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::internal(format!("cannot create data folder {}: {e}", dir.display())))?;
    for made in missing.iter().rev() {
        let parent = made.parent().filter(|p| !p.as_os_str().is_empty());
        held::sync_folder(parent.unwrap_or(Path::new(".")))?;
    }
    Ok(())
}
