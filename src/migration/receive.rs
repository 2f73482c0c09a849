//! Receiving diaspora*'s public messages (`POST /receive/public`), of which lifeboat
//! acts on the AccountMigration (docs/migration.md), `profile` and `account_deletion`.
//!
//! Order: parse the envelope (any DOCTYPE refused), read the entity; `profile` and
//! `account_deletion` go to [`crate::federation::profiles`], anything else but an
//! AccountMigration is accepted and ignored. Then: `key_id`, `author` and
//! `old_identity` must all name the old identity; the envelope must verify with the old
//! identity's key — the stored one when this pod knows the person (a stored key is
//! never replaced by rediscovery), else discovered; the entity's signature must verify
//! with the new identity's key, discovered by WebFinger + hCard at its host (or this
//! pod's own account). Only then does anything change: the stored person takes the new
//! identity, every local contact and aspect membership is re-pointed (duplicates
//! merged, the user told), and when the old identity is a local account it is closed —
//! at once if the user flagged the move, else after 72 hours unless the user says
//! "this was not me". The same move again is a no-op; a different second move of an
//! identity is refused.
//!
//! Trees: `moves_in` (old diaspora ID -> [`ReceivedMove`]), `pending_closures`
//! (username -> [`PendingClosure`]), `contact_moves` (username 0x00 new ID -> old ID,
//! for the contacts page's notice).

use serde::{Deserialize, Serialize};

use crate::account::{self, now_unix, wipe, Account, AccountStore, AccountTx};
use crate::federation::entities::{parse_entity, Entity};
use crate::federation::envelope::MagicEnvelope;
use crate::federation::outbox::NewDelivery;
use crate::federation::people::{self, PeopleStore, Person};
use crate::federation::profiles;
use crate::federation::signature::public_key_from_pem;
use crate::http_client::origin_of;
use crate::mail::Mail;
use crate::pod::Pod;
use crate::store::{abort, decode, Tree};
use crate::{Error, Result};

/// How long an unflagged move of a local account waits for "this was not me".
pub const CLOSE_DELAY_SECS: u64 = 72 * 3600;

/// A move this pod has verified and applied.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReceivedMove {
    pub old_id: String,
    pub new_id: String,
    pub envelope_xml: String,
    pub received_unix: u64,
}

/// A local account whose move waits for its owner to object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PendingClosure {
    pub new_id: String,
    pub envelope_xml: String,
    pub close_at_unix: u64,
}

/// What receiving did.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A verified move, now applied (or scheduled for a local account).
    Applied,
    /// The same move arrived before: nothing changed.
    AlreadyKnown,
    /// Not an AccountMigration: accepted and ignored.
    Ignored(String),
}

fn contact_move_key(username: &str, new_id: &str) -> Vec<u8> {
    [username.as_bytes(), &[0], new_id.as_bytes()].concat()
}

/// Handles one public envelope.
pub async fn receive_public(pod: &Pod, xml: &str) -> Result<Received> {
    let envelope = MagicEnvelope::parse(xml)?;
    let migration = match parse_entity(envelope.payload_str()?)? {
        Entity::AccountMigration(m) => m,
        entity @ (Entity::Profile(_) | Entity::AccountDeletion(_)) => {
            return Ok(match profiles::receive_public(pod, &envelope, &entity).await? {
                profiles::Outcome::Applied(_) => Received::Applied,
                profiles::Outcome::Ignored(why) => Received::Ignored(why),
            })
        }
        Entity::Other(name) => return Ok(Received::Ignored(name)),
        other => {
            return Ok(Received::Ignored(
                format!("{other:?}")
                    .split(['(', ' '])
                    .next()
                    .unwrap_or("entity")
                    .to_string(),
            ))
        }
    };
    let old_id = migration.old_identity.to_ascii_lowercase();
    let new_id = migration.new_identity().to_ascii_lowercase();
    if envelope.key_id().to_ascii_lowercase() != old_id || migration.author.to_ascii_lowercase() != old_id {
        return Err(Error::bad(
            "the envelope's key_id, the author and old_identity must all name the old identity",
        ));
    }
    if old_id == new_id {
        return Err(Error::bad("an identity cannot move to itself"));
    }
    if let Some(known) = received(pod, &old_id)? {
        if known.new_id == new_id {
            return Ok(Received::AlreadyKnown);
        }
        return Err(Error::Conflict(format!(
            "{old_id} has already moved to {}",
            known.new_id
        )));
    }
    let old_key = old_identity_key(pod, &old_id).await?;
    envelope.verify(&public_key_from_pem(&old_key)?)?;
    let new_person = new_identity(pod, &new_id).await?;
    migration.verify_signature(&public_key_from_pem(&new_person.public_key_pem)?)?;
    apply(pod, &old_id, &new_person, xml).await?;
    Ok(Received::Applied)
}

/// A move already applied for `old_id`.
pub fn received(pod: &Pod, old_id: &str) -> Result<Option<ReceivedMove>> {
    pod.store
        .tree(Tree::MovesIn)
        .get(old_id)?
        .map(|b| decode(&b))
        .transpose()
}

fn local_username<'a>(pod: &Pod, id: &'a str) -> Option<&'a str> {
    let (user, host) = id.split_once('@')?;
    (host == pod.config.public_host()).then_some(user)
}

/// The old identity's key: this pod's own account, a stored person (found by
/// discovery or replaced by a verified move), else discovery now. Keys that arrived in
/// archives are never trusted here: an uploaded archive must not vouch for anyone.
async fn old_identity_key(pod: &Pod, old_id: &str) -> Result<String> {
    if let Some(user) = local_username(pod, old_id) {
        return match AccountStore::account(&pod.store, user)? {
            Some(account) if !account.public_key_pem.is_empty() => Ok(account.public_key_pem),
            _ => Err(Error::NotFound(format!("{old_id} is not an account of this pod"))),
        };
    }
    if let Some(person) = pod.store.person(old_id)? {
        return Ok(person.public_key_pem);
    }
    Ok(
        people::discover(&pod.store, &pod.http, old_id, pod.config.federation.allow_http)
            .await?
            .public_key_pem,
    )
}

/// The new identity as it is published now (or this pod's own account).
async fn new_identity(pod: &Pod, new_id: &str) -> Result<Person> {
    if let Some(user) = local_username(pod, new_id) {
        let account = account::open_account(&pod.store, user)?;
        let base = pod.config.public_url();
        let (photo, medium, small) = account::profile::photo_urls(&account, &base);
        return Ok(Person {
            diaspora_id: new_id.to_string(),
            guid: account.guid.clone(),
            public_key_pem: account.public_key_pem.clone(),
            full_name: account.display_name(),
            first_name: account.profile.first_name.clone().unwrap_or_default(),
            last_name: account.profile.last_name.clone().unwrap_or_default(),
            photo_url: photo,
            photo_medium_url: medium,
            photo_small_url: small,
            searchable: account.profile.searchable,
            pod_origin: origin_of(&base)?,
            fetched_unix: now_unix(),
            moved_to: None,
            closed_unix: None,
        });
    }
    let (http, id, allow_http) = (pod.http.clone(), new_id.to_string(), pod.config.federation.allow_http);
    tokio::task::spawn_blocking(move || people::fetch_person(&http, &id, allow_http))
        .await
        .map_err(Error::internal)?
}

async fn apply(pod: &Pod, old_id: &str, new_person: &Person, xml: &str) -> Result<()> {
    let new_id = new_person.diaspora_id.clone();
    if local_username(pod, &new_id).is_none() {
        people::replace_identity(&pod.store, old_id, new_person.clone())?;
    }
    let record = ReceivedMove {
        old_id: old_id.to_string(),
        new_id: new_id.clone(),
        envelope_xml: xml.to_string(),
        received_unix: now_unix(),
    };
    let affected: Vec<String> = AccountStore::accounts(&pod.store)?
        .into_iter()
        .filter(|a| a.closed.is_none() && a.contacts.iter().any(|c| c.diaspora_id == old_id))
        .map(|a| a.username)
        .collect();
    let local_old = local_username(pod, old_id).map(str::to_string);
    let mail_id = pod.store.generate_id()?;
    pod.store.transaction(|tx| {
        if let Some(known) = tx.get::<ReceivedMove>(Tree::MovesIn, old_id.as_bytes())? {
            if known.new_id != new_id {
                return abort(Error::Conflict(format!(
                    "{old_id} has already moved to {}",
                    known.new_id
                )));
            }
            return Ok(());
        }
        tx.put(Tree::MovesIn, old_id.as_bytes(), &record)?;
        for username in &affected {
            let Some(previous) = AccountTx::account(tx, username)? else {
                continue;
            };
            let mut account = previous.clone();
            repoint(&mut account, old_id, new_person);
            if let Ok(origin) = origin_of(&new_person.pod_origin) {
                crate::account::archive::add_known_pod(&mut account.known_pods, &origin);
            }
            tx.put_account(Some(&previous), &account)?;
            tx.tree(Tree::ContactMoves)
                .insert(contact_move_key(username, &new_id), old_id.as_bytes())?;
        }
        if let Some(user) = &local_old {
            if let Some(account) = AccountTx::account(tx, user)? {
                schedule_closure(pod, tx, &account, &new_id, xml, mail_id)?;
            }
        }
        Ok(())
    })?;
    pod.store.durable().await?;
    pod.mailer.wake();
    tracing::info!(%old_id, %new_id, contacts_repointed = affected.len(), "move applied");
    if let Some(user) = local_old {
        close_if_due(pod, &user).await?;
    }
    Ok(())
}

/// Re-points the contact `old_id` of `account` to the new identity, merging it into an
/// existing contact of the new identity when there is one.
fn repoint(account: &mut Account, old_id: &str, new_person: &Person) {
    let Some(index) = account.contacts.iter().position(|c| c.diaspora_id == old_id) else {
        return;
    };
    let old = account.contacts.remove(index);
    let target = match account
        .contacts
        .iter()
        .position(|c| c.diaspora_id == new_person.diaspora_id)
    {
        Some(i) => i,
        None => {
            account.contacts.insert(
                index,
                crate::account::ContactData {
                    diaspora_id: new_person.diaspora_id.clone(),
                    ..Default::default()
                },
            );
            index
        }
    };
    let contact = &mut account.contacts[target];
    contact.person_guid = Some(new_person.guid.clone());
    contact.person_name = Some(new_person.display_name()).filter(|n| n != &new_person.diaspora_id);
    contact.public_key = Some(new_person.public_key_pem.clone());
    contact.sharing |= old.sharing;
    contact.receiving |= old.receiving;
    for aspect in old.aspects {
        if !contact.aspects.contains(&aspect) {
            contact.aspects.push(aspect);
        }
    }
}

/// Decides what happens to a local account named as the old identity: admins are never
/// closed; a flagged move closes at once; else the owner is mailed and has 72 hours.
fn schedule_closure(
    pod: &Pod,
    tx: &crate::store::Tx,
    account: &Account,
    new_id: &str,
    xml: &str,
    mail_id: u64,
) -> crate::account::TxResult<()> {
    if account.closed.is_some() {
        return Ok(());
    }
    if pod.config.accounts.admins.contains(&account.username) {
        tracing::warn!(username = %account.username, %new_id, "a move of an admin account was received; admins are never closed by a move");
        return Ok(());
    }
    let close_at_unix = if account.moving {
        now_unix()
    } else {
        now_unix() + CLOSE_DELAY_SECS
    };
    tx.put(
        Tree::PendingClosures,
        account.username.as_bytes(),
        &PendingClosure {
            new_id: new_id.to_string(),
            envelope_xml: xml.to_string(),
            close_at_unix,
        },
    )?;
    if !account.moving {
        let host = pod.config.public_host();
        let mail = Mail {
            to: account.email.clone(),
            subject: format!("Your account {} is moving to {new_id}", account.diaspora_id(&host)),
            text: format!(
                "Hello {user},\n\nthis pod received a signed message saying that your account {old} has moved to {new_id}.\n\nIf you did this, there is nothing to do: in 72 hours this account closes and points to the new one.\n\nIf this was not you, sign in within 72 hours and press \"This was not me\" in your settings:\n\n{url}/settings\n",
                user = account.username,
                old = account.diaspora_id(&host),
                url = pod.config.public_url()
            ),
        };
        pod.mailer.enqueue_in(tx, mail_id, &mail)?;
    }
    Ok(())
}

/// A local account's pending closure, if any.
pub fn pending_closure(pod: &Pod, username: &str) -> Result<Option<PendingClosure>> {
    pod.store
        .tree(Tree::PendingClosures)
        .get(username)?
        .map(|b| decode(&b))
        .transpose()
}

/// "This was not me": cancels a pending closure.
pub async fn cancel_closure(pod: &Pod, username: &str) -> Result<()> {
    pod.store.tree(Tree::PendingClosures).remove(username)?;
    pod.store.durable().await?;
    tracing::info!(%username, "pending move cancelled by its owner");
    Ok(())
}

/// Closes a local account whose move is due: sign-in ends, discovery answers 404, the
/// profile page says where it went, the private key, contacts and profile are deleted,
/// and the envelope is relayed to its contacts' pods.
pub async fn close_if_due(pod: &Pod, username: &str) -> Result<bool> {
    let Some(pending) = pending_closure(pod, username)? else {
        return Ok(false);
    };
    if pending.close_at_unix > now_unix() {
        return Ok(false);
    }
    let Some(account) = AccountStore::account(&pod.store, username)? else {
        return Ok(false);
    };
    let own = origin_of(&pod.config.public_url()).ok();
    let mut origins: Vec<String> = Vec::new();
    for contact in &account.contacts {
        if let Some((_, host)) = contact.diaspora_id.split_once('@') {
            if let Ok(origin) = origin_of(&format!("https://{host}")) {
                if Some(&origin) != own.as_ref() && !origins.contains(&origin) {
                    origins.push(origin);
                }
            }
        }
    }
    let ids = origins
        .iter()
        .map(|_| pod.store.generate_id())
        .collect::<Result<Vec<_>>>()?;
    let body = bytes::Bytes::from(pending.envelope_xml.clone());
    pod.store.transaction(|tx| {
        let Some(previous) = AccountTx::account(tx, username)? else {
            return Ok(());
        };
        if previous.closed.is_some() {
            return Ok(());
        }
        let mut closed = previous.clone();
        wipe(&mut closed, Some(pending.new_id.clone()));
        tx.put_account(Some(&previous), &closed)?;
        tx.tree(Tree::PendingClosures).remove(username.as_bytes())?;
        for (id, origin) in ids.iter().zip(&origins) {
            pod.outbox.enqueue_in(
                tx,
                *id,
                &NewDelivery {
                    topic: format!("relay:{username}"),
                    origin: origin.clone(),
                    path: "/receive/public".into(),
                    content_type: crate::federation::envelope::CONTENT_TYPE.into(),
                    body: body.clone(),
                },
            )?;
        }
        Ok(())
    })?;
    pod.store.durable().await?;
    pod.outbox.wake();
    tracing::info!(%username, moved_to = %pending.new_id, relayed_to = origins.len(), "account closed after its move");
    Ok(true)
}

/// Closes every account whose waiting period is over (run periodically).
pub async fn close_due(pod: &Pod) -> Result<()> {
    let usernames: Vec<String> = pod
        .store
        .tree(Tree::PendingClosures)
        .iter()
        .keys()
        .filter_map(|k| k.ok().and_then(|k| String::from_utf8(k.to_vec()).ok()))
        .collect();
    for username in usernames {
        close_if_due(pod, &username).await?;
    }
    Ok(())
}

/// The old identity a local user's contact moved from, for the contacts page.
pub fn contact_moved_from(pod: &Pod, username: &str, new_id: &str) -> Result<Option<String>> {
    Ok(pod
        .store
        .tree(Tree::ContactMoves)
        .get(contact_move_key(username, new_id))?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}
