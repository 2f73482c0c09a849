//! The outbox's one worker: takes due deliveries from the schedule, sends each (https
//! first; http only under `federation.allow_http` when https gave no answer), and
//! records the outcome — delivered, or the next attempt by the backoff, or failed once
//! the retry period is over. At most one request per pod at a time, a per-pod rate,
//! and `concurrency` requests in all.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{Delivery, DeliveryState, Outbox, OutboxStore, OutboxTx};
use crate::now_unix;
use crate::ratelimit::RateLimiter;
use crate::store::StoredBytes;
use crate::{Error, Result};

impl Outbox {
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
            let mut due = Vec::new();
            let mut damaged = Vec::new();
            let room = self.policy.concurrency.saturating_sub(tasks.len());
            let next_due = self.store.scan_schedule(&mut |at, id| {
                if due.len() >= room || at > now {
                    return false;
                }
                match OutboxStore::delivery(&self.store, id) {
                    Ok(Some(delivery)) => {
                        let mut busy = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                        if !busy.contains(&delivery.origin) && per_pod.allow(&delivery.origin) {
                            busy.insert(delivery.origin.clone());
                            due.push(delivery);
                        }
                    }
                    _ => damaged.push((at, id)),
                }
                true
            });
            for (at, id) in damaged {
                tracing::error!(
                    id,
                    "outbox: a scheduled delivery is missing or damaged; dropping it from the schedule"
                );
                let _ = OutboxStore::unschedule(&self.store, at, id);
            }
            let next_due = match next_due {
                Ok(next) => next.filter(|at| *at > now),
                Err(e) => {
                    tracing::error!("outbox: cannot read the schedule: {e}");
                    None
                }
            };
            for delivery in due {
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
                _ = self.wake.rung() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        tasks.abort_all();
    }

    async fn attempt(&self, delivery: Delivery) -> Result<()> {
        let outcome = match OutboxStore::body(&self.store, &delivery.body_sha256)? {
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
            let Some(mut current) = OutboxTx::delivery(tx, id)? else {
                return Ok(());
            };
            OutboxTx::unschedule(tx, current.next_attempt_unix, id)?;
            current.attempts += 1;
            match &outcome {
                Ok(()) => {
                    current.state = DeliveryState::Delivered { at_unix: now };
                    current.last_error = None;
                    tx.release_body(&current.body_sha256)?;
                }
                Err(error) => {
                    current.last_error = Some(error.clone());
                    if now.saturating_sub(current.created_unix) >= self.policy.backoff.give_up_after.as_secs() {
                        current.state = DeliveryState::Failed;
                    } else {
                        current.next_attempt_unix = now + self.policy.backoff.delay(current.attempts).as_secs();
                        tx.schedule(current.next_attempt_unix, id)?;
                    }
                }
            }
            tx.put_delivery(&current)
        })?;
        self.store.durable().await?;
        match outcome {
            Ok(()) => tracing::info!(%origin, %topic, "delivered"),
            Err(error) => tracing::warn!(%origin, %topic, "delivery failed: {error}"),
        }
        Ok(())
    }

    /// One POST of a delivery's body, off the async runtime.
    async fn send(&self, delivery: &Delivery, body: StoredBytes) -> Result<std::result::Result<(), String>> {
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
