//! The committer thread: batches concurrent callers into one file sync, one
//! transaction and one flush (docs/storage.md, "The committer").

use super::*;

/// Work queued by [`Store::after_durable`].
pub(super) type AfterDurable = Box<dyn FnOnce() + Send>;

pub(super) fn committer_stopped() -> Error {
    Error::internal("the store's committer stopped")
}

/// What a unit of work given to the committer returns, its type erased.
pub(super) type UnitValue = Box<dyn Any + Send>;
pub(super) type UnitResult = TxResult<UnitValue>;
/// A unit of work given to the committer.
pub(super) type Unit = Box<dyn Fn(&Tx) -> UnitResult + Send>;
/// Answers a caller of the committer.
pub(super) type Answer = Box<dyn FnOnce(Result<UnitValue>) + Send>;

/// One caller of [`Store::commit`] or [`Store::durable`]: the file to sync first, the
/// unit to run once it is synced, and how to answer once the batch is flushed.
pub(super) struct CommitJob {
    pub(super) file: Option<Arc<File>>,
    pub(super) unit: Option<Unit>,
    pub(super) done: Answer,
}

/// Why the committer's shared transaction stopped: one unit aborted.
pub(super) struct UnitAborted(usize, Error);

/// The committer thread. Takes every job that arrived while the previous batch ran,
/// syncs their files (each once: a sync covers every write that finished before it
/// started), runs their units in one transaction, then flushes once, so many
/// concurrent writers share few syncs. Work queued by [`Store::after_durable`]
/// before a flush started runs once it succeeded. Ends when the store is dropped.
pub(super) fn group_commit(
    db: sled::Db,
    files: Arc<sled_files::SledFiles>,
    trees: Vec<sled::Tree>,
    jobs: std::sync::mpsc::Receiver<CommitJob>,
    after_durable: Arc<Mutex<Vec<AfterDurable>>>,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while let Ok(more) = jobs.try_recv() {
            batch.push(more);
        }
        let started = std::time::Instant::now();
        // 1. Files, each once; a job whose file failed to sync has its outcome already.
        let mut synced: Vec<(*const File, std::result::Result<(), String>)> = Vec::new();
        let mut outcomes: Vec<Option<Result<UnitValue>>> = Vec::with_capacity(batch.len());
        for job in &batch {
            let failed = job.file.as_ref().and_then(|file| {
                let at = synced
                    .iter()
                    .position(|(f, _)| *f == Arc::as_ptr(file))
                    .unwrap_or_else(|| {
                        synced.push((Arc::as_ptr(file), file.sync_data().map_err(|e| e.to_string())));
                        synced.len() - 1
                    });
                synced[at].1.clone().err()
            });
            outcomes.push(failed.map(|e| Err(Error::internal(format!("sync: {e}")))));
        }
        // 2. The units whose files are durable, in one transaction.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_units(&trees, &batch, &mut outcomes)
        }));
        if ran.is_err() {
            for outcome in outcomes.iter_mut().filter(|o| o.is_none()) {
                *outcome = Some(Err(Error::internal("a unit of work panicked")));
            }
        }
        // 3. One flush for everything so far.
        let queued = std::mem::take(&mut *after_durable.lock().unwrap_or_else(|e| e.into_inner()));
        let flushed = match db.flush().map_err(Error::from).and_then(|_| files.sync()) {
            Ok(()) => {
                for work in queued {
                    work();
                }
                Ok(())
            }
            Err(e) => {
                // Not durable: the work waits for the next flush.
                after_durable.lock().unwrap_or_else(|e| e.into_inner()).extend(queued);
                Err((matches!(e, Error::InsufficientStorage(_)), e.to_string()))
            }
        };
        tracing::trace!(
            jobs = batch.len(),
            us = started.elapsed().as_micros() as u64,
            "group commit"
        );
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            let outcome = match (outcome, &flushed) {
                (Some(Err(e)), _) => Err(e),
                (_, Err((true, _))) => Err(Error::disk_full()),
                (_, Err((false, e))) => Err(Error::internal(format!("flush: {e}"))),
                (Some(Ok(value)), Ok(())) => Ok(value),
                (None, Ok(())) => Ok(Box::new(()) as UnitValue),
            };
            (job.done)(outcome);
        }
    }
}

/// Runs the batch's units that have no outcome yet in one transaction, taking out
/// each unit that aborts (its outcome is its error) until the rest commit.
pub(super) fn run_units(trees: &[sled::Tree], batch: &[CommitJob], outcomes: &mut [Option<Result<UnitValue>>]) {
    use sled::transaction::TransactionError;
    use sled::Transactional;
    loop {
        let pending: Vec<usize> = (0..batch.len())
            .filter(|&i| outcomes[i].is_none() && batch[i].unit.is_some())
            .collect();
        if pending.is_empty() {
            return;
        }
        let committed = trees.transaction(|trees| {
            let tx = Tx { trees };
            let mut values = Vec::with_capacity(pending.len());
            for &i in &pending {
                let unit = batch[i].unit.as_ref().expect("pending units have a unit");
                match unit(&tx).map_err(|e| e.0) {
                    Ok(value) => values.push((i, value)),
                    Err(ConflictableTransactionError::Abort(e)) => {
                        return Err(ConflictableTransactionError::Abort(UnitAborted(i, e)))
                    }
                    Err(ConflictableTransactionError::Conflict) => return Err(ConflictableTransactionError::Conflict),
                    Err(ConflictableTransactionError::Storage(e)) => {
                        return Err(ConflictableTransactionError::Storage(e))
                    }
                }
            }
            Ok(values)
        });
        match committed {
            Ok(values) => {
                for (i, value) in values {
                    outcomes[i] = Some(Ok(value));
                }
                return;
            }
            Err(TransactionError::Abort(UnitAborted(i, e))) => outcomes[i] = Some(Err(e)),
            Err(TransactionError::Storage(e)) => {
                for &i in &pending {
                    outcomes[i] = Some(Err(Error::from(e.clone())));
                }
                return;
            }
        }
    }
}
