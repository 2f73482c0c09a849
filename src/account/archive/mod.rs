//! The diaspora* archive: an account's portable form (docs/formats.md, "The account
//! archive").
//!
//! Owns reading an archive that a user brings ([`read_archive`]: plain JSON, gzip, or
//! what lifeboat itself writes), every check it must pass before lifeboat holds it, and
//! writing an account back out ([`write_archive`]) as a version "2.0" archive that
//! validates against diaspora*'s schema and that diaspora*'s importer takes. Also owns
//! the rules of the archive's lifeboat-only parts: `known_pods` ([`add_known_pod`],
//! capped at [`KNOWN_PODS_CAP`]) and the carried avatar ([`sniff_image`],
//! [`AVATAR_MAX_BYTES`]).
//!
//! What an import checks, in this order, reporting each problem as
//! `path: what is wrong`:
//! 1. the size, also after decompression, without ever unpacking more than the limit;
//! 2. `version` is "2.0" (what diaspora* writes since its archive became importable;
//!    the older 1.x exports had another shape and no importer reads them);
//! 3. diaspora*'s own schemas (the [`schema`] submodule), which diaspora*'s importer
//!    applies too, so nothing accepted here could later stop a move to a diaspora* pod;
//! 4. what lifeboat and diaspora*'s validators need beyond the schema: the private key
//!    parses (and has 2,048 to 4,096 bits), the profile keeps diaspora*'s limits
//!    (docs/formats.md, "What diaspora*'s validators refuse"), contacts and blocks are
//!    diaspora IDs, guids are guids, public keys parse, the `lifeboat` key is well
//!    formed.
//!
//! Sections lifeboat does not use are kept verbatim (in order) and written back
//! unchanged; the contacts' public keys stay the user's data and never become keys this
//! pod trusts for those people (the people store is filled by discovery only).
//!
//! Not owned here: creating the account (the caller sets username, guid, keys and
//! password, then calls [`apply_to`]), sealing (`sealed`), HTTP (`web`).

mod json;
mod read;
mod schema;
mod write;

pub use read::*;
pub use write::*;

use std::io::{BufRead, BufReader, Read};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use flate2::read::MultiGzDecoder;
use serde::Deserialize as _;
use serde_json::{Map, Value};

use json::{Json, Object};

use super::model::{Account, Avatar, ContactData, MovedFrom, ProfileData};
use crate::federation::entities::{valid_diaspora_id, valid_guid, validate_profile, Profile};
use crate::federation::signature::{
    canonical_public_key_pem, check_key_strength, decode_standard_base64, private_key_from_pem, private_key_to_pem,
    public_key_to_pem,
};
use crate::http_client::origin_of;
use crate::{Error, Result};

/// The archive version lifeboat reads and writes (diaspora*'s current one).
pub const ARCHIVE_VERSION: &str = "2.0";
/// The most pods `known_pods` holds; past it the oldest are dropped (docs/formats.md,
/// "known_pods").
pub const KNOWN_PODS_CAP: usize = 2_000;
pub use super::profile::{sniff_image, AVATAR_MAX_BYTES};
/// The version of the archive's `lifeboat` key this binary writes. 2: the contact
/// flags mean what diaspora*'s mean (archives of version 1 have them the other way
/// round, and are read so).
pub const LIFEBOAT_KEY_VERSION: u64 = 2;
/// The longest contact public key text read (a 4,096-bit key in PEM is ~800 bytes).
const MAX_CONTACT_KEY_PEM_BYTES: usize = 16 * 1024;
/// The most problems one refusal lists.
const MAX_PROBLEMS_SHOWN: usize = 8;

/// The keys of `user` that lifeboat reads into the account; every other key of `user`
/// is kept verbatim.
const USER_KEYS: &[&str] = &[
    "username",
    "email",
    "language",
    "private_key",
    "profile",
    "contact_groups",
    "contacts",
    "followed_tags",
    "blocks",
];
/// The top-level keys lifeboat reads; every other one is kept verbatim.
const TOP_KEYS: &[&str] = &["version", "user", "lifeboat"];

/// An archive that passed every check, in the account's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedArchive {
    /// `user.username` as the archive has it (the old pod's username).
    pub username: String,
    /// `user.email`, as written (the caller normalises it).
    pub email: String,
    /// `user.language`; "en" when the archive has none.
    pub language: String,
    /// The old identity's private key, re-encoded as PKCS#1 PEM.
    pub private_key_pem: String,
    /// Its public key, SPKI PEM.
    pub public_key_pem: String,
    pub profile: ProfileData,
    /// Aspect names in the archive's order, without duplicates.
    pub aspects: Vec<String>,
    /// Contacts in the archive's order, one per diaspora ID (the first wins).
    pub contacts: Vec<ContactData>,
    pub followed_tags: Vec<String>,
    /// Blocked diaspora IDs.
    pub blocks: Vec<String>,
    /// The sections lifeboat does not use, in the shape [`Account::verbatim_json`]
    /// documents: `{"user": {...}, "top": {...}}`.
    pub verbatim_json: String,
    /// The identity the archive belongs to: `lifeboat.diaspora_id`, else the profile's
    /// `author` (where diaspora*'s exports carry it).
    pub old_diaspora_id: Option<String>,
    /// `lifeboat.guid`, when the archive came from lifeboat.
    pub old_guid: Option<String>,
    /// Origins of the pods that know the account (docs/formats.md, "known_pods"),
    /// oldest first.
    pub known_pods: Vec<String>,
    /// `lifeboat.avatar`, checked by its bytes.
    pub avatar: Option<Avatar>,
    /// What was repaired or left out to make the archive one diaspora* keeps (aspect
    /// names, contacts that cannot be read...), in words for the user.
    pub repairs: Vec<String>,
}

/// The old private key is wiped from memory when an archive is dropped (a restore
/// keeps an opened archive only until the account exists; docs/restore.md, "Where the
/// opened archive waits").
impl Drop for ImportedArchive {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.private_key_pem);
    }
}

impl ImportedArchive {
    /// Where an account made from this archive came from, for
    /// [`Account::moved_from`]; `None` when the archive names no old identity.
    pub fn moved_from(&self, at_unix: u64) -> Option<MovedFrom> {
        Some(MovedFrom {
            diaspora_id: self.old_diaspora_id.clone()?,
            guid: self.old_guid.clone(),
            public_key_pem: self.public_key_pem.clone(),
            at_unix,
        })
    }
}

/// Copies the archive's data into an account: profile, avatar, aspects, contacts,
/// followed tags, blocks, verbatim sections and known pods. Username, guid, email,
/// language, keys, password and `moved_from` are the account creator's to set
/// (see [`ImportedArchive::moved_from`]).
pub fn apply_to(archive: &ImportedArchive, account: &mut Account) {
    account.profile = archive.profile.clone();
    account.avatar = archive.avatar.clone();
    account.aspects = archive.aspects.clone();
    account.contacts = archive.contacts.clone();
    account.followed_tags = archive.followed_tags.clone();
    account.blocks = archive.blocks.clone();
    account.verbatim_json = archive.verbatim_json.clone();
    account.known_pods = archive.known_pods.clone();
}

/// [`apply_to`], moving the data out of the archive instead of copying it (what a new
/// account made from an archive does: the archive is not used for its data again).
pub fn move_into(archive: &mut ImportedArchive, account: &mut Account) {
    use std::mem::take;
    account.profile = take(&mut archive.profile);
    account.avatar = archive.avatar.take();
    account.aspects = take(&mut archive.aspects);
    account.contacts = take(&mut archive.contacts);
    account.followed_tags = take(&mut archive.followed_tags);
    account.blocks = take(&mut archive.blocks);
    account.verbatim_json = take(&mut archive.verbatim_json);
    account.known_pods = take(&mut archive.known_pods);
}

/// `BASE/avatars/GUID`: where lifeboat serves an uploaded avatar, and the `image_url`
/// an exported profile carries for it.
pub fn avatar_url(base_url: &str, guid: &str) -> String {
    format!("{}/avatars/{guid}", base_url.trim_end_matches('/'))
}

/// Adds a pod to `known_pods`, normalised to its origin (`https://host[:port]`), unless
/// it is already there; past [`KNOWN_PODS_CAP`] the oldest entries are dropped. Returns
/// whether the list changed. A pod already listed keeps its place, so that seeing it
/// again does not change the archive (and trigger a backup push).
///
/// Only for pods learnt from the account's own data or from a *signature-verified*
/// message concerning the account — never a host that an unauthenticated request merely
/// named (docs/formats.md, "known_pods"): that would let anyone grow the archive, or
/// turn a move into a flood of deliveries to hosts of their choosing.
pub fn add_known_pod(list: &mut Vec<String>, origin: &str) -> bool {
    let Ok(origin) = origin_of(origin) else {
        return false;
    };
    if list.contains(&origin) {
        return false;
    }
    list.push(origin);
    if list.len() > KNOWN_PODS_CAP {
        let excess = list.len() - KNOWN_PODS_CAP;
        list.drain(..excess);
    }
    true
}

/// [`add_known_pod`] for many pods at once, with the same result, in time linear in
/// their number (an archive with thousands of contacts adds thousands).
pub(super) fn add_known_pods<S: AsRef<str>>(list: &mut Vec<String>, origins: impl IntoIterator<Item = S>) {
    let mut queue: std::collections::VecDeque<String> = std::mem::take(list).into();
    let mut present: std::collections::HashSet<String> = queue.iter().cloned().collect();
    for origin in origins {
        let Ok(origin) = origin_of(origin.as_ref()) else {
            continue;
        };
        if present.contains(&origin) {
            continue;
        }
        present.insert(origin.clone());
        queue.push_back(origin);
        if queue.len() > KNOWN_PODS_CAP {
            if let Some(oldest) = queue.pop_front() {
                present.remove(&oldest);
            }
        }
    }
    *list = queue.into();
}

#[cfg(test)]
mod tests;
