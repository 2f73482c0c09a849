//! The backup worker against real holders served in-process (a lifeboat with backups
//! on) and scripted ones (any status on demand), with time passed in: nudges and the
//! debounce, skipping unchanged accounts, the daily pass, 409 catch-up, 507 retried
//! with backoff and moved only after the failing period, 403 moving at once, 410,
//! farewell deletes of a closed account, sequences spent before sending, waiting for a
//! pod, and the warning mail.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use rsa::RsaPrivateKey;
use serde_json::json;

use super::*;
use crate::account::{AccountTx, ProfileData};

use crate::mail::MailQueueStore;
use crate::sealed::{KdfParams, SealingKey};
use crate::store::Store;
use warp::Filter;

fn rsa_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
}

fn sealing_key() -> SealingKey {
    static KEY: OnceLock<SealingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SealingKey::derive(
            "violet tractor humming seventeen lanterns",
            KdfParams {
                memory_kib: 19456,
                time_cost: 2,
            },
        )
        .unwrap()
    })
    .clone()
}

fn account(username: &str) -> Account {
    crate::testing::account(username)
        .key(rsa_key())
        .profile(ProfileData {
            first_name: Some("Ada".into()),
            searchable: true,
            ..Default::default()
        })
        .followed_tags(&["rust"])
        .sealing_key(sealing_key())
        .build()
}

/// Writes an account as the account code does (the nudge comes with it).
fn put(pod: &Pod, account: &Account) {
    pod.store
        .transaction(|tx| {
            let previous = AccountTx::account(tx, &account.username)?;
            tx.put_account(previous.as_ref(), account)
        })
        .unwrap();
}

fn change(pod: &Pod, username: &str, edit: impl Fn(&mut Account)) {
    let mut a = AccountStore::account(&pod.store, username).unwrap().unwrap();
    edit(&mut a);
    put(pod, &a);
}

fn state(pod: &Pod, username: &str) -> SyncState {
    pod.store.sync_state(username).unwrap().unwrap()
}

fn mails(pod: &Pod) -> Vec<Mail> {
    pod.store
        .queued_mails()
        .unwrap()
        .into_iter()
        .map(|(_, queued)| queued.mail)
        .collect()
}

struct Home {
    pod: Arc<Pod>,
    _dir: tempfile::TempDir,
}

/// A home pod (nothing served: its workers are driven by hand) with these seed pods.
fn home(seeds: &[&str], tweak: impl FnOnce(&mut Config)) -> Home {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.public_url = Some("http://127.0.0.1:9".into());
    config.federation.allow_http = true;
    config.federation.allow_private_addresses = true;
    config.federation.seed_pods = seeds.iter().map(|s| s.to_string()).collect();
    config.backups.kdf_memory_kib = 19456;
    config.backups.kdf_time_cost = 2;
    tweak(&mut config);
    let store = Store::open(dir.path()).unwrap();
    let pod = Pod::new(config, store).unwrap();
    pods::ensure_vetted(&pod.store, &pod.config).unwrap();
    Home { pod, _dir: dir }
}

async fn check_all_pods(pod: &Arc<Pod>) {
    refresh_pods(pod).await.unwrap();
}

/// A real lifeboat holder, served in-process.
struct Holder {
    _pod: Arc<Pod>,
    services: Arc<crate::services::Services>,
    url: String,
    _dir: tempfile::TempDir,
}

async fn real_holder() -> Holder {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.public_url = Some(url.clone());
    config.backups.allow_backups_and_migration = true;
    let pod = Pod::new(config, Store::open(dir.path()).unwrap()).unwrap();
    let services = Arc::new(crate::services::Services::new(&pod));
    tokio::spawn(
        warp::serve(crate::web::filter(pod.clone(), services.clone()))
            .incoming(listener)
            .graceful(std::future::pending::<()>())
            .run(),
    );
    Holder {
        _pod: pod,
        services,
        url,
        _dir: dir,
    }
}

impl Holder {
    /// (sequence, holds a backup) of the slot for `email`.
    fn slot(&self, email: &str) -> Option<(u64, bool)> {
        self.services
            .holder
            .list()
            .unwrap()
            .into_iter()
            .find(|s| s.email == email)
            .map(|s| (s.sequence, s.holds_backup))
    }
}

/// A holder that answers what it is told to, and keeps what it received.
#[derive(Default)]
struct Script {
    accepts: bool,
    /// Answers to backup pushes, in order; then `otherwise`, else 200 stored.
    pushes: VecDeque<(u16, Value)>,
    otherwise: Option<(u16, Value)>,
    /// The answer to deletes (default 200 deleted).
    deletes: Option<(u16, Value)>,
    status: Option<(u16, Value)>,
    received: Vec<Value>,
}

struct Fake {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl Fake {
    fn with<R>(&self, f: impl FnOnce(&mut Script) -> R) -> R {
        f(&mut self.script.lock().unwrap())
    }

    fn backups_received(&self) -> Vec<Value> {
        self.with(|s| s.received.iter().filter(|v| !v["backup"].is_null()).cloned().collect())
    }

    fn deletes_received(&self) -> Vec<Value> {
        self.with(|s| s.received.iter().filter(|v| v["backup"].is_null()).cloned().collect())
    }
}

async fn fake(accepts: bool) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let script = Arc::new(Mutex::new(Script {
        accepts,
        ..Default::default()
    }));
    let (shared, base) = (script.clone(), url.clone());
    let filter = warp::any()
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::body::bytes())
        .map(
            move |method: warp::http::Method, path: warp::path::FullPath, body: bytes::Bytes| {
                let mut s = shared.lock().unwrap();
                let (status, answer) = match (method.as_str(), path.as_str()) {
                    ("GET", "/.well-known/nodeinfo") => (
                        200,
                        json!({"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": format!("{base}/nodeinfo/2.1")}]}),
                    ),
                    ("GET", "/nodeinfo/2.1") => (200, json!({"metadata": {"acceptsBackups": s.accepts}})),
                    ("POST", "/api/lifeboat/v1/backups") => {
                        let push: Value = serde_json::from_slice(&body).unwrap();
                        s.received.push(push.clone());
                        if push["backup"].is_null() {
                            s.deletes
                                .clone()
                                .unwrap_or((200, json!({"status": "deleted", "sequence": push["sequence"]})))
                        } else {
                            s.pushes.pop_front().or(s.otherwise.clone()).unwrap_or((
                                200,
                                json!({"status": "stored", "sequence": push["sequence"]}),
                            ))
                        }
                    }
                    ("POST", "/api/lifeboat/v1/backups/status") => {
                        s.status.clone().unwrap_or((404, json!({"error": "no such slot"})))
                    }
                    _ => (404, json!({"error": "not here"})),
                };
                warp::http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(answer.to_string())
                    .unwrap()
            },
        );
    tokio::spawn(
        warp::serve(filter)
            .incoming(listener)
            .graceful(std::future::pending::<()>())
            .run(),
    );
    Fake { url, script }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_account_write_nudges_and_a_change_waits_for_the_debounce() {
    let holder = real_holder().await;
    let home = home(&[&holder.url], |c| {
        c.backups.push_debounce = crate::config::Span::secs(60)
    });
    let pod = &home.pod;
    check_all_pods(pod).await;
    let mut a = account("ada");
    a.email_confirmed = false;
    put(pod, &a);
    let nudge = pod.store.nudges().unwrap();
    assert_eq!(nudge.len(), 1);
    assert!(nudge[0].1.changed_unix.is_some() && !nudge[0].1.now);

    // Not confirmed: looked at, nothing sent.
    let now = now_unix();
    let report = run_due(pod, &BackupSync::default(), now).await.unwrap();
    assert_eq!((report.looks, report.pushes), (1, 0));
    assert_eq!(state(pod, "ada").slot, SlotState::Off);
    assert!(holder.slot("ada@example.org").is_none());

    // Confirmed: the first push is queued at once, no debounce.
    change(pod, "ada", |a| a.email_confirmed = true);
    let report = run_due(pod, &BackupSync::default(), now).await.unwrap();
    assert_eq!(report.pushes, 1);
    assert_eq!(holder.slot("ada@example.org"), Some((1, true)));
    let mail = mails(pod);
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0]
            .subject
            .starts_with("Your encrypted backup is kept at 127.0.0.1:"),
        "{:?}",
        mail[0].subject
    );
    assert!(mail[0].text.contains(&format!("{}/restore_backup", holder.url)));
    assert!(!mail[0].text.contains("violet tractor"), "never the pass phrase");

    // A later change waits for the debounce; changes inside it go in one push.
    change(pod, "ada", |a| a.profile.first_name = Some("Ada L.".into()));
    change(pod, "ada", |a| a.profile.last_name = Some("Lovelace".into()));
    let changed = pod.store.nudges().unwrap()[0].1.changed_unix.unwrap();
    assert_eq!(
        run_due(pod, &BackupSync::default(), changed + 59).await.unwrap().pushes,
        0,
        "not before the debounce"
    );
    assert_eq!(state(pod, "ada").push_due, Some(changed + 60));
    assert_eq!(pod.store.next_due().unwrap(), Some(changed + 60));
    assert_eq!(
        run_due(pod, &BackupSync::default(), changed + 60).await.unwrap().pushes,
        1
    );
    assert_eq!(holder.slot("ada@example.org"), Some((2, true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_account_is_skipped_and_a_new_pass_phrase_is_pushed() {
    let holder = real_holder().await;
    let home = home(&[&holder.url], |_| {});
    let pod = &home.pod;
    check_all_pods(pod).await;
    put(pod, &account("bea"));
    let now = now_unix();
    assert_eq!(run_due(pod, &BackupSync::default(), now).await.unwrap().pushes, 1);
    for day in 1..=3 {
        let report = run_due(pod, &BackupSync::default(), now + day * 86400).await.unwrap();
        assert_eq!(
            (report.pushes, report.skipped, report.bytes_pushed),
            (0, 1, 0),
            "day {day}"
        );
    }
    assert_eq!(holder.slot("bea@example.org"), Some((1, true)));
    // A pass-phrase change is not a move: the same pod, the next push replaces the backup.
    let fresh = SealingKey::derive(
        "another long pass phrase for backups",
        KdfParams {
            memory_kib: 19456,
            time_cost: 2,
        },
    )
    .unwrap();
    change(pod, "bea", |a| a.sealing_key = Some(fresh.clone()));
    let report = run_due(pod, &BackupSync::default(), now + 4 * 86400).await.unwrap();
    assert_eq!(report.pushes, 1);
    assert_eq!(holder.slot("bea@example.org"), Some((2, true)));
    assert!(state(pod, "bea").left_behind.is_empty(), "nothing to delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_with_a_higher_held_sequence_is_caught_up() {
    let f = fake(true).await;
    f.with(|s| s.pushes.push_back((409, json!({"status": "stale", "sequence": 41}))));
    let home = home(&[&f.url], |_| {});
    let pod = &home.pod;
    check_all_pods(pod).await;
    put(pod, &account("cy"));
    run_due(pod, &BackupSync::default(), now_unix()).await.unwrap();
    let sequences: Vec<u64> = f
        .backups_received()
        .iter()
        .map(|v| v["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, vec![1, 42]);
    let s = state(pod, "cy");
    assert_eq!(s.slot, SlotState::Stored);
    assert_eq!(s.last_success.map(|(_, n)| n), Some(42));
    assert_eq!(s.next_sequence, 43);
    assert_eq!(s.farewell.as_ref().map(|d| d.sequence), Some(43));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_507_is_retried_with_backoff_and_moves_only_after_the_failing_period() {
    let full = fake(true).await;
    let other = fake(true).await;
    full.with(|s| {
        s.pushes.push_back((202, json!({"status": "awaiting_confirmation"})));
        s.otherwise = Some((507, json!({"error": "full"})));
    });
    let home = home(&[&full.url], |c| c.backups.approved_pods = vec![other.url.clone()]);
    let pod = &home.pod;
    check_all_pods(pod).await;
    // Land on `full` (the only pod accepting at first).
    other.with(|s| s.accepts = false);
    check_all_pods(pod).await;
    put(pod, &account("dee"));
    let t0 = now_unix();
    run_due(pod, &BackupSync::default(), t0).await.unwrap();
    assert_eq!(state(pod, "dee").pod.as_deref(), Some(full.url.as_str()));
    other.with(|s| s.accepts = true);
    check_all_pods(pod).await;

    change(pod, "dee", |a| a.followed_tags.push("knitting".into()));
    let mut t = t0 + 120;
    run_due(pod, &BackupSync::default(), t).await.unwrap();
    let s = state(pod, "dee");
    assert_eq!((s.failures, s.failing_since), (1, Some(t)));
    assert_eq!(s.push_due, Some(t + 60), "the first retry after push_retry_min");
    assert!(s.last_error.unwrap().text.contains("507"));
    t += 60;
    run_due(pod, &BackupSync::default(), t).await.unwrap();
    assert_eq!(state(pod, "dee").push_due, Some(t + 120), "doubling");
    assert_eq!(
        state(pod, "dee").pod.as_deref(),
        Some(full.url.as_str()),
        "a 507 alone is no move"
    );

    // Failing past move_after_failing (3 days): moved to the other vetted pod.
    let since = state(pod, "dee").failing_since.unwrap();
    run_due(pod, &BackupSync::default(), since + 3 * 86400).await.unwrap();
    let s = state(pod, "dee");
    assert_eq!(s.pod.as_deref(), Some(other.url.as_str()));
    assert_eq!(s.slot, SlotState::Stored);
    assert_eq!(other.backups_received().len(), 1);
    let moved = mails(pod)
        .into_iter()
        .find(|m| m.subject.contains("moved"))
        .expect("a mail about the move");
    assert!(moved.text.contains("have not succeeded since"), "{}", moved.text);
    // The pod left behind was told to delete once `other` had the backup.
    let deletes = full.deletes_received();
    assert_eq!(deletes.len(), 1);
    assert!(deletes[0]["sequence"].as_u64().unwrap() > 1);
    assert!(s.left_behind.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_moves_at_once_and_the_delete_waits_for_the_new_pod() {
    let closing = fake(true).await;
    let next = fake(true).await;
    let home = home(&[&closing.url], |_| {});
    let pod = &home.pod;
    check_all_pods(pod).await;
    put(pod, &account("eli"));
    let t0 = now_unix();
    run_due(pod, &BackupSync::default(), t0).await.unwrap();
    // A second vetted pod appears, which for now fails every push.
    let mut config = pod.config.clone();
    config.backups.approved_pods = vec![next.url.clone()];
    let moved_home = Pod::new(config, pod.store.clone()).unwrap();
    pods::ensure_vetted(&moved_home.store, &moved_home.config).unwrap();
    check_all_pods(&moved_home).await;
    closing.with(|s| s.otherwise = Some((403, json!({"error": "backups are off here"}))));
    next.with(|s| s.otherwise = Some((500, json!({"error": "oops"}))));
    change(&moved_home, "eli", |a| a.aspects.push("Chess".into()));
    run_due(&moved_home, &BackupSync::default(), t0 + 100).await.unwrap();
    let s = state(&moved_home, "eli");
    assert_eq!(s.pod.as_deref(), Some(next.url.as_str()), "403: moved at once");
    assert!(pods::pod(&moved_home.store, &closing.url).unwrap().unwrap().refuses());
    assert_eq!(s.left_behind.len(), 1);
    assert!(
        !s.left_behind[0].armed,
        "the old pod keeps its copy while the new one has none"
    );
    assert!(closing.deletes_received().is_empty());
    next.with(|s| s.otherwise = None);
    run_due(&moved_home, &BackupSync::default(), s.push_due.unwrap())
        .await
        .unwrap();
    assert_eq!(closing.deletes_received().len(), 1);
    assert!(state(&moved_home, "eli").left_behind.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_tells_the_user_and_stops_pushing() {
    let f = fake(true).await;
    let home = home(&[&f.url], |_| {});
    let pod = &home.pod;
    check_all_pods(pod).await;
    put(pod, &account("fay"));
    let t0 = now_unix();
    run_due(pod, &BackupSync::default(), t0).await.unwrap();
    f.with(|s| s.otherwise = Some((410, json!({"status": "restored"}))));
    change(pod, "fay", |a| a.followed_tags.push("rowing".into()));
    run_due(pod, &BackupSync::default(), t0 + 100).await.unwrap();
    assert_eq!(state(pod, "fay").slot, SlotState::Restored);
    let mail = mails(pod).into_iter().find(|m| m.subject.contains("restored")).unwrap();
    assert!(mail.to == "fay@example.org");
    change(pod, "fay", |a| a.followed_tags.push("sailing".into()));
    run_due(pod, &BackupSync::default(), t0 + 86400 * 8).await.unwrap();
    assert_eq!(f.backups_received().len(), 2, "no push after the 410");
    assert_eq!(mails(pod).iter().filter(|m| m.subject.contains("restored")).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_account_deletes_its_backup_with_the_farewell_signed_earlier() {
    let holder = real_holder().await;
    let home = home(&[&holder.url], |_| {});
    let pod = &home.pod;
    check_all_pods(pod).await;
    put(pod, &account("gus"));
    let t0 = now_unix();
    run_due(pod, &BackupSync::default(), t0).await.unwrap();
    assert_eq!(holder.slot("gus@example.org"), Some((1, true)));
    change(pod, "gus", |a| crate::account::wipe(a, None));
    assert!(AccountStore::account(&pod.store, "gus")
        .unwrap()
        .unwrap()
        .private_key_pem
        .is_empty());
    let report = run_due(pod, &BackupSync::default(), t0 + 1).await.unwrap();
    assert_eq!((report.pushes, report.deletes), (0, 1));
    assert_eq!(
        holder.slot("gus@example.org"),
        Some((2, false)),
        "deleted; the tombstone keeps the sequence"
    );
    let s = state(pod, "gus");
    assert_eq!((s.slot, s.pod.clone(), s.left_behind.len()), (SlotState::Off, None, 0));
    assert_eq!(
        s.next_wake(&Timing::from_config(&pod.config)),
        None,
        "nothing left to do"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_are_spent_durably_before_sending_and_only_grow() {
    let f = fake(true).await;
    let home = home(&[&f.url], |_| {});
    let pod = &home.pod;
    check_all_pods(pod).await;
    // The pod stops answering at all.
    f.with(|s| s.otherwise = Some((503, json!({"error": "down"}))));
    put(pod, &account("hal"));
    let t0 = now_unix();
    run_due(pod, &BackupSync::default(), t0).await.unwrap();
    let s = state(pod, "hal");
    assert_eq!(s.next_sequence, 2, "sequence 1 was spent on the failed attempt");
    assert_eq!(s.farewell.as_ref().map(|d| d.sequence), Some(2));
    run_due(pod, &BackupSync::default(), s.push_due.unwrap()).await.unwrap();
    f.with(|s| s.otherwise = None);
    run_due(pod, &BackupSync::default(), state(pod, "hal").push_due.unwrap())
        .await
        .unwrap();
    let sequences: Vec<u64> = f
        .backups_received()
        .iter()
        .map(|v| v["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, vec![1, 2, 3]);
    assert_eq!(state(pod, "hal").slot, SlotState::Stored);
    assert_eq!(state(pod, "hal").failing_since, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_available_pod_the_account_says_so_and_takes_one_when_it_appears() {
    let f = fake(false).await;
    let home = home(&[&f.url], |_| {});
    let pod = &home.pod;
    check_all_pods(pod).await;
    put(pod, &account("ivy"));
    let t0 = now_unix();
    run_due(pod, &BackupSync::default(), t0).await.unwrap();
    let s = state(pod, "ivy");
    assert_eq!((s.slot, s.pod.clone()), (SlotState::NoPod, None));
    assert_eq!(s.failing_since, Some(t0));
    let overview = overview(pod, &account("ivy")).unwrap();
    assert!(overview.choices.is_empty() && overview.off.is_none());
    // Two days without a pod: the user is told, once.
    run_due(pod, &BackupSync::default(), t0 + 2 * 86400).await.unwrap();
    run_due(pod, &BackupSync::default(), t0 + 3 * 86400).await.unwrap();
    let warnings: Vec<Mail> = mails(pod)
        .into_iter()
        .filter(|m| m.subject.contains("not up to date"))
        .collect();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].text.contains("No backup pod is available"));
    // The pod opens: the account is nudged at once and takes it.
    f.with(|s| s.accepts = true);
    check_all_pods(pod).await;
    assert!(pod.store.nudges().unwrap().iter().any(|(u, n)| u == "ivy" && n.now));
    run_due(pod, &BackupSync::default(), now_unix()).await.unwrap();
    let s = state(pod, "ivy");
    assert_eq!(s.pod.as_deref(), Some(f.url.as_str()));
    assert_eq!(s.slot, SlotState::Stored);
    assert!(!s.warned && s.failing_since.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_check_re_pushes_a_copy_that_does_not_match() {
    let f = fake(true).await;
    let home = home(&[&f.url], |_| {});
    let pod = &home.pod;
    check_all_pods(pod).await;
    put(pod, &account("jo"));
    let t0 = now_unix();
    run_due(pod, &BackupSync::default(), t0).await.unwrap();
    let acked = state(pod, "jo").acked.unwrap();
    // A week later the holder answers with what we sent: nothing to do.
    f.with(|s| {
        s.status = Some((
            200,
            json!({"sequence": acked.sequence, "sha256": hex::encode(acked.lfbk_sha256), "confirmed": true}),
        ))
    });
    let report = run_due(pod, &BackupSync::default(), t0 + 7 * 86400).await.unwrap();
    assert_eq!((report.status_checks, report.pushes), (1, 0));
    // Then a holder that holds something else (an old copy): pushed again, above it.
    f.with(|s| s.status = Some((200, json!({"sequence": 9, "sha256": "00", "confirmed": true}))));
    let report = run_due(pod, &BackupSync::default(), t0 + 14 * 86400).await.unwrap();
    assert_eq!((report.status_checks, report.pushes), (1, 1));
    assert_eq!(f.backups_received().last().unwrap()["sequence"], json!(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_keeps_the_pod_and_deletes_the_old_address_slot() {
    let holder = real_holder().await;
    let home = home(&[&holder.url], |_| {});
    let pod = &home.pod;
    check_all_pods(pod).await;
    put(pod, &account("kim"));
    let t0 = now_unix();
    run_due(pod, &BackupSync::default(), t0).await.unwrap();
    change(pod, "kim", |a| a.email = "kim@new.example".into());
    run_due(pod, &BackupSync::default(), t0 + 120).await.unwrap();
    assert_eq!(holder.slot("kim@new.example").map(|s| s.1), Some(true));
    assert_eq!(
        holder.slot("kim@example.org"),
        Some((2, false)),
        "the old address's slot was deleted"
    );
    let s = state(pod, "kim");
    assert_eq!(
        (s.email.as_str(), s.pod.as_deref()),
        ("kim@new.example", Some(holder.url.as_str()))
    );
    assert!(mails(pod)
        .iter()
        .any(|m| m.to == "kim@new.example" && m.subject.contains("is kept at")));
}

#[test]
fn another_pods_words_are_tamed() {
    assert_eq!(tame("full\r\nSubject: x"), "full  Subject: x");
    let long = "é".repeat(500);
    assert_eq!(tame(&long).chars().count(), 201);
}

#[test]
fn nudges_merge_to_the_earliest_change() {
    let a = Nudge {
        changed_unix: Some(10),
        now: false,
    };
    let b = Nudge {
        changed_unix: Some(5),
        now: true,
    };
    assert_eq!(
        a.merge(b),
        Nudge {
            changed_unix: Some(5),
            now: true
        }
    );
    assert_eq!(a.merge(Nudge::default()), a);
}
