//! The `.lfbk` format against libsodium itself (through PyNaCl): a file lifeboat seals
//! opens with `crypto_pwhash` + `crypto_secretbox_open_easy` alone, and a file written
//! with libsodium opens in lifeboat. Needs `python3` with PyNaCl; a machine without
//! them fails these tests rather than skipping them, because CI installs both.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use lifeboat::sealed::{self, Header, KdfParams, OpenError, SealingKey};

/// The smallest costs a backup holder accepts: quick, and still real Argon2id.
const FAST: KdfParams = KdfParams {
    memory_kib: 19_456,
    time_cost: 2,
};
const PASS: &str = "violet tractor drifts under 9 quiet lanterns";

/// Opens a `.lfbk` with libsodium only, exactly as docs/formats.md, "Key derivation and
/// cipher", says a user can.
const PY_OPEN: &str = r#"
import struct, sys
from nacl import bindings as b
data = open(sys.argv[1], "rb").read()
pw = open(sys.argv[2], "rb").read()
magic, version, kdf, reserved, m, t, p = struct.unpack_from("<4sBBHIII", data, 0)
assert (magic, version, kdf, reserved, p) == (b"LFBK", 1, 1, 0, 1), (magic, version, kdf, reserved, p)
salt, nonce, boxed = data[20:36], data[36:60], data[60:]
key = b.crypto_pwhash_alg(32, pw, salt, t, m * 1024, b.crypto_pwhash_ALG_ARGON2ID13)
sys.stdout.buffer.write(b.crypto_secretbox_open_easy(boxed, nonce, key))
"#;

/// Writes a `.lfbk` with libsodium only: header, then `crypto_secretbox_easy`.
const PY_SEAL: &str = r#"
import os, struct, sys
from nacl import bindings as b
plaintext = open(sys.argv[1], "rb").read()
pw = open(sys.argv[2], "rb").read()
m, t = int(sys.argv[4]), int(sys.argv[5])
salt, nonce = os.urandom(16), os.urandom(24)
key = b.crypto_pwhash_alg(32, pw, salt, t, m * 1024, b.crypto_pwhash_ALG_ARGON2ID13)
header = b"LFBK" + bytes([1, 1, 0, 0]) + struct.pack("<III", m, t, 1) + salt + nonce
open(sys.argv[3], "wb").write(header + b.crypto_secretbox_easy(plaintext, nonce, key))
"#;

/// Runs a PyNaCl script; panics with a clear message when python3 or PyNaCl is absent.
fn python(script: &str, args: &[&OsStr]) -> Vec<u8> {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for the libsodium interoperability tests: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "PyNaCl is needed for the libsodium interoperability tests \
         (pip install pynacl, or apt-get install python3-nacl):\n{stderr}"
    );
    assert!(output.status.success(), "python3 failed: {stderr}");
    output.stdout
}

fn archive_json() -> Vec<u8> {
    // Not ASCII only, and longer than one Salsa20 block.
    let bio = "pod crashed, I did not — ünïcödé ".repeat(20);
    format!(r#"{{"version":"2.0","user":{{"username":"alice","profile":{{"bio":"{bio}"}}}}}}"#).into_bytes()
}

#[test]
fn a_file_sealed_by_lifeboat_opens_with_libsodium_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (file, pass) = (dir.path().join("backup.lfbk"), dir.path().join("pass"));
    let key = SealingKey::derive(PASS, FAST).unwrap();
    let plaintext = archive_json();
    std::fs::write(&file, sealed::seal(&plaintext, &key)).unwrap();
    std::fs::write(&pass, PASS).unwrap();
    assert_eq!(python(PY_OPEN, &[file.as_ref(), pass.as_ref()]), plaintext);
}

/// Seals `plaintext` with libsodium (PyNaCl) at FAST costs into `dir/backup.lfbk`.
fn seal_with_libsodium(dir: &Path, plaintext: &[u8]) -> PathBuf {
    let (plain, pass, file) = (dir.join("archive.json"), dir.join("pass"), dir.join("backup.lfbk"));
    std::fs::write(&plain, plaintext).unwrap();
    std::fs::write(&pass, PASS).unwrap();
    let (m, t) = (FAST.memory_kib.to_string(), FAST.time_cost.to_string());
    let args = [
        plain.as_ref(),
        pass.as_ref(),
        file.as_ref(),
        OsStr::new(&m),
        OsStr::new(&t),
    ];
    python(PY_SEAL, &args);
    file
}

#[test]
fn a_file_sealed_with_libsodium_opens_in_lifeboat() {
    let dir = tempfile::tempdir().unwrap();
    let plaintext = archive_json();
    let bytes = std::fs::read(seal_with_libsodium(dir.path(), &plaintext)).unwrap();
    assert_eq!(Header::parse(&bytes).unwrap().params, FAST);
    assert_eq!(sealed::open(&bytes, PASS).unwrap(), plaintext);
    assert_eq!(
        sealed::open(&bytes, "violet tractor drifts under 8 quiet lanterns").unwrap_err(),
        OpenError::WrongPassphraseOrDamaged
    );
}

#[test]
fn the_decrypt_command_reads_what_libsodium_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let plaintext = archive_json();
    let file = seal_with_libsodium(dir.path(), &plaintext);
    let (pass, out) = (dir.path().join("pass"), dir.path().join("decrypted.json"));
    // A pass phrase file written by an editor ends with a newline; it is not part of it.
    std::fs::write(&pass, format!("{PASS}\n")).unwrap();
    sealed::decrypt_command(&file, Some(&out), Some(&pass)).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), plaintext);
}

#[test]
fn the_seal_command_writes_what_libsodium_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, pass, file) = (
        dir.path().join("archive.json"),
        dir.path().join("pass"),
        dir.path().join("backup.lfbk"),
    );
    let plaintext = archive_json();
    std::fs::write(&plain, &plaintext).unwrap();
    std::fs::write(&pass, PASS).unwrap();
    sealed::seal_command(&plain, &file, Some(&pass), FAST).unwrap();
    assert_eq!(python(PY_OPEN, &[file.as_ref(), pass.as_ref()]), plaintext);
}
