//! The account as lifeboat stores it. Its portable part is exactly a diaspora* archive
//! (docs/formats.md, "The account archive"): [`crate::account::archive`] converts
//! between the two.

use serde::{Deserialize, Serialize};

/// One local account.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Account {
    /// `[a-z0-9_]{1,32}`, unique on this pod, never reused once closed.
    pub username: String,
    /// The person's diaspora* guid (fresh for every account, also after a move).
    pub guid: String,
    /// Normalised email address (see [`crate::account::normalize_email`]).
    pub email: String,
    /// Whether the owner has proved the address (restore depends on that mailbox).
    pub email_confirmed: bool,
    /// Argon2id PHC string of the sign-in password.
    pub password_hash: String,
    /// UI language, an ISO 639 code ("en").
    pub language: String,
    /// PKCS#1 PEM of the account's RSA private key.
    pub private_key_pem: String,
    /// SPKI PEM of the public key (derived; kept to avoid re-deriving on every hCard).
    pub public_key_pem: String,
    pub created_unix: u64,
    pub profile: ProfileData,
    /// Aspects (`contact_groups`), by name, in the user's order.
    pub aspects: Vec<String>,
    pub contacts: Vec<ContactData>,
    pub followed_tags: Vec<String>,
    /// Blocked people, by diaspora ID.
    pub blocks: Vec<String>,
    /// Archive sections lifeboat does not use itself, kept verbatim as JSON text: an
    /// object with the unknown keys of `user` under "user" and the unknown top-level
    /// keys (e.g. `others_data`) under "top". Written back unchanged on export.
    pub verbatim_json: String,
    /// Origins (`https://host[:port]`) of pods that know this account (docs/formats.md,
    /// "known_pods").
    pub known_pods: Vec<String>,
    /// An avatar uploaded to lifeboat.
    pub avatar: Option<Avatar>,
    /// The identity this account moved from (a restore, a move-in or an import).
    pub moved_from: Option<MovedFrom>,
    /// Set when the account is closed: it cannot sign in and discovery answers 404.
    pub closed: Option<Closed>,
    /// Set when the user pressed "Move to another pod": a received migration applies at once.
    pub moving: bool,
    /// The key backups are sealed with, derived from the user's pass phrase (which is
    /// never stored). None: no pass phrase set yet, or backups refused.
    pub sealing_key: Option<crate::sealed::SealingKey>,
    /// The user chose not to have encrypted backups.
    pub backups_opted_out: bool,
}

/// The diaspora* profile fields (the limits of docs/formats.md, "What diaspora*'s
/// validators refuse", apply when they are entered).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProfileData {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Image URLs carried over from an imported archive (ours are served locally).
    pub image_url: Option<String>,
    pub image_url_medium: Option<String>,
    pub image_url_small: Option<String>,
    pub bio: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    pub gender: Option<String>,
    pub location: Option<String>,
    pub searchable: bool,
    pub public: bool,
    pub nsfw: bool,
    /// Up to five `#tags`, space separated.
    pub tag_string: Option<String>,
    /// ISO 8601 UTC of the last edit.
    pub edited_at: Option<String>,
}

/// A contact, as the archive's `user.contacts` entry holds it. The two flags mean what
/// diaspora*'s `Contact` model means (docs/formats.md, "Contacts"); the archive's
/// `following` and `followed` are their mirrors, written on export and not stored.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ContactData {
    /// The person's diaspora ID (`account_id`).
    pub diaspora_id: String,
    pub person_guid: Option<String>,
    pub person_name: Option<String>,
    /// SPKI PEM of the person's public key, when known.
    pub public_key: Option<String>,
    /// The person shares with the user: set when their `contact` (sharing) arrives.
    pub sharing: bool,
    /// The user shares with the person: set by putting them into an aspect. A contact
    /// the user shares with is in at least one aspect.
    pub receiving: bool,
    /// Aspect names (`contact_groups_membership`).
    pub aspects: Vec<String>,
}

impl ContactData {
    /// Both share with each other.
    pub fn mutual(&self) -> bool {
        self.sharing && self.receiving
    }
}

/// An uploaded avatar (PNG, JPEG, GIF or WebP, checked by its bytes, at most 512 KiB).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Avatar {
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Where an account came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MovedFrom {
    /// The old diaspora ID.
    pub diaspora_id: String,
    /// The old guid, when the archive had it.
    pub guid: Option<String>,
    /// SPKI PEM of the old public key.
    pub public_key_pem: String,
    pub at_unix: u64,
}

/// Why and when an account was closed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Closed {
    pub at_unix: u64,
    /// The new diaspora ID when it moved away.
    pub moved_to: Option<String>,
}

impl Closed {
    /// Whether the account's uploaded avatar is still kept (and served) at `now`:
    /// for [`crate::account::AVATAR_KEPT_SECS`] after closing.
    pub fn keeps_avatar(&self, now_unix: u64) -> bool {
        now_unix < self.at_unix.saturating_add(crate::account::AVATAR_KEPT_SECS)
    }
}

impl Account {
    /// A new account holding nothing yet: a fresh guid (as diaspora* makes one for every
    /// account, also after a move), the key pair given, created now.
    pub fn fresh(username: &str, email: &str, key_pair: &super::keys::KeyPair, now_unix: u64) -> Account {
        Account {
            username: username.to_string(),
            guid: super::credentials::new_guid(),
            email: email.to_string(),
            email_confirmed: false,
            password_hash: String::new(),
            language: "en".into(),
            private_key_pem: key_pair.private_pem.clone(),
            public_key_pem: key_pair.public_pem.clone(),
            created_unix: now_unix,
            profile: ProfileData::default(),
            aspects: Vec::new(),
            contacts: Vec::new(),
            followed_tags: Vec::new(),
            blocks: Vec::new(),
            verbatim_json: "{}".into(),
            known_pods: Vec::new(),
            avatar: None,
            moved_from: None,
            closed: None,
            moving: false,
            sealing_key: None,
            backups_opted_out: false,
        }
    }

    /// `username@host`.
    pub fn diaspora_id(&self, host: &str) -> String {
        format!("{}@{}", self.username, host)
    }

    /// The name shown for the account.
    pub fn display_name(&self) -> String {
        let name = [self.profile.first_name.as_deref(), self.profile.last_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if name.is_empty() {
            self.username.clone()
        } else {
            name
        }
    }
}
