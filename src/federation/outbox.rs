//! The durable outbox: every message lifeboat sends to another pod (contact messages,
//! AccountMigration, account deletions) is a [`Delivery`] stored before it is sent, so
//! deliveries survive restarts. One worker sends them with bounded concurrency, a
//! per-request timeout (the HTTP client's), at most one request in flight per pod and a
//! per-pod rate, and retries failures with capped exponential backoff for a configured
//! period (30 days by default), after which a delivery is marked failed. Users see the
//! state of each delivery of a topic (e.g. their move) and can retry a failed one.
//!
//! A message body is stored once, by its SHA-256, however many deliveries carry it (a
//! move sends one envelope to thousands of pods), and apart from the deliveries, so that
//! scheduling, listing and recording an attempt never read or rewrite it. It is read
//! from the store when a delivery is sent. A delivery holds its body while it may still
//! be sent (pending or failed); the body goes when the last such delivery is delivered
//! or cancelled.
//!
//! Trees: `outbox` (u64 id -> Delivery), `outbox_due` (next attempt Unix seconds BE u64,
//! id BE u64 -> ()) — the schedule of pending deliveries — `outbox_topics`
//! (topic 0x00 id BE u64 -> ()) listing the deliveries of a topic, `outbox_bodies`
//! (SHA-256 -> body) and `outbox_body_refs` (SHA-256 -> u64 BE, how many deliveries
//! hold the body).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::ConflictableTransactionError;
use tokio::sync::{watch, Notify};

use crate::account::now_unix;
use crate::http_client::HttpClient;
use crate::ratelimit::RateLimiter;
use crate::retry::Backoff;
use crate::store::{decode, decode_raw, encode_raw, Store, Tree, Tx};
use crate::{Error, Result};

/// Where a delivery stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// Answered 2xx at this time.
    Delivered { at_unix: u64 },
    /// Gave up after the retry period; the user may retry.
    Failed,
}

/// One message for one pod.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub id: u64,
    /// What this delivery belongs to, e.g. `migration:alice`; deliveries are listed by it.
    pub topic: String,
    /// The pod's origin, `https://host[:port]`.
    pub origin: String,
    /// The path on that pod, e.g. `/receive/public`.
    pub path: String,
    pub content_type: String,
    /// The SHA-256 of the body, its key in `outbox_bodies`.
    pub body_sha256: [u8; 32],
    pub created_unix: u64,
    pub attempts: u32,
    pub next_attempt_unix: u64,
    pub state: DeliveryState,
    pub last_error: Option<String>,
}

/// A message to queue. The body is shared: queueing one message for many pods clones
/// no bytes.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub topic: String,
    pub origin: String,
    pub path: String,
    pub content_type: String,
    pub body: Bytes,
}

/// How deliveries are worked.
#[derive(Clone, Copy, Debug)]
pub struct OutboxPolicy {
    pub concurrency: usize,
    pub per_pod_per_minute: u32,
    pub backoff: Backoff,
    /// `federation.allow_http`: when https fails without an answer, try http (tests).
    pub allow_http: bool,
}

/// The outbox. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    http: HttpClient,
    policy: OutboxPolicy,
    wake: Arc<Notify>,
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<Error>>;

fn due_key(at: u64, id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&at.to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

fn topic_key(topic: &str, id: u64) -> Vec<u8> {
    let mut key = topic.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

impl Outbox {
    pub fn new(store: Store, http: HttpClient, policy: OutboxPolicy) -> Outbox {
        Outbox {
            store,
            http,
            policy,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Queues a delivery inside a unit of work (`id` from `store.generate_id()`); call
    /// [`Outbox::wake`] once the unit is durable.
    pub fn enqueue_in(&self, tx: &Tx, id: u64, new: &NewDelivery) -> TxResult<()> {
        let now = now_unix();
        let body_sha256: [u8; 32] = Sha256::digest(&new.body).into();
        hold_body_in(tx, &body_sha256, &new.body)?;
        let delivery = Delivery {
            id,
            topic: new.topic.clone(),
            origin: new.origin.clone(),
            path: new.path.clone(),
            content_type: new.content_type.clone(),
            body_sha256,
            created_unix: now,
            attempts: 0,
            next_attempt_unix: now,
            state: DeliveryState::Pending,
            last_error: None,
        };
        tx.put(Tree::Outbox, &id.to_be_bytes(), &delivery)?;
        tx.tree(Tree::OutboxDue).insert(&due_key(now, id), &[])?;
        tx.tree(Tree::OutboxTopics).insert(topic_key(&new.topic, id), &[])?;
        Ok(())
    }

    /// Queues deliveries durably and wakes the worker.
    pub async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<()> {
        let ids = deliveries
            .iter()
            .map(|_| self.store.generate_id())
            .collect::<Result<Vec<_>>>()?;
        self.store.transaction(|tx| {
            for (id, new) in ids.iter().zip(deliveries) {
                self.enqueue_in(tx, *id, new)?;
            }
            Ok(())
        })?;
        self.store.durable().await?;
        self.wake();
        Ok(())
    }

    /// Wakes the worker (after deliveries were queued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The deliveries of a topic, oldest first.
    pub fn topic(&self, topic: &str) -> Result<Vec<Delivery>> {
        let mut prefix = topic.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for key in self.store.tree(Tree::OutboxTopics).scan_prefix(&prefix).keys() {
            let key = key?;
            let id = &key[prefix.len()..];
            if let Some(bytes) = self.store.tree(Tree::Outbox).get(id)? {
                out.push(decode::<Delivery>(&bytes)?);
            }
        }
        Ok(out)
    }

    /// The body a delivery sends, while it holds one (pending or failed).
    pub fn body(&self, delivery: &Delivery) -> Result<Option<Vec<u8>>> {
        Ok(self.stored_body(&delivery.body_sha256)?.map(|b| b.to_vec()))
    }

    /// A stored body without its version byte (a view of the store's bytes, no copy).
    fn stored_body(&self, sha256: &[u8; 32]) -> Result<Option<sled::IVec>> {
        let Some(value) = self.store.tree(Tree::OutboxBodies).get(sha256)? else {
            return Ok(None);
        };
        let len = decode_raw(&value)?.len();
        Ok(Some(value.subslice(value.len() - len, len)))
    }

    /// The ids of a topic's deliveries, oldest first (read outside a unit of work, e.g.
    /// for [`Outbox::cancel_pending_in`]).
    pub fn topic_ids(&self, topic: &str) -> Result<Vec<u64>> {
        let mut prefix = topic.as_bytes().to_vec();
        prefix.push(0);
        let mut ids = Vec::new();
        for key in self.store.tree(Tree::OutboxTopics).scan_prefix(&prefix).keys() {
            let key = key?;
            if let Ok(id) = <[u8; 8]>::try_from(&key[prefix.len()..]) {
                ids.push(u64::from_be_bytes(id));
            }
        }
        Ok(ids)
    }

    /// Inside a unit of work: removes those of `ids` that are still pending, for
    /// messages that a newer one to the same place makes obsolete (and that must not
    /// arrive after it). Delivered and failed ones stay listed. A delivery being
    /// attempted at this moment may still arrive; its outcome is then not recorded.
    /// Returns how many were removed.
    pub fn cancel_pending_in(&self, tx: &Tx, ids: &[u64]) -> TxResult<usize> {
        let mut removed = 0;
        for &id in ids {
            let Some(delivery) = tx.get::<Delivery>(Tree::Outbox, &id.to_be_bytes())? else {
                continue;
            };
            if delivery.state != DeliveryState::Pending {
                continue;
            }
            tx.tree(Tree::Outbox).remove(&id.to_be_bytes())?;
            tx.tree(Tree::OutboxDue)
                .remove(&due_key(delivery.next_attempt_unix, id))?;
            tx.tree(Tree::OutboxTopics).remove(topic_key(&delivery.topic, id))?;
            release_body_in(tx, &delivery.body_sha256)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Sends a delivery of `topic` again now (a failed one, or one still waiting).
    pub async fn retry(&self, topic: &str, id: u64) -> Result<()> {
        let origin = self.store.transaction(|tx| {
            let Some(mut delivery) = tx.get::<Delivery>(Tree::Outbox, &id.to_be_bytes())? else {
                return crate::store::abort(Error::NotFound("no such delivery".into()));
            };
            if delivery.topic != topic {
                return crate::store::abort(Error::NotFound("no such delivery".into()));
            }
            if matches!(delivery.state, DeliveryState::Delivered { .. }) {
                return Ok(delivery.origin);
            }
            tx.tree(Tree::OutboxDue)
                .remove(&due_key(delivery.next_attempt_unix, id))?;
            delivery.state = DeliveryState::Pending;
            delivery.next_attempt_unix = now_unix();
            tx.tree(Tree::OutboxDue)
                .insert(&due_key(delivery.next_attempt_unix, id), &[])?;
            tx.put(Tree::Outbox, &id.to_be_bytes(), &delivery)?;
            Ok(delivery.origin)
        })?;
        self.store.durable().await?;
        self.http.forget_failures(&origin);
        self.wake();
        Ok(())
    }

    /// Pending deliveries, for the podmin and for tests.
    pub fn pending_count(&self) -> usize {
        self.store.tree(Tree::OutboxDue).len()
    }

    /// Works the outbox until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
        let per_pod = Arc::new(RateLimiter::new(
            self.policy.per_pod_per_minute.min(10),
            self.policy.per_pod_per_minute,
            Duration::from_secs(60),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let now = now_unix();
            let mut next_due: Option<u64> = None;
            for entry in self.store.tree(Tree::OutboxDue).iter().keys() {
                if tasks.len() >= self.policy.concurrency {
                    break;
                }
                let Ok(key) = entry else { break };
                let at = u64::from_be_bytes(key[..8].try_into().unwrap_or_default());
                if at > now {
                    next_due = Some(at);
                    break;
                }
                let id = u64::from_be_bytes(key[8..16].try_into().unwrap_or_default());
                let delivery = match self
                    .store
                    .tree(Tree::Outbox)
                    .get(id.to_be_bytes())
                    .map(|b| b.map(|b| decode::<Delivery>(&b)))
                {
                    Ok(Some(Ok(d))) => d,
                    _ => {
                        tracing::error!(
                            id,
                            "outbox: a scheduled delivery is missing or damaged; dropping it from the schedule"
                        );
                        let _ = self.store.tree(Tree::OutboxDue).remove(&key);
                        continue;
                    }
                };
                {
                    let mut busy = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                    if busy.contains(&delivery.origin) || !per_pod.allow(&delivery.origin) {
                        continue;
                    }
                    busy.insert(delivery.origin.clone());
                }
                let outbox = self.clone();
                let in_flight = in_flight.clone();
                tasks.spawn(async move {
                    let origin = delivery.origin.clone();
                    if let Err(e) = outbox.attempt(delivery).await {
                        tracing::error!("outbox: {e}");
                    }
                    in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&origin);
                    outbox.wake();
                });
            }
            let sleep = match next_due {
                _ if tasks.len() >= self.policy.concurrency => Duration::from_secs(60),
                Some(at) => Duration::from_secs(at.saturating_sub(now_unix()).max(1)),
                None if self.pending_count() > 0 => Duration::from_secs(1),
                None => Duration::from_secs(300),
            };
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.wake.notified() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        tasks.abort_all();
    }

    async fn attempt(&self, delivery: Delivery) -> Result<()> {
        let outcome = match self.stored_body(&delivery.body_sha256)? {
            Some(body) => self.send(&delivery, body).await?,
            None => {
                tracing::error!(id = delivery.id, "outbox: a delivery's body is missing from the store");
                Err("its message is missing from this pod's store".to_string())
            }
        };
        let id = delivery.id;
        let now = now_unix();
        let (origin, topic) = (delivery.origin.clone(), delivery.topic.clone());
        self.store.transaction(|tx| {
            let Some(mut current) = tx.get::<Delivery>(Tree::Outbox, &id.to_be_bytes())? else {
                return Ok(());
            };
            tx.tree(Tree::OutboxDue)
                .remove(&due_key(current.next_attempt_unix, id))?;
            current.attempts += 1;
            match &outcome {
                Ok(()) => {
                    current.state = DeliveryState::Delivered { at_unix: now };
                    current.last_error = None;
                    release_body_in(tx, &current.body_sha256)?;
                }
                Err(error) => {
                    current.last_error = Some(error.clone());
                    if now.saturating_sub(current.created_unix) >= self.policy.backoff.give_up_after.as_secs() {
                        current.state = DeliveryState::Failed;
                    } else {
                        current.next_attempt_unix = now + self.policy.backoff.delay(current.attempts).as_secs();
                        tx.tree(Tree::OutboxDue)
                            .insert(&due_key(current.next_attempt_unix, id), &[])?;
                    }
                }
            }
            tx.put(Tree::Outbox, &id.to_be_bytes(), &current)
        })?;
        self.store.durable().await?;
        match outcome {
            Ok(()) => tracing::info!(%origin, %topic, "delivered"),
            Err(error) => tracing::warn!(%origin, %topic, "delivery failed: {error}"),
        }
        Ok(())
    }

    /// One POST of a delivery's body, off the async runtime.
    async fn send(&self, delivery: &Delivery, body: sled::IVec) -> Result<std::result::Result<(), String>> {
        let http = self.http.clone();
        let url = format!("{}{}", delivery.origin, delivery.path);
        let content_type = delivery.content_type.clone();
        let allow_http = self.policy.allow_http;
        let outcome = tokio::task::spawn_blocking(move || match http.post(&url, &content_type, &body) {
            // https first; http only when allowed and https gave no answer at all.
            Err(_) if allow_http && url.starts_with("https://") => {
                http.post(&url.replacen("https://", "http://", 1), &content_type, &body)
            }
            other => other,
        })
        .await
        .map_err(|e| Error::internal(format!("delivery task: {e}")))?;
        Ok(match outcome {
            Ok(response) if (200..300).contains(&response.status) => Ok(()),
            Ok(response) => Err(format!("answered {}", response.status)),
            Err(e) => Err(e.client_message()),
        })
    }
}

/// Inside a unit of work: one more delivery holds the body `sha256`; stores the body
/// when none held it.
fn hold_body_in(tx: &Tx, sha256: &[u8; 32], body: &[u8]) -> TxResult<()> {
    let refs = tx.tree(Tree::OutboxBodyRefs);
    let held = refs.get(sha256)?.map(|v| refs_count(&v)).unwrap_or(0);
    if held == 0 {
        tx.tree(Tree::OutboxBodies).insert(&sha256[..], encode_raw(body))?;
    }
    refs.insert(&sha256[..], &(held + 1).to_be_bytes())?;
    Ok(())
}

/// Inside a unit of work: one delivery fewer holds the body `sha256`; the last one
/// removes it.
fn release_body_in(tx: &Tx, sha256: &[u8; 32]) -> TxResult<()> {
    let refs = tx.tree(Tree::OutboxBodyRefs);
    match refs.get(sha256)?.map(|v| refs_count(&v)).unwrap_or(0) {
        0 | 1 => {
            refs.remove(&sha256[..])?;
            tx.tree(Tree::OutboxBodies).remove(&sha256[..])?;
        }
        held => {
            refs.insert(&sha256[..], &(held - 1).to_be_bytes())?;
        }
    }
    Ok(())
}

fn refs_count(value: &[u8]) -> u64 {
    u64::from_be_bytes(value.try_into().unwrap_or_default())
}

/// A delivery as schema 1 stored it, with its body inline.
#[derive(Deserialize)]
struct DeliveryV1 {
    id: u64,
    topic: String,
    origin: String,
    path: String,
    content_type: String,
    body: Vec<u8>,
    created_unix: u64,
    attempts: u32,
    next_attempt_unix: u64,
    state: DeliveryState,
    last_error: Option<String>,
}

/// The store upgrade from schema 1 to 2 (see [`crate::store::SCHEMA_VERSION`]): each
/// delivery's body moves into `outbox_bodies`, held by the deliveries that may still
/// send it; delivered ones keep none. Read first, then applied in one unit of work with
/// the new schema version, so a store is upgraded entirely or not at all.
pub struct Schema1Upgrade {
    deliveries: Vec<(sled::IVec, DeliveryV1)>,
}

impl Schema1Upgrade {
    /// Reads the schema 1 deliveries. One that does not decode is left as it is (the
    /// worker drops it from the schedule, `lifeboat check` reports it).
    pub fn read(store: &Store) -> Result<Schema1Upgrade> {
        let mut deliveries = Vec::new();
        for entry in store.tree(Tree::Outbox).iter() {
            let (key, value) = entry?;
            match decode::<DeliveryV1>(&value) {
                Ok(old) => deliveries.push((key, old)),
                Err(e) => tracing::error!(key = %hex::encode(&key), "outbox: a schema 1 delivery does not decode: {e}"),
            }
        }
        Ok(Schema1Upgrade { deliveries })
    }

    /// How many deliveries are upgraded.
    pub fn len(&self) -> usize {
        self.deliveries.len()
    }

    /// Writes the upgraded deliveries and their bodies.
    pub fn apply_in(&self, tx: &Tx) -> TxResult<()> {
        for (key, old) in &self.deliveries {
            let body_sha256: [u8; 32] = Sha256::digest(&old.body).into();
            if !matches!(old.state, DeliveryState::Delivered { .. }) {
                hold_body_in(tx, &body_sha256, &old.body)?;
            }
            let delivery = Delivery {
                id: old.id,
                topic: old.topic.clone(),
                origin: old.origin.clone(),
                path: old.path.clone(),
                content_type: old.content_type.clone(),
                body_sha256,
                created_unix: old.created_unix,
                attempts: old.attempts,
                next_attempt_unix: old.next_attempt_unix,
                state: old.state.clone(),
                last_error: old.last_error.clone(),
            };
            tx.put(Tree::Outbox, key, &delivery)?;
        }
        Ok(())
    }
}

/// Every value in the outbox trees decodes (for `lifeboat check`).
pub fn check_delivery(bytes: &[u8]) -> Result<()> {
    decode::<Delivery>(bytes).map(|_| ())
}

#[cfg(test)]
mod tests;
