//! The discovery queue on a real store in a temporary folder, against real HTTP servers
//! on loopback ([`LoopbackPod`]): what an arrival queues, what each answer does, the
//! backoff and giving up of a pod that never answers, the bound, a restart, and the
//! worker running in the background.

use std::net::TcpListener;

use rsa::RsaPrivateKey;

use super::*;
use crate::account::archive::read_archive;
use crate::arrivals::{arrive, Arrival};
use crate::federation::discovery::{render_hcard, render_jrd, HcardPerson};
use crate::federation::signature::public_key_to_pem;
use crate::federation::test_support::{key_2048, other_key_2048, reply, LoopbackPod};
use crate::people::{self, Person};
use crate::store::Store;

const NOW: u64 = 1_800_000_000;

struct Rig {
    pod: Arc<Pod>,
    _dir: tempfile::TempDir,
}

fn config_for(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.data_dir = dir.to_path_buf();
    config.server.public_url = Some("https://lifeboat.example".into());
    config.federation.allow_http = true;
    config.federation.allow_private_addresses = true;
    config.accounts.key_bits = 2048;
    config
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pod = Pod::new(config_for(dir.path()), store).unwrap();
    Rig { pod, _dir: dir }
}

fn policy(rig: &Rig) -> Policy {
    Policy::from_config(&rig.pod.config)
}

/// Serves `user`'s WebFinger (for that resource only) and hCard, with `key`.
fn serve_person(pod: &LoopbackPod, user: &str, guid: &str, key: &RsaPrivateKey) -> String {
    let id = pod.id(user);
    let jrd = render_jrd(&id, &pod.base(), guid);
    pod.set(
        &format!("/.well-known/webfinger?resource=acct:{id}"),
        reply(200, "application/jrd+json", jrd.to_string()),
    );
    pod.set(
        &format!("/hcard/users/{guid}"),
        reply(200, "text/html", hcard_with(user, guid, key)),
    );
    id
}

fn hcard_with(user: &str, guid: &str, key: &RsaPrivateKey) -> String {
    render_hcard(&HcardPerson {
        guid: guid.into(),
        nickname: Some(user.into()),
        full_name: format!("{user} at the loopback"),
        first_name: user.into(),
        last_name: String::new(),
        public_key: key.to_public_key(),
        photo_large_url: "/l.png".into(),
        photo_medium_url: "/m.png".into(),
        photo_small_url: "/s.png".into(),
        searchable: true,
    })
}

fn queue(rig: &Rig, policy: &Policy, ids: &[&str], now: u64) -> Queued {
    rig.pod
        .store
        .transaction(|tx| queue_in(tx, policy, "lifeboat.example", ids, now))
        .unwrap()
}

fn stored_key(rig: &Rig, id: &str) -> Option<String> {
    rig.pod.store.person(id).unwrap().map(|p| p.public_key_pem)
}

fn someone(id: &str, key: &RsaPrivateKey) -> Person {
    Person {
        diaspora_id: id.into(),
        guid: "5555666677778888".into(),
        public_key_pem: public_key_to_pem(&key.to_public_key()),
        full_name: "Known".into(),
        first_name: String::new(),
        last_name: String::new(),
        photo_url: String::new(),
        photo_medium_url: String::new(),
        photo_small_url: String::new(),
        searchable: true,
        pod_origin: "https://elsewhere.example".into(),
        fetched_unix: 1,
        moved_to: None,
        closed_unix: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_queued_once_per_person_and_found_one_pod_turn_at_a_time() {
    let rig = rig();
    let remote = LoopbackPod::start();
    let alice = serve_person(&remote, "alice", "a11ce000a11ce000", key_2048());
    let carol = serve_person(&remote, "carol", "ca401000ca401000", key_2048());
    // dave is stored already, with another key than his pod now publishes.
    let dave = serve_person(&remote, "dave", "da5e0000da5e0000", key_2048());
    people::store_person(&rig.pod.store, someone(&dave, other_key_2048())).unwrap();
    let host = remote.addr.to_string();
    let policy = policy(&rig);

    let queued = queue(
        &rig,
        &policy,
        &[&alice, &carol, &dave, "me@lifeboat.example", "Not An ID", &alice],
        NOW,
    );
    assert_eq!(
        queued,
        Queued {
            queued: 2,
            over_limit: 0
        },
        "known, local, invalid and repeated IDs are not queued"
    );
    assert_eq!(rig.pod.store.queued_count().unwrap(), 2);
    assert_eq!(rig.pod.store.due_hosts(NOW, 10).unwrap(), [host.clone()]);

    let step = discover_next(&rig.pod, &policy, &host, NOW).await.unwrap();
    assert_eq!(step, Step::Found(alice.clone()));
    let found = rig.pod.store.person(&alice).unwrap().unwrap();
    assert_eq!(found.guid, "a11ce000a11ce000");
    assert_eq!(found.photo_url, format!("{}/l.png", remote.base()));
    assert_eq!(
        stored_key(&rig, &alice),
        Some(public_key_to_pem(&key_2048().to_public_key()))
    );
    assert_eq!(rig.pod.store.queued_count().unwrap(), 1);
    // The pod's next person waits for its turn: 60 s / discoveries_per_host_per_minute.
    assert_eq!(policy.host_interval_secs, 2);
    assert!(rig.pod.store.due_hosts(NOW + 1, 10).unwrap().is_empty());
    assert_eq!(rig.pod.store.due_hosts(NOW + 2, 10).unwrap(), [host.clone()]);

    // carol was stored meanwhile (say, a message of hers arrived): that one stays.
    people::store_person(&rig.pod.store, someone(&carol, other_key_2048())).unwrap();
    let requests = remote.webfinger_requests();
    let step = discover_next(&rig.pod, &policy, &host, NOW + 2).await.unwrap();
    assert_eq!(step, Step::Known(carol.clone()));
    assert_eq!(
        remote.webfinger_requests(),
        requests,
        "nothing asked for a known person"
    );
    assert_eq!(
        stored_key(&rig, &carol),
        Some(public_key_to_pem(&other_key_2048().to_public_key()))
    );
    assert_eq!(
        stored_key(&rig, &dave),
        Some(public_key_to_pem(&other_key_2048().to_public_key()))
    );

    // erin is stored while her pod is being asked: the stored one stays too.
    let erin = serve_person(&remote, "erin", "e4140000e4140000", key_2048());
    let mut slow = reply(200, "text/html", hcard_with("erin", "e4140000e4140000", key_2048()));
    slow.delay = Duration::from_millis(500);
    remote.set("/hcard/users/e4140000e4140000", slow);
    queue(&rig, &policy, &[&erin], NOW);
    let asking = {
        let (pod, host) = (rig.pod.clone(), host.clone());
        tokio::spawn(async move { discover_next(&pod, &policy, &host, NOW + 2).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    people::store_person(&rig.pod.store, someone(&erin, other_key_2048())).unwrap();
    assert_eq!(asking.await.unwrap().unwrap(), Step::Found(erin.clone()));
    assert_eq!(
        stored_key(&rig, &erin),
        Some(public_key_to_pem(&other_key_2048().to_public_key()))
    );

    assert_eq!(
        discover_next(&rig.pod, &policy, &host, NOW + 4).await.unwrap(),
        Step::Idle
    );
    assert_eq!(rig.pod.store.queued_count().unwrap(), 0);
    assert!(rig.pod.store.hosts().unwrap().is_empty());
    assert_eq!(rig.pod.store.next_due().unwrap(), None);
    assert!(rig.pod.store.check().unwrap().problems.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_answers_drop_the_person_and_a_failing_pod_is_retried() {
    let rig = rig();
    let remote = LoopbackPod::start();
    let gone = remote.id("gone");
    remote.set(
        &format!("/.well-known/webfinger?resource=acct:{gone}"),
        reply(404, "text/plain", "no such person"),
    );
    let busy = remote.id("busy");
    remote.set(
        &format!("/.well-known/webfinger?resource=acct:{busy}"),
        reply(503, "text/plain", "overloaded"),
    );
    let host = remote.addr.to_string();
    let policy = policy(&rig);
    queue(&rig, &policy, &[&gone, &busy], NOW);

    // "busy" sorts first: the pod answered 503, so the pod waits a minute, busy stays.
    let step = discover_next(&rig.pod, &policy, &host, NOW).await.unwrap();
    assert_eq!(step, Step::Retry(busy.clone(), NOW + 60));
    let state = &rig.pod.store.hosts().unwrap()[0].1;
    assert_eq!((state.failures, state.failing_since), (1, Some(NOW)));
    assert!(state.last_error.as_deref().unwrap().contains("HTTP 503"), "{state:?}");
    assert!(rig.pod.store.due_hosts(NOW + 59, 10).unwrap().is_empty());

    // Its pod answers now: busy is found... as no one (404 is final): dropped.
    remote.set(
        &format!("/.well-known/webfinger?resource=acct:{busy}"),
        reply(404, "text/plain", "no"),
    );
    match discover_next(&rig.pod, &policy, &host, NOW + 60).await.unwrap() {
        Step::Dropped(id, why) => {
            assert_eq!(id, busy);
            assert!(why.contains("has no such account"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let state = &rig.pod.store.hosts().unwrap()[0].1;
    assert_eq!(
        (state.failures, state.failing_since),
        (0, None),
        "an answer ends the failing run"
    );
    assert!(matches!(
        discover_next(&rig.pod, &policy, &host, NOW + 62).await.unwrap(),
        Step::Dropped(id, _) if id == gone
    ));
    assert_eq!(rig.pod.store.queued_count().unwrap(), 0);
    assert!(rig.pod.store.person(&gone).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_never_answers_backs_off_drops_a_person_after_five_attempts_then_is_given_up() {
    let rig = rig();
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let host = addr.to_string();
    let ids: Vec<String> = (0..3).map(|i| format!("user{i}@{host}")).collect();
    let mut policy = policy(&rig);
    policy.backoff.give_up_after = Duration::from_secs(86400);
    queue(&rig, &policy, &ids.iter().map(String::as_str).collect::<Vec<_>>(), NOW);

    let mut now = NOW;
    let mut waits = Vec::new();
    for attempt in 1..=MAX_ATTEMPTS {
        match discover_next(&rig.pod, &policy, &host, now).await.unwrap() {
            Step::Retry(id, at) => {
                assert_eq!(id, ids[0]);
                assert!(attempt < MAX_ATTEMPTS);
                waits.push(at - now);
                now = at;
            }
            Step::Dropped(id, why) => {
                assert_eq!((id.as_str(), attempt), (ids[0].as_str(), MAX_ATTEMPTS));
                assert!(
                    why.contains("could not be reached") || why.contains("unreachable"),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(waits, [60, 120, 240, 480], "the pod backs off, doubling");
    assert_eq!(rig.pod.store.queued_count().unwrap(), 2);
    // The next person inherits the pod's failing run; a day after it began, the pod is
    // given up with everyone still queued for it.
    let at = rig.pod.store.hosts().unwrap()[0].1.next_unix;
    assert!(matches!(
        discover_next(&rig.pod, &policy, &host, at).await.unwrap(),
        Step::Retry(id, _) if id == ids[1]
    ));
    let step = discover_next(&rig.pod, &policy, &host, NOW + 86400).await.unwrap();
    assert_eq!(step, Step::GaveUp(2));
    assert_eq!(rig.pod.store.queued_count().unwrap(), 0);
    assert!(rig.pod.store.hosts().unwrap().is_empty());
    assert_eq!(rig.pod.store.next_due().unwrap(), None);
}

#[tokio::test]
async fn the_queue_is_bounded_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut policy = Policy::from_config(&config_for(dir.path()));
    policy.max_queued = 3;
    let queue = |ids: &[&str]| {
        store
            .transaction(|tx| queue_in(tx, &policy, "lifeboat.example", ids, NOW))
            .unwrap()
    };
    let ids: Vec<String> = (0..5).map(|i| format!("p{i}@pod{}.example", i % 2)).collect();
    let queued = queue(&ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        queued,
        Queued {
            queued: 3,
            over_limit: 2
        }
    );
    assert_eq!(
        queue(&["p9@pod0.example"]),
        Queued {
            queued: 0,
            over_limit: 1
        }
    );
    store.durable().await.unwrap();
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.queued_count().unwrap(), 3);
    let hosts: Vec<String> = store.hosts().unwrap().into_iter().map(|(h, _)| h).collect();
    assert_eq!(hosts, ["pod0.example", "pod1.example"]);
    assert_eq!(
        store.queued_on("pod0.example").unwrap(),
        ["p0@pod0.example", "p2@pod0.example"]
    );
    assert_eq!(store.due_hosts(NOW, 10).unwrap().len(), 2);
    assert!(store.check().unwrap().problems.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_archives_contacts_are_found_by_the_worker_in_the_background() {
    let rig = rig();
    let remote = LoopbackPod::start();
    let bob = serve_person(&remote, "bob", "b0b00000b0b00000", key_2048());
    let mut archive: serde_json::Value =
        serde_json::from_str(&crate::federation::test_support::fixture("diaspora-export.json")).unwrap();
    archive["user"]["contacts"][0]["account_id"] = bob.clone().into();
    let mut archive = read_archive(archive.to_string().as_bytes(), 1 << 24).unwrap();
    // No old identity: nothing to sign or announce, only the account and its contacts.
    archive.old_diaspora_id = None;
    let contacts = archive.contacts.len();
    // The worker is idle (nothing queued) when the archive arrives: the arrival wakes it.
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(run(rig.pod.clone(), stopped));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (account, _) = arrive(
        &rig.pod,
        Arrival {
            archive,
            username: "alice".into(),
            password: "a long enough password".into(),
            email: "alice@example.org".into(),
            email_confirmed: true,
        },
    )
    .await
    .unwrap();
    assert!(account.contacts.iter().any(|c| c.diaspora_id == bob));
    assert!(rig.pod.store.queued_count().unwrap() <= contacts as u64);
    assert!(rig.pod.store.queued_on(&remote.addr.to_string()).unwrap().len() <= 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while rig.pod.store.person(&bob).unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the worker did not discover bob");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert_eq!(
        stored_key(&rig, &bob),
        Some(public_key_to_pem(&key_2048().to_public_key()))
    );
    assert!(
        rig.pod.store.queued_on(&remote.addr.to_string()).unwrap().is_empty(),
        "bob's pod has nobody else waiting"
    );
}
