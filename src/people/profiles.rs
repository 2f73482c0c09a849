//! diaspora*'s `profile` and `account_deletion`, sent and received, as diaspora*'s own
//! code handles them (`lib/diaspora/federation/receive.rb`, `User#share_with`,
//! `AccountDeletion`).
//!
//! Owns:
//! - **sending a profile** ([`profile_delivery`]): when a local user starts sharing with
//!   a remote person, the user's `profile` goes to that person, as `share_with`'s
//!   `deliver_profile_update` does — in a public envelope to the person's pod
//!   `/receive/public` when the profile is public, else signed and encrypted for the
//!   person to `/receive/users/GUID` (diaspora*'s dispatcher chooses by
//!   `Profile#public?`). The sharing code queues it with the `contact`, in one unit of
//!   work; a newer one to the same person replaces one still waiting;
//! - **sending an account deletion** ([`deletion_deliveries`]): a signed public
//!   envelope for every pod of the account's contacts (diaspora*'s
//!   `AccountDeletion#subscribers`), signed while the private key still exists; the
//!   account code queues them in the unit of work that wipes it;
//! - **receiving both** ([`receive_public`] for `/receive/public`, [`apply`] for an
//!   envelope `/receive/users/GUID` has opened and verified): the entity's `author` must
//!   be its signer, the signer's key is the stored one (else discovered, never replaced),
//!   and a public `profile` that is not `public` may carry no extended fields (as
//!   diaspora_federation's public receiver refuses it). A `profile` updates the stored
//!   person (names, avatar URLs, searchable) and the `person_name` of every local contact
//!   of theirs; an `account_deletion` marks the stored person closed (so they are not
//!   added again) and removes them from every local user's contacts. Both in one unit
//!   of work. Profiles of people who moved or closed, and of this pod's own accounts,
//!   are ignored.
//!
//! Not owned: the formats ([`crate::federation::entities`], [`crate::federation::envelope`]), the outbox, when
//! sharing starts ([`crate::sharing`]), closing an account ([`crate::account`]).

use rsa::RsaPrivateKey;

use crate::account::{self, now_unix, Account, AccountStore};
use crate::delivery::NewDelivery;
use crate::federation::discovery::resolve_url;
use crate::federation::entities::{valid_diaspora_id, validate_profile, AccountDeletion, Entity, Profile};
use crate::federation::envelope::{self, MagicEnvelope};
use crate::federation::signature::public_key_from_pem;
use crate::http_client::origin_of;
use crate::people::queue::host_of;
use crate::people::{self, PeopleStore, PeopleTx, Person};
use crate::pod::Pod;
use crate::{Error, Result};

/// The outbox topic of `username`'s profile messages to `diaspora_id`.
pub fn profile_topic(username: &str, diaspora_id: &str) -> String {
    format!("profile:{username}:{diaspora_id}")
}

/// The outbox topic of `username`'s account deletion.
pub fn deletion_topic(username: &str) -> String {
    format!("deletion:{username}")
}

// ---------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------

/// `profile` (signed by `author_key`, its `author`) for `person`: public to their pod's
/// `/receive/public` when `profile.public` is true, else encrypted for them to
/// `/receive/users/GUID`. CPU work (an RSA signature, and an encryption when private).
pub fn profile_delivery(
    username: &str,
    profile: &Profile,
    author_key: &RsaPrivateKey,
    person: &Person,
) -> Result<NewDelivery> {
    let envelope = MagicEnvelope::sign(&profile.to_xml(), &profile.author, author_key).to_xml();
    let topic = profile_topic(username, &person.diaspora_id);
    if profile.public == Some(true) {
        return Ok(NewDelivery {
            topic,
            origin: person.pod_origin.clone(),
            path: "/receive/public".into(),
            content_type: envelope::CONTENT_TYPE.into(),
            body: envelope.into(),
        });
    }
    if !crate::federation::entities::valid_guid(&person.guid) {
        return Err(Error::Upstream(format!(
            "{} has no usable guid; cannot address a message to them",
            person.diaspora_id
        )));
    }
    let body = envelope::encrypt_for(&envelope, &public_key_from_pem(&person.public_key_pem)?)?;
    Ok(NewDelivery {
        topic,
        origin: person.pod_origin.clone(),
        path: format!("/receive/users/{}", person.guid),
        content_type: crate::federation::envelope::PRIVATE_CONTENT_TYPE.into(),
        body: body.into(),
    })
}

/// The signed public envelope of `author_id`'s `account_deletion`. CPU work.
pub fn deletion_envelope(author_id: &str, author_key: &RsaPrivateKey) -> String {
    let entity = AccountDeletion {
        author: author_id.to_string(),
    };
    MagicEnvelope::sign(&entity.to_xml(), author_id, author_key).to_xml()
}

/// The pods an account's deletion goes to: those of all its contacts (the stored
/// person's pod when known, else `https://HOST`), never this pod, `http://` only under
/// `federation.allow_http`.
pub fn deletion_origins(pod: &Pod, account: &Account) -> Result<Vec<String>> {
    let own = origin_of(&pod.config.public_url()).ok();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for contact in &account.contacts {
        let stored = pod.store.person(&contact.diaspora_id)?.map(|p| p.pod_origin);
        let origin = match stored {
            Some(origin) => origin_of(&origin).ok(),
            None => host_of(&contact.diaspora_id).and_then(|host| origin_of(&format!("https://{host}")).ok()),
        };
        let Some(origin) = origin else { continue };
        if Some(&origin) == own.as_ref() || (!pod.config.federation.allow_http && origin.starts_with("http://")) {
            continue;
        }
        if seen.insert(origin.clone()) {
            out.push(origin);
        }
    }
    Ok(out)
}

/// The deliveries of `account`'s deletion, signed now with its private key (off the
/// async runtime): one per pod of [`deletion_origins`], each with its outbox id.
pub async fn deletion_deliveries(pod: &Pod, account: &Account) -> Result<Vec<(u64, NewDelivery)>> {
    let origins = deletion_origins(pod, account)?;
    if origins.is_empty() {
        return Ok(Vec::new());
    }
    let author_id = account.diaspora_id(&pod.config.public_host());
    let private_key_pem = account.private_key_pem.clone();
    let envelope = tokio::task::spawn_blocking(move || -> Result<String> {
        let key = crate::federation::signature::private_key_from_pem(&private_key_pem)?;
        Ok(deletion_envelope(&author_id, &key))
    })
    .await
    .map_err(|e| Error::internal(format!("signing an account deletion: {e}")))??;
    let body = bytes::Bytes::from(envelope);
    origins
        .into_iter()
        .map(|origin| {
            Ok((
                pod.store.generate_id()?,
                NewDelivery {
                    topic: deletion_topic(&account.username),
                    origin,
                    path: "/receive/public".into(),
                    content_type: envelope::CONTENT_TYPE.into(),
                    body: body.clone(),
                },
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Receiving
// ---------------------------------------------------------------------------------

/// What a verified `profile` or `account_deletion` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored: what changed, for the log.
    Applied(String),
    /// Valid, but nothing to change: why.
    Ignored(String),
}

/// A public envelope (`/receive/public`) carrying `entity`, a `profile` or an
/// `account_deletion`: verified with the signer's key, then [`apply`]. Errors:
/// [`Error::BadRequest`] when the entity is not acceptable, [`Error::Unauthorized`]
/// when the signature does not verify or no key is found; nothing changes then.
pub async fn receive_public(pod: &Pod, envelope: &MagicEnvelope, entity: &Entity) -> Result<Outcome> {
    let signer = envelope.key_id().trim().to_ascii_lowercase();
    if !valid_diaspora_id(&signer) {
        return Err(Error::bad("the envelope's key_id is not a diaspora ID"));
    }
    check_author(entity, &signer)?;
    if let Entity::Profile(profile) = entity {
        let extended = [&profile.bio, &profile.birthday, &profile.gender, &profile.location];
        if profile.public != Some(true) && extended.iter().any(|field| field.is_some()) {
            return Err(Error::bad(
                "a profile that is not public came in a public envelope with its extended fields",
            ));
        }
    }
    if is_local(pod, &signer) {
        return Ok(Outcome::Ignored(format!("{signer} is an account of this pod")));
    }
    let sender = people::discover(&pod.store, &pod.http, &signer, pod.config.federation.allow_http)
        .await
        .map_err(|e| Error::Unauthorized(format!("no key for the signer {signer}: {}", e.client_message())))?;
    let key = public_key_from_pem(&sender.public_key_pem)
        .map_err(|_| Error::internal(format!("the stored key of {signer} is unreadable")))?;
    let checked = envelope.clone();
    tokio::task::spawn_blocking(move || checked.verify(&key))
        .await
        .map_err(|e| Error::internal(format!("verification task: {e}")))??;
    apply(pod, &sender, entity).await
}

/// Applies a `profile` or `account_deletion` whose envelope `sender` signed (verified
/// by the caller): see the module doc. [`Error::BadRequest`] when the author is not the
/// signer or the profile breaks diaspora*'s rules; other entities are ignored.
pub async fn apply(pod: &Pod, sender: &Person, entity: &Entity) -> Result<Outcome> {
    check_author(entity, &sender.diaspora_id)?;
    let id = &sender.diaspora_id;
    if is_local(pod, id) {
        return Ok(Outcome::Ignored(format!("{id} is an account of this pod")));
    }
    if let Some(new_id) = &sender.moved_to {
        return Ok(Outcome::Ignored(format!("{id} moved to {new_id}")));
    }
    if sender.closed_unix.is_some() {
        return Ok(Outcome::Ignored(format!("{id} closed their account")));
    }
    match entity {
        Entity::Profile(profile) => apply_profile(pod, sender, profile).await,
        Entity::AccountDeletion(_) => apply_deletion(pod, sender).await,
        _ => Ok(Outcome::Ignored(format!("not a profile or account deletion from {id}"))),
    }
}

fn check_author(entity: &Entity, signer: &str) -> Result<()> {
    let author = match entity {
        Entity::Profile(profile) => &profile.author,
        Entity::AccountDeletion(deletion) => &deletion.author,
        _ => return Ok(()),
    };
    if !author.trim().eq_ignore_ascii_case(signer) {
        return Err(Error::bad(format!(
            "the entity's author {} is not its signer {signer}",
            author.trim()
        )));
    }
    Ok(())
}

fn is_local(pod: &Pod, id: &str) -> bool {
    host_of(id) == Some(pod.config.public_host().as_str())
}

/// The name a contact shows for `person` (`person_name`): none when it would only
/// repeat the diaspora ID.
fn contact_name(person: &Person) -> Option<String> {
    Some(person.display_name()).filter(|name| *name != person.diaspora_id)
}

/// `known` with what `profile` says: names, avatar URLs (relative ones resolved
/// against the person's pod; medium and small fall back to the larger ones, as
/// diaspora* shows them) and whether they may be found. Key, guid and pod stay.
pub fn with_profile(known: &Person, profile: &Profile) -> Person {
    let text = |value: &Option<String>| value.as_deref().map(str::trim).unwrap_or_default().to_string();
    let (first_name, last_name) = (text(&profile.first_name), text(&profile.last_name));
    let full_name = match text(&profile.full_name) {
        full if !full.is_empty() => full,
        _ => format!("{first_name} {last_name}").trim().to_string(),
    };
    let base = format!("{}/", known.pod_origin.trim_end_matches('/'));
    let photo = |url: &Option<String>| {
        url.as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .and_then(|url| resolve_url(&base, url))
    };
    let large = photo(&profile.image_url);
    let medium = photo(&profile.image_url_medium).or_else(|| large.clone());
    let small = photo(&profile.image_url_small).or_else(|| medium.clone());
    Person {
        full_name,
        first_name,
        last_name,
        photo_url: large.unwrap_or_default(),
        photo_medium_url: medium.unwrap_or_default(),
        photo_small_url: small.unwrap_or_default(),
        searchable: profile.searchable.unwrap_or(true),
        ..known.clone()
    }
}

/// The open local accounts that have `id` among their contacts.
fn accounts_with_contact(pod: &Pod, id: &str) -> Result<Vec<String>> {
    Ok(AccountStore::accounts(&pod.store)?
        .into_iter()
        .filter(|a| a.closed.is_none() && a.contacts.iter().any(|c| c.diaspora_id == id))
        .map(|a| a.username)
        .collect())
}

async fn apply_profile(pod: &Pod, sender: &Person, profile: &Profile) -> Result<Outcome> {
    validate_profile(profile).map_err(|problems| {
        Error::bad(format!(
            "the profile of {} breaks diaspora*'s rules: {}",
            sender.diaspora_id,
            problems.join("; ")
        ))
    })?;
    let id = sender.diaspora_id.clone();
    let affected = accounts_with_contact(pod, &id)?;
    let changed = pod.store.transaction(|tx| {
        let known = PeopleTx::person(tx, &id)?.unwrap_or_else(|| sender.clone());
        if known.moved_to.is_some() || known.closed_unix.is_some() {
            return Ok(0);
        }
        let updated = with_profile(&known, profile);
        let mut changed = 0;
        if updated != known {
            tx.put_person(&updated)?;
            changed += 1;
        }
        let name = contact_name(&updated);
        for username in &affected {
            let renamed = account::update_open_in(tx, username, |account| {
                for contact in account.contacts.iter_mut().filter(|c| c.diaspora_id == id) {
                    contact.person_name = name.clone();
                }
                Ok(())
            })?;
            changed += renamed.is_some_and(|(_, written)| written) as usize;
        }
        Ok(changed)
    })?;
    if changed == 0 {
        return Ok(Outcome::Ignored(format!("the profile of {id} changes nothing")));
    }
    pod.store.durable().await?;
    pod.signals.backups.ring();
    Ok(Outcome::Applied(format!("the profile of {id}")))
}

async fn apply_deletion(pod: &Pod, sender: &Person) -> Result<Outcome> {
    let id = sender.diaspora_id.clone();
    let affected = accounts_with_contact(pod, &id)?;
    let now = now_unix();
    let removed = pod.store.transaction(|tx| {
        let mut known = PeopleTx::person(tx, &id)?.unwrap_or_else(|| sender.clone());
        if known.closed_unix.is_none() {
            known.closed_unix = Some(now);
            tx.put_person(&known)?;
        }
        let mut removed = 0;
        for username in &affected {
            let left = account::update_open_in(tx, username, |account| {
                account.contacts.retain(|c| c.diaspora_id != id);
                Ok(())
            })?;
            removed += left.is_some_and(|(_, written)| written) as usize;
        }
        Ok(removed)
    })?;
    pod.store.durable().await?;
    pod.signals.backups.ring();
    tracing::info!(diaspora_id = %id, contacts_removed = removed, "account deletion received");
    Ok(Outcome::Applied(format!(
        "the account deletion of {id} ({removed} contacts removed)"
    )))
}

/// Closes an account at its owner's request: sign-in ends, discovery answers 404, the
/// private key, contacts and profile are deleted, and the username is never reused.
/// diaspora*'s `account_deletion`, signed with the account's key before the key is
/// wiped, is queued for its contacts' pods in the unit of work that wipes it, and
/// local users lose it from their contacts there too.
pub async fn delete_account(pod: &Pod, username: &str, password: &str) -> Result<()> {
    let account = account::open_account(&pod.store, username)?;
    account::check_current_password(&account, password).await?;
    let deliveries = deletion_deliveries(pod, &account).await?;
    let own_id = account.diaspora_id(&pod.config.public_host());
    let local_contacts: Vec<String> = AccountStore::accounts(&pod.store)?
        .into_iter()
        .filter(|a| a.username != username && a.closed.is_none())
        .filter(|a| a.contacts.iter().any(|c| c.diaspora_id == own_id))
        .map(|a| a.username)
        .collect();
    pod.store.transaction(|tx| {
        account::update_in(tx, username, |account| {
            account::wipe(account, None);
            Ok(())
        })?;
        for (id, delivery) in &deliveries {
            crate::delivery::enqueue_in(tx, *id, delivery)?;
        }
        for other in &local_contacts {
            account::update_open_in(tx, other, |account| {
                account.contacts.retain(|c| c.diaspora_id != own_id);
                Ok(())
            })?;
        }
        Ok(())
    })?;
    pod.store.durable().await?;
    pod.signals.backups.ring();
    pod.signals.outbox.ring();
    tracing::info!(%username, told = deliveries.len(), "account deleted by its owner");
    Ok(())
}

#[cfg(test)]
mod tests;
