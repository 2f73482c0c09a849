//! The one kind of token lifeboat mails in a link (confirming an address, resetting a
//! password, restoring a backup, confirming a held backup): 32 random bytes written as
//! 43 characters of base64url. Only the SHA-256 of that text is stored, so whoever
//! reads the store cannot use a link; a token that comes back is checked for its shape
//! before it is hashed and looked up.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The length of a token's text.
pub const TOKEN_CHARS: usize = 43;

/// A fresh token, for one emailed link.
pub struct LinkToken(String);

impl LinkToken {
    /// A new random token.
    pub fn generate() -> LinkToken {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        LinkToken(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The text that goes into the link.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What is stored in its place.
    pub fn hash(&self) -> [u8; 32] {
        hash_text(&self.0)
    }

    /// The stored form of a token that came back in a link (surrounding whitespace
    /// ignored), or `None` when the text cannot be a token.
    pub fn hash_of(text: &str) -> Option<[u8; 32]> {
        let text = text.trim();
        (text.len() == TOKEN_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| hash_text(text))
    }
}

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken(…)")
    }
}

fn hash_text(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_hashes_to_what_its_link_hashes_to_and_odd_text_is_no_token() {
        let token = LinkToken::generate();
        assert_eq!(token.as_str().len(), TOKEN_CHARS);
        assert_eq!(LinkToken::hash_of(token.as_str()), Some(token.hash()));
        assert_eq!(LinkToken::hash_of(&format!(" {} ", token.as_str())), Some(token.hash()));
        assert_ne!(LinkToken::generate().hash(), token.hash());
        for odd in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}=", &token.as_str()[..42]),
            &"é".repeat(22),
        ] {
            assert_eq!(LinkToken::hash_of(odd), None, "{odd:?}");
        }
        assert!(!format!("{token:?}").contains(token.as_str()), "never in logs");
    }
}
