//! The profile, aspects, contacts, followed tags and blocks of an account: what a user
//! may put there (diaspora*'s validators, DESIGN §6) and the profile entity other pods
//! see.

use super::{Account, ProfileData};
use crate::federation::entities::{self, Profile};
use crate::{Error, Result};

/// The most aspects an account may have.
pub const MAX_ASPECTS: usize = 100;
/// The longest aspect name.
pub const MAX_ASPECT_CHARS: usize = 255;
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

/// Normalises an aspect name and checks it.
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
