//! RSA signatures and keys as diaspora* uses them: PKCS#1 v1.5 signatures over SHA-256,
//! keys in PEM (private keys PKCS#1, public keys SPKI, with the other encodings
//! diaspora* has used accepted on input), key fingerprints (SHA-256 of the SPKI DER)
//! and the key-strength rule of docs/holder-api.md, "Keys and fingerprints".

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Smallest modulus accepted by [`check_key_strength`], in bits.
pub const MIN_KEY_BITS: usize = 2048;
/// Largest modulus accepted by [`check_key_strength`], in bits.
pub const MAX_KEY_BITS: usize = 4096;
/// The only public exponent accepted by [`check_key_strength`].
pub const REQUIRED_PUBLIC_EXPONENT: u32 = 65537;

/// Signs `text` with RSA PKCS#1 v1.5 over its SHA-256 digest.
///
/// The signature is deterministic; the random source only blinds the private-key
/// operation against timing attacks.
///
/// ring makes the signature when it takes the key (2048 bits and more: every key
/// lifeboat makes or accepts), several times faster than the `rsa` crate for 4096-bit
/// keys; the signature is the same, PKCS#1 v1.5 being deterministic.
pub fn sign(private_key: &RsaPrivateKey, text: &[u8]) -> Vec<u8> {
    if let Some(signature) = sign_with_ring(private_key, text) {
        return signature;
    }
    let digest = Sha256::digest(text);
    private_key
        .sign_with_rng(&mut rand::rngs::OsRng, Pkcs1v15Sign::new::<Sha256>(), &digest)
        // Only fails for a digest longer than the key allows, which a SHA-256 digest
        // never is for the smallest key the rsa crate can even load.
        .expect("a SHA-256 digest always fits a PKCS#1 v1.5 signature")
}

fn sign_with_ring(private_key: &RsaPrivateKey, text: &[u8]) -> Option<Vec<u8>> {
    let der = private_key.to_pkcs1_der().ok()?;
    let pair = ring::rsa::KeyPair::from_der(der.as_bytes()).ok()?;
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        text,
        &mut signature,
    )
    .ok()?;
    Some(signature)
}

/// Checks an RSA PKCS#1 v1.5 / SHA-256 signature of `text`.
///
/// Fails with [`Error::Unauthorized`] when the signature does not verify.
pub fn verify(public_key: &RsaPublicKey, text: &[u8], signature: &[u8]) -> Result<()> {
    let digest = Sha256::digest(text);
    public_key
        .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
        .map_err(|_| Error::Unauthorized("signature does not verify".into()))
}

/// [`sign`], with the signature as standard base64 (with padding), as diaspora*'s
/// entity signatures are written.
pub fn sign_base64(private_key: &RsaPrivateKey, text: &[u8]) -> String {
    STANDARD.encode(sign(private_key, text))
}

/// [`verify`] for a signature written in standard base64; whitespace around and inside
/// the base64 text is ignored.
pub fn verify_base64(public_key: &RsaPublicKey, text: &[u8], signature_base64: &str) -> Result<()> {
    let signature = decode_standard_base64(signature_base64)
        .map_err(|_| Error::Unauthorized("signature is not valid base64".into()))?;
    verify(public_key, text, &signature)
}

/// Reads an RSA private key from PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what diaspora*
/// stores) or PKCS#8 (`BEGIN PRIVATE KEY`).
pub fn private_key_from_pem(pem: &str) -> Result<RsaPrivateKey> {
    let pem = normalize_pem(pem);
    RsaPrivateKey::from_pkcs1_pem(&pem)
        .or_else(|_| RsaPrivateKey::from_pkcs8_pem(&pem))
        .map_err(|_| Error::bad("not an RSA private key in PEM form (PKCS#1 or PKCS#8)"))
}

/// Writes an RSA private key as PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), the form
/// of diaspora*'s archive `user.private_key`.
pub fn private_key_to_pem(private_key: &RsaPrivateKey) -> Result<String> {
    private_key
        .to_pkcs1_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| Error::internal(format!("encoding a private key: {e}")))
}

/// Reads an RSA public key from PEM: SPKI (`BEGIN PUBLIC KEY`) or PKCS#1
/// (`BEGIN RSA PUBLIC KEY`); diaspora* has published both.
pub fn public_key_from_pem(pem: &str) -> Result<RsaPublicKey> {
    let pem = normalize_pem(pem);
    RsaPublicKey::from_public_key_pem(&pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(&pem))
        .map_err(|_| Error::bad("not an RSA public key in PEM form (SPKI or PKCS#1)"))
}

/// Writes an RSA public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), 64-character
/// lines, LF line ends, ending with a newline.
pub fn public_key_to_pem(public_key: &RsaPublicKey) -> String {
    public_key
        .to_public_key_pem(LineEnding::LF)
        .expect("encoding an RSA public key as SPKI cannot fail")
}

/// `public_key_to_pem(&public_key_from_pem(pem)?)` — the same checks and the same text
/// — without big-number arithmetic: the DER is checked and re-encoded as it is. About
/// ten times faster, which counts for an archive that carries thousands of contacts'
/// keys. The checks are the `rsa` crate's (`RsaPublicKey::new`): rsaEncryption with
/// NULL parameters, a modulus of at most 4096 bits that is odd, an odd public exponent
/// from 2 to 2^33 − 1 and below the modulus.
pub fn canonical_public_key_pem(pem: &str) -> Result<String> {
    use rsa::pkcs1::der::asn1::{AnyRef, BitStringRef};
    use rsa::pkcs1::der::{Decode, Encode};
    use rsa::pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

    let refuse = || Error::bad("not an RSA public key in PEM form (SPKI or PKCS#1)");
    // Text already in the canonical layout (what lifeboat and OpenSSL write) is decoded
    // with the fast base64 decoder: a public key needs no constant-time decoding.
    let fast = canonical_layout_der(pem);
    let canonical_layout = fast.is_some();
    let normalized;
    let (label, der) = match fast {
        Some(der) => ("PUBLIC KEY", der),
        None => {
            normalized = normalize_pem(pem);
            rsa::pkcs1::der::pem::decode_vec(normalized.as_bytes()).map_err(|_| refuse())?
        }
    };
    let pkcs1_der: &[u8] = match label {
        "PUBLIC KEY" => {
            let info = SubjectPublicKeyInfoRef::from_der(&der).map_err(|_| refuse())?;
            if info.algorithm.oid != rsa::pkcs1::ALGORITHM_OID || info.algorithm.parameters != Some(AnyRef::NULL) {
                return Err(refuse());
            }
            info.subject_public_key.as_bytes().ok_or_else(refuse)?
        }
        "RSA PUBLIC KEY" => &der,
        _ => return Err(refuse()),
    };
    let key = rsa::pkcs1::RsaPublicKey::from_der(pkcs1_der).map_err(|_| refuse())?;
    let (n, e) = (
        strip_zeros(key.modulus.as_bytes()),
        strip_zeros(key.public_exponent.as_bytes()),
    );
    let bits = n
        .first()
        .map_or(0, |top| (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize));
    let e_value = match e.len() {
        0..=8 => e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        _ => return Err(refuse()),
    };
    let e_below_n = e.len() < n.len() || (e.len() == n.len() && e < n);
    let odd = |bytes: &[u8]| bytes.last().is_some_and(|b| b & 1 == 1);
    if bits > MAX_KEY_BITS
        || !e_below_n
        || !odd(n)
        || !odd(e)
        || !(RsaPublicKey::MIN_PUB_EXPONENT..=RsaPublicKey::MAX_PUB_EXPONENT).contains(&e_value)
    {
        return Err(refuse());
    }
    let pkcs1 = key.to_der().map_err(|_| refuse())?;
    let info = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: rsa::pkcs1::ALGORITHM_OID,
            parameters: Some(AnyRef::NULL),
        },
        subject_public_key: BitStringRef::from_bytes(&pkcs1).map_err(|_| refuse())?,
    };
    let spki = info.to_der().map_err(|_| refuse())?;
    if canonical_layout && spki == der {
        // Canonical layout and canonical DER: the text is what encoding would write.
        let body = pem.trim_end_matches('\n');
        let mut text = String::with_capacity(body.len() + 1);
        text.push_str(body);
        text.push('\n');
        return Ok(text);
    }
    rsa::pkcs1::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &spki).map_err(|_| refuse())
}

const SPKI_BEGIN: &str = "-----BEGIN PUBLIC KEY-----\n";
const SPKI_END: &str = "-----END PUBLIC KEY-----";

/// The DER of an SPKI PEM written exactly as [`public_key_to_pem`] writes one (LF line
/// ends, 64 base64 characters a line, one final newline or none), else `None`.
fn canonical_layout_der(pem: &str) -> Option<Vec<u8>> {
    const LINE: usize = 64;
    let body = pem.strip_prefix(SPKI_BEGIN)?;
    let body = body.strip_suffix('\n').unwrap_or(body).strip_suffix(SPKI_END)?;
    let mut rest = body.strip_suffix('\n')?.as_bytes();
    // Every line but the last is full: its end is found by counting, and the lines are
    // decoded at once (a line break anywhere else is not base64, so decoding refuses it).
    let mut text = Vec::with_capacity(rest.len());
    while rest.len() > LINE {
        if rest[LINE] != b'\n' {
            return None;
        }
        text.extend_from_slice(&rest[..LINE]);
        rest = &rest[LINE + 1..];
    }
    if rest.is_empty() {
        return None;
    }
    text.extend_from_slice(rest);
    STANDARD.decode(&text).ok()
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The key's fingerprint: SHA-256 of its SPKI DER encoding. Keys are compared by
/// fingerprint, never by PEM text.
pub fn fingerprint(public_key: &RsaPublicKey) -> [u8; 32] {
    let der = public_key
        .to_public_key_der()
        .expect("encoding an RSA public key as SPKI cannot fail");
    Sha256::digest(der.as_bytes()).into()
}

/// The first 16 lowercase hex digits of [`fingerprint`], as shown to users.
pub fn short_fingerprint(public_key: &RsaPublicKey) -> String {
    let mut hex_digits = hex::encode(fingerprint(public_key));
    hex_digits.truncate(16);
    hex_digits
}

/// Refuses keys outside 2048–4096 bits or with a public exponent other than 65537
/// ([`Error::BadRequest`], saying which rule failed).
pub fn check_key_strength(public_key: &RsaPublicKey) -> Result<()> {
    let bits = public_key.n().bits();
    if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
        return Err(Error::bad(format!(
            "RSA key has {bits} bits; it must have {MIN_KEY_BITS} to {MAX_KEY_BITS}"
        )));
    }
    if *public_key.e() != BigUint::from(REQUIRED_PUBLIC_EXPONENT) {
        return Err(Error::bad(format!(
            "RSA key's public exponent must be {REQUIRED_PUBLIC_EXPONENT}"
        )));
    }
    Ok(())
}

/// Decodes standard base64 the way diaspora* writes it, ignoring ASCII whitespace
/// (line breaks, indentation around element text) and tolerating missing padding.
pub(crate) fn decode_standard_base64(text: &str) -> std::result::Result<Vec<u8>, ()> {
    let compact = remove_ascii_whitespace(text);
    STANDARD_INDIFFERENT.decode(compact).map_err(|_| ())
}

/// `text` without any ASCII whitespace.
pub(crate) fn remove_ascii_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_ascii_whitespace()).collect()
}

const STANDARD_INDIFFERENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// PEM as found in the wild (an hCard's `<pre>`, a JSON string, a pasted file): trimmed,
/// CRLF turned into LF, and ending with a newline as the decoder expects.
fn normalize_pem(pem: &str) -> String {
    let mut normalized: String = pem.trim().replace("\r\n", "\n").replace('\r', "\n");
    normalized.push('\n');
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::test_support::{reference, vector_key_pair};

    fn vector_cases() -> Vec<(String, String)> {
        let vectors: serde_json::Value = serde_json::from_str(&reference("signature-vectors/vectors.json")).unwrap();
        vectors["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|case| {
                (
                    case["signed_text"].as_str().unwrap().to_string(),
                    case["signature_base64"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn ring_and_the_rsa_crate_make_the_same_signatures() {
        for bits in [2048, 4096] {
            let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap();
            let text = b"AccountMigration:alice@old.example:alice@new.example";
            let by_ring = sign_with_ring(&key, text).expect("ring takes 2048 and 4096 bits");
            let digest = Sha256::digest(text);
            let by_rsa = key
                .sign_with_rng(&mut rand::rngs::OsRng, Pkcs1v15Sign::new::<Sha256>(), &digest)
                .unwrap();
            assert_eq!(by_ring, by_rsa);
            verify(&key.to_public_key(), text, &sign(&key, text)).unwrap();
        }
        // The 1024-bit reference key is below ring's floor: the rsa crate signs.
        let (small, _) = vector_key_pair();
        assert!(sign_with_ring(&small, b"x").is_none());
    }

    #[test]
    fn canonical_public_key_pem_agrees_with_the_rsa_crate() {
        let (private_key, public_key) = vector_key_pair();
        let spki = public_key_to_pem(&public_key);
        assert_eq!(canonical_public_key_pem(&spki).unwrap(), spki);
        let crlf = format!("  {}  ", spki.replace('\n', "\r\n"));
        assert_eq!(canonical_public_key_pem(&crlf).unwrap(), spki);
        assert_eq!(canonical_public_key_pem(spki.trim_end()).unwrap(), spki);
        let rewrapped = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            spki.lines().filter(|l| !l.starts_with("-----")).collect::<String>()
        );
        assert_eq!(
            canonical_public_key_pem(&rewrapped).is_ok(),
            public_key_from_pem(&rewrapped).is_ok()
        );
        let pkcs1 = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(&public_key, LineEnding::LF).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
        assert_eq!(canonical_public_key_pem(&pkcs1).unwrap(), spki);
        for other in [2048, 3072] {
            let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, other)
                .unwrap()
                .to_public_key();
            let pem = public_key_to_pem(&key);
            assert_eq!(canonical_public_key_pem(&pem).unwrap(), pem);
        }
        // Whatever the rsa crate refuses, this refuses: not keys, private keys, bad
        // exponents, even moduli, too large moduli.
        let private_pem = private_key_to_pem(&private_key).unwrap();
        let weird = |n: BigUint, e: BigUint| {
            let (n, e) = (n.to_bytes_be(), e.to_bytes_be());
            let der = rsa::pkcs1::RsaPublicKey {
                modulus: rsa::pkcs1::UintRef::new(&n).unwrap(),
                public_exponent: rsa::pkcs1::UintRef::new(&e).unwrap(),
            };
            let bytes = rsa::pkcs1::der::Encode::to_der(&der).unwrap();
            rsa::pkcs1::der::pem::encode_string("RSA PUBLIC KEY", LineEnding::LF, &bytes).unwrap()
        };
        let n = public_key.n().clone();
        let cases = [
            "not a key".to_string(),
            private_pem,
            // A line of base64 missing: the DER lengths no longer add up.
            spki.lines()
                .enumerate()
                .filter(|(i, _)| *i != 2)
                .map(|(_, l)| format!("{l}\n"))
                .collect(),
            weird(n.clone(), BigUint::from(3u8) * BigUint::from(2u8)),
            weird(n.clone(), BigUint::from(1u8)),
            weird(n.clone() + BigUint::from(1u8), BigUint::from(65537u32)),
            weird(n.clone(), BigUint::from((1u64 << 33) + 1)),
            weird(BigUint::from(1u8) << 4100, BigUint::from(65537u32)),
            weird(BigUint::from(65537u32), BigUint::from(65537u32)),
        ];
        for case in cases {
            let ours = canonical_public_key_pem(&case).is_ok();
            let theirs = public_key_from_pem(&case).is_ok();
            assert_eq!(ours, theirs, "{case}");
            assert!(!ours, "{case}");
        }
    }

    #[test]
    fn reproduces_the_reference_signatures_exactly() {
        let (private_key, _) = vector_key_pair();
        let cases = vector_cases();
        assert_eq!(cases.len(), 3);
        for (signed_text, expected) in cases {
            assert_eq!(sign_base64(&private_key, signed_text.as_bytes()), expected);
        }
    }

    #[test]
    fn verifies_the_reference_signatures_with_the_published_public_key() {
        let (private_key, public_key) = vector_key_pair();
        assert_eq!(public_key, private_key.to_public_key());
        for (signed_text, signature) in vector_cases() {
            verify_base64(&public_key, signed_text.as_bytes(), &signature).unwrap();
            let wrapped = format!("\n    {}\n  ", signature);
            verify_base64(&public_key, signed_text.as_bytes(), &wrapped).unwrap();
        }
    }

    #[test]
    fn refuses_a_signature_over_other_text_or_altered_bytes() {
        let (_, public_key) = vector_key_pair();
        let (signed_text, signature) = vector_cases().remove(0);
        let altered_text = format!("{signed_text}.");
        let err = verify_base64(&public_key, altered_text.as_bytes(), &signature).unwrap_err();
        assert!(matches!(err, Error::Unauthorized(_)));

        let mut bytes = decode_standard_base64(&signature).unwrap();
        bytes[10] ^= 1;
        assert!(verify(&public_key, signed_text.as_bytes(), &bytes).is_err());
        assert!(verify(&public_key, signed_text.as_bytes(), &bytes[1..]).is_err());
        assert!(verify(&public_key, signed_text.as_bytes(), &[]).is_err());
        assert!(verify_base64(&public_key, signed_text.as_bytes(), "not base64!").is_err());
    }

    #[test]
    fn the_reference_key_is_too_weak_for_lifeboat() {
        let (_, public_key) = vector_key_pair();
        let err = check_key_strength(&public_key).unwrap_err();
        assert!(err.to_string().contains("1024 bits"), "{err}");
    }

    #[test]
    fn key_strength_accepts_2048_to_4096_bits_with_e_65537_only() {
        let mut rng = rand::rngs::OsRng;
        let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        check_key_strength(&key.to_public_key()).unwrap();

        let hcard = reference("diaspora-examples/hcard.example.html");
        let start = hcard.find("-----BEGIN PUBLIC KEY-----").unwrap();
        let end = hcard.find("-----END PUBLIC KEY-----").unwrap() + 24;
        let key_4096 = public_key_from_pem(&hcard[start..end]).unwrap();
        assert_eq!(key_4096.n().bits(), 4096);
        check_key_strength(&key_4096).unwrap();

        let e3 = RsaPublicKey::new(key.n().clone(), BigUint::from(3u32)).unwrap();
        let err = check_key_strength(&e3).unwrap_err();
        assert!(err.to_string().contains("exponent"), "{err}");
    }

    #[test]
    fn private_keys_round_trip_through_pkcs1_and_are_read_from_pkcs8() {
        use rsa::pkcs8::EncodePrivateKey;
        let (private_key, _) = vector_key_pair();
        let pkcs1 = private_key_to_pem(&private_key).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        assert_eq!(private_key_from_pem(&pkcs1).unwrap(), private_key);

        let pkcs8 = private_key.to_pkcs8_pem(LineEnding::CRLF).unwrap();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(private_key_from_pem(&pkcs8).unwrap(), private_key);

        assert!(private_key_from_pem("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n").is_err());
        assert!(private_key_from_pem("").is_err());
    }

    #[test]
    fn public_keys_are_read_from_spki_and_pkcs1_and_written_as_spki() {
        use rsa::pkcs1::EncodeRsaPublicKey;
        let reference_pem = reference("signature-vectors/author_public_key.pem");
        let (_, public_key) = vector_key_pair();
        assert_eq!(public_key_to_pem(&public_key), reference_pem);

        let pkcs1 = public_key.to_pkcs1_pem(LineEnding::LF).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
        assert_eq!(public_key_from_pem(&pkcs1).unwrap(), public_key);

        let indented = format!("\n  {}  \n", reference_pem.replace('\n', "\r\n"));
        assert_eq!(public_key_from_pem(&indented).unwrap(), public_key);
        assert!(public_key_from_pem("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----").is_err());
    }

    #[test]
    fn fingerprint_is_sha256_of_the_spki_der() {
        let (_, public_key) = vector_key_pair();
        let pem = reference("signature-vectors/author_public_key.pem");
        let base64_body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
        let der = STANDARD.decode(base64_body).unwrap();
        let expected: [u8; 32] = Sha256::digest(&der).into();
        assert_eq!(fingerprint(&public_key), expected);
        let short = short_fingerprint(&public_key);
        assert_eq!(short, hex::encode(expected)[..16]);
        assert_eq!(short.len(), 16);
        assert!(short.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
