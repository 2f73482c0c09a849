//! Arrivals: accounts coming to this pod from another identity — an archive the
//! podmin imports ([`import`]), a backup restored here ([`restore`]), a `.lfbk` a user
//! moves in with ([`move_in`]) — and the moves other pods announce ([`received`]). This
//! module holds what every arrival shares, and the diaspora* `AccountMigration` that
//! tells every pod about it (docs/migration.md).
//!
//! Arriving is one unit of work: the new account `username@this-pod` gets a fresh key
//! pair and guid (as diaspora* does), the archive's data, the old identity recorded as
//! `moved_from`, and — when the archive names its old identity — the AccountMigration
//! signed once (entity by the new key, envelope by the old key) and queued in the outbox
//! for every pod that should hear of it. The old private key is used for that one
//! signature and never stored: only the signed envelope is kept, for re-delivery. The
//! archive's contacts are queued in the same unit of work for discovery in the
//! background ([`crate::people::queue`]), so their keys are known here
//! before their pods may be gone.
//!
//! The storage moves need is [`MovesStore`] / [`MovesTx`] (`store::moves`).

pub mod checks;
pub mod import;
pub mod move_in;
pub mod opened;
pub mod outcome;
pub mod received;
pub mod restore;

use rsa::RsaPrivateKey;
use serde::{Deserialize, Serialize};

use crate::account::archive::ImportedArchive;
use crate::account::{self, credentials, now_unix, profile, Account, AccountTx, TxResult};
use crate::delivery::NewDelivery;
use crate::federation::entities::{AccountMigration, Profile};
use crate::federation::envelope::{MagicEnvelope, CONTENT_TYPE};
use crate::federation::signature::private_key_from_pem;
use crate::http_client::origin_of;
use crate::people::queue as people_queue;
use crate::people::PeopleStore;
use crate::pod::Pod;
use crate::store::{abort, Tx};
use crate::{Error, Result};

/// The move an account made into this pod, kept for re-delivery and for its page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutgoingMove {
    pub old_id: String,
    pub new_id: String,
    /// The signed public Magic Envelope (XML) carrying the AccountMigration.
    pub envelope_xml: String,
    pub created_unix: u64,
}

/// The storage moves need (implemented in `store::moves`): the moves accounts made
/// into this pod (`moves_out`), the moves this pod verified and applied (`moves_in`),
/// local accounts whose closure waits (`pending_closures`), and which old identity a
/// user's contact moved from (`contact_moves`, for the contacts page's notice).
pub trait MovesStore {
    fn outgoing_move(&self, username: &str) -> Result<Option<OutgoingMove>>;
    fn received_move(&self, old_id: &str) -> Result<Option<received::ReceivedMove>>;
    fn pending_closure(&self, username: &str) -> Result<Option<received::PendingClosure>>;
    /// The usernames with a pending closure.
    fn pending_closures(&self) -> Result<Vec<String>>;
    fn cancel_closure(&self, username: &str) -> Result<()>;
    fn contact_moved_from(&self, username: &str, new_id: &str) -> Result<Option<String>>;
}

/// The same inside a unit of work, and the writes.
pub trait MovesTx {
    fn put_outgoing_move(&self, username: &str, outgoing: &OutgoingMove) -> TxResult<()>;
    fn received_move(&self, old_id: &str) -> TxResult<Option<received::ReceivedMove>>;
    fn put_received_move(&self, received: &received::ReceivedMove) -> TxResult<()>;
    fn put_pending_closure(&self, username: &str, closure: &received::PendingClosure) -> TxResult<()>;
    fn remove_pending_closure(&self, username: &str) -> TxResult<()>;
    fn note_contact_moved(&self, username: &str, new_id: &str, old_id: &str) -> TxResult<()>;
}

/// What a person brings to become a local account.
pub struct Arrival {
    pub archive: ImportedArchive,
    pub username: String,
    pub password: String,
    /// Normalised email address of the new account.
    pub email: String,
    /// Whether the address counts as confirmed (restores prove the mailbox first).
    pub email_confirmed: bool,
}

/// An arrival ready to be written: everything slow (hashing, key generation,
/// signing) done beforehand, so the unit of work itself is quick.
pub struct Prepared {
    pub account: Account,
    pub outgoing: Option<OutgoingMove>,
    pub deliveries: Vec<(u64, NewDelivery)>,
    /// What the archive's import repaired or left out, in words for the user.
    pub repairs: Vec<String>,
}

/// The outbox topic of an account's move.
pub fn topic(username: &str) -> String {
    format!("move:{username}")
}

/// Hashes the password, takes a fresh key pair and signs the move.
pub async fn prepare(pod: &Pod, mut arrival: Arrival) -> Result<Prepared> {
    account::check_username(&arrival.username)?;
    account::check_password(&arrival.password)?;
    let password = arrival.password.clone();
    // The password is hashed while the key pair is taken and the move signed.
    let hashing = tokio::task::spawn_blocking(move || credentials::hash_password(&password));
    let keys = crate::account::keys::take(&pod.store, pod.config.accounts.key_bits, &pod.signals.keys).await?;
    let now = now_unix();
    let mut account = Account::fresh(&arrival.username, &arrival.email, &keys, now);
    account.email_confirmed = arrival.email_confirmed;
    account.language = arrival.archive.language.clone();
    account.moved_from = arrival.archive.moved_from(now);
    // The archive's data moves into the account (no copy of thousands of contacts).
    crate::account::archive::move_into(&mut arrival.archive, &mut account);
    let repairs = std::mem::take(&mut arrival.archive.repairs);
    let Some(old_id) = arrival.archive.old_diaspora_id.clone() else {
        account.password_hash = hashing.await.map_err(Error::internal)??;
        return Ok(Prepared {
            account,
            outgoing: None,
            deliveries: Vec::new(),
            repairs,
        });
    };
    let host = pod.config.public_host();
    let new_id = account.diaspora_id(&host);
    let entity_profile = profile::entity(&account, &host, &pod.config.public_url());
    let (old_key_pem, new_key_pem) = (arrival.archive.private_key_pem.clone(), account.private_key_pem.clone());
    let signing_old_id = old_id.clone();
    let envelope_xml = tokio::task::spawn_blocking(move || -> Result<String> {
        let new_key = private_key_from_pem(&new_key_pem)?;
        let old_key = private_key_from_pem(&old_key_pem)?;
        Ok(sign_move(&signing_old_id, entity_profile, &old_key, &new_key))
    })
    .await
    .map_err(Error::internal)??;
    let outgoing = OutgoingMove {
        old_id: old_id.clone(),
        new_id,
        envelope_xml,
        created_unix: now,
    };
    let body = bytes::Bytes::from(outgoing.envelope_xml.clone());
    let deliveries = recipients(pod, &account, &old_id)?
        .into_iter()
        .map(|origin| {
            Ok((
                pod.store.generate_id()?,
                NewDelivery {
                    topic: topic(&account.username),
                    origin,
                    path: "/receive/public".into(),
                    content_type: CONTENT_TYPE.into(),
                    body: body.clone(),
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    account.password_hash = hashing.await.map_err(Error::internal)??;
    Ok(Prepared {
        account,
        outgoing: Some(outgoing),
        deliveries,
        repairs,
    })
}

/// The AccountMigration lifeboat sends, as a public Magic Envelope (XML): the form
/// diaspora* sends (author and `old_identity` the old identity, `signature` by the new
/// key over `AccountMigration:OLD:NEW`), the envelope signed by the old key. CPU work.
pub fn sign_move(old_id: &str, new_profile: Profile, old_key: &RsaPrivateKey, new_key: &RsaPrivateKey) -> String {
    let migration = AccountMigration::new_signed(old_id, new_profile, new_key);
    MagicEnvelope::sign(&migration.to_xml(), old_id, old_key).to_xml()
}

/// The pods told of a move: the old home pod, the pods of all contacts, every
/// `known_pods` entry and, unless `federation.broadcast_moves` is off, every pod this
/// pod knows. Never this pod itself.
pub fn recipients(pod: &Pod, account: &Account, old_id: &str) -> Result<Vec<String>> {
    let own = origin_of(&pod.config.public_url()).ok();
    let mut out: Vec<String> = Vec::new();
    // A set beside the list: an account can have contacts on thousands of pods.
    let mut seen = std::collections::HashSet::new();
    let mut add = |origin: String| {
        if Some(&origin) != own.as_ref() && seen.insert(origin.clone()) {
            out.push(origin);
        }
    };
    let host_origin = |id: &str| {
        id.split_once('@')
            .and_then(|(_, host)| origin_of(&format!("https://{host}")).ok())
    };
    if let Some(origin) = host_origin(old_id) {
        add(origin);
    }
    // Many contacts share a pod: each host is parsed once.
    let mut hosts_seen = std::collections::HashSet::new();
    for contact in &account.contacts {
        let host = contact.diaspora_id.split_once('@').map_or("", |(_, host)| host);
        if !hosts_seen.insert(host) {
            continue;
        }
        if let Some(origin) = host_origin(&contact.diaspora_id) {
            add(origin);
        }
    }
    for origin in &account.known_pods {
        add(origin.clone());
    }
    if pod.config.federation.broadcast_moves {
        for origin in known_pod_origins(pod)? {
            add(origin);
        }
    }
    // One delivery per pod: where both schemes name the same host, keep the one this pod
    // may use (http only under `federation.allow_http`, which the outbox tries after https).
    let hosts_with_http: Vec<String> = out
        .iter()
        .filter_map(|o| o.strip_prefix("http://").map(str::to_string))
        .collect();
    out.retain(|origin| match origin.strip_prefix("https://") {
        Some(host) => !hosts_with_http.contains(&host.to_string()),
        None => true,
    });
    if !pod.config.federation.allow_http {
        out.retain(|origin| origin.starts_with("https://"));
    }
    Ok(out)
}

/// Pods this pod knows: seed and approved pods, and the pods of discovered people.
fn known_pod_origins(pod: &Pod) -> Result<Vec<String>> {
    let mut out: Vec<String> = pod
        .config
        .federation
        .seed_pods
        .iter()
        .chain(&pod.config.backups.approved_pods)
        .filter_map(|url| origin_of(url).ok())
        .collect();
    for person in pod.store.people()? {
        out.push(person.pod_origin);
    }
    Ok(out)
}

/// Writes a prepared arrival inside a unit of work: refuses a taken username or email,
/// then stores the account, its move and the deliveries, and queues the archive's
/// contacts for discovery in the background. The caller wakes the outbox and
/// `pod.discovery` once the unit is durable.
pub fn write_in(pod: &Pod, tx: &Tx, prepared: &Prepared) -> TxResult<()> {
    let account = &prepared.account;
    if AccountTx::account(tx, &account.username)?.is_some() {
        return abort(Error::Conflict("this username is taken".into()));
    }
    if AccountTx::username_for_email(tx, &account.email)?.is_some() {
        return abort(Error::Conflict(
            "an account with this email address exists already".into(),
        ));
    }
    tx.put_account(None, account)?;
    if let Some(outgoing) = &prepared.outgoing {
        tx.put_outgoing_move(&account.username, outgoing)?;
        for (id, delivery) in &prepared.deliveries {
            crate::delivery::enqueue_in(tx, *id, delivery)?;
        }
    }
    let contacts: Vec<&str> = account.contacts.iter().map(|c| c.diaspora_id.as_str()).collect();
    let queued = people_queue::queue_in(
        tx,
        &people_queue::Policy::from_config(&pod.config),
        &pod.config.public_host(),
        &contacts,
        now_unix(),
    )?;
    people_queue::log_queued(&account.username, queued);
    Ok(())
}

/// Creates the account of an arrival (import, move-in) durably and starts its
/// deliveries. Returns the account and what the import repaired.
pub async fn arrive(pod: &Pod, arrival: Arrival) -> Result<(Account, Vec<String>)> {
    let prepared = prepare(pod, arrival).await?;
    pod.store.transaction(|tx| write_in(pod, tx, &prepared))?;
    pod.store.durable().await?;
    pod.signals.outbox.ring();
    pod.signals.discovery.ring();
    apply_locally(pod, &prepared).await;
    tracing::info!(
        username = %prepared.account.username,
        from = prepared.outgoing.as_ref().map(|m| m.old_id.as_str()).unwrap_or("-"),
        deliveries = prepared.deliveries.len(),
        "account arrived"
    );
    Ok((prepared.account, prepared.repairs))
}

/// The move an account made into this pod, if any.
pub fn outgoing(pod: &Pod, username: &str) -> Result<Option<OutgoingMove>> {
    pod.store.outgoing_move(username)
}

/// Applies an arrival's move to this pod's own data through the receiving path, with
/// all of its checks: if this pod knows the old identity's key and the envelope does
/// not verify against it, nothing local is re-pointed.
pub async fn apply_locally(pod: &Pod, prepared: &Prepared) {
    let Some(outgoing) = &prepared.outgoing else { return };
    match received::receive_public(pod, &outgoing.envelope_xml).await {
        Ok(outcome) => tracing::info!(old = %outgoing.old_id, ?outcome, "move applied to this pod's own data"),
        Err(e) => tracing::warn!(old = %outgoing.old_id, "move not applied to this pod's own data: {e}"),
    }
}
