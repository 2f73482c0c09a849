//! Benchmark: durable backup pushes per second over loopback HTTP, and the server's
//! memory across them. Not a test: it asserts nothing about time, it measures.
//!
//! `cargo bench --bench backup_push` builds lifeboat in release, starts a real
//! `lifeboat serve` on a temporary folder (backups on, push rate limit raised), makes
//! one confirmed slot per key (pushing, then confirming through the link in the mail
//! written to the `.eml` outbox), pre-signs every push with 4096-bit keys (slow, so
//! before timing, on every core), then sends `PUSHES` pushes of 64 KiB `.lfbk` files
//! over `KEYS` concurrent keep-alive connections, one key each so every push carries
//! the next sequence and is stored (`200`). It prints pushes/s and the server's RSS
//! (VmRSS from /proc) at start, middle and end.
//!
//! Environment: `BENCH_PUSHES` (default 10000), `BENCH_KEYS` (connections, default 8),
//! `BENCH_LIFEBOAT_BIN` (another build's binary, to compare builds).
//! Keys are cached in the target folder, since generating 4096-bit keys takes a while.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use lifeboat::backup::push::push_signed_text;
use lifeboat::federation::signature;
use lifeboat::sealed::{self, KdfParams, SealingKey};
use rand::RngCore;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};

const BACKUP_BYTES: usize = 64 * 1024;
/// Distinct .lfbk files per key, cycled (each push still has its own sequence and signature).
const FILES_PER_KEY: usize = 8;
const CREATED_AT: &str = "2026-01-01T00:00:00Z";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let pushes = env_usize("BENCH_PUSHES", 10_000);
    let key_count = env_usize("BENCH_KEYS", 8);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

    let started = Instant::now();
    let keys = load_keys(key_count, cores);
    println!(
        "keys: {key_count} × RSA-4096 ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // A few real .lfbk files per key (one key derivation, then cheap sealing).
    let sealing = SealingKey::derive(
        "benchmark pass phrase that is long enough",
        KdfParams {
            memory_kib: 19456,
            time_cost: 2,
        },
    )
    .unwrap();
    let files: Vec<Vec<(String, String)>> = (0..key_count)
        .map(|_| {
            (0..FILES_PER_KEY)
                .map(|_| {
                    let mut plain = vec![0u8; BACKUP_BYTES - sealed::MIN_FILE_LEN];
                    rand::rngs::OsRng.fill_bytes(&mut plain);
                    let lfbk = sealed::seal(&plain, &sealing);
                    assert_eq!(lfbk.len(), BACKUP_BYTES);
                    (B64.encode(&lfbk), hex::encode(Sha256::digest(&lfbk)))
                })
                .collect()
        })
        .collect();

    // Pre-sign everything: per key, sequence 1 (the push that creates the slot), then
    // 2..=per_key+1 for the timed pushes.
    let per_key = pushes.div_ceil(key_count);
    let started = Instant::now();
    let signatures: Vec<Vec<String>> = sign_all(&keys, &files, per_key + 1, cores);
    println!(
        "signed {} pushes in {:.1} s on {cores} threads",
        key_count * (per_key + 1),
        started.elapsed().as_secs_f64()
    );

    let server = Server::start();
    common::print_conditions(
        &server.dir,
        &[
            "sealing and signing the pushes (the client does it before the clock starts)",
            "TLS: plain http on loopback",
            "the confirmation mails and links (each slot is confirmed before the clock starts)",
            "the key pool filling (waited out before the clock starts)",
        ],
    );
    let emails: Vec<String> = (0..key_count).map(|i| format!("bench{i}@example.org")).collect();
    let pems: Vec<String> = keys
        .iter()
        .map(|k| signature::public_key_to_pem(&k.to_public_key()))
        .collect();
    // Bodies are put together from pre-escaped parts: the client shares the machine's
    // two cores with the server, so it should spend as little as it can per push.
    let pems_json: Vec<String> = pems.iter().map(|p| serde_json::to_string(p).unwrap()).collect();
    let body = |k: usize, sequence: usize| -> Vec<u8> {
        let (b64, _) = &files[k][sequence % FILES_PER_KEY];
        let signature = &signatures[k][sequence - 1];
        let mut body = Vec::with_capacity(b64.len() + 2048);
        body.extend_from_slice(
            format!(
                r#"{{"version":1,"email":"{}","public_key":{},"sequence":{sequence},"created_at":"{CREATED_AT}","signature":"{signature}","backup":""#,
                emails[k], pems_json[k]
            )
            .as_bytes(),
        );
        body.extend_from_slice(b64.as_bytes());
        body.extend_from_slice(b"\"}");
        body
    };

    // Make each slot confirmed: first push, then the link from the mailed .eml.
    let agent = new_agent();
    for k in 0..key_count {
        let status = post(&agent, &server.push_url(), body(k, 1));
        assert_eq!(status, 202, "first push of slot {k}");
    }
    let tokens = server.wait_for_tokens(key_count);
    for token in &tokens {
        let mut response = agent
            .post(&format!("{}/backups/confirm", server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(format!("token={token}&action=confirm").as_bytes())
            .unwrap();
        let _ = response.body_mut().read_to_vec();
        assert_eq!(response.status().as_u16(), 200, "confirming a slot");
    }
    println!(
        "{key_count} slots confirmed; pushing {} × 64 KiB over {key_count} connections",
        key_count * per_key
    );

    // A running pod has its pool of sign-up key pairs filled; wait for that (it is
    // filled at the lowest CPU priority, but still takes an idle core now and then).
    let waiting = Instant::now();
    while server.generating_keys() && waiting.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let rss_start = server.rss_kib();
    let cpu_start = server.cpu_seconds();
    let client_cpu_start = cpu_seconds_of("self");
    let done = AtomicUsize::new(0);
    let rss_middle = Mutex::new(None);
    let failures = AtomicUsize::new(0);
    let total = key_count * per_key;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for k in 0..key_count {
            let (body, done, failures, rss_middle, server) = (&body, &done, &failures, &rss_middle, &server);
            scope.spawn(move || {
                let agent = new_agent();
                for sequence in 2..per_key + 2 {
                    let status = post(&agent, &server.push_url(), body(k, sequence));
                    if status != 200 {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    if done.fetch_add(1, Ordering::Relaxed) + 1 == total / 2 {
                        *rss_middle.lock().unwrap() = Some(server.rss_kib());
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = server.rss_kib();
    let cpu_used = server.cpu_seconds() - cpu_start;
    let client_cpu_used = cpu_seconds_of("self") - client_cpu_start;
    println!();
    println!("pushes:        {total} × 64 KiB, RSA-4096 signatures, {key_count} connections");
    println!("answered 200:  {}", total - failures.load(Ordering::Relaxed));
    println!("time:          {elapsed:.2} s");
    println!("rate:          {:.0} durable pushes/s", total as f64 / elapsed);
    println!(
        "server CPU:    {cpu_used:.2} s ({:.0} µs per push)",
        cpu_used * 1e6 / total as f64
    );
    println!(
        "client CPU:    {client_cpu_used:.2} s ({:.0} µs per push; the client shares the cores)",
        client_cpu_used * 1e6 / total as f64
    );
    println!(
        "server RSS:    start {} MiB, middle {} MiB, end {} MiB (peak {} MiB)",
        rss_start / 1024,
        rss_middle.lock().unwrap().unwrap_or(0) / 1024,
        rss_end / 1024,
        server.hwm_kib() / 1024
    );
    let out = Command::new(lifeboat_bin())
        .args(["backups", "stats"])
        .env("LIFEBOAT_SERVER_DATA_DIR", &server.dir)
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(failures.load(Ordering::Relaxed), 0, "every push must be stored");
}

/// The binary under test: this build's, or `BENCH_LIFEBOAT_BIN` (to compare builds).
fn lifeboat_bin() -> PathBuf {
    std::env::var_os("BENCH_LIFEBOAT_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lifeboat")), PathBuf::from)
}

fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections_per_host(64)
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, body: Vec<u8>) -> u16 {
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(&body[..])
        .expect("push request");
    let _ = response.body_mut().read_to_vec();
    response.status().as_u16()
}

fn load_keys(count: usize, cores: usize) -> Vec<RsaPrivateKey> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-keys-4096");
    std::fs::create_dir_all(&dir).unwrap();
    let next = AtomicUsize::new(0);
    let keys: Mutex<Vec<(usize, RsaPrivateKey)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let path = dir.join(format!("key{i}.pem"));
                let key = match std::fs::read_to_string(&path) {
                    Ok(pem) => RsaPrivateKey::from_pkcs1_pem(&pem).unwrap(),
                    Err(_) => {
                        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 4096).unwrap();
                        std::fs::write(&path, key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap().as_bytes())
                            .unwrap();
                        key
                    }
                };
                keys.lock().unwrap().push((i, key));
            });
        }
    });
    let mut keys = keys.into_inner().unwrap();
    keys.sort_by_key(|(i, _)| *i);
    keys.into_iter().map(|(_, k)| k).collect()
}

fn sign_all(keys: &[RsaPrivateKey], files: &[Vec<(String, String)>], per_key: usize, cores: usize) -> Vec<Vec<String>> {
    // ring signs about ten times faster than the rsa crate; the signatures are the same
    // (PKCS#1 v1.5 is deterministic).
    let pairs: Vec<ring::signature::RsaKeyPair> = keys
        .iter()
        .map(|k| ring::signature::RsaKeyPair::from_der(k.to_pkcs1_der().unwrap().as_bytes()).unwrap())
        .collect();
    let rng = ring::rand::SystemRandom::new();
    let jobs: Vec<(usize, usize)> = (0..keys.len())
        .flat_map(|k| (1..=per_key).map(move |s| (k, s)))
        .collect();
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Vec<String>>> = Mutex::new(vec![vec![String::new(); per_key]; keys.len()]);
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(k, sequence)) = jobs.get(j) else { break };
                let email = format!("bench{k}@example.org");
                let digest: [u8; 32] = hex::decode(&files[k][sequence % FILES_PER_KEY].1)
                    .unwrap()
                    .try_into()
                    .unwrap();
                let text = push_signed_text(&email, sequence as u64, CREATED_AT, Some(&digest));
                let mut sig = vec![0u8; pairs[k].public().modulus_len()];
                pairs[k]
                    .sign(&ring::signature::RSA_PKCS1_SHA256, &rng, text.as_bytes(), &mut sig)
                    .unwrap();
                let sig = B64.encode(sig);
                out.lock().unwrap()[k][sequence - 1] = sig;
            });
        }
    });
    out.into_inner().unwrap()
}

/// A `lifeboat serve` child on a temporary folder.
struct Server {
    child: Child,
    url: String,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let log_path =
            std::env::var("BENCH_SERVER_LOG_FILE").map_or_else(|_| tmp.path().join("server.log"), PathBuf::from);
        let log = std::fs::File::create(log_path).unwrap();
        let child = Command::new(lifeboat_bin())
            .arg("serve")
            .env("LIFEBOAT_SERVER_LISTEN", format!("127.0.0.1:{port}"))
            .env("LIFEBOAT_SERVER_PUBLIC_URL", &url)
            .env("LIFEBOAT_SERVER_DATA_DIR", &dir)
            .env("LIFEBOAT_BACKUPS_ALLOW_BACKUPS_AND_MIGRATION", "true")
            .env("LIFEBOAT_BACKUPS_PUSHES_PER_MINUTE", "100000000")
            .env(
                "LIFEBOAT_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start lifeboat serve");
        let server = Server {
            child,
            url,
            dir,
            _tmp: tmp,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{}/healthz", server.url)).call().is_err() {
            assert!(Instant::now() < deadline, "lifeboat did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn push_url(&self) -> String {
        format!("{}/api/lifeboat/v1/backups", self.url)
    }

    /// The confirmation tokens in the mails of the `.eml` outbox.
    fn wait_for_tokens(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let tokens = tokens_in(&self.dir.join("outbox"));
            if tokens.len() >= count {
                return tokens;
            }
            assert!(Instant::now() < deadline, "confirmation mails did not arrive");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn status_field(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn rss_kib(&self) -> u64 {
        self.status_field("VmRSS:")
    }

    fn hwm_kib(&self) -> u64 {
        self.status_field("VmHWM:")
    }

    /// Whether the server's key pool is making a key pair (its thread is named `key-pool`).
    fn generating_keys(&self) -> bool {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .map(|tasks| {
                tasks.flatten().any(|task| {
                    std::fs::read_to_string(task.path().join("comm")).is_ok_and(|name| name.trim() == "key-pool")
                })
            })
            .unwrap_or(false)
    }

    /// CPU seconds the server has used so far.
    fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&self.child.id().to_string())
    }
}

/// CPU seconds a process (a pid, or `self`) has used so far: user + system, from
/// /proc/PID/stat.
fn cpu_seconds_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Finds `token=<64 hex>` in every .eml under `dir`, undoing quoted-printable.
fn tokens_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut tokens = Vec::new();
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let text = text.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
        if let Some(at) = text.find("token=") {
            let token: String = text[at + 6..].chars().take(64).collect();
            if token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit()) {
                tokens.push(token);
            }
        }
    }
    tokens
}
