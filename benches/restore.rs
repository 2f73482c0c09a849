//! Benchmark: restoring an archive with 10,000 contacts, beyond the Argon2 derivation,
//! the old pod's liveness check and the key generation (docs/restore.md; issue 8 asks for at
//! most 200 ms). Not a test: it asserts nothing about time, it measures.
//!
//! `cargo bench --bench restore` builds a 10,000-contact archive (each contact with a
//! 4096-bit public key, as diaspora*'s exports carry them, and the fixture's posts),
//! seals it, and for each round pushes it to a holder on a temporary store, mails a
//! link and opens it with the pass phrase (all untimed: the KDF runs there). A pooled
//! key pair is put in the key pool first, so no key is generated in the timed part.
//! Timed:
//! - `read_archive` of the decrypted JSON (what `unlock` does after the KDF);
//! - `restore::create`: `migration::prepare` (password hash, the AccountMigration
//!   signed with the new and the old key, recipients and deliveries) and the one unit
//!   of work (token, slot, account, move, outbox deliveries), made durable.
//!   `prepare` is also timed on its own (on a throwaway arrival) for the breakdown.
//!
//! The password hash in `prepare` is Argon2 too (Argon2id, 19 MiB, 2 passes); it is
//! timed on its own and shown, so the figure "beyond Argon2" can be read both ways.
//!
//! Not measured (and printed so at the start): the Argon2 derivation that opens the
//! backup; the liveness check `unlock` makes (the old identity's WebFinger and hCard:
//! here `old-pod.invalid`, a name that does not resolve, while a real pod that is gone can take
//! up to `federation.request_timeout` to fail); the key generation; pages, HTTP and
//! mail; the delivery of the AccountMigration (it is only queued).
//!
//! Environment: `BENCH_ROUNDS` (default 5), `BENCH_PODS` (how many pods the contacts
//! live on, default "500,2000,10000": a typical spread, as many as `known_pods` holds,
//! and the worst case, one pod each).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use lifeboat::account::archive::{read_archive, write_archive};
use lifeboat::account::keys::KeyPair;
use lifeboat::account::{Account, ContactData, ProfileData};
use lifeboat::arrivals::restore::{self, Create, Unlock};
use lifeboat::backup::push::push_signed_text;
use lifeboat::config::Config;
use lifeboat::federation::signature::{self, private_key_to_pem, public_key_to_pem};
use lifeboat::passphrase::Passphrase;
use lifeboat::pod::Pod;
use lifeboat::sealed::{self, KdfParams, SealingKey};
use lifeboat::store::{decode, encode, Store, Tree};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CONTACTS: usize = 10_000;
const PASSPHRASE: &str = "benchmark pass phrase that is long enough";

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn archive_with_contacts(old_key: &RsaPrivateKey, contact_keys: &[String], pods: usize) -> Vec<u8> {
    let fixture: Value = serde_json::from_str(include_str!("../tests/fixtures/diaspora-export.json")).unwrap();
    let mut user = serde_json::Map::new();
    for section in ["posts", "relayables", "post_subscriptions"] {
        user.insert(section.into(), fixture["user"][section].clone());
    }
    let aspects = ["Family", "Friends", "Work", "Acquaintances"];
    let contacts = (0..CONTACTS)
        .map(|i| ContactData {
            diaspora_id: format!("friend{i}@pod{}.example", i % pods),
            person_guid: Some(format!("{i:032x}")),
            person_name: Some(format!("Friend Number {i}")),
            public_key: Some(contact_keys[i % contact_keys.len()].clone()),
            sharing: i % 3 != 0,
            receiving: true,
            aspects: vec![aspects[i % 4].to_string(), aspects[(i / 4) % 4].to_string()],
        })
        .collect();
    let account = lifeboat::testing::account("alice")
        .guid("0123456789abcdef0123456789abcdef")
        .email("alice@example.org")
        .with(|a| {
            a.private_key_pem = private_key_to_pem(old_key).unwrap();
            a.public_key_pem = public_key_to_pem(&old_key.to_public_key());
            a.created_unix = 1_700_000_000;
            a.profile = ProfileData {
                first_name: Some("Alice".into()),
                last_name: Some("Liddell".into()),
                searchable: true,
                ..Default::default()
            };
            a.aspects = aspects.iter().map(|a| a.to_string()).collect();
            a.contacts = contacts;
            a.followed_tags = (0..50).map(|i| format!("tag{i}")).collect();
            a.blocks = (0..100).map(|i| format!("spammer{i}@spam.example")).collect();
            a.verbatim_json = json!({"user": user, "top": {"others_data": fixture["others_data"].clone()}}).to_string();
            a.backups_opted_out = false;
        })
        .build();
    write_archive(&account, "old-pod.invalid", "https://old-pod.invalid").unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(name: &str, samples: &[Duration]) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().map(|d| ms(*d)).collect();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = sorted[sorted.len() / 2];
    println!(
        "  {name:<44} median {median:>8.1} ms   min {:>8.1}   max {:>8.1}",
        sorted[0],
        sorted[sorted.len() - 1]
    );
    median
}

fn main() {
    if let Ok(times) = std::env::var("BENCH_PROFILE_READ") {
        // For a profiler: read_archive only, many times.
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let contact = public_key_to_pem(
            &RsaPrivateKey::new(&mut rand::rngs::OsRng, 4096)
                .unwrap()
                .to_public_key(),
        );
        let archive = archive_with_contacts(&key, &[contact], 500);
        let started = Instant::now();
        for _ in 0..times.parse::<usize>().unwrap() {
            std::hint::black_box(read_archive(&archive, 256 << 20).unwrap());
        }
        println!("{:.1} ms", ms(started.elapsed()));
        return;
    }
    let rounds: usize = env("BENCH_ROUNDS", "5").parse().unwrap();
    common::print_conditions(
        &std::env::temp_dir(),
        &[
            "the Argon2id derivation that opens the backup (unlock's KDF, run untimed)",
            "the liveness check in unlock (WebFinger + hCard of the old identity): untimed, and here \
             against old-pod.invalid, a name that does not resolve; a real pod that is gone can take \
             up to federation.request_timeout (30 s by default) to fail",
            "generating the new RSA-4096 key pair (taken from the pre-filled pool)",
            "the pages, HTTP, and the mails",
            "delivering the AccountMigration (queued in the outbox only)",
        ],
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("generating keys (untimed)…");
    let old_key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 4096).unwrap();
    let contact_keys: Vec<String> = (0..4)
        .map(|_| {
            public_key_to_pem(
                &RsaPrivateKey::new(&mut rand::rngs::OsRng, 4096)
                    .unwrap()
                    .to_public_key(),
            )
        })
        .collect();
    let new_key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 4096).unwrap();
    let pooled = KeyPair {
        bits: 4096,
        private_pem: private_key_to_pem(&new_key).unwrap(),
        public_pem: public_key_to_pem(&new_key.to_public_key()),
    };
    let sealing = SealingKey::derive(
        PASSPHRASE,
        KdfParams {
            memory_kib: 19456,
            time_cost: 2,
        },
    )
    .unwrap();
    let hash_samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            lifeboat::account::credentials::hash_password("a long enough password").unwrap();
            started.elapsed()
        })
        .collect();

    breakdown(&old_key, &contact_keys, &new_key);

    for pods in env("BENCH_PODS", "500,2000,10000").split(',') {
        let pods: usize = pods.trim().parse().unwrap();
        let archive = archive_with_contacts(&old_key, &contact_keys, pods);
        let lfbk = sealed::seal(&archive, &sealing);
        println!(
            "\n{CONTACTS} contacts on {pods} pods: archive {:.1} MiB, sealed {:.1} MiB",
            archive.len() as f64 / 1048576.0,
            lfbk.len() as f64 / 1048576.0
        );
        let (read, prepare, create, deliveries) = runtime.block_on(run(rounds, &archive, &lfbk, &old_key, &pooled));
        let read = stats("read_archive (JSON, schema, checks)", &read);
        let create = stats("restore::create (prepare + unit of work)", &create);
        stats("  of which migration::prepare (measured apart)", &prepare);
        let hash = stats("  of which the password hash (Argon2id)", &hash_samples);
        println!("  deliveries queued per restore: {deliveries}");
        println!(
            "  total beyond the KDF, the liveness check and key generation: {:.1} ms ({:.1} ms without the password hash)",
            read + create,
            read + create - hash
        );
    }
}

async fn run(
    rounds: usize,
    archive: &[u8],
    lfbk: &[u8],
    old_key: &RsaPrivateKey,
    pooled: &KeyPair,
) -> (Vec<Duration>, Vec<Duration>, Vec<Duration>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.public_url = Some("https://new-pod.example".into());
    config.backups.allow_backups_and_migration = true;
    config.backups.restore_links_per_day = 24;
    config.accounts.key_bits = 4096;
    config.federation.request_timeout = lifeboat::config::Span::secs(5);
    let store = Store::open(dir.path()).unwrap();
    let pod: Arc<Pod> = Pod::new(config, store).unwrap();
    let services = lifeboat::services::Services::new(&pod);
    let (mut reads, mut prepares, mut creates, mut deliveries) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let pem = public_key_to_pem(&old_key.to_public_key());
    let sha: [u8; 32] = Sha256::digest(lfbk).into();
    for round in 0..rounds {
        // Untimed: the slot, the link, the key pool, the pass phrase (KDF).
        let email = format!("alice{round}@example.org");
        let text = push_signed_text(&email, 1, "2026-01-01T00:00:00Z", Some(&sha));
        let body = json!({"version": 1, "email": email, "public_key": pem, "sequence": 1,
            "created_at": "2026-01-01T00:00:00Z", "backup": B64.encode(lfbk),
            "signature": signature::sign_base64(old_key, text.as_bytes())});
        services.holder.push(body.to_string().as_bytes()).await.unwrap();
        assert!(restore::send_link(&pod, &services.restores, &email).await.unwrap());
        let mail = pod
            .store
            .tree(Tree::MailQueue)
            .iter()
            .values()
            .map(|v| decode::<lifeboat::mail::QueuedMail>(&v.unwrap()).unwrap().mail)
            .filter(|m| m.to == email && m.subject.contains("Restore"))
            .last()
            .unwrap();
        let at = mail.text.find("token=").unwrap() + 6;
        let token = mail.text[at..at + 43].to_string();
        for _ in 0..2 {
            let id = pod.store.generate_id().unwrap();
            pod.store
                .tree(Tree::KeyPool)
                .insert(id.to_be_bytes(), encode(pooled))
                .unwrap();
        }
        match restore::unlock(&pod, &services.restores, &token, Passphrase::new(PASSPHRASE.into()))
            .await
            .unwrap()
        {
            Unlock::Ready(_) => {}
            other => panic!("{other:?}"),
        }

        // Timed: what unlock does after the KDF…
        let started = Instant::now();
        let parsed = read_archive(archive, 256 * 1024 * 1024).unwrap();
        reads.push(started.elapsed());
        // …`prepare` alone, for the breakdown (its result is not written)…
        let started = Instant::now();
        let arrival = lifeboat::arrivals::Arrival {
            archive: parsed,
            username: format!("probe{round}"),
            password: "a long enough password".into(),
            email: format!("probe{round}@example.org"),
            email_confirmed: true,
        };
        let prepared = lifeboat::arrivals::prepare(&pod, arrival).await.unwrap();
        prepares.push(started.elapsed());
        drop(prepared);
        // …and the account step.
        let started = Instant::now();
        let created = restore::create(
            &pod,
            &services.restores,
            &token,
            &format!("alice{round}"),
            "a long enough password",
        )
        .await
        .unwrap();
        creates.push(started.elapsed());
        let Create::Done(created) = created else {
            panic!("reopen")
        };
        assert_eq!(created.account.contacts.len(), CONTACTS);
        deliveries = created.announced_to;
    }
    (reads, prepares, creates, deliveries)
}

/// Pieces of the work, timed on their own, to see where the time goes.
fn breakdown(old_key: &RsaPrivateKey, contact_keys: &[String], new_key: &RsaPrivateKey) {
    println!("\nbreakdown (each piece alone, median of 5):");
    let median = |f: &mut dyn FnMut()| {
        let mut samples: Vec<Duration> = (0..5)
            .map(|_| {
                let started = Instant::now();
                f();
                started.elapsed()
            })
            .collect();
        samples.sort();
        ms(samples[2])
    };
    let archive = archive_with_contacts(old_key, contact_keys, 500);
    println!(
        "  serde_json::from_slice::<Value> (10 MiB)     {:>8.1} ms",
        median(&mut || {
            let _: Value = serde_json::from_slice(&archive).unwrap();
        })
    );
    println!(
        "  read_archive                                  {:>8.1} ms",
        median(&mut || {
            read_archive(&archive, 256 << 20).unwrap();
        })
    );
    println!(
        "  10,000 × public key PEM parse + re-encode     {:>8.1} ms",
        median(&mut || {
            for i in 0..CONTACTS {
                let key = signature::public_key_from_pem(&contact_keys[i % contact_keys.len()]).unwrap();
                std::hint::black_box(public_key_to_pem(&key));
            }
        })
    );
    println!(
        "  10,000 × canonical_public_key_pem (DER only)  {:>8.1} ms",
        median(&mut || {
            for i in 0..CONTACTS {
                std::hint::black_box(
                    signature::canonical_public_key_pem(&contact_keys[i % contact_keys.len()]).unwrap(),
                );
            }
        })
    );
    println!(
        "  10,000 × public key PEM parse only            {:>8.1} ms",
        median(&mut || {
            for i in 0..CONTACTS {
                std::hint::black_box(signature::public_key_from_pem(&contact_keys[i % contact_keys.len()]).unwrap());
            }
        })
    );
    println!(
        "  RSA-4096 signature::sign (ring when it can)   {:>8.1} ms",
        median(&mut || {
            std::hint::black_box(signature::sign(new_key, b"AccountMigration:a@b:c@d"));
        })
    );
    {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let der = new_key.to_pkcs1_der().unwrap();
        println!(
            "  RSA-4096 signature (ring, key parse + sign)   {:>8.1} ms",
            median(&mut || {
                let pair = ring::rsa::KeyPair::from_der(der.as_bytes()).unwrap();
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    b"AccountMigration:a@b:c@d",
                    &mut sig,
                )
                .unwrap();
                std::hint::black_box(sig);
            })
        );
    }
    let pem = private_key_to_pem(old_key).unwrap();
    println!(
        "  RSA-4096 private key PEM parse                {:>8.1} ms",
        median(&mut || {
            std::hint::black_box(signature::private_key_from_pem(&pem).unwrap());
        })
    );
    let parsed = read_archive(&archive, 256 << 20).unwrap();
    let mut account = unreachable_account();
    account.contacts = parsed.contacts.clone();
    account.verbatim_json = parsed.verbatim_json.clone();
    account.aspects = parsed.aspects.clone();
    println!(
        "  ImportedArchive clone                         {:>8.1} ms",
        median(&mut || {
            std::hint::black_box(parsed.clone());
        })
    );
    {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = runtime.block_on(async { Store::open(dir.path()).unwrap() });
        let mut n = 0u32;
        println!(
            "  unit of work writing that account + durable   {:>8.1} ms",
            median(&mut || {
                n += 1;
                let key = format!("account{n}");
                store
                    .transaction(|tx| tx.put(Tree::Accounts, key.as_bytes(), &account))
                    .unwrap();
                runtime.block_on(store.durable()).unwrap();
            })
        );
    }
    println!(
        "  store encode of the account (bincode)         {:>8.1} ms   ({:.1} MiB)",
        median(&mut || {
            std::hint::black_box(encode(&account));
        }),
        encode(&account).len() as f64 / 1048576.0
    );
}

fn unreachable_account() -> Account {
    lifeboat::testing::account("x")
        .guid("0123456789abcdef0123456789abcdef")
        .email("x@example.org")
        .with(|a| {
            a.private_key_pem = String::new();
            a.public_key_pem = String::new();
            a.aspects = Vec::new();
            a.verbatim_json = String::new();
            a.backups_opted_out = false;
        })
        .build()
}
