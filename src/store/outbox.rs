//! The outbox on sled: see [`crate::delivery::OutboxStore`].
//!
//! Trees (layouts also on their `Tree` variants): `outbox` (u64 id BE -> Delivery),
//! `outbox_due` (next attempt Unix seconds BE u64 ++ id BE u64 -> empty) — the schedule
//! of pending deliveries, in time order — `outbox_topics` (topic 0x00 id BE u64 ->
//! empty) listing the deliveries of a topic, `outbox_bodies` (SHA-256 -> the body, raw
//! behind the value version byte) and `outbox_body_refs` (SHA-256 -> u64 BE, how many
//! deliveries hold the body).

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{decode, decode_raw, encode_raw, Store, StoredBytes, Tree, Tx, TxResult};
use crate::delivery::{Delivery, DeliveryState, OutboxStore, OutboxTx};
use crate::Result;

fn due_key(at: u64, id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&at.to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

fn topic_prefix(topic: &str) -> Vec<u8> {
    let mut prefix = topic.as_bytes().to_vec();
    prefix.push(0);
    prefix
}

fn topic_key(topic: &str, id: u64) -> Vec<u8> {
    let mut key = topic_prefix(topic);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn refs_count(value: &[u8]) -> u64 {
    u64::from_be_bytes(value.try_into().unwrap_or_default())
}

impl OutboxStore for Store {
    fn delivery(&self, id: u64) -> Result<Option<Delivery>> {
        self.tree(Tree::Outbox)
            .get(id.to_be_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    fn topic_ids(&self, topic: &str) -> Result<Vec<u64>> {
        let prefix = topic_prefix(topic);
        let mut ids = Vec::new();
        for key in self.tree(Tree::OutboxTopics).scan_prefix(&prefix).keys() {
            if let Ok(id) = <[u8; 8]>::try_from(&key?[prefix.len()..]) {
                ids.push(u64::from_be_bytes(id));
            }
        }
        Ok(ids)
    }

    fn body(&self, sha256: &[u8; 32]) -> Result<Option<StoredBytes>> {
        let Some(value) = self.tree(Tree::OutboxBodies).get(sha256)? else {
            return Ok(None);
        };
        let len = decode_raw(&value)?.len();
        Ok(Some(StoredBytes(value.subslice(value.len() - len, len))))
    }

    fn scan_schedule(&self, visit: &mut dyn FnMut(u64, u64) -> bool) -> Result<Option<u64>> {
        for key in self.tree(Tree::OutboxDue).iter().keys() {
            let key = key?;
            let at = u64::from_be_bytes(key[..8].try_into().unwrap_or_default());
            let id = u64::from_be_bytes(key.get(8..16).and_then(|k| k.try_into().ok()).unwrap_or_default());
            if !visit(at, id) {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    fn unschedule(&self, at: u64, id: u64) -> Result<()> {
        self.tree(Tree::OutboxDue).remove(due_key(at, id))?;
        Ok(())
    }

    fn scheduled(&self) -> usize {
        self.tree(Tree::OutboxDue).len()
    }

    fn body_holders(&self, sha256: &[u8; 32]) -> Result<u64> {
        Ok(self
            .tree(Tree::OutboxBodyRefs)
            .get(sha256)?
            .map(|v| refs_count(&v))
            .unwrap_or(0))
    }

    fn stored_bodies(&self) -> usize {
        self.tree(Tree::OutboxBodies).len()
    }
}

impl OutboxTx for Tx<'_> {
    fn delivery(&self, id: u64) -> TxResult<Option<Delivery>> {
        self.get(Tree::Outbox, &id.to_be_bytes())
    }

    fn put_delivery(&self, delivery: &Delivery) -> TxResult<()> {
        self.put(Tree::Outbox, &delivery.id.to_be_bytes(), delivery)
    }

    fn remove_delivery(&self, delivery: &Delivery) -> TxResult<()> {
        self.tree(Tree::Outbox).remove(&delivery.id.to_be_bytes())?;
        self.tree(Tree::OutboxTopics)
            .remove(topic_key(&delivery.topic, delivery.id))?;
        Ok(())
    }

    fn schedule(&self, at: u64, id: u64) -> TxResult<()> {
        self.tree(Tree::OutboxDue).insert(&due_key(at, id), &[])?;
        Ok(())
    }

    fn unschedule(&self, at: u64, id: u64) -> TxResult<()> {
        self.tree(Tree::OutboxDue).remove(&due_key(at, id))?;
        Ok(())
    }

    fn list_in_topic(&self, topic: &str, id: u64) -> TxResult<()> {
        self.tree(Tree::OutboxTopics).insert(topic_key(topic, id), &[])?;
        Ok(())
    }

    fn hold_body(&self, sha256: &[u8; 32], body: &[u8]) -> TxResult<()> {
        let refs = self.tree(Tree::OutboxBodyRefs);
        let held = refs.get(sha256)?.map(|v| refs_count(&v)).unwrap_or(0);
        if held == 0 {
            self.tree(Tree::OutboxBodies).insert(&sha256[..], encode_raw(body))?;
        }
        refs.insert(&sha256[..], &(held + 1).to_be_bytes())?;
        Ok(())
    }

    fn release_body(&self, sha256: &[u8; 32]) -> TxResult<()> {
        let refs = self.tree(Tree::OutboxBodyRefs);
        match refs.get(sha256)?.map(|v| refs_count(&v)).unwrap_or(0) {
            0 | 1 => {
                refs.remove(&sha256[..])?;
                self.tree(Tree::OutboxBodies).remove(&sha256[..])?;
            }
            held => {
                refs.insert(&sha256[..], &(held - 1).to_be_bytes())?;
            }
        }
        Ok(())
    }
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

/// The store upgrade from schema 1 to 2 (see [`super::SCHEMA_VERSION`]): each
/// delivery's body moves into `outbox_bodies`, held by the deliveries that may still
/// send it; delivered ones keep none. Read first, then applied in one unit of work with
/// the new schema version, so a store is upgraded entirely or not at all.
pub(super) struct Schema1Upgrade {
    deliveries: Vec<(sled::IVec, DeliveryV1)>,
}

impl Schema1Upgrade {
    /// Reads the schema 1 deliveries. One that does not decode is left as it is (the
    /// worker drops it from the schedule, `lifeboat check` reports it).
    pub(super) fn read(store: &Store) -> Result<Schema1Upgrade> {
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
    pub(super) fn len(&self) -> usize {
        self.deliveries.len()
    }

    /// Writes the upgraded deliveries and their bodies.
    pub(super) fn apply_in(&self, tx: &Tx) -> TxResult<()> {
        for (key, old) in &self.deliveries {
            let body_sha256: [u8; 32] = Sha256::digest(&old.body).into();
            if !matches!(old.state, DeliveryState::Delivered { .. }) {
                tx.hold_body(&body_sha256, &old.body)?;
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

/// A stored delivery decodes (for `lifeboat check`).
pub(super) fn check_delivery(bytes: &[u8]) -> Result<()> {
    decode::<Delivery>(bytes).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::encode;

    fn refs(store: &Store, body: &[u8]) -> u64 {
        let sha: [u8; 32] = Sha256::digest(body).into();
        store.body_holders(&sha).unwrap()
    }

    #[tokio::test]
    async fn a_schema_1_store_is_upgraded_with_its_bodies_moved_out() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = |id: u64, body: &[u8], state: DeliveryState| {
            // Schema 1's Delivery, field by field (bincode writes a struct as its fields).
            encode(&(
                id,
                "move:old".to_string(),
                format!("https://pod{id}.example"),
                "/receive/public".to_string(),
                "application/magic-envelope+xml".to_string(),
                body.to_vec(),
                1_700_000_000u64,
                2u32,
                1_700_000_600u64,
                state,
                Some("answered 500".to_string()),
            ))
        };
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("schema_version", &1u32.to_be_bytes())
                .unwrap();
            let outbox = db.open_tree("outbox").unwrap();
            outbox
                .insert(1u64.to_be_bytes(), v1(1, b"envelope", DeliveryState::Pending))
                .unwrap();
            outbox
                .insert(2u64.to_be_bytes(), v1(2, b"envelope", DeliveryState::Failed))
                .unwrap();
            outbox
                .insert(
                    3u64.to_be_bytes(),
                    v1(3, b"envelope", DeliveryState::Delivered { at_unix: 5 }),
                )
                .unwrap();
            outbox
                .insert(
                    4u64.to_be_bytes(),
                    v1(4, b"other", DeliveryState::Delivered { at_unix: 5 }),
                )
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let schema = store.tree(Tree::Meta).get("schema_version").unwrap().unwrap();
        assert_eq!(schema.as_ref(), &crate::store::SCHEMA_VERSION.to_be_bytes());
        let first: Delivery = decode(&store.tree(Tree::Outbox).get(1u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        assert_eq!(first.origin, "https://pod1.example");
        assert_eq!(first.attempts, 2);
        assert_eq!(first.next_attempt_unix, 1_700_000_600);
        assert_eq!(first.last_error.as_deref(), Some("answered 500"));
        assert_eq!(
            OutboxStore::body(&store, &first.body_sha256).unwrap().as_deref(),
            Some(&b"envelope"[..])
        );
        assert_eq!(refs(&store, b"envelope"), 2, "held by the pending and the failed one");
        assert_eq!(refs(&store, b"other"), 0, "a delivered message keeps no body");
        assert_eq!(store.stored_bodies(), 1);
        assert!(store.check().unwrap().problems.is_empty());
        drop(store);
        // sled lets go of its files once the store's flusher task has ended.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        // Opening again changes nothing.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(refs(&store, b"envelope"), 2);
        assert_eq!(store.tree(Tree::Outbox).len(), 4);
    }
}
