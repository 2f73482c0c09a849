//! The durable queue of people to discover in the background. The contacts an archive
//! brings (an import, a restore, a move-in) are found over WebFinger + hCard after the
//! account is created, so that this pod holds their keys while their pods still answer,
//! and a later move of theirs can be verified and re-pointed even once their old pod is
//! gone.
//!
//! Owns:
//! - **what is queued** ([`queue_in`], inside the unit of work that creates the
//!   account): contacts with a valid diaspora ID, not on this pod, not in the people
//!   store yet and not queued already, at most `federation.discovery_queue_max` people
//!   in all (the rest are counted and logged, never queued);
//! - **the order**: by pod. One person of a pod at a time, at most
//!   `federation.discoveries_per_host_per_minute` per pod and
//!   `federation.discoveries_per_minute` in all, [`CONCURRENCY`] pods at once;
//! - **what an answer does** ([`discover_next`]): a person found is stored only when the
//!   people store does not know them yet — a stored person is never overwritten, so a
//!   stored key stays (the rule of [`crate::people`]); a final answer (no such account,
//!   an unusable document) drops that person; a pod that does not answer backs off as a
//!   whole ([`crate::retry::Backoff`], doubling from a minute to six hours), a person it
//!   failed on [`MAX_ATTEMPTS`] times is dropped, and a pod still failing
//!   `federation.discovery_retry_for` after its first failure is given up together with
//!   everyone queued for it. So hosts that never answer cost a bounded number of
//!   attempts, not one per contact;
//! - [`QueueStore`] and [`QueueTx`], the storage this needs (implemented on sled in
//!   `store::people_queue`; key layouts on the `discovery_*` trees).
//!
//! Not owned: discovery itself ([`crate::people::try_fetch_person`]), the people store
//! ([`crate::people`]), which contacts an archive holds ([`crate::account::archive`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::account::now_unix;
use crate::config::Config;
use crate::federation::entities::valid_diaspora_id;
use crate::people::{try_fetch_person, PeopleStore, PeopleTx, TxResult};
use crate::pod::Pod;
use crate::ratelimit::RateLimiter;
use crate::retry::Backoff;
use crate::{Error, Result};

/// Pods asked at the same time.
pub const CONCURRENCY: usize = 4;

/// Failed attempts on one person (each while their pod did not answer) before they are
/// dropped, so that one person a pod keeps failing on does not hold up the others.
pub const MAX_ATTEMPTS: u32 = 5;

/// Removals per unit of work when a pod is given up (a pod can have thousands queued).
const REMOVALS_PER_UNIT: usize = 1000;

/// One person waiting to be discovered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedPerson {
    /// When they were queued (Unix seconds).
    pub queued_unix: u64,
    /// Attempts that failed because their pod did not answer.
    pub attempts: u32,
}

/// A pod with people queued.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// When its next person is asked for (Unix seconds).
    pub next_unix: u64,
    /// Attempts in a row on which it did not answer.
    pub failures: u32,
    /// When the current run of failures began.
    pub failing_since: Option<u64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// The storage the queue needs, outside a unit of work.
pub trait QueueStore {
    /// At most `limit` hosts whose next attempt is due at `now` or earlier, earliest first.
    fn due_hosts(&self, now: u64, limit: usize) -> Result<Vec<String>>;
    /// The earliest scheduled attempt.
    fn next_due(&self) -> Result<Option<u64>>;
    /// The first person queued for `host` (in diaspora ID order).
    fn first_queued(&self, host: &str) -> Result<Option<(String, QueuedPerson)>>;
    /// Every diaspora ID queued for `host`.
    fn queued_on(&self, host: &str) -> Result<Vec<String>>;
    /// How many people are queued in all.
    fn queued_count(&self) -> Result<u64>;
    /// Every host with people queued, and its state.
    fn hosts(&self) -> Result<Vec<(String, HostState)>>;
}

/// The same inside a unit of work, and the writes.
pub trait QueueTx {
    /// How many people are queued in all.
    fn queued_count(&self) -> TxResult<u64>;
    fn queued(&self, host: &str, diaspora_id: &str) -> TxResult<Option<QueuedPerson>>;
    /// Queues or updates a person (the count follows).
    fn put_queued(&self, host: &str, diaspora_id: &str, person: &QueuedPerson) -> TxResult<()>;
    /// Removes a person; false when they were not queued.
    fn remove_queued(&self, host: &str, diaspora_id: &str) -> TxResult<bool>;
    fn host(&self, host: &str) -> TxResult<Option<HostState>>;
    /// Writes a host's state and moves its schedule entry to `state.next_unix`; `None`
    /// removes both.
    fn put_host(&self, host: &str, state: Option<&HostState>) -> TxResult<()>;
}

/// How the queue is worked (from the `federation.discover*` options).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub max_queued: u64,
    /// Seconds between two people of one pod.
    pub host_interval_secs: u64,
    pub per_minute: u32,
    pub backoff: Backoff,
    pub allow_http: bool,
}

impl Policy {
    pub fn from_config(config: &Config) -> Policy {
        let per_host = u64::from(config.federation.discoveries_per_host_per_minute.max(1));
        Policy {
            max_queued: config.federation.discovery_queue_max,
            host_interval_secs: 60_u64.div_ceil(per_host),
            per_minute: config.federation.discoveries_per_minute,
            backoff: Backoff {
                first: Duration::from_secs(60),
                max: Duration::from_secs(6 * 3600),
                give_up_after: config.federation.discovery_retry_for.get(),
            },
            allow_http: config.federation.allow_http,
        }
    }
}

/// What [`queue_in`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queued {
    /// People queued now.
    pub queued: usize,
    /// People left out because the queue holds `discovery_queue_max` already.
    pub over_limit: usize,
}

/// The host part of a diaspora ID (`user@host[:port]`).
pub fn host_of(diaspora_id: &str) -> Option<&str> {
    diaspora_id.split_once('@').map(|(_, host)| host)
}

/// Inside a unit of work: queues each of `ids` that is a valid diaspora ID on another
/// pod than `own_host`, not stored in the people store and not queued yet, while the
/// queue holds fewer than `policy.max_queued`. Ring the pod's `signals.discovery` once
/// the unit is durable.
pub fn queue_in<T: QueueTx + PeopleTx>(
    tx: &T,
    policy: &Policy,
    own_host: &str,
    ids: &[&str],
    now: u64,
) -> TxResult<Queued> {
    let mut outcome = Queued::default();
    let mut count = tx.queued_count()?;
    for &id in ids {
        let Some(host) = host_of(id).filter(|host| valid_diaspora_id(id) && *host != own_host) else {
            continue;
        };
        if tx.person(id)?.is_some() || tx.queued(host, id)?.is_some() {
            continue;
        }
        if count >= policy.max_queued {
            outcome.over_limit += 1;
            continue;
        }
        tx.put_queued(
            host,
            id,
            &QueuedPerson {
                queued_unix: now,
                attempts: 0,
            },
        )?;
        count += 1;
        outcome.queued += 1;
        if tx.host(host)?.is_none() {
            tx.put_host(
                host,
                Some(&HostState {
                    next_unix: now,
                    ..HostState::default()
                }),
            )?;
        }
    }
    Ok(outcome)
}

/// Logs what [`queue_in`] did for an arrival.
pub fn log_queued(username: &str, queued: Queued) {
    if queued.queued > 0 {
        tracing::info!(%username, people = queued.queued, "archive contacts queued for discovery");
    }
    if queued.over_limit > 0 {
        tracing::warn!(
            %username,
            people = queued.over_limit,
            "archive contacts not queued for discovery: the queue is full (federation.discovery_queue_max)"
        );
    }
}

/// What one step of the worker did for a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nobody is queued for the host any more; it left the schedule.
    Idle,
    /// The person was in the people store already: nothing asked, nothing changed.
    Known(String),
    /// Found and stored.
    Found(String),
    /// Dropped: why.
    Dropped(String, String),
    /// Their pod did not answer; the pod is asked again at this time.
    Retry(String, u64),
    /// The pod has failed for too long: this many people queued for it were dropped.
    GaveUp(usize),
}

/// Works on the first person queued for `host` at time `now`: see the module doc.
pub async fn discover_next(pod: &Pod, policy: &Policy, host: &str, now: u64) -> Result<Step> {
    let store = &pod.store;
    let Some((id, queued)) = store.first_queued(host)? else {
        store.transaction(|tx| tx.put_host(host, None))?;
        return Ok(Step::Idle);
    };
    if store.person(&id)?.is_some() {
        store.transaction(|tx| tx.remove_queued(host, &id))?;
        return Ok(Step::Known(id));
    }
    let (http, fetch_id, allow_http) = (pod.http.clone(), id.clone(), policy.allow_http);
    let fetched = tokio::task::spawn_blocking(move || try_fetch_person(&http, &fetch_id, allow_http))
        .await
        .map_err(|e| Error::internal(format!("discovery task: {e}")))?;
    let answered = HostState {
        next_unix: now + policy.host_interval_secs,
        ..HostState::default()
    };
    let step = match fetched {
        Ok(person) => {
            store.transaction(|tx| {
                // Stored meanwhile (a page, a message): that one stays.
                if tx.person(&person.diaspora_id)?.is_none() {
                    tx.put_person(&person)?;
                }
                tx.remove_queued(host, &id)?;
                tx.put_host(host, Some(&answered))
            })?;
            Step::Found(id)
        }
        Err(unfetched) if !unfetched.pod_failed => {
            store.transaction(|tx| {
                tx.remove_queued(host, &id)?;
                tx.put_host(host, Some(&answered))
            })?;
            Step::Dropped(id, unfetched.error.to_string())
        }
        Err(unfetched) => {
            let why = unfetched.error.to_string();
            let mut state = store.transaction(|tx| tx.host(host))?.unwrap_or_default();
            let since = *state.failing_since.get_or_insert(now);
            if now.saturating_sub(since) >= policy.backoff.give_up_after.as_secs() {
                return give_up(pod, host, &why).await;
            }
            state.failures += 1;
            state.next_unix = now + policy.backoff.delay(state.failures).as_secs();
            state.last_error = Some(why.clone());
            let attempts = queued.attempts + 1;
            store.transaction(|tx| {
                if attempts >= MAX_ATTEMPTS {
                    tx.remove_queued(host, &id)?;
                } else {
                    tx.put_queued(
                        host,
                        &id,
                        &QueuedPerson {
                            attempts,
                            ..queued.clone()
                        },
                    )?;
                }
                tx.put_host(host, Some(&state))
            })?;
            if attempts >= MAX_ATTEMPTS {
                Step::Dropped(id, format!("{why} ({MAX_ATTEMPTS} attempts)"))
            } else {
                Step::Retry(id, state.next_unix)
            }
        }
    };
    store.durable().await?;
    match &step {
        Step::Found(id) => tracing::info!(diaspora_id = %id, "archive contact discovered"),
        Step::Dropped(id, why) => tracing::warn!(diaspora_id = %id, "archive contact not discovered: {why}"),
        Step::Retry(id, at) => tracing::debug!(diaspora_id = %id, next = at, "archive contact's pod did not answer"),
        _ => {}
    }
    Ok(step)
}

/// Drops everyone queued for a pod that has failed for too long, and the pod itself.
async fn give_up(pod: &Pod, host: &str, why: &str) -> Result<Step> {
    let ids = pod.store.queued_on(host)?;
    for chunk in ids.chunks(REMOVALS_PER_UNIT) {
        pod.store.transaction(|tx| {
            for id in chunk {
                tx.remove_queued(host, id)?;
            }
            Ok(())
        })?;
    }
    pod.store.transaction(|tx| tx.put_host(host, None))?;
    pod.store.durable().await?;
    tracing::warn!(
        %host,
        people = ids.len(),
        "gave up discovering archive contacts: their pod has not answered for federation.discovery_retry_for ({why})"
    );
    Ok(Step::GaveUp(ids.len()))
}

/// Works the queue until `shutdown`.
pub async fn run(pod: Arc<Pod>, mut shutdown: watch::Receiver<bool>) {
    let policy = Policy::from_config(&pod.config);
    let overall = RateLimiter::new(policy.per_minute.min(10), policy.per_minute, Duration::from_secs(60));
    let mut tasks: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    let mut busy: HashMap<tokio::task::Id, String> = HashMap::new();
    loop {
        let now = now_unix();
        let mut limited = false;
        match pod.store.due_hosts(now, CONCURRENCY + busy.len()) {
            Ok(hosts) => {
                for host in hosts {
                    if tasks.len() >= CONCURRENCY {
                        break;
                    }
                    if busy.values().any(|h| *h == host) {
                        continue;
                    }
                    if !overall.allow("all") {
                        limited = true;
                        break;
                    }
                    let (task_pod, task_host) = (pod.clone(), host.clone());
                    let handle = tasks.spawn(async move {
                        if let Err(e) = discover_next(&task_pod, &policy, &task_host, now_unix()).await {
                            tracing::error!(host = %task_host, "discovery queue: {e}");
                            defer(&task_pod, &task_host, now_unix() + 60);
                        }
                    });
                    busy.insert(handle.id(), host);
                }
            }
            Err(e) => tracing::error!("discovery queue: reading the schedule: {e}"),
        }
        let next = pod.store.next_due().unwrap_or_else(|e| {
            tracing::error!("discovery queue: reading the schedule: {e}");
            None
        });
        let mut sleep = match next {
            _ if limited => Duration::from_secs(1),
            Some(at) => Duration::from_secs(at.saturating_sub(now_unix())),
            None => Duration::from_secs(3600),
        };
        if sleep.is_zero() {
            // Due, but its pod is being asked already or every place is taken.
            sleep = Duration::from_millis(200);
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = pod.signals.discovery.rung() => {}
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                match done {
                    Ok((id, ())) => {
                        busy.remove(&id);
                    }
                    Err(e) => {
                        // A step that stopped midway must not make its pod due at once forever.
                        if let Some(host) = busy.remove(&e.id()) {
                            tracing::error!(%host, "discovery queue: a step stopped: {e}");
                            defer(&pod, &host, now_unix() + 60);
                        }
                    }
                }
            }
            _ = tokio::time::sleep(sleep) => {}
        }
    }
    tasks.abort_all();
}

/// Moves a host's next attempt to `at` (after a step that failed midway).
fn defer(pod: &Pod, host: &str, at: u64) {
    let moved = pod.store.transaction(|tx| match tx.host(host)? {
        Some(state) => tx.put_host(host, Some(&HostState { next_unix: at, ..state })),
        None => Ok(()),
    });
    if let Err(e) = moved {
        tracing::error!(%host, "discovery queue: cannot reschedule: {e}");
    }
}

/// The queue as the podmin sees it: each host, its state and how many wait for it.
pub fn overview<S: QueueStore>(store: &S) -> Result<Vec<(String, HostState, usize)>> {
    let mut out = Vec::new();
    for (host, state) in store.hosts()? {
        let waiting = store.queued_on(&host)?.len();
        out.push((host, state, waiting));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
