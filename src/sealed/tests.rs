//! Tests of `sealed`.

use super::*;

/// The smallest costs a holder accepts: fast enough to derive a few dozen times.
const FAST: KdfParams = KdfParams {
    memory_kib: 19_456,
    time_cost: 2,
};
const PASS: &str = "violet tractor drifts under 9 quiet lanterns";

/// Written by libsodium (PyNaCl 1.6.2): pass phrase "correct horse battery staple",
/// salt 00..0f, nonce 64..7b, m 19456, t 2, plaintext `{"version":"2.0"}`.
const KAT_FILE: &str = "4c46424b01010000004c00000200000001000000000102030405060708090a0b0c0d0e0f\
    6465666768696a6b6c6d6e6f707172737475767778797a7b4720f8b28ee260e6c6f839785c10b9ca\
    ec830023373e13e1e895f9b3d9a195b85b";
const KAT_KEY: &str = "818259b6310026a8e0dbac5d2e6927abcfdb07b32258fac4f61b18b80f929085";
const KAT_PASS: &str = "correct horse battery staple";
const KAT_PLAINTEXT: &[u8] = br#"{"version":"2.0"}"#;

fn derivations() -> usize {
    DERIVATIONS.with(|d| d.get())
}

fn fast_key() -> SealingKey {
    SealingKey::derive(PASS, FAST).unwrap()
}

/// A well-formed file with the given costs (and an empty plaintext's worth of tag).
fn file_with_params(memory_kib: u32, time_cost: u32) -> Vec<u8> {
    let header = Header {
        params: KdfParams { memory_kib, time_cost },
        salt: [7; SALT_LEN],
        nonce: [9; NONCE_LEN],
    };
    let mut file = header.write().to_vec();
    file.extend_from_slice(&[0; TAG_LEN]);
    file
}

#[test]
fn opens_a_file_written_by_libsodium() {
    let file = hex::decode(KAT_FILE).unwrap();
    assert_eq!(open(&file, KAT_PASS).unwrap(), KAT_PLAINTEXT);
}

#[test]
fn seals_byte_for_byte_what_libsodium_writes() {
    let salt: [u8; SALT_LEN] = std::array::from_fn(|i| i as u8);
    let nonce: [u8; NONCE_LEN] = std::array::from_fn(|i| 100 + i as u8);
    let derived = derive_key(KAT_PASS, &salt, FAST).unwrap();
    assert_eq!(hex::encode(derived.as_ref()), KAT_KEY);
    let key = SealingKey {
        salt,
        params: FAST,
        key: *derived,
    };
    let file = seal_with_nonce(KAT_PLAINTEXT, &key, nonce);
    assert_eq!(hex::encode(file), KAT_FILE);
}

#[test]
fn header_layout_matches_the_design() {
    let header = Header {
        params: KdfParams {
            memory_kib: 0x0403_0201,
            time_cost: 0x0807_0605,
        },
        salt: [0xAA; SALT_LEN],
        nonce: [0xBB; NONCE_LEN],
    };
    let bytes = header.write();
    assert_eq!(&bytes[0..4], b"LFBK");
    assert_eq!(bytes[4], 1, "version");
    assert_eq!(bytes[5], 1, "KDF id");
    assert_eq!(&bytes[6..8], &[0, 0], "reserved");
    assert_eq!(&bytes[8..12], &[1, 2, 3, 4], "memory cost, little-endian");
    assert_eq!(&bytes[12..16], &[5, 6, 7, 8], "time cost, little-endian");
    assert_eq!(&bytes[16..20], &[1, 0, 0, 0], "parallelism");
    assert_eq!(&bytes[20..36], &[0xAA; 16], "salt");
    assert_eq!(&bytes[36..60], &[0xBB; 24], "nonce");
}

#[test]
fn header_parse_reads_what_write_wrote() {
    let header = Header {
        params: KdfParams::DEFAULT,
        salt: std::array::from_fn(|i| i as u8 * 3),
        nonce: std::array::from_fn(|i| 255 - i as u8),
    };
    let mut file = header.write().to_vec();
    file.extend_from_slice(&[0; TAG_LEN + 5]);
    assert_eq!(Header::parse(&file).unwrap(), header);
}

#[test]
fn seal_then_open_round_trips_and_keeps_the_layout() {
    let key = fast_key();
    for plaintext in [&b""[..], KAT_PLAINTEXT, &[0u8; 5000][..]] {
        let file = seal(plaintext, &key);
        assert_eq!(file.len(), MIN_FILE_LEN + plaintext.len());
        let header = Header::parse(&file).unwrap();
        assert_eq!(header.params, FAST);
        assert_eq!(&header.salt, key.salt());
        if !plaintext.is_empty() {
            assert_ne!(&file[MIN_FILE_LEN..], plaintext, "ciphertext is not the plaintext");
        }
        assert_eq!(open(&file, PASS).unwrap(), plaintext);
    }
}

#[test]
fn every_seal_takes_a_fresh_nonce() {
    let key = fast_key();
    let a = Header::parse(&seal(KAT_PLAINTEXT, &key)).unwrap();
    let b = Header::parse(&seal(KAT_PLAINTEXT, &key)).unwrap();
    assert_eq!(a.salt, b.salt, "same key, same salt");
    assert_ne!(a.nonce, b.nonce);
}

#[test]
fn every_derivation_takes_a_fresh_salt() {
    let a = fast_key();
    let b = fast_key();
    assert_ne!(a.salt, b.salt);
    assert_ne!(a.key, b.key);
    assert_eq!(a.params(), FAST);
}

#[test]
fn derive_refuses_costs_no_reader_would_accept() {
    for (m, t) in [(MAX_MEMORY_KIB + 1, 3), (65536, 11), (7, 3), (65536, 0)] {
        let params = KdfParams {
            memory_kib: m,
            time_cost: t,
        };
        let before = derivations();
        let err = SealingKey::derive(PASS, params).unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
        assert_eq!(derivations(), before, "refused costs must not be derived with");
    }
}

#[test]
fn wrong_pass_phrase_is_reported_as_indistinguishable_from_damage() {
    let file = seal(KAT_PLAINTEXT, &fast_key());
    let err = open(&file, "violet tractor drifts under 8 quiet lanterns").unwrap_err();
    assert_eq!(err, OpenError::WrongPassphraseOrDamaged);
    let message = err.to_string();
    assert!(message.contains("wrong pass phrase or damaged"), "{message}");
    assert!(message.contains("cannot be told apart"), "{message}");
}

/// What flipping byte `at` of a FAST-cost file must give, region by region.
fn expected_after_flip(at: usize, flipped: &[u8]) -> OpenError {
    let u32_at = |i: usize| u32::from_le_bytes(flipped[i..i + 4].try_into().unwrap());
    match at {
        0..=3 => OpenError::NotLfbk,
        4 => OpenError::UnsupportedVersion(flipped[4]),
        5 => OpenError::UnsupportedKdf(flipped[5]),
        6 | 7 | 16..=19 => OpenError::InvalidHeader(String::new()),
        8..=15 => {
            let (m, t) = (u32_at(8), u32_at(12));
            if m > 1024 * 1024 || t > 10 {
                OpenError::RefusedParameters(ParamProblem::TimeAbove { time_cost: 0, max: 0 })
            } else {
                // Other costs derive another key: the tag no longer verifies.
                OpenError::WrongPassphraseOrDamaged
            }
        }
        // salt, nonce, tag, ciphertext
        _ => OpenError::WrongPassphraseOrDamaged,
    }
}

#[test]
fn every_single_byte_flip_is_detected_with_the_right_error() {
    let plaintext = br#"{"v":1}"#;
    let file = seal(plaintext, &fast_key());
    assert_eq!(file.len(), MIN_FILE_LEN + plaintext.len());
    // Every byte of the fixed fields; three positions in each of salt, nonce and tag
    // (first, middle, last); every byte of the ciphertext.
    let positions: Vec<usize> = (0..20)
        .chain([20, 27, 35])
        .chain([36, 47, 59])
        .chain([60, 68, 75])
        .chain(MIN_FILE_LEN..file.len())
        .collect();
    for at in positions {
        for mask in [0x01u8, 0xFF] {
            let mut flipped = file.clone();
            flipped[at] ^= mask;
            let expected = expected_after_flip(at, &flipped);
            let before = derivations();
            let got = open(&flipped, PASS).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&expected),
                "byte {at} ^ {mask:#04x}: got {got:?}, expected {expected:?}"
            );
            let derived = derivations() - before;
            if expected == OpenError::WrongPassphraseOrDamaged {
                assert_eq!(derived, 1, "byte {at} ^ {mask:#04x}");
            } else {
                assert_eq!(derived, 0, "byte {at} ^ {mask:#04x} must be refused first");
            }
        }
    }
}

#[test]
fn parse_refuses_costs_above_the_caps() {
    let cases = [
        (MAX_MEMORY_KIB + 1, 3, "1048577 KiB, is above the limit of 1048576 KiB"),
        (u32::MAX, 3, "4294967295 KiB, is above the limit of 1048576 KiB"),
        (65536, 11, "time cost, 11, is above the limit of 10"),
        (65536, u32::MAX, "time cost, 4294967295, is above the limit of 10"),
        (7, 3, "7 KiB, is below the minimum of 8 KiB"),
        (65536, 0, "time cost, 0, is below the minimum of 1"),
    ];
    for (m, t, says) in cases {
        let err = Header::parse(&file_with_params(m, t)).unwrap_err();
        assert!(matches!(err, OpenError::RefusedParameters(_)), "m={m} t={t}: {err:?}");
        assert!(err.to_string().contains(says), "m={m} t={t}: {err}");
    }
    // The caps themselves are accepted (parsing only: nothing is derived here).
    Header::parse(&file_with_params(MAX_MEMORY_KIB, MAX_TIME_COST)).unwrap();
    Header::parse(&file_with_params(8, 1)).unwrap();
}

#[test]
fn open_refuses_costs_above_the_caps_without_deriving() {
    for (m, t) in [
        (MAX_MEMORY_KIB + 1, 2),
        (u32::MAX, 2),
        (19_456, 11),
        (u32::MAX, u32::MAX),
    ] {
        let before = derivations();
        let err = open(&file_with_params(m, t), PASS).unwrap_err();
        assert!(matches!(err, OpenError::RefusedParameters(_)), "m={m} t={t}: {err:?}");
        assert_eq!(derivations(), before, "m={m} t={t} was derived with");
    }
}

#[test]
fn holder_bounds_are_those_of_the_design() {
    let ok = [(19_456, 2), (262_144, 10), (65_536, 3)];
    for (m, t) in ok {
        let header = check_header_for_holder(&file_with_params(m, t)).unwrap();
        assert_eq!(
            header.params,
            KdfParams {
                memory_kib: m,
                time_cost: t
            }
        );
    }
    let refused = [
        (19_455, 2),
        (262_145, 10),
        (65_536, 1),
        (65_536, 11),
        (MAX_MEMORY_KIB, 3),
    ];
    for (m, t) in refused {
        let file = file_with_params(m, t);
        let err = check_header_for_holder(&file).unwrap_err();
        assert!(matches!(err, OpenError::RefusedParameters(_)), "m={m} t={t}: {err:?}");
        let before = derivations();
        let err = open_within(&file, PASS, &KdfBounds::HOLDER).unwrap_err();
        assert!(matches!(err, OpenError::RefusedParameters(_)), "m={m} t={t}: {err:?}");
        assert_eq!(derivations(), before);
    }
    assert!(KdfBounds::HOLDER.check(KdfParams::DEFAULT).is_ok());
}

#[test]
fn every_file_shorter_than_header_and_tag_is_truncated() {
    let file = seal(KAT_PLAINTEXT, &fast_key());
    for len in 0..MIN_FILE_LEN {
        let before = derivations();
        assert_eq!(
            open(&file[..len], PASS).unwrap_err(),
            OpenError::Truncated,
            "length {len}"
        );
        assert_eq!(derivations(), before);
    }
    assert!(OpenError::Truncated.to_string().contains("truncated"));
}

#[test]
fn a_file_cut_or_extended_inside_the_ciphertext_does_not_open() {
    let file = seal(KAT_PLAINTEXT, &fast_key());
    let cut = &file[..file.len() - 1];
    assert_eq!(open(cut, PASS).unwrap_err(), OpenError::WrongPassphraseOrDamaged);
    let mut longer = file.clone();
    longer.push(0);
    assert_eq!(open(&longer, PASS).unwrap_err(), OpenError::WrongPassphraseOrDamaged);
}

#[test]
fn files_that_are_not_lfbk_are_named_so() {
    let not_lfbk: [&[u8]; 6] = [
        br#"{"version":"2.0","user":{}}"#,
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
        b"PK\x03\x04 a zip file of some length, long enough to hold a header.........",
        b"LFBX\x01\x01\x00\x00",
        b"{",
        b"LB",
    ];
    for bytes in not_lfbk {
        assert_eq!(open(bytes, PASS).unwrap_err(), OpenError::NotLfbk, "{bytes:?}");
    }
    assert_eq!(OpenError::NotLfbk.to_string(), "not a lifeboat backup file (.lfbk)");
    // A prefix of the magic is the start of a cut file.
    for bytes in [&b""[..], b"L", b"LF", b"LFB", b"LFBK"] {
        assert_eq!(Header::parse(bytes).unwrap_err(), OpenError::Truncated, "{bytes:?}");
    }
}

#[test]
fn version_and_kdf_are_read_even_from_a_short_file() {
    assert_eq!(
        Header::parse(b"LFBK\x02").unwrap_err(),
        OpenError::UnsupportedVersion(2)
    );
    assert_eq!(
        Header::parse(b"LFBK\x01\x02").unwrap_err(),
        OpenError::UnsupportedKdf(2)
    );
    assert_eq!(Header::parse(b"LFBK\x01").unwrap_err(), OpenError::Truncated);
    assert!(OpenError::UnsupportedVersion(2).to_string().contains("version 2"));
    assert!(OpenError::UnsupportedKdf(2).to_string().contains("id 2"));
}

#[test]
fn reserved_bytes_and_parallelism_are_checked() {
    let good = file_with_params(19_456, 2);
    for (at, value, says) in [
        (6, 1, "reserved bytes must be 0"),
        (7, 0x80, "reserved bytes must be 0"),
        (16, 0, "parallelism must be 1, found 0"),
        (16, 2, "parallelism must be 1, found 2"),
        (19, 1, "parallelism must be 1, found 16777217"),
    ] {
        let mut file = good.clone();
        file[at] = value;
        let err = Header::parse(&file).unwrap_err();
        assert!(matches!(err, OpenError::InvalidHeader(_)), "{err:?}");
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[test]
fn open_errors_become_bad_requests_with_their_message() {
    let e: Error = OpenError::WrongPassphraseOrDamaged.into();
    assert!(matches!(&e, Error::BadRequest(m) if m.contains("cannot be told apart")));
    let e: Error = OpenError::RefusedParameters(ParamProblem::TimeAbove { time_cost: 11, max: 10 }).into();
    assert_eq!(
        e.client_message(),
        "refused .lfbk file: its Argon2 time cost, 11, is above the limit of 10"
    );
    let e: Error = OpenError::Interrupted.into();
    assert!(matches!(e, Error::Internal(_)));
}

#[test]
fn sealing_key_hides_its_key_and_survives_storage() {
    let key = fast_key();
    let shown = format!("{key:?}");
    assert!(!shown.contains(&hex::encode(key.key)), "{shown}");
    assert!(!shown.contains(&format!("{:?}", key.key)), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");

    let stored = serde_json::to_vec(&key).unwrap();
    let back: SealingKey = serde_json::from_slice(&stored).unwrap();
    assert_eq!((back.salt, back.params, back.key), (key.salt, key.params, key.key));
    let stored = bincode::serde::encode_to_vec(&key, bincode::config::standard()).unwrap();
    let (back, _): (SealingKey, _) = bincode::serde::decode_from_slice(&stored, bincode::config::standard()).unwrap();
    // A key read back from storage seals files the pass phrase opens.
    assert_eq!(open(&seal(KAT_PLAINTEXT, &back), PASS).unwrap(), KAT_PLAINTEXT);
}

#[test]
fn pass_phrase_sources_come_in_order_file_env_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pass");
    let env = Some(std::ffi::OsString::from("from env"));
    let no_prompt = || -> Result<Passphrase> { panic!("must not prompt") };

    fs::write(&file, "from file\n").unwrap();
    let got = passphrase_from_sources(Some(&file), env.clone(), no_prompt).unwrap();
    assert_eq!(got.expose(), "from file");
    let got = passphrase_from_sources(None, env.clone(), no_prompt).unwrap();
    assert_eq!(got.expose(), "from env");
    let got = passphrase_from_sources(None, None, || Ok(Passphrase::from("typed"))).unwrap();
    assert_eq!(got.expose(), "typed");

    // One trailing newline only (LF or CRLF); other white space is the pass phrase's.
    for (content, expected) in [
        ("two\n\n", "two\n"),
        ("crlf\r\n", "crlf"),
        (" spaced ", " spaced "),
        ("none", "none"),
    ] {
        fs::write(&file, content).unwrap();
        let got = passphrase_from_sources(Some(&file), None, no_prompt).unwrap();
        assert_eq!(got.expose(), expected, "{content:?}");
    }

    fs::write(&file, "\n").unwrap();
    let err = passphrase_from_sources(Some(&file), env.clone(), no_prompt).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err = passphrase_from_sources(None, Some(std::ffi::OsString::new()), no_prompt).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let missing = dir.path().join("missing");
    let err = passphrase_from_sources(Some(&missing), env, no_prompt).unwrap_err();
    assert!(err.to_string().contains("cannot read pass phrase file"), "{err}");
}

#[test]
fn private_files_are_written_whole_and_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    fs::write(&path, "old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    write_private_file(&path, b"new contents").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new contents");
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["out.json"], "no temporary file is left behind");
}

#[test]
fn seal_and_decrypt_commands_round_trip_through_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive.json");
    let sealed = dir.path().join("backup.lfbk");
    let out = dir.path().join("decrypted.json");
    let pass = dir.path().join("pass");
    fs::write(&archive, KAT_PLAINTEXT).unwrap();
    fs::write(&pass, format!("{PASS}\n")).unwrap();

    seal_command(&archive, &sealed, Some(&pass), FAST).unwrap();
    let bytes = fs::read(&sealed).unwrap();
    assert_eq!(Header::parse(&bytes).unwrap().params, FAST);
    assert_eq!(fs::metadata(&sealed).unwrap().permissions().mode() & 0o777, 0o600);

    decrypt_command(&sealed, Some(&out), Some(&pass)).unwrap();
    assert_eq!(fs::read(&out).unwrap(), KAT_PLAINTEXT);
    assert_eq!(fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);

    fs::write(&pass, "violet tractor drifts under 8 quiet lanterns").unwrap();
    let err = decrypt_command(&sealed, Some(&out), Some(&pass)).unwrap_err();
    assert!(err.to_string().contains("cannot be told apart"), "{err}");
}

#[test]
fn decrypt_command_names_a_foreign_file_before_asking_for_a_pass_phrase() {
    let dir = tempfile::tempdir().unwrap();
    let not_lfbk = dir.path().join("archive.json");
    fs::write(&not_lfbk, KAT_PLAINTEXT).unwrap();
    // No pass phrase source is given: reaching for one would fail (or prompt).
    let err = decrypt_command(&not_lfbk, None, None).unwrap_err();
    assert_eq!(err.to_string(), "not a lifeboat backup file (.lfbk)");
}

#[test]
fn seal_command_refuses_weak_pass_phrases_and_non_json() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive.json");
    let sealed = dir.path().join("backup.lfbk");
    let pass = dir.path().join("pass");
    fs::write(&archive, KAT_PLAINTEXT).unwrap();
    fs::write(&pass, "aaaaaaaaaaaaaaaa").unwrap();
    let err = seal_command(&archive, &sealed, Some(&pass), FAST).unwrap_err();
    assert!(err.to_string().contains("too easy to guess"), "{err}");

    fs::write(&archive, b"LFBK not json").unwrap();
    fs::write(&pass, PASS).unwrap();
    let err = seal_command(&archive, &sealed, Some(&pass), FAST).unwrap_err();
    assert!(err.to_string().contains("is not JSON"), "{err}");
    assert!(!sealed.exists());
}

#[tokio::test]
async fn limiter_derives_and_opens_off_the_runtime() {
    let limiter = KdfLimiter::new(1);
    let key = limiter.derive(Passphrase::from(PASS), FAST).await.unwrap();
    let file = seal(KAT_PLAINTEXT, &key);
    // More calls than permits: each waits its turn and all finish.
    let opens = (0..3).map(|_| {
        let limiter = limiter.clone();
        let file = file.clone();
        tokio::spawn(async move { limiter.open(file, Passphrase::from(PASS), KdfBounds::HOLDER).await })
    });
    for open in opens.collect::<Vec<_>>() {
        assert_eq!(open.await.unwrap().unwrap(), KAT_PLAINTEXT);
    }
    let err = limiter.open(file, Passphrase::from("nope"), KdfBounds::HOLDER).await;
    assert_eq!(err.unwrap_err(), OpenError::WrongPassphraseOrDamaged);
    assert_eq!(limiter.permits.available_permits(), 1, "every permit came back");
}

#[tokio::test]
async fn limiter_refuses_hostile_files_without_waiting_for_a_permit() {
    let limiter = KdfLimiter::new(1);
    // Every permit is taken: anything that waited for one would never finish.
    let _all = Arc::clone(&limiter.permits).acquire_owned().await.unwrap();
    let hostile = file_with_params(u32::MAX, 2);
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        limiter.open(hostile, Passphrase::from(PASS), KdfBounds::FORMAT),
    )
    .await
    .expect("a refused file must not wait for a permit");
    assert!(matches!(refused, Err(OpenError::RefusedParameters(_))), "{refused:?}");
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        limiter.derive(
            Passphrase::from(PASS),
            KdfParams {
                memory_kib: MAX_MEMORY_KIB + 1,
                time_cost: 3,
            },
        ),
    )
    .await
    .expect("refused costs must not wait for a permit");
    assert!(matches!(refused, Err(Error::BadRequest(_))), "{refused:?}");
}
