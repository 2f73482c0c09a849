//! A restored slot answers `410 {"status": "restored"}` to pushes, deletes and status
//! checks, over real HTTP against a lifeboat served in-process. The slot is marked
//! restored through the holder itself, so that an unconfirmed slot holding a backup
//! that is no archive will do; the restore flow that marks it is tested in
//! `tests/restore.rs`, and the 410 after a real restore in `tests/e2e/test_restore.py`
//! (pushes) and `tests/e2e/test_backup_sync.py` (status checks).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use lifeboat::backup::holder::SlotKey;
use lifeboat::backup::push::{push_signed_text, status_signed_text, Fingerprint};
use lifeboat::config::Config;
use lifeboat::federation::signature;
use lifeboat::pod::Pod;
use lifeboat::sealed::{self, KdfParams, SealingKey};
use lifeboat::store::Store;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const AT: &str = "2026-01-01T00:00:00Z";

fn post(url: String, body: Value) -> (u16, Value) {
    let mut response = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(&url)
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    (response.status().as_u16(), serde_json::from_str(&text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_slot_answers_410() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.backups.allow_backups_and_migration = true;
    config.server.data_dir = dir.path().to_path_buf();
    let store = Store::open(dir.path()).unwrap();
    let pod = Pod::new(config, store).unwrap();
    let services = std::sync::Arc::new(lifeboat::services::Services::new(&pod));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        warp::serve(lifeboat::web::filter(pod.clone(), services.clone()))
            .incoming(listener)
            .graceful(std::future::pending::<()>())
            .run(),
    );

    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let pem = signature::public_key_to_pem(&key.to_public_key());
    let sealing = SealingKey::derive(
        "violet tractor drifts under 9 quiet lanterns",
        KdfParams {
            memory_kib: 19456,
            time_cost: 2,
        },
    )
    .unwrap();
    let email = "restored@example.org";
    let push = |sequence: u64, backup: Option<Vec<u8>>| {
        let sha: Option<[u8; 32]> = backup.as_ref().map(|b| Sha256::digest(b).into());
        let text = push_signed_text(email, sequence, AT, sha.as_ref());
        json!({"version": 1, "email": email, "public_key": pem, "sequence": sequence, "created_at": AT,
               "backup": backup.map(|b| B64.encode(b)), "signature": signature::sign_base64(&key, text.as_bytes())})
    };
    let url = format!("{base}/api/lifeboat/v1/backups");
    let first = push(1, Some(sealed::seal(b"{}", &sealing)));
    let (status, body) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || post(url, first)
    })
    .await
    .unwrap();
    assert_eq!((status, body), (202, json!({"status": "awaiting_confirmation"})));

    services
        .holder
        .mark_restored(&SlotKey {
            email: email.into(),
            fingerprint: Fingerprint(signature::fingerprint(&key.to_public_key())),
        })
        .await
        .unwrap();

    let status_body = json!({"email": email, "public_key": pem, "created_at": AT,
        "signature": signature::sign_base64(&key, status_signed_text(email, AT).as_bytes())});
    let requests = vec![
        (url.clone(), push(2, Some(sealed::seal(b"{}", &sealing)))),
        (url.clone(), push(3, None)),
        (format!("{base}/api/lifeboat/v1/backups/status"), status_body),
    ];
    for (url, body) in requests {
        let answer = tokio::task::spawn_blocking(move || post(url, body)).await.unwrap();
        assert_eq!(answer, (410, json!({"status": "restored"})));
    }
}
