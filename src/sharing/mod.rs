//! Sharing both ways with diaspora*'s `contact` messages (docs/formats.md, "The
//! encrypted private message"), so that a move reaches everyone who follows an account,
//! not only those it follows.
//!
//! Owns:
//! - **sending**: when a local user starts sharing with a remote person (adds them, or
//!   puts someone who shares with them into an aspect) or stops (removes them), a
//!   `contact` entity signed by the user in a Magic Envelope, encrypted for the person
//!   ([`envelope::encrypt_for`]), is queued in the durable outbox for
//!   `POD/receive/users/GUID`, in the same unit of work as the change to the account,
//!   and, on starting, the user's `profile` with it, as diaspora*'s `share_with` does
//!   ([`crate::people::profiles::profile_delivery`]). A newer message to the same person
//!   replaces one still waiting, so an old one retried late can never undo it;
//! - **receiving** ([`receive_private`], `POST /receive/users/GUID`): rate limits per
//!   client and per account (decrypting attacker-chosen data with the `rsa` crate is
//!   a timing oracle), decryption with the user's key, verification of the inner
//!   envelope with the sender's key (stored, else discovered), and for a `contact`
//!   addressed to the user, the sender recorded among the user's contacts with
//!   `sharing` while they share (in no aspect), removed when neither side shares.
//!   The sender's pod joins the account's `known_pods` (a verified message).
//!
//! A private `profile` or `account_deletion` goes to [`crate::people::profiles::apply`]; every
//! other private entity is accepted and ignored: lifeboat is not a stream server. Whatever fails to decrypt or verify changes nothing; the reason is logged
//! at `warn` and never told to the sender, who gets the same `202` either way.
//!
//! The flags mean what diaspora*'s `Contact` model means: `receiving` is "the user
//! shares with them" (set by putting them into an aspect, so a contact the user shares
//! with is always in one), `sharing` is "they share with the user" (set by their
//! `contact`). Taking someone out of their last aspect stops sharing with them, as
//! diaspora*'s `AspectMembership` does.
//!
//! Not owned: the formats ([`crate::federation::envelope`], [`crate::federation::entities`]), discovery
//! ([`crate::people`]), the outbox's worker ([`crate::delivery`]), the HTTP edge
//! (`web::receive`, `web::account_data`).

use rsa::RsaPrivateKey;

use crate::account::archive::add_known_pod;
use crate::account::{self, profile, Account, AccountStore, ContactData};
use crate::config::Config;
use crate::delivery::NewDelivery;
use crate::federation::entities::{parse_entity, valid_diaspora_id, valid_guid, Contact, Entity};
use crate::federation::envelope::{self, MagicEnvelope};
use crate::federation::signature::{private_key_from_pem, public_key_from_pem};
use crate::people::lookup::FoundPerson;
use crate::people::profiles;
use crate::people::{self, Person};
use crate::pod::Pod;
use crate::{Error, Result};

/// The largest body `POST /receive/users/GUID` reads (and so the largest envelope it
/// decrypts), unless `server.max_body_bytes` is smaller.
pub const MAX_PRIVATE_BODY_BYTES: u64 = 512 * 1024;

/// The most contacts an account holds. Past it, people who start sharing with the
/// user are not recorded (anyone can make identities; the archive must stay bounded).
pub const MAX_CONTACTS: usize = 10_000;

/// The `Content-Type` of an encrypted message.
pub const CONTENT_TYPE: &str = crate::federation::envelope::PRIVATE_CONTENT_TYPE;

/// The body limit of `POST /receive/users/GUID` on this pod.
pub fn body_limit(config: &Config) -> u64 {
    MAX_PRIVATE_BODY_BYTES.min(config.server.max_body_bytes)
}

/// The outbox topic of `username`'s contact messages to `diaspora_id`.
pub fn topic(username: &str, diaspora_id: &str) -> String {
    format!("contact:{username}:{diaspora_id}")
}

// ---------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------

/// `author_id`'s `contact` message to `person` (start sharing when `sharing`, else
/// stop), signed with the author's key and encrypted for the person's, ready for the
/// outbox. CPU work (an RSA signature): callers on the runtime use [`seal_contact`].
pub fn contact_delivery(
    username: &str,
    author_id: &str,
    author_key: &RsaPrivateKey,
    person: &Person,
    sharing: bool,
) -> Result<NewDelivery> {
    let contact = if sharing {
        Contact::start_sharing(author_id, &person.diaspora_id)
    } else {
        Contact::stop_sharing(author_id, &person.diaspora_id)
    };
    contact_entity_delivery(username, author_key, person, &contact)
}

/// [`contact_delivery`] for any `contact` entity: signed as its `author` with
/// `author_key`, encrypted for `person` (its recipient), ready for the outbox.
pub fn contact_entity_delivery(
    username: &str,
    author_key: &RsaPrivateKey,
    person: &Person,
    contact: &Contact,
) -> Result<NewDelivery> {
    if !valid_guid(&person.guid) {
        return Err(Error::Upstream(format!(
            "{} has no usable guid; cannot address a message to them",
            person.diaspora_id
        )));
    }
    let envelope = MagicEnvelope::sign(&contact.to_xml(), &contact.author, author_key).to_xml();
    let recipient_key = public_key_from_pem(&person.public_key_pem)?;
    let body = envelope::encrypt_for(&envelope, &recipient_key)?;
    Ok(NewDelivery {
        topic: topic(username, &person.diaspora_id),
        origin: person.pod_origin.clone(),
        path: format!("/receive/users/{}", person.guid),
        content_type: CONTENT_TYPE.to_string(),
        body: body.into(),
    })
}

/// What a local account sends a person it starts sharing with, off the async
/// runtime: the `contact` (sharing), then the account's `profile`, as diaspora*'s
/// `share_with` sends them ([`profiles::profile_delivery`]).
pub async fn seal_start(pod: &Pod, account: &Account, person: &Person) -> Result<Vec<NewDelivery>> {
    let username = account.username.clone();
    let author_id = account.diaspora_id(&pod.config.public_host());
    let entity = profile::entity(account, &pod.config.public_host(), &pod.config.public_url());
    let private_key_pem = account.private_key_pem.clone();
    let person = person.clone();
    tokio::task::spawn_blocking(move || {
        let key = private_key_from_pem(&private_key_pem)?;
        Ok(vec![
            contact_delivery(&username, &author_id, &key, &person, true)?,
            profiles::profile_delivery(&username, &entity, &key, &person)?,
        ])
    })
    .await
    .map_err(|e| Error::internal(format!("sealing a contact message: {e}")))?
}

/// [`contact_delivery`] for a local account, off the async runtime.
pub async fn seal_contact(pod: &Pod, account: &Account, person: &Person, sharing: bool) -> Result<NewDelivery> {
    let username = account.username.clone();
    let author_id = account.diaspora_id(&pod.config.public_host());
    let private_key_pem = account.private_key_pem.clone();
    let person = person.clone();
    tokio::task::spawn_blocking(move || {
        let key = private_key_from_pem(&private_key_pem)?;
        contact_delivery(&username, &author_id, &key, &person, sharing)
    })
    .await
    .map_err(|e| Error::internal(format!("sealing a contact message: {e}")))?
}

/// [`contact_entity_delivery`] for a local account's `contact`, off the async runtime.
pub async fn seal_contact_entity(account: &Account, person: &Person, contact: Contact) -> Result<NewDelivery> {
    let username = account.username.clone();
    let private_key_pem = account.private_key_pem.clone();
    let person = person.clone();
    tokio::task::spawn_blocking(move || {
        let key = private_key_from_pem(&private_key_pem)?;
        contact_entity_delivery(&username, &key, &person, &contact)
    })
    .await
    .map_err(|e| Error::internal(format!("sealing a contact message: {e}")))?
}

/// Writes `change` to `username`'s account and, when it answers true, queues
/// `deliveries` in the same unit of work (each replacing the messages of its topic
/// still waiting); then makes it durable and wakes the outbox. Returns whether it
/// queued.
async fn change_and_send(
    pod: &Pod,
    username: &str,
    deliveries: &[NewDelivery],
    change: impl Fn(&mut Account) -> Result<bool>,
) -> Result<bool> {
    let mut earlier = Vec::new();
    for delivery in deliveries {
        earlier.extend(crate::delivery::OutboxStore::topic_ids(&pod.store, &delivery.topic)?);
    }
    let ids = deliveries
        .iter()
        .map(|_| pod.store.generate_id())
        .collect::<Result<Vec<_>>>()?;
    let (_, sent) = pod.store.transaction(|tx| {
        let (account, send) = account::update_in(tx, username, &change)?;
        if !send || deliveries.is_empty() {
            return Ok((account, false));
        }
        crate::delivery::cancel_pending_in(tx, &earlier)?;
        for (id, delivery) in ids.iter().zip(deliveries) {
            crate::delivery::enqueue_in(tx, *id, delivery)?;
        }
        Ok((account, true))
    })?;
    pod.store.durable().await?;
    if sent {
        pod.signals.outbox.ring();
    }
    Ok(sent)
}

async fn discover(pod: &Pod, id: &str) -> Result<Person> {
    people::discover(&pod.store, &pod.http, id, pod.config.federation.allow_http).await
}

/// Fills a contact's person fields from the person record.
fn fill_person(contact: &mut ContactData, person: &Person) {
    let found = FoundPerson::from(person.clone());
    contact.person_guid = Some(found.guid);
    contact.person_name = Some(found.full_name).filter(|n| !n.is_empty());
    contact.public_key = Some(found.public_key_pem);
}

fn contact_mut<'a>(account: &'a mut Account, id: &str) -> Option<&'a mut ContactData> {
    account
        .contacts
        .iter_mut()
        .find(|c| c.diaspora_id.eq_ignore_ascii_case(id))
}

/// The aspect a contact goes into: the one chosen (matched ignoring case), else the
/// user's first. A contact the user shares with is always in an aspect.
fn aspect_for(account: &Account, chosen: Option<&str>) -> Result<String> {
    let chosen = chosen.map(str::trim).filter(|c| !c.is_empty());
    match chosen {
        Some(name) => account
            .aspects
            .iter()
            .find(|a| profile::same_aspect_name(a, name))
            .cloned()
            .ok_or_else(|| Error::bad(format!("you have no aspect named {name:?}"))),
        None => account
            .aspects
            .first()
            .cloned()
            .ok_or_else(|| Error::bad("make an aspect first: contacts you share with are put into one")),
    }
}

/// The user adds a person by their diaspora ID (as typed) into `aspect` (their first
/// aspect when None): discovers them, records that the user shares with them
/// (`receiving`), and sends them `contact` (sharing). Someone who already shares with
/// the user becomes mutual.
pub async fn add_contact(pod: &Pod, account: &Account, typed_id: &str, aspect: Option<&str>) -> Result<()> {
    let id = profile::check_diaspora_id(typed_id)?;
    if id == account.diaspora_id(&pod.config.public_host()) {
        return Err(Error::bad("that is you"));
    }
    if account.blocks.iter().any(|b| b.eq_ignore_ascii_case(&id)) {
        return Err(Error::Conflict(format!(
            "you block {id}; unblock them before adding them"
        )));
    }
    if account.contacts.iter().any(|c| c.diaspora_id == id && c.receiving) {
        return Err(Error::Conflict(format!("{id} is already among your contacts")));
    }
    let aspect = aspect_for(account, aspect)?;
    let person = discover(pod, &id).await?;
    if let Some(new_id) = &person.moved_to {
        return Err(Error::bad(format!("{id} has moved to {new_id}; add that ID instead")));
    }
    if person.closed_unix.is_some() {
        return Err(Error::Gone(format!("{id} has closed their account")));
    }
    if account.contacts.len() >= MAX_CONTACTS && !account.contacts.iter().any(|c| c.diaspora_id == id) {
        return Err(Error::bad(format!("at most {MAX_CONTACTS} contacts")));
    }
    let deliveries = seal_start(pod, account, &person).await?;
    change_and_send(pod, &account.username, &deliveries, |a| {
        if !a.contacts.iter().any(|c| c.diaspora_id == person.diaspora_id) {
            a.contacts.push(ContactData {
                diaspora_id: person.diaspora_id.clone(),
                ..Default::default()
            });
        }
        let contact = contact_mut(a, &person.diaspora_id).ok_or_else(|| Error::internal("contact vanished"))?;
        fill_person(contact, &person);
        contact.receiving = true;
        if !contact.aspects.contains(&aspect) {
            contact.aspects.push(aspect.clone());
        }
        add_known_pod(&mut a.known_pods, &person.pod_origin);
        Ok(true)
    })
    .await?;
    tracing::info!(username = %account.username, contact = %person.diaspora_id, "started sharing");
    Ok(())
}

/// The `contact` (stop sharing) for a person the user stops sharing with, or None when
/// their pod cannot be reached: the change goes ahead anyway.
async fn stop_message(pod: &Pod, account: &Account, id: &str) -> Result<Option<NewDelivery>> {
    match discover(pod, id).await {
        Ok(person) => Ok(Some(seal_contact(pod, account, &person, false).await?)),
        Err(e) => {
            tracing::warn!(username = %account.username, contact = %id, "cannot tell {id} that sharing stopped: {e}");
            Ok(None)
        }
    }
}

/// Stops sharing with a contact in place: out of every aspect, `receiving` off. The
/// contact is dropped when the person does not share with the user either.
fn stop_sharing(account: &mut Account, id: &str) -> bool {
    let Some(contact) = contact_mut(account, id) else {
        return false;
    };
    let was_receiving = contact.receiving;
    contact.receiving = false;
    contact.aspects.clear();
    account.contacts.retain(|c| c.sharing || c.receiving);
    was_receiving
}

/// The user removes a contact: stops sharing with them (and tells them so); someone
/// who still shares with the user stays listed, in no aspect.
pub async fn remove_contact(pod: &Pod, account: &Account, id: &str) -> Result<()> {
    let id = id.trim().to_ascii_lowercase();
    let id = id.as_str();
    let was_receiving = account.contacts.iter().any(|c| c.diaspora_id == id && c.receiving);
    let delivery = if was_receiving {
        stop_message(pod, account, id).await?
    } else {
        None
    };
    change_and_send(pod, &account.username, delivery.as_slice(), |a| Ok(stop_sharing(a, id))).await?;
    Ok(())
}

/// The user puts a contact into `aspects`. Putting someone who only shares with the
/// user into an aspect starts sharing with them, and taking someone out of every
/// aspect stops it, as on diaspora*.
pub async fn set_aspects(pod: &Pod, account: &Account, id: &str, aspects: Vec<String>) -> Result<()> {
    let id = id.trim().to_ascii_lowercase();
    let id = id.as_str();
    let contact = account
        .contacts
        .iter()
        .find(|c| c.diaspora_id == id)
        .ok_or_else(|| Error::NotFound("no such contact".into()))?;
    if aspects.is_empty() {
        if !contact.receiving {
            return Ok(());
        }
        let delivery = stop_message(pod, account, id).await?;
        change_and_send(pod, &account.username, delivery.as_slice(), |a| Ok(stop_sharing(a, id))).await?;
        return Ok(());
    }
    let start = if !contact.receiving {
        let person = discover(pod, id).await?;
        if person.closed_unix.is_some() {
            return Err(Error::Gone(format!("{id} has closed their account")));
        }
        Some((seal_start(pod, account, &person).await?, person))
    } else {
        None
    };
    let deliveries = start.as_ref().map(|(d, _)| d.as_slice()).unwrap_or_default();
    change_and_send(pod, &account.username, deliveries, |a| {
        let contact = contact_mut(a, id).ok_or_else(|| Error::NotFound("no such contact".into()))?;
        contact.aspects = aspects.clone();
        match &start {
            Some((_, person)) if !contact.receiving => {
                fill_person(contact, person);
                contact.receiving = true;
                add_known_pod(&mut a.known_pods, &person.pod_origin);
                Ok(true)
            }
            _ => Ok(false),
        }
    })
    .await?;
    Ok(())
}

/// The user deletes an aspect. Contacts for whom it was the only aspect are no longer
/// shared with, and are told so (diaspora*'s `AspectMembership` does the same).
pub async fn delete_aspect(pod: &Pod, account: &Account, name: &str) -> Result<()> {
    let only_here: Vec<String> = account
        .contacts
        .iter()
        .filter(|c| c.receiving && c.aspects.len() == 1 && c.aspects[0] == name)
        .map(|c| c.diaspora_id.clone())
        .collect();
    let mut deliveries = Vec::new();
    for id in &only_here {
        if let Some(delivery) = stop_message(pod, account, id).await? {
            deliveries.push(delivery);
        }
    }
    let mut earlier = Vec::new();
    for delivery in &deliveries {
        earlier.extend(crate::delivery::OutboxStore::topic_ids(&pod.store, &delivery.topic)?);
    }
    let ids = deliveries
        .iter()
        .map(|_| pod.store.generate_id())
        .collect::<Result<Vec<_>>>()?;
    pod.store.transaction(|tx| {
        account::update_in(tx, &account.username, |a| {
            a.aspects.retain(|x| x != name);
            for contact in &mut a.contacts {
                contact.aspects.retain(|x| x != name);
            }
            for id in &only_here {
                stop_sharing(a, id);
            }
            Ok(())
        })?;
        crate::delivery::cancel_pending_in(tx, &earlier)?;
        for (id, delivery) in ids.iter().zip(&deliveries) {
            crate::delivery::enqueue_in(tx, *id, delivery)?;
        }
        Ok(())
    })?;
    pod.store.durable().await?;
    pod.signals.backups.ring();
    if !deliveries.is_empty() {
        pod.signals.outbox.ring();
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Receiving
// ---------------------------------------------------------------------------------

/// What became of a private message that was let in (the sender is told `202` for
/// every one of these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A new contact who shares with the user.
    Recorded,
    /// An existing contact changed.
    Updated,
    /// The contact was removed (neither side shares any more).
    Removed,
    /// Valid, but nothing to change (already so, an entity lifeboat does not handle,
    /// a blocked sender...): why.
    Ignored(String),
    /// It failed to decrypt or verify, or was not acceptable: why (logged, never sent).
    Refused(String),
}

/// `POST /receive/users/GUID`: see the module doc. `client` is the rate-limit key of
/// the caller. Errors: [`Error::RateLimited`], [`Error::NotFound`] for unknown or
/// closed users, internal errors; every other outcome is a [`Received`].
pub async fn receive_private(pod: &Pod, client: &str, guid: &str, body: &[u8]) -> Result<Received> {
    if !pod.limits.receive_private_per_client.allow(client) {
        return Err(Error::RateLimited(
            "too many private messages from this address; try again later".into(),
        ));
    }
    let account = match AccountStore::account_by_guid(&pod.store, guid)? {
        Some(account) if account.closed.is_none() => account,
        _ => return Err(Error::NotFound("no such user on this pod".into())),
    };
    if !pod.limits.receive_private_per_account.allow(&account.username) {
        return Err(Error::RateLimited(
            "too many private messages for this user; try again later".into(),
        ));
    }
    let outcome = receive_for(pod, &account, body, body_limit(&pod.config) as usize).await?;
    match &outcome {
        Received::Refused(why) => {
            tracing::warn!(username = %account.username, %client, "private message refused: {why}")
        }
        Received::Ignored(why) => {
            tracing::debug!(username = %account.username, "private message ignored: {why}")
        }
        done => tracing::info!(username = %account.username, "private message applied: {done:?}"),
    }
    Ok(outcome)
}

/// Opens, verifies and applies a message for `account`; `max_envelope` caps the
/// decrypted envelope.
async fn receive_for(pod: &Pod, account: &Account, body: &[u8], max_envelope: usize) -> Result<Received> {
    let (envelope, sender) = match open(pod, account, body, max_envelope).await? {
        Ok(opened) => opened,
        Err(why) => return Ok(Received::Refused(why)),
    };
    let entity = match envelope.payload_str().and_then(parse_entity) {
        Ok(entity) => entity,
        Err(e) => return Ok(Received::Refused(format!("from {}: {e}", sender.diaspora_id))),
    };
    match entity {
        Entity::Contact(contact) => apply_contact(pod, account, &sender, &contact).await,
        Entity::Profile(_) | Entity::AccountDeletion(_) => match profiles::apply(pod, &sender, &entity).await {
            Ok(profiles::Outcome::Applied(_)) => Ok(Received::Updated),
            Ok(profiles::Outcome::Ignored(why)) => Ok(Received::Ignored(why)),
            Err(e @ Error::Internal(_)) => Err(e),
            Err(e) => Ok(Received::Refused(e.to_string())),
        },
        Entity::Other(name) => Ok(Received::Ignored(format!("{name} from {}", sender.diaspora_id))),
        other => Ok(Received::Ignored(format!(
            "{} from {} (private)",
            entity_name(&other),
            sender.diaspora_id
        ))),
    }
}

fn entity_name(entity: &Entity) -> &'static str {
    match entity {
        Entity::Profile(_) => "profile",
        Entity::AccountMigration(_) => "account_migration",
        Entity::Contact(_) => "contact",
        Entity::AccountDeletion(_) => "account_deletion",
        Entity::Other(_) => "entity",
    }
}

/// Decrypts with the user's key and verifies the inner envelope with its signer's key.
/// The inner `Err` is a refusal, with the reason for the log.
async fn open(
    pod: &Pod,
    account: &Account,
    body: &[u8],
    max_envelope: usize,
) -> Result<std::result::Result<(MagicEnvelope, Person), String>> {
    let Ok(json) = std::str::from_utf8(body) else {
        return Ok(Err("the body is not UTF-8 text".into()));
    };
    let private_key = private_key_from_pem(&account.private_key_pem)
        .map_err(|e| Error::internal(format!("{}'s private key: {e}", account.username)))?;
    let json = json.to_string();
    let decrypted = tokio::task::spawn_blocking(move || envelope::decrypt(&json, &private_key, max_envelope))
        .await
        .map_err(|e| Error::internal(format!("decryption task: {e}")))?;
    let xml = match decrypted {
        Ok(xml) => xml,
        Err(e) => return Ok(Err(format!("not decrypted: {e}"))),
    };
    let envelope = match MagicEnvelope::parse(&xml) {
        Ok(envelope) => envelope,
        Err(e) => return Ok(Err(format!("decrypted, but not an envelope: {e}"))),
    };
    let sender_id = envelope.key_id().trim().to_ascii_lowercase();
    if !valid_diaspora_id(&sender_id) {
        return Ok(Err(format!(
            "the envelope's key_id {:?} is not a diaspora ID",
            envelope.key_id()
        )));
    }
    let sender = match discover(pod, &sender_id).await {
        Ok(person) => person,
        Err(e) => return Ok(Err(format!("no key for the signer {sender_id}: {e}"))),
    };
    let key = match public_key_from_pem(&sender.public_key_pem) {
        Ok(key) => key,
        Err(e) => return Ok(Err(format!("the stored key of {sender_id} is unreadable: {e}"))),
    };
    let checked = envelope.clone();
    let verified = tokio::task::spawn_blocking(move || checked.verify(&key))
        .await
        .map_err(|e| Error::internal(format!("verification task: {e}")))?;
    if let Err(e) = verified {
        return Ok(Err(format!("claims to be from {sender_id}: {e}")));
    }
    Ok(Ok((envelope, sender)))
}

/// A verified `contact` from `sender` to `account`.
async fn apply_contact(pod: &Pod, account: &Account, sender: &Person, contact: &Contact) -> Result<Received> {
    let own_id = account.diaspora_id(&pod.config.public_host());
    if !contact.author.eq_ignore_ascii_case(&sender.diaspora_id) {
        return Ok(Received::Refused(format!(
            "contact authored by {} but signed by {}",
            contact.author, sender.diaspora_id
        )));
    }
    if !contact.recipient.eq_ignore_ascii_case(&own_id) {
        return Ok(Received::Refused(format!(
            "contact from {} is addressed to {}, not {own_id}",
            sender.diaspora_id, contact.recipient
        )));
    }
    if let Some(new_id) = &sender.moved_to {
        return Ok(Received::Ignored(format!(
            "contact from {}, who moved to {new_id}",
            sender.diaspora_id
        )));
    }
    if sender.closed_unix.is_some() {
        return Ok(Received::Ignored(format!(
            "contact from {}, who closed their account",
            sender.diaspora_id
        )));
    }
    let shares = contact.sharing && !contact.blocking;
    let outcome = pod.store.transaction(|tx| {
        account::update_in(tx, &account.username, |a| Ok(record_sharing(a, sender, shares))).map(|(_, outcome)| outcome)
    });
    let outcome = match outcome {
        // Closed between the lookup and now: as if unknown.
        Err(Error::Gone(_)) | Err(Error::NotFound(_)) => {
            return Err(Error::NotFound("no such user on this pod".into()))
        }
        other => other?,
    };
    pod.store.durable().await?;
    Ok(outcome)
}

/// Records that `sender` shares with the user (`shares`) or no longer does.
pub(crate) fn record_sharing(account: &mut Account, sender: &Person, shares: bool) -> Received {
    let id = &sender.diaspora_id;
    let position = account
        .contacts
        .iter()
        .position(|c| c.diaspora_id.eq_ignore_ascii_case(id));
    let outcome = match (position, shares) {
        (None, true) => {
            if account.blocks.iter().any(|b| b.eq_ignore_ascii_case(id)) {
                return Received::Ignored(format!("{id}, whom the user blocks, started sharing"));
            }
            if account.contacts.len() >= MAX_CONTACTS {
                return Received::Ignored(format!(
                    "{id} started sharing, but the user has {MAX_CONTACTS} contacts"
                ));
            }
            let mut contact = ContactData {
                diaspora_id: id.clone(),
                sharing: true,
                ..Default::default()
            };
            fill_person(&mut contact, sender);
            account.contacts.push(contact);
            Received::Recorded
        }
        (None, false) => return Received::Ignored(format!("{id} stopped sharing, but was no contact")),
        (Some(index), true) => {
            let contact = &mut account.contacts[index];
            let before = contact.clone();
            contact.sharing = true;
            fill_person(contact, sender);
            if *contact == before {
                Received::Ignored(format!("{id} already shares with the user"))
            } else {
                Received::Updated
            }
        }
        (Some(index), false) => {
            let contact = &mut account.contacts[index];
            if !contact.sharing {
                return Received::Ignored(format!("{id} stopped sharing, but did not share"));
            }
            contact.sharing = false;
            if contact.receiving {
                Received::Updated
            } else {
                account.contacts.remove(index);
                Received::Removed
            }
        }
    };
    // The pod knows this account: a signature-verified message says so
    // (docs/formats.md, "known_pods").
    add_known_pod(&mut account.known_pods, &sender.pod_origin);
    outcome
}

#[cfg(test)]
mod tests;
