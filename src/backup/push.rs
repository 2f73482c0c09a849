//! The backup push API's formats (docs/holder-api.md), as types: the account key and its
//! fingerprint, the push envelope (`POST /api/lifeboat/v1/backups`) and the status
//! request (`POST /api/lifeboat/v1/backups/status`), each parsed strictly with a precise
//! message for every way it can be wrong, and the exact texts their signatures cover.
//!
//! Parsing happens in two steps so the holder can keep the order of checks of
//! docs/holder-api.md, "Check order": first [`RawPush::parse`] (just JSON), which is
//! enough to name the slot and to size the backup; then [`RawPush::validate`], every
//! remaining rule of the format.
//!
//! Not owned here: what a push does to a slot ([`super::holder`]).

use rsa::pkcs8::der::{Decode, Document};
use rsa::pkcs8::spki;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::federation::signature;
use crate::{Error, Result};

/// The largest sequence number: 2^53 − 1, so it survives any JSON reader.
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;

/// The only envelope version.
pub const VERSION: u64 = 1;

/// How far in the future `created_at` may lie (clocks differ; a day is generous).
pub const MAX_FUTURE_SECS: i64 = 24 * 3600;

/// Accepted RSA modulus sizes, in bits.
pub const MIN_KEY_BITS: u64 = 2048;
/// See [`MIN_KEY_BITS`].
pub const MAX_KEY_BITS: u64 = 4096;

/// The longest email address accepted (RFC 5321's limit on a path).
pub const MAX_EMAIL_LEN: usize = 254;

/// The SHA-256 of a key's SPKI DER encoding: how keys are compared, never by PEM text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Lowercase hex, 64 digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 16 hex digits: what the confirmation mail and the home pod's
    /// settings show, so a user can match the two.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.short())
    }
}

/// An account's public key as docs/holder-api.md, "Keys and fingerprints", accepts it:
/// RSA 2048–4096 bits, e = 65537, sent as an SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
///
/// Parsing is stricter than [`crate::federation::signature::public_key_from_pem`]
/// (SPKI only, as the holder API says, and a precise message for every refused size); the
/// fingerprint and the signature check are the federation module's shared helpers.
#[derive(Clone, Debug)]
pub struct AccountKey {
    /// The modulus and exponent, big-endian, for the signature check.
    n: Vec<u8>,
    e: Vec<u8>,
    fingerprint: Fingerprint,
}

impl AccountKey {
    /// Parses and checks an SPKI PEM public key.
    pub fn from_pem(pem: &str) -> Result<AccountKey> {
        let bad = |why: &str| Error::bad(format!("public_key {why}"));
        let (label, document) = Document::from_pem(pem.trim())
            .map_err(|_| bad("is not a PEM-encoded key (expected -----BEGIN PUBLIC KEY-----)"))?;
        if label != "PUBLIC KEY" {
            return Err(bad(&format!(
                "must be an SPKI key (-----BEGIN PUBLIC KEY-----), not {label:?}"
            )));
        }
        let info = spki::SubjectPublicKeyInfoRef::from_der(document.as_bytes())
            .map_err(|_| bad("is not a valid SubjectPublicKeyInfo"))?;
        if info.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
            return Err(bad("is not an RSA key"));
        }
        let bits = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| bad("is not a valid RSA public key"))?;
        let pkcs1 = rsa::pkcs1::RsaPublicKey::from_der(bits).map_err(|_| bad("is not a valid RSA public key"))?;
        let (n_bytes, e_bytes) = (pkcs1.modulus.as_bytes(), pkcs1.public_exponent.as_bytes());
        let n = BigUint::from_bytes_be(n_bytes);
        let e = BigUint::from_bytes_be(e_bytes);
        let size = n.bits() as u64;
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&size) {
            return Err(bad(&format!(
                "is {size} bits; RSA keys of {MIN_KEY_BITS} to {MAX_KEY_BITS} bits are accepted"
            )));
        }
        if e != BigUint::from(65537u32) {
            return Err(bad("must have the public exponent 65537"));
        }
        let key = RsaPublicKey::new_with_max_size(n, e, MAX_KEY_BITS as usize)
            .map_err(|_| bad("is not a valid RSA public key"))?;
        signature::check_key_strength(&key)?;
        let fingerprint = Fingerprint(signature::fingerprint(&key));
        Ok(AccountKey {
            n: n_bytes.to_vec(),
            e: e_bytes.to_vec(),
            fingerprint,
        })
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Verifies an RSA PKCS#1 v1.5 / SHA-256 signature over `text`. CPU work: call it
    /// off the async runtime.
    ///
    /// Uses `ring` rather than the `rsa` crate of [`crate::federation::signature`]: the
    /// same check, but about 0.1 ms instead of over 1 ms for a 4096-bit key, which is
    /// what bounds a holder's pushes per second. (Only public-key operations run here,
    /// so `rsa`'s constant-time concerns do not arise either way.)
    pub fn verify(&self, text: &[u8], signature: &[u8]) -> Result<()> {
        ring::signature::RsaPublicKeyComponents { n: &self.n, e: &self.e }
            .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, text, signature)
            .map_err(|_| Error::Unauthorized("the signature does not verify with public_key".into()))
    }
}

/// Checks that `email` arrived normalised as docs/holder-api.md, "Field rules", says:
/// no surrounding or inner whitespace, no control character or `:`, exactly one `@`
/// with something on both sides, no ASCII capital, the domain already in IDNA A-label
/// form.
pub fn check_email(email: &str) -> Result<()> {
    let bad = |why: &str| Error::bad(format!("email {why}"));
    if email.is_empty() {
        return Err(bad("is empty"));
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(bad(&format!("is longer than {MAX_EMAIL_LEN} bytes")));
    }
    if email.chars().any(char::is_whitespace) {
        return Err(bad("must not contain whitespace (send it trimmed)"));
    }
    if email.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    if email.contains(':') {
        return Err(bad("must not contain ':'"));
    }
    if email.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad("must be lower-cased (ASCII)"));
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("must contain exactly one '@'"));
    };
    if local.is_empty() || domain.is_empty() {
        return Err(bad("needs something before and after the '@'"));
    }
    match idna::domain_to_ascii(domain) {
        Ok(ascii) if ascii == domain => Ok(()),
        Ok(ascii) => Err(bad(&format!(
            "must have its domain in IDNA A-label form ({ascii:?}, not {domain:?})"
        ))),
        Err(_) => Err(bad("has a domain that is not a valid IDNA domain name")),
    }
}

/// Checks a sequence number: a JSON integer from 1 to 2^53 − 1.
pub fn check_sequence(value: &Value) -> Result<u64> {
    match value.as_u64() {
        Some(n) if (1..=MAX_SEQUENCE).contains(&n) => Ok(n),
        _ => Err(Error::bad(format!(
            "sequence must be a decimal integer from 1 to {MAX_SEQUENCE} (2^53-1)"
        ))),
    }
}

/// Checks `created_at`: exactly `YYYY-MM-DDTHH:MM:SSZ`, a real UTC time, at most 24 h
/// after `now_unix`. Returns it as Unix seconds.
pub fn check_created_at(text: &str, now_unix: i64) -> Result<i64> {
    let bad = || Error::bad("created_at must be a UTC time written exactly YYYY-MM-DDTHH:MM:SSZ");
    let b = text.as_bytes();
    let shape_ok = b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(bad());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let at = time::PrimitiveDateTime::parse(text, format)
        .map_err(|_| bad())?
        .assume_utc()
        .unix_timestamp();
    if at > now_unix + MAX_FUTURE_SECS {
        return Err(Error::bad("created_at is more than 24 hours in the future"));
    }
    Ok(at)
}

/// Decodes standard base64 (RFC 4648, with padding, no whitespace, canonical).
/// SIMD-accelerated: a push's backup is tens of KiB of base64, and decoding it was a
/// tenth of a push's CPU with the `base64` crate.
pub fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>> {
    base64_simd::STANDARD.decode_to_vec(text).map_err(|_| {
        Error::bad(format!(
            "{field} must be standard base64 with padding and no whitespace"
        ))
    })
}

/// The decoded length of a base64 text, without decoding it (for size checks that
/// come before the text is validated).
pub fn decoded_len(text: &str) -> u64 {
    let b = text.as_bytes();
    let padding = b.iter().rev().take(2).take_while(|&&c| c == b'=').count();
    ((b.len() / 4) * 3 + (b.len() % 4) * 3 / 4).saturating_sub(padding) as u64
}

/// The text a push's signature covers:
/// `lifeboat-backup:1:<email>:<sequence>:<created_at>:<digest or "delete">`.
pub fn push_signed_text(email: &str, sequence: u64, created_at: &str, sha256: Option<&[u8; 32]>) -> String {
    let digest = sha256.map_or_else(|| "delete".to_string(), hex::encode);
    format!("lifeboat-backup:1:{email}:{sequence}:{created_at}:{digest}")
}

/// The text a status request's signature covers:
/// `lifeboat-backup-status:1:<email>:<created_at>`.
pub fn status_signed_text(email: &str, created_at: &str) -> String {
    format!("lifeboat-backup-status:1:{email}:{created_at}")
}

/// A push body parsed as JSON only: enough to name its slot and size its backup.
#[derive(Debug)]
pub struct RawPush {
    fields: Map<String, Value>,
}

/// What a push carries in `backup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawContent<'a> {
    /// The field is absent.
    Missing,
    /// `null`: delete the slot's backup.
    Delete,
    /// A string (standard base64 of the `.lfbk`, once validated).
    Backup(&'a str),
    /// Anything else.
    Invalid,
}

impl RawPush {
    /// Parses a body as a JSON object; unknown fields are kept and ignored.
    pub fn parse(body: &[u8]) -> Result<RawPush> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| Error::bad(format!("the body is not valid JSON: {e}")))?;
        match value {
            Value::Object(fields) => Ok(RawPush { fields }),
            _ => Err(Error::bad("the body must be a JSON object")),
        }
    }

    fn str_field(&self, name: &str) -> Result<&str> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Err(Error::bad(format!("{name} is missing"))),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(Error::bad(format!("{name} must be a string"))),
        }
    }

    /// `email` as sent, when it is a string (not yet checked).
    pub fn email(&self) -> Option<&str> {
        self.fields.get("email").and_then(Value::as_str)
    }

    /// The account key, parsed and checked.
    pub fn key(&self) -> Result<AccountKey> {
        AccountKey::from_pem(self.str_field("public_key")?)
    }

    /// What `backup` holds.
    pub fn content(&self) -> RawContent<'_> {
        match self.fields.get("backup") {
            None => RawContent::Missing,
            Some(Value::Null) => RawContent::Delete,
            Some(Value::String(s)) => RawContent::Backup(s),
            Some(_) => RawContent::Invalid,
        }
    }

    /// The decoded size of the backup, estimated from its base64 length.
    pub fn backup_len(&self) -> Option<u64> {
        match self.content() {
            RawContent::Backup(text) => Some(decoded_len(text)),
            _ => None,
        }
    }

    /// Checks every remaining rule of docs/holder-api.md, "Field rules", and decodes
    /// the backup. `key` is [`RawPush::key`]'s result, so the key is parsed once. The
    /// `.lfbk` header and its KDF costs are the holder's to check (they are not the
    /// envelope's format).
    pub fn validate(&self, key: Result<AccountKey>, now_unix: i64) -> Result<Push> {
        match self.fields.get("version") {
            Some(v) if v.as_u64() == Some(VERSION) => {}
            Some(_) => return Err(Error::bad("version must be 1")),
            None => return Err(Error::bad("version is missing")),
        }
        let email = self.str_field("email")?;
        check_email(email)?;
        let key = key?;
        let sequence = check_sequence(
            self.fields
                .get("sequence")
                .ok_or_else(|| Error::bad("sequence is missing"))?,
        )?;
        let created_at = self.str_field("created_at")?;
        check_created_at(created_at, now_unix)?;
        let backup = match self.content() {
            RawContent::Missing => return Err(Error::bad("backup is missing (send null to delete)")),
            RawContent::Invalid => return Err(Error::bad("backup must be a base64 string, or null to delete")),
            RawContent::Delete => None,
            RawContent::Backup(text) => Some(decode_base64("backup", text)?),
        };
        let signature = decode_base64("signature", self.str_field("signature")?)?;
        let sha256: Option<[u8; 32]> = backup.as_deref().map(|b| Sha256::digest(b).into());
        Ok(Push {
            email: email.to_string(),
            key,
            sequence,
            created_at: created_at.to_string(),
            backup,
            sha256,
            signature,
        })
    }
}

/// A push that passed every format rule; its signature is not yet verified.
#[derive(Debug)]
pub struct Push {
    pub email: String,
    pub key: AccountKey,
    pub sequence: u64,
    pub created_at: String,
    /// The `.lfbk` bytes, or `None` to delete.
    pub backup: Option<Vec<u8>>,
    /// SHA-256 of `backup`.
    pub sha256: Option<[u8; 32]>,
    pub signature: Vec<u8>,
}

impl Push {
    /// The text the signature must cover.
    pub fn signed_text(&self) -> String {
        push_signed_text(&self.email, self.sequence, &self.created_at, self.sha256.as_ref())
    }

    /// Verifies the signature (CPU work: call it off the async runtime).
    pub fn verify(&self) -> Result<()> {
        self.key.verify(self.signed_text().as_bytes(), &self.signature)
    }
}

/// A status request (`{email, public_key, created_at, signature}`), checked.
#[derive(Debug)]
pub struct StatusRequest {
    pub email: String,
    pub key: AccountKey,
    pub created_at: String,
    pub signature: Vec<u8>,
}

impl StatusRequest {
    /// Checks a parsed body; `key` is [`RawPush::key`]'s result for the same body.
    pub fn validate(raw: &RawPush, key: Result<AccountKey>, now_unix: i64) -> Result<StatusRequest> {
        let email = raw.str_field("email")?;
        check_email(email)?;
        let key = key?;
        let created_at = raw.str_field("created_at")?;
        check_created_at(created_at, now_unix)?;
        let signature = decode_base64("signature", raw.str_field("signature")?)?;
        Ok(StatusRequest {
            email: email.to_string(),
            key,
            created_at: created_at.to_string(),
            signature,
        })
    }

    /// Verifies the signature (CPU work: call it off the async runtime).
    pub fn verify(&self) -> Result<()> {
        self.key.verify(
            status_signed_text(&self.email, &self.created_at).as_bytes(),
            &self.signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use serde_json::json;

    const NOW: i64 = 1_795_000_000; // 2026-11-18

    fn pem_of(n: BigUint, e: u32) -> String {
        RsaPublicKey::new_unchecked(n, BigUint::from(e))
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    /// An odd modulus of exactly `bits` bits (not a real key: parsing never factors).
    fn modulus(bits: usize) -> BigUint {
        let mut bytes = vec![0xa5u8; bits / 8];
        bytes[0] = 0xc3;
        *bytes.last_mut().unwrap() |= 1;
        BigUint::from_bytes_be(&bytes)
    }

    #[test]
    fn normalised_emails_are_accepted() {
        for ok in [
            "alice@example.org",
            "a.b+tag@sub.example.org",
            "ünïcode-local@example.org",
            "bob@xn--bcher-kva.example",
        ] {
            check_email(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn emails_that_are_not_normalised_are_refused() {
        for (bad, why) in [
            ("", "empty"),
            (" alice@example.org", "whitespace"),
            ("alice@example.org\n", "whitespace"),
            ("al ice@example.org", "whitespace"),
            ("alice@exa\u{a0}mple.org", "whitespace"),
            ("al\u{7}ice@example.org", "control"),
            ("alice:x@example.org", "':'"),
            ("Alice@example.org", "lower-cased"),
            ("alice@Example.org", "lower-cased"),
            ("alice@bücher.example", "A-label"),
            ("alice", "exactly one"),
            ("a@b@example.org", "exactly one"),
            ("@example.org", "before and after"),
            ("alice@", "before and after"),
        ] {
            let e = check_email(bad).expect_err(bad).to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(check_email(&long).unwrap_err().to_string().contains("longer"));
    }

    #[test]
    fn sequences_run_from_1_to_2_pow_53_minus_1() {
        assert_eq!(check_sequence(&json!(1)).unwrap(), 1);
        assert_eq!(check_sequence(&json!(MAX_SEQUENCE)).unwrap(), MAX_SEQUENCE);
        for bad in [
            json!(0),
            json!(MAX_SEQUENCE + 1),
            json!(-1),
            json!(1.0),
            json!(1.5),
            json!("7"),
            json!(null),
        ] {
            let e = check_sequence(&bad).expect_err(&bad.to_string()).to_string();
            assert!(e.contains("2^53-1"), "{e}");
        }
    }

    #[test]
    fn created_at_has_one_exact_form_and_at_most_a_day_of_future() {
        assert_eq!(check_created_at("2026-11-18T00:00:00Z", NOW).unwrap(), 1_794_960_000);
        for bad in [
            "2026-11-18T00:00:00+00:00",
            "2026-11-18 00:00:00Z",
            "2026-11-18T00:00:00.5Z",
            "2026-11-18T00:00:00z",
            "2026-11-18T00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-18T24:00:00Z",
            " 2026-11-18T00:00:00Z",
            "２026-11-18T00:00:00Z",
        ] {
            let e = check_created_at(bad, NOW).expect_err(bad).to_string();
            assert!(e.contains("YYYY-MM-DDTHH:MM:SSZ"), "{bad}: {e}");
        }
        let fmt = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .unwrap()
                .format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
                ))
                .unwrap()
        };
        assert!(
            check_created_at(&fmt(NOW + 86400), NOW).is_ok(),
            "exactly 24 h ahead is fine"
        );
        let e = check_created_at(&fmt(NOW + 86401), NOW).unwrap_err().to_string();
        assert!(e.contains("24 hours in the future"), "{e}");
        assert!(
            check_created_at("2001-01-01T00:00:00Z", NOW).is_ok(),
            "the past is not limited"
        );
    }

    #[test]
    fn base64_needs_padding_and_no_whitespace() {
        assert_eq!(decode_base64("x", "QUJD").unwrap(), b"ABC");
        assert_eq!(decode_base64("x", "QUI=").unwrap(), b"AB");
        for bad in [
            "QUI", "QUI=\n", "QU JD", " QUJD", "QUJD\n", "-_-_", "QUI==", "QR==", "QUJ=", "=QUI", "QUI=QUJD",
        ] {
            let e = decode_base64("backup", bad).expect_err(bad).to_string();
            assert!(e.contains("backup must be standard base64"), "{e}");
        }
        // Long texts take the SIMD path: the same bytes as the reference decoder, and
        // one wrong character anywhere is refused.
        let data: Vec<u8> = (0..100_003u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let text = base64::engine::general_purpose::STANDARD.encode(&data);
        assert_eq!(decode_base64("backup", &text).unwrap(), data);
        for (at, wrong) in [(0, '-'), (50_001, '_'), (70_000, ' '), (text.len() - 5, '=')] {
            let mut bad = text.clone();
            bad.replace_range(at..at + 1, &wrong.to_string());
            assert!(decode_base64("backup", &bad).is_err(), "{wrong:?} at {at}");
        }
        for len in 0..40 {
            let data = vec![7u8; len];
            let text = base64::engine::general_purpose::STANDARD.encode(&data);
            assert_eq!(decoded_len(&text), len as u64);
        }
    }

    #[test]
    fn keys_must_be_rsa_2048_to_4096_bits_with_e_65537_in_spki() {
        let key = AccountKey::from_pem(&pem_of(modulus(2048), 65537)).unwrap();
        assert_eq!(key.fingerprint().hex().len(), 64);
        assert_eq!(key.fingerprint().short(), key.fingerprint().hex()[..16]);
        AccountKey::from_pem(&pem_of(modulus(3072), 65537)).unwrap();
        AccountKey::from_pem(&pem_of(modulus(4096), 65537)).unwrap();
        for (pem, why) in [
            (pem_of(modulus(1024), 65537), "1024 bits"),
            (pem_of(modulus(2040), 65537), "2040 bits"),
            (pem_of(modulus(4104), 65537), "4104 bits"),
            (pem_of(modulus(8192), 65537), "8192 bits"),
            (pem_of(modulus(2048), 3), "exponent 65537"),
            (pem_of(modulus(2048), 17), "exponent 65537"),
            ("not a key".to_string(), "PEM"),
            (
                pem_of(modulus(2048), 65537).replace("PUBLIC KEY", "RSA PUBLIC KEY"),
                "SPKI",
            ),
        ] {
            let e = AccountKey::from_pem(&pem).expect_err(why).to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn the_fingerprint_does_not_depend_on_pem_layout() {
        let pem = pem_of(modulus(2048), 65537);
        let crlf = pem.replace('\n', "\r\n");
        assert_eq!(
            AccountKey::from_pem(&pem).unwrap().fingerprint(),
            AccountKey::from_pem(&crlf).unwrap().fingerprint()
        );
        let other = pem_of(modulus(2056), 65537);
        assert_ne!(
            AccountKey::from_pem(&pem).unwrap().fingerprint(),
            AccountKey::from_pem(&other).unwrap().fingerprint()
        );
    }

    #[test]
    fn signed_texts() {
        assert_eq!(
            push_signed_text("a@b.org", 7, "2026-11-22T01:00:00Z", Some(&[0xab; 32])),
            format!("lifeboat-backup:1:a@b.org:7:2026-11-22T01:00:00Z:{}", "ab".repeat(32))
        );
        assert_eq!(
            push_signed_text("a@b.org", 8, "2026-11-22T01:00:00Z", None),
            "lifeboat-backup:1:a@b.org:8:2026-11-22T01:00:00Z:delete"
        );
        assert_eq!(
            status_signed_text("a@b.org", "2026-11-22T01:00:00Z"),
            "lifeboat-backup-status:1:a@b.org:2026-11-22T01:00:00Z"
        );
    }

    #[test]
    fn validation_names_the_first_wrong_field() {
        let pem = pem_of(modulus(2048), 65537);
        let good = json!({"version": 1, "email": "a@b.org", "public_key": pem, "sequence": 3,
            "created_at": "2026-11-18T00:00:00Z", "backup": null, "signature": "QUJD", "extra": [1]});
        let check = |mutate: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            mutate(&mut v);
            let raw = RawPush::parse(v.to_string().as_bytes()).unwrap();
            raw.validate(raw.key(), NOW).map(|_| ())
        };
        check(&|_| {}).unwrap();
        for (mutate, why) in [
            (
                Box::new(|v: &mut serde_json::Value| v["version"] = json!(2)) as Box<dyn Fn(&mut serde_json::Value)>,
                "version must be 1",
            ),
            (
                Box::new(|v: &mut serde_json::Value| {
                    v.as_object_mut().unwrap().remove("version");
                }),
                "version is missing",
            ),
            (
                Box::new(|v: &mut serde_json::Value| v["email"] = json!(5)),
                "email must be a string",
            ),
            (
                Box::new(|v: &mut serde_json::Value| v["sequence"] = json!(0)),
                "sequence",
            ),
            (
                Box::new(|v: &mut serde_json::Value| {
                    v.as_object_mut().unwrap().remove("backup");
                }),
                "backup is missing",
            ),
            (
                Box::new(|v: &mut serde_json::Value| v["backup"] = json!(5)),
                "backup must be",
            ),
            (
                Box::new(|v: &mut serde_json::Value| v["signature"] = json!("QUI")),
                "signature must be standard base64",
            ),
        ] {
            let e = check(&*mutate).expect_err(why).to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        assert!(RawPush::parse(b"[1]").is_err());
        assert!(RawPush::parse(b"{").is_err());
    }
}
