//! The bodies of lifeboat's fuzz targets: one function per parser an outsider can
//! reach, each given arbitrary bytes. The `fuzz_targets/` binaries call them under
//! libFuzzer (nightly, `cargo fuzz`); `tests/fuzz_corpus.rs` includes this file and
//! runs every committed corpus file and crash reproducer through the same functions on
//! stable, so a crash once found stays fixed.
//!
//! A target fails (panics) when the parser panics, and also when a property every
//! answer must have does not hold: sized parsers stay within their caps, and what a
//! parser accepts, written back out, reads the same. Errors are fine: hostile input
//! must get a clear error, and that is all that is asked of it here.
//!
//! Two costly steps are replaced, so that a run reaches millions of inputs:
//! - `.lfbk`: no Argon2 per input. The header and its cost checks run on every input
//!   as they do before a derivation; the box is then opened with one key derived once
//!   at start-up ([`lifeboat::sealed::open_with_key`]), whatever salt and costs the
//!   file names.
//! - the private path (`/receive/users/GUID`): no RSA per input. Everything after the
//!   RSA unwrap of `aes_key` runs as it does in production
//!   ([`lifeboat::federation::envelope::decrypt_unwrapped`]): the wrapper JSON, its
//!   size cap and base64, the key JSON, AES-256-CBC, then the inner envelope and
//!   entity.

use std::sync::OnceLock;

use lifeboat::account::archive::{read_archive, ImportedArchive};
use lifeboat::backup::home::pods::{parse_nodeinfo, parse_nodeinfo_links};
use lifeboat::backup::push::{decoded_len, RawContent, RawPush, StatusRequest};
use lifeboat::federation::envelope::{decrypt_unwrapped, MagicEnvelope};
use lifeboat::federation::signature::public_key_from_pem;
use lifeboat::federation::{
    parse_entity, parse_hcard, parse_jrd, validate_profile, AccountDeletion, AccountMigration, Contact, Entity, Profile,
};
use lifeboat::sealed::{self, Header, KdfBounds, KdfParams, SealingKey, HEADER_LEN, MIN_FILE_LEN, NONCE_LEN};

/// The decompressed-size cap the archive target reads with: small, so fuzz inputs
/// (gzip ones especially) reach it.
pub const ARCHIVE_MAX_BYTES: u64 = 64 * 1024;
/// The decrypted-envelope cap of the private-path target.
pub const PRIVATE_MAX_BYTES: usize = 2048;
/// "Now" for the push target's `created_at` check (2023-11-14).
pub const PUSH_NOW_UNIX: i64 = 1_700_000_000;

/// The RSA public key envelopes and migrations are verified with (the diaspora*
/// signature vectors' author key): nothing fuzzed verifies, but the checks run.
const VERIFY_KEY_PEM: &str = include_str!("../../tests/reference/signature-vectors/author_public_key.pem");

/// The fixed AES-256 key and IV the private-path target encrypts and decrypts with.
const PRIVATE_AES_KEY: [u8; 32] = [0x42; 32];
const PRIVATE_AES_IV: [u8; 16] = [0x24; 16];

fn verify_key() -> &'static rsa::RsaPublicKey {
    static KEY: OnceLock<rsa::RsaPublicKey> = OnceLock::new();
    KEY.get_or_init(|| public_key_from_pem(VERIFY_KEY_PEM).expect("the fixed verification key parses"))
}

// ---------------------------------------------------------------------------------
// .lfbk
// ---------------------------------------------------------------------------------

/// One key, derived once with the cheapest costs any reader accepts.
fn sealing_key() -> &'static SealingKey {
    static KEY: OnceLock<SealingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SealingKey::derive(
            "fuzzing pass phrase, not secret",
            KdfParams {
                memory_kib: 8,
                time_cost: 1,
            },
        )
        .expect("deriving the fuzzing key")
    })
}

/// The `.lfbk` opener: the input as a whole file (header, holder bounds, open), then
/// the input as a plaintext sealed and opened again, and damaged once.
pub fn lfbk_open(data: &[u8]) {
    let key = sealing_key();
    if let Ok(header) = Header::parse(data) {
        // Only the canonical header is accepted: written back, it is the same bytes.
        assert_eq!(
            &header.write()[..],
            &data[..HEADER_LEN],
            "a parsed header writes back as read"
        );
        assert!(data.len() >= MIN_FILE_LEN);
        assert!(KdfBounds::FORMAT.check(header.params).is_ok());
    }
    if let Ok(header) = sealed::check_header_for_holder(data) {
        assert!(KdfBounds::HOLDER.check(header.params).is_ok());
        assert_eq!(Header::parse(data).ok(), Some(header));
    }
    for bounds in [KdfBounds::FORMAT, KdfBounds::HOLDER] {
        if let Ok(plaintext) = sealed::open_with_key(data, key, &bounds) {
            assert_eq!(
                plaintext.len(),
                data.len() - MIN_FILE_LEN,
                "the plaintext is the ciphertext's size"
            );
        }
    }
    let file = sealed::seal(data, key);
    assert_eq!(file.len(), MIN_FILE_LEN + data.len());
    assert_eq!(
        sealed::open_with_key(&file, key, &KdfBounds::FORMAT).as_deref(),
        Ok(data)
    );
    // The nonce, tag and ciphertext are authenticated; salt and costs only feed the
    // derivation, which the fixed key stands in for.
    let mut damaged = file;
    let nonce_at = HEADER_LEN - NONCE_LEN;
    let at = nonce_at + data.first().map_or(0, |&b| usize::from(b)) * 7919 % (damaged.len() - nonce_at);
    damaged[at] ^= 0x01;
    assert!(
        sealed::open_with_key(&damaged, key, &KdfBounds::FORMAT).is_err(),
        "a file with one bit flipped (byte {at}) must not open"
    );
}

// ---------------------------------------------------------------------------------
// Magic Envelope and entities
// ---------------------------------------------------------------------------------

/// The public path (`/receive/public`): the body as UTF-8, the envelope, its
/// signature check, the entity inside; an accepted envelope written back reads the
/// same.
pub fn magic_envelope(data: &[u8]) {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(envelope) = MagicEnvelope::parse(xml) else {
        return;
    };
    let _ = envelope.verify(verify_key());
    let reparsed = MagicEnvelope::parse(&envelope.to_xml()).expect("an accepted envelope, written, parses");
    assert_eq!(reparsed, envelope, "an accepted envelope, written, reads the same");
    if let Ok(payload) = envelope.payload_str() {
        entity_text(payload);
    }
}

/// The entity parsers on their own: each input as XML text.
pub fn entity(data: &[u8]) {
    if let Ok(xml) = std::str::from_utf8(data) {
        entity_text(xml);
    }
}

fn entity_text(xml: &str) {
    let entity = parse_entity(xml);
    // The typed parsers also run on what is not theirs: each must refuse it cleanly.
    let profile = Profile::parse(xml);
    let migration = AccountMigration::parse(xml);
    let contact = Contact::parse(xml);
    let deletion = AccountDeletion::parse(xml);
    match entity {
        Ok(Entity::Profile(p)) => {
            assert_eq!(profile.as_ref().ok(), Some(&p));
            let _ = validate_profile(&p);
            assert_eq!(
                Profile::parse(&p.to_xml()).ok(),
                Some(p),
                "a profile, written, reads the same"
            );
        }
        Ok(Entity::AccountMigration(m)) => {
            assert_eq!(migration.as_ref().ok(), Some(&m));
            let _ = m.verify_signature(verify_key());
            let _ = m.new_identity();
            assert_eq!(
                AccountMigration::parse(&m.to_xml()).ok(),
                Some(m),
                "a migration, written, reads the same"
            );
        }
        Ok(Entity::Contact(c)) => {
            assert_eq!(contact.as_ref().ok(), Some(&c));
            assert_eq!(
                Contact::parse(&c.to_xml()).ok(),
                Some(c),
                "a contact, written, reads the same"
            );
        }
        Ok(Entity::AccountDeletion(d)) => {
            assert_eq!(deletion.as_ref().ok(), Some(&d));
            assert_eq!(
                AccountDeletion::parse(&d.to_xml()).ok(),
                Some(d),
                "a deletion, written, reads the same"
            );
        }
        Ok(Entity::Other(_)) | Err(_) => {}
    }
}

// ---------------------------------------------------------------------------------
// The private path
// ---------------------------------------------------------------------------------

/// `/receive/users/GUID` after the RSA step. The first byte picks what the rest is:
/// - `0 mod 3`: the JSON body, with the RSA step answering the fixed key's JSON;
/// - `1 mod 3`: the JSON body, with the RSA step answering the decoded `aes_key`
///   itself, so the key JSON (what RSA decrypts to) is fuzzed too;
/// - `2 mod 3`: the envelope XML, encrypted with the fixed key into a well-formed
///   body first, so the steps after a successful decryption are reached.
///
/// On success the decrypted envelope is at most the cap, and is parsed as the
/// receiving code parses it: envelope, then entity.
pub fn private_envelope(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fixed_key_json = || {
        let b64 = |bytes: &[u8]| base64_standard(bytes);
        format!(
            r#"{{"key":"{}","iv":"{}"}}"#,
            b64(&PRIVATE_AES_KEY),
            b64(&PRIVATE_AES_IV)
        )
        .into_bytes()
    };
    let decrypted = match mode % 3 {
        0 | 1 => {
            let Ok(json) = std::str::from_utf8(rest) else {
                return;
            };
            if mode % 3 == 0 {
                decrypt_unwrapped(json, PRIVATE_MAX_BYTES, |_| Some(fixed_key_json()))
            } else {
                decrypt_unwrapped(json, PRIVATE_MAX_BYTES, |aes_key| Some(aes_key.to_vec()))
            }
        }
        _ => {
            use cbc::cipher::block_padding::Pkcs7;
            use cbc::cipher::{BlockEncryptMut, KeyIvInit};
            let ciphertext = cbc::Encryptor::<aes::Aes256>::new(&PRIVATE_AES_KEY.into(), &PRIVATE_AES_IV.into())
                .encrypt_padded_vec_mut::<Pkcs7>(rest);
            let body = format!(
                r#"{{"aes_key":"{}","encrypted_magic_envelope":"{}"}}"#,
                base64_standard(b"stands for the RSA-encrypted key"),
                base64_standard(&ciphertext)
            );
            let decrypted = decrypt_unwrapped(&body, PRIVATE_MAX_BYTES, |_| Some(fixed_key_json()));
            match (&decrypted, std::str::from_utf8(rest)) {
                (Ok(text), _) => assert_eq!(text.as_bytes(), rest, "decryption gives back what was encrypted"),
                (Err(_), Ok(_)) => assert!(
                    rest.len() > PRIVATE_MAX_BYTES,
                    "only an envelope over the cap is refused"
                ),
                (Err(_), Err(_)) => {}
            }
            decrypted
        }
    };
    if let Ok(xml) = decrypted {
        assert!(xml.len() <= PRIVATE_MAX_BYTES, "a decrypted envelope is within the cap");
        if let Ok(envelope) = MagicEnvelope::parse(&xml) {
            let _ = envelope.verify(verify_key());
            if let Ok(payload) = envelope.payload_str() {
                entity_text(payload);
            }
        }
    }
}

fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------------
// Archive
// ---------------------------------------------------------------------------------

/// The archive reader (`/move_in` and `/restore_backup` after opening, `archive
/// import`): JSON or gzip, with its decompressed-size cap. What it accepts is bounded
/// by the cap.
pub fn archive(data: &[u8]) {
    let Ok(archive) = read_archive(data, ARCHIVE_MAX_BYTES) else {
        return;
    };
    let _ = archive.moved_from(0);
    let size = archive_text_bytes(&archive);
    // Re-encoding may grow a number ("1e15" is written out) or a key (PKCS#1 becomes
    // SPKI), and each contact names a known pod: a small factor, never the attacker's.
    let bound = 16 * ARCHIVE_MAX_BYTES as usize + 64 * 1024;
    assert!(
        size <= bound,
        "an archive of at most {ARCHIVE_MAX_BYTES} bytes gave {size} bytes of text"
    );
    assert!(archive.known_pods.len() <= lifeboat::account::archive::KNOWN_PODS_CAP);
    assert!(archive
        .avatar
        .as_ref()
        .is_none_or(|a| a.data.len() <= lifeboat::account::archive::AVATAR_MAX_BYTES));
}

/// Every byte of text an imported archive holds.
fn archive_text_bytes(a: &ImportedArchive) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let list = |l: &[String]| l.iter().map(String::len).sum::<usize>();
    let p = &a.profile;
    let profile = [
        &p.first_name,
        &p.last_name,
        &p.image_url,
        &p.image_url_medium,
        &p.image_url_small,
        &p.bio,
        &p.birthday,
        &p.gender,
        &p.location,
        &p.tag_string,
        &p.edited_at,
    ]
    .into_iter()
    .map(opt)
    .sum::<usize>();
    let contacts = a
        .contacts
        .iter()
        .map(|c| {
            c.diaspora_id.len() + opt(&c.person_guid) + opt(&c.person_name) + opt(&c.public_key) + list(&c.aspects)
        })
        .sum::<usize>();
    a.username.len()
        + a.email.len()
        + a.language.len()
        + a.private_key_pem.len()
        + a.public_key_pem.len()
        + profile
        + list(&a.aspects)
        + contacts
        + list(&a.followed_tags)
        + list(&a.blocks)
        + a.verbatim_json.len()
        + opt(&a.old_diaspora_id)
        + opt(&a.old_guid)
        + list(&a.known_pods)
        + a.avatar.as_ref().map_or(0, |av| av.content_type.len() + av.data.len())
}

// ---------------------------------------------------------------------------------
// Backup push
// ---------------------------------------------------------------------------------

/// A push or status body, checked as the holder checks it: the JSON, the slot's name
/// and key, the size estimate, every format rule, the `.lfbk` header, the signature.
/// The size the holder checks before decoding is never below the decoded size.
pub fn push(data: &[u8]) {
    let Ok(raw) = RawPush::parse(data) else {
        return;
    };
    let _ = raw.email();
    let estimate = raw.backup_len();
    if let RawContent::Backup(text) = raw.content() {
        assert_eq!(estimate, Some(decoded_len(text)));
    }
    if let Ok(status) = StatusRequest::validate(&raw, raw.key(), PUSH_NOW_UNIX) {
        let _ = status.verify();
    }
    let Ok(push) = raw.validate(raw.key(), PUSH_NOW_UNIX) else {
        return;
    };
    if let Some(backup) = &push.backup {
        let estimate = estimate.expect("a decoded backup was a string");
        assert!(
            backup.len() as u64 <= estimate,
            "the size checked before decoding ({estimate}) is below the decoded size ({})",
            backup.len()
        );
        let _ = sealed::check_header_for_holder(backup);
    }
    let _ = push.signed_text();
    let _ = push.verify();
}

// ---------------------------------------------------------------------------------
// Discovery: WebFinger, hCard, NodeInfo
// ---------------------------------------------------------------------------------

/// A WebFinger answer (`people::fetch_person`'s first step).
pub fn webfinger(data: &[u8]) {
    let Ok(jrd) = parse_jrd(data) else {
        return;
    };
    assert!(
        is_http_url(&jrd.hcard_url),
        "the hCard link is an http(s) URL: {:?}",
        jrd.hcard_url
    );
    let _ = jrd.diaspora_id();
}

fn is_http_url(url: &str) -> bool {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
    matches!(scheme.as_deref(), Some("http" | "https"))
}

/// The hCard URLs the hCard parser resolves relative photo links against.
const HCARD_BASES: [&str; 3] = [
    "https://pod.example/hcard/users/0123456789abcdef",
    "http://pod.test:3000",
    "https://[::1]:8443/a/b/../c?x=1#y",
];

/// An hCard page, decoded as `fetch_person` decodes it (lossy UTF-8), against one of
/// three base URLs (chosen by the length). Photo URLs come out absolute http(s).
pub fn hcard(data: &[u8]) {
    let html = String::from_utf8_lossy(data);
    let base = HCARD_BASES[data.len() % HCARD_BASES.len()];
    let Ok(person) = parse_hcard(&html, base) else {
        return;
    };
    for url in [
        &person.photo_large_url,
        &person.photo_medium_url,
        &person.photo_small_url,
    ] {
        assert!(is_http_url(url), "a photo URL is absolute http(s): {url:?}");
        assert!(
            url.len() <= html.len() + base.len() + 16,
            "a photo URL is no longer than its parts"
        );
    }
}

/// NodeInfo: the input as the `/.well-known/nodeinfo` links document and as the
/// NodeInfo document itself; a found link goes through the origin check.
pub fn nodeinfo(data: &[u8]) {
    if let Ok(href) = parse_nodeinfo_links(data) {
        let _ = lifeboat::http_client::origin_of(&href);
    }
    let _ = parse_nodeinfo(data);
}

// ---------------------------------------------------------------------------------
// Web forms
// ---------------------------------------------------------------------------------

/// The web form decoder. The first byte picks the `Content-Type`: url-encoded, or
/// multipart with a fixed boundary, or multipart with the first line of the rest as
/// the whole `Content-Type` header. Decoded text is bounded by the body.
pub fn form(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (content_type, body) = match mode % 3 {
        0 => ("application/x-www-form-urlencoded".to_string(), rest),
        1 => ("multipart/form-data; boundary=fuzzBoundary".to_string(), rest),
        _ => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            (
                String::from_utf8_lossy(&rest[..end]).into_owned(),
                rest.get(end + 1..).unwrap_or_default(),
            )
        }
    };
    if mode % 3 == 0 {
        let pairs = lifeboat::web::form_pairs(body);
        // A byte is at most one replacement character (3 bytes) once decoded.
        let decoded: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(decoded <= 3 * body.len(), "{decoded} bytes decoded from {}", body.len());
    }
    let form = runtime().block_on(lifeboat::web::forms::decode(
        &content_type,
        bytes::Bytes::copy_from_slice(body),
    ));
    if let Ok(form) = form {
        for name in ["csrf", "email", "password", "file", "archive", "avatar"] {
            assert!(form.text(name).len() <= 3 * body.len());
            if let Some(file) = form.file(name) {
                assert!(file.data.len() <= body.len());
            }
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Every target by name, for the regression test and the corpus tools.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("lfbk_open", lfbk_open),
    ("magic_envelope", magic_envelope),
    ("entity", entity),
    ("private_envelope", private_envelope),
    ("archive", archive),
    ("push", push),
    ("webfinger", webfinger),
    ("hcard", hcard),
    ("nodeinfo", nodeinfo),
    ("form", form),
];
