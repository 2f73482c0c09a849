//! diaspora*'s Magic Envelope: the public envelope that carries a signed entity, and the
//! encrypted wrapper that carries an envelope to one recipient (`/receive/users/GUID`).
//! See docs/formats.md, "The Magic Envelope" and "The encrypted private message".

use aes::Aes256;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::RngCore;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

use super::signature;
use super::xml::{escape_attribute, escape_text, parse_document};
use crate::{Error, Result};

/// The Magic Envelope XML namespace.
pub const MAGIC_ENV_NAMESPACE: &str = "http://salmon-protocol.org/ns/magic-env";
/// The only data type diaspora* uses.
pub const DATA_TYPE: &str = "application/xml";
/// The only data encoding diaspora* uses.
pub const ENCODING: &str = "base64url";
/// The only signature algorithm diaspora* uses.
pub const ALGORITHM: &str = "RSA-SHA256";
/// The `Content-Type` of a public envelope POSTed to `/receive/public`.
pub const CONTENT_TYPE: &str = "application/magic-envelope+xml";

/// The `Content-Type` of an encrypted private message (`/receive/users/GUID`).
pub const PRIVATE_CONTENT_TYPE: &str = "application/json";

/// A public Magic Envelope, as built here or as received.
///
/// A received envelope keeps the `me:data` text exactly as sent (whitespace removed):
/// its signature is checked over that text, never over a re-encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagicEnvelope {
    data: String,
    signature: String,
    key_id: String,
    payload: Vec<u8>,
}

impl MagicEnvelope {
    /// Wraps `entity_xml` (no XML declaration; surrounding whitespace is dropped, as
    /// diaspora* does) in an envelope signed by `author_id`'s private key.
    pub fn sign(entity_xml: &str, author_id: &str, private_key: &RsaPrivateKey) -> MagicEnvelope {
        let data = URL_SAFE.encode(entity_xml.trim().as_bytes());
        let signature = signature::sign(private_key, signed_text(&data).as_bytes());
        MagicEnvelope {
            signature: URL_SAFE.encode(signature),
            key_id: author_id.to_string(),
            payload: entity_xml.trim().as_bytes().to_vec(),
            data,
        }
    }

    /// The envelope's XML document.
    pub fn to_xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <me:env xmlns:me=\"{MAGIC_ENV_NAMESPACE}\">\n  \
             <me:data type=\"{DATA_TYPE}\">{data}</me:data>\n  \
             <me:encoding>{ENCODING}</me:encoding>\n  \
             <me:alg>{ALGORITHM}</me:alg>\n  \
             <me:sig key_id=\"{key_id}\">{signature}</me:sig>\n\
             </me:env>\n",
            data = escape_text(&self.data),
            key_id = escape_attribute(&URL_SAFE.encode(self.key_id.as_bytes())),
            signature = escape_text(&self.signature),
        )
    }

    /// Reads an envelope ([`Error::BadRequest`] when malformed): the root must be
    /// `env`, the data type, encoding and algorithm diaspora*'s, the data, signature
    /// and `key_id` present and valid base64url. The signature is not checked here:
    /// see [`MagicEnvelope::verify`].
    pub fn parse(xml: &str) -> Result<MagicEnvelope> {
        let root = parse_document(xml)?;
        if root.name != "env" {
            return Err(Error::bad("not a Magic Envelope (root element is not me:env)"));
        }
        let data_element = root
            .child("data")
            .ok_or_else(|| Error::bad("Magic Envelope has no me:data"))?;
        let data_type = data_element.attribute("type").unwrap_or("").trim();
        if data_type != DATA_TYPE {
            return Err(Error::bad(format!("Magic Envelope data type must be {DATA_TYPE}")));
        }
        let encoding = root.child("encoding").map(|e| e.text()).unwrap_or_default();
        if encoding.trim() != ENCODING {
            return Err(Error::bad(format!("Magic Envelope encoding must be {ENCODING}")));
        }
        let algorithm = root.child("alg").map(|e| e.text()).unwrap_or_default();
        if algorithm.trim() != ALGORITHM {
            return Err(Error::bad(format!("Magic Envelope algorithm must be {ALGORITHM}")));
        }
        let data = signature::remove_ascii_whitespace(&data_element.text());
        if data.is_empty() {
            return Err(Error::bad("Magic Envelope data is empty"));
        }
        let payload =
            decode_base64url(&data).ok_or_else(|| Error::bad("Magic Envelope data is not valid base64url"))?;
        let signature_element = root
            .child("sig")
            .ok_or_else(|| Error::bad("Magic Envelope has no me:sig"))?;
        let signature = signature::remove_ascii_whitespace(&signature_element.text());
        if signature.is_empty() || decode_base64url(&signature).is_none() {
            return Err(Error::bad("Magic Envelope signature is missing or not base64url"));
        }
        let key_id = signature_element
            .attribute("key_id")
            .map(signature::remove_ascii_whitespace)
            .filter(|key_id| !key_id.is_empty())
            .ok_or_else(|| Error::bad("Magic Envelope signature has no key_id"))?;
        let key_id = decode_base64url(&key_id)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| Error::bad("Magic Envelope key_id is not base64url text"))?;
        Ok(MagicEnvelope {
            data,
            signature,
            key_id,
            payload,
        })
    }

    /// The signer's diaspora ID, as the envelope names it (decoded `key_id`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The `me:data` text as received (whitespace removed) or as written.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The text the signature covers: data, then the base64url of the data type,
    /// encoding and algorithm, joined by `.`.
    pub fn signed_text(&self) -> String {
        signed_text(&self.data)
    }

    /// Checks the envelope's signature with the signer's public key
    /// ([`Error::Unauthorized`] when it does not verify).
    pub fn verify(&self, public_key: &RsaPublicKey) -> Result<()> {
        let signature = decode_base64url(&self.signature)
            .ok_or_else(|| Error::Unauthorized("signature is not base64url".into()))?;
        signature::verify(public_key, self.signed_text().as_bytes(), &signature)
            .map_err(|_| Error::Unauthorized("Magic Envelope signature does not verify".into()))
    }

    /// The decoded entity XML.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The decoded entity XML as text ([`Error::BadRequest`] when it is not UTF-8).
    pub fn payload_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.payload).map_err(|_| Error::bad("Magic Envelope payload is not UTF-8"))
    }
}

fn signed_text(data: &str) -> String {
    [
        data.to_string(),
        URL_SAFE.encode(DATA_TYPE),
        URL_SAFE.encode(ENCODING),
        URL_SAFE.encode(ALGORITHM),
    ]
    .join(".")
}

/// base64url with or without padding, as Ruby's `urlsafe_decode64` accepts it.
fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    const URL_SAFE_INDIFFERENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    URL_SAFE_INDIFFERENT.decode(text).ok()
}

/// The JSON body POSTed to `/receive/users/GUID`.
#[derive(Serialize, Deserialize)]
struct EncryptedEnvelope {
    aes_key: String,
    encrypted_magic_envelope: String,
}

/// The AES key and IV, themselves RSA-encrypted inside `aes_key`.
#[derive(Serialize, Deserialize)]
struct AesKeyAndIv {
    key: String,
    iv: String,
}

const AES_KEY_BYTES: usize = 32;
const AES_IV_BYTES: usize = 16;
const AES_BLOCK_BYTES: usize = 16;

/// Encrypts an envelope for one recipient: AES-256-CBC (PKCS#7) with a fresh random
/// key and IV, the key and IV RSA-encrypted (PKCS#1 v1.5) with the recipient's public
/// key. Returns the JSON body, `Content-Type: application/json`.
pub fn encrypt_for(envelope_xml: &str, recipient_public_key: &RsaPublicKey) -> Result<String> {
    let mut rng = rand::rngs::OsRng;
    let mut key = [0u8; AES_KEY_BYTES];
    let mut iv = [0u8; AES_IV_BYTES];
    rng.fill_bytes(&mut key);
    rng.fill_bytes(&mut iv);

    let ciphertext =
        cbc::Encryptor::<Aes256>::new(&key.into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(envelope_xml.as_bytes());
    let key_json = serde_json::to_string(&AesKeyAndIv {
        key: STANDARD.encode(key),
        iv: STANDARD.encode(iv),
    })?;
    let encrypted_key = recipient_public_key
        .encrypt(&mut rng, Pkcs1v15Encrypt, key_json.as_bytes())
        .map_err(|e| Error::bad(format!("cannot encrypt for this recipient key: {e}")))?;
    Ok(serde_json::to_string(&EncryptedEnvelope {
        aes_key: STANDARD.encode(encrypted_key),
        encrypted_magic_envelope: STANDARD.encode(ciphertext),
    })?)
}

/// Decrypts a body built by [`encrypt_for`] (or by diaspora*) with the recipient's
/// private key and returns the envelope XML.
///
/// Refuses ([`Error::TooLarge`]) an envelope longer than `max_len` bytes before
/// decrypting it, and ([`Error::BadRequest`]) anything malformed. Every decryption
/// failure gives the same message, so the answer does not say which layer failed.
pub fn decrypt(json: &str, recipient_private_key: &RsaPrivateKey, max_len: usize) -> Result<String> {
    decrypt_unwrapped(json, max_len, |encrypted_key| {
        recipient_private_key
            .decrypt_blinded(&mut rand::rngs::OsRng, Pkcs1v15Encrypt, encrypted_key)
            .ok()
    })
}

/// [`decrypt`] with the RSA step given: `unwrap_key` turns the decoded `aes_key` into
/// the JSON of the AES key and IV (`None` when it fails). Every other step is
/// [`decrypt`]'s. For the fuzz targets (`fuzz/`), where an RSA decryption per input
/// would be far too slow.
#[doc(hidden)]
pub fn decrypt_unwrapped(
    json: &str,
    max_len: usize,
    unwrap_key: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Result<String> {
    let body: EncryptedEnvelope =
        serde_json::from_str(json).map_err(|_| Error::bad("encrypted envelope is not the expected JSON"))?;
    let encrypted_envelope = signature::remove_ascii_whitespace(&body.encrypted_magic_envelope);
    // Three bytes per four base64 characters; padding makes the bound generous by at
    // most two bytes, and PKCS#7 adds at most one block.
    if encrypted_envelope.len() / 4 * 3 > max_len.saturating_add(AES_BLOCK_BYTES + 2) {
        return Err(Error::TooLarge(format!(
            "encrypted envelope is larger than {max_len} bytes"
        )));
    }
    let ciphertext = signature::decode_standard_base64(&encrypted_envelope)
        .map_err(|_| Error::bad("encrypted envelope is not valid base64"))?;
    let encrypted_key = signature::decode_standard_base64(&body.aes_key)
        .map_err(|_| Error::bad("encrypted envelope key is not valid base64"))?;

    // When the RSA layer fails, carry on with a random key so that the caller sees the
    // same failure, a little later, as for a bad AES layer: which layer failed is what
    // a padding-oracle attack on the RSA layer needs to learn.
    let (key, iv) = unwrap_key(&encrypted_key)
        .and_then(|key_json| parse_key_and_iv(&key_json))
        .unwrap_or_else(random_key_and_iv);
    let plaintext = cbc::Decryptor::<Aes256>::new(&key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
        .map_err(|_| Error::bad("encrypted envelope could not be decrypted"))?;
    if plaintext.len() > max_len {
        return Err(Error::TooLarge(format!("envelope is larger than {max_len} bytes")));
    }
    String::from_utf8(plaintext).map_err(|_| Error::bad("encrypted envelope could not be decrypted"))
}

type KeyAndIv = ([u8; AES_KEY_BYTES], [u8; AES_IV_BYTES]);

/// The AES key and IV from the RSA-decrypted `aes_key`.
fn parse_key_and_iv(key_json: &[u8]) -> Option<KeyAndIv> {
    let parsed: AesKeyAndIv = serde_json::from_slice(key_json).ok()?;
    let key = signature::decode_standard_base64(&parsed.key).ok()?;
    let iv = signature::decode_standard_base64(&parsed.iv).ok()?;
    Some((key.try_into().ok()?, iv.try_into().ok()?))
}

fn random_key_and_iv() -> KeyAndIv {
    let mut key = [0u8; AES_KEY_BYTES];
    let mut iv = [0u8; AES_IV_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut key);
    rand::rngs::OsRng.fill_bytes(&mut iv);
    (key, iv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::entities::{parse_entity, AccountMigration, Contact, Entity, Profile};
    use crate::federation::test_support::{
        assert_no_panic_on_damaged_input, key_2048, other_key_2048, python_elements, reference, run_python,
        vector_key_pair,
    };

    fn reference_envelope() -> String {
        reference("diaspora-examples/magic_envelope.example.xml")
    }

    fn signed_contact_envelope() -> MagicEnvelope {
        let contact = Contact::start_sharing("alice@lifeboat.example", "bob@example.com");
        MagicEnvelope::sign(&contact.to_xml(), "alice@lifeboat.example", key_2048())
    }

    #[test]
    fn parses_the_reference_envelope() {
        let xml = reference_envelope();
        let envelope = MagicEnvelope::parse(&xml).unwrap();
        assert_eq!(envelope.key_id(), "alice@example.org");
        assert!(envelope.data().starts_with("PHN0YXR1c19tZXNzYWdlPgogIDxhdXRob3I-"));
        assert!(xml.contains(envelope.data()), "data kept as received");
        let payload = envelope.payload_str().unwrap();
        assert!(payload.starts_with("<status_message>\n  <author>alice@example.org</author>"));
        assert_eq!(parse_entity(payload).unwrap(), Entity::Other("status_message".into()));
        // No key was published for the sample: any key we have must refuse it.
        let (_, some_key) = vector_key_pair();
        let err = envelope.verify(&some_key).unwrap_err();
        assert!(matches!(err, Error::Unauthorized(_)));
    }

    #[test]
    fn signed_text_is_data_and_the_encoded_parameters() {
        let envelope = signed_contact_envelope();
        assert_eq!(
            envelope.signed_text(),
            format!("{}.YXBwbGljYXRpb24veG1s.YmFzZTY0dXJs.UlNBLVNIQTI1Ng==", envelope.data())
        );
    }

    #[test]
    fn a_signed_envelope_round_trips_and_verifies_with_the_signers_key_only() {
        let key = key_2048();
        let migration = AccountMigration::new_signed(
            "alice@old.example",
            Profile {
                author: "alice@lifeboat.example".into(),
                ..Profile::default()
            },
            other_key_2048(),
        );
        let entity_xml = migration.to_xml();
        let envelope = MagicEnvelope::sign(&entity_xml, "alice@old.example", key);
        assert_eq!(envelope.data(), URL_SAFE.encode(entity_xml.as_bytes()));
        envelope.verify(&key.to_public_key()).unwrap();

        let received = MagicEnvelope::parse(&envelope.to_xml()).unwrap();
        assert_eq!(received, envelope);
        assert_eq!(received.key_id(), "alice@old.example");
        assert_eq!(received.payload(), entity_xml.as_bytes());
        received.verify(&key.to_public_key()).unwrap();
        assert!(received.verify(&other_key_2048().to_public_key()).is_err());
        assert_eq!(
            parse_entity(received.payload_str().unwrap()).unwrap(),
            Entity::AccountMigration(migration)
        );
    }

    #[test]
    fn written_envelope_has_diasporas_structure_for_an_independent_reader() {
        let envelope = signed_contact_envelope();
        let xml = envelope.to_xml();
        let elements = python_elements(&xml);
        let ns = |local: &str| format!("{{{MAGIC_ENV_NAMESPACE}}}{local}");
        let tags: Vec<String> = elements.iter().map(|e| e.1.clone()).collect();
        assert_eq!(tags, [ns("env"), ns("data"), ns("encoding"), ns("alg"), ns("sig")]);
        assert_eq!(elements[1].2, envelope.data());
        assert_eq!(elements[2].2, "base64url");
        assert_eq!(elements[3].2, "RSA-SHA256");
        let attributes = run_python(
            r#"
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
ns = "{http://salmon-protocol.org/ns/magic-env}"
print(root.find(ns + "data").get("type"))
print(root.find(ns + "sig").get("key_id"))
"#,
            &xml,
        );
        assert_eq!(attributes, "application/xml\nYWxpY2VAbGlmZWJvYXQuZXhhbXBsZQ==\n");
        assert!(envelope.data().ends_with('=') || envelope.data().len() % 4 == 0);
    }

    #[test]
    fn verification_uses_the_received_data_text_with_whitespace_removed() {
        let envelope = signed_contact_envelope();
        let data = envelope.data();
        let wrapped: String = data
            .as_bytes()
            .chunks(40)
            .map(|chunk| format!("\n    {}", std::str::from_utf8(chunk).unwrap()))
            .collect();
        let xml = envelope
            .to_xml()
            .replace(&format!(">{data}<"), &format!(">{wrapped}\n  <"));
        assert_ne!(xml, envelope.to_xml());
        let received = MagicEnvelope::parse(&xml).unwrap();
        assert_eq!(received.data(), data);
        received.verify(&key_2048().to_public_key()).unwrap();

        // The same payload without padding is a different signed text: refused.
        let unpadded = data.trim_end_matches('=');
        if unpadded != data {
            let xml = envelope.to_xml().replace(data, unpadded);
            let received = MagicEnvelope::parse(&xml).unwrap();
            assert_eq!(received.payload(), envelope.payload());
            assert!(received.verify(&key_2048().to_public_key()).is_err());
        }
    }

    #[test]
    fn altered_data_or_signature_does_not_verify() {
        let envelope = signed_contact_envelope();
        let public_key = key_2048().to_public_key();
        let forged_payload =
            URL_SAFE.encode(Contact::start_sharing("mallory@evil.example", "bob@example.com").to_xml());
        let xml = envelope.to_xml().replace(envelope.data(), &forged_payload);
        let forged = MagicEnvelope::parse(&xml).unwrap();
        assert!(matches!(
            forged.verify(&public_key).unwrap_err(),
            Error::Unauthorized(_)
        ));

        let mut signature = decode_base64url(&envelope.signature).unwrap();
        signature[0] ^= 0x80;
        let xml = envelope
            .to_xml()
            .replace(&envelope.signature, &URL_SAFE.encode(signature));
        let forged = MagicEnvelope::parse(&xml).unwrap();
        assert!(forged.verify(&public_key).is_err());
    }

    #[test]
    fn parse_refuses_malformed_envelopes() {
        let good = signed_contact_envelope().to_xml();
        let cases = [
            good.replace("RSA-SHA256", "RSA-SHA1"),
            good.replace(">base64url<", ">base64<"),
            good.replace("application/xml", "text/plain"),
            good.replace(" key_id=", " other="),
            good.replace("me:sig", "me:signature"),
            good.replace("me:env", "me:envelope"),
            good.replace("<me:data type", "<me:data  x=\"1\" type")
                .replace(">PGNv", ">!!!"),
            good.replace("key_id=\"", "key_id=\"***"),
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"e\">]><me:env xmlns:me=\"http://salmon-protocol.org/ns/magic-env\"/>".to_string(),
            String::new(),
            "{\"aes_key\": \"x\"}".to_string(),
        ];
        for case in cases {
            let err = MagicEnvelope::parse(&case).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{case}: {err:?}");
        }
    }

    #[test]
    fn envelope_reader_never_panics_on_damaged_input() {
        assert_no_panic_on_damaged_input(&reference_envelope(), |xml| {
            MagicEnvelope::parse(xml).map(|envelope| {
                let (_, key) = vector_key_pair();
                let _ = envelope.verify(&key);
            })
        });
    }

    #[test]
    fn encrypted_envelope_round_trips_for_its_recipient_only() {
        let envelope_xml = signed_contact_envelope().to_xml();
        let recipient = other_key_2048();
        let json = encrypt_for(&envelope_xml, &recipient.to_public_key()).unwrap();

        let body: serde_json::Value = serde_json::from_str(&json).unwrap();
        let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(fields, ["aes_key", "encrypted_magic_envelope"]);
        let aes_key = STANDARD.decode(body["aes_key"].as_str().unwrap()).unwrap();
        let key_json = recipient.decrypt(Pkcs1v15Encrypt, &aes_key).unwrap();
        let key_and_iv: serde_json::Value = serde_json::from_slice(&key_json).unwrap();
        assert_eq!(STANDARD.decode(key_and_iv["key"].as_str().unwrap()).unwrap().len(), 32);
        assert_eq!(STANDARD.decode(key_and_iv["iv"].as_str().unwrap()).unwrap().len(), 16);

        let decrypted = decrypt(&json, recipient, 1 << 20).unwrap();
        assert_eq!(decrypted, envelope_xml);
        let envelope = MagicEnvelope::parse(&decrypted).unwrap();
        envelope.verify(&key_2048().to_public_key()).unwrap();

        let err = decrypt(&json, key_2048(), 1 << 20).unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)), "{err:?}");

        let again = encrypt_for(&envelope_xml, &recipient.to_public_key()).unwrap();
        assert_ne!(again, json, "a fresh key and IV every time");
    }

    #[test]
    fn encrypts_for_the_small_reference_key_too() {
        let (private_key, public_key) = vector_key_pair();
        let json = encrypt_for("<me:env/>", &public_key).unwrap();
        assert_eq!(decrypt(&json, &private_key, 100).unwrap(), "<me:env/>");
    }

    #[test]
    fn tampered_ciphertext_is_refused_without_panicking() {
        let envelope = signed_contact_envelope();
        let recipient = other_key_2048();
        let json = encrypt_for(&envelope.to_xml(), &recipient.to_public_key()).unwrap();
        let body: serde_json::Value = serde_json::from_str(&json).unwrap();
        let ciphertext = STANDARD
            .decode(body["encrypted_magic_envelope"].as_str().unwrap())
            .unwrap();
        for position in [0, 17, ciphertext.len() / 2, ciphertext.len() - 17, ciphertext.len() - 1] {
            let mut damaged = ciphertext.clone();
            damaged[position] ^= 0x04;
            let tampered = serde_json::json!({
                "aes_key": body["aes_key"],
                "encrypted_magic_envelope": STANDARD.encode(&damaged),
            })
            .to_string();
            // CBC damage either breaks the padding or garbles the XML or the signed
            // data; in no case does a valid envelope come out.
            let outcome = decrypt(&tampered, recipient, 1 << 20)
                .and_then(|xml| MagicEnvelope::parse(&xml))
                .and_then(|received| received.verify(&key_2048().to_public_key()));
            assert!(outcome.is_err(), "damage at {position} went unnoticed");
        }
        let truncated = serde_json::json!({
            "aes_key": body["aes_key"],
            "encrypted_magic_envelope": STANDARD.encode(&ciphertext[..ciphertext.len() - 5]),
        })
        .to_string();
        assert!(decrypt(&truncated, recipient, 1 << 20).is_err());
    }

    #[test]
    fn a_tampered_inner_signature_decrypts_but_does_not_verify() {
        let envelope = signed_contact_envelope();
        let mut signature = decode_base64url(&envelope.signature).unwrap();
        let last = signature.len() - 1;
        signature[last] ^= 1;
        let xml = envelope
            .to_xml()
            .replace(&envelope.signature, &URL_SAFE.encode(signature));
        let recipient = other_key_2048();
        let json = encrypt_for(&xml, &recipient.to_public_key()).unwrap();
        let received = MagicEnvelope::parse(&decrypt(&json, recipient, 1 << 20).unwrap()).unwrap();
        assert!(matches!(
            received.verify(&key_2048().to_public_key()).unwrap_err(),
            Error::Unauthorized(_)
        ));
    }

    #[test]
    fn decrypt_refuses_oversized_and_malformed_bodies() {
        let (private_key, public_key) = vector_key_pair();
        let large = "x".repeat(10_000);
        let json = encrypt_for(&large, &public_key).unwrap();
        assert_eq!(decrypt(&json, &private_key, 10_000).unwrap(), large);
        let err = decrypt(&json, &private_key, 9_999).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err:?}");
        let err = decrypt(&json, &private_key, 5_000).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err:?}");

        let body: serde_json::Value = serde_json::from_str(&json).unwrap();
        let with = |aes_key: &str, envelope: &str| {
            serde_json::json!({"aes_key": aes_key, "encrypted_magic_envelope": envelope}).to_string()
        };
        let aes_key = body["aes_key"].as_str().unwrap();
        let encrypted = body["encrypted_magic_envelope"].as_str().unwrap();
        for bad in [
            with("not base64!", encrypted),
            with(aes_key, "not base64!"),
            with(aes_key, ""),
            with("", encrypted),
            with(&STANDARD.encode([1u8; 128]), encrypted),
            "{}".to_string(),
            "[]".to_string(),
            "not json".to_string(),
            String::new(),
        ] {
            let err = decrypt(&bad, &private_key, 1 << 20).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{bad}: {err:?}");
        }
        let wrapped = with(
            aes_key,
            &encrypted
                .as_bytes()
                .chunks(60)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n"),
        );
        assert_eq!(decrypt(&wrapped, &private_key, 1 << 20).unwrap(), large);
    }

    /// diaspora*'s algorithms re-implemented in python (its `cryptography` package):
    /// verifies our envelope as diaspora*'s `MagicEnvelope.unenvelop` does (decode the
    /// data, re-encode it), decrypts our encrypted body as `EncryptedMagicEnvelope`
    /// does, and encrypts one for us to decrypt.
    #[test]
    fn interoperates_with_an_independent_implementation() {
        if run_python(
            "import importlib.util as u; print(u.find_spec('cryptography') is not None)",
            "",
        )
        .trim()
            != "True"
        {
            panic!("python3 needs the `cryptography` package for this test (scripts/test.sh installs it)");
        }
        let (private_key, public_key) = vector_key_pair();
        let contact = Contact::start_sharing("alice@example.org", "bob@example.com");
        let envelope_xml = MagicEnvelope::sign(&contact.to_xml(), "alice@example.org", &private_key).to_xml();
        let encrypted = encrypt_for(&envelope_xml, &public_key).unwrap();
        let input = serde_json::json!({
            "private_key": reference("signature-vectors/author_private_key.pem"),
            "public_key": reference("signature-vectors/author_public_key.pem"),
            "envelope": envelope_xml,
            "encrypted": encrypted,
        });
        let script = r#"
import sys, json, os, base64, xml.etree.ElementTree as ET
from cryptography.hazmat.primitives import hashes, serialization, padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

given = json.load(sys.stdin)
private_key = serialization.load_pem_private_key(given["private_key"].encode(), None)
public_key = serialization.load_pem_public_key(given["public_key"].encode())
ns = "{http://salmon-protocol.org/ns/magic-env}"
u = lambda b: base64.urlsafe_b64encode(b).decode()

env = ET.fromstring(given["envelope"])
data = env.find(ns + "data")
payload = base64.urlsafe_b64decode(data.text)
subject = ".".join([u(payload), u(data.get("type").encode()),
                    u(env.find(ns + "encoding").text.encode()), u(env.find(ns + "alg").text.encode())])
signature = base64.urlsafe_b64decode(env.find(ns + "sig").text)
public_key.verify(signature, subject.encode(), padding.PKCS1v15(), hashes.SHA256())
key_id = base64.urlsafe_b64decode(env.find(ns + "sig").get("key_id")).decode()

body = json.loads(given["encrypted"])
key_json = json.loads(private_key.decrypt(base64.b64decode(body["aes_key"]), padding.PKCS1v15()))
decryptor = Cipher(algorithms.AES(base64.b64decode(key_json["key"])),
                   modes.CBC(base64.b64decode(key_json["iv"]))).decryptor()
padded = decryptor.update(base64.b64decode(body["encrypted_magic_envelope"])) + decryptor.finalize()
unpadder = sym_padding.PKCS7(128).unpadder()
decrypted = (unpadder.update(padded) + unpadder.finalize()).decode()

key, iv = os.urandom(32), os.urandom(16)
padder = sym_padding.PKCS7(128).padder()
plain = padder.update(given["envelope"].encode()) + padder.finalize()
encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
ciphertext = encryptor.update(plain) + encryptor.finalize()
aes_key = public_key.encrypt(json.dumps({"key": base64.b64encode(key).decode(),
                                         "iv": base64.b64encode(iv).decode()}).encode(),
                             padding.PKCS1v15())
print(json.dumps({
    "payload": payload.decode(),
    "key_id": key_id,
    "decrypted": decrypted,
    "encrypted": json.dumps({"aes_key": base64.b64encode(aes_key).decode(),
                             "encrypted_magic_envelope": base64.b64encode(ciphertext).decode()}),
}))
"#;
        let output: serde_json::Value = serde_json::from_str(&run_python(script, &input.to_string())).unwrap();
        assert_eq!(output["payload"], contact.to_xml());
        assert_eq!(output["key_id"], "alice@example.org");
        assert_eq!(output["decrypted"], envelope_xml);
        let from_python = decrypt(output["encrypted"].as_str().unwrap(), &private_key, 1 << 20).unwrap();
        assert_eq!(from_python, envelope_xml);
        MagicEnvelope::parse(&from_python).unwrap().verify(&public_key).unwrap();
    }

    #[test]
    fn decrypt_never_panics_on_damaged_input() {
        let (private_key, public_key) = vector_key_pair();
        let json = encrypt_for("<me:env/>", &public_key).unwrap();
        assert_no_panic_on_damaged_input(&json, |body| decrypt(body, &private_key, 1 << 16));
    }
}
