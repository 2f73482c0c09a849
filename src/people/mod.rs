//! Remote people: finding one over WebFinger + hCard (docs/formats.md, "Discovery"),
//! and the store of people this pod knows, with their public keys.
//!
//! Owns:
//! - [`fetch_person`], the discovery client: WebFinger at the person's host (https
//!   first; `http://` only under `allow_http`, and only when https failed at the
//!   transport level), the `subject` check, the hCard, and a clear
//!   [`Error::Upstream`] for every way a remote answer can be unusable
//!   ([`try_fetch_person`] also tells a pod that did not answer from a final answer);
//! - [`discover`], which answers from the store while a person is fresh and fetches
//!   otherwise;
//! - the rule that **a stored public key is never replaced by rediscovery** (docs/formats.md,
//!   "People this pod knows"): a refreshed profile keeps the stored key (and guid); a different fetched key
//!   is logged and ignored. Only [`replace_identity`], called after a verified
//!   migration, writes a key over another;
//! - the marks that end a person here: `moved_to` (a verified migration) and
//!   `closed_unix` (a verified `account_deletion`, see [`crate::people::profiles`]); both stay
//!   through rediscovery, and [`discover`] answers such a person from the store;
//! - [`PeopleStore`] and [`PeopleTx`], the storage this needs (implemented on the
//!   store in `store::people`).
//!
//! Not owned: verifying migrations (the migration code calls [`replace_identity`]
//! once it has), HTTP itself ([`crate::http_client`]), the formats
//! ([`crate::federation::discovery`]). Contacts' keys in an imported archive are the user's data
//! and never enter this store.

pub mod lookup;
pub mod profiles;
pub mod queue;

use serde::{Deserialize, Serialize};

use crate::federation::discovery::{parse_hcard, parse_jrd, HcardPerson};
use crate::federation::entities::valid_diaspora_id;
use crate::federation::signature::{fingerprint, public_key_from_pem, public_key_to_pem, short_fingerprint};
use crate::http_client::{origin_of, HttpClient, Response};
use crate::{Error, Result};

/// How long a discovered person is used without asking their pod again.
pub const FRESH_FOR_SECS: u64 = 24 * 3600;

/// What WebFinger requests accept.
const JRD_ACCEPT: &str = "application/jrd+json, application/json";
/// What hCard requests accept.
const HCARD_ACCEPT: &str = "text/html";

/// A remote person as this pod knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// `user@host[:port]`, lower case; the store's key.
    pub diaspora_id: String,
    /// The person's guid (the hCard's `.uid`).
    pub guid: String,
    /// SPKI PEM of the key their messages are verified with.
    pub public_key_pem: String,
    /// Display name (`.fn`); may be empty.
    pub full_name: String,
    /// `.given_name`; empty when absent.
    pub first_name: String,
    /// `.family_name`; empty when absent.
    pub last_name: String,
    /// Absolute URL of the large (300×300) avatar; empty when their last `profile`
    /// named none.
    pub photo_url: String,
    /// Absolute URL of the medium (100×100) avatar (as above).
    pub photo_medium_url: String,
    /// Absolute URL of the small (50×50) avatar (as above).
    pub photo_small_url: String,
    /// Whether the person may be found by name.
    pub searchable: bool,
    /// Origin of the pod that answered WebFinger for them (`https://host[:port]`).
    pub pod_origin: String,
    /// When the person was last fetched (seconds since the Unix epoch).
    pub fetched_unix: u64,
    /// Set when a verified migration moved this identity: the new diaspora ID.
    pub moved_to: Option<String>,
    /// Set when the person's verified `account_deletion` arrived (seconds since the
    /// Unix epoch): the account is gone, and nobody adds it again.
    pub closed_unix: Option<u64>,
}

impl Person {
    /// The person an hCard describes, fetched now from the pod at `pod_origin`.
    pub fn from_hcard(diaspora_id: &str, card: HcardPerson, pod_origin: String) -> Person {
        Person {
            diaspora_id: diaspora_id.to_string(),
            guid: card.guid,
            public_key_pem: public_key_to_pem(&card.public_key),
            full_name: card.full_name,
            first_name: card.first_name,
            last_name: card.last_name,
            photo_url: card.photo_large_url,
            photo_medium_url: card.photo_medium_url,
            photo_small_url: card.photo_small_url,
            searchable: card.searchable,
            pod_origin,
            fetched_unix: now_unix(),
            moved_to: None,
            closed_unix: None,
        }
    }

    /// Whether the person was fetched less than [`FRESH_FOR_SECS`] before `now_unix`.
    pub fn is_fresh(&self, now_unix: u64) -> bool {
        now_unix.saturating_sub(self.fetched_unix) < FRESH_FOR_SECS
    }

    /// The name to show: the full name, else first and last name, else the ID.
    pub fn display_name(&self) -> String {
        let full = self.full_name.trim();
        if !full.is_empty() {
            return full.to_string();
        }
        let joined = format!("{} {}", self.first_name.trim(), self.last_name.trim());
        let joined = joined.trim();
        if joined.is_empty() {
            self.diaspora_id.clone()
        } else {
            joined.to_string()
        }
    }
}

/// The result type inside a unit of work.
pub type TxResult<T> = crate::account::TxResult<T>;

/// The people store inside a unit of work that also writes other things (an account's
/// contacts, a queue), so that both change together or not at all.
pub trait PeopleTx {
    /// The person stored under `diaspora_id`.
    fn person(&self, diaspora_id: &str) -> TxResult<Option<Person>>;
    /// Writes `person` under its own diaspora ID. Callers keep the rule that a stored
    /// key is replaced only by a verified migration.
    fn put_person(&self, person: &Person) -> TxResult<()>;
}

/// What [`PeopleStore::change_people`] runs: the stored people in, what to write out.
pub type PeopleChange<'a> = dyn Fn(&[Option<Person>]) -> Result<Vec<Option<Person>>> + 'a;

/// The storage people need. Keys are diaspora IDs (lower case).
pub trait PeopleStore {
    /// The person stored under `diaspora_id`.
    fn person(&self, diaspora_id: &str) -> Result<Option<Person>>;

    /// Every stored person.
    fn people(&self) -> Result<Vec<Person>>;

    /// One unit of work: reads the people stored under `ids` (in that order), hands
    /// them to `change`, and writes each `Some` it returns under the same position's ID
    /// (`None` leaves that entry as it is). All writes happen or none; an `Err` from
    /// `change` writes nothing and is returned. `change` may run more than once.
    /// Returns what `change` returned.
    fn change_people(&self, ids: &[&str], change: &PeopleChange<'_>) -> Result<Vec<Option<Person>>>;
}

use crate::account::now_unix;

/// The stored person, if any.
pub fn get_person<S: PeopleStore + ?Sized>(store: &S, diaspora_id: &str) -> Result<Option<Person>> {
    store.person(diaspora_id)
}

/// Stores a discovered person. When the person is already known, the stored public
/// key, guid, `moved_to` and `closed_unix` stay (docs/formats.md, "People this pod knows": only a verified
/// migration replaces a key)
/// and only the profile, pod and fetch time are refreshed; a fetched key or guid that
/// differs is logged as a warning and ignored. Returns what is stored now.
pub fn store_person<S: PeopleStore + ?Sized>(store: &S, fetched: Person) -> Result<Person> {
    let id = fetched.diaspora_id.clone();
    let written = store.change_people(&[&id], &|current| {
        let merged = match &current[0] {
            None => fetched.clone(),
            Some(known) => Person {
                guid: known.guid.clone(),
                public_key_pem: known.public_key_pem.clone(),
                moved_to: known.moved_to.clone(),
                closed_unix: known.closed_unix,
                ..fetched.clone()
            },
        };
        Ok(vec![Some(merged)])
    })?;
    let stored = written
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| Error::internal("storing a person wrote nothing"))?;
    if !same_key(&stored.public_key_pem, &fetched.public_key_pem) {
        tracing::warn!(
            diaspora_id = %id,
            stored_key = %key_label(&stored.public_key_pem),
            fetched_key = %key_label(&fetched.public_key_pem),
            "rediscovery found another public key; keeping the stored one (only a verified migration replaces it)"
        );
    }
    if stored.guid != fetched.guid {
        tracing::warn!(
            diaspora_id = %id,
            stored_guid = %stored.guid,
            fetched_guid = %fetched.guid,
            "rediscovery found another guid; keeping the stored one"
        );
    }
    Ok(stored)
}

/// Applies a *verified* migration to the store: `new` is stored under its own ID,
/// replacing whatever was known for it, key included, and the old identity, when
/// known, is marked as moved to it (keeping its key, so the same migration still
/// verifies when it arrives again). The same old → new pair again changes nothing
/// harmful; an identity that already moved elsewhere is refused
/// ([`Error::Conflict`]), as is a move onto itself.
pub fn replace_identity<S: PeopleStore + ?Sized>(store: &S, old_id: &str, new: Person) -> Result<()> {
    if old_id == new.diaspora_id {
        return Err(Error::bad(format!("{old_id} cannot move to itself")));
    }
    let new_id = new.diaspora_id.clone();
    store.change_people(&[old_id, &new_id], &|current| {
        let old = match &current[0] {
            None => None,
            Some(known) => match &known.moved_to {
                Some(to) if *to != new_id => {
                    return Err(Error::Conflict(format!("{old_id} has already moved to {to}")));
                }
                _ => Some(Person {
                    moved_to: Some(new_id.clone()),
                    ..known.clone()
                }),
            },
        };
        Ok(vec![old, Some(new.clone())])
    })?;
    Ok(())
}

/// The person `diaspora_id` names: the stored one while fresh (or once moved or
/// closed), else
/// fetched again ([`fetch_person`], run off the async runtime) and stored through
/// [`store_person`], so a stored key is never replaced. When fetching fails and the
/// person is known, the stored person is returned (their pod may be gone; what it
/// last said still holds) and the failure is logged.
///
/// Code that must know whether the identity is live *now* (restore's "is the old
/// account still active" check) calls [`fetch_person`] instead.
pub async fn discover<S: PeopleStore + Sync + ?Sized>(
    store: &S,
    http: &HttpClient,
    diaspora_id: &str,
    allow_http: bool,
) -> Result<Person> {
    let id = diaspora_id.trim();
    let stored = if valid_diaspora_id(id) { store.person(id)? } else { None };
    if let Some(known) = &stored {
        if known.moved_to.is_some() || known.closed_unix.is_some() || known.is_fresh(now_unix()) {
            return Ok(known.clone());
        }
    }
    let client = http.clone();
    let owned = id.to_string();
    let fetched = tokio::task::spawn_blocking(move || fetch_person(&client, &owned, allow_http))
        .await
        .map_err(|e| Error::internal(format!("discovery task failed: {e}")))?;
    match (fetched, stored) {
        (Ok(person), _) => store_person(store, person),
        (Err(e), Some(known)) => {
            tracing::warn!(diaspora_id = %id, error = %e, "refreshing a known person failed; using what is stored");
            Ok(known)
        }
        (Err(e), None) => Err(e),
    }
}

/// Finds a person over the network (blocking: callers use `spawn_blocking`): WebFinger
/// `https://HOST/.well-known/webfinger?resource=acct:ID`, whose `subject` must name the
/// same account, then the hCard it links to. With `allow_http`, a WebFinger request
/// that fails at the transport level over https (no HTTP answer at all) is tried again
/// over `http://` (docs/formats.md, "Outbound requests"). An invalid ID is an
/// [`Error::BadRequest`]; everything that goes wrong remotely is an [`Error::Upstream`]
/// reading "could not discover ID: why".
pub fn fetch_person(http: &HttpClient, diaspora_id: &str, allow_http: bool) -> Result<Person> {
    try_fetch_person(http, diaspora_id, allow_http).map_err(|failure| failure.error)
}

/// Why [`try_fetch_person`] found nobody.
#[derive(Debug)]
pub struct Unfetched {
    /// The error [`fetch_person`] returns.
    pub error: Error,
    /// The person's pod did not answer usably at all (no connection, a timeout, an HTTP
    /// 5xx, 408 or 429): asking again later may work, and asking about anyone else
    /// there now would not. False when the pod answered and the answer was final (no
    /// such account, an unusable document, an invalid ID).
    pub pod_failed: bool,
}

/// [`fetch_person`], telling a pod that failed from a final answer (for the
/// background queue, which retries the one and drops the other).
pub fn try_fetch_person(
    http: &HttpClient,
    diaspora_id: &str,
    allow_http: bool,
) -> std::result::Result<Person, Unfetched> {
    let id = diaspora_id.trim();
    if !valid_diaspora_id(id) {
        return Err(Unfetched {
            error: Error::bad(format!(
                "could not discover {}: not a valid diaspora ID (user@host)",
                shown(id)
            )),
            pod_failed: false,
        });
    }
    let message = |reason: String| Error::Upstream(format!("could not discover {id}: {reason}"));
    let fail = |reason: String| Unfetched {
        error: message(reason),
        pod_failed: false,
    };
    let pod_failed = |reason: String| Unfetched {
        error: message(reason),
        pod_failed: true,
    };
    let status_failure = |response: &Response, origin: &str, what: &str| {
        check_status(response, origin, what).map_err(|reason| {
            if retry_later(response.status) {
                pod_failed(reason)
            } else {
                fail(reason)
            }
        })
    };
    let host = id.split_once('@').map(|(_, host)| host).unwrap_or_default();
    let resource = format!("acct:{id}").replace('[', "%5B").replace(']', "%5D");
    let path = format!("/.well-known/webfinger?resource={resource}");

    let https_url = format!("https://{host}{path}");
    let (webfinger, scheme) = match http.get(&https_url, JRD_ACCEPT) {
        Ok(response) => (response, "https"),
        Err(https_error) if allow_http => match http.get(&format!("http://{host}{path}"), JRD_ACCEPT) {
            Ok(response) => (response, "http"),
            Err(http_error) => {
                return Err(pod_failed(format!(
                    "{}; and over http: {}",
                    message_of(&https_error),
                    message_of(&http_error)
                )))
            }
        },
        Err(https_error) => return Err(pod_failed(message_of(&https_error))),
    };
    let pod_origin = origin_of(&format!("{scheme}://{host}")).map_err(|e| fail(message_of(&e)))?;
    status_failure(&webfinger, &pod_origin, "WebFinger")?;
    let jrd = parse_jrd(&webfinger.body).map_err(|e| fail(message_of(&e)))?;
    if !jrd
        .diaspora_id()
        .is_some_and(|subject| subject.eq_ignore_ascii_case(id))
    {
        return Err(fail(format!(
            "its WebFinger answer is about {}, not acct:{id}",
            shown(&jrd.subject)
        )));
    }

    let hcard = http
        .get(&jrd.hcard_url, HCARD_ACCEPT)
        .map_err(|e| pod_failed(message_of(&e)))?;
    let hcard_origin = origin_of(&hcard.final_url).unwrap_or_else(|_| pod_origin.clone());
    status_failure(&hcard, &hcard_origin, "the hCard request")?;
    let html = String::from_utf8_lossy(&hcard.body);
    let card = parse_hcard(&html, &hcard.final_url).map_err(|e| fail(message_of(&e)))?;
    Ok(Person::from_hcard(&id.to_ascii_lowercase(), card, pod_origin))
}

/// Statuses after which the same request may well succeed later.
fn retry_later(status: u16) -> bool {
    matches!(status, 408 | 429) || status >= 500
}

fn check_status(response: &Response, origin: &str, what: &str) -> std::result::Result<(), String> {
    match response.status {
        200..=299 => Ok(()),
        404 | 410 => Err(format!(
            "{origin} has no such account ({what} answered {})",
            response.status
        )),
        status => Err(format!("{origin} answered {what} with HTTP {status}")),
    }
}

/// An error's message without the variant's decoration.
fn message_of(e: &Error) -> String {
    e.to_string()
}

/// Remote or user-given text in a message: quoted, control characters escaped, cut.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(100).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

fn same_key(a: &str, b: &str) -> bool {
    match (public_key_from_pem(a), public_key_from_pem(b)) {
        (Ok(a), Ok(b)) => fingerprint(&a) == fingerprint(&b),
        _ => a == b,
    }
}

fn key_label(pem: &str) -> String {
    public_key_from_pem(pem)
        .map(|key| short_fingerprint(&key))
        .unwrap_or_else(|_| "unreadable".to_string())
}

#[cfg(test)]
mod tests;
