//! Receiving diaspora*'s public messages (`POST /receive/public`), of which lifeboat
//! acts on the AccountMigration (docs/migration.md), `profile` and `account_deletion`.
//!
//! Order: parse the envelope (any DOCTYPE refused), read the entity; `profile` and
//! `account_deletion` go to [`crate::people::profiles`], anything else but an
//! AccountMigration is accepted and ignored. Then the checks diaspora_federation runs,
//! cheapest first: the entity's own rules ([`AccountMigration::check`]: valid IDs, the
//! profile, `old_identity` when the new identity wrote it), the envelope's signer must
//! be the entity's author; the same move again is a no-op and a different second move
//! of an identity is refused. Then the keys: the old identity's is the stored one when
//! this pod knows the person (a stored key is never replaced by rediscovery), else
//! discovered; the new identity's is discovered at its host (or this pod's own
//! account). The envelope must verify with the author's key and the entity's
//! `signature` with the other identity's key (both forms, [`MigrationForm`]).
//!
//! Only then does anything change, as diaspora*'s `AccountMigration#perform!` changes
//! it: the new identity's person takes the entity's profile (names, avatar URLs,
//! searchable); every local contact of the old identity is re-pointed, except where the
//! user already has a contact for the new identity, which stays as it is while the old
//! one goes (`eliminate_person_duplicates`); blocks of the old identity block the new
//! one; and when the old identity is a local account it is closed — at once if the
//! user flagged the move, else after 72 hours unless the user says "this was not me".
//!
//! Then diaspora*'s `dispatch_contacts`: every local user whose contact for the new
//! identity has `sharing` (the mover shares with them) sends the new identity a
//! `contact` with `sharing` = `following` = the contact's `receiving` and `blocking` =
//! whether the user blocks them. The move's unit of work records each such re-send
//! ([`ResendTx::queue_resend`]); [`send_contact_resends`] signs them afterwards, a few
//! right after the move and the rest from the minute loop, each signature taking a
//! token of the user's private-message rate limit (an RSA private-key operation of the
//! account, like a decryption), and queues them in the outbox.
//!
//! Trees: `moves_in` (old diaspora ID -> [`ReceivedMove`]), `pending_closures`
//! (username -> [`PendingClosure`]), `contact_moves` (username 0x00 new ID -> old ID,
//! for the contacts page's notice), `contact_resends` (see [`ResendStore`]).

use serde::{Deserialize, Serialize};

use super::{MovesStore, MovesTx};
use crate::account::{self, now_unix, wipe, Account, AccountStore, AccountTx, TxResult};
use crate::delivery::NewDelivery;
use crate::federation::discovery::resolve_url;
use crate::federation::entities::{
    parse_entity, AccountMigration, CheckedMigration, Contact, Entity, MigrationForm, Profile,
};
use crate::federation::envelope::MagicEnvelope;
use crate::federation::signature::public_key_from_pem;
use crate::http_client::origin_of;
use crate::mail::Mail;
use crate::people::profiles;
use crate::people::{self, PeopleStore, Person};
use crate::pod::Pod;
use crate::sharing;
use crate::store::abort;
use crate::{Error, Result};

/// How long an unflagged move of a local account waits for "this was not me".
pub const CLOSE_DELAY_SECS: u64 = 72 * 3600;

/// The most local users one received move makes send a `contact` (a hobby pod has far
/// fewer; past it the move still applies and the rest are logged, not sent).
pub const MAX_RESENDS_PER_MOVE: usize = 1_000;

/// Re-sends signed right after a move, before it is answered.
pub const RESENDS_AFTER_A_MOVE: usize = 20;

/// Re-sends signed per run of the minute loop.
pub const RESENDS_PER_RUN: usize = 100;

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

/// A local user's `contact` owed to an identity that moved (`new_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resend {
    pub username: String,
    pub new_id: String,
}

/// The storage the re-sends need outside a unit of work (implemented in `store::moves`).
pub trait ResendStore {
    /// Up to `limit` waiting re-sends, in key order.
    fn waiting_resends(&self, limit: usize) -> Result<Vec<Resend>>;
}

/// The re-sends inside a unit of work (implemented in `store::moves`).
pub trait ResendTx {
    /// Records that `resend` is owed (again: once).
    fn queue_resend(&self, resend: &Resend) -> TxResult<()>;
    /// Removes `resend`; false when it was not waiting (another run took it).
    fn take_resend(&self, resend: &Resend) -> TxResult<bool>;
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
    receive_migration(pod, &envelope, &migration, xml).await
}

/// A parsed AccountMigration: see the module doc for the order of the checks.
async fn receive_migration(
    pod: &Pod,
    envelope: &MagicEnvelope,
    migration: &AccountMigration,
    xml: &str,
) -> Result<Received> {
    let checked = migration.check()?;
    let sender = envelope.key_id().trim().to_ascii_lowercase();
    if sender != migration.author {
        return Err(Error::bad(format!(
            "the envelope is signed as {sender:?}, but the account_migration's author is {:?}",
            migration.author
        )));
    }
    let CheckedMigration { form, old_id, new_id } = &checked;
    if let Some(known) = received(pod, old_id)? {
        if known.new_id == *new_id {
            return Ok(Received::AlreadyKnown);
        }
        return Err(Error::Conflict(format!(
            "{old_id} has already moved to {}",
            known.new_id
        )));
    }
    let old_key = public_key_from_pem(&old_identity_key(pod, old_id).await?)?;
    let new_person = new_identity(pod, new_id).await?;
    let new_key = public_key_from_pem(&new_person.public_key_pem)?;
    let (envelope_key, signature_key) = match form {
        MigrationForm::OldAuthor => (&old_key, &new_key),
        MigrationForm::NewAuthor => (&new_key, &old_key),
    };
    envelope.verify(envelope_key)?;
    migration.verify_signature(signature_key)?;
    let new_person = if local_username(pod, new_id).is_some() {
        new_person
    } else {
        with_profile(new_person, &migration.profile)
    };
    apply(pod, old_id, &new_person, xml).await?;
    Ok(Received::Applied)
}

/// A move already applied for `old_id`.
pub fn received(pod: &Pod, old_id: &str) -> Result<Option<ReceivedMove>> {
    pod.store.received_move(old_id)
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

/// A local account as a person, as other pods discover it.
fn local_person(pod: &Pod, account: &Account) -> Result<Person> {
    let base = pod.config.public_url();
    let (photo, medium, small) = account::profile::photo_urls(account, &base);
    Ok(Person {
        diaspora_id: account.diaspora_id(&pod.config.public_host()),
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
    })
}

/// The new identity: this pod's own account, else discovered at its host (the stored
/// person while fresh, never with its stored key replaced by rediscovery).
async fn new_identity(pod: &Pod, new_id: &str) -> Result<Person> {
    if let Some(user) = local_username(pod, new_id) {
        return local_person(pod, &account::open_account(&pod.store, user)?);
    }
    people::discover(&pod.store, &pod.http, new_id, pod.config.federation.allow_http).await
}

/// The new identity as the migration's profile describes it, over what discovery
/// found, as diaspora*'s `Receive.profile` takes it: the names and `searchable` from the
/// entity (absent ones empty, `searchable` true by default), each avatar URL from the
/// entity when it has a usable one (a path is resolved against the person's pod), else
/// the discovered one (lifeboat keeps absolute URLs only).
fn with_profile(mut person: Person, profile: &Profile) -> Person {
    let text = |value: &Option<String>| value.as_deref().map(str::trim).unwrap_or_default().to_string();
    person.first_name = text(&profile.first_name);
    person.last_name = text(&profile.last_name);
    person.full_name = text(&profile.full_name);
    person.searchable = profile.searchable.unwrap_or(true);
    let base = person.pod_origin.clone();
    let photos = [
        (&profile.image_url, &mut person.photo_url),
        (&profile.image_url_medium, &mut person.photo_medium_url),
        (&profile.image_url_small, &mut person.photo_small_url),
    ];
    for (given, stored) in photos {
        if let Some(url) = given.as_deref().map(str::trim).and_then(|u| resolve_url(&base, u)) {
            *stored = url;
        }
    }
    person
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
    let has_contact = |a: &Account, id: &str| a.contacts.iter().any(|c| c.diaspora_id.eq_ignore_ascii_case(id));
    let affected: Vec<String> = AccountStore::accounts(&pod.store)?
        .into_iter()
        .filter(|a| {
            a.closed.is_none()
                && (has_contact(a, old_id)
                    || has_contact(a, &new_id)
                    || a.blocks.iter().any(|b| b.eq_ignore_ascii_case(old_id)))
        })
        .map(|a| a.username)
        .collect();
    let local_old = local_username(pod, old_id).map(str::to_string);
    let mail_id = pod.store.generate_id()?;
    let (repointed, resends) = pod.store.transaction(|tx| {
        if let Some(known) = MovesTx::received_move(tx, old_id)? {
            if known.new_id != new_id {
                return abort(Error::Conflict(format!(
                    "{old_id} has already moved to {}",
                    known.new_id
                )));
            }
            return Ok((0, 0));
        }
        tx.put_received_move(&record)?;
        let (mut repointed, mut resends) = (0usize, 0usize);
        for username in &affected {
            let mut moved_contact = false;
            let Some((account, _)) = crate::account::update_open_in(tx, username, |account| {
                moved_contact = repoint(account, old_id, new_person);
                if moved_contact {
                    if let Ok(origin) = origin_of(&new_person.pod_origin) {
                        crate::account::archive::add_known_pod(&mut account.known_pods, &origin);
                    }
                }
                repoint_blocks(account, old_id, &new_id);
                Ok(())
            })?
            else {
                continue;
            };
            if moved_contact {
                repointed += 1;
                tx.note_contact_moved(username, &new_id, old_id)?;
            }
            let shares_with_user = account.contacts.iter().any(|c| c.diaspora_id == new_id && c.sharing);
            if shares_with_user && resends < MAX_RESENDS_PER_MOVE {
                tx.queue_resend(&Resend {
                    username: username.clone(),
                    new_id: new_id.clone(),
                })?;
                resends += 1;
            }
        }
        if let Some(user) = &local_old {
            if let Some(account) = AccountTx::account(tx, user)? {
                schedule_closure(pod, tx, &account, &new_id, xml, mail_id)?;
            }
        }
        Ok((repointed, resends))
    })?;
    pod.store.durable().await?;
    pod.mailer.wake();
    pod.signals.backups.ring();
    if resends == MAX_RESENDS_PER_MOVE {
        tracing::warn!(%old_id, %new_id, "more local users share with the mover than one move re-sends contacts for ({MAX_RESENDS_PER_MOVE}); the rest are not told");
    }
    tracing::info!(%old_id, %new_id, contacts_repointed = repointed, contacts_to_resend = resends, "move applied");
    if resends > 0 {
        if let Err(e) = send_contact_resends(pod, RESENDS_AFTER_A_MOVE).await {
            tracing::warn!(%new_id, "re-sending contacts after a move: {e} (the minute loop retries)");
        }
    }
    if let Some(user) = local_old {
        close_if_due(pod, &user).await?;
    }
    Ok(())
}

/// Re-points the contact `old_id` of `account` to the new identity. Where the user
/// already has a contact for the new identity, that one stays as it is and the old one
/// is dropped, as diaspora*'s `eliminate_person_duplicates` does. Returns whether the
/// account had a contact for `old_id`.
fn repoint(account: &mut Account, old_id: &str, new_person: &Person) -> bool {
    let Some(index) = account
        .contacts
        .iter()
        .position(|c| c.diaspora_id.eq_ignore_ascii_case(old_id))
    else {
        return false;
    };
    let new_id = &new_person.diaspora_id;
    if account
        .contacts
        .iter()
        .any(|c| c.diaspora_id.eq_ignore_ascii_case(new_id))
    {
        account.contacts.remove(index);
        return true;
    }
    let contact = &mut account.contacts[index];
    contact.diaspora_id = new_id.clone();
    contact.person_guid = Some(new_person.guid.clone());
    contact.person_name = Some(new_person.display_name()).filter(|n| n != new_id);
    contact.public_key = Some(new_person.public_key_pem.clone());
    true
}

/// Blocks of `old_id` now block `new_id` (in the same place), each person once.
fn repoint_blocks(account: &mut Account, old_id: &str, new_id: &str) {
    if !account.blocks.iter().any(|b| b.eq_ignore_ascii_case(old_id)) {
        return;
    }
    let mut blocks: Vec<String> = Vec::with_capacity(account.blocks.len());
    for block in account.blocks.drain(..) {
        let block = if block.eq_ignore_ascii_case(old_id) {
            new_id.to_string()
        } else {
            block
        };
        if !blocks.iter().any(|b| b.eq_ignore_ascii_case(&block)) {
            blocks.push(block);
        }
    }
    account.blocks = blocks;
}

/// The `contact` diaspora*'s `Entities.contact` builds for a local user's contact:
/// `sharing` = `following` = the user shares with them (`receiving`), `blocking` =
/// the user blocks them. A blocked person is never also shared with in the message
/// (diaspora* stops sharing when it blocks; lifeboat's block list does not touch the
/// contact, so the flag is cleared here).
fn contact_for(user_id: &str, new_id: &str, receiving: bool, blocking: bool) -> Contact {
    let shares = receiving && !blocking;
    Contact {
        author: user_id.to_string(),
        recipient: new_id.to_string(),
        following: shares,
        sharing: shares,
        blocking,
    }
}

/// Sends up to `limit` waiting re-sends (see the module doc): each is signed by its
/// user, unless the user's private-message rate limit is spent (then it waits for the
/// next run), and queued in the outbox, replacing that user's waiting messages to the
/// person. A re-send whose contact is gone or no longer shares is dropped. When the
/// new identity is an account of this pod, the sharing is recorded there directly.
/// Returns how many were queued or recorded.
pub async fn send_contact_resends(pod: &Pod, limit: usize) -> Result<usize> {
    let mut done = 0;
    for resend in pod.store.waiting_resends(limit)? {
        match send_one_resend(pod, &resend).await {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(username = %resend.username, new_id = %resend.new_id, "contact re-send not sent yet: {e}")
            }
        }
    }
    if done > 0 {
        pod.signals.outbox.ring();
    }
    Ok(done)
}

async fn send_one_resend(pod: &Pod, resend: &Resend) -> Result<bool> {
    let host = pod.config.public_host();
    let drop = |why: &str| -> Result<bool> {
        tracing::debug!(username = %resend.username, new_id = %resend.new_id, "contact re-send dropped: {why}");
        pod.store.transaction(|tx| tx.take_resend(resend))?;
        Ok(false)
    };
    let account = match AccountStore::account(&pod.store, &resend.username)? {
        Some(account) if account.closed.is_none() => account,
        _ => return drop("the user is gone"),
    };
    let Some(contact) = account.contacts.iter().find(|c| c.diaspora_id == resend.new_id) else {
        return drop("the contact is gone");
    };
    if !contact.sharing {
        return drop("the person no longer shares with the user");
    }
    let blocking = account.blocks.iter().any(|b| b.eq_ignore_ascii_case(&resend.new_id));
    let message = contact_for(&account.diaspora_id(&host), &resend.new_id, contact.receiving, blocking);
    if let Some(new_user) = local_username(pod, &resend.new_id) {
        // The new identity lives here: what the message would say is recorded at once.
        let sender = local_person(pod, &account)?;
        let shares = message.sharing;
        pod.store.transaction(|tx| {
            if !tx.take_resend(resend)? {
                return Ok(());
            }
            if let Some(previous) = AccountTx::account(tx, new_user)? {
                if previous.closed.is_none() {
                    let mut target = previous.clone();
                    sharing::record_sharing(&mut target, &sender, shares);
                    if target != previous {
                        tx.put_account(Some(&previous), &target)?;
                    }
                }
            }
            Ok(())
        })?;
        pod.store.durable().await?;
        pod.signals.backups.ring();
        return Ok(true);
    }
    let Some(person) = pod.store.person(&resend.new_id)? else {
        return drop("the new identity is not known here");
    };
    if !pod.limits.receive_private_per_account.allow(&account.username) {
        return Ok(false);
    }
    let delivery = sharing::seal_contact_entity(&account, &person, message).await?;
    let earlier = crate::delivery::OutboxStore::topic_ids(&pod.store, &delivery.topic)?;
    let id = pod.store.generate_id()?;
    let queued = pod.store.transaction(|tx| {
        if !tx.take_resend(resend)? {
            return Ok(false);
        }
        crate::delivery::cancel_pending_in(tx, &earlier)?;
        crate::delivery::enqueue_in(tx, id, &delivery)?;
        Ok(true)
    })?;
    pod.store.durable().await?;
    if queued {
        tracing::info!(username = %account.username, new_id = %resend.new_id, "contact re-sent to a moved identity");
    }
    Ok(queued)
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
) -> TxResult<()> {
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
    tx.put_pending_closure(
        &account.username,
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
    pod.store.pending_closure(username)
}

/// "This was not me": cancels a pending closure.
pub async fn cancel_closure(pod: &Pod, username: &str) -> Result<()> {
    MovesStore::cancel_closure(&pod.store, username)?;
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
        tx.remove_pending_closure(username)?;
        for (id, origin) in ids.iter().zip(&origins) {
            crate::delivery::enqueue_in(
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
    pod.signals.outbox.ring();
    tracing::info!(%username, moved_to = %pending.new_id, relayed_to = origins.len(), "account closed after its move");
    Ok(true)
}

/// Closes every account whose waiting period is over (run periodically).
pub async fn close_due(pod: &Pod) -> Result<()> {
    for username in pod.store.pending_closures()? {
        close_if_due(pod, &username).await?;
    }
    Ok(())
}

/// The old identity a local user's contact moved from, for the contacts page.
pub fn contact_moved_from(pod: &Pod, username: &str, new_id: &str) -> Result<Option<String>> {
    pod.store.contact_moved_from(username, new_id)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;
