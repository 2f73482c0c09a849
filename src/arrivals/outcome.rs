//! What a restore or move-in answers the pages: the view of an opened archive, the key
//! check, and the outcomes of each step.

use crate::account::archive::ImportedArchive;
use crate::account::{Account, Avatar};

// ---------------------------------------------------------------------------------
// What the pages show
// ---------------------------------------------------------------------------------

/// What the account form shows of an opened archive.
#[derive(Clone, Debug)]
pub struct RestoreView {
    /// The address the link was mailed to (the new account's address).
    pub email: String,
    /// The identity the archive belongs to.
    pub old_id: Option<String>,
    /// The name to show: first and last name, else the old username.
    pub display_name: String,
    /// The carried avatar, if any.
    pub avatar: Option<Avatar>,
    pub aspects: usize,
    pub contacts: usize,
    pub followed_tags: usize,
    pub blocks: usize,
    /// Posts carried verbatim (`user.posts`).
    pub posts: usize,
    /// Comments, likes and other relayables carried verbatim (`user.relayables`).
    pub relayables: usize,
}

impl RestoreView {
    pub(super) fn of(archive: &ImportedArchive, email: &str) -> RestoreView {
        let name = [
            archive.profile.first_name.as_deref(),
            archive.profile.last_name.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        let verbatim: serde_json::Value = serde_json::from_str(&archive.verbatim_json).unwrap_or_default();
        let count = |key: &str| verbatim["user"][key].as_array().map_or(0, Vec::len);
        RestoreView {
            email: email.to_string(),
            old_id: archive.old_diaspora_id.clone(),
            display_name: if name.is_empty() {
                archive.username.clone()
            } else {
                name
            },
            avatar: archive.avatar.clone(),
            aspects: archive.aspects.len(),
            contacts: archive.contacts.len(),
            followed_tags: archive.followed_tags.len(),
            blocks: archive.blocks.len(),
            posts: count("posts"),
            relayables: count("relayables"),
        }
    }
}

/// How the old identity's key was checked, which decides whether the move is applied
/// to this pod's own data (through its receiving path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// This pod stores the old identity with the archive's key.
    Stored,
    /// The old identity's pod publishes the archive's key (a move-in); it is now stored.
    Published,
    /// This pod stores the old identity with another key (a restore; a move-in refuses).
    Mismatch,
    /// This pod knows the old identity as moved elsewhere already (a restore).
    AlreadyMoved { to: String },
    /// Neither a stored nor a published key: `why` says what discovery answered.
    Unknown { why: Option<String> },
    /// The archive names no old identity: there is nothing to announce.
    NoIdentity,
}

impl KeyCheck {
    /// Whether the move is handed to this pod's own receiving path.
    pub fn applies_here(&self) -> bool {
        matches!(self, KeyCheck::Stored | KeyCheck::Published)
    }
}

/// The outcome of a pass-phrase attempt.
#[derive(Clone, Debug)]
pub enum Unlock {
    /// A backup opened: the account form may be shown.
    Ready(RestoreView),
    /// A backup opened, but its identity still answers as an active account.
    StillActive { old_id: String, pod_origin: String },
    /// No backup opened with that pass phrase. With 0 attempts left the link is gone.
    WrongPassphrase { attempts_left: u8 },
}

/// What a valid link shows before anything is entered.
#[derive(Clone, Debug)]
pub struct LinkInfo {
    pub email: String,
    pub attempts_left: u8,
    pub expires_unix: u64,
}

/// The outcome of the account form.
#[derive(Debug)]
pub enum Create {
    /// The account exists, durably.
    Done(Box<Created>),
    /// The opened archive is no longer in memory (restart, or it waited too long):
    /// the pass phrase must be entered again.
    Reopen,
}

/// A restored or moved-in account.
#[derive(Debug)]
pub struct Created {
    pub account: Account,
    pub old_id: Option<String>,
    pub key_check: KeyCheck,
    /// Pods the AccountMigration was queued for.
    pub announced_to: usize,
    /// What the archive's import repaired or left out, in words for the user.
    pub repairs: Vec<String>,
}
