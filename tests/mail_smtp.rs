//! Outgoing mail against a real SMTP server: Python's aiosmtpd, started as a child
//! process on a free loopback port. It stores every accepted message as a JSON file,
//! with the headers and body decoded by Python's own `email` package, so these tests
//! check what a real mail reader sees, not what our renderer meant to write.
//!
//! The TLS tests give it certificates from a CA made for the test by
//! `tests/e2e/testca.py`, and the mailer that CA in `mail.smtp_ca_file`.
//!
//! python3 with aiosmtpd and cryptography is required (the `.venv` that
//! `scripts/test.sh` makes from `tests/e2e/requirements.txt`); without them these tests
//! fail with a message saying so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lifeboat::config::{Config, Overrides};
use lifeboat::mail::{Backoff, Mail, MailQueueStore, Mailer};
use lifeboat::store::Store;
use lifeboat::Error;
use serde::Deserialize;
use tokio::sync::watch;

/// The SMTP server: accepts, refuses the first `--refuse` messages with a 451, and
/// requires `--auth user:password` (AUTH PLAIN/LOGIN without TLS) if given. With
/// `--tls starttls` it offers STARTTLS (and requires it with `--require-starttls`),
/// with `--tls implicit` it speaks TLS from the first byte, with the certificate
/// `--cert` and key `--key`. Each stored message says which TLS version it came over.
const SERVER: &str = r#"
import argparse, asyncio, email, email.policy, email.utils, json, os, ssl
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

args = argparse.ArgumentParser()
args.add_argument("--port", type=int, required=True)
args.add_argument("--dir", required=True)
args.add_argument("--refuse", type=int, default=0)
args.add_argument("--auth")
args.add_argument("--tls", choices=["starttls", "implicit"])
args.add_argument("--cert")
args.add_argument("--key")
args.add_argument("--require-starttls", action="store_true")
args = args.parse_args()

class Handler:
    def __init__(self):
        self.stored = 0
        self.refused = 0

    async def handle_DATA(self, server, session, envelope):
        if self.refused < args.refuse:
            self.refused += 1
            return "451 4.3.0 mailbox busy, try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        ssl_object = server.transport.get_extra_info("ssl_object")
        record = {
            "tls": ssl_object.version() if ssl_object else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[name, str(value)] for name, value in message.items()],
            "date_unix": email.utils.parsedate_to_datetime(message["Date"]).timestamp(),
            "content_type": message.get_content_type(),
            "charset": message.get_content_charset(),
            "body": message.get_content(),
            "raw": envelope.content.decode("utf-8", "replace"),
        }
        self.stored += 1
        path = os.path.join(args.dir, "%04d.json" % self.stored)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 stored"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and \
        args.auth == auth_data.login.decode() + ":" + auth_data.password.decode()
    return AuthResult(success=ok, handled=False)

async def main():
    options = {}
    if args.auth:
        options = dict(auth_required=True, auth_require_tls=False, authenticator=authenticator)
    implicit = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        if args.tls == "starttls":
            options.update(tls_context=context, require_starttls=args.require_starttls)
        else:
            implicit = context
    handler = Handler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp.test", **options), "127.0.0.1", args.port, ssl=implicit)
    await server.serve_forever()

asyncio.run(main())
"#;

/// How long a test waits for something that should happen in well under a second,
/// before failing instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// One message as the SMTP server stored it.
#[derive(Debug, Deserialize)]
struct Received {
    mail_from: String,
    rcpt_tos: Vec<String>,
    headers: Vec<(String, String)>,
    date_unix: f64,
    content_type: String,
    charset: Option<String>,
    body: String,
    /// The message as it came over the wire, for failure messages.
    raw: String,
    /// The TLS version it came over (`TLSv1.3`), or none for clear text.
    tls: Option<String>,
}

impl Received {
    /// Every value of header `name`.
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of a header that must be there exactly once.
    fn one(&self, name: &str) -> &str {
        match self.header(name).as_slice() {
            [value] => value,
            other => panic!("expected one {name} header, got {other:?} in {self:?}"),
        }
    }
}

/// aiosmtpd as a child process, killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    async fn start(port: u16, extra: &[&str]) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let child = Command::new("python3")
            .arg("-c")
            .arg(SERVER)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("these tests need python3 with aiosmtpd (pip install aiosmtpd) as a real SMTP server; python3 did not start: {e}")
            });
        let mut server = SmtpServer { child, port, dir };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                let stderr = std::fs::read_to_string(server.dir.path().join("stderr")).unwrap_or_default();
                panic!(
                    "the test SMTP server (python3 with aiosmtpd) exited with {status} before listening; \
                     is aiosmtpd installed (pip install aiosmtpd)?\n{stderr}"
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the test SMTP server did not listen on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The messages stored so far, in arrival order.
    fn received(&self) -> Vec<Received> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits until at least `n` messages have arrived and returns them all.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        wait_until(&format!("{n} messages at the SMTP server"), || {
            self.received().len() >= n
        })
        .await;
        self.received()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A configuration sending through 127.0.0.1:`port`, loaded the way `serve` loads it.
fn config(data_dir: &Path, port: u16, more: &[(&str, &str)]) -> Config {
    let mut env: BTreeMap<String, String> = [
        ("LIFEBOAT_MAIL_SMTP_HOST", "127.0.0.1".to_string()),
        ("LIFEBOAT_MAIL_SMTP_PORT", port.to_string()),
        ("LIFEBOAT_MAIL_SMTP_TLS", "none".to_string()),
        ("LIFEBOAT_MAIL_FROM", "lifeboat@pod.example".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in more {
        env.insert(k.to_string(), v.to_string());
    }
    let overrides = Overrides {
        data_dir: Some(data_dir.to_path_buf()),
        ..Overrides::default()
    };
    Config::load(None, &env, &overrides).unwrap().config
}

/// Opens the store in `dir`, waiting for a previous store on it to let go (its
/// group-commit task holds sled's lock until it has run once more).
async fn open_store(dir: &Path) -> Store {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match Store::open(dir) {
            Ok(store) => return store,
            Err(failure) if Instant::now() >= deadline => {
                panic!("the store does not open: {failure:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn quick() -> Backoff {
    Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(2),
        give_up_after: Duration::from_secs(3600),
    }
}

/// The worker, running until `stop`.
struct Worker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn start(mailer: &Mailer) -> Worker {
        let (stop, shutdown) = watch::channel(false);
        Worker {
            stop,
            task: tokio::spawn(mailer.clone().run(shutdown)),
        }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the worker stops when told")
            .unwrap();
    }
}

/// The body every test sends: a link, a line that is a lone dot (SMTP's end of data
/// unless stuffed), non-ASCII text.
const BODY: &str =
    "Hello Alice,\n\nrestore your account: https://pod.example/restore/SECRET-TOKEN\n.\nGrüße, lifeboat\n";

fn assert_delivered(got: &Received, to: &str, subject: &str, body: &str, sent_between: (f64, f64)) {
    assert_eq!(got.mail_from, "lifeboat@pod.example", "envelope sender");
    assert_eq!(got.rcpt_tos, [to], "envelope recipient");
    assert_eq!(got.one("From").trim_matches(['<', '>']), "lifeboat@pod.example");
    assert_eq!(got.one("To").trim_matches(['<', '>']), to);
    assert_eq!(got.one("Subject"), subject);
    assert_eq!(got.one("Auto-Submitted"), "auto-generated");
    let id = got.one("Message-ID");
    let random = id
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix("@pod.example>"))
        .unwrap_or_else(|| panic!("Message-ID {id}"));
    assert!(
        random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()),
        "Message-ID {id}"
    );
    // The Date header has whole seconds.
    assert!(
        got.date_unix >= sent_between.0.floor() && got.date_unix <= sent_between.1.ceil(),
        "Date {} is the time of sending {sent_between:?}",
        got.one("Date")
    );
    assert_eq!(got.content_type, "text/plain");
    assert_eq!(got.charset.as_deref(), Some("utf-8"));
    // Text travels with CRLF line ends; Python hands them back as they came.
    assert_eq!(got.body.replace("\r\n", "\n"), body, "{}", got.raw);
}

#[tokio::test]
async fn send_now_delivers_through_a_real_smtp_server() {
    let smtp = SmtpServer::start(free_port(), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mailer = Mailer::new(&config(dir.path(), smtp.port, &[]), store).unwrap();
    assert!(
        mailer.describe().contains(&format!("127.0.0.1:{}", smtp.port)),
        "{}",
        mailer.describe()
    );

    let before = unix_now();
    let subject = "Your lifeboat backup – Grüße";
    mailer
        .send_now(&Mail::new("Alice@Example.ORG", subject, BODY))
        .await
        .unwrap();
    let after = unix_now();

    let got = smtp.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_delivered(&got[0], "Alice@example.org", subject, BODY, (before, after));
    assert!(
        !dir.path().join("outbox").exists(),
        "with SMTP configured, no .eml outbox"
    );
}

#[tokio::test]
async fn the_queue_delivers_each_mail_once_through_the_worker() {
    let smtp = SmtpServer::start(free_port(), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mailer = Mailer::new(&config(dir.path(), smtp.port, &[]), store.clone()).unwrap();
    let worker = Worker::start(&mailer);

    let before = unix_now();
    mailer
        .enqueue(Mail::new("alice@example.org", "First", BODY))
        .await
        .unwrap();
    // The domain's way: the mail commits with the change that triggers it.
    let id = store.generate_id().unwrap();
    store
        .transaction(|tx| mailer.enqueue_in(tx, id, &Mail::new("bob@example.org", "Second", "Hi Bob\n")))
        .unwrap();
    store.durable().await.unwrap();
    mailer.wake();

    let got = smtp.wait_for(2).await;
    wait_until("an empty queue", || store.queued_mails().unwrap().is_empty()).await;
    worker.stop().await;
    let after = unix_now();

    let got_after = smtp.received();
    assert_eq!(got_after.len(), 2, "each mail exactly once");
    assert_eq!(got.len(), 2);
    assert_delivered(&got[0], "alice@example.org", "First", BODY, (before, after));
    assert_delivered(&got[1], "bob@example.org", "Second", "Hi Bob\n", (before, after));
    assert_ne!(got[0].one("Message-ID"), got[1].one("Message-ID"));
}

#[tokio::test]
async fn a_mail_with_a_bad_recipient_is_refused_before_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mailer = Mailer::new(&config(dir.path(), free_port(), &[]), store.clone()).unwrap();
    let injected = Mail::new("alice@example.org\r\nBcc: eve@example.org", "Hi", "text");
    assert!(matches!(
        mailer.enqueue(injected.clone()).await,
        Err(Error::BadRequest(_))
    ));
    assert!(matches!(mailer.send_now(&injected).await, Err(Error::BadRequest(_))));
    assert!(store.queued_mails().unwrap().is_empty(), "nothing was queued");
}

#[tokio::test]
async fn refusals_are_upstream_errors_with_the_reply_but_no_credentials() {
    // A server that wants other credentials.
    let smtp = SmtpServer::start(free_port(), &["--auth", "lifeboat:the-right-one"]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let password = "wrong-S3CRET-pass";
    let config = config(
        dir.path(),
        smtp.port,
        &[
            ("LIFEBOAT_MAIL_SMTP_USERNAME", "lifeboat"),
            ("LIFEBOAT_MAIL_SMTP_PASSWORD", password),
        ],
    );
    let mailer = Mailer::new(&config, store).unwrap();
    match mailer.send_now(&Mail::new("alice@example.org", "Hi", "text")).await {
        Err(Error::Upstream(message)) => {
            assert!(
                message.starts_with(&format!("mail server 127.0.0.1:{}", smtp.port)),
                "{message}"
            );
            assert!(message.contains("535"), "the server's reply is kept: {message}");
            assert!(
                !message.contains(password) && !message.contains("S3CRET"),
                "no credentials: {message}"
            );
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
    assert!(smtp.received().is_empty());
    drop(smtp);

    // The right credentials pass.
    let smtp = SmtpServer::start(free_port(), &["--auth", "lifeboat:the-right-one"]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let config = crate::config(
        dir.path(),
        smtp.port,
        &[
            ("LIFEBOAT_MAIL_SMTP_USERNAME", "lifeboat"),
            ("LIFEBOAT_MAIL_SMTP_PASSWORD", "the-right-one"),
        ],
    );
    Mailer::new(&config, store)
        .unwrap()
        .send_now(&Mail::new("alice@example.org", "Hi", "text\n"))
        .await
        .unwrap();
    assert_eq!(smtp.wait_for(1).await.len(), 1);
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_by_the_queue() {
    let smtp = SmtpServer::start(free_port(), &["--refuse", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mailer = Mailer::new(&config(dir.path(), smtp.port, &[]), store.clone())
        .unwrap()
        .with_backoff(quick());

    // Directly, the caller sees the refusal.
    match mailer.send_now(&Mail::new("alice@example.org", "Hi", "text")).await {
        Err(Error::Upstream(message)) => assert!(
            message.ends_with("answered 451 4.3.0 mailbox busy, try again later"),
            "{message}"
        ),
        other => panic!("expected an upstream error, got {other:?}"),
    }
    drop(smtp);

    // Through the queue, the refusal is recorded and the mail retried.
    let smtp = SmtpServer::start(free_port(), &["--refuse", "1"]).await;
    let mailer = Mailer::new(&config(dir.path(), smtp.port, &[]), store.clone())
        .unwrap()
        .with_backoff(quick());
    let worker = Worker::start(&mailer);
    mailer
        .enqueue(Mail::new("alice@example.org", "Retried", "text\n"))
        .await
        .unwrap();
    let got = smtp.wait_for(1).await;
    wait_until("an empty queue", || store.queued_mails().unwrap().is_empty()).await;
    worker.stop().await;
    assert_eq!(got.len(), 1);
    assert_eq!(smtp.received().len(), 1, "exactly once");
    assert_eq!(got[0].one("Subject"), "Retried");
}

#[tokio::test]
async fn queued_mail_survives_a_restart_and_arrives_once() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), port, &[]);
    let before = unix_now();
    {
        // No server on the port yet: the worker fails and reschedules.
        let store = Store::open(dir.path()).unwrap();
        let mailer = Mailer::new(&config, store.clone()).unwrap().with_backoff(quick());
        let worker = Worker::start(&mailer);
        mailer
            .enqueue(Mail::new("alice@example.org", "Survivor", BODY))
            .await
            .unwrap();
        wait_until("a failed attempt", || {
            store
                .queued_mails()
                .unwrap()
                .first()
                .is_some_and(|(_, q)| q.attempts >= 1)
        })
        .await;
        worker.stop().await;
        let queued = store.queued_mails().unwrap();
        assert_eq!(queued.len(), 1);
        let error = queued[0].1.last_error.as_deref().unwrap();
        assert!(error.starts_with(&format!("mail server 127.0.0.1:{port}")), "{error}");
        assert!(!error.contains("SECRET-TOKEN"));
    }

    // A new process, so to speak: the store reopened, a server on the port, a new worker.
    let smtp = SmtpServer::start(port, &[]).await;
    let store = open_store(dir.path()).await;
    assert_eq!(
        store.queued_mails().unwrap().len(),
        1,
        "the mail is still queued after the restart"
    );
    let mailer = Mailer::new(&config, store.clone()).unwrap().with_backoff(quick());
    let worker = Worker::start(&mailer);
    let got = smtp.wait_for(1).await;
    wait_until("an empty queue", || store.queued_mails().unwrap().is_empty()).await;
    worker.stop().await;
    let after = unix_now();

    assert_eq!(smtp.received().len(), 1, "exactly once");
    assert_delivered(&got[0], "alice@example.org", "Survivor", BODY, (before, after));
    drop(mailer);
    drop(store);
    let store = open_store(dir.path()).await;
    assert!(store.queued_mails().unwrap().is_empty(), "the removal was durable");
}

#[tokio::test]
async fn the_tls_modes_map_to_starttls_and_implicit_tls() {
    // aiosmtpd here offers no STARTTLS and speaks plain text from the first byte.
    let smtp = SmtpServer::start(free_port(), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    let starttls = config(dir.path(), smtp.port, &[("LIFEBOAT_MAIL_SMTP_TLS", "starttls")]);
    let mailer = Mailer::new(&starttls, store.clone()).unwrap();
    assert!(mailer.describe().contains("STARTTLS"), "{}", mailer.describe());
    match mailer.send_now(&Mail::new("alice@example.org", "Hi", "text")).await {
        Err(Error::Upstream(message)) => assert!(
            message.contains("STARTTLS"),
            "refuses to go on without STARTTLS: {message}"
        ),
        other => panic!("expected an upstream error, got {other:?}"),
    }

    let implicit = config(dir.path(), smtp.port, &[("LIFEBOAT_MAIL_SMTP_TLS", "implicit")]);
    let mailer = Mailer::new(&implicit, store).unwrap();
    assert!(mailer.describe().contains("implicit TLS"), "{}", mailer.describe());
    match mailer.send_now(&Mail::new("alice@example.org", "Hi", "text")).await {
        Err(Error::Upstream(message)) => assert!(
            message.contains(": TLS failure: "),
            "a TLS handshake was attempted: {message}"
        ),
        other => panic!("expected an upstream error, got {other:?}"),
    }
    assert!(smtp.received().is_empty(), "nothing went out in clear text");
}

/// Certificates made for one test by `tests/e2e/testca.py` (Python's `cryptography`): a
/// CA (`ca.pem`), a server certificate from it for 127.0.0.1 (`good`), one from it for
/// another name (`misnamed`), and one from a CA nobody trusts (`stranger`).
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/testca.py");
        let out = Command::new("python3")
            .arg(&script)
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("python3 did not start: {e}"));
        assert!(
            out.status.success(),
            "testca.py failed (python3 needs the `cryptography` module of tests/e2e/requirements.txt):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Certs { dir }
    }

    fn ca(&self) -> String {
        self.path("ca.pem")
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    /// The server arguments for `mode` with the certificate `which`.
    fn server_args(&self, mode: &str, which: &str) -> Vec<String> {
        vec![
            "--tls".into(),
            mode.into(),
            "--cert".into(),
            self.path(&format!("{which}.pem")),
            "--key".into(),
            self.path(&format!("{which}.key")),
        ]
    }
}

async fn tls_server(port: u16, args: &[String]) -> SmtpServer {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    SmtpServer::start(port, &args).await
}

fn upstream(result: lifeboat::Result<()>) -> String {
    match result {
        Err(Error::Upstream(message)) => message,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

#[tokio::test]
async fn starttls_and_implicit_tls_deliver_when_the_ca_file_vouches_for_the_server() {
    let certs = Certs::make();
    for (mode, tls) in [("starttls", "STARTTLS"), ("implicit", "implicit TLS")] {
        let mut args = certs.server_args(mode, "good");
        args.push("--require-starttls".into());
        let smtp = tls_server(free_port(), &args).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ca = certs.ca();
        let trusting = config(
            dir.path(),
            smtp.port,
            &[("LIFEBOAT_MAIL_SMTP_TLS", mode), ("LIFEBOAT_MAIL_SMTP_CA_FILE", &ca)],
        );
        let mailer = Mailer::new(&trusting, store.clone()).unwrap();
        assert!(
            mailer.describe().contains(&format!(
                "({tls}, trusting the system's certificate authorities and 1 more from {ca})"
            )),
            "{}",
            mailer.describe()
        );
        let before = unix_now();
        mailer
            .send_now(&Mail::new("alice@example.org", "Over TLS", BODY))
            .await
            .unwrap();
        let got = smtp.wait_for(1).await;
        assert_delivered(&got[0], "alice@example.org", "Over TLS", BODY, (before, unix_now()));
        assert!(
            got[0].tls.as_deref().is_some_and(|v| v.starts_with("TLS")),
            "{mode}: {:?}",
            got[0].tls
        );

        // Without the CA file the same server is not trusted: the system's roots do
        // not hold the test CA.
        let system_only = config(dir.path(), smtp.port, &[("LIFEBOAT_MAIL_SMTP_TLS", mode)]);
        let message = upstream(
            Mailer::new(&system_only, store)
                .unwrap()
                .send_now(&Mail::new("alice@example.org", "Hi", "text"))
                .await,
        );
        assert!(
            message.contains("TLS failure: its certificate is not from a certificate authority this pod trusts")
                && message.contains("UnknownIssuer")
                && message.contains("mail.smtp_ca_file adds a certificate authority"),
            "{mode}: {message}"
        );
        assert_eq!(smtp.received().len(), 1, "{mode}: the refused mail did not arrive");
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let certs = Certs::make();
    let smtp = tls_server(free_port(), &certs.server_args("implicit", "misnamed")).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = certs.ca();
    let config = config(
        dir.path(),
        smtp.port,
        &[
            ("LIFEBOAT_MAIL_SMTP_TLS", "implicit"),
            ("LIFEBOAT_MAIL_SMTP_CA_FILE", &ca),
        ],
    );
    let mailer = Mailer::new(&config, Store::open(dir.path()).unwrap()).unwrap();
    let message = upstream(mailer.send_now(&Mail::new("alice@example.org", "Hi", "text")).await);
    assert!(
        message.contains("its certificate is for another host name") && message.contains("the message was not sent"),
        "{message}"
    );
    assert!(
        !message.contains("mail.smtp_ca_file"),
        "another authority would not help: {message}"
    );
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn a_refused_certificate_keeps_the_mail_queued_until_the_server_has_a_trusted_one() {
    let certs = Certs::make();
    let port = free_port();
    // Offers STARTTLS but would take mail in clear text too: a client that fell back
    // after refusing the certificate would be seen here.
    let smtp = tls_server(port, &certs.server_args("starttls", "stranger")).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ca = certs.ca();
    let config = config(
        dir.path(),
        port,
        &[
            ("LIFEBOAT_MAIL_SMTP_TLS", "starttls"),
            ("LIFEBOAT_MAIL_SMTP_CA_FILE", &ca),
        ],
    );
    let mailer = Mailer::new(&config, store.clone()).unwrap().with_backoff(quick());
    let worker = Worker::start(&mailer);
    mailer
        .enqueue(Mail::new("alice@example.org", "Patience", BODY))
        .await
        .unwrap();
    wait_until("two refused attempts", || {
        store
            .queued_mails()
            .unwrap()
            .first()
            .is_some_and(|(_, q)| q.attempts >= 2)
    })
    .await;
    let queued = store.queued_mails().unwrap();
    assert_eq!(queued.len(), 1, "the mail stays queued");
    let error = queued[0].1.last_error.as_deref().unwrap();
    assert!(
        error.contains("its certificate is not from a certificate authority this pod trusts"),
        "{error}"
    );
    assert!(
        smtp.received().is_empty(),
        "nothing was sent, in clear text or otherwise"
    );
    drop(smtp);

    // The server gets a certificate from the trusted CA: the next retry delivers it.
    let smtp = tls_server(port, &certs.server_args("starttls", "good")).await;
    let got = smtp.wait_for(1).await;
    wait_until("an empty queue", || store.queued_mails().unwrap().is_empty()).await;
    worker.stop().await;
    assert_eq!(smtp.received().len(), 1, "exactly once");
    assert_eq!(got[0].one("Subject"), "Patience");
    assert!(got[0].tls.is_some(), "over TLS");
}
