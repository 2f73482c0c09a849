//! Archive tests: the hand-written diaspora* export fixture, exports checked by an
//! independent validator (python3's `jsonschema` with `referencing`), round trips that
//! must lose nothing, gzip and gzip bombs, and every kind of refusal.

use std::io::Write as _;
use std::process::{Command, Stdio};

use flate2::write::GzEncoder;
use flate2::Compression;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

use super::*;
use crate::federation::signature::private_key_to_pem;

const MIB: u64 = 1024 * 1024;
const MAX: u64 = 256 * MIB;

fn fixture_text() -> String {
    let path = format!("{}/tests/fixtures/diaspora-export.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture() -> Value {
    serde_json::from_str(&fixture_text()).unwrap()
}

use crate::testing::key_2048;

/// A fresh local account, as the account creator would make one.
fn new_account(username: &str) -> Account {
    crate::testing::account(username)
        .guid("f00dfeedcafe4b1d9a3c0123456789ab")
        .email("alice@example.org")
        .password_hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
        .created(1_700_000_000)
        .aspects(&[])
        .with(|a| {
            a.verbatim_json = String::new();
            a.backups_opted_out = false;
        })
        .build()
}

/// An account made from an imported archive, the way a restore or move-in makes one.
fn account_from(archive: &ImportedArchive) -> Account {
    let mut account = new_account("alice2");
    account.email = archive.email.clone();
    account.language = archive.language.clone();
    apply_to(archive, &mut account);
    account.moved_from = archive.moved_from(1_700_000_100);
    account
}

fn read(value: &Value) -> Result<ImportedArchive> {
    read_archive(value.to_string().as_bytes(), MAX)
}

fn refusal(value: &Value) -> String {
    match read(value) {
        Err(Error::BadRequest(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Validates `archive` against diaspora*'s archive schema with python3's `jsonschema`,
/// both schemas registered under their `id` (no network). Returns the problems found.
fn python_schema_problems(archive: &[u8]) -> Vec<String> {
    let script = r#"
import json, sys
try:
    from jsonschema import Draft4Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT4
except ImportError as e:
    print("MISSING-MODULE " + str(e))
    sys.exit(3)
folder = sys.argv[1]
archive_schema = json.load(open(folder + "/diaspora-archive-format.schema.json"))
entity_schema = json.load(open(folder + "/diaspora-federation-entities.schema.json"))
registry = Registry().with_resources([
    (archive_schema["id"], DRAFT4.create_resource(archive_schema)),
    (entity_schema["id"], DRAFT4.create_resource(entity_schema)),
])
validator = Draft4Validator(archive_schema, registry=registry)
document = json.loads(sys.stdin.buffer.read())
for error in validator.iter_errors(document):
    print("/".join(str(p) for p in error.absolute_path) + ": " + error.message[:200])
"#;
    let folder = format!("{}/tests/reference", env!("CARGO_MANIFEST_DIR"));
    let spawned = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&folder)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => panic!(
            "this test needs python3 with the jsonschema and referencing modules \
             (pip install jsonschema referencing), and python3 could not be started: {e}"
        ),
    };
    child.stdin.take().unwrap().write_all(archive).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if output.status.code() == Some(3) {
        panic!(
            "this test needs python3 with the jsonschema and referencing modules \
             (pip install jsonschema referencing): {}",
            stdout.trim()
        );
    }
    assert!(
        output.status.success(),
        "the python schema validator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------
// Importing a diaspora* export
// ---------------------------------------------------------------------------------

#[test]
fn the_fixture_is_a_valid_diaspora_export_to_the_independent_validator() {
    assert_eq!(python_schema_problems(fixture_text().as_bytes()), Vec::<String>::new());
    assert_eq!(schema::validate_value(&fixture()), Vec::<String>::new());
}

#[test]
fn a_diaspora_export_imports() {
    let archive = read_archive(fixture_text().as_bytes(), MAX).unwrap();
    assert_eq!(archive.username, "alice");
    assert_eq!(archive.email, "alice@example.org");
    assert_eq!(archive.language, "de");
    assert!(archive.private_key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(archive.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let key = private_key_from_pem(&archive.private_key_pem).unwrap();
    assert_eq!(public_key_to_pem(&key.to_public_key()), archive.public_key_pem);
    assert_eq!(archive.old_diaspora_id.as_deref(), Some("alice@old-pod.example"));
    assert_eq!(archive.old_guid, None);
    assert_eq!(
        archive.profile,
        ProfileData {
            first_name: Some("Alice".into()),
            last_name: Some("Lovelace".into()),
            image_url: Some("https://old-pod.example/uploads/images/thumb_large_a795f872c93309597345.jpg".into()),
            image_url_medium: Some(
                "https://old-pod.example/uploads/images/thumb_medium_a795f872c93309597345.jpg".into()
            ),
            image_url_small: Some("https://old-pod.example/uploads/images/thumb_small_a795f872c93309597345.jpg".into()),
            bio: Some("Beekeeper, gardener.\nWrites about both.".into()),
            birthday: Some("1988-07-14".into()),
            gender: Some("she/her".into()),
            location: Some("Lyon".into()),
            searchable: true,
            public: false,
            nsfw: false,
            tag_string: Some("#gardening #bees".into()),
            edited_at: None,
        }
    );
    assert_eq!(archive.aspects, vec!["Family", "Friends"]);
    assert_eq!(archive.contacts.len(), 3);
    let carol = &archive.contacts[1];
    assert_eq!(carol.diaspora_id, "carol@pod-c.example:8443");
    assert_eq!(carol.person_guid.as_deref(), Some("c2e8d8f1b3a5024b9a6f63651182b2c3"));
    assert_eq!(carol.person_name.as_deref(), Some("Carol"));
    assert!(carol
        .public_key
        .as_deref()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(
        !carol.sharing && carol.receiving,
        "the user shares with carol, as the export says"
    );
    assert_eq!(carol.aspects, vec!["Family", "Friends"]);
    assert_eq!(archive.followed_tags, vec!["gardening", "bees", "lyon"]);
    assert_eq!(archive.blocks, vec!["spammer@spam.example"]);
    assert_eq!(archive.avatar, None);
    // Oldest first: the contacts' pods, then the posts' subscribed pods.
    assert_eq!(
        archive.known_pods,
        vec![
            "https://pod-b.example",
            "https://pod-c.example:8443",
            "https://old-pod.example",
            "https://pod-d.example",
        ]
    );
    let verbatim: Value = serde_json::from_str(&archive.verbatim_json).unwrap();
    let user_keys: Vec<&str> = verbatim["user"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        user_keys,
        vec![
            "disable_mail",
            "show_community_spotlight_in_stream",
            "auto_follow_back",
            "auto_follow_back_aspect",
            "posts",
            "relayables",
            "post_subscriptions",
        ]
    );
    let top_keys: Vec<&str> = verbatim["top"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top_keys, vec!["others_data"]);
    let moved = archive.moved_from(5).unwrap();
    assert_eq!(moved.diaspora_id, "alice@old-pod.example");
    assert_eq!(moved.public_key_pem, archive.public_key_pem);
}

#[test]
fn a_gzipped_export_imports_the_same() {
    let plain = read_archive(fixture_text().as_bytes(), MAX).unwrap();
    let compressed = gzip(fixture_text().as_bytes());
    assert_eq!(read_archive(&compressed, MAX).unwrap(), plain);
    // A byte-order mark, as some editors write, changes nothing either.
    let with_bom = [b"\xef\xbb\xbf".as_slice(), fixture_text().as_bytes()].concat();
    assert_eq!(read_archive(&with_bom, MAX).unwrap(), plain);
    assert_eq!(read_archive(&gzip(&with_bom), MAX).unwrap(), plain);
    // Concatenated gzip members are one stream, as gunzip reads them.
    let text = fixture_text();
    let (first, second) = text.split_at(text.len() / 2);
    let members = [gzip(first.as_bytes()), gzip(second.as_bytes())].concat();
    assert_eq!(read_archive(&members, MAX).unwrap(), plain);
}

// ---------------------------------------------------------------------------------
// Exporting
// ---------------------------------------------------------------------------------

#[test]
fn an_export_validates_against_the_schema_and_round_trips_without_loss() {
    let original = fixture();
    let imported = read(&original).unwrap();
    let account = account_from(&imported);
    let exported = write_archive(&account, "new-pod.example", "https://new-pod.example/").unwrap();
    assert_eq!(python_schema_problems(&exported), Vec::<String>::new());
    let document: Value = serde_json::from_slice(&exported).unwrap();
    assert_eq!(schema::validate_value(&document), Vec::<String>::new());

    // Every section lifeboat does not use is there, unchanged, where it was.
    for key in [
        "posts",
        "relayables",
        "post_subscriptions",
        "disable_mail",
        "show_community_spotlight_in_stream",
        "auto_follow_back",
        "auto_follow_back_aspect",
    ] {
        assert_eq!(document["user"][key], original["user"][key], "user.{key}");
    }
    assert_eq!(document["others_data"], original["others_data"]);
    // lifeboat's parts carry the same data, in diaspora*'s shapes.
    for key in ["contact_groups", "followed_tags", "blocks", "email"] {
        assert_eq!(document["user"][key], original["user"][key], "user.{key}");
    }
    assert_eq!(document["user"]["contacts"], original["user"]["contacts"]);
    assert_eq!(document["version"], "2.0");
    assert_eq!(document["user"]["username"], "alice2");
    assert_eq!(document["user"]["private_key"], account.private_key_pem.as_str());
    let profile = &document["user"]["profile"];
    assert_eq!(profile["entity_type"], "profile");
    assert_eq!(profile["entity_data"]["author"], "alice2@new-pod.example");
    let mut expected_data = original["user"]["profile"]["entity_data"].clone();
    expected_data["author"] = json!("alice2@new-pod.example");
    assert_eq!(profile["entity_data"], expected_data);
    assert_eq!(
        document["lifeboat"],
        json!({
            "version": 2,
            "guid": account.guid,
            "diaspora_id": "alice2@new-pod.example",
            "known_pods": imported.known_pods,
        })
    );
    let top_keys: Vec<&str> = document.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(top_keys, vec!["version", "user", "others_data", "lifeboat"]);

    // Reading the export again gives the same account data, now naming the new identity.
    let again = read_archive(&exported, MAX).unwrap();
    assert_eq!(again.old_diaspora_id.as_deref(), Some("alice2@new-pod.example"));
    assert_eq!(again.old_guid.as_deref(), Some(account.guid.as_str()));
    assert_eq!(again.private_key_pem, account.private_key_pem);
    assert_eq!(again.profile, imported.profile);
    assert_eq!(again.aspects, imported.aspects);
    assert_eq!(again.contacts, imported.contacts);
    assert_eq!(again.followed_tags, imported.followed_tags);
    assert_eq!(again.blocks, imported.blocks);
    assert_eq!(again.known_pods, imported.known_pods);
    assert_eq!(
        serde_json::from_str::<Value>(&again.verbatim_json).unwrap(),
        serde_json::from_str::<Value>(&imported.verbatim_json).unwrap()
    );
    // And exporting that is byte for byte the same file.
    let mut second = account_from(&again);
    second.guid = account.guid.clone();
    second.private_key_pem = account.private_key_pem.clone();
    assert_eq!(
        write_archive(&second, "new-pod.example", "https://new-pod.example").unwrap(),
        exported
    );
}

#[test]
fn exports_are_deterministic_and_carry_the_avatar() {
    let mut account = account_from(&read(&fixture()).unwrap());
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[7u8; 300]].concat();
    account.avatar = Some(Avatar {
        content_type: "image/png".into(),
        data: png.clone(),
    });
    let first = write_archive(&account, "new-pod.example", "https://new-pod.example").unwrap();
    let second = write_archive(&account, "new-pod.example", "https://new-pod.example").unwrap();
    assert_eq!(first, second);
    assert_eq!(python_schema_problems(&first), Vec::<String>::new());
    let document: Value = serde_json::from_slice(&first).unwrap();
    let url = format!("https://new-pod.example/avatars/{}", account.guid);
    for key in ["image_url", "image_url_medium", "image_url_small"] {
        assert_eq!(document["user"]["profile"]["entity_data"][key], url.as_str(), "{key}");
    }
    assert_eq!(document["lifeboat"]["avatar"]["content_type"], "image/png");
    assert_eq!(document["lifeboat"]["avatar"]["data"], STANDARD.encode(&png));
    let again = read_archive(&first, MAX).unwrap();
    assert_eq!(again.avatar, account.avatar);
}

#[test]
fn a_fresh_account_exports_a_minimal_valid_archive() {
    let mut account = new_account("bob");
    account.profile.searchable = true;
    let exported = write_archive(&account, "pod.example:8443", "https://pod.example:8443").unwrap();
    assert_eq!(python_schema_problems(&exported), Vec::<String>::new());
    let document: Value = serde_json::from_slice(&exported).unwrap();
    assert_eq!(
        document["user"]["profile"],
        json!({"entity_type": "profile", "entity_data": {
            "author": "bob@pod.example:8443", "searchable": true, "public": false, "nsfw": false}})
    );
    assert_eq!(document["user"]["contacts"], json!([]));
    let again = read_archive(&exported, MAX).unwrap();
    assert_eq!(again.old_diaspora_id.as_deref(), Some("bob@pod.example:8443"));
    assert_eq!(again.verbatim_json, r#"{"user":{},"top":{}}"#);
}

#[test]
fn a_pkcs8_key_is_exported_as_pkcs1() {
    use rsa::pkcs8::EncodePrivateKey;
    let mut account = new_account("bob");
    account.private_key_pem = key_2048().to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string();
    let document: Value =
        serde_json::from_slice(&write_archive(&account, "pod.example", "https://pod.example").unwrap()).unwrap();
    let written = document["user"]["private_key"].as_str().unwrap();
    assert!(written.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert_eq!(written, private_key_to_pem(key_2048()).unwrap());
}

// ---------------------------------------------------------------------------------
// Sizes and gzip bombs
// ---------------------------------------------------------------------------------

#[test]
fn a_gzip_bomb_is_refused_without_unpacking_it() {
    // 300 MiB of zeros compress to about 300 KiB.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let chunk = vec![0u8; MIB as usize];
    for _ in 0..300 {
        encoder.write_all(&chunk).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 2 * MIB as usize, "{}", bomb.len());
    match read_archive(&bomb, MAX) {
        Err(Error::TooLarge(message)) => assert_eq!(
            message,
            "the archive is larger than 268435456 bytes (256 MiB) when decompressed"
        ),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn archives_over_the_limit_are_refused_even_when_the_json_would_parse() {
    // Valid JSON whose decompressed size passes the limit: refused as too large, not
    // parsed to the end.
    let mut text = fixture_text();
    text.insert_str(text.len() - 2, &" ".repeat(2 * MIB as usize));
    match read_archive(&gzip(text.as_bytes()), MIB) {
        Err(Error::TooLarge(message)) => {
            assert!(
                message.contains("larger than 1048576 bytes (1 MiB) when decompressed"),
                "{message}"
            )
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    match read_archive(text.as_bytes(), MIB) {
        Err(Error::TooLarge(message)) => assert_eq!(message, "the archive is larger than 1048576 bytes (1 MiB)"),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Exactly at the limit is fine.
    let exact = fixture_text();
    assert!(read_archive(&gzip(exact.as_bytes()), exact.len() as u64).is_ok());
    assert!(read_archive(exact.as_bytes(), exact.len() as u64).is_ok());
    assert!(matches!(
        read_archive(&gzip(exact.as_bytes()), exact.len() as u64 - 1),
        Err(Error::TooLarge(_))
    ));
}

#[test]
fn damaged_files_are_refused_with_what_is_wrong() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "the archive is not valid JSON: EOF while parsing"),
        (
            b"{\"version\": \"2.0\",".to_vec(),
            "the archive is not valid JSON: EOF while parsing",
        ),
        (
            b"<html></html>".to_vec(),
            "the archive is not valid JSON: expected value at line 1 column 1",
        ),
        (b"[1, 2]".to_vec(), "the archive is not valid: expected a JSON object"),
        (b"PK\x03\x04rest".to_vec(), "this is a zip file"),
        (b"LFBK\x01\x01rest".to_vec(), "this is a sealed lifeboat backup (.lfbk)"),
        (
            gzip(b"{\"version\": ").to_vec(),
            "the archive is not valid JSON: EOF while parsing",
        ),
        (
            {
                let mut damaged = gzip(fixture_text().as_bytes());
                let at = damaged.len() - 6;
                damaged[at] ^= 0xff;
                damaged
            },
            "the archive is not a readable gzip file",
        ),
        (
            gzip(fixture_text().as_bytes())[..200].to_vec(),
            "the archive is not a readable gzip file",
        ),
    ];
    for (bytes, expected) in cases {
        match read_archive(&bytes, MAX) {
            Err(Error::BadRequest(message)) => assert!(message.contains(expected), "{message:?} lacks {expected:?}"),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// Refusals, one kind at a time
// ---------------------------------------------------------------------------------

#[test]
fn each_kind_of_invalid_archive_is_refused_with_its_message() {
    type Damage = fn(&mut Value);
    let cases: Vec<(Damage, &str)> = vec![
        (
            |a| a["version"] = json!("1.0"),
            "version: expected \"2.0\"; this is a version 1.0 archive",
        ),
        (|a| a["version"] = json!(2), "version: expected \"2.0\", found 2"),
        (|a| a["user"] = json!([]), "user: expected an object"),
        (|a| a["user"]["email"] = json!(null), "user.email: expected a string"),
        (
            |a| a["user"]["disable_mail"] = json!("no"),
            "user.disable_mail: expected a boolean",
        ),
        (
            |a| a["user"]["contacts"][2]["account_id"] = json!(17),
            "user.contacts[2].account_id: expected a string",
        ),
        (
            |a| a["user"]["contacts"][1]["contact_groups_membership"] = json!("Family"),
            "user.contacts[1].contact_groups_membership: expected an array",
        ),
        (
            |a| a["user"]["contacts"][0]["person_guid"] = json!("short"),
            "user.contacts[0].person_guid: shorter than 16 characters",
        ),
        (
            |a| a["user"]["blocks"] = json!(["x"]),
            "user.blocks[0]: not a valid diaspora ID",
        ),
        (
            |a| a["user"]["blocks"] = json!([3]),
            "user.blocks[0]: expected a string",
        ),
        (
            |a| a["user"]["contact_groups"] = json!([{}]),
            "user.contact_groups[0].name: missing",
        ),
        (
            |a| a["user"]["followed_tags"] = json!([1]),
            "user.followed_tags[0]: expected a string",
        ),
        (
            |a| a["user"]["private_key"] = json!("not a key"),
            "user.private_key: not an RSA private key in PEM form",
        ),
        (
            |a| a["user"]["private_key"] = json!(weak_key_pem()),
            "user.private_key: RSA key has 1024 bits; it must have 2048 to 4096",
        ),
        (
            |a| a["user"]["profile"]["entity_type"] = json!("person"),
            "user.profile.entity_type: expected \"profile\"",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["author"] = json!("alice"),
            "user.profile.entity_data.author: not a valid diaspora ID",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["first_name"] = json!("A".repeat(33)),
            "user.profile.entity_data.first_name: longer than 32 characters",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["last_name"] = json!("Smith; DROP"),
            "user.profile.entity_data.last_name: must not contain ';'",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["full_name"] = json!("F".repeat(71)),
            "user.profile.entity_data.full_name: longer than 70 characters",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["gender"] = json!("g".repeat(256)),
            "user.profile.entity_data.gender: longer than 255 characters",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["location"] = json!("l".repeat(256)),
            "user.profile.entity_data.location: longer than 255 characters",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["bio"] = json!("b".repeat(65_536)),
            "user.profile.entity_data.bio: longer than 65535 characters",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["birthday"] = json!("1990-02-30"),
            "user.profile.entity_data.birthday: must be a real date written YYYY-MM-DD",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["tag_string"] = json!("#a #b #c #d #e #f"),
            "user.profile.entity_data.tag_string: at most 5 tags are allowed",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["first_name"] = json!(3),
            "user.profile.entity_data.first_name: expected a string or null",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["searchable"] = json!("yes"),
            "user.profile.entity_data.searchable: expected a boolean or null",
        ),
        (
            |a| a["user"]["profile"]["entity_data"]["tag_string"] = json!(["#a"]),
            "user.profile.entity_data.tag_string: expected a string or null",
        ),
        (
            |a| a["user"]["posts"][0]["entity_data"]["guid"] = json!("tooshort"),
            "user.posts[0].entity_data.guid: shorter than 16 characters",
        ),
        (
            |a| a["user"]["relayables"][1]["entity_data"]["parent_type"] = json!("Photo"),
            "user.relayables[1].entity_data.parent_type: expected \"Post\" or \"Comment\"",
        ),
        (
            |a| a["user"]["post_subscriptions"] = json!([5]),
            "user.post_subscriptions[0]: expected a string",
        ),
        (|a| a["lifeboat"] = json!("yes"), "lifeboat: expected an object"),
        (
            |a| a["lifeboat"] = json!({"guid": "x"}),
            "lifeboat.guid: not a valid guid",
        ),
        (
            |a| a["lifeboat"] = json!({"diaspora_id": "x"}),
            "lifeboat.diaspora_id: not a valid diaspora ID",
        ),
        (
            |a| a["lifeboat"] = json!({"known_pods": ["ftp://x"]}),
            "lifeboat.known_pods[0]: not a pod URL",
        ),
        (
            |a| a["lifeboat"] = json!({"known_pods": "x"}),
            "lifeboat.known_pods: expected an array",
        ),
        (
            |a| a["lifeboat"] = json!({"avatar": {"content_type": "image/png", "data": "%%%"}}),
            "lifeboat.avatar.data: not valid base64",
        ),
        (
            |a| a["lifeboat"] = json!({"avatar": {"content_type": "image/png", "data": "PHN2Zz48L3N2Zz4="}}),
            "lifeboat.avatar.data: not a PNG, JPEG, GIF or WebP image",
        ),
        (
            |a| a["lifeboat"] = json!({"avatar": {"data": "iVBORw0KGgo="}}),
            "lifeboat.avatar.content_type: expected a string",
        ),
        (
            |a| {
                let big = [b"\x89PNG\r\n\x1a\n".as_slice(), &vec![0u8; AVATAR_MAX_BYTES]].concat();
                a["lifeboat"] = json!({"avatar": {"content_type": "image/png", "data": STANDARD.encode(big)}});
            },
            "lifeboat.avatar.data: the avatar is larger than 512 KiB",
        ),
    ];
    let removals = [
        ("/version", "version: missing"),
        ("/user", "user: missing"),
        ("/user/username", "user.username: missing"),
        ("/user/email", "user.email: missing"),
        ("/user/private_key", "user.private_key: missing"),
        ("/user/profile", "user.profile: missing"),
        ("/user/contacts/0/sharing", "user.contacts[0].sharing: missing"),
        (
            "/user/profile/entity_data/author",
            "user.profile.entity_data.author: missing",
        ),
        (
            "/user/posts/0/subscribed_pods_uris",
            "user.posts[0].subscribed_pods_uris: missing",
        ),
        (
            "/user/relayables/0/entity_data/text",
            "user.relayables[0].entity_data.text: missing",
        ),
        (
            "/others_data/non_contact_authors/0/guid",
            "others_data.non_contact_authors[0].guid: missing",
        ),
    ];
    for (pointer, expected) in removals {
        let mut archive = fixture();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let removed = archive
            .pointer_mut(parent)
            .and_then(|p| p.as_object_mut())
            .and_then(|o| o.remove(key));
        assert!(removed.is_some(), "the fixture has no {pointer}");
        let message = refusal(&archive);
        assert!(
            message.starts_with("the archive is not valid: ") && message.contains(expected),
            "{message:?} lacks {expected:?}"
        );
    }
    for (damage, expected) in cases {
        let mut archive = fixture();
        damage(&mut archive);
        let message = refusal(&archive);
        assert!(
            message.starts_with("the archive is not valid: ") && message.contains(expected),
            "{message:?} lacks {expected:?}"
        );
    }
}

#[test]
fn a_contact_that_cannot_be_read_is_left_out_with_a_note_and_the_rest_imported() {
    let cases: Vec<(fn(&mut Value), &str)> = vec![
        (
            |a| a["user"]["contacts"][1]["account_id"] = json!("Carol@pod-c.example"),
            "contact 2 (\"Carol@pod-c.example\") was left out: not a valid diaspora ID",
        ),
        (
            |a| a["user"]["contacts"][1]["account_id"] = json!("carol"),
            "contact 2 (\"carol\") was left out: not a valid diaspora ID",
        ),
        (
            |a| a["user"]["contacts"][1]["person_guid"] = json!("0123456789abcdef-"),
            "contact 2 (\"carol@pod-c.example:8443\") was left out: its guid is not valid",
        ),
        (
            |a| {
                a["user"]["contacts"][1]["public_key"] =
                    json!("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
            },
            "was left out: its public key is not an RSA public key",
        ),
        (
            |a| {
                let big = RsaPrivateKey::new(&mut rand::rngs::OsRng, 4104).unwrap();
                a["user"]["contacts"][1]["public_key"] = json!(public_key_to_pem(&big.to_public_key()));
            },
            "was left out: its public key is not an RSA public key in PEM form of at most 4,096 bits",
        ),
        (
            |a| a["user"]["contacts"][1]["public_key"] = json!("A".repeat(100_000)),
            "was left out: its public key is far larger",
        ),
    ];
    for (damage, expected) in cases {
        let mut archive = fixture();
        damage(&mut archive);
        let imported = read(&archive).unwrap();
        assert_eq!(imported.contacts.len(), 2, "the other contacts come in");
        assert!(imported.contacts.iter().all(|c| !c.diaspora_id.starts_with("carol")));
        assert!(
            imported.repairs.iter().any(|r| r.contains(expected)),
            "{:?} lacks {expected:?}",
            imported.repairs
        );
    }
    let clean = read(&fixture()).unwrap();
    assert!(clean.repairs.is_empty(), "{:?}", clean.repairs);
}

#[test]
fn aspects_diaspora_would_refuse_are_repaired_and_the_repair_listed() {
    let mut archive = fixture();
    archive["user"]["contact_groups"] =
        json!([{"name": "Family"}, {"name": "family"}, {"name": "Friends and neighbours of mine"}, {"name": " "}]);
    archive["user"]["contacts"][0]["contact_groups_membership"] = json!(["family"]);
    archive["user"]["contacts"][1]["contact_groups_membership"] = json!(["Friends and neighbours of mine", "Choir"]);
    archive["user"]["contacts"][2]["receiving"] = json!(true);
    archive["user"]["contacts"][2]["contact_groups_membership"] = json!([]);
    let imported = read(&archive).unwrap();
    assert_eq!(
        imported.aspects,
        ["Family", "family 2", "Friends and neighbou", "Choir"]
    );
    assert_eq!(imported.contacts[0].aspects, ["family 2"]);
    assert_eq!(imported.contacts[1].aspects, ["Friends and neighbou", "Choir"]);
    assert_eq!(
        imported.contacts[2].aspects,
        ["Family"],
        "shared with: put into the first aspect"
    );
    let repairs = imported.repairs.join("\n");
    for needle in [
        "\"family\" is now called \"family 2\"",
        "\"Friends and neighbours of mine\" is now called \"Friends and neighbou\" (aspect names have at most 20 characters)",
        "without a name",
        "\"Choir\" was added",
        "1 contact you share with was in no aspect and is put into \"Family\"",
    ] {
        assert!(repairs.contains(needle), "{needle:?} not in {repairs}");
    }
    // What is exported is what diaspora*'s importer keeps: names it accepts, each
    // contact the user shares with in an aspect that exists.
    let account = account_from(&imported);
    let document: Value =
        serde_json::from_slice(&write_archive(&account, "new-pod.example", "https://new-pod.example").unwrap())
            .unwrap();
    let names: Vec<&str> = document["user"]["contact_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().all(|n| n.chars().count() <= 20));
    for contact in document["user"]["contacts"].as_array().unwrap() {
        if contact["receiving"] == json!(true) {
            let groups = contact["contact_groups_membership"].as_array().unwrap();
            assert!(!groups.is_empty(), "{contact}");
            assert!(groups.iter().all(|g| names.contains(&g.as_str().unwrap())), "{contact}");
        }
    }
}

#[test]
fn archives_lifeboat_wrote_before_the_flags_took_diasporas_meaning_are_read_the_old_way() {
    let mut archive = fixture();
    archive["lifeboat"] = json!({"guid": "f00dfeedcafe4b1d9a3c0123456789ab", "diaspora_id": "alice@old-pod.example"});
    let fixture_contacts = read(&fixture()).unwrap().contacts.clone();
    let old = read(&archive).unwrap();
    for (then, now) in old.contacts.iter().zip(&fixture_contacts) {
        assert_eq!(
            (then.sharing, then.receiving),
            (now.receiving, now.sharing),
            "{}",
            now.diaspora_id
        );
    }
    archive["lifeboat"]["version"] = json!(2);
    let current = read(&archive).unwrap();
    assert_eq!(
        current.contacts, fixture_contacts,
        "version 2: diaspora*'s meaning, read as is"
    );
    archive["lifeboat"]["version"] = json!(3);
    assert!(refusal(&archive).contains("lifeboat.version"));
}

fn weak_key_pem() -> String {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    private_key_to_pem(&key).unwrap()
}

#[test]
fn the_independent_validator_refuses_what_the_schema_check_refuses() {
    let damages: Vec<fn(&mut Value)> = vec![
        |a| a["user"]["contacts"][2]["account_id"] = json!(17),
        |a| a["user"]["relayables"][1]["entity_data"]["parent_type"] = json!("Photo"),
        |a| a["user"]["post_subscriptions"] = json!(["short"]),
        |a| {
            a["user"]["posts"][0]["entity_data"]["public"] = json!(false);
        },
        |a| a["version"] = json!("2.1"),
    ];
    for damage in damages {
        let mut archive = fixture();
        damage(&mut archive);
        let ours = schema::validate_value(&archive);
        let theirs = python_schema_problems(archive.to_string().as_bytes());
        assert!(
            !ours.is_empty() && !theirs.is_empty(),
            "ours {ours:?}, theirs {theirs:?}"
        );
    }
}

#[test]
fn many_problems_are_listed_up_to_a_limit() {
    let mut archive = fixture();
    archive["user"]["blocks"] = json!(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]);
    let message = refusal(&archive);
    assert!(message.contains("user.blocks[0]: not a valid diaspora ID"), "{message}");
    assert!(message.contains("user.blocks[7]"), "{message}");
    assert!(!message.contains("user.blocks[8]"), "{message}");
    assert!(message.ends_with("and 2 more problems"), "{message}");
}

#[test]
fn lenient_where_diaspora_is_lenient() {
    let mut archive = fixture();
    let data = &mut archive["user"]["profile"]["entity_data"];
    data["image_url"] = json!("/assets/user/default.png");
    data["image_url_small"] = json!(null);
    data["bio"] = json!("");
    data["birthday"] = json!(null);
    data["searchable"] = json!(null);
    archive["user"]["contacts"][0]["contact_groups_membership"] = json!(["Friends", "Friends"]);
    archive["user"]["contacts"][1]["account_id"] = json!("bob@pod-b.example");
    archive["user"]["contact_groups"] = json!([{"name": "Family"}, {"name": "Family"}]);
    archive["user"]["followed_tags"] = json!(["#bees", "bees", ""]);
    archive["user"].as_object_mut().unwrap().remove("language");
    let imported = read(&archive).unwrap();
    assert_eq!(imported.profile.image_url, None);
    assert_eq!(imported.profile.image_url_small, None);
    assert!(imported.profile.image_url_medium.is_some());
    assert_eq!(imported.profile.bio, None);
    assert_eq!(imported.profile.birthday, None);
    assert!(imported.profile.searchable);
    assert_eq!(
        imported.contacts.len(),
        2,
        "a second entry for the same person is dropped"
    );
    assert_eq!(imported.contacts[0].aspects, vec!["Friends"]);
    assert_eq!(
        imported.aspects,
        vec!["Family", "Friends"],
        "listed twice, kept once; named by a contact, added"
    );
    assert_eq!(imported.repairs.len(), 2, "{:?}", imported.repairs);
    assert_eq!(imported.followed_tags, vec!["bees"]);
    assert_eq!(imported.language, "en");
    // Year 1004 is how diaspora* stores a birthday without a year.
    let mut archive = fixture();
    archive["user"]["profile"]["entity_data"]["birthday"] = json!("1004-02-29");
    assert_eq!(read(&archive).unwrap().profile.birthday.as_deref(), Some("1004-02-29"));
}

// ---------------------------------------------------------------------------------
// The lifeboat key, known pods, avatars
// ---------------------------------------------------------------------------------

#[test]
fn the_lifeboat_key_names_the_old_identity() {
    let mut archive = fixture();
    let gif = [b"GIF89a".as_slice(), &[1u8; 40]].concat();
    archive["lifeboat"] = json!({
        "guid": "0123456789abcdef0123",
        "diaspora_id": "alice@lifeboat.example",
        "known_pods": ["https://Pod-X.example:443/some/path", "https://pod-b.example", "http://pod-y.example:8080"],
        // The declared type is not believed; the bytes are.
        "avatar": {"content_type": "image/png", "data": STANDARD.encode(&gif)},
    });
    let imported = read(&archive).unwrap();
    assert_eq!(imported.old_diaspora_id.as_deref(), Some("alice@lifeboat.example"));
    assert_eq!(imported.old_guid.as_deref(), Some("0123456789abcdef0123"));
    assert_eq!(
        imported.avatar,
        Some(Avatar {
            content_type: "image/gif".into(),
            data: gif
        })
    );
    assert_eq!(
        imported.known_pods,
        vec![
            "https://pod-x.example",
            "https://pod-b.example",
            "http://pod-y.example:8080",
            "https://pod-c.example:8443",
            "https://old-pod.example",
            "https://pod-d.example",
        ]
    );
    let verbatim: Value = serde_json::from_str(&imported.verbatim_json).unwrap();
    assert!(verbatim["top"].get("lifeboat").is_none());
}

#[test]
fn known_pods_are_capped_oldest_first() {
    let mut pods = Vec::new();
    for n in 0..KNOWN_PODS_CAP {
        assert!(add_known_pod(&mut pods, &format!("https://pod{n}.example")));
    }
    assert_eq!(pods.len(), KNOWN_PODS_CAP);
    assert!(!add_known_pod(&mut pods, "https://POD5.example/"), "already known");
    assert!(!add_known_pod(&mut pods, "not a url"));
    assert!(!add_known_pod(&mut pods, "ftp://pod.example"));
    assert!(add_known_pod(&mut pods, "https://newest.example"));
    assert_eq!(pods.len(), KNOWN_PODS_CAP);
    assert_eq!(pods[0], "https://pod1.example");
    assert_eq!(pods.last().unwrap(), "https://newest.example");

    // An archive with too many is capped on import, the oldest dropped.
    let mut archive = fixture();
    let many: Vec<String> = (0..KNOWN_PODS_CAP + 500)
        .map(|n| format!("https://p{n}.example"))
        .collect();
    archive["lifeboat"] = json!({ "known_pods": many });
    let imported = read(&archive).unwrap();
    assert_eq!(imported.known_pods.len(), KNOWN_PODS_CAP);
    assert_eq!(imported.known_pods.last().unwrap(), "https://pod-d.example");
    assert!(!imported.known_pods.contains(&"https://p0.example".to_string()));
}

#[test]
fn images_are_recognised_by_their_bytes() {
    assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
    assert_eq!(sniff_image(&[0xff, 0xd8, 0xff, 0xe0, 0, 0]), Some("image/jpeg"));
    assert_eq!(sniff_image(b"GIF87a.."), Some("image/gif"));
    assert_eq!(sniff_image(b"GIF89a.."), Some("image/gif"));
    assert_eq!(sniff_image(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
    assert_eq!(sniff_image(b"RIFF\x10\0\0\0WAVEfmt "), None);
    assert_eq!(sniff_image(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"), None);
    assert_eq!(sniff_image(b"\x89PN"), None);
    assert_eq!(sniff_image(b""), None);
}

#[test]
fn apply_to_copies_the_data_and_nothing_else() {
    let imported = read(&fixture()).unwrap();
    let mut account = new_account("zed");
    let before = account.clone();
    apply_to(&imported, &mut account);
    assert_eq!(account.username, before.username);
    assert_eq!(account.guid, before.guid);
    assert_eq!(account.private_key_pem, before.private_key_pem);
    assert_eq!(account.email, before.email);
    assert_eq!(account.profile, imported.profile);
    assert_eq!(account.contacts, imported.contacts);
    assert_eq!(account.aspects, imported.aspects);
    assert_eq!(account.followed_tags, imported.followed_tags);
    assert_eq!(account.blocks, imported.blocks);
    assert_eq!(account.known_pods, imported.known_pods);
    assert_eq!(account.verbatim_json, imported.verbatim_json);
}

#[test]
fn thousands_of_contacts_are_read_alongside_the_schema_check_with_the_same_answers() {
    let mut archive = fixture();
    let template = archive["user"]["contacts"][0].clone();
    let contacts: Vec<Value> = (0..2400)
        .map(|i| {
            let mut contact = template.clone();
            contact["account_id"] = json!(format!("friend{i}@pod{}.example", i % 7));
            contact
        })
        .collect();
    archive["user"]["contacts"] = json!(contacts);
    // A duplicate in the second half of the list: the first one wins.
    archive["user"]["contacts"][2000]["account_id"] = json!("friend10@pod3.example");
    archive["user"]["contacts"][2000]["person_name"] = json!("Second");
    let read = read(&archive).unwrap();
    assert_eq!(read.contacts.len(), 2399);
    assert_eq!(read.contacts[10].diaspora_id, "friend10@pod3.example");
    assert_ne!(read.contacts[10].person_name.as_deref(), Some("Second"));
    assert_eq!(read.contacts[2398].diaspora_id, "friend2399@pod5.example");
    assert!(read.known_pods.contains(&"https://pod6.example".to_string()));
    // Contacts left out in both halves, noted in order; a schema problem is still a
    // refusal, reported alone.
    let mut broken = archive.clone();
    broken["user"]["contacts"][1100]["account_id"] = json!("Not An ID");
    broken["user"]["contacts"][2300]["public_key"] =
        json!("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n");
    let imported = super::read_archive(broken.to_string().as_bytes(), MAX).unwrap();
    assert_eq!(imported.contacts.len(), 2397);
    assert_eq!(imported.repairs.len(), 2, "{:?}", imported.repairs);
    assert!(imported.repairs[0].starts_with("contact 1101 (\"Not An ID\")"));
    assert!(imported.repairs[1].starts_with("contact 2301 "));
    broken["user"]["contacts"][5]["sharing"] = json!("yes");
    let message = refusal(&broken);
    assert!(message.contains("user.contacts[5].sharing"), "{message}");
    assert!(!message.contains("[1100]"), "schema problems come alone: {message}");
}

#[test]
fn gzip_inside_a_sealed_backup_is_refused_before_any_unpacking() {
    // The issue's attack: a small sealed file wrapping a gzip of a huge JSON. Inside a
    // .lfbk gzip is refused outright, whatever it would unpack to.
    let compressed = gzip(fixture_text().as_bytes());
    match read_sealed_archive(&compressed, MAX) {
        Err(Error::BadRequest(message)) => assert!(message.contains("holds a compressed archive"), "{message}"),
        other => panic!("expected BadRequest, got {other:?}"),
    }
    // The plain JSON reads as before, and the same bytes read as any archive would.
    assert_eq!(
        read_sealed_archive(fixture_text().as_bytes(), MAX).unwrap(),
        read_archive(fixture_text().as_bytes(), MAX).unwrap()
    );
}
