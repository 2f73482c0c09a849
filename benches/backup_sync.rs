//! Benchmark: the home pod's daily backup pass, and how soon a change is pushed. Not a
//! test: it measures and prints, and says whether the targets were met.
//!
//! `cargo bench --bench backup_sync` builds, in a temporary folder, a home pod with
//! `BENCH_ACCOUNTS` accounts (default 1000; RSA-2048 keys from a fixture set of 8, one
//! derived sealing key) and a real lifeboat holder served in-process on loopback
//! (backups on, push rate limit raised). The "day" between passes is compressed to
//! `BENCH_PASS_SECS` (default 60; `backups.push_interval`). Then:
//!
//! 1. the first pass pushes every account's backup (so each has an acknowledged push);
//! 2. the next pass with nothing changed, run directly ([`sync::run_due`]): accounts
//!    looked at, pushes, bytes pushed, wall time and the process's CPU time
//!    (getrusage, user + system, every thread — the idle holder included);
//! 3. the same pass once more, run by the worker as `serve` runs it (its loop,
//!    scheduling and concurrency included), measured the same way;
//! 4. with the worker running and `backups.push_debounce` = `BENCH_DEBOUNCE_SECS`
//!    (default 2): one account changes through `account::update`, and the delay until
//!    its push starts is measured (target: within the debounce).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeboat::account::{self, Account, AccountTx, ProfileData};
use lifeboat::backup::home::{self as sync, SyncEvent};
use lifeboat::config::{Config, Span};
use lifeboat::federation::signature::{private_key_to_pem, public_key_to_pem};
use lifeboat::pod::Pod;
use lifeboat::sealed::{KdfParams, SealingKey};
use lifeboat::store::Store;
use rsa::RsaPrivateKey;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// User + system CPU time of the whole process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we hand it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn report(what: &str, looks: u64, pushes: u64, bytes: u64, wall: Duration, cpu: Duration) {
    println!(
        "{what}: {looks} looks, {pushes} pushes, {bytes} bytes pushed, wall {:.3} s, CPU {:.3} s (user+system, whole process)",
        wall.as_secs_f64(),
        cpu.as_secs_f64()
    );
    println!(
        "  target (0 bytes, under 1 CPU-second): {}",
        if bytes == 0 && cpu < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let count = env_u64("BENCH_ACCOUNTS", 1000) as usize;
    let debounce = env_u64("BENCH_DEBOUNCE_SECS", 2);
    let pass = env_u64("BENCH_PASS_SECS", 60);

    // The holder: a real lifeboat with backups on, served in-process.
    let holder_dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let holder_url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config::default();
    config.server.data_dir = holder_dir.path().to_path_buf();
    config.server.public_url = Some(holder_url.clone());
    config.backups.allow_backups_and_migration = true;
    config.backups.pushes_per_minute = 1_000_000;
    let holder = Pod::new(config, Store::open(holder_dir.path()).unwrap()).unwrap();
    tokio::spawn(
        warp::serve(lifeboat::web::filter(
            holder.clone(),
            std::sync::Arc::new(lifeboat::services::Services::new(&holder)),
        ))
        .incoming(listener)
        .graceful(std::future::pending::<()>())
        .run(),
    );

    // The home pod.
    let home_dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.data_dir = home_dir.path().to_path_buf();
    config.server.public_url = Some("http://127.0.0.1:9".into());
    config.federation.allow_http = true;
    config.federation.allow_private_addresses = true;
    config.federation.seed_pods = vec![holder_url.clone()];
    config.backups.push_debounce = Span::secs(debounce);
    config.backups.push_interval = Span::secs(pass);
    config.backups.kdf_memory_kib = 19456;
    config.backups.kdf_time_cost = 2;
    let home = Pod::new(config, Store::open(home_dir.path()).unwrap()).unwrap();
    common::print_conditions(
        home_dir.path(),
        &[
            "key generation: accounts share 8 RSA-2048 keys (not 4096) made before the clock starts",
            "the Argon2id derivation: one sealing key, derived once, seals every account's backup",
            "TLS: the holder is served in-process on loopback over plain http (its CPU is counted)",
            "mail delivery (queued mails are never sent)",
        ],
    );

    let started = Instant::now();
    let keys: Vec<(String, String)> = (0..8)
        .map(|_| {
            let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
            (
                private_key_to_pem(&key).unwrap(),
                public_key_to_pem(&key.to_public_key()),
            )
        })
        .collect();
    let sealing = SealingKey::derive(
        "benchmark pass phrase that is long enough",
        KdfParams {
            memory_kib: 19456,
            time_cost: 2,
        },
    )
    .unwrap();
    let accounts: Vec<Account> = (0..count)
        .map(|i| {
            let (private_pem, public_pem) = keys[i % keys.len()].clone();
            lifeboat::testing::account(&format!("u{i:05}"))
                .guid(&format!("benchguid{i:012}"))
                .email(&format!("u{i:05}@example.org"))
                .with(|a| {
                    a.private_key_pem = private_pem;
                    a.public_key_pem = public_pem;
                    a.profile = ProfileData {
                        first_name: Some(format!("User {i}")),
                        bio: Some("Benchmarks their backups daily. ".repeat(8)),
                        searchable: true,
                        ..Default::default()
                    };
                    a.aspects = vec!["Family".into(), "Friends".into(), "Work".into()];
                    a.followed_tags = vec!["diaspora".into(), "backups".into()];
                    a.sealing_key = Some(sealing.clone());
                    a.backups_opted_out = false;
                })
                .build()
        })
        .collect();
    for chunk in accounts.chunks(100) {
        home.store
            .transaction(|tx| {
                for a in chunk {
                    tx.put_account(None, a)?;
                }
                Ok(())
            })
            .unwrap();
    }
    home.store.durable().await.unwrap();
    println!(
        "setup: {count} accounts (8 RSA-2048 keys), holder at {holder_url}, in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let home_sync = lifeboat::backup::home::BackupSync::new(home.signals.backups.clone());
    sync::refresh_pods(&home).await.unwrap();
    let now = account::now_unix();
    let started = Instant::now();
    let first = sync::run_due(&home, &home_sync, now).await.unwrap();
    println!(
        "first pass: {} looks, {} pushes, {} bytes pushed, {:.1} s",
        first.looks,
        first.pushes,
        first.bytes_pushed,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(first.pushes as usize, count, "every account pushed once");

    // The next pass, nothing changed.
    let cpu_before = cpu_time();
    let started = Instant::now();
    let daily = sync::run_due(&home, &home_sync, now + pass + 1).await.unwrap();
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    report(
        "next pass, nothing changed (run directly)",
        daily.looks,
        daily.pushes,
        daily.bytes_pushed,
        wall,
        cpu,
    );

    // The same pass, run by the worker itself when it is due.
    let mut events = home_sync.subscribe();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(sync::run(home.clone(), home_sync.clone(), stopped));
    let due = now + 2 * pass + 1;
    let until_due = Duration::from_secs(due).saturating_sub(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap(),
    );
    println!("waiting {:.0} s for the worker's pass", until_due.as_secs_f64());
    tokio::time::sleep(until_due.saturating_sub(Duration::from_millis(500))).await;
    let bytes_before = home_sync.bytes_pushed();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let (mut looks, mut pushes) = (0u64, 0u64);
    while looks < count as u64 {
        match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
            Ok(Ok(SyncEvent::Looked { report, .. })) => {
                looks += report.looks;
                pushes += report.pushes;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("events: {e}"),
            Err(_) => panic!("the worker's pass did not finish ({looks} looks)"),
        }
    }
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    let bytes = home_sync.bytes_pushed() - bytes_before;
    report(
        "next pass, nothing changed (the worker)",
        looks,
        pushes,
        bytes,
        wall,
        cpu,
    );

    // One account changes: when does its push start?
    let changed_at = Instant::now();
    account::update(&home, "u00042", |a| {
        a.profile.location = Some("Somewhere new".into());
        Ok(())
    })
    .await
    .unwrap();
    let pushed = tokio::time::timeout(Duration::from_secs(debounce + 30), async {
        loop {
            match events.recv().await {
                Ok(SyncEvent::PushStarted { username, at, .. }) if username == "u00042" => return at,
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("the changed account was pushed");
    let delay = pushed.duration_since(changed_at);
    println!(
        "changed account: push started {:.2} s after the change (debounce {debounce} s): {}",
        delay.as_secs_f64(),
        if delay <= Duration::from_secs(debounce) {
            "within the debounce"
        } else {
            "NOT within the debounce"
        }
    );
    let _ = stop.send(true);
    let _ = worker.await;
    let _: Arc<Pod> = holder;
}
