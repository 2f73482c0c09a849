//! The backup worker: turns nudges into looks, runs due looks a bounded number at a
//! time, and reads the known pods' NodeInfo on its schedule.

use super::*;

// ---------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------

/// Works the backups until `shutdown`: reads pods' NodeInfo when due, takes up nudges,
/// and looks at due accounts, a bounded number at a time.
pub async fn run(pod: Arc<Pod>, sync: BackupSync, mut shutdown: watch::Receiver<bool>) {
    let timing = Timing::from_config(&pod.config);
    if let Err(e) = start(&pod) {
        tracing::error!("backups: cannot start: {e}");
    }
    let mut looks: tokio::task::JoinSet<Result<Report>> = tokio::task::JoinSet::new();
    let mut looking: std::collections::HashMap<tokio::task::Id, String> = std::collections::HashMap::new();
    let mut checks: tokio::task::JoinSet<String> = tokio::task::JoinSet::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut checking: HashSet<String> = HashSet::new();
    // The pod directory is scanned when a check is due, when one finished, and on a
    // wake (a pod may have been noted) — not after every look.
    let mut next_pod: Option<u64> = None;
    let mut rescan = true;
    loop {
        let now = now_unix();
        if rescan || next_pod.is_some_and(|at| at <= now) {
            rescan = false;
            next_pod = spawn_pod_checks(&pod, &timing, now, &mut checks, &mut checking).unwrap_or_else(|e| {
                tracing::error!("backups: pod checks: {e}");
                Some(now + timing.pod_check_interval.min(3600))
            });
        }
        if let Err(e) = take_up_nudges(&pod, &timing, now, &in_flight) {
            tracing::error!("backups: nudges: {e}");
        }
        match pod.store.due_accounts(now, timing.concurrency + in_flight.len()) {
            Ok(due) => {
                for username in due {
                    if in_flight.len() >= timing.concurrency {
                        break;
                    }
                    if !in_flight.insert(username.clone()) {
                        continue;
                    }
                    let (task_pod, task_sync) = (pod.clone(), sync.clone());
                    let name = username.clone();
                    let handle = looks.spawn(async move { look(&task_pod, &task_sync, &name, now_unix()).await });
                    looking.insert(handle.id(), username);
                }
            }
            Err(e) => tracing::error!("backups: reading the schedule: {e}"),
        }
        let next_account = pod.store.next_due().unwrap_or_else(|e| {
            tracing::error!("backups: reading the schedule: {e}");
            None
        });
        let mut sleep = timing.poll();
        for at in [next_pod, next_account].into_iter().flatten() {
            sleep = sleep.min(until(at));
        }
        if in_flight.len() >= timing.concurrency || sleep.is_zero() {
            // Busy, or something is due but waits for a free place: wait for a look
            // to finish (or a short while, when what is due is already in flight).
            sleep = sleep.max(Duration::from_millis(200));
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = sync.inner.wake.rung() => rescan = true,
            Some(done) = looks.join_next_with_id(), if !looks.is_empty() => {
                let (id, result) = match done {
                    Ok((id, result)) => (id, result),
                    Err(e) => (e.id(), Err(Error::internal(format!("a look stopped: {e}")))),
                };
                if let Some(username) = looking.remove(&id) {
                    if let Ok(report) = &result {
                        let _ = sync.inner.events.send(SyncEvent::Looked { username: username.clone(), report: *report });
                    }
                    finish_look(&pod, &timing, &username, result);
                    in_flight.remove(&username);
                }
            }
            Some(done) = checks.join_next(), if !checks.is_empty() => {
                if let Ok(origin) = done {
                    checking.remove(&origin);
                }
                rescan = true;
            }
            _ = tokio::time::sleep(sleep) => {}
        }
    }
    looks.abort_all();
    checks.abort_all();
}

/// How long until the start of the Unix second `at` (zero when it has begun).
pub(super) fn until(at: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(at).saturating_sub(now)
}

/// At start: every vetted pod gets an entry (so its NodeInfo is read), and every
/// account that has no state yet (made before backups existed, or written around the
/// account code) is nudged.
pub(super) fn start(pod: &Pod) -> Result<()> {
    pods::ensure_vetted(&pod.store, &pod.config)?;
    let now = now_unix();
    let accounts = AccountStore::accounts(&pod.store)?;
    let missing: Vec<String> = accounts
        .into_iter()
        .map(|a| a.username)
        .filter(|u| matches!(pod.store.sync_state(u), Ok(None)))
        .collect();
    if !missing.is_empty() {
        pod.store.transaction(|tx| {
            for username in &missing {
                tx.nudge(
                    username,
                    Nudge {
                        changed_unix: Some(now),
                        now: false,
                    },
                )?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

pub(super) fn finish_look(pod: &Pod, timing: &Timing, username: &str, result: Result<Report>) {
    if let Err(e) = result {
        tracing::error!(%username, "backups: {e}");
        // Look again later rather than at once: the error may well repeat.
        let at = now_unix() + timing.backoff.first.as_secs().max(1);
        if let Err(e) = defer(pod, username, at) {
            tracing::error!(%username, "backups: cannot reschedule: {e}");
        }
    }
}

/// Moves an account's next look to `at` (after a look that failed midway).
pub(super) fn defer(pod: &Pod, username: &str, at: u64) -> Result<()> {
    pod.store.transaction(|tx| match tx.sync_state(username)? {
        Some(state) => tx.put_sync_state(username, &state, Some(at)),
        None => Ok(()),
    })
}

/// Turns nudges into looks: at once for a nudge that says so, a closed account, or an
/// account without a pod yet (its first push is queued at once); otherwise
/// `push_debounce` after the first change. Accounts being looked at keep their nudge
/// for the next round.
pub fn take_up_nudges(pod: &Pod, timing: &Timing, now: u64, in_flight: &HashSet<String>) -> Result<usize> {
    let mut taken = 0;
    for (username, nudge) in pod.store.nudges()? {
        if in_flight.contains(&username) {
            continue;
        }
        let closed = AccountStore::account(&pod.store, &username)?.is_none_or(|a| a.closed.is_some());
        let took = pod.store.transaction(|tx| {
            if !tx.take_nudge(&username, &nudge)? {
                return Ok(false);
            }
            let mut state = tx.sync_state(&username)?.unwrap_or_else(SyncState::new);
            let due = match nudge.changed_unix {
                _ if nudge.now || closed || state.pod.is_none() => now,
                Some(changed) => changed.saturating_add(timing.debounce),
                None => now,
            };
            state.push_due = Some(state.push_due.map_or(due, |d| d.min(due)));
            tx.put_sync_state(&username, &state, state.next_wake(timing))?;
            Ok(true)
        })?;
        taken += usize::from(took);
    }
    Ok(taken)
}

/// Looks at every account due at `now` (taking up nudges first) and waits until all
/// are done: the daily pass, as the benchmark and tests run it. The worker itself does
/// the same continuously.
pub async fn run_due(pod: &Arc<Pod>, sync: &BackupSync, now: u64) -> Result<Report> {
    let timing = Timing::from_config(&pod.config);
    take_up_nudges(pod, &timing, now, &HashSet::new())?;
    let mut report = Report::default();
    let due = pod.store.due_accounts(now, usize::MAX)?;
    let mut looks = tokio::task::JoinSet::new();
    for username in due {
        while looks.len() >= timing.concurrency {
            if let Some(done) = looks.join_next().await {
                report.add(done.map_err(Error::internal)??);
            }
        }
        let (pod, sync) = (pod.clone(), sync.clone());
        looks.spawn(async move { look(&pod, &sync, &username, now).await });
    }
    while let Some(done) = looks.join_next().await {
        report.add(done.map_err(Error::internal)??);
    }
    Ok(report)
}

/// Reads the NodeInfo of pods that are due (a few at a time); returns when the next
/// pod is due.
pub(super) fn spawn_pod_checks(
    pod: &Arc<Pod>,
    timing: &Timing,
    now: u64,
    checks: &mut tokio::task::JoinSet<String>,
    checking: &mut HashSet<String>,
) -> Result<Option<u64>> {
    const CONCURRENT_CHECKS: usize = 4;
    let own = pods::own_origin(&pod.config);
    let mut next: Option<u64> = None;
    for (origin, info) in pods::stored(&pod.store)? {
        if own.as_deref() == Some(origin.as_str()) {
            continue;
        }
        if info.next_check_unix > now {
            next = Some(next.map_or(info.next_check_unix, |n| n.min(info.next_check_unix)));
            continue;
        }
        if checking.contains(&origin) || checking.len() >= CONCURRENT_CHECKS {
            continue;
        }
        checking.insert(origin.clone());
        let pod = pod.clone();
        let timing = *timing;
        checks.spawn(async move {
            if let Err(e) = check_pod(&pod, &timing, &origin).await {
                tracing::error!(%origin, "backups: pod check: {e}");
            }
            origin
        });
    }
    Ok(next)
}

/// Reads every known pod's NodeInfo now, one after the other (tests and benchmarks;
/// the worker reads them on its own schedule).
pub async fn refresh_pods(pod: &Arc<Pod>) -> Result<()> {
    pods::ensure_vetted(&pod.store, &pod.config)?;
    let timing = Timing::from_config(&pod.config);
    let own = pods::own_origin(&pod.config);
    for (origin, _) in pods::stored(&pod.store)? {
        if own.as_deref() != Some(origin.as_str()) {
            check_pod(pod, &timing, &origin).await?;
        }
    }
    Ok(())
}

/// Reads one pod's NodeInfo, records it, and nudges the accounts it concerns: those on
/// the pod when it stopped taking backups, those waiting for a pod when it started.
pub(super) async fn check_pod(pod: &Arc<Pod>, timing: &Timing, origin: &str) -> Result<()> {
    // Our own schedule paces these reads; a failure cached by another caller must not
    // hide a pod that came back.
    pod.http.forget_failures(origin);
    let http = pod.http.clone();
    let target = origin.to_string();
    let outcome = tokio::task::spawn_blocking(move || pods::fetch_nodeinfo(&http, &target))
        .await
        .map_err(Error::internal)?;
    let now = now_unix();
    match &outcome {
        Ok(facts) => tracing::debug!(%origin, accepts = facts.accepts_backups, "backups: NodeInfo read"),
        Err(e) => tracing::info!(%origin, "backups: NodeInfo not read: {e}"),
    }
    // A vetted pod, or one that took backups, that could not be read is tried again
    // within the hour; any other pod at the usual interval.
    let relied_on = pods::vetted_origins(&pod.config).iter().any(|o| o == origin)
        || pods::pod(&pod.store, origin)?.is_some_and(|i| i.accepting());
    let next = match &outcome {
        Err(_) if relied_on => now + timing.pod_check_interval.min(3600),
        _ => now + timing.pod_check_interval,
    };
    let (before, after) = pods::record_check(&pod.store, origin, &outcome, now, next)?;
    let opened = after.accepting() && !before.accepting();
    let closed = after.refuses() && !before.refuses();
    if !opened && !closed {
        return Ok(());
    }
    let concerned: Vec<String> = pod
        .store
        .sync_states()?
        .into_iter()
        .filter(|(_, s)| {
            (closed && s.pod.as_deref() == Some(origin)) || (opened && (s.slot == SlotState::NoPod || s.pod_refuses))
        })
        .map(|(u, _)| u)
        .collect();
    if concerned.is_empty() {
        return Ok(());
    }
    tracing::info!(
        %origin,
        accounts = concerned.len(),
        "backups: pod {}",
        if closed { "no longer takes backups" } else { "takes backups now" }
    );
    pod.store.transaction(|tx| {
        for username in &concerned {
            tx.nudge(
                username,
                Nudge {
                    changed_unix: None,
                    now: true,
                },
            )?;
        }
        Ok(())
    })?;
    pod.signals.backups.ring();
    Ok(())
}
