//! diaspora*'s federation entities that lifeboat writes or reads — `profile`,
//! `account_migration`, `contact`, `account_deletion` — as typed values with their XML
//! form (docs/formats.md, "diaspora* entities"), recognition of any received entity by
//! its root element, and the checks diaspora*'s validators apply, so lifeboat never
//! emits what they refuse.

use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::signature;
use super::xml::{parse_document, XmlElement, XmlWriter};
use crate::{Error, Result};

/// diaspora*'s `profile` entity. Every field but `author` is optional; absent and empty
/// values are not written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The diaspora ID of the person, `user@host`.
    pub author: String,
    /// When the profile last changed, ISO 8601 UTC (see [`format_timestamp`]).
    pub edited_at: Option<String>,
    /// Display name: at most 70 characters, no `;`.
    pub full_name: Option<String>,
    /// At most 32 characters, no `;`.
    pub first_name: Option<String>,
    /// At most 32 characters, no `;`.
    pub last_name: Option<String>,
    /// The large (300×300) avatar URL; diaspora* also accepts a path.
    pub image_url: Option<String>,
    /// The medium (100×100) avatar URL.
    pub image_url_medium: Option<String>,
    /// The small (50×50) avatar URL.
    pub image_url_small: Option<String>,
    /// Free text, at most 65,535 characters.
    pub bio: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    /// At most 255 characters.
    pub gender: Option<String>,
    /// At most 255 characters.
    pub location: Option<String>,
    /// Whether the person may be found by name (diaspora*'s default: true).
    pub searchable: Option<bool>,
    /// Whether the extended profile is public (diaspora*'s default: false).
    pub public: Option<bool>,
    /// Whether the person marks their content not safe for work (default: false).
    pub nsfw: Option<bool>,
    /// Space-separated `#tags`, at most 5.
    pub tag_string: Option<String>,
}

impl Profile {
    /// The profile's XML, elements in diaspora*'s order, no XML declaration.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        self.write(&mut writer);
        writer.finish()
    }

    /// Reads a `profile` document. Empty and unknown elements are ignored; `author` is
    /// required.
    pub fn parse(xml: &str) -> Result<Profile> {
        let root = parse_document(xml)?;
        expect_root(&root, "profile")?;
        Profile::from_element(&root)
    }

    fn write(&self, writer: &mut XmlWriter) {
        writer.open("profile");
        writer.text_element("author", &self.author);
        writer.optional_text_element("edited_at", self.edited_at.as_deref());
        writer.optional_text_element("full_name", self.full_name.as_deref());
        writer.optional_text_element("first_name", self.first_name.as_deref());
        writer.optional_text_element("last_name", self.last_name.as_deref());
        writer.optional_text_element("image_url", self.image_url.as_deref());
        writer.optional_text_element("image_url_medium", self.image_url_medium.as_deref());
        writer.optional_text_element("image_url_small", self.image_url_small.as_deref());
        writer.optional_text_element("bio", self.bio.as_deref());
        writer.optional_text_element("birthday", self.birthday.as_deref());
        writer.optional_text_element("gender", self.gender.as_deref());
        writer.optional_text_element("location", self.location.as_deref());
        writer.optional_bool_element("searchable", self.searchable);
        writer.optional_bool_element("public", self.public);
        writer.optional_bool_element("nsfw", self.nsfw);
        writer.optional_text_element("tag_string", self.tag_string.as_deref());
        writer.close("profile");
    }

    fn from_element(element: &XmlElement) -> Result<Profile> {
        Ok(Profile {
            author: required_identifier(element, "author")?,
            edited_at: element.child_text("edited_at").map(|t| t.trim().to_string()),
            full_name: element.child_text("full_name"),
            first_name: element.child_text("first_name"),
            last_name: element.child_text("last_name"),
            image_url: element.child_text("image_url"),
            image_url_medium: element.child_text("image_url_medium"),
            image_url_small: element.child_text("image_url_small"),
            bio: element.child_text("bio"),
            birthday: element.child_text("birthday").map(|t| t.trim().to_string()),
            gender: element.child_text("gender"),
            location: element.child_text("location"),
            searchable: optional_bool(element, "searchable")?,
            public: optional_bool(element, "public")?,
            nsfw: optional_bool(element, "nsfw")?,
            tag_string: element.child_text("tag_string"),
        })
    }
}

/// diaspora*'s `account_migration` entity: "the old identity is now `profile.author`".
///
/// It comes in two forms (diaspora_federation's `AccountMigration`), told apart by its
/// `author` (see [`MigrationForm`]). lifeboat writes the form diaspora* sends
/// ([`MigrationForm::OldAuthor`], with `old_identity` written out too) and reads both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountMigration {
    /// The envelope's signer: the old identity, or the new one (then equal to
    /// `profile.author`).
    pub author: String,
    /// The new identity's profile; its `author` is the new diaspora ID.
    pub profile: Profile,
    /// Standard base64 of the signature over [`AccountMigration::signed_text`] by the
    /// identity that is not the author.
    pub signature: String,
    /// The `old_identity` element as received; None when absent or empty.
    pub old_identity: Option<String>,
}

/// Who wrote an `account_migration`, which decides whose key signs what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationForm {
    /// `author` is the old identity (what diaspora* sends): the envelope is signed by
    /// the old key, `signature` by the new identity's key. `old_identity` may be absent.
    OldAuthor,
    /// `author` is the new identity (`profile.author`) and `old_identity` names the old
    /// one: the envelope is signed by the new key, `signature` by the old identity's key.
    NewAuthor,
}

/// An `account_migration` that passed [`AccountMigration::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedMigration {
    pub form: MigrationForm,
    pub old_id: String,
    pub new_id: String,
}

impl AccountMigration {
    /// The text the identity other than the author signs: `AccountMigration:OLD_ID:NEW_ID`.
    pub fn signed_text(old_identity: &str, new_identity: &str) -> String {
        format!("AccountMigration:{old_identity}:{new_identity}")
    }

    /// A migration from `old_identity` to `new_profile.author` in the form diaspora*
    /// sends (author = old identity), signed with the new identity's private key.
    pub fn new_signed(old_identity: &str, new_profile: Profile, new_private_key: &RsaPrivateKey) -> AccountMigration {
        let text = Self::signed_text(old_identity, &new_profile.author);
        AccountMigration {
            author: old_identity.to_string(),
            profile: new_profile,
            signature: signature::sign_base64(new_private_key, text.as_bytes()),
            old_identity: Some(old_identity.to_string()),
        }
    }

    /// The identity the account moved to.
    pub fn new_identity(&self) -> &str {
        &self.profile.author
    }

    /// The form, as diaspora_federation decides it: the author is the new identity
    /// exactly when it equals the profile's author.
    pub fn form(&self) -> MigrationForm {
        if self.author == self.profile.author {
            MigrationForm::NewAuthor
        } else {
            MigrationForm::OldAuthor
        }
    }

    /// The old identity: the author, or `old_identity` when the new identity wrote it.
    pub fn old_id(&self) -> Option<&str> {
        match self.form() {
            MigrationForm::OldAuthor => Some(&self.author),
            MigrationForm::NewAuthor => self.old_identity.as_deref(),
        }
    }

    /// The checks diaspora_federation's validators run on the entity itself: `author`
    /// and the old identity are valid diaspora IDs, the profile passes diaspora*'s
    /// profile rules (its author, the new identity, a valid ID), and the new identity
    /// wrote it only with `old_identity`. lifeboat also refuses what diaspora_federation
    /// silently ignores: an author-is-old migration whose `old_identity` names someone
    /// else, and a move onto itself. Signatures are not checked here.
    pub fn check(&self) -> Result<CheckedMigration> {
        if !valid_diaspora_id(&self.author) {
            return Err(Error::bad("account_migration: the author is not a valid diaspora ID"));
        }
        if let Err(problems) = validate_profile(&self.profile) {
            return Err(Error::bad(format!(
                "account_migration: the profile of the new identity is refused: {}",
                problems.join("; ")
            )));
        }
        let form = self.form();
        let old_id = match (form, self.old_identity.as_deref()) {
            (MigrationForm::NewAuthor, None) => {
                return Err(Error::bad(
                    "account_migration: authored by the new identity, so old_identity is required",
                ))
            }
            (MigrationForm::NewAuthor, Some(old)) => old,
            (MigrationForm::OldAuthor, Some(old)) if old != self.author => {
                return Err(Error::bad(format!(
                    "account_migration: old_identity {old:?} is neither the author {:?} nor absent",
                    self.author
                )))
            }
            (MigrationForm::OldAuthor, _) => self.author.as_str(),
        };
        if !valid_diaspora_id(old_id) {
            return Err(Error::bad("account_migration: old_identity is not a valid diaspora ID"));
        }
        if old_id == self.new_identity() {
            return Err(Error::bad("account_migration: an identity cannot move to itself"));
        }
        Ok(CheckedMigration {
            form,
            old_id: old_id.to_string(),
            new_id: self.new_identity().to_string(),
        })
    }

    /// Checks `signature` with the public key of the identity that is not the author
    /// (the new identity's for [`MigrationForm::OldAuthor`], the old one's otherwise);
    /// [`Error::Unauthorized`] when it does not verify, [`Error::BadRequest`] when the
    /// old identity is missing.
    pub fn verify_signature(&self, signer_public_key: &RsaPublicKey) -> Result<()> {
        let old_id = self
            .old_id()
            .ok_or_else(|| Error::bad("account_migration has no old identity"))?;
        let text = Self::signed_text(old_id, self.new_identity());
        signature::verify_base64(signer_public_key, text.as_bytes(), &self.signature)
    }

    /// The entity's XML: `author`, `profile`, `signature`, `old_identity` (when set),
    /// no XML declaration.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        writer.open("account_migration");
        writer.text_element("author", &self.author);
        self.profile.write(&mut writer);
        writer.text_element("signature", &self.signature);
        writer.optional_text_element("old_identity", self.old_identity.as_deref());
        writer.close("account_migration");
        writer.finish()
    }

    /// Reads an `account_migration` document. Whitespace in the base64 signature is
    /// ignored; unknown elements (such as `remote_photo_path`) are ignored.
    pub fn parse(xml: &str) -> Result<AccountMigration> {
        let root = parse_document(xml)?;
        expect_root(&root, "account_migration")?;
        AccountMigration::from_element(&root)
    }

    fn from_element(element: &XmlElement) -> Result<AccountMigration> {
        let author = required_identifier(element, "author")?;
        let profile = element
            .child("profile")
            .ok_or_else(|| Error::bad("account_migration has no profile"))?;
        let profile = Profile::from_element(profile)?;
        let signature = element
            .child_text("signature")
            .map(|text| signature::remove_ascii_whitespace(&text))
            .filter(|text| !text.is_empty())
            .ok_or_else(|| Error::bad("account_migration has no signature"))?;
        let old_identity = element
            .child_text("old_identity")
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty());
        Ok(AccountMigration {
            author,
            profile,
            signature,
            old_identity,
        })
    }
}

/// diaspora*'s `contact` entity: `author` starts or stops sharing with `recipient`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The diaspora ID of the person who shares (the envelope's signer).
    pub author: String,
    /// The diaspora ID of the person shared with.
    pub recipient: String,
    /// `author` follows `recipient`'s posts.
    pub following: bool,
    /// `author` shares their posts with `recipient`.
    pub sharing: bool,
    /// `author` blocks `recipient`; never together with following or sharing.
    pub blocking: bool,
}

impl Contact {
    /// `author` starts sharing with `recipient` (following and sharing, not blocking).
    pub fn start_sharing(author: &str, recipient: &str) -> Contact {
        Contact {
            author: author.to_string(),
            recipient: recipient.to_string(),
            following: true,
            sharing: true,
            blocking: false,
        }
    }

    /// `author` stops sharing with `recipient` (all three flags false).
    pub fn stop_sharing(author: &str, recipient: &str) -> Contact {
        Contact {
            following: false,
            sharing: false,
            ..Contact::start_sharing(author, recipient)
        }
    }

    /// The entity's XML: `author`, `recipient`, `following`, `sharing`, `blocking`.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        writer.open("contact");
        writer.text_element("author", &self.author);
        writer.text_element("recipient", &self.recipient);
        writer.optional_bool_element("following", Some(self.following));
        writer.optional_bool_element("sharing", Some(self.sharing));
        writer.optional_bool_element("blocking", Some(self.blocking));
        writer.close("contact");
        writer.finish()
    }

    /// Reads a `contact` document. Missing flags take diaspora*'s defaults (following
    /// and sharing true, blocking false); blocking together with following or sharing is
    /// refused, as diaspora* refuses it.
    pub fn parse(xml: &str) -> Result<Contact> {
        let root = parse_document(xml)?;
        expect_root(&root, "contact")?;
        Contact::from_element(&root)
    }

    fn from_element(element: &XmlElement) -> Result<Contact> {
        let contact = Contact {
            author: required_identifier(element, "author")?,
            recipient: required_identifier(element, "recipient")?,
            following: optional_bool(element, "following")?.unwrap_or(true),
            sharing: optional_bool(element, "sharing")?.unwrap_or(true),
            blocking: optional_bool(element, "blocking")?.unwrap_or(false),
        };
        if contact.blocking && (contact.following || contact.sharing) {
            return Err(Error::bad(
                "contact cannot be blocking and following or sharing at once",
            ));
        }
        Ok(contact)
    }
}

/// diaspora*'s `account_deletion` entity: `author` closed their account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDeletion {
    /// The diaspora ID of the closed account.
    pub author: String,
}

impl AccountDeletion {
    /// The entity's XML.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        writer.open("account_deletion");
        writer.text_element("author", &self.author);
        writer.close("account_deletion");
        writer.finish()
    }

    /// Reads an `account_deletion` document.
    pub fn parse(xml: &str) -> Result<AccountDeletion> {
        let root = parse_document(xml)?;
        expect_root(&root, "account_deletion")?;
        AccountDeletion::from_element(&root)
    }

    fn from_element(element: &XmlElement) -> Result<AccountDeletion> {
        Ok(AccountDeletion {
            author: required_identifier(element, "author")?,
        })
    }
}

/// Any received entity, recognised by its root element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    /// A `profile` update.
    Profile(Profile),
    /// An `account_migration`: someone moved.
    AccountMigration(AccountMigration),
    /// A `contact`: someone started or stopped sharing.
    Contact(Contact),
    /// An `account_deletion`: someone closed their account.
    AccountDeletion(AccountDeletion),
    /// An entity lifeboat does not handle (posts, comments, likes…): its root element
    /// name. Callers accept and ignore it.
    Other(String),
}

/// Parses any entity document. Malformed XML (or XML with a DOCTYPE) is refused even
/// for entities lifeboat does not handle.
pub fn parse_entity(xml: &str) -> Result<Entity> {
    let root = parse_document(xml)?;
    Ok(match root.name.as_str() {
        "profile" => Entity::Profile(Profile::from_element(&root)?),
        "account_migration" => Entity::AccountMigration(AccountMigration::from_element(&root)?),
        "contact" => Entity::Contact(Contact::from_element(&root)?),
        "account_deletion" => Entity::AccountDeletion(AccountDeletion::from_element(&root)?),
        _ => Entity::Other(root.name),
    })
}

/// A time as diaspora* writes it: ISO 8601 in UTC to the second, `2018-01-23T01:19:56Z`.
pub fn format_timestamp(time: OffsetDateTime) -> String {
    let utc = time.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

fn expect_root(root: &XmlElement, name: &str) -> Result<()> {
    if root.name == name {
        Ok(())
    } else {
        Err(Error::bad(format!("expected a {name} entity, got {}", root.name)))
    }
}

/// A diaspora ID or similar element that must be present; surrounding whitespace is
/// not part of it.
fn required_identifier(element: &XmlElement, name: &str) -> Result<String> {
    element
        .child_text(name)
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .ok_or_else(|| Error::bad(format!("{} has no {name}", element.name)))
}

/// A boolean the way diaspora* reads one; an empty or absent element is `None`.
fn optional_bool(element: &XmlElement, name: &str) -> Result<Option<bool>> {
    let Some(text) = element.child_text(name) else {
        return Ok(None);
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "t" | "yes" | "y" | "1" => Ok(Some(true)),
        "false" | "f" | "no" | "n" | "0" => Ok(Some(false)),
        _ => Err(Error::bad(format!("{} {name} is not a boolean", element.name))),
    }
}

/// Checks a profile against diaspora*'s validators (docs/formats.md, "What diaspora*'s
/// validators refuse"); each problem is one line in the error.
pub fn validate_profile(profile: &Profile) -> std::result::Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if !valid_diaspora_id(&profile.author) {
        problems.push("author is not a valid diaspora ID".to_string());
    }
    let names = [
        ("full name", &profile.full_name, 70),
        ("first name", &profile.first_name, 32),
        ("last name", &profile.last_name, 32),
    ];
    for (label, value, max_chars) in names {
        let Some(value) = value else { continue };
        if value.chars().count() > max_chars {
            problems.push(format!("{label} is longer than {max_chars} characters"));
        }
        if value.contains(';') {
            problems.push(format!("{label} must not contain ';'"));
        }
    }
    let lengths = [
        ("gender", &profile.gender, 255),
        ("location", &profile.location, 255),
        ("bio", &profile.bio, 65_535),
    ];
    for (label, value, max_chars) in lengths {
        if value.as_ref().is_some_and(|v| v.chars().count() > max_chars) {
            problems.push(format!("{label} is longer than {max_chars} characters"));
        }
    }
    if let Some(tags) = &profile.tag_string {
        if tags.matches('#').count() > 5 {
            problems.push("at most 5 tags are allowed".to_string());
        }
    }
    if let Some(birthday) = profile.birthday.as_deref().filter(|b| !b.is_empty()) {
        if !valid_birthday(birthday) {
            problems.push("birthday must be a real date written YYYY-MM-DD".to_string());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Whether `text` is a real calendar date written exactly `YYYY-MM-DD`.
pub fn valid_birthday(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return false;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u16>().unwrap_or(0);
    let Ok(month) = time::Month::try_from(number(5..7) as u8) else {
        return false;
    };
    time::Date::from_calendar_date(i32::from(number(0..4)), month, number(8..10) as u8).is_ok()
}

/// Whether `guid` is a guid diaspora* accepts: 16 to 255 characters of
/// `[0-9A-Za-z-_@.:]`, ending in a letter or digit.
pub fn valid_guid(guid: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@' | '.' | ':');
    (16..=255).contains(&guid.len())
        && guid.chars().all(allowed)
        && guid.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Whether `id` is a diaspora ID diaspora* accepts: `user@host[:port]` with the user
/// part of `[a-z0-9-._]`, the host a lower-case host name, an IPv4 address or a
/// bracketed IPv6 address, at most 255 characters in all.
pub fn valid_diaspora_id(id: &str) -> bool {
    if id.len() > 255 {
        return false;
    }
    let Some((user, host_and_port)) = id.split_once('@') else {
        return false;
    };
    let user_ok = !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_'));
    user_ok && valid_host_and_port(host_and_port)
}

fn valid_host_and_port(text: &str) -> bool {
    let (host_ok, port) = match text.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, port)) => (valid_bracketed_ipv6(address), port),
            None => return false,
        },
        None => {
            let (host, port) = text.split_at(text.find(':').unwrap_or(text.len()));
            (valid_ipv4(host) || valid_host_name(host), port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// diaspora*'s host name rule: a first label of `[a-z0-9-]`, then `.`-separated labels
/// of the same characters.
fn valid_host_name(host: &str) -> bool {
    let mut labels = host.split('.');
    let first_ok = labels.next().is_some_and(|first| !first.is_empty());
    first_ok
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn valid_ipv4(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// diaspora*'s loose IPv6 rule: up to seven groups of 0–4 hex digits followed by `:`,
/// then one group of 1–4 hex digits.
fn valid_bracketed_ipv6(address: &str) -> bool {
    let groups: Vec<&str> = address.split(':').collect();
    let Some((last, leading)) = groups.split_last() else {
        return false;
    };
    let hex = |g: &str| g.bytes().all(|b| b.is_ascii_hexdigit());
    leading.len() <= 7 && leading.iter().all(|g| g.len() <= 4 && hex(g)) && (1..=4).contains(&last.len()) && hex(last)
}

#[cfg(test)]
mod tests;
