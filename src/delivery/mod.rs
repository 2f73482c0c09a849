//! Delivery: the durable outbox every message to another pod goes through (contact
//! messages, profiles, AccountMigration, account deletions, relays). Sharing and
//! arrivals queue [`NewDelivery`]s here inside their own units of work; one worker
//! ([`worker`]) sends them.
//!
//! Every message is a [`Delivery`] stored before it is sent, so deliveries survive
//! restarts. The worker sends with bounded concurrency, a per-request timeout (the
//! HTTP client's), at most one request in flight per pod and a per-pod rate, and
//! retries failures with capped exponential backoff for a configured period (30 days
//! by default), after which a delivery is marked failed. Users see the state of each
//! delivery of a topic (e.g. their move) and can retry a failed one.
//!
//! A message body is stored once, by its SHA-256, however many deliveries carry it (a
//! move sends one envelope to thousands of pods), and apart from the deliveries, so that
//! scheduling, listing and recording an attempt never read or rewrite it. A delivery
//! holds its body while it may still be sent (pending or failed); the body goes when
//! the last such delivery is delivered or cancelled.
//!
//! Declares [`OutboxStore`] and [`OutboxTx`], the storage it needs; `store::outbox`
//! implements them (and documents the trees).

pub mod worker;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http_client::HttpClient;
use crate::now_unix;
use crate::pod::Signal;
use crate::retry::Backoff;
use crate::store::{abort, Store, StoredBytes, Tx, TxResult};
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
    /// The SHA-256 of the body, its key among the stored bodies.
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

/// The storage the outbox reads outside units of work.
pub trait OutboxStore {
    /// One delivery.
    fn delivery(&self, id: u64) -> Result<Option<Delivery>>;
    /// The ids of a topic's deliveries, oldest first.
    fn topic_ids(&self, topic: &str) -> Result<Vec<u64>>;
    /// A stored body (a view of the stored bytes, no copy).
    fn body(&self, sha256: &[u8; 32]) -> Result<Option<StoredBytes>>;
    /// Walks the schedule in time order, giving `visit` each (due time, id) until it
    /// answers false; returns the due time of the entry it stopped at, if any.
    fn scan_schedule(&self, visit: &mut dyn FnMut(u64, u64) -> bool) -> Result<Option<u64>>;
    /// Takes an entry off the schedule (one whose delivery is missing or damaged).
    fn unschedule(&self, at: u64, id: u64) -> Result<()>;
    /// How many deliveries are scheduled.
    fn scheduled(&self) -> usize;
    /// How many deliveries hold the body `sha256` (0 when it is not stored).
    fn body_holders(&self, sha256: &[u8; 32]) -> Result<u64>;
    /// How many distinct bodies are stored.
    fn stored_bodies(&self) -> usize;
}

/// The same inside a unit of work, and the writes.
pub trait OutboxTx {
    fn delivery(&self, id: u64) -> TxResult<Option<Delivery>>;
    /// Writes a delivery's record (not its schedule or topic entries).
    fn put_delivery(&self, delivery: &Delivery) -> TxResult<()>;
    /// Removes a delivery's record and its topic entry.
    fn remove_delivery(&self, delivery: &Delivery) -> TxResult<()>;
    fn schedule(&self, at: u64, id: u64) -> TxResult<()>;
    fn unschedule(&self, at: u64, id: u64) -> TxResult<()>;
    fn list_in_topic(&self, topic: &str, id: u64) -> TxResult<()>;
    /// One more delivery holds the body; stores it when none held it.
    fn hold_body(&self, sha256: &[u8; 32], body: &[u8]) -> TxResult<()>;
    /// One delivery fewer holds the body; the last one removes it.
    fn release_body(&self, sha256: &[u8; 32]) -> TxResult<()>;
}

/// The outbox. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    http: HttpClient,
    policy: OutboxPolicy,
    wake: Signal,
}

impl Outbox {
    /// The outbox, woken by `wake` (the pod's `signals.outbox`).
    pub fn new(store: Store, http: HttpClient, policy: OutboxPolicy, wake: Signal) -> Outbox {
        Outbox {
            store,
            http,
            policy,
            wake,
        }
    }

    /// Queues deliveries durably and wakes the worker.
    pub async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<()> {
        let ids = deliveries
            .iter()
            .map(|_| self.store.generate_id())
            .collect::<Result<Vec<_>>>()?;
        self.store.transaction(|tx| {
            for (id, new) in ids.iter().zip(deliveries) {
                enqueue_in(tx, *id, new)?;
            }
            Ok(())
        })?;
        self.store.durable().await?;
        self.wake();
        Ok(())
    }

    /// Wakes the worker (after deliveries were queued).
    pub fn wake(&self) {
        self.wake.ring();
    }

    /// The deliveries of a topic, oldest first.
    pub fn topic(&self, topic: &str) -> Result<Vec<Delivery>> {
        topic_deliveries(&self.store, topic)
    }

    /// The body a delivery sends, while it holds one (pending or failed).
    pub fn body(&self, delivery: &Delivery) -> Result<Option<Vec<u8>>> {
        body_of(&self.store, delivery)
    }

    /// Sends a delivery of `topic` again now (a failed one, or one still waiting).
    pub async fn retry(&self, topic: &str, id: u64) -> Result<()> {
        let origin = self.store.transaction(|tx| {
            let Some(mut delivery) = OutboxTx::delivery(tx, id)? else {
                return abort(Error::NotFound("no such delivery".into()));
            };
            if delivery.topic != topic {
                return abort(Error::NotFound("no such delivery".into()));
            }
            if matches!(delivery.state, DeliveryState::Delivered { .. }) {
                return Ok(delivery.origin);
            }
            OutboxTx::unschedule(tx, delivery.next_attempt_unix, id)?;
            delivery.state = DeliveryState::Pending;
            delivery.next_attempt_unix = now_unix();
            tx.schedule(delivery.next_attempt_unix, id)?;
            tx.put_delivery(&delivery)?;
            Ok(delivery.origin)
        })?;
        self.store.durable().await?;
        self.http.forget_failures(&origin);
        self.wake();
        Ok(())
    }

    /// Pending deliveries, for the podmin and for tests.
    pub fn pending_count(&self) -> usize {
        self.store.scheduled()
    }
}

/// Queues a delivery inside a unit of work (`id` from `store.generate_id()`); ring the
/// pod's `signals.outbox` once the unit is durable.
pub fn enqueue_in(tx: &Tx, id: u64, new: &NewDelivery) -> TxResult<()> {
    let now = now_unix();
    let body_sha256: [u8; 32] = Sha256::digest(&new.body).into();
    tx.hold_body(&body_sha256, &new.body)?;
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
    tx.put_delivery(&delivery)?;
    tx.schedule(now, id)?;
    tx.list_in_topic(&new.topic, id)
}

/// The body a delivery sends, while it holds one (pending or failed).
pub fn body_of(store: &impl OutboxStore, delivery: &Delivery) -> Result<Option<Vec<u8>>> {
    Ok(store.body(&delivery.body_sha256)?.map(|b| b.to_vec()))
}

/// The deliveries of a topic, oldest first.
pub fn topic_deliveries(store: &impl OutboxStore, topic: &str) -> Result<Vec<Delivery>> {
    let mut out = Vec::new();
    for id in store.topic_ids(topic)? {
        if let Some(delivery) = store.delivery(id)? {
            out.push(delivery);
        }
    }
    Ok(out)
}

/// Inside a unit of work: removes those of `ids` (see [`OutboxStore::topic_ids`]) that
/// are still pending, for messages that a newer one to the same place makes obsolete
/// (and that must not arrive after it). Delivered and failed ones stay listed. A
/// delivery being attempted at this moment may still arrive; its outcome is then not
/// recorded. Returns how many were removed.
pub fn cancel_pending_in(tx: &Tx, ids: &[u64]) -> TxResult<usize> {
    let mut removed = 0;
    for &id in ids {
        let Some(delivery) = OutboxTx::delivery(tx, id)? else {
            continue;
        };
        if delivery.state != DeliveryState::Pending {
            continue;
        }
        tx.remove_delivery(&delivery)?;
        OutboxTx::unschedule(tx, delivery.next_attempt_unix, id)?;
        tx.release_body(&delivery.body_sha256)?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
