//! The profile, aspects, contacts, followed tags and blocks of an account: what a user
//! may put there (docs/formats.md, "What diaspora*'s validators refuse") and the profile
//! entity other pods see.

use super::{Account, ProfileData};
use crate::federation::entities::{self, Profile};
use crate::{Error, Result};

/// The most aspects an account may have.
pub const MAX_ASPECTS: usize = 100;
/// The longest aspect name.
pub const MAX_ASPECT_CHARS: usize = 20;
/// The most followed tags.
pub const MAX_TAGS: usize = 1000;

/// The diaspora* `profile` entity of an account, as other pods see it.
pub fn entity(account: &Account, host: &str, base_url: &str) -> Profile {
    let p = &account.profile;
    let (large, medium, small) = photo_urls(account, base_url);
    Profile {
        author: account.diaspora_id(host),
        edited_at: p.edited_at.clone(),
        full_name: Some(account.display_name()).filter(|n| n != &account.username || p.first_name.is_some()),
        first_name: p.first_name.clone(),
        last_name: p.last_name.clone(),
        image_url: Some(large),
        image_url_medium: Some(medium),
        image_url_small: Some(small),
        bio: p.bio.clone(),
        birthday: p.birthday.clone(),
        gender: p.gender.clone(),
        location: p.location.clone(),
        searchable: Some(p.searchable),
        public: Some(p.public),
        nsfw: Some(p.nsfw),
        tag_string: p.tag_string.clone(),
    }
}

/// The large, medium and small avatar URLs: the uploaded avatar, else an imported URL,
/// else the default picture (diaspora*'s hCard parser needs all three).
pub fn photo_urls(account: &Account, base_url: &str) -> (String, String, String) {
    if account.avatar.is_some() {
        let url = format!("{base_url}/avatars/{}", account.guid);
        return (url.clone(), url.clone(), url);
    }
    let p = &account.profile;
    if let Some(large) = &p.image_url {
        let medium = p.image_url_medium.clone().unwrap_or_else(|| large.clone());
        let small = p.image_url_small.clone().unwrap_or_else(|| medium.clone());
        return (large.clone(), medium, small);
    }
    let url = format!("{base_url}/assets/default-avatar.png");
    (url.clone(), url.clone(), url)
}

/// Checks a profile against diaspora*'s validators; the error lists every problem.
pub fn validate(profile: &ProfileData, author: &str) -> Result<()> {
    let entity = Profile {
        author: author.to_string(),
        full_name: match (&profile.first_name, &profile.last_name) {
            (None, None) => None,
            (first, last) => Some(
                [first.as_deref(), last.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        },
        first_name: profile.first_name.clone(),
        last_name: profile.last_name.clone(),
        bio: profile.bio.clone(),
        birthday: profile.birthday.clone(),
        gender: profile.gender.clone(),
        location: profile.location.clone(),
        tag_string: profile.tag_string.clone(),
        ..Default::default()
    };
    entities::validate_profile(&entity).map_err(|problems| Error::bad(problems.join("; ")))
}

/// Whether two aspect names are the same to diaspora*, which keeps them unique
/// ignoring case.
pub fn same_aspect_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// Normalises an aspect name and checks it (at most 20 characters, as diaspora*'s
/// `Aspect` model requires).
pub fn check_aspect_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::bad("an aspect needs a name"));
    }
    if name.chars().count() > MAX_ASPECT_CHARS {
        return Err(Error::bad(format!(
            "an aspect name has at most {MAX_ASPECT_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::bad("an aspect name cannot contain control characters"));
    }
    Ok(name.to_string())
}

/// Aspect names brought by an archive, made into names diaspora* keeps: trimmed,
/// control characters removed, at most [`MAX_ASPECT_CHARS`] characters, unique
/// ignoring case (a clash gets a suffix: "Friends 2"), none empty. Returns the names,
/// what each name as written became (for the contacts' memberships), and a note for
/// each repair, for the user.
pub fn repair_aspect_names(
    written: &[String],
) -> (Vec<String>, std::collections::HashMap<String, String>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let mut became = std::collections::HashMap::new();
    let mut notes = Vec::new();
    for raw in written {
        let cleaned: String = raw.chars().filter(|c| !c.is_control()).collect();
        let cleaned = cleaned.trim();
        if cleaned.is_empty() {
            notes.push("an aspect without a name was left out".to_string());
            continue;
        }
        if became.contains_key(cleaned) {
            notes.push(format!("the aspect {cleaned:?} was listed twice and is kept once"));
            continue;
        }
        let short = truncate_chars(cleaned, MAX_ASPECT_CHARS);
        let name = unused_aspect_name(&names, &short);
        if name != cleaned {
            let why = if short != cleaned && name == short {
                format!("aspect names have at most {MAX_ASPECT_CHARS} characters")
            } else {
                "aspect names are unique, whatever their case".to_string()
            };
            notes.push(format!("the aspect {cleaned:?} is now called {name:?} ({why})"));
        }
        became.insert(cleaned.to_string(), name.clone());
        names.push(name);
    }
    (names, became, notes)
}

/// Points every contact's memberships at the repaired aspect names, and keeps what
/// diaspora* needs of contacts the user shares with: each in at least one aspect.
/// A membership naming an aspect the archive does not list adds that aspect; a contact
/// the user shares with but in no aspect goes into the first aspect (made "Friends"
/// when there is none). Returns a note for each repair, for the user.
pub fn place_contacts_in_aspects(
    names: &mut Vec<String>,
    became: &std::collections::HashMap<String, String>,
    contacts: &mut [super::ContactData],
) -> Vec<String> {
    let mut notes = Vec::new();
    let mut added: Vec<String> = Vec::new();
    let mut placed = 0usize;
    for contact in contacts.iter_mut() {
        let mut memberships: Vec<String> = Vec::with_capacity(contact.aspects.len());
        for written in std::mem::take(&mut contact.aspects) {
            let cleaned: String = written.chars().filter(|c| !c.is_control()).collect();
            let cleaned = cleaned.trim();
            if cleaned.is_empty() {
                continue;
            }
            let name = match became.get(cleaned) {
                Some(name) => name.clone(),
                None => match names.iter().find(|n| same_aspect_name(n, cleaned)) {
                    Some(name) => name.clone(),
                    None => {
                        let name = unused_aspect_name(names, &truncate_chars(cleaned, MAX_ASPECT_CHARS));
                        names.push(name.clone());
                        added.push(name.clone());
                        name
                    }
                },
            };
            if !memberships.contains(&name) {
                memberships.push(name);
            }
        }
        if contact.receiving && memberships.is_empty() {
            if names.is_empty() {
                names.push("Friends".to_string());
                added.push("Friends".to_string());
            }
            memberships.push(names[0].clone());
            placed += 1;
        }
        contact.aspects = memberships;
    }
    for name in &added {
        notes.push(format!(
            "the aspect {name:?} was added: contacts were in it, but the archive did not list it"
        ));
    }
    if placed > 0 {
        notes.push(format!(
            "{} you share with {} in no aspect and {} put into {:?}",
            plural(placed, "contact", "contacts"),
            if placed == 1 { "was" } else { "were" },
            if placed == 1 { "is" } else { "are" },
            names[0]
        ));
    }
    notes
}

/// "1 contact", "2 contacts".
pub fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// `name`, or `name` with the first suffix (" 2", " 3"...) that no aspect in `names`
/// has, ignoring case, shortened to fit [`MAX_ASPECT_CHARS`].
fn unused_aspect_name(names: &[String], name: &str) -> String {
    let mut candidate = name.to_string();
    let mut n = 2;
    while names.iter().any(|taken| same_aspect_name(taken, &candidate)) {
        let suffix = format!(" {n}");
        candidate = format!(
            "{}{suffix}",
            truncate_chars(name, MAX_ASPECT_CHARS - suffix.chars().count())
        );
        n += 1;
    }
    candidate
}

fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect::<String>().trim_end().to_string()
}

/// Normalises a followed tag (`#Cats` → `cats`) and checks it.
pub fn check_tag(tag: &str) -> Result<String> {
    let tag = tag.trim().trim_start_matches('#').to_lowercase();
    if tag.is_empty() || tag.chars().count() > 255 {
        return Err(Error::bad("a tag has 1 to 255 characters"));
    }
    if !tag.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        return Err(Error::bad("a tag may contain letters, digits, _ and - only"));
    }
    Ok(tag)
}

/// Normalises a diaspora ID (`Alice@Pod.Example` → `alice@pod.example`) and checks it.
pub fn check_diaspora_id(id: &str) -> Result<String> {
    let id = id.trim().trim_start_matches('@').to_ascii_lowercase();
    if !entities::valid_diaspora_id(&id) {
        return Err(Error::bad(format!(
            "{id:?} is not a diaspora* ID like alice@pod.example.org"
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_limits_are_diasporas() {
        let ok = ProfileData {
            first_name: Some("Alice".into()),
            birthday: Some("1990-02-28".into()),
            ..Default::default()
        };
        assert!(validate(&ok, "alice@pod.example").is_ok());
        let bad = ProfileData {
            first_name: Some("A;lice".into()),
            last_name: Some("x".repeat(33)),
            birthday: Some("1990-02-30".into()),
            tag_string: Some("#a #b #c #d #e #f".into()),
            ..Default::default()
        };
        let message = validate(&bad, "alice@pod.example").unwrap_err().to_string();
        for needle in ["first name", "last name", "birthday", "tags"] {
            assert!(message.contains(needle), "{needle} missing in {message}");
        }
    }

    #[test]
    fn aspect_names_are_repaired_as_diaspora_keeps_them() {
        let written: Vec<String> = [
            "Friends",
            "friends",
            "A very long aspect name indeed",
            " Work ",
            "",
            "Friends",
            "FRIENDS",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (names, became, notes) = repair_aspect_names(&written);
        assert_eq!(
            names,
            ["Friends", "friends 2", "A very long aspect n", "Work", "FRIENDS 3"]
        );
        assert!(names.iter().all(|n| n.chars().count() <= MAX_ASPECT_CHARS));
        assert_eq!(became["friends"], "friends 2");
        assert_eq!(became["Work"], "Work");
        assert_eq!(notes.len(), 5, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("at most 20 characters")), "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("listed twice")), "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("without a name")), "{notes:?}");
    }

    #[test]
    fn contacts_the_user_shares_with_end_up_in_an_aspect() {
        use super::super::ContactData;
        let written = vec!["Family".to_string(), "family".to_string()];
        let (mut names, became, _) = repair_aspect_names(&written);
        let mut contacts = vec![
            ContactData {
                diaspora_id: "a@x.example".into(),
                receiving: true,
                aspects: vec!["family".into()],
                ..Default::default()
            },
            ContactData {
                diaspora_id: "b@x.example".into(),
                receiving: true,
                ..Default::default()
            },
            ContactData {
                diaspora_id: "c@x.example".into(),
                sharing: true,
                ..Default::default()
            },
            ContactData {
                diaspora_id: "d@x.example".into(),
                receiving: true,
                aspects: vec!["Book club".into(), "BOOK CLUB".into()],
                ..Default::default()
            },
        ];
        let notes = place_contacts_in_aspects(&mut names, &became, &mut contacts);
        assert_eq!(contacts[0].aspects, ["family 2"]);
        assert_eq!(
            contacts[1].aspects,
            ["Family"],
            "shared with, so put into the first aspect"
        );
        assert!(
            contacts[2].aspects.is_empty(),
            "only shares with the user: in no aspect"
        );
        assert_eq!(contacts[3].aspects, ["Book club"]);
        assert_eq!(names, ["Family", "family 2", "Book club"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        let mut none = vec![ContactData {
            diaspora_id: "e@x.example".into(),
            receiving: true,
            ..Default::default()
        }];
        let mut no_names = Vec::new();
        place_contacts_in_aspects(&mut no_names, &Default::default(), &mut none);
        assert_eq!(no_names, ["Friends"]);
        assert_eq!(none[0].aspects, ["Friends"]);
    }

    #[test]
    fn names_tags_and_ids_are_normalised() {
        assert_eq!(check_tag("#Cats").unwrap(), "cats");
        assert!(check_tag("two words").is_err());
        assert_eq!(
            check_diaspora_id("@Alice@Pod.Example:8080").unwrap(),
            "alice@pod.example:8080"
        );
        assert!(check_diaspora_id("alice").is_err());
        assert_eq!(check_aspect_name("  Friends ").unwrap(), "Friends");
        assert!(check_aspect_name(" ").is_err());
    }
}

/// The largest avatar accepted.
pub const AVATAR_MAX_BYTES: usize = 512 * 1024;

/// The image type of `bytes`, judged by their first bytes: PNG, JPEG, GIF or WebP.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Checks an uploaded picture by its bytes (never by its name or declared type).
pub fn check_avatar(bytes: &[u8]) -> Result<super::Avatar> {
    if bytes.len() > AVATAR_MAX_BYTES {
        return Err(Error::TooLarge(format!(
            "the picture is larger than {} KiB",
            AVATAR_MAX_BYTES / 1024
        )));
    }
    let content_type =
        sniff_image(bytes).ok_or_else(|| Error::bad("the picture must be a PNG, JPEG, GIF or WebP image"))?;
    Ok(super::Avatar {
        content_type: content_type.to_string(),
        data: bytes.to_vec(),
    })
}

#[cfg(test)]
mod avatar_tests {
    use super::*;

    #[test]
    fn pictures_are_judged_by_their_bytes() {
        assert_eq!(
            check_avatar(b"\x89PNG\r\n\x1a\n....").unwrap().content_type,
            "image/png"
        );
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert!(check_avatar(b"<svg onload=alert(1)>").is_err());
        let mut big = b"GIF89a".to_vec();
        big.resize(AVATAR_MAX_BYTES + 1, 0);
        assert!(matches!(check_avatar(&big), Err(Error::TooLarge(_))));
    }
}
