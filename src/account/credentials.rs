//! Passwords, random tokens and the checks on what a user types as a username or an
//! email address.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The shortest password accepted for signing in.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password hashed (longer input is refused, not truncated).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a username: 1–32 of `a-z`, `0-9`, `_`.
pub fn check_username(username: &str) -> Result<()> {
    if username.is_empty() || username.len() > 32 {
        return Err(Error::bad("a username has 1 to 32 characters"));
    }
    if !username
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(Error::bad("a username may only contain a-z, 0-9 and _"));
    }
    Ok(())
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::bad(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::bad(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Normalises an email address as docs/holder-api.md, "Field rules", fixes it: ASCII
/// whitespace trimmed, ASCII lower-cased, the domain in IDNA A-label form; exactly one
/// `@`; no whitespace, control character or `:`.
pub fn normalize_email(input: &str) -> Result<String> {
    let trimmed = input.trim_matches(|c: char| c.is_ascii_whitespace());
    let bad = |why: &str| Error::bad(format!("{why}: not a usable email address"));
    if trimmed.len() > 254 {
        return Err(bad("too long"));
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':') {
        return Err(bad("contains a space, a control character or ':'"));
    }
    let mut parts = trimmed.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("needs exactly one @"));
    };
    if local.is_empty() || domain.is_empty() {
        return Err(bad("needs a name before and a domain after the @"));
    }
    let domain = idna::domain_to_ascii(domain).map_err(|_| bad("the domain is not a valid domain name"))?;
    if domain.is_empty() || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err(bad("the domain is not a valid domain name"));
    }
    Ok(format!(
        "{}@{}",
        local.to_ascii_lowercase(),
        domain.to_ascii_lowercase()
    ))
}

/// Hashes a password with Argon2id (PHC string). CPU-heavy: call off the runtime.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing: {e}")))
}

/// Checks a password against its stored hash. CPU-heavy: call off the runtime.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A fresh random token: 32 bytes, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored instead of a token: its SHA-256.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh diaspora* guid: 32 lowercase hex digits, as diaspora* makes them.
pub fn new_guid() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub use crate::now_unix;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_as_the_design_says() {
        assert_eq!(normalize_email("  Alice@Example.ORG \t").unwrap(), "alice@example.org");
        assert_eq!(
            normalize_email("bob@bücher.example").unwrap(),
            "bob@xn--bcher-kva.example"
        );
        for bad in [
            "",
            "alice",
            "a@b@c",
            "@example.org",
            "alice@",
            "al ice@example.org",
            "alice@exa:mple.org",
            "a\u{7}@x.org",
            "a@x..org",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn usernames_and_passwords() {
        assert!(check_username("alice_2").is_ok());
        for bad in ["", "Alice", "al-ice", "a.b", &"a".repeat(33)] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
        let hash = hash_password("long enough").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("long enough", &hash));
        assert!(!verify_password("long enougH", &hash));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(new_guid().len(), 32);
    }
}
