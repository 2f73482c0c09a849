//! Outgoing mail.
//!
//! Owns: the [`Mail`] a domain hands over and its checks (one ASCII recipient, no
//! header injection); how a message is rendered (From, To, Subject, Date, Message-ID,
//! `Auto-Submitted: auto-generated`, a UTF-8 plain-text body); the two [`Transport`]s —
//! [`SmtpTransport`] (mail-send, as configured in `[mail]`) and [`EmlTransport`] (the
//! embedded default: one `.eml` file per message under `DATA_DIR/outbox/`); the durable
//! queue ([`MailQueueStore`], implemented on the store in `store::mail`) and its one
//! worker ([`Mailer::run`]), which resumes at start and retries with capped exponential
//! backoff ([`Backoff`]).
//!
//! Does not own: what a mail says or which link it carries (each domain writes its own
//! text), nor when a mail is due to be sent (the domain enqueues it, ideally in the same
//! transaction as the change that triggers it: [`Mailer::enqueue_in`]).
//!
//! TLS (`mail.smtp_tls` = `starttls` or `implicit`) verifies the server's certificate
//! against the system's certificate authorities plus those of `mail.smtp_ca_file`
//! ([`crate::tls`]), never less; a refused certificate stops the delivery before any
//! message is sent, and the queue retries it.
//!
//! Logging: recipient, subject and outcome only. Bodies carry secret links and are never
//! logged; SMTP credentials never appear in a message or an error.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mail_send::mail_builder::headers::date::Date;
use mail_send::mail_builder::headers::raw::Raw;
use mail_send::mail_builder::MessageBuilder;
use mail_send::SmtpClientBuilder;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tracing::{error, info, warn};

use crate::config::{Config, MailConfig, SmtpTls};
use crate::store::{Store, Tx};
use crate::tls::ExtraRoots;
use crate::{Error, Result};

/// Time limit for each SMTP step (connect, greeting, each command, the data).
const SMTP_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Time limit for one whole SMTP delivery, connection to QUIT.
const SMTP_TOTAL_TIMEOUT: Duration = Duration::from_secs(120);

/// The worker looks at the queue at least this often, even without a wake: a safety net
/// for a domain that enqueues with [`Mailer::enqueue_in`] and forgets to wake it.
const RESCAN_INTERVAL: Duration = Duration::from_secs(300);

/// Longest address accepted (RFC 5321's limit on a forward path).
const MAX_ADDRESS_LEN: usize = 254;

/// One plain-text message to one recipient.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// The recipient: one address, `local@domain`, nothing else.
    pub to: String,
    /// The subject line; control characters (CR, LF, ...) become spaces when sent.
    pub subject: String,
    /// The body, UTF-8 plain text.
    pub text: String,
}

/// Shows recipient and subject, and only the size of the body: bodies carry secret
/// links, and a `{:?}` must not put one into a log.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .finish()
    }
}

impl Mail {
    /// A mail to `to`.
    pub fn new(to: impl Into<String>, subject: impl Into<String>, text: impl Into<String>) -> Mail {
        Mail {
            to: to.into(),
            subject: subject.into(),
            text: text.into(),
        }
    }

    /// The mail as it will be sent: the recipient checked and normalised
    /// ([`check_address`]), the subject on one line. A recipient that is not exactly one
    /// plain address is refused with [`Error::BadRequest`], so nothing can smuggle a
    /// header or a second recipient in.
    pub fn checked(&self) -> Result<Mail> {
        Ok(Mail {
            to: check_address(&self.to)?,
            subject: one_line(&self.subject),
            text: self.text.clone(),
        })
    }
}

/// Checks that `address` is one plain mail address (`local@domain`, no display name,
/// no angle brackets, no spaces or control characters, no list) and returns it
/// normalised: trimmed, the domain lower-cased and IDNA-encoded. The local part must be
/// ASCII, since the message is sent without SMTPUTF8.
pub fn check_address(address: &str) -> Result<String> {
    let bad = |why: &str| Error::bad(format!("{address:?} is not a usable mail address: {why}"));
    let address = address.trim();
    if address.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("it contains spaces or control characters"));
    }
    let (local, domain) = address.split_once('@').ok_or_else(|| bad("it has no @"))?;
    if local.is_empty() || domain.is_empty() {
        return Err(bad("something is missing before or after the @"));
    }
    if domain.contains('@') {
        return Err(bad("it has more than one @"));
    }
    const SPECIALS: &[char] = &['(', ')', '<', '>', '[', ']', ':', ';', ',', '\\', '"'];
    if !local.is_ascii() || local.contains(SPECIALS) {
        return Err(bad("the part before the @ must be plain ASCII without ()<>[]:;,\\\""));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") || local.len() > 64 {
        return Err(bad("the part before the @ is malformed"));
    }
    let domain = idna::domain_to_ascii(domain).map_err(|_| bad("the domain is not valid"))?;
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Err(bad("the domain is not valid"));
    }
    let normalised = format!("{local}@{domain}");
    if normalised.len() > MAX_ADDRESS_LEN {
        return Err(bad("it is too long"));
    }
    Ok(normalised)
}

/// `text` on one line: every control character (CR and LF above all) becomes a space.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// 16 random bytes as hex: Message-IDs and outbox file names.
fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A rendered RFC 5322 message.
struct Rendered {
    /// The random part of the Message-ID (left of the `@`).
    id: String,
    bytes: Vec<u8>,
}

/// Renders a checked mail: From, To, Subject, Date, Message-ID `<random@from-domain>`,
/// `Auto-Submitted: auto-generated` (RFC 3834: auto-responders stay quiet), MIME-Version
/// and a UTF-8 `text/plain` body. Both transports send exactly these bytes.
fn render(from: &str, mail: &Mail, date_unix: u64) -> Result<Rendered> {
    let id = random_hex();
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let bytes = MessageBuilder::new()
        .from(from)
        .to(mail.to.as_str())
        .subject(mail.subject.as_str())
        .date(Date::new(i64::try_from(date_unix).unwrap_or(i64::MAX)))
        .message_id(format!("{id}@{domain}"))
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .text_body(mail.text.as_str())
        .write_to_vec()
        .map_err(|e| Error::internal(format!("rendering a mail: {e}")))?;
    Ok(Rendered { id, bytes })
}

/// What a [`Transport::send`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// A way to deliver one message. Implementations get a [`Mail::checked`] mail and a
/// checked From address.
pub trait Transport: Send + Sync {
    /// Delivers `mail` from `from`. A server that cannot be reached or refuses the
    /// message is an [`Error::Upstream`]; the queue retries those.
    fn send<'a>(&'a self, from: &'a str, mail: &'a Mail) -> SendFuture<'a>;

    /// One line for the logs saying where mail goes (no credentials).
    fn describe(&self) -> String;
}

/// Delivers over SMTP with mail-send: a fresh connection per message, TLS as configured,
/// credentials if configured, a time limit on every step and on the whole delivery.
pub struct SmtpTransport {
    // Holds the credentials: deliberately not `Debug`.
    builder: SmtpClientBuilder<String>,
    tls: SmtpTls,
    server: String,
    /// Authorities trusted besides the system's (`mail.smtp_ca_file`).
    extra_roots: ExtraRoots,
}

impl SmtpTransport {
    /// A transport for the `[mail]` section; `helo_host` is the name given in EHLO.
    pub fn new(mail: &MailConfig, helo_host: &str) -> Result<SmtpTransport> {
        let host = mail
            .smtp_host
            .clone()
            .ok_or_else(|| Error::Config(vec!["mail.smtp_host: not set".into()]))?;
        let port = u16::try_from(mail.smtp_port)
            .map_err(|_| Error::Config(vec!["mail.smtp_port: must be a port number (1-65535)".into()]))?;
        let server = format!("{host}:{port}");
        let extra_roots = ExtraRoots::from_option(mail.smtp_ca_file.as_deref())
            .map_err(|e| Error::Config(vec![format!("mail.smtp_ca_file: {e}")]))?;
        let tls = match mail.smtp_tls {
            // `deliver` uses `connect_plain` for this mode, which never touches TLS, so the
            // connector is never used; taking mail-send's non-verifying one spares a relay
            // on the same machine from needing the system's CA certificates.
            SmtpTls::None => mail_send::smtp::tls::build_tls_connector(true),
            // Certificates are verified against the system's CA certificates (as
            // mail-send's own default does) and those of `mail.smtp_ca_file`.
            SmtpTls::StartTls | SmtpTls::Implicit => extra_roots.smtp_connector(),
        }
        .map_err(|e| Error::Config(vec![format!("mail.smtp_tls: cannot use TLS with {server}: {e}")]))?;
        // `implicit_tls(false)` makes `connect` upgrade with STARTTLS (and refuse a server
        // that does not offer it).
        let mut builder = SmtpClientBuilder::new_with_tls_connector(host, port, tls)
            .implicit_tls(mail.smtp_tls == SmtpTls::Implicit)
            .timeout(SMTP_STEP_TIMEOUT)
            .helo_host(helo_host);
        if let (Some(user), Some(password)) = (&mail.smtp_username, &mail.smtp_password) {
            builder = builder.credentials((user.clone(), password.clone()));
        }
        Ok(SmtpTransport {
            builder,
            tls: mail.smtp_tls,
            server,
            extra_roots,
        })
    }

    async fn deliver(&self, from: &str, mail: &Mail) -> std::result::Result<(), mail_send::Error> {
        let rendered = render(from, mail, crate::now_unix())
            .map_err(|e| mail_send::Error::Io(std::io::Error::other(e.to_string())))?;
        let mut bytes = rendered.bytes;
        // mail-send ends the data with CRLF "." CRLF itself; a message that already ends
        // in CRLF would arrive with an extra empty line.
        if bytes.ends_with(b"\r\n") {
            bytes.truncate(bytes.len() - 2);
        }
        let message = mail_send::smtp::message::Message::new(from, [mail.to.as_str()], bytes);
        // The server has the message once DATA is accepted; a failed QUIT changes nothing.
        match self.tls {
            SmtpTls::None => {
                let mut client = self.builder.connect_plain().await?;
                client.send(message).await?;
                let _ = client.quit().await;
            }
            SmtpTls::StartTls | SmtpTls::Implicit => {
                let mut client = self.builder.connect().await?;
                client.send(message).await?;
                let _ = client.quit().await;
            }
        }
        Ok(())
    }
}

/// What went wrong, for the logs and `lifeboat mail test`: the server's own reply where
/// there is one (mail-send never puts credentials into its errors).
fn smtp_failure(e: &mail_send::Error) -> String {
    fn reply(code: u16, esc: [u8; 3], message: &str) -> String {
        let esc = if esc[0] != 0 {
            format!(" {}.{}.{}", esc[0], esc[1], esc[2])
        } else {
            String::new()
        };
        format!("{code}{esc} {}", message.trim())
    }
    match e {
        mail_send::Error::UnexpectedReply(r) => {
            format!("answered {}", reply(r.code, r.esc, &r.message))
        }
        mail_send::Error::AuthenticationFailed(r) => {
            format!("refused the credentials: {}", reply(r.code, r.esc, &r.message))
        }
        // rustls's words, and the setting that adds an authority when that would help.
        mail_send::Error::Tls(tls) => {
            let unknown = matches!(
                **tls,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            );
            let hint = if unknown {
                "; the message was not sent (mail.smtp_ca_file adds a certificate authority to trust)"
            } else {
                "; the message was not sent"
            };
            format!("TLS failure: {}{hint}", crate::tls::describe_error(tls))
        }
        other => other.to_string(),
    }
}

impl Transport for SmtpTransport {
    fn send<'a>(&'a self, from: &'a str, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            // mail-send's errors carry the server's reply, never the credentials.
            match tokio::time::timeout(SMTP_TOTAL_TIMEOUT, self.deliver(from, mail)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Error::Upstream(format!(
                    "mail server {}: {}",
                    self.server,
                    smtp_failure(&e)
                ))),
                Err(_) => Err(Error::Upstream(format!(
                    "mail server {}: no answer within {}s",
                    self.server,
                    SMTP_TOTAL_TIMEOUT.as_secs()
                ))),
            }
        })
    }

    fn describe(&self) -> String {
        let tls = match self.tls {
            SmtpTls::None => "no TLS".to_string(),
            SmtpTls::StartTls => format!(
                "STARTTLS, trusting the system's certificate authorities{}",
                self.extra_roots.describe()
            ),
            SmtpTls::Implicit => format!(
                "implicit TLS, trusting the system's certificate authorities{}",
                self.extra_roots.describe()
            ),
        };
        format!("SMTP server {} ({tls})", self.server)
    }
}

/// The embedded default: writes each message as `<unix-time>-<random>.eml` in a folder
/// (`DATA_DIR/outbox/`), atomically (a hidden temporary file, synced, then renamed), and
/// logs where. Files and folder are owner-only: the messages carry secret links.
pub struct EmlTransport {
    dir: PathBuf,
}

impl EmlTransport {
    /// An outbox in `dir`, created (owner-only) if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<EmlTransport> {
        let dir = dir.into();
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        let existed = dir.is_dir();
        builder
            .create(&dir)
            .map_err(|e| Error::internal(format!("cannot create the mail outbox {}: {e}", dir.display())))?;
        if !existed {
            // Its entry in the data folder, so that mail written into it survives a power cut.
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            crate::store::held::sync_folder(parent.unwrap_or(Path::new(".")))?;
        }
        Ok(EmlTransport { dir })
    }

    /// The outbox folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Writes `bytes` to `dir/name` so that a reader sees the whole file or none of it.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let temp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        // Make the rename itself durable.
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(path)
}

impl Transport for EmlTransport {
    fn send<'a>(&'a self, from: &'a str, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            let now = crate::now_unix();
            let rendered = render(from, mail, now)?;
            let dir = self.dir.clone();
            let name = format!("{now}-{}.eml", rendered.id);
            let path = tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &rendered.bytes))
                .await
                .map_err(|e| Error::internal(format!("writing a mail: {e}")))?
                .map_err(|e| Error::internal(format!("cannot write a mail into {}: {e}", self.dir.display())))?;
            info!("mail to {} written to {}", mail.to, path.display());
            Ok(())
        })
    }

    fn describe(&self) -> String {
        format!(".eml files in {} (no SMTP server configured)", self.dir.display())
    }
}

/// A mail in the durable queue (tree `mail_queue`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMail {
    /// The message, as the domain enqueued it.
    pub mail: Mail,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not to be tried before this (Unix seconds).
    pub next_attempt_unix: u64,
    /// When it was enqueued (Unix seconds); the queue gives up [`Backoff::give_up_after`] later.
    pub created_unix: u64,
    /// Why the last attempt failed (the server's reply; never a credential).
    pub last_error: Option<String>,
}

/// Queues `mail` under `id` inside a unit of work, so that it is queued exactly when
/// the change that triggers it is committed (see [`Mailer::enqueue_in`]; whoever
/// commits wakes the mail worker afterwards). An unusable recipient aborts the unit
/// with [`Error::BadRequest`].
pub fn queue_in(tx: &Tx, id: u64, mail: &Mail) -> crate::store::TxResult<()> {
    let mail = mail.checked()?;
    let now = crate::now_unix();
    let queued = QueuedMail {
        mail,
        attempts: 0,
        next_attempt_unix: now,
        created_unix: now,
        last_error: None,
    };
    tx.put_mail(id, &queued)
}

/// The write of the mail queue inside a unit of work; implemented in `store::mail`.
pub trait MailQueueTx {
    /// Adds `mail` under `id`.
    fn put_mail(&self, id: u64, mail: &QueuedMail) -> crate::store::TxResult<()>;
}

/// The storage the mail queue needs; implemented on [`Store`] in `store::mail`.
/// Entries are kept in creation order (their ids come from [`Store::generate_id`]).
pub trait MailQueueStore {
    /// Every queued mail, in creation order. A damaged entry is reported in the log and
    /// left out (`lifeboat check` lists it too).
    fn queued_mails(&self) -> Result<Vec<(u64, QueuedMail)>>;

    /// The queued mails whose next attempt is at or before `now`, in creation order.
    fn due_mails(&self, now: u64) -> Result<Vec<(u64, QueuedMail)>>;

    /// The earliest next attempt of any queued mail.
    fn next_mail_due(&self) -> Result<Option<u64>>;

    /// Removes a mail (sent, or given up); false if it was not there.
    fn remove_mail(&self, id: u64) -> Result<bool>;

    /// Records a failed attempt: the new attempt count, when to try next and why it
    /// failed. False (and nothing written) if the mail is no longer queued.
    fn reschedule_mail(&self, id: u64, attempts: u32, next_attempt_unix: u64, last_error: &str) -> Result<bool>;
}

pub use crate::retry::Backoff;

/// How the mail queue retries: 30 s doubling to 1 h; give up after 3 days.
pub const MAIL_BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(30),
    max: Duration::from_secs(3600),
    give_up_after: Duration::from_secs(3 * 86400),
};

/// Sends lifeboat's mail: through the durable queue ([`Mailer::enqueue`],
/// [`Mailer::enqueue_in`], worked by [`Mailer::run`]) or directly ([`Mailer::send_now`]).
/// Cheap to clone; all clones share one queue and one wake-up.
#[derive(Clone)]
pub struct Mailer {
    store: Store,
    transport: Arc<dyn Transport>,
    from: Arc<str>,
    wake: Arc<Notify>,
    running: Arc<AtomicBool>,
    backoff: Backoff,
}

impl Mailer {
    /// The mailer for `config`: SMTP when `mail.smtp_host` is set, otherwise the `.eml`
    /// outbox in the store's data folder (`DATA_DIR/outbox/`).
    pub fn new(config: &Config, store: Store) -> Result<Mailer> {
        let transport: Arc<dyn Transport> = match &config.mail.smtp_host {
            Some(host) => {
                if config.mail.smtp_tls == SmtpTls::None
                    && config.mail.smtp_username.is_some()
                    && !is_loopback_host(host)
                {
                    warn!("mail: the SMTP password goes to {host} unencrypted (mail.smtp_tls = \"none\")");
                }
                Arc::new(SmtpTransport::new(&config.mail, &helo_host(config))?)
            }
            None => Arc::new(EmlTransport::new(store.dir().join("outbox"))?),
        };
        let from = config.mail_from();
        check_address(&from).map_err(|e| {
            let hint = if config.mail.from.is_none() {
                " (the default, lifeboat@ the public host; set mail.from)"
            } else {
                ""
            };
            Error::Config(vec![format!("mail.from: {e}{hint}")])
        })?;
        Mailer::with_transport(store, &from, transport)
    }

    /// A mailer with any transport (tests, or a transport of a test rig).
    pub fn with_transport(store: Store, from: &str, transport: Arc<dyn Transport>) -> Result<Mailer> {
        let from = check_address(from)?;
        Ok(Mailer {
            store,
            transport,
            from: from.into(),
            wake: Arc::new(Notify::new()),
            running: Arc::new(AtomicBool::new(false)),
            backoff: MAIL_BACKOFF,
        })
    }

    /// Replaces the retry schedule (tests use seconds instead of minutes). Call it
    /// before cloning the mailer: clones made earlier keep the old schedule.
    pub fn with_backoff(mut self, backoff: Backoff) -> Mailer {
        self.backoff = backoff;
        self
    }

    /// The From address of every mail.
    pub fn from_address(&self) -> &str {
        &self.from
    }

    /// Where mail goes, for the start-up log.
    pub fn describe(&self) -> String {
        self.transport.describe()
    }

    /// Queues `mail` under `id` inside the caller's unit of work, so that "the slot
    /// update and the mail it triggers" commit together. Take `id` from
    /// [`Store::generate_id`] before the transaction (the closure may run twice), and
    /// after the commit make it durable and call [`Mailer::wake`]. An unusable
    /// recipient aborts the transaction with [`Error::BadRequest`].
    pub fn enqueue_in(&self, tx: &Tx, id: u64, mail: &Mail) -> crate::store::TxResult<()> {
        queue_in(tx, id, mail)
    }

    /// Queues `mail` on its own, durably, and wakes the worker. Once this returns Ok the
    /// mail will be sent (or given up after [`Backoff::give_up_after`]) even across
    /// restarts.
    pub async fn enqueue(&self, mail: Mail) -> Result<()> {
        let id = self.store.generate_id()?;
        self.store.transaction(|tx| self.enqueue_in(tx, id, &mail))?;
        self.store.durable().await?;
        info!("mail to {} queued: {:?}", mail.to, mail.subject);
        self.wake();
        Ok(())
    }

    /// Tells the worker to look at the queue now.
    pub fn wake(&self) {
        // A permit is stored if the worker is busy, so a wake is never lost.
        self.wake.notify_one();
    }

    /// Sends `mail` at once, bypassing the queue (`lifeboat mail test`): the caller sees
    /// the server's answer.
    pub async fn send_now(&self, mail: &Mail) -> Result<()> {
        let mail = mail.checked()?;
        self.transport.send(&self.from, &mail).await?;
        info!("mail to {} sent: {:?}", mail.to, mail.subject);
        Ok(())
    }

    /// The queue's one worker. Resumes whatever is queued, sends due mails one at a
    /// time, removes each sent one durably, reschedules failures with [`Backoff`], and
    /// sleeps until the next one is due or [`Mailer::wake`] is called. Returns when
    /// `shutdown` turns true (or its sender is dropped); a delivery in flight is then
    /// abandoned and retried at the next start (a mail may arrive twice, never zero
    /// times). A second worker on the same mailer refuses to start.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.running.swap(true, Ordering::SeqCst) {
            error!("mail worker: another worker is already running; this one stops");
            return;
        }
        struct Running(Arc<AtomicBool>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        let _running = Running(self.running.clone());
        info!("mail worker started: {}", self.transport.describe());
        loop {
            let mut store_failed = false;
            let due = self.store.due_mails(crate::now_unix()).unwrap_or_else(|e| {
                error!("mail worker: cannot read the queue: {e}");
                store_failed = true;
                Vec::new()
            });
            for (id, queued) in due {
                tokio::select! {
                    biased;
                    _ = shutdown.wait_for(|&stop| stop) => return,
                    outcome = self.attempt(id, queued) => if let Err(e) = outcome {
                        error!("mail worker: cannot update the queue: {e}");
                        store_failed = true;
                    },
                }
            }
            let mut pause = match self.store.next_mail_due() {
                Ok(Some(next)) => Duration::from_secs(next.saturating_sub(crate::now_unix())).min(RESCAN_INTERVAL),
                Ok(None) => RESCAN_INTERVAL,
                Err(e) => {
                    error!("mail worker: cannot read the queue: {e}");
                    store_failed = true;
                    RESCAN_INTERVAL
                }
            };
            if store_failed {
                // Do not spin (or hammer the mail server) while the store misbehaves.
                pause = pause.max(self.backoff.first);
            }
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|&stop| stop) => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One delivery attempt of a queued mail, and its bookkeeping. Errs only when the
    /// queue cannot be updated.
    async fn attempt(&self, id: u64, queued: QueuedMail) -> Result<()> {
        let (to, subject) = (&queued.mail.to, &queued.mail.subject);
        let outcome = match queued.mail.checked() {
            Ok(mail) => self.transport.send(&self.from, &mail).await,
            Err(e) => Err(e),
        };
        let failures = queued.attempts.saturating_add(1);
        match outcome {
            Ok(()) => {
                self.store.remove_mail(id)?;
                self.store.durable().await?;
                info!("mail to {to} sent: {subject:?}");
            }
            // Retrying cannot fix the message itself. Every other failure is retried:
            // even a permanent-looking refusal may be a relay misconfiguration that the
            // podmin fixes, and these mails carry links someone is waiting for.
            Err(e @ Error::BadRequest(_)) => {
                self.store.remove_mail(id)?;
                self.store.durable().await?;
                error!("mail to {to} dropped, it cannot be sent: {subject:?}: {e}");
            }
            Err(e) => {
                let now = crate::now_unix();
                if now.saturating_sub(queued.created_unix) >= self.backoff.give_up_after.as_secs() {
                    self.store.remove_mail(id)?;
                    self.store.durable().await?;
                    error!("mail to {to} given up after {failures} attempts: {subject:?}: {e}");
                } else {
                    let delay = self.backoff.delay(failures);
                    self.store
                        .reschedule_mail(id, failures, now + delay.as_secs(), &e.to_string())?;
                    self.store.durable().await?;
                    warn!(
                        "mail to {to} failed (attempt {failures}), next try in {}s: {subject:?}: {e}",
                        delay.as_secs()
                    );
                }
            }
        }
        Ok(())
    }
}

/// The EHLO name: the public host without its port, an IP address as a literal.
fn helo_host(config: &Config) -> String {
    let host = config.public_host();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h.to_string(),
        _ => host,
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        format!("[{bare}]")
    } else {
        host
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests;
