//! One look at one account: settles who holds its backup (choose, follow an email
//! change, leave a refusing or failing pod, apply the user's choice, stop), pushes when
//! due, checks the status weekly, sends owed deletes, warns when failing.

use super::*;

// ---------------------------------------------------------------------------------
// One look at one account
// ---------------------------------------------------------------------------------

/// Looks at one account: settles who holds its backup, pushes when due, checks the
/// holder's copy when due, sends owed deletes, warns. `now` decides what is due (the
/// benchmark passes a day later); what is sent is dated by the clock.
pub async fn look(pod: &Arc<Pod>, sync: &BackupSync, username: &str, now: u64) -> Result<Report> {
    let timing = Timing::from_config(&pod.config);
    let mut report = Report {
        looks: 1,
        ..Default::default()
    };
    let Some(mut state) = pod.store.sync_state(username)? else {
        return Ok(report);
    };
    let account = AccountStore::account(&pod.store, username)?;
    let running = account.as_ref().filter(|a| why_off(a).is_none());
    if let Some(why) = account.as_ref().and_then(why_off) {
        tracing::debug!(%username, "backups: not running: {why}");
    }
    for _ in 0..MAX_ROUNDS {
        let choice = pod.store.backup_choice(username)?;
        let mut mails = Vec::new();
        match running {
            Some(account) => settle(pod, &timing, &mut state, account, choice.as_deref(), now, &mut mails)?,
            None => stop(&mut state, now),
        }
        save(pod, username, &mut state, &mails, choice.as_deref(), !mails.is_empty()).await?;
        let Some(account) = running else { break };
        let mut again = false;
        if pushing(&state) && state.push_due.is_some_and(|d| d <= now) {
            again |= push(pod, sync, &timing, &mut state, account, now, &mut report).await?;
        }
        if !again && pushing(&state) && state.acked.is_some() && state.status_due.is_some_and(|d| d <= now) {
            again |= status_check(pod, &timing, &mut state, account, now, &mut report).await?;
        }
        if !again {
            break;
        }
    }
    send_deletes(pod, &timing, &mut state, account.as_ref(), now, &mut report).await?;
    let mut mails = Vec::new();
    if let Some(account) = running {
        warn_if_failing(pod, &timing, &mut state, account, now, &mut mails);
    }
    // Durable when deletes went out, so a restart does not send them again.
    save(pod, username, &mut state, &mails, None, report.deletes > 0).await?;
    Ok(report)
}

/// Whether pushes go out: a pod is chosen, does not refuse, and did not restore the backup.
pub(super) fn pushing(state: &SyncState) -> bool {
    state.pod.is_some() && !state.pod_refuses && state.slot != SlotState::Restored
}

/// Writes the state (its schedule with it), queues `mails` and takes the applied
/// choice, in one unit of work; durable when asked (or when mails are queued).
pub(super) async fn save(
    pod: &Pod,
    username: &str,
    state: &mut SyncState,
    mails: &[Mail],
    choice: Option<&str>,
    durable: bool,
) -> Result<()> {
    let timing = Timing::from_config(&pod.config);
    let wake = state.next_wake(&timing);
    let ids = mails
        .iter()
        .map(|_| pod.store.generate_id())
        .collect::<Result<Vec<_>>>()?;
    pod.store.transaction(|tx| {
        tx.put_sync_state(username, state, wake)?;
        for (id, mail) in ids.iter().zip(mails) {
            pod.mailer.enqueue_in(tx, *id, mail)?;
        }
        if let Some(choice) = choice {
            tx.take_backup_choice(username, choice)?;
        }
        Ok(())
    })?;
    state.scheduled = wake;
    if durable || !mails.is_empty() {
        pod.store.durable().await?;
    }
    if !mails.is_empty() {
        pod.mailer.wake();
    }
    Ok(())
}

/// Backups stop (opt-out, no pass phrase, closed): the current pod is left behind and
/// every owed delete is sent at once.
pub(super) fn stop(state: &mut SyncState, now: u64) {
    if let Some(old) = state.pod.take() {
        leave(state, old, true, now);
    }
    for left in &mut state.left_behind {
        left.armed = true;
    }
    state.slot = SlotState::Off;
    state.acked = None;
    state.chosen_by_user = false;
    state.push_due = None;
    state.status_due = None;
    state.force_push = false;
    state.clear_failures();
    state.pod_refuses = false;
}

/// Leaves the slot at `origin` (under `state.email`): when anything may have been sent
/// there, its farewell delete is owed, armed now or once the next pod acknowledges.
pub(super) fn leave(state: &mut SyncState, origin: String, armed: bool, now: u64) {
    if let Some(delete) = state.farewell.take() {
        state.next_sequence = state.next_sequence.max(delete.sequence + 1);
        state
            .left_behind
            .retain(|l| !(l.origin == origin && l.delete.email == delete.email));
        state.left_behind.push(LeftBehind {
            origin,
            delete,
            armed,
            created_unix: now,
            attempts: 0,
            next_attempt_unix: now,
            last_error: None,
        });
    }
}

/// Why a change of pod happens (for the mail).
pub(super) enum Switch {
    /// The first pod of the account.
    First,
    /// The user picked it.
    UserChoice,
    /// Moved away from a pod: why.
    Moved(String),
}

/// Makes `origin` the account's pod: the old one is left behind (its delete waits for
/// the new pod's first acknowledgement), the first push is due at once, and the user is
/// mailed where the backup lives.
#[allow(clippy::too_many_arguments)]
pub(super) fn switch_to(
    pod: &Pod,
    state: &mut SyncState,
    account: &Account,
    origin: String,
    why: Switch,
    now: u64,
    mails: &mut Vec<Mail>,
) {
    let old = state.pod.take();
    if let Some(old) = old.clone() {
        leave(state, old, false, now);
    }
    state.chosen_by_user = matches!(why, Switch::UserChoice);
    state.pod = Some(origin.clone());
    state.pod_since_unix = now;
    state.email = account.email.clone();
    state.slot = SlotState::Pending;
    state.acked = None;
    state.push_due = Some(now);
    state.force_push = false;
    state.status_due = None;
    state.clear_failures();
    state.pod_refuses = false;
    tracing::info!(username = %account.username, from = old.as_deref().unwrap_or("-"), to = %origin, "backups: pod chosen");
    mails.push(mail_pod_chosen(pod, account, &origin, old.as_deref(), &why));
}

/// Settles who holds the backup of a running account.
#[allow(clippy::too_many_arguments)]
pub(super) fn settle(
    pod: &Pod,
    timing: &Timing,
    state: &mut SyncState,
    account: &Account,
    choice: Option<&str>,
    now: u64,
    mails: &mut Vec<Mail>,
) -> Result<()> {
    if state.slot == SlotState::Off {
        state.slot = if state.pod.is_some() {
            SlotState::Pending
        } else {
            SlotState::NoPod
        };
    }
    // The address changed: the old address's slot is deleted once the new one holds a
    // backup (the same pod; docs/holder-api.md, "One slot per (email, fingerprint)").
    if let Some(current) = state.pod.clone() {
        if state.email != account.email {
            leave(state, current.clone(), false, now);
            state.email = account.email.clone();
            state.acked = None;
            state.slot = SlotState::Pending;
            state.push_due = Some(now);
            state.status_due = None;
            mails.push(mail_pod_chosen(pod, account, &current, None, &Switch::First));
        }
    }
    // The user's own choice: any available pod (vetted or not), never this one.
    if let Some(choice) = choice {
        if state.pod.as_deref() != Some(choice) || state.slot == SlotState::Restored {
            let candidates = pods::available(&pod.store, &pod.config, 0, &[])?;
            if candidates.iter().any(|p| p.origin == choice) {
                switch_to(pod, state, account, choice.to_string(), Switch::UserChoice, now, mails);
            }
        }
    }
    if state.slot == SlotState::Restored {
        return Ok(());
    }
    // Leave a pod that refuses backups, or that kept failing past the period.
    if let Some(current) = state.pod.clone() {
        let refuses = pods::pod(&pod.store, &current)?.is_some_and(|i| i.refuses());
        let failing_long = state
            .failing_since
            .is_some_and(|since| now >= since.saturating_add(timing.move_after));
        state.pod_refuses = false;
        if refuses || failing_long {
            let candidates = pods::available(&pod.store, &pod.config, state.last_size, &[&current])?;
            match pods::choose_automatic(&candidates, pod.config.backups.choose_from) {
                Some(next) => {
                    let why = if refuses {
                        format!("{} no longer accepts backups", host_of(&current))
                    } else {
                        format!(
                            "backups to {} have not succeeded since {}",
                            host_of(&current),
                            utc(state.failing_since.unwrap_or(now))
                        )
                    };
                    switch_to(pod, state, account, next, Switch::Moved(why), now, mails);
                }
                None if refuses => {
                    state.pod_refuses = true;
                    state.failing_since.get_or_insert(now);
                    state.last_error = Some(Event {
                        at_unix: now,
                        text: format!(
                            "{} no longer accepts backups; waiting for another backup pod",
                            host_of(&current)
                        ),
                    });
                    state.push_due = Some(now + timing.pod_check_interval);
                }
                None => {}
            }
        }
    }
    // No pod yet: the automatic choice.
    if state.pod.is_none() {
        let candidates = pods::available(&pod.store, &pod.config, state.last_size, &[])?;
        match pods::choose_automatic(&candidates, pod.config.backups.choose_from) {
            Some(origin) => switch_to(pod, state, account, origin, Switch::First, now, mails),
            None => {
                state.slot = SlotState::NoPod;
                state.email = account.email.clone();
                state.failing_since.get_or_insert(now);
                state.push_due = Some(now + timing.pod_check_interval);
            }
        }
    }
    Ok(())
}

/// Records a failed attempt: backoff, and since when nothing succeeds.
pub(super) fn failed(state: &mut SyncState, timing: &Timing, now: u64, text: String) {
    state.failures = state.failures.saturating_add(1);
    state.failing_since.get_or_insert(now);
    state.push_due = Some(now + timing.backoff.delay(state.failures).as_secs());
    state.last_error = Some(Event { at_unix: now, text });
}

/// The holder answered 410: the backup was restored, so the account lives elsewhere.
pub(super) fn restored(
    pod: &Pod,
    state: &mut SyncState,
    account: &Account,
    origin: &str,
    now: u64,
    mails: &mut Vec<Mail>,
) {
    if state.slot != SlotState::Restored {
        tracing::warn!(username = %account.username, %origin, "backups: the backup was restored elsewhere (410)");
        mails.push(mail_restored(pod, account, origin));
    }
    state.slot = SlotState::Restored;
    state.farewell = None;
    state.push_due = None;
    state.status_due = None;
    state.force_push = false;
    state.failing_since = None;
    state.failures = 0;
    state.last_error = Some(Event {
        at_unix: now,
        text: format!("{} answered 410: this backup was restored", host_of(origin)),
    });
}

/// Mails the user once when backups have not succeeded for `backups.warn_after_failing`.
pub(super) fn warn_if_failing(
    pod: &Pod,
    timing: &Timing,
    state: &mut SyncState,
    account: &Account,
    now: u64,
    mails: &mut Vec<Mail>,
) {
    let Some(since) = state.failing_since else {
        return;
    };
    if state.warned || now < since.saturating_add(timing.warn_after) {
        return;
    }
    state.warned = true;
    tracing::warn!(username = %account.username, since, "backups: telling the user that backups are failing");
    mails.push(mail_failing(pod, account, state, since));
}
