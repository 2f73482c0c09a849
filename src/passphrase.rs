//! Backup pass phrases: the strength policy and a type that keeps them out of logs.
//!
//! Owns the rule of docs/formats.md, "Pass phrases": a backup holder can guess pass
//! phrases offline against the `.lfbk` it holds, so the home pod refuses weak ones,
//! with a reason the user can act on (at least [`MIN_CHARS`] characters and a zxcvbn
//! score of at least 3).
//! It does not own key derivation or the file format: see [`crate::sealed`].

use std::fmt;

use zeroize::Zeroize;

/// The fewest characters (Unicode scalar values) a pass phrase may have.
pub const MIN_CHARS: usize = 12;

/// The lowest zxcvbn score (0–4) a pass phrase may have: 3 is "more than 10^8 guesses".
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// Checks a new pass phrase against the policy; `Err` carries a reason to show the user.
///
/// `user_inputs` are words an attacker would try first (username, email address, name);
/// a pass phrase built from them scores lower.
pub fn check_strength(passphrase: &str, user_inputs: &[&str]) -> Result<(), String> {
    let chars = passphrase.chars().count();
    if chars < MIN_CHARS {
        return Err(format!(
            "the pass phrase is too short: it has {chars} characters and needs at least \
             {MIN_CHARS}; a few unrelated words make a long one that is easy to remember"
        ));
    }
    // zxcvbn looks at the first 100 characters only, which also bounds its cost.
    let estimate = zxcvbn::zxcvbn(passphrase, user_inputs);
    if estimate.score() >= MIN_SCORE {
        return Ok(());
    }
    let mut reason = String::from("the pass phrase is too easy to guess");
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            reason.push_str(&format!(": {warning}"));
        }
        let suggestions: Vec<String> = feedback.suggestions().iter().map(|s| s.to_string()).collect();
        if !suggestions.is_empty() {
            reason.push_str(&format!(". {}", suggestions.join(" ")));
        }
    }
    Err(reason)
}

/// A pass phrase in memory: `Debug` prints `[redacted]`, and the bytes are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl Passphrase {
    /// Wraps a pass phrase.
    pub fn new(passphrase: String) -> Self {
        Passphrase(passphrase)
    }

    /// The pass phrase itself, for key derivation or a strength check.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Passphrase {
    fn from(passphrase: String) -> Self {
        Passphrase(passphrase)
    }
}

impl From<&str> for Passphrase {
    fn from(passphrase: &str) -> Self {
        Passphrase(passphrase.to_string())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Passphrase {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_pass_phrase_is_refused_with_its_length() {
        // Random-looking, so only the length refuses it.
        let reason = check_strength("Tq7#vLp2!xW", &[]).unwrap_err();
        assert!(reason.contains("too short"), "{reason}");
        assert!(reason.contains("has 11 characters"), "{reason}");
        assert!(reason.contains("at least 12"), "{reason}");
        let reason = check_strength("correct", &[]).unwrap_err();
        assert!(reason.contains("too short"), "{reason}");
        // Characters are counted, not bytes: 11 two-byte letters are still too short.
        let reason = check_strength("ééééééééééé", &[]).unwrap_err();
        assert!(reason.contains("has 11 characters"), "{reason}");
        // Twelve is enough length.
        check_strength("Tq7#vLp2!xWz", &[]).unwrap();
    }

    #[test]
    fn repeated_characters_are_refused_with_zxcvbn_feedback() {
        let reason = check_strength("aaaaaaaaaaaaaaaa", &[]).unwrap_err();
        assert!(reason.contains("too easy to guess"), "{reason}");
        // zxcvbn's warning for repeats, e.g. 'Repeats like "aaa" are easy to guess.'
        assert!(reason.to_lowercase().contains("repeat"), "{reason}");
    }

    #[test]
    fn common_passwords_padded_to_length_are_refused() {
        for weak in ["password1234", "qwertyuiop123", "123456789012"] {
            assert!(check_strength(weak, &[]).is_err(), "{weak} was accepted");
        }
    }

    #[test]
    fn pass_phrase_made_of_the_users_own_details_is_refused() {
        let user_inputs = ["alice", "alice.liddell@example.org", "liddell"];
        let reason = check_strength("alice.liddell@example.org", &user_inputs).unwrap_err();
        assert!(reason.contains("too easy to guess"), "{reason}");
    }

    #[test]
    fn long_random_looking_pass_phrase_is_accepted() {
        check_strength("violet tractor drifts under 9 quiet lanterns", &[]).unwrap();
        check_strength("Tq7#vLp2!xWz9rKm", &["alice"]).unwrap();
    }

    #[test]
    fn passphrase_debug_is_redacted() {
        let p = Passphrase::from("violet tractor drifts");
        assert_eq!(format!("{p:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(p.clone())), "Some([redacted])");
        assert_eq!(p.expose(), "violet tractor drifts");
    }
}
