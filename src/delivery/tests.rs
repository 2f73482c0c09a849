//! The outbox on a real store in a temporary folder, sending to loopback receivers:
//! bodies stored once and read when sent, released when no delivery may send them any
//! more (the schema 1 upgrade is tested in `store::outbox`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::http_client::ClientPolicy;
use crate::retry::Backoff;
use tokio::sync::watch;

fn outbox(store: &Store) -> Outbox {
    let http = HttpClient::new(ClientPolicy {
        allow_http: true,
        allow_private_addresses: true,
        ..ClientPolicy::default()
    });
    Outbox::new(
        store.clone(),
        http,
        OutboxPolicy {
            concurrency: 4,
            per_pod_per_minute: 60,
            backoff: Backoff {
                first: Duration::from_secs(60),
                max: Duration::from_secs(3600),
                give_up_after: Duration::from_secs(86400),
            },
            allow_http: true,
        },
        crate::pod::Signal::default(),
    )
}

/// A receiver answering every request 202, recording the bodies it got.
fn receiver() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    receiver_on(TcpListener::bind("127.0.0.1:0").unwrap())
}

fn receiver_on(listener: TcpListener) -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = stream.read(&mut chunk) else { break None };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    break Some(buf[end + 4..end + 4 + length].to_vec());
                }
            };
            if let Some(body) = body {
                seen.lock().unwrap().push(body);
            }
            let _ = stream.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (origin, bodies)
}

fn refused_origin() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn new(topic: &str, origin: &str, body: &Bytes) -> NewDelivery {
    NewDelivery {
        topic: topic.into(),
        origin: origin.into(),
        path: "/receive/public".into(),
        content_type: "application/magic-envelope+xml".into(),
        body: body.clone(),
    }
}

fn refs(store: &Store, body: &[u8]) -> u64 {
    let sha: [u8; 32] = Sha256::digest(body).into();
    store.body_holders(&sha).unwrap()
}

/// Runs the worker until every delivery of `topic` was attempted once.
async fn first_pass(outbox: &Outbox, topic: &str) {
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(outbox.clone().run(stopped));
    for _ in 0..200 {
        if outbox.topic(topic).unwrap().iter().all(|d| d.attempts >= 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert!(
        outbox.topic(topic).unwrap().iter().all(|d| d.attempts >= 1),
        "first pass did not end"
    );
}

#[tokio::test]
async fn one_body_is_stored_for_many_deliveries_sent_as_queued_and_released_once_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let outbox = outbox(&store);
    let (a, seen_a) = receiver();
    let (b, seen_b) = receiver();
    let down = refused_origin();
    let shared = Bytes::from(vec![b'm'; 5000]);
    let own = Bytes::from_static(b"<contact/>");
    outbox
        .enqueue(&[
            new("move:x", &a, &shared),
            new("move:x", &b, &shared),
            new("move:x", &down, &shared),
        ])
        .await
        .unwrap();
    outbox.enqueue(&[new("contact:x", &a, &own)]).await.unwrap();
    assert_eq!(store.stored_bodies(), 2, "one copy per distinct body");
    assert_eq!(refs(&store, &shared), 3);
    assert_eq!(refs(&store, &own), 1);
    let listed = outbox.topic("move:x").unwrap();
    assert_eq!(outbox.body(&listed[0]).unwrap().as_deref(), Some(&shared[..]));

    first_pass(&outbox, "move:x").await;
    first_pass(&outbox, "contact:x").await;
    let mut got_a = seen_a.lock().unwrap().clone();
    got_a.sort();
    assert_eq!(got_a, vec![own.to_vec(), shared.to_vec()]);
    assert_eq!(*seen_b.lock().unwrap(), vec![shared.to_vec()]);
    // The delivery to the pod that is down still holds the body, for its retries.
    assert_eq!(refs(&store, &shared), 1);
    assert_eq!(refs(&store, &own), 0);
    assert_eq!(store.stored_bodies(), 1);
    let waiting = outbox
        .topic("move:x")
        .unwrap()
        .into_iter()
        .find(|d| d.origin == down)
        .unwrap();
    assert_eq!(waiting.state, DeliveryState::Pending);
    assert_eq!(outbox.body(&waiting).unwrap().as_deref(), Some(&shared[..]));
    let delivered = outbox.topic("contact:x").unwrap().remove(0);
    assert!(matches!(delivered.state, DeliveryState::Delivered { .. }));
    assert_eq!(outbox.body(&delivered).unwrap(), None);

    // Cancelling the last delivery that holds it removes the body.
    let cancelled = store.transaction(|tx| cancel_pending_in(tx, &[waiting.id])).unwrap();
    assert_eq!(cancelled, 1);
    assert_eq!(refs(&store, &shared), 0);
    assert_eq!(store.stored_bodies(), 0);
    assert!(store.check().unwrap().problems.is_empty());
}

#[tokio::test]
async fn a_delivery_given_up_keeps_its_body_and_a_retry_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut outbox = outbox(&store);
    outbox.policy.backoff.give_up_after = Duration::ZERO;
    let down = refused_origin();
    let body = Bytes::from_static(b"<me:env>retry me</me:env>");
    outbox.enqueue(&[new("move:y", &down, &body)]).await.unwrap();
    first_pass(&outbox, "move:y").await;
    let failed = outbox.topic("move:y").unwrap().remove(0);
    assert_eq!(failed.state, DeliveryState::Failed);
    assert_eq!(outbox.body(&failed).unwrap().as_deref(), Some(&body[..]));

    // The pod comes back and the user retries.
    let (_, seen) = receiver_on(TcpListener::bind(down.trim_start_matches("http://")).unwrap());
    outbox.policy.backoff.give_up_after = Duration::from_secs(86400);
    outbox.retry("move:y", failed.id).await.unwrap();
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(outbox.clone().run(stopped));
    for _ in 0..200 {
        if seen.lock().unwrap().len() == 1
            && matches!(
                outbox.topic("move:y").unwrap()[0].state,
                DeliveryState::Delivered { .. }
            )
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![body.to_vec()]);
    assert_eq!(refs(&store, &body), 0);
}
