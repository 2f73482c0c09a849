//! The discovery client against tiny pods on 127.0.0.1 ([`LoopbackPod`](Pod)) that
//! serve the reference WebFinger and hCard documents, or broken ones; and the people store's rule that a stored key is never replaced by
//! rediscovery.

use std::net::TcpListener;
use std::sync::atomic::Ordering;

use rsa::RsaPrivateKey;
use serde_json::json;

use super::*;
use crate::federation::discovery::{render_hcard, HcardPerson};
use crate::federation::test_support::{
    key_2048, loopback_client as client, other_key_2048, reference, reply, LoopbackPod as Pod, Reply, GUID,
};
use crate::store::Store;

fn hcard_for(key: &RsaPrivateKey, full_name: &str) -> String {
    render_hcard(&HcardPerson {
        guid: GUID.to_string(),
        nickname: Some("alice".to_string()),
        full_name: full_name.to_string(),
        first_name: full_name.split(' ').next().unwrap_or_default().to_string(),
        last_name: String::new(),
        public_key: key.to_public_key(),
        photo_large_url: "/images/large.png".to_string(),
        photo_medium_url: "/images/medium.png".to_string(),
        photo_small_url: "https://cdn.example/small.png".to_string(),
        searchable: false,
    })
}

fn upstream(result: Result<Person>) -> String {
    match result {
        Err(Error::Upstream(message)) => message,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

#[test]
fn finds_a_person_from_the_reference_documents() {
    let pod = Pod::with_person("alice", reference("diaspora-examples/hcard.example.html"));
    let id = pod.id("alice");
    let person = fetch_person(&client(), &id, true).unwrap();
    assert_eq!(person.diaspora_id, id);
    assert_eq!(person.guid, GUID);
    assert_eq!(person.full_name, "Alice Smith");
    assert_eq!(person.first_name, "Alice");
    assert_eq!(person.last_name, "Smith");
    assert!(person.searchable);
    assert_eq!(
        person.photo_url,
        "https://example.org/images/thumb_large_a795f872c93309597345.jpg"
    );
    assert_eq!(
        person.photo_small_url,
        "https://example.org/images/thumb_small_a795f872c93309597345.jpg"
    );
    let html = reference("diaspora-examples/hcard.example.html");
    let start = html.find("-----BEGIN PUBLIC KEY-----").unwrap();
    let end = html.find("-----END PUBLIC KEY-----").unwrap() + "-----END PUBLIC KEY-----".len();
    assert_eq!(person.public_key_pem.trim(), &html[start..end]);
    assert_eq!(person.pod_origin, pod.base());
    assert_eq!(person.moved_to, None);
    assert!(person.is_fresh(now_unix()));

    // https was tried first; plain http only after it failed.
    assert!(pod.tls_attempts.load(Ordering::SeqCst) >= 1);
    let seen = pod.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].target, format!("/.well-known/webfinger?resource=acct:{id}"));
    assert_eq!(seen[0].accept, "application/jrd+json, application/json");
    assert_eq!(seen[1].target, format!("/hcard/users/{GUID}"));
    assert_eq!(seen[1].accept, "text/html");
}

#[test]
fn relative_photo_urls_are_resolved_against_the_hcard() {
    let pod = Pod::with_person("alice", hcard_for(key_2048(), "Alice Liddell"));
    let person = fetch_person(&client(), &pod.id("alice"), true).unwrap();
    assert_eq!(person.photo_url, format!("{}/images/large.png", pod.base()));
    assert_eq!(person.photo_medium_url, format!("{}/images/medium.png", pod.base()));
    assert_eq!(person.photo_small_url, "https://cdn.example/small.png");
    assert!(!person.searchable);
    assert_eq!(person.display_name(), "Alice Liddell");
    assert!(same_key(
        &person.public_key_pem,
        &public_key_to_pem(&key_2048().to_public_key())
    ));
}

#[test]
fn without_allow_http_a_failed_https_is_final() {
    let pod = Pod::with_person("alice", reference("diaspora-examples/hcard.example.html"));
    let id = pod.id("alice");
    let message = upstream(fetch_person(&client(), &id, false));
    assert!(
        message.starts_with(&format!(
            "could not discover {id}: https://{} could not be reached",
            pod.addr
        )),
        "{message}"
    );
    assert!(!message.contains("over http"), "{message}");
    assert!(pod.seen().is_empty(), "no plain http request: {:?}", pod.seen());
}

#[test]
fn nothing_listening_is_a_clear_error() {
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let id = format!("alice@{addr}");
    let message = upstream(fetch_person(&client(), &id, true));
    assert!(
        message.starts_with(&format!("could not discover {id}: https://{addr}")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "; and over http: http://{addr} could not be reached: connection refused"
        )),
        "{message}"
    );
}

#[test]
fn unusable_answers_are_clear_errors() {
    let reference_hcard = reference("diaspora-examples/hcard.example.html");
    let without = |from: &str, to: &str| {
        let start = reference_hcard.find(from).unwrap();
        let end = reference_hcard[start..].find(to).unwrap() + start + to.len();
        format!("{}{}", &reference_hcard[..start], &reference_hcard[end..])
    };
    type Setup = Box<dyn Fn(&Pod)>;
    let webfinger = |r: Reply| -> Setup { Box::new(move |pod: &Pod| pod.set("/.well-known/webfinger", r.clone())) };
    let hcard = |r: Reply| -> Setup { Box::new(move |pod: &Pod| pod.set(&format!("/hcard/users/{GUID}"), r.clone())) };
    let html = |body: String| reply(200, "text/html", body);
    let cases: Vec<(Setup, &str)> = vec![
        (
            webfinger(reply(200, "application/jrd+json", "{not json")),
            "WebFinger answer is not JSON",
        ),
        (
            Box::new(|pod: &Pod| {
                let mut jrd = pod.jrd("alice");
                jrd["links"].as_array_mut().unwrap().remove(0);
                pod.set(
                    "/.well-known/webfinger",
                    reply(200, "application/jrd+json", jrd.to_string()),
                );
            }),
            "WebFinger answer has no http(s) hCard link",
        ),
        (
            Box::new(|pod: &Pod| {
                let mut jrd = pod.jrd("alice");
                jrd["subject"] = json!(format!("acct:{}", pod.id("mallory")));
                pod.set(
                    "/.well-known/webfinger",
                    reply(200, "application/jrd+json", jrd.to_string()),
                );
            }),
            "its WebFinger answer is about \"acct:mallory@",
        ),
        (
            Box::new(|pod: &Pod| {
                let mut jrd = pod.jrd("alice");
                jrd["subject"] = json!(pod.id("alice"));
                pod.set(
                    "/.well-known/webfinger",
                    reply(200, "application/jrd+json", jrd.to_string()),
                );
            }),
            "its WebFinger answer is about \"alice@",
        ),
        (
            webfinger(reply(404, "text/plain", "no")),
            "has no such account (WebFinger answered 404)",
        ),
        (
            webfinger(reply(410, "text/plain", "gone")),
            "has no such account (WebFinger answered 410)",
        ),
        (
            webfinger(reply(500, "text/plain", "oops")),
            "answered WebFinger with HTTP 500",
        ),
        (
            webfinger(reply(200, "application/jrd+json", vec![b' '; 3 * 1024 * 1024])),
            "sent a response larger than 2097152 bytes",
        ),
        (
            hcard(html(without("<dl class=\"entity_full_name\">", "</dl>"))),
            "hCard has no full name (.fn)",
        ),
        (
            hcard(html(
                without("<dl class=\"entity_photo\">", "</dl>")
                    .replace("entity_photo_medium", "x")
                    .replace("entity_photo_small", "y"),
            )),
            "hCard has no photo (.entity_photo .photo[src])",
        ),
        (
            hcard(html(without("<dl class=\"entity_photo_small\">", "</dl>"))),
            "hCard has no photo (.entity_photo_small .photo[src])",
        ),
        (
            hcard(html(without("<dl class=\"entity_key\">", "</dl>"))),
            "hCard has no public key (.key)",
        ),
        (
            hcard(html(
                reference_hcard.replace("MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEA", "MIIC"),
            )),
            "hCard public key (.key) is not an RSA public key",
        ),
        (
            hcard(reply(200, "application/json", "{\"name\": \"Alice\"}")),
            "hCard has no full name (.fn)",
        ),
        (
            hcard(reply(404, "text/plain", "no")),
            "has no such account (the hCard request answered 404)",
        ),
        (
            hcard(reply(503, "text/plain", "busy")),
            "answered the hCard request with HTTP 503",
        ),
    ];
    for (setup, expected) in cases {
        let pod = Pod::with_person("alice", reference_hcard.clone());
        setup(&pod);
        let id = pod.id("alice");
        let message = upstream(fetch_person(&client(), &id, true));
        assert!(
            message.starts_with(&format!("could not discover {id}: ")) && message.contains(expected),
            "{message:?} lacks {expected:?}"
        );
    }
}

#[test]
fn invalid_ids_are_refused_before_any_request() {
    for id in [
        "alice",
        "Alice@pod.example",
        "alice@pod example",
        "",
        "alice@",
        "@pod.example",
        "a\nb@x",
    ] {
        match fetch_person(&client(), id, true) {
            Err(Error::BadRequest(message)) => {
                assert!(message.starts_with("could not discover "), "{message}");
                assert!(message.ends_with("not a valid diaspora ID (user@host)"), "{message}");
                assert!(!message.contains('\n'), "{message}");
            }
            other => panic!("{id:?}: expected a refusal, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// The people store
// ---------------------------------------------------------------------------------

fn pem_of(key: &RsaPrivateKey) -> String {
    public_key_to_pem(&key.to_public_key())
}

/// Marks the stored person as fetched long ago.
fn make_stale(store: &Store, id: &str) {
    store
        .change_people(&[id], &|current| {
            let mut person = current[0].clone().expect("stored");
            person.fetched_unix = 1;
            Ok(vec![Some(person)])
        })
        .unwrap();
}

fn person(id: &str, key: &RsaPrivateKey, guid: &str) -> Person {
    Person {
        diaspora_id: id.to_string(),
        guid: guid.to_string(),
        public_key_pem: pem_of(key),
        full_name: "Someone".into(),
        first_name: "Someone".into(),
        last_name: String::new(),
        photo_url: "https://pod.example/a.png".into(),
        photo_medium_url: "https://pod.example/a.png".into(),
        photo_small_url: "https://pod.example/a.png".into(),
        searchable: true,
        pod_origin: "https://pod.example".into(),
        fetched_unix: now_unix(),
        moved_to: None,
        closed_unix: None,
    }
}

#[tokio::test]
async fn discovery_uses_the_store_while_fresh_and_never_replaces_a_stored_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let http = client();
    let pod = Pod::with_person("alice", hcard_for(key_2048(), "Alice Liddell"));
    let id = pod.id("alice");

    let first = discover(&store, &http, &id, true).await.unwrap();
    assert_eq!(first.full_name, "Alice Liddell");
    assert_eq!(get_person(&store, &id).unwrap(), Some(first.clone()));
    assert_eq!(pod.webfinger_requests(), 1);

    // Fresh: answered from the store.
    assert_eq!(discover(&store, &http, &id, true).await.unwrap(), first);
    assert_eq!(pod.webfinger_requests(), 1);

    // Stale, and the pod now publishes another key and guid: the profile is refreshed,
    // the key and guid are not.
    make_stale(&store, &id);
    let mut renamed = hcard_for(other_key_2048(), "Alice Pleasance");
    renamed = renamed.replace(GUID, "0000ffff0000ffff0000ffff");
    pod.set(
        "/.well-known/webfinger",
        reply(
            200,
            "application/jrd+json",
            pod.jrd("alice").to_string().replace(GUID, "0000ffff0000ffff0000ffff"),
        ),
    );
    pod.set(
        "/hcard/users/0000ffff0000ffff0000ffff",
        reply(200, "text/html", renamed),
    );
    let refreshed = discover(&store, &http, &id, true).await.unwrap();
    assert_eq!(pod.webfinger_requests(), 2);
    assert_eq!(refreshed.full_name, "Alice Pleasance");
    assert!(refreshed.is_fresh(now_unix()));
    assert_eq!(refreshed.public_key_pem, first.public_key_pem);
    assert!(same_key(&refreshed.public_key_pem, &pem_of(key_2048())));
    assert_eq!(refreshed.guid, GUID);
    assert_eq!(get_person(&store, &id).unwrap(), Some(refreshed.clone()));

    // The pod is gone: what is stored still answers.
    make_stale(&store, &id);
    pod.set("/.well-known/webfinger", reply(500, "text/plain", "down"));
    let served = discover(&store, &http, &id, true).await.unwrap();
    assert_eq!(served.full_name, "Alice Pleasance");
    assert_eq!(served.public_key_pem, first.public_key_pem);

    // Nobody known and nothing to ask: the discovery error.
    let unknown = pod.id("nobody");
    let message = match discover(&store, &http, &unknown, true).await {
        Err(Error::Upstream(message)) => message,
        other => panic!("expected an upstream error, got {other:?}"),
    };
    assert!(
        message.starts_with(&format!("could not discover {unknown}: ")),
        "{message}"
    );
    assert_eq!(get_person(&store, &unknown).unwrap(), None);
    let report = store.check().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.trees.contains(&("people", 1)), "{:?}", report.trees);
}

#[tokio::test]
async fn store_person_keeps_the_stored_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = "carol@pod.example";
    let stored = store_person(&store, person(id, key_2048(), "c0c0c0c0c0c0c0c0c0c0")).unwrap();
    assert_eq!(stored.public_key_pem, pem_of(key_2048()));
    let mut other = person(id, other_key_2048(), "d1d1d1d1d1d1d1d1d1d1");
    other.full_name = "Carol Changed".into();
    let after = store_person(&store, other).unwrap();
    assert_eq!(after.public_key_pem, pem_of(key_2048()));
    assert_eq!(after.guid, "c0c0c0c0c0c0c0c0c0c0");
    assert_eq!(after.full_name, "Carol Changed");
    assert_eq!(get_person(&store, id).unwrap(), Some(after));
}

#[tokio::test]
async fn only_a_verified_migration_replaces_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let old_id = "alice@old.example";
    let new_id = "alice@new.example";
    store_person(&store, person(old_id, key_2048(), "a0a0a0a0a0a0a0a0a0a0")).unwrap();
    // Someone got a different key stored for the new ID first (say, an earlier
    // discovery); the migration's verified key wins.
    store_person(&store, person(new_id, key_2048(), "b9b9b9b9b9b9b9b9b9b9")).unwrap();

    let new = person(new_id, other_key_2048(), "b0b0b0b0b0b0b0b0b0b0");
    replace_identity(&store, old_id, new.clone()).unwrap();
    let old = get_person(&store, old_id).unwrap().unwrap();
    assert_eq!(old.moved_to.as_deref(), Some(new_id));
    assert_eq!(
        old.public_key_pem,
        pem_of(key_2048()),
        "the old key stays, to verify the same move again"
    );
    assert_eq!(get_person(&store, new_id).unwrap(), Some(new.clone()));

    // The same move again is harmless; another move of the same identity is refused
    // and changes nothing.
    replace_identity(&store, old_id, new.clone()).unwrap();
    let elsewhere = person("alice@third.example", key_2048(), "e0e0e0e0e0e0e0e0e0e0");
    match replace_identity(&store, old_id, elsewhere) {
        Err(Error::Conflict(message)) => assert_eq!(message, format!("{old_id} has already moved to {new_id}")),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(get_person(&store, "alice@third.example").unwrap(), None);
    assert!(matches!(
        replace_identity(&store, new_id, new.clone()),
        Err(Error::BadRequest(_))
    ));

    // Rediscovery after the move still cannot touch the new key.
    store_person(&store, person(new_id, key_2048(), "b0b0b0b0b0b0b0b0b0b0")).unwrap();
    assert_eq!(
        get_person(&store, new_id).unwrap().unwrap().public_key_pem,
        pem_of(other_key_2048())
    );
    // A moved identity is answered from the store, without asking its old pod.
    let moved = discover(&store, &client(), old_id, true).await.unwrap();
    assert_eq!(moved.moved_to.as_deref(), Some(new_id));
}
