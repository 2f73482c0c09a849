//! The sealed backup file, `.lfbk` (docs/formats.md, "The sealed backup file (.lfbk)"):
//! its header type, sealing and opening, the key a home pod keeps instead of the pass
//! phrase, a limiter for the costly key derivation, and the offline `backups decrypt`
//! command's work.
//!
//! Layout, all integers little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `LFBK` |
//! | 4 | 1 | format version, `1` |
//! | 5 | 1 | KDF id, `1` = Argon2id version 0x13 |
//! | 6 | 2 | reserved, `0` |
//! | 8 | 4 | Argon2 memory cost in KiB |
//! | 12 | 4 | Argon2 time cost |
//! | 16 | 4 | Argon2 parallelism, `1` |
//! | 20 | 16 | salt |
//! | 36 | 24 | nonce |
//! | 60 | … | `crypto_secretbox`: 16-byte Poly1305 tag, then the XSalsa20 ciphertext |
//!
//! The key is Argon2id(pass phrase, salt, m, t, p = 1, 32 bytes), so libsodium alone
//! (`crypto_pwhash` + `crypto_secretbox_open_easy`) opens the file. Opening checks the
//! whole header, including the Argon2 costs against [`KdfBounds`], before it derives
//! anything, so a hostile file cannot make a reader allocate a gigabyte.
//!
//! Not owned here: the archive that is sealed, where sealed files are kept or pushed,
//! and the pass-phrase policy ([`crate::passphrase`]), which callers apply before
//! [`SealingKey::derive`].

use std::fmt;
use std::fs;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::{Key, Nonce, Tag, XSalsa20Poly1305};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use zeroize::{Zeroize, Zeroizing};

use crate::passphrase::{self, Passphrase};
use crate::{Error, Result};

/// The first four bytes of every `.lfbk` file.
pub const MAGIC: [u8; 4] = *b"LFBK";
/// The only format version this code reads and writes.
pub const VERSION: u8 = 1;
/// KDF id 1: Argon2id, version 0x13.
pub const KDF_ARGON2ID13: u8 = 1;
/// Bytes before the `crypto_secretbox` output.
pub const HEADER_LEN: usize = 60;
/// Length of the Poly1305 tag that starts the `crypto_secretbox` output.
pub const TAG_LEN: usize = 16;
/// The shortest possible `.lfbk` file: a header and the tag of an empty plaintext.
pub const MIN_FILE_LEN: usize = HEADER_LEN + TAG_LEN;
/// Length of the Argon2 salt.
pub const SALT_LEN: usize = 16;
/// Length of the XSalsa20 nonce.
pub const NONCE_LEN: usize = 24;
/// Largest Argon2 memory cost any reader accepts: 1 GiB.
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// Largest Argon2 time cost any reader accepts.
pub const MAX_TIME_COST: u32 = 10;
/// The environment variable `backups decrypt` reads a pass phrase from.
pub const PASSPHRASE_ENV: &str = "LIFEBOAT_PASSPHRASE";

const KEY_LEN: usize = 32;

/// Argon2id costs, as written in the header (parallelism is always 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory cost in KiB (libsodium's `memlimit` is this × 1024).
    pub memory_kib: u32,
    /// Number of passes (libsodium's `opslimit`).
    pub time_cost: u32,
}

impl KdfParams {
    /// The cost for new pass phrases unless configured otherwise: 64 MiB, 3 passes.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 65536,
        time_cost: 3,
    };
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams::DEFAULT
    }
}

/// An inclusive range of Argon2 costs that a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfBounds {
    /// The lowest accepted costs.
    pub min: KdfParams,
    /// The highest accepted costs.
    pub max: KdfParams,
}

impl KdfBounds {
    /// What any `.lfbk` reader accepts: from Argon2's own minimum (8 KiB, 1 pass, as
    /// libsodium) up to the caps of docs/formats.md, "Cost limits" (1 GiB, 10 passes).
    pub const FORMAT: KdfBounds = KdfBounds {
        min: KdfParams {
            memory_kib: 8,
            time_cost: 1,
        },
        max: KdfParams {
            memory_kib: MAX_MEMORY_KIB,
            time_cost: MAX_TIME_COST,
        },
    };

    /// What a backup holder accepts in a push (docs/holder-api.md, "Check order"): m
    /// 19,456–262,144 KiB, t 2–10, so that a pusher cannot make a restore cost a
    /// gigabyte.
    pub const HOLDER: KdfBounds = KdfBounds {
        min: KdfParams {
            memory_kib: 19_456,
            time_cost: 2,
        },
        max: KdfParams {
            memory_kib: 262_144,
            time_cost: 10,
        },
    };

    /// Whether `params` lie within these bounds; `Err` names the first cost outside.
    pub fn check(&self, params: KdfParams) -> Result<(), ParamProblem> {
        let KdfParams { memory_kib, time_cost } = params;
        if memory_kib > self.max.memory_kib {
            return Err(ParamProblem::MemoryAbove {
                memory_kib,
                max: self.max.memory_kib,
            });
        }
        if memory_kib < self.min.memory_kib {
            return Err(ParamProblem::MemoryBelow {
                memory_kib,
                min: self.min.memory_kib,
            });
        }
        if time_cost > self.max.time_cost {
            return Err(ParamProblem::TimeAbove {
                time_cost,
                max: self.max.time_cost,
            });
        }
        if time_cost < self.min.time_cost {
            return Err(ParamProblem::TimeBelow {
                time_cost,
                min: self.min.time_cost,
            });
        }
        Ok(())
    }
}

/// Which Argon2 cost a reader refused, its value and the limit it broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamProblem {
    /// The memory cost is above the largest accepted.
    MemoryAbove { memory_kib: u32, max: u32 },
    /// The memory cost is below the smallest accepted.
    MemoryBelow { memory_kib: u32, min: u32 },
    /// The time cost is above the largest accepted.
    TimeAbove { time_cost: u32, max: u32 },
    /// The time cost is below the smallest accepted.
    TimeBelow { time_cost: u32, min: u32 },
}

impl fmt::Display for ParamProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParamProblem::MemoryAbove { memory_kib, max } => write!(
                f,
                "its Argon2 memory cost, {memory_kib} KiB, is above the limit of {max} KiB"
            ),
            ParamProblem::MemoryBelow { memory_kib, min } => write!(
                f,
                "its Argon2 memory cost, {memory_kib} KiB, is below the minimum of {min} KiB"
            ),
            ParamProblem::TimeAbove { time_cost, max } => {
                write!(f, "its Argon2 time cost, {time_cost}, is above the limit of {max}")
            }
            ParamProblem::TimeBelow { time_cost, min } => {
                write!(f, "its Argon2 time cost, {time_cost}, is below the minimum of {min}")
            }
        }
    }
}

/// Why a `.lfbk` file did not open. Each message is meant for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The file does not start with `LFBK`.
    #[error("not a lifeboat backup file (.lfbk)")]
    NotLfbk,
    /// A format version this code does not know.
    #[error(
        "unsupported .lfbk format version {0}: this lifeboat reads version 1 \
         (a newer lifeboat may read it)"
    )]
    UnsupportedVersion(u8),
    /// A key-derivation function this code does not know.
    #[error(
        "unsupported key derivation in the .lfbk file (id {0}): this lifeboat knows \
         only id 1, Argon2id"
    )]
    UnsupportedKdf(u8),
    /// Reserved bytes not zero, or parallelism not 1.
    #[error("invalid .lfbk header: {0}")]
    InvalidHeader(String),
    /// Argon2 costs outside what this reader accepts; refused before deriving anything.
    #[error("refused .lfbk file: {0}")]
    RefusedParameters(ParamProblem),
    /// The file ends before its header and authentication tag do. A file cut inside
    /// its ciphertext cannot be told from a damaged one: that is
    /// [`OpenError::WrongPassphraseOrDamaged`].
    #[error(
        "the .lfbk file is truncated: it ends before its header and authentication tag \
         do; copy or download it again"
    )]
    Truncated,
    /// The authentication tag did not verify.
    #[error(
        "wrong pass phrase or damaged file: the two cannot be told apart, because the \
         file's authentication check fails the same way in both cases"
    )]
    WrongPassphraseOrDamaged,
    /// The key-derivation task ended without an answer (a bug, or the runtime stopping).
    #[error("internal error: the key derivation was interrupted")]
    Interrupted,
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Interrupted => Error::internal(e),
            e => Error::BadRequest(e.to_string()),
        }
    }
}

/// The header of a `.lfbk` file, with version and KDF id fixed to the ones supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The Argon2id costs.
    pub params: KdfParams,
    /// The Argon2 salt.
    pub salt: [u8; SALT_LEN],
    /// The XSalsa20 nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl Header {
    /// Parses the header at the start of a whole `.lfbk` file. Checks, in order: magic,
    /// version, KDF id, that the file holds a header and a tag, reserved bytes,
    /// parallelism, and the costs against [`KdfBounds::FORMAT`]. Allocates nothing.
    pub fn parse(file: &[u8]) -> Result<Header, OpenError> {
        if file.len() < MAGIC.len() {
            // A prefix of the magic (or nothing at all) is the start of a cut file.
            return Err(if MAGIC.starts_with(file) {
                OpenError::Truncated
            } else {
                OpenError::NotLfbk
            });
        }
        if file[..4] != MAGIC {
            return Err(OpenError::NotLfbk);
        }
        match file.get(4) {
            None => return Err(OpenError::Truncated),
            Some(&VERSION) => {}
            Some(&v) => return Err(OpenError::UnsupportedVersion(v)),
        }
        match file.get(5) {
            None => return Err(OpenError::Truncated),
            Some(&KDF_ARGON2ID13) => {}
            Some(&k) => return Err(OpenError::UnsupportedKdf(k)),
        }
        if file.len() < MIN_FILE_LEN {
            return Err(OpenError::Truncated);
        }
        let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
        let reserved = u16::from_le_bytes([file[6], file[7]]);
        if reserved != 0 {
            return Err(OpenError::InvalidHeader(format!(
                "the reserved bytes must be 0, found {reserved:#06x}"
            )));
        }
        let parallelism = u32_at(16);
        if parallelism != 1 {
            return Err(OpenError::InvalidHeader(format!(
                "the Argon2 parallelism must be 1, found {parallelism}"
            )));
        }
        let params = KdfParams {
            memory_kib: u32_at(8),
            time_cost: u32_at(12),
        };
        KdfBounds::FORMAT.check(params).map_err(OpenError::RefusedParameters)?;
        Ok(Header {
            params,
            salt: file[20..36].try_into().unwrap(),
            nonce: file[36..60].try_into().unwrap(),
        })
    }

    /// The header's bytes, as they start a `.lfbk` file.
    pub fn write(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = KDF_ARGON2ID13;
        // 6..8 reserved, zero
        out[8..12].copy_from_slice(&self.params.memory_kib.to_le_bytes());
        out[12..16].copy_from_slice(&self.params.time_cost.to_le_bytes());
        out[16..20].copy_from_slice(&1u32.to_le_bytes());
        out[20..36].copy_from_slice(&self.salt);
        out[36..60].copy_from_slice(&self.nonce);
        out
    }
}

impl PartialEq for SealingKey {
    fn eq(&self, other: &Self) -> bool {
        self.salt == other.salt && self.params == other.params && self.key == other.key
    }
}

/// What the home pod keeps instead of the pass phrase (docs/formats.md, "The key a home
/// pod keeps"): salt, costs and the derived key, so later backups are sealed without
/// the user. `Debug` hides the key, and the key is wiped from memory on drop.
#[derive(Clone, Serialize, Deserialize)]
pub struct SealingKey {
    salt: [u8; SALT_LEN],
    params: KdfParams,
    key: [u8; KEY_LEN],
}

impl SealingKey {
    /// Derives a key from a pass phrase with a fresh random salt. Costs outside
    /// [`KdfBounds::FORMAT`] are refused: no reader would open the files. The pass
    /// phrase's strength is not checked here: see [`crate::passphrase::check_strength`].
    pub fn derive(passphrase: &str, params: KdfParams) -> Result<SealingKey> {
        check_params(params)?;
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let key = derive_key(passphrase, &salt, params)
            .map_err(|e| Error::bad(format!("the pass phrase cannot be used: {e}")))?;
        Ok(SealingKey {
            salt,
            params,
            key: *key,
        })
    }

    /// The Argon2id costs this key was derived with.
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// The salt this key was derived with.
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }
}

/// Costs outside [`KdfBounds::FORMAT`] would make files that no reader opens.
fn check_params(params: KdfParams) -> Result<()> {
    KdfBounds::FORMAT
        .check(params)
        .map_err(|p| Error::bad(format!("refused key-derivation parameters: {p}")))
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("salt", &hex::encode(self.salt))
            .field("params", &self.params)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Drop for SealingKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

#[cfg(test)]
thread_local! {
    /// Key derivations run on this thread, so tests can show a refusal derived nothing.
    static DERIVATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Argon2id(pass phrase, salt, m, t, p = 1) → 32 bytes. `params` must already be
/// within [`KdfBounds::FORMAT`]; this allocates `params.memory_kib` KiB.
fn derive_key(
    passphrase: &str,
    salt: &[u8; SALT_LEN],
    params: KdfParams,
) -> Result<Zeroizing<[u8; KEY_LEN]>, argon2::Error> {
    #[cfg(test)]
    DERIVATIONS.with(|d| d.set(d.get() + 1));
    let argon_params = Params::new(params.memory_kib, params.time_cost, 1, Some(KEY_LEN))?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params).hash_password_into(
        passphrase.as_bytes(),
        salt,
        key.as_mut(),
    )?;
    Ok(key)
}

/// Seals `plaintext` into a `.lfbk` file under `key`, with a fresh random nonce.
pub fn seal(plaintext: &[u8], key: &SealingKey) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    seal_with_nonce(plaintext, key, nonce)
}

fn seal_with_nonce(plaintext: &[u8], key: &SealingKey, nonce: [u8; NONCE_LEN]) -> Vec<u8> {
    let header = Header {
        params: key.params,
        salt: key.salt,
        nonce,
    };
    let mut file = Vec::with_capacity(MIN_FILE_LEN + plaintext.len());
    file.extend_from_slice(&header.write());
    file.extend_from_slice(&[0u8; TAG_LEN]);
    file.extend_from_slice(plaintext);
    // Detached, so the layout (tag, then ciphertext, as libsodium's `_easy` functions
    // write it) is spelled out here rather than left to the crate.
    let tag = XSalsa20Poly1305::new(Key::from_slice(&key.key))
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut file[MIN_FILE_LEN..])
        .expect("crypto_secretbox fails only when given associated data");
    file[HEADER_LEN..MIN_FILE_LEN].copy_from_slice(&tag);
    file
}

/// Opens a `.lfbk` file with a pass phrase, accepting any costs within
/// [`KdfBounds::FORMAT`]; the plaintext is the account archive JSON.
pub fn open(file: &[u8], passphrase: &str) -> Result<Vec<u8>, OpenError> {
    open_within(file, passphrase, &KdfBounds::FORMAT)
}

/// Opens a `.lfbk` file, refusing costs outside `bounds` before deriving anything.
pub fn open_within(file: &[u8], passphrase: &str, bounds: &KdfBounds) -> Result<Vec<u8>, OpenError> {
    let header = check_header(file, bounds)?;
    open_checked(&header, file, passphrase)
}

/// Parses a pushed `.lfbk` and checks its costs against [`KdfBounds::HOLDER`], as a
/// backup holder must before it stores the file (docs/holder-api.md, "Check order").
/// Derives nothing.
pub fn check_header_for_holder(file: &[u8]) -> Result<Header, OpenError> {
    check_header(file, &KdfBounds::HOLDER)
}

/// [`Header::parse`], then `bounds`: everything that must pass before a derivation.
fn check_header(file: &[u8], bounds: &KdfBounds) -> Result<Header, OpenError> {
    let header = Header::parse(file)?;
    bounds.check(header.params).map_err(OpenError::RefusedParameters)?;
    Ok(header)
}

/// Derives the key and opens the box; `header` is `file`'s, already checked.
fn open_checked(header: &Header, file: &[u8], passphrase: &str) -> Result<Vec<u8>, OpenError> {
    // Argon2 fails here only for a pass phrase over 4 GiB, which no key was derived from.
    let key = derive_key(passphrase, &header.salt, header.params).map_err(|_| OpenError::WrongPassphraseOrDamaged)?;
    open_box(header, file, &key)
}

/// [`open_within`] with the key already derived: every check and step of opening but
/// the derivation, which takes the key's salt and costs, not the file's. For the fuzz
/// targets (`fuzz/`), where an Argon2 run per input would be far too slow.
#[doc(hidden)]
pub fn open_with_key(file: &[u8], key: &SealingKey, bounds: &KdfBounds) -> Result<Vec<u8>, OpenError> {
    let header = check_header(file, bounds)?;
    open_box(&header, file, &key.key)
}

/// Opens the box of `file`, whose header is `header`, with `key`.
fn open_box(header: &Header, file: &[u8], key: &[u8; KEY_LEN]) -> Result<Vec<u8>, OpenError> {
    let tag = Tag::from_slice(&file[HEADER_LEN..MIN_FILE_LEN]);
    let mut plaintext = file[MIN_FILE_LEN..].to_vec();
    XSalsa20Poly1305::new(Key::from_slice(key))
        .decrypt_in_place_detached(Nonce::from_slice(&header.nonce), b"", &mut plaintext, tag)
        .map_err(|_| OpenError::WrongPassphraseOrDamaged)?;
    Ok(plaintext)
}

/// Bounds how many key derivations run at once, and runs them off the async runtime:
/// each one takes up to a gigabyte and seconds of CPU (docs/formats.md, "Cost limits").
#[derive(Debug, Clone)]
pub struct KdfLimiter {
    permits: Arc<Semaphore>,
}

impl KdfLimiter {
    /// A limiter that lets `max_concurrent` derivations run at once (at least one).
    pub fn new(max_concurrent: usize) -> Self {
        KdfLimiter {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// [`SealingKey::derive`] on a blocking thread, once a permit is free.
    pub async fn derive(&self, passphrase: Passphrase, params: KdfParams) -> Result<SealingKey> {
        check_params(params)?;
        let permit = self.acquire().await;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            SealingKey::derive(passphrase.expose(), params)
        })
        .await
        .map_err(|e| Error::internal(format!("key derivation task: {e}")))?
    }

    /// [`open_within`] with the derivation on a blocking thread, once a permit is free.
    /// The header is checked first, so a refused file never waits for or takes a permit.
    pub async fn open(&self, file: Vec<u8>, passphrase: Passphrase, bounds: KdfBounds) -> Result<Vec<u8>, OpenError> {
        let header = check_header(&file, &bounds)?;
        let permit = self.acquire().await;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            open_checked(&header, &file, passphrase.expose())
        })
        .await
        .map_err(|_| OpenError::Interrupted)?
    }

    /// The permit moves into the blocking task, so it is held until the derivation
    /// ends even when the caller's future is dropped first.
    async fn acquire(&self) -> tokio::sync::OwnedSemaphorePermit {
        Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

/// Reads the pass phrase for a command: from `passphrase_file` (one trailing newline
/// removed), else from `LIFEBOAT_PASSPHRASE`, else from a no-echo prompt when stdin is
/// a terminal.
pub fn read_passphrase(passphrase_file: Option<&Path>) -> Result<Passphrase> {
    read_passphrase_with(passphrase_file, env_passphrase(), false)
}

fn env_passphrase() -> Option<std::ffi::OsString> {
    std::env::var_os(PASSPHRASE_ENV)
}

/// `confirm` asks twice at a prompt, for a pass phrase being set (a typo would lose
/// the data).
fn read_passphrase_with(
    passphrase_file: Option<&Path>,
    env_value: Option<std::ffi::OsString>,
    confirm: bool,
) -> Result<Passphrase> {
    passphrase_from_sources(passphrase_file, env_value, || {
        if !std::io::stdin().is_terminal() {
            return Err(Error::bad(format!(
                "no pass phrase given: use --passphrase-file, set {PASSPHRASE_ENV}, or run \
                 in a terminal to be asked"
            )));
        }
        let ask = |prompt: &str| {
            rpassword::prompt_password(prompt)
                .map(Passphrase::new)
                .map_err(|e| Error::bad(format!("cannot read the pass phrase: {e}")))
        };
        let first = ask("Backup pass phrase: ")?;
        if confirm && ask("Repeat the pass phrase: ")? != first {
            return Err(Error::bad("the two pass phrases differ"));
        }
        Ok(first)
    })
}

fn passphrase_from_sources(
    passphrase_file: Option<&Path>,
    env_value: Option<std::ffi::OsString>,
    prompt: impl FnOnce() -> Result<Passphrase>,
) -> Result<Passphrase> {
    let passphrase = if let Some(path) = passphrase_file {
        let bytes = Zeroizing::new(
            fs::read(path).map_err(|e| Error::bad(format!("cannot read pass phrase file {}: {e}", path.display())))?,
        );
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::bad(format!("pass phrase file {} is not UTF-8", path.display())))?;
        let text = text
            .strip_suffix('\n')
            .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
        Passphrase::from(text)
    } else if let Some(value) = env_value {
        let value = value
            .into_string()
            .map_err(|_| Error::bad(format!("{PASSPHRASE_ENV} is not UTF-8")))?;
        Passphrase::new(value)
    } else {
        prompt()?
    };
    if passphrase.expose().is_empty() {
        return Err(Error::bad("the pass phrase is empty"));
    }
    Ok(passphrase)
}

/// `lifeboat backups decrypt FILE [--out OUT]`: opens a `.lfbk` and writes the archive
/// JSON to `out` (atomically, owner-only) or to stdout. The file is checked before the
/// pass phrase is asked for.
pub fn decrypt_command(file: &Path, out: Option<&Path>, passphrase_file: Option<&Path>) -> Result<()> {
    let sealed = fs::read(file).map_err(|e| Error::bad(format!("cannot read {}: {e}", file.display())))?;
    Header::parse(&sealed)?;
    let passphrase = read_passphrase(passphrase_file)?;
    let archive = Zeroizing::new(open(&sealed, passphrase.expose())?);
    match out {
        Some(out) => write_private_file(out, &archive),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&archive)
                .and_then(|()| stdout.flush())
                .map_err(|e| Error::bad(format!("cannot write to stdout: {e}")))
        }
    }
}

/// Seals an archive JSON file into a `.lfbk` at `out` (atomically, owner-only), with a
/// pass phrase that must pass [`passphrase::check_strength`]; a prompt asks twice.
pub fn seal_command(archive_json: &Path, out: &Path, passphrase_file: Option<&Path>, params: KdfParams) -> Result<()> {
    let archive = Zeroizing::new(
        fs::read(archive_json).map_err(|e| Error::bad(format!("cannot read {}: {e}", archive_json.display())))?,
    );
    serde_json::from_slice::<serde::de::IgnoredAny>(&archive)
        .map_err(|e| Error::bad(format!("{} is not JSON: {e}", archive_json.display())))?;
    let passphrase = read_passphrase_with(passphrase_file, env_passphrase(), true)?;
    passphrase::check_strength(passphrase.expose(), &[]).map_err(Error::BadRequest)?;
    let key = SealingKey::derive(passphrase.expose(), params)?;
    write_private_file(out, &seal(&archive, &key))
}

/// Writes `bytes` to `path` through a temporary file in the same folder, created with
/// mode 0600, synced, then renamed over `path`: a reader sees the old file or the whole
/// new one, and nobody else can read it.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| Error::bad(format!("cannot write {}: {e}", path.display()));
    let name = path
        .file_name()
        .ok_or_else(|| Error::bad(format!("{} is not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.{:016x}.tmp",
        name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(fail(e));
    }
    // Make the rename itself durable; a folder that cannot be opened is no error here.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
