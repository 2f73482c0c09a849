//! What the settings page shows of an account's backup, and the user's own choice of
//! pod.

use super::*;

// ---------------------------------------------------------------------------------
// What the user sees
// ---------------------------------------------------------------------------------

/// An account's backups as its settings show them.
#[derive(Clone, Debug)]
pub struct Overview {
    /// Why backups are not running, or `None` when they are.
    pub off: Option<&'static str>,
    pub state: SyncState,
    /// The current pod as the directory knows it.
    pub pod: Option<PodView>,
    /// Pods the user may choose (available now; vetted first), the current one excluded.
    pub choices: Vec<PodView>,
    /// The short fingerprint of the account key, which the holder's mail shows too.
    pub short_fingerprint: Option<String>,
    /// Since when backups have not succeeded, once that is longer than `warn_after_failing`.
    pub failing_too_long: Option<u64>,
    /// A pod the user picked that the worker has not applied yet.
    pub pending_choice: Option<String>,
}

/// The backups of `account`, for its settings.
pub fn overview(pod: &Pod, account: &Account) -> Result<Overview> {
    let timing = Timing::from_config(&pod.config);
    let state = pod.store.sync_state(&account.username)?.unwrap_or_else(SyncState::new);
    let directory = pods::directory(&pod.store, &pod.config)?;
    let current = state
        .pod
        .as_ref()
        .and_then(|o| directory.iter().find(|p| &p.origin == o).cloned());
    let choices = directory
        .into_iter()
        .filter(|p| p.available && Some(&p.origin) != state.pod.as_ref())
        .collect();
    let short_fingerprint = crate::backup::push::AccountKey::from_pem(&account.public_key_pem)
        .ok()
        .map(|k| k.fingerprint().short());
    let now = now_unix();
    let failing_too_long = state
        .failing_since
        .filter(|since| now >= since.saturating_add(timing.warn_after));
    Ok(Overview {
        off: why_off(account),
        pending_choice: pod.store.backup_choice(&account.username)?,
        state,
        pod: current,
        choices,
        short_fingerprint,
        failing_too_long,
    })
}

/// The user picks `url` as their backup pod: it must be available now (vetted or not)
/// and not this pod. The worker applies it at once: the old pod is left behind, the
/// first push to the new one goes out, and the user is mailed.
pub async fn choose(pod: &Pod, account: &Account, url: &str) -> Result<String> {
    if let Some(why) = why_off(account) {
        return Err(Error::Conflict(format!("backups are not running: {why}")));
    }
    let origin = crate::http_client::origin_of(url)?;
    let available = pods::available(&pod.store, &pod.config, 0, &[])?;
    if !available.iter().any(|p| p.origin == origin) {
        return Err(Error::bad(format!(
            "{} is not available as a backup pod now; choose one from the list",
            host_of(&origin)
        )));
    }
    pod.store.transaction(|tx| {
        tx.put_backup_choice(&account.username, &origin)?;
        tx.nudge(
            &account.username,
            Nudge {
                changed_unix: None,
                now: true,
            },
        )
    })?;
    pod.store.durable().await?;
    pod.signals.backups.ring();
    tracing::info!(username = %account.username, %origin, "backups: the user chose a pod");
    Ok(origin)
}

pub(super) fn diaspora_id(pod: &Pod, account: &Account) -> String {
    account.diaspora_id(&pod.config.public_host())
}
