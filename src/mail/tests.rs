//! Tests of `mail`.

use super::*;

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn header<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    let head = message.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .filter_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(": ")))
        .collect()
}

#[test]
fn addresses_are_checked_and_normalised() {
    assert_eq!(check_address(" alice@Example.ORG ").unwrap(), "alice@example.org");
    assert_eq!(
        check_address("bob.smith+tag@bücher.example").unwrap(),
        "bob.smith+tag@xn--bcher-kva.example"
    );
    for bad in [
        "",
        "alice",
        "@example.org",
        "alice@",
        "alice@example.org\r\nBcc: eve@example.org",
        "alice@example.org\nBcc: eve@example.org",
        "alice@example.org,eve@example.org",
        "Alice <alice@example.org>",
        "alice@@example.org",
        "a@b@example.org",
        "alice smith@example.org",
        "älice@example.org",
        ".alice@example.org",
        "al..ice@example.org",
        "alice@exa_mple.org",
        "alice@-example.org",
        "alice@example..org",
        "alice@[127.0.0.1]",
    ] {
        assert!(check_address(bad).is_err(), "{bad:?} must be refused");
        assert!(matches!(check_address(bad), Err(Error::BadRequest(_))));
    }
    let long = format!("{}@{}.example", "a".repeat(64), "b".repeat(63));
    assert!(check_address(&long).is_ok());
    let too_long = format!("a@{}", vec!["b".repeat(63); 5].join("."));
    assert!(check_address(&too_long).is_err());
}

#[test]
fn header_injection_is_refused() {
    let mail = Mail::new("alice@example.org\r\nBcc: eve@example.org", "Hi", "body");
    assert!(matches!(mail.checked(), Err(Error::BadRequest(_))));

    let mail = Mail::new(
        "alice@example.org",
        "Restore\r\nBcc: eve@example.org\nX-Evil: 1",
        "body",
    );
    let checked = mail.checked().unwrap();
    assert_eq!(checked.subject, "Restore  Bcc: eve@example.org X-Evil: 1");
    let message = text_of(&render("lifeboat@pod.example", &checked, 1_700_000_000).unwrap().bytes);
    assert!(header(&message, "Bcc").is_empty(), "{message}");
    assert!(header(&message, "X-Evil").is_empty(), "{message}");
    assert_eq!(header(&message, "To"), ["<alice@example.org>"]);
}

#[test]
fn rendering_has_the_promised_headers() {
    let mail = Mail::new("alice@example.org", "Your backup", "Hello Alice,\n\nline two\n")
        .checked()
        .unwrap();
    let rendered = render("lifeboat@pod.example", &mail, 1_700_000_000).unwrap();
    let message = text_of(&rendered.bytes);
    assert_eq!(header(&message, "From"), ["<lifeboat@pod.example>"]);
    assert_eq!(header(&message, "To"), ["<alice@example.org>"]);
    assert_eq!(header(&message, "Subject"), ["Your backup"]);
    assert_eq!(header(&message, "Date"), ["Tue, 14 Nov 2023 22:13:20 +0000"]);
    assert_eq!(
        header(&message, "Message-ID"),
        [format!("<{}@pod.example>", rendered.id).as_str()]
    );
    assert_eq!(rendered.id.len(), 32);
    assert_eq!(header(&message, "Auto-Submitted"), ["auto-generated"]);
    assert_eq!(header(&message, "MIME-Version"), ["1.0"]);
    assert!(
        header(&message, "Content-Type")[0].starts_with("text/plain; charset=\"utf-8\""),
        "{message}"
    );
    assert!(
        message.ends_with("\r\n\r\nHello Alice,\r\n\r\nline two\r\n"),
        "{message:?}"
    );
    // Two renderings never share a Message-ID.
    assert_ne!(
        render("lifeboat@pod.example", &mail, 1_700_000_000).unwrap().id,
        rendered.id
    );
}

#[tokio::test]
async fn eml_files_are_written_whole_with_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let transport = EmlTransport::new(&outbox).unwrap();
    let mail = Mail::new(
        "alice@example.org",
        "Grüße",
        "Restore: https://pod.example/restore/SECRET\n",
    )
    .checked()
    .unwrap();
    transport.send("lifeboat@pod.example", &mail).await.unwrap();
    transport.send("lifeboat@pod.example", &mail).await.unwrap();

    let mut names: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "two files, no temporary leftovers: {names:?}");
    assert_ne!(names[0], names[1]);
    for name in &names {
        let (time, rest) = name.split_once('-').unwrap();
        let time: u64 = time.parse().unwrap();
        assert!(time.abs_diff(crate::now_unix()) < 3600, "{name}");
        let id = rest.strip_suffix(".eml").unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));

        let message = text_of(&std::fs::read(outbox.join(name)).unwrap());
        assert_eq!(header(&message, "From"), ["<lifeboat@pod.example>"]);
        assert_eq!(header(&message, "To"), ["<alice@example.org>"]);
        let subject = header(&message, "Subject")[0];
        let encoded = subject
            .strip_prefix("=?utf-8?B?")
            .and_then(|s| s.strip_suffix("?="))
            .expect(subject);
        use base64::Engine;
        assert_eq!(
            base64::engine::general_purpose::STANDARD.decode(encoded).unwrap(),
            "Grüße".as_bytes()
        );
        assert_eq!(
            header(&message, "Message-ID"),
            [format!("<{id}@pod.example>").as_str()],
            "the file is named after the Message-ID"
        );
        assert_eq!(header(&message, "Auto-Submitted"), ["auto-generated"]);
        assert_eq!(header(&message, "Date").len(), 1);
        assert!(message.contains("https://pod.example/restore/SECRET"), "{message}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&outbox).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(outbox.join(&names[0])).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn a_failed_write_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    // The temporary name is taken by a folder: the write fails and nothing is left.
    std::fs::create_dir(dir.path().join(".1-x.eml.tmp")).unwrap();
    assert!(write_atomically(dir.path(), "1-x.eml", b"hello").is_err());
    assert!(!dir.path().join("1-x.eml").exists());
    let path = write_atomically(dir.path(), "2-y.eml", b"hello").unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"hello");
    assert!(!dir.path().join(".2-y.eml.tmp").exists());
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let backoff = MAIL_BACKOFF;
    let secs: Vec<u64> = (1..=10).map(|n| backoff.delay(n).as_secs()).collect();
    assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    assert_eq!(backoff.delay(u32::MAX).as_secs(), 3600);
    assert_eq!(backoff.give_up_after, Duration::from_secs(3 * 86400));
    let quick = Backoff {
        first: Duration::from_millis(300),
        max: Duration::from_secs(4),
        give_up_after: Duration::from_secs(60),
    };
    let secs: Vec<u64> = (1..=6).map(|n| quick.delay(n).as_secs()).collect();
    assert_eq!(secs, [1, 1, 2, 3, 4, 4], "whole seconds, at least one");
}

#[test]
fn the_helo_name_is_the_public_host() {
    let mut config = Config::default();
    assert_eq!(helo_host(&config), "[127.0.0.1]");
    config.server.public_url = Some("https://pod.example.org".into());
    assert_eq!(helo_host(&config), "pod.example.org");
    config.server.public_url = Some("https://pod.example.org:8443/".into());
    assert_eq!(helo_host(&config), "pod.example.org");
    config.server.public_url = Some("http://[::1]:8080".into());
    assert_eq!(helo_host(&config), "[::1]");
}

/// Records what it is given; fails while `failing`, never answers while `hanging`.
#[derive(Default)]
struct Fake {
    sent: std::sync::Mutex<Vec<Mail>>,
    calls: std::sync::atomic::AtomicU32,
    failing: AtomicBool,
    hanging: AtomicBool,
}

impl Transport for Fake {
    fn send<'a>(&'a self, _from: &'a str, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.hanging.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(Error::Upstream("mail server test: answered 451 busy".into()));
            }
            self.sent.lock().unwrap().push(mail.clone());
            Ok(())
        })
    }
    fn describe(&self) -> String {
        "fake".into()
    }
}

async fn fake_mailer(dir: &Path) -> (Store, Arc<Fake>, Mailer) {
    let store = Store::open(dir).unwrap();
    let fake = Arc::new(Fake::default());
    let mailer = Mailer::with_transport(store.clone(), "lifeboat@pod.example", fake.clone()).unwrap();
    (store, fake, mailer)
}

fn only(store: &Store) -> (u64, QueuedMail) {
    let mut all = store.queued_mails().unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

#[tokio::test]
async fn failures_are_rescheduled_with_backoff_then_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let (store, fake, mailer) = fake_mailer(dir.path()).await;
    fake.failing.store(true, Ordering::SeqCst);
    mailer
        .enqueue(Mail::new("alice@example.org", "Hi", "secret link"))
        .await
        .unwrap();

    let (id, queued) = only(&store);
    assert_eq!((queued.attempts, queued.last_error.as_deref()), (0, None));
    let before = crate::now_unix();
    mailer.attempt(id, queued).await.unwrap();
    let (_, queued) = only(&store);
    assert_eq!(queued.attempts, 1);
    assert!(
        (before + 30..=crate::now_unix() + 30).contains(&queued.next_attempt_unix),
        "{queued:?}"
    );
    assert_eq!(
        queued.last_error.as_deref(),
        Some("mail server test: answered 451 busy")
    );

    let before = crate::now_unix();
    mailer.attempt(id, queued).await.unwrap();
    let (_, mut queued) = only(&store);
    assert_eq!(queued.attempts, 2);
    assert!(
        (before + 60..=crate::now_unix() + 60).contains(&queued.next_attempt_unix),
        "{queued:?}"
    );

    // Three days after it was queued, the next failure is the last.
    queued.created_unix -= 3 * 86400;
    mailer.attempt(id, queued).await.unwrap();
    assert!(store.queued_mails().unwrap().is_empty());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
    assert!(fake.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unusable_queued_mail_is_dropped_without_sending() {
    let dir = tempfile::tempdir().unwrap();
    let (store, fake, mailer) = fake_mailer(dir.path()).await;
    // Written past `enqueue_in`'s check, as a damaged or older entry might be.
    let bad = QueuedMail {
        mail: Mail::new("alice@example.org\r\nBcc: eve@example.org", "Hi", "text"),
        attempts: 0,
        next_attempt_unix: 0,
        created_unix: crate::now_unix(),
        last_error: None,
    };
    store.transaction(|tx| tx.put_mail(7, &bad)).unwrap();
    mailer.attempt(7, bad).await.unwrap();
    assert!(store.queued_mails().unwrap().is_empty());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn mail_debug_output_hides_the_body() {
    let mail = Mail::new("alice@example.org", "Restore", "https://pod.example/restore/SECRET");
    let shown = format!(
        "{:?}",
        QueuedMail {
            mail,
            attempts: 0,
            next_attempt_unix: 0,
            created_unix: 0,
            last_error: None
        }
    );
    assert!(
        shown.contains("alice@example.org") && shown.contains("Restore"),
        "{shown}"
    );
    assert!(!shown.contains("SECRET"), "{shown}");
}

#[tokio::test]
async fn one_worker_only_and_it_stops_even_mid_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, fake, mailer) = fake_mailer(dir.path()).await;
    fake.hanging.store(true, Ordering::SeqCst);
    let (stop, shutdown) = watch::channel(false);
    let worker = tokio::spawn(mailer.clone().run(shutdown.clone()));
    mailer
        .enqueue(Mail::new("alice@example.org", "Hi", "text"))
        .await
        .unwrap();
    for _ in 0..3000 {
        if fake.calls.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        1,
        "the worker is inside a delivery that never ends"
    );

    // A second worker on the same mailer returns at once.
    tokio::time::timeout(Duration::from_secs(60), mailer.clone().run(shutdown))
        .await
        .expect("a second worker refuses to run");

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(60), worker)
        .await
        .expect("the worker stops mid-delivery")
        .unwrap();
    assert!(!mailer.running.load(Ordering::SeqCst), "a new worker may start later");
}

#[tokio::test]
async fn the_default_is_the_outbox_and_enqueued_mail_lands_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let config = Config::default();
    let mailer = Mailer::new(&config, store.clone()).unwrap();
    assert_eq!(mailer.from_address(), "lifeboat@127.0.0.1");
    assert!(mailer.describe().contains("outbox"), "{}", mailer.describe());

    let (stop, shutdown) = watch::channel(false);
    let worker = tokio::spawn(mailer.clone().run(shutdown));
    mailer
        .enqueue(Mail::new("alice@example.org", "Queued", "text"))
        .await
        .unwrap();
    let outbox = dir.path().join("outbox");
    for _ in 0..3000 {
        if store.queued_mails().unwrap().is_empty() && std::fs::read_dir(&outbox).unwrap().count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert!(store.queued_mails().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1);
}
