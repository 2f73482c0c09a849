//! How fast one AccountMigration reaches many pods: 1,000 loopback receivers, of which
//! 50 refuse connections and 50 answer only after 5 s, fed through the real outbox and
//! the real outbound client. Prints the time of the first pass (every delivery tried
//! once) and the process's memory growth; then checks that failures are scheduled for
//! retry by their backoff. The receivers run in a child process (this binary, started
//! again with `--receivers`), so the memory figure is the sender's alone. Run with
//! `cargo bench --bench migration_fanout`.
//!
//! What is sent is a real public Magic Envelope carrying an AccountMigration, as a
//! restore makes it: the new identity's profile (names, bio, picture URLs, tags) signed
//! by a fresh RSA-4096 key, the envelope by the old identity's RSA-4096 key. Signing is
//! done once before the clock starts (a restore signs once too); the receivers read the
//! whole body but do not verify it.

mod common;

use std::time::{Duration, Instant};

use lifeboat::delivery::{DeliveryState, NewDelivery, Outbox, OutboxPolicy};
use lifeboat::federation::entities::{AccountMigration, Profile};
use lifeboat::federation::envelope::{MagicEnvelope, CONTENT_TYPE};
use lifeboat::http_client::{ClientPolicy, HttpClient};
use lifeboat::retry::Backoff;
use lifeboat::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FAST: usize = 900;
const SLOW: usize = 50;
const REFUSING: usize = 50;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn receiver(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                tokio::time::sleep(delay).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    origin
}

/// The child: starts the receivers, prints their origins, serves until stdin closes.
async fn serve_receivers() {
    let mut origins = Vec::new();
    for _ in 0..FAST {
        origins.push(receiver(Duration::ZERO).await);
    }
    for _ in 0..SLOW {
        origins.push(receiver(Duration::from_secs(5)).await);
    }
    for _ in 0..REFUSING {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        origins.push(format!("http://{}", listener.local_addr().expect("addr")));
        drop(listener);
    }
    println!("{}", origins.join(" "));
    let mut stdin = tokio::io::stdin();
    let mut byte = [0u8; 1];
    let _ = stdin.read(&mut byte).await;
}

/// The AccountMigration a restore sends for alice@old-pod.example, now
/// alice@new-pod.example: signed by a new and an old RSA-4096 key, as the real one is.
fn signed_migration() -> String {
    let old_key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 4096).expect("old key");
    let new_key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 4096).expect("new key");
    let picture = "https://new-pod.example/avatars/0123456789abcdef0123456789abcdef";
    let profile = Profile {
        author: "alice@new-pod.example".into(),
        edited_at: Some("2026-01-01T12:00:00Z".into()),
        full_name: Some("Alice Liddell".into()),
        first_name: Some("Alice".into()),
        last_name: Some("Liddell".into()),
        image_url: Some(picture.into()),
        image_url_medium: Some(picture.into()),
        image_url_small: Some(picture.into()),
        bio: Some(
            "Curiouser and curiouser! Beekeeper, reader, occasional photographer of clouds over the Saône.".into(),
        ),
        location: Some("Lyon".into()),
        searchable: Some(true),
        public: Some(false),
        nsfw: Some(false),
        tag_string: Some("#bees #books #lyon #photography #clouds".into()),
        ..Default::default()
    };
    let migration = AccountMigration::new_signed("alice@old-pod.example", profile, &new_key);
    let envelope = MagicEnvelope::sign(&migration.to_xml(), "alice@old-pod.example", &old_key);
    let xml = envelope.to_xml();
    envelope
        .verify(&old_key.to_public_key())
        .expect("the envelope verifies");
    migration
        .verify_signature(&new_key.to_public_key())
        .expect("the entity verifies");
    MagicEnvelope::parse(&xml).expect("the envelope parses");
    xml
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--receivers") {
        return serve_receivers().await;
    }
    let mut child = std::process::Command::new(std::env::current_exe().expect("own path"))
        .arg("--receivers")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the receivers");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("origins");
    let origins: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    assert_eq!(origins.len(), FAST + SLOW + REFUSING);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).unwrap_or_else(|_| panic!("store"));
    let http = HttpClient::new(ClientPolicy {
        allow_http: true,
        allow_private_addresses: true,
        user_agent: "lifeboat-bench".into(),
        request_timeout: Duration::from_secs(30),
        ..ClientPolicy::default()
    });
    let outbox = Outbox::new(
        store.clone(),
        http,
        OutboxPolicy {
            concurrency: 32,
            per_pod_per_minute: 120,
            backoff: Backoff {
                first: Duration::from_secs(60),
                max: Duration::from_secs(6 * 3600),
                give_up_after: Duration::from_secs(30 * 86400),
            },
            allow_http: true,
        },
        lifeboat::pod::Signal::default(),
    );
    let envelope = bytes::Bytes::from(signed_migration().into_bytes());
    common::print_conditions(
        dir.path(),
        &[
            "signing the AccountMigration (done once, before the clock starts)",
            "TLS: the receivers speak plain http on loopback, so no handshakes",
            "DNS: every receiver is an IP address",
            "the receivers' verification: they read the body and answer 202",
        ],
    );
    println!(
        "message:       a signed AccountMigration Magic Envelope, {} bytes, to each of {} pods",
        envelope.len(),
        origins.len()
    );
    let deliveries: Vec<NewDelivery> = origins
        .iter()
        .map(|origin| NewDelivery {
            topic: "move:bench".into(),
            origin: origin.clone(),
            path: "/receive/public".into(),
            content_type: CONTENT_TYPE.into(),
            body: envelope.clone(),
        })
        .collect();
    let rss_before = rss_kib();
    let started = Instant::now();
    outbox.enqueue(&deliveries).await.expect("enqueue");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(outbox.clone().run(stopped));
    let mut peak = rss_before;
    loop {
        let all = outbox.topic("move:bench").expect("topic");
        peak = peak.max(rss_kib());
        if all.iter().all(|d| d.attempts >= 1) {
            let first_pass = started.elapsed();
            let delivered = all
                .iter()
                .filter(|d| matches!(d.state, DeliveryState::Delivered { .. }))
                .count();
            let retrying: Vec<_> = all.iter().filter(|d| d.state == DeliveryState::Pending).collect();
            let now = lifeboat::account::now_unix();
            let backoff_ok = retrying.iter().all(|d| d.next_attempt_unix >= now + 50);
            println!("receivers: {FAST} fast, {SLOW} answering after 5 s, {REFUSING} refusing connections");
            println!("first pass: {:.2} s (target: at most 15 s)", first_pass.as_secs_f64());
            println!("delivered: {delivered}; waiting for retry: {}", retrying.len());
            println!("failures scheduled by their backoff (first retry ~60 s later): {backoff_ok}");
            println!(
                "memory: {} KiB before, {} KiB peak, growth {:.1} MiB (target: under 20 MiB)",
                rss_before,
                peak,
                (peak.saturating_sub(rss_before)) as f64 / 1024.0
            );
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            println!("first pass did not finish within 120 s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let _ = worker.await;
    drop(child.stdin.take());
    let _ = child.wait();
}
