//! Configuration: every option declared once, with its default, a doc line and its
//! validation (the `options!` table below).
//!
//! Sources, later ones winning: the embedded defaults, a TOML file (`--config`),
//! `LIFEBOAT_SECTION_KEY` environment variables, then the `serve` command-line flags.
//! Unknown TOML keys are errors; unknown `LIFEBOAT_*` variables are warnings. All
//! problems are collected and reported together, never one at a time and never as a
//! panic. The shipped `lifeboat.example.toml` is generated from this table
//! (`lifeboat config example`) and a test keeps the two identical.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};

/// Environment variables that start with `LIFEBOAT_` but are not options.
const NON_OPTION_ENV: &[&str] = &["LIFEBOAT_PASSPHRASE", "LIFEBOAT_LOG"];

/// A value an option can hold: read from TOML or from an environment string, and
/// written back as TOML for the example file.
pub trait OptionValue: Sized {
    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String>;
    fn from_env(text: &str) -> std::result::Result<Self, String>;
    fn to_toml(&self) -> Option<String>;
}

impl OptionValue for String {
    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "expected a string".into())
    }
    fn from_env(text: &str) -> std::result::Result<Self, String> {
        Ok(text.to_string())
    }
    fn to_toml(&self) -> Option<String> {
        Some(toml::Value::String(self.clone()).to_string())
    }
}

impl OptionValue for Option<String> {
    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
        String::from_toml(value).map(Some)
    }
    fn from_env(text: &str) -> std::result::Result<Self, String> {
        Ok((!text.is_empty()).then(|| text.to_string()))
    }
    fn to_toml(&self) -> Option<String> {
        self.as_ref().and_then(OptionValue::to_toml)
    }
}

impl OptionValue for bool {
    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
        value.as_bool().ok_or_else(|| "expected true or false".into())
    }
    fn from_env(text: &str) -> std::result::Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("expected true or false, got {text:?}")),
        }
    }
    fn to_toml(&self) -> Option<String> {
        Some(self.to_string())
    }
}

macro_rules! integer_option {
    ($($t:ty),*) => {$(
        impl OptionValue for $t {
            fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
                let n = value.as_integer().ok_or("expected a whole number")?;
                <$t>::try_from(n).map_err(|_| format!("{n} is out of range"))
            }
            fn from_env(text: &str) -> std::result::Result<Self, String> {
                text.trim().parse().map_err(|_| format!("expected a whole number, got {text:?}"))
            }
            fn to_toml(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}
integer_option!(u32, u64, usize);

impl OptionValue for Vec<String> {
    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
        let items = value.as_array().ok_or("expected a list of strings")?;
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "expected a list of strings".to_string())
            })
            .collect()
    }
    fn from_env(text: &str) -> std::result::Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }
    fn to_toml(&self) -> Option<String> {
        let items: Vec<toml::Value> = self.iter().cloned().map(toml::Value::String).collect();
        Some(toml::Value::Array(items).to_string())
    }
}

impl OptionValue for SocketAddr {
    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
        Self::from_env(value.as_str().ok_or("expected a string like \"127.0.0.1:8080\"")?)
    }
    fn from_env(text: &str) -> std::result::Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an address like 127.0.0.1:8080"))
    }
    fn to_toml(&self) -> Option<String> {
        Some(format!("\"{self}\""))
    }
}

impl OptionValue for PathBuf {
    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
        value
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| "expected a path string".into())
    }
    fn from_env(text: &str) -> std::result::Result<Self, String> {
        Ok(PathBuf::from(text))
    }
    fn to_toml(&self) -> Option<String> {
        Some(toml::Value::String(self.display().to_string()).to_string())
    }
}

impl OptionValue for Option<PathBuf> {
    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
        PathBuf::from_toml(value).map(Some)
    }
    fn from_env(text: &str) -> std::result::Result<Self, String> {
        Ok((!text.is_empty()).then(|| PathBuf::from(text)))
    }
    fn to_toml(&self) -> Option<String> {
        self.as_ref().and_then(OptionValue::to_toml)
    }
}

/// A duration written `30s`, `15m`, `72h` or `30d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl Span {
    pub const fn secs(s: u64) -> Span {
        Span(Duration::from_secs(s))
    }
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl OptionValue for Span {
    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
        Self::from_env(
            value
                .as_str()
                .ok_or("expected a duration string like \"30s\", \"15m\", \"72h\" or \"30d\"")?,
        )
    }
    fn from_env(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let bad = || format!("{text:?} is not a duration like 30s, 15m, 72h or 30d");
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().map_err(|_| bad())?;
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(bad()),
        };
        n.checked_mul(scale)
            .map(|s| Span(Duration::from_secs(s)))
            .ok_or_else(bad)
    }
    fn to_toml(&self) -> Option<String> {
        let s = self.0.as_secs();
        let text = if s % 86400 == 0 && s > 0 {
            format!("{}d", s / 86400)
        } else if s % 3600 == 0 && s > 0 {
            format!("{}h", s / 3600)
        } else if s % 60 == 0 && s > 0 {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        };
        Some(format!("\"{text}\""))
    }
}

/// An option whose value is one of a few keywords, written as a TOML string: the
/// enum's variants and their words, once.
macro_rules! keyword_option {
    ($ty:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        impl OptionValue for $ty {
            fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
                let words: &[&str] = &[$($word),+];
                Self::from_env(value.as_str().ok_or_else(|| format!("expected {}", quoted_choices(words)))?)
            }
            fn from_env(text: &str) -> std::result::Result<Self, String> {
                match text.trim() {
                    $($word => Ok($ty::$variant),)+
                    other => Err(format!("{other:?} is not one of {}", [$($word),+].join(", "))),
                }
            }
            fn to_toml(&self) -> Option<String> {
                Some(match self { $($ty::$variant => format!("\"{}\"", $word),)+ })
            }
        }
    };
}

/// `"a", "b" or "c"`.
fn quoted_choices(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (only for a relay on the same machine).
    None,
    /// Upgrade with STARTTLS (usually port 587).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Implicit,
}

keyword_option!(SmtpTls { None = "none", StartTls = "starttls", Implicit = "implicit" });

/// Which pods the automatic choice of a backup pod may take (`backups.choose_from`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChooseFrom {
    /// Any pod known through verified federation or the configuration that accepts
    /// backups; vetted ones preferred.
    Known,
    /// Only `seed_pods` and `approved_pods`.
    Vetted,
}

keyword_option!(ChooseFrom { Known = "known", Vetted = "vetted" });

/// Declares the configuration once: sections, options, types, defaults, doc lines and
/// per-option validation. Generates the section structs, the loader, the environment
/// names and the example file.
macro_rules! options {
    ($(
        $(#[doc = $sdoc:literal])*
        $section:ident : $Section:ident {
            $( $key:ident : $ty:ty = $default:expr, $doc:literal, $check:expr; )*
        }
    )*) => {
        $(
            $(#[doc = $sdoc])*
            #[derive(Clone, Debug)]
            pub struct $Section { $( #[doc = $doc] pub $key: $ty, )* }

            impl Default for $Section {
                fn default() -> Self {
                    $Section { $( $key: $default, )* }
                }
            }
        )*

        /// The whole configuration, one field per section.
        #[derive(Clone, Debug, Default)]
        pub struct Config { $( pub $section: $Section, )* }

        impl Config {
            /// Every option as (section, key, doc, default as TOML or None when unset).
            pub fn describe() -> Vec<(&'static str, &'static str, &'static str, Option<String>)> {
                let defaults = Config::default();
                let mut out = Vec::new();
                $( $( out.push((stringify!($section), stringify!($key), $doc, OptionValue::to_toml(&defaults.$section.$key))); )* )*
                out
            }

            fn apply_toml(&mut self, table: &toml::Table, problems: &mut Vec<String>) {
                for (name, value) in table {
                    let Some(section) = value.as_table() else {
                        problems.push(format!("{name}: expected a [section], not a value"));
                        continue;
                    };
                    match name.as_str() {
                        $( stringify!($section) => {
                            for (key, value) in section {
                                match key.as_str() {
                                    $( stringify!($key) => match <$ty as OptionValue>::from_toml(value) {
                                        Ok(v) => self.$section.$key = v,
                                        Err(e) => problems.push(format!("{}.{}: {e}", stringify!($section), stringify!($key))),
                                    }, )*
                                    other => problems.push(format!("{name}.{other}: unknown option")),
                                }
                            }
                        } )*
                        other => problems.push(format!("[{other}]: unknown section")),
                    }
                }
            }

            fn apply_env(&mut self, vars: &BTreeMap<String, String>, problems: &mut Vec<String>, warnings: &mut Vec<String>) {
                for (name, text) in vars {
                    let Some(rest) = name.strip_prefix("LIFEBOAT_") else { continue };
                    let rest = rest.to_ascii_lowercase();
                    let mut known = NON_OPTION_ENV.contains(&name.as_str());
                    $( $(
                        if rest == concat!(stringify!($section), "_", stringify!($key)) {
                            known = true;
                            match <$ty as OptionValue>::from_env(text) {
                                Ok(v) => self.$section.$key = v,
                                Err(e) => problems.push(format!("{name}: {e}")),
                            }
                        }
                    )* )*
                    if !known {
                        warnings.push(format!("{name} is not a lifeboat option; ignored"));
                    }
                }
            }

            fn check_each(&self, problems: &mut Vec<String>) {
                $( $(
                    let check: fn(&$ty) -> std::result::Result<(), String> = $check;
                    if let Err(e) = check(&self.$section.$key) {
                        problems.push(format!("{}.{}: {e}", stringify!($section), stringify!($key)));
                    }
                )* )*
            }
        }
    };
}

fn any<T>(_: &T) -> std::result::Result<(), String> {
    Ok(())
}

fn pod_urls(urls: &Vec<String>) -> std::result::Result<(), String> {
    for url in urls {
        check_http_url(url).map_err(|e| format!("{url:?}: {e}"))?;
    }
    Ok(())
}

fn optional_url(url: &Option<String>) -> std::result::Result<(), String> {
    url.as_deref().map_or(Ok(()), check_http_url)
}

fn check_http_url(url: &str) -> std::result::Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') || rest.contains(['?', '#', ' ']) {
        return Err("must be a plain URL like https://pod.example.org".into());
    }
    Ok(())
}

fn proxies(list: &Vec<String>) -> std::result::Result<(), String> {
    for entry in list {
        entry
            .parse::<IpAddr>()
            .map_err(|_| format!("{entry:?} is not an IP address"))?;
    }
    Ok(())
}

fn usernames(list: &Vec<String>) -> std::result::Result<(), String> {
    for name in list {
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!("{name:?} is not a username (1-32 of a-z, 0-9, _)"));
        }
    }
    Ok(())
}

/// A configured CA bundle must be readable and hold only usable CA certificates.
fn ca_bundle(path: &Option<PathBuf>) -> std::result::Result<(), String> {
    crate::tls::ExtraRoots::from_option(path.as_deref()).map(|_| ())
}

fn at_least<const MIN: u64>(v: &u64) -> std::result::Result<(), String> {
    if *v < MIN {
        return Err(format!("must be at least {MIN}"));
    }
    Ok(())
}

fn positive_span(v: &Span) -> std::result::Result<(), String> {
    if v.0.is_zero() {
        return Err("must be longer than 0s".into());
    }
    Ok(())
}

options! {
    /// The HTTP server and the data folder.
    server: ServerConfig {
        listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080)), "Address to bind (also --listen).", any;
        public_url: Option<String> = None, "How peers reach this pod, e.g. https://pod.example.org; its host is the host of local diaspora IDs (default http:// + listen; also --public-url).", optional_url;
        data_dir: PathBuf = PathBuf::from("./lifeboat-data"), "Folder holding the store, the mail outbox and the admin socket (also --data-dir).", |p: &PathBuf| if p.as_os_str().is_empty() { Err("must not be empty".into()) } else { Ok(()) };
        trusted_proxies: Vec<String> = Vec::new(), "Proxy addresses whose X-Forwarded-For is believed (the rightmost untrusted address is the client).", proxies;
        max_body_bytes: u64 = 1024 * 1024, "Largest request body accepted by pages and federation endpoints (backup pushes have their own limit).", at_least::<1024>;
        store_cache_mib: u64 = 64, "Most memory (MiB) the store keeps as its cache; more makes large pods' pages faster, less keeps a small pod small.", at_least::<8>;
        min_free_mib: u64 = 64, "Free space (MiB) kept on the data folder's disk: below it, whatever would write answers 507 (disk full) and stores nothing, until space returns.", at_least::<1>;
        log: String = "info".into(), "Log filter (tracing syntax: error, warn, info, debug, or per module).", |s: &String| tracing_subscriber::EnvFilter::try_new(s).map(|_| ()).map_err(|e| e.to_string());
    }
    /// Talking to other pods.
    federation: FederationConfig {
        seed_pods: Vec<String> = Vec::new(), "Pod URLs known from the start (vetted as backup destinations).", pod_urls;
        allow_http: bool = false, "Permit http:// peers (tests, development).", any;
        allow_private_addresses: bool = false, "Permit loopback and private-network peers (tests on one machine).", any;
        extra_ca_file: Option<PathBuf> = None, "PEM file of certificate authorities trusted for other pods' https, besides the Mozilla roots built into lifeboat (a private federation or a test CA; normally unset).", ca_bundle;
        request_timeout: Span = Span::secs(30), "Time limit for one outbound request.", positive_span;
        max_response_bytes: u64 = 2 * 1024 * 1024, "Largest response read from another pod.", at_least::<1024>;
        broadcast_moves: bool = true, "Send AccountMigration to every pod this pod knows that has answered NodeInfo, not only the account's own.", any;
        delivery_concurrency: usize = 32, "Deliveries to other pods in flight at once.", |v: &usize| if *v == 0 || *v > 1024 { Err("must be between 1 and 1024".into()) } else { Ok(()) };
        deliveries_per_pod_per_minute: u32 = 120, "Deliveries sent to one pod per minute at most (the rest wait).", |v: &u32| if *v == 0 { Err("must be at least 1".into()) } else { Ok(()) };
        unreachable_for: Span = Span::secs(60), "After a pod fails to answer, requests to it fail at once for this long.", positive_span;
        delivery_retry_first: Span = Span::secs(60), "Wait before the first retry of a failed delivery (it doubles up to 6 hours).", positive_span;
        delivery_retry_for: Span = Span::secs(30 * 86400), "How long a failing delivery is retried before it is marked failed.", positive_span;
        receive_private_per_client_per_minute: u32 = 60, "Private messages (POST /receive/users/GUID) accepted per client address per minute; decrypting them is costly and must not be an oracle.", |v: &u32| if *v == 0 { Err("must be at least 1".into()) } else { Ok(()) };
        receive_private_per_account_per_minute: u32 = 30, "Private messages accepted per local account per minute, from all clients together.", |v: &u32| if *v == 0 { Err("must be at least 1".into()) } else { Ok(()) };
        discovery_queue_max: u64 = 100_000, "Most people waiting to be discovered in the background (the contacts imported, restored and moved-in archives bring); past it, more are not queued.", at_least::<1>;
        discoveries_per_minute: u32 = 120, "People discovered in the background per minute at most, over all pods (each is a WebFinger and an hCard request).", |v: &u32| if *v == 0 { Err("must be at least 1".into()) } else { Ok(()) };
        discoveries_per_host_per_minute: u32 = 30, "People of one pod discovered in the background per minute at most.", |v: &u32| if (1..=60).contains(v) { Ok(()) } else { Err("must be between 1 and 60".into()) };
        discovery_retry_for: Span = Span::secs(7 * 86400), "How long a pod that does not answer is retried (backing off up to 6 hours) before the people waiting for it are given up.", positive_span;
    }
    /// Holding backups for others, and sealing our own.
    backups: BackupsConfig {
        allow_backups_and_migration: bool = false, "Become a backup pod: hold encrypted backups pushed by other pods and offer restores.", any;
        max_backup_bytes: u64 = 16 * 1024 * 1024, "Largest decoded .lfbk accepted (the request body limit is about 4/3 of it).", at_least::<1024>;
        quota_bytes: u64 = 10 * 1024 * 1024 * 1024, "Total bytes of confirmed backups held before refusing new ones (507).", any;
        unconfirmed_quota_bytes: u64 = 1024 * 1024 * 1024, "Total bytes of backups whose owner has not yet confirmed them.", any;
        pushes_per_minute: u32 = 120, "Backup pushes and status checks accepted per client address (a peer pod) per minute.", |v: &u32| if *v == 0 { Err("must be at least 1".into()) } else { Ok(()) };
        confirmation_mails_per_hour: u32 = 100, "Mails asking an address's owner to confirm a held backup, per hour in all (besides one per address per day).", |v: &u32| if *v == 0 { Err("must be at least 1".into()) } else { Ok(()) };
        kdf_memory_kib: u32 = 65536, "Argon2id memory cost (KiB) for new pass phrases.", |v: &u32| if (19456..=262144).contains(v) { Ok(()) } else { Err("must be between 19456 and 262144".into()) };
        kdf_time_cost: u32 = 3, "Argon2id time cost (iterations) for new pass phrases.", |v: &u32| if (2..=10).contains(v) { Ok(()) } else { Err("must be between 2 and 10".into()) };
        kdf_concurrency: usize = 2, "Key derivations (Argon2) run at the same time; more wait.", |v: &usize| if *v == 0 { Err("must be at least 1".into()) } else { Ok(()) };
        approved_pods: Vec<String> = Vec::new(), "Pods the admins vet as backup destinations, besides seed_pods.", pod_urls;
        choose_from: ChooseFrom = ChooseFrom::Known, "Pods the automatic choice of a backup pod takes: \"known\" (any pod verified through federation or configured that accepts backups, vetted ones preferred) or \"vetted\" (only seed_pods and approved_pods).", any;
        restore_link_ttl: Span = Span::secs(3600), "How long an emailed restore link works (it also allows 5 pass-phrase attempts).", |v: &Span| if v.0.as_secs() < 60 || v.0.as_secs() > 86400 { Err("must be between 1m and 24h".into()) } else { Ok(()) };
        restore_links_per_day: u32 = 3, "Restore links mailed to one address per day at most (a new link revokes earlier ones).", |v: &u32| if (1..=24).contains(v) { Ok(()) } else { Err("must be between 1 and 24".into()) };
        push_debounce: Span = Span::secs(60), "After a change to an account, wait this long before pushing its backup (changes in the meantime go in the same push).", any;
        push_interval: Span = Span::secs(86400), "How often every account's backup is looked at even without a change (the daily pass); an unchanged backup is not sent again.", positive_span;
        pod_check_interval: Span = Span::secs(86400), "How often each known pod's NodeInfo is read to learn whether it accepts backups.", positive_span;
        status_check_interval: Span = Span::secs(7 * 86400), "How often the backup pod is asked what it holds (a signed status check); a copy that does not match is pushed again.", positive_span;
        move_after_failing: Span = Span::secs(3 * 86400), "Move an account's backups to another vetted pod when pushes to its pod have failed this long.", positive_span;
        warn_after_failing: Span = Span::secs(2 * 86400), "Tell the user (page and email) when their backup has not succeeded for this long.", positive_span;
        push_retry_min: Span = Span::secs(60), "Wait after a failed backup push before the first retry (doubling after each failure).", positive_span;
        push_retry_max: Span = Span::secs(6 * 3600), "Longest wait between two retries of a failing backup push.", positive_span;
        push_concurrency: usize = 4, "Accounts whose backups are worked on at the same time.", |v: &usize| if *v == 0 || *v > 64 { Err("must be between 1 and 64".into()) } else { Ok(()) };
    }
    /// Local accounts.
    accounts: AccountsConfig {
        key_bits: usize = 4096, "RSA key size for new accounts (4096; 2048 allowed for tests).", |v: &usize| if matches!(v, 2048 | 3072 | 4096) { Ok(()) } else { Err("must be 2048, 3072 or 4096".into()) };
        admins: Vec<String> = Vec::new(), "Usernames with podmin rights (create them with `lifeboat user add`).", usernames;
        open_registrations: bool = true, "Allow sign-up through the web.", any;
        session_ttl: Span = Span::secs(14 * 86400), "How long a sign-in lasts without use.", positive_span;
        max_import_bytes: u64 = 256 * 1024 * 1024, "Largest decompressed archive accepted by imports.", at_least::<1024>;
    }
    /// Outgoing email. With no smtp_host, messages are written as .eml files under data_dir/outbox.
    mail: MailConfig {
        smtp_host: Option<String> = None, "SMTP server host; unset writes .eml files instead.", any;
        smtp_port: u32 = 587, "SMTP server port.", |v: &u32| if (1..=65535).contains(v) { Ok(()) } else { Err("must be a port number (1-65535)".into()) };
        smtp_tls: SmtpTls = SmtpTls::StartTls, "How the SMTP connection is secured: none, starttls or implicit.", any;
        smtp_ca_file: Option<PathBuf> = None, "PEM file of certificate authorities trusted for the SMTP server's certificate, besides the system's (a relay with an internal CA; normally unset).", ca_bundle;
        smtp_username: Option<String> = None, "SMTP user name, if the server needs one.", any;
        smtp_password: Option<String> = None, "SMTP password (prefer the LIFEBOAT_MAIL_SMTP_PASSWORD variable).", any;
        from: Option<String> = None, "From address (default lifeboat@ the public host).", |v: &Option<String>| match v { Some(a) if !a.contains('@') || a.contains(['\r', '\n']) => Err(format!("{a:?} is not an email address")), _ => Ok(()) };
    }
}

/// Values given on the `serve` command line, which win over every other source.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub public_url: Option<String>,
}

/// A loaded configuration and the warnings met on the way.
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads defaults, then `file`, then the environment, then `overrides`; reports
    /// every problem found at once.
    pub fn load(
        file: Option<&std::path::Path>,
        env: &BTreeMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Loaded> {
        let mut config = Config::default();
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        if let Some(path) = file {
            match std::fs::read_to_string(path) {
                Err(e) => problems.push(format!("{}: cannot read: {e}", path.display())),
                Ok(text) => match text.parse::<toml::Table>() {
                    Err(e) => problems.push(format!("{}: not valid TOML: {}", path.display(), e.message())),
                    Ok(table) => config.apply_toml(&table, &mut problems),
                },
            }
        }
        config.apply_env(env, &mut problems, &mut warnings);
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        if let Some(listen) = overrides.listen {
            config.server.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.server.data_dir = dir.clone();
        }
        if let Some(url) = &overrides.public_url {
            config.server.public_url = Some(url.clone());
        }
        config.check_each(&mut problems);
        config.check_together(&mut problems);
        if problems.is_empty() {
            Ok(Loaded { config, warnings })
        } else {
            Err(Error::Config(problems))
        }
    }

    fn check_together(&self, problems: &mut Vec<String>) {
        if self.mail.smtp_username.is_some() != self.mail.smtp_password.is_some() {
            problems.push("mail.smtp_username and mail.smtp_password: set both or neither".into());
        }
        if self.mail.smtp_ca_file.is_some() && self.mail.smtp_tls == SmtpTls::None {
            problems.push(
                "mail.smtp_ca_file: only used with mail.smtp_tls = \"starttls\" or \"implicit\" (it is \"none\")"
                    .into(),
            );
        }
        if let Some(url) = &self.server.public_url {
            if url.starts_with("http://") && !self.federation.allow_http && !is_loopback_url(url) {
                problems.push("server.public_url: http:// is only allowed with federation.allow_http (diaspora* pods reach others over https)".into());
            }
        }
    }

    /// The pod's public base URL without a trailing slash, e.g. `https://pod.example.org`.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.server.listen),
        }
    }

    /// The host part of local diaspora IDs (`host` or `host:port`).
    pub fn public_host(&self) -> String {
        let url = self.public_url();
        let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or_default().to_ascii_lowercase()
    }

    /// Whether the public URL is https (session cookies are then `Secure`).
    pub fn is_https(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    /// The From address of outgoing mail.
    pub fn mail_from(&self) -> String {
        let host = self.public_host();
        let host = host.split(':').next().unwrap_or_default();
        self.mail.from.clone().unwrap_or_else(|| format!("lifeboat@{host}"))
    }

    /// The commented example configuration, generated from the option table.
    pub fn example() -> String {
        let mut out = String::from(
            "# lifeboat configuration. Every option is shown with its default, commented out.\n\
             # Uncomment and change what you need; the environment variable LIFEBOAT_SECTION_KEY\n\
             # (e.g. LIFEBOAT_SERVER_LISTEN) overrides the file. Lists in variables are\n\
             # comma-separated; durations are written 30s, 15m, 72h or 30d.\n",
        );
        let mut current = "";
        for (section, key, doc, default) in Config::describe() {
            if section != current {
                let _ = write!(out, "\n[{section}]\n");
                current = section;
            }
            let _ = writeln!(out, "# {doc}");
            match default {
                Some(value) => {
                    let _ = writeln!(out, "# {key} = {value}\n");
                }
                None => {
                    let _ = writeln!(out, "# {key} =  (unset)\n");
                }
            }
        }
        out
    }
}

fn is_loopback_url(url: &str) -> bool {
    let host = url
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_options_read_their_words_and_name_them_when_refused() {
        for (word, tls) in [
            ("none", SmtpTls::None),
            ("starttls", SmtpTls::StartTls),
            ("implicit", SmtpTls::Implicit),
        ] {
            assert_eq!(SmtpTls::from_env(word), Ok(tls));
            assert_eq!(tls.to_toml().unwrap(), format!("\"{word}\""));
        }
        assert_eq!(
            SmtpTls::from_toml(&toml::Value::Integer(1)).unwrap_err(),
            "expected \"none\", \"starttls\" or \"implicit\""
        );
        assert_eq!(
            SmtpTls::from_env("tls").unwrap_err(),
            "\"tls\" is not one of none, starttls, implicit"
        );
        assert_eq!(
            ChooseFrom::from_toml(&toml::Value::from("vetted")),
            Ok(ChooseFrom::Vetted)
        );
        assert_eq!(ChooseFrom::Known.to_toml().unwrap(), "\"known\"");
        assert_eq!(
            ChooseFrom::from_toml(&toml::Value::Boolean(true)).unwrap_err(),
            "expected \"known\" or \"vetted\""
        );
        assert_eq!(
            ChooseFrom::from_env("all").unwrap_err(),
            "\"all\" is not one of known, vetted"
        );
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_need_no_configuration() {
        let loaded = Config::load(None, &BTreeMap::new(), &Overrides::default()).unwrap();
        assert_eq!(loaded.config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(loaded.config.public_url(), "http://127.0.0.1:8080");
        assert_eq!(loaded.config.public_host(), "127.0.0.1:8080");
        assert!(!loaded.config.backups.allow_backups_and_migration);
        assert_eq!(
            loaded.config.server.store_cache_mib << 20,
            crate::store::DEFAULT_CACHE_BYTES
        );
        assert_eq!(
            loaded.config.server.min_free_mib << 20,
            crate::store::DEFAULT_MIN_FREE_BYTES
        );
    }

    #[test]
    fn environment_overrides_and_warns_on_unknown() {
        let vars = env(&[
            ("LIFEBOAT_FEDERATION_ALLOW_HTTP", "true"),
            ("LIFEBOAT_FEDERATION_SEED_PODS", "https://a.example, https://b.example"),
            ("LIFEBOAT_ACCOUNTS_SESSION_TTL", "72h"),
            ("LIFEBOAT_NOPE", "1"),
            ("LIFEBOAT_PASSPHRASE", "x"),
        ]);
        let loaded = Config::load(None, &vars, &Overrides::default()).unwrap();
        assert!(loaded.config.federation.allow_http);
        assert_eq!(
            loaded.config.federation.seed_pods,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(loaded.config.accounts.session_ttl, Span::secs(72 * 3600));
        assert_eq!(loaded.warnings, vec!["LIFEBOAT_NOPE is not a lifeboat option; ignored"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"nowhere\"\nbogus = 1\nstore_cache_mib = 4\n[accounts]\nkey_bits = 1024\n",
        )
        .unwrap();
        let vars = env(&[("LIFEBOAT_BACKUPS_KDF_TIME_COST", "many")]);
        let Err(Error::Config(problems)) = Config::load(Some(&path), &vars, &Overrides::default()) else {
            panic!("expected a configuration error");
        };
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems.contains(&"server.store_cache_mib: must be at least 8".to_string()));
        assert!(problems.iter().any(|p| p.starts_with("server.listen")));
        assert!(problems.iter().any(|p| p == "server.bogus: unknown option"));
        assert!(problems.iter().any(|p| p.starts_with("accounts.key_bits")));
        assert!(problems.iter().any(|p| p.starts_with("LIFEBOAT_BACKUPS_KDF_TIME_COST")));
    }

    #[test]
    fn ca_files_are_checked_when_the_configuration_loads() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "hello\n").unwrap();
        let vars = env(&[
            ("LIFEBOAT_FEDERATION_EXTRA_CA_FILE", "/nonexistent/ca.pem"),
            ("LIFEBOAT_MAIL_SMTP_CA_FILE", not_pem.to_str().unwrap()),
            ("LIFEBOAT_MAIL_SMTP_TLS", "none"),
        ]);
        let Err(Error::Config(problems)) = Config::load(None, &vars, &Overrides::default()) else {
            panic!("expected a configuration error");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("federation.extra_ca_file: cannot read /nonexistent/ca.pem"));
        assert!(problems[1].starts_with("mail.smtp_ca_file: ") && problems[1].contains("no PEM certificate"));
        assert!(problems[2].contains("only used with mail.smtp_tls"), "{problems:?}");
        // Unset (an empty variable) is the default: no extra authorities.
        let vars = env(&[("LIFEBOAT_FEDERATION_EXTRA_CA_FILE", "")]);
        let loaded = Config::load(None, &vars, &Overrides::default()).unwrap();
        assert_eq!(loaded.config.federation.extra_ca_file, None);
        assert_eq!(loaded.config.mail.smtp_ca_file, None);
    }

    #[test]
    fn durations_parse_and_print() {
        for (text, secs) in [("30s", 30), ("15m", 900), ("72h", 259200), ("30d", 2592000)] {
            assert_eq!(Span::from_env(text).unwrap(), Span::secs(secs));
            let printed = Span::secs(secs).to_toml().unwrap();
            assert_eq!(Span::from_env(printed.trim_matches('"')).unwrap(), Span::secs(secs));
        }
        for bad in ["", "10", "s", "5w", "-1s", "99999999999999999999d"] {
            assert!(Span::from_env(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shipped_example_matches_the_option_table() {
        let shipped = include_str!("../lifeboat.example.toml");
        assert_eq!(
            shipped,
            Config::example(),
            "regenerate with `lifeboat config example > lifeboat.example.toml`"
        );
        let table: toml::Table = shipped.parse().unwrap();
        assert!(
            table
                .values()
                .all(|section| section.as_table().is_some_and(|t| t.is_empty())),
            "every option in the example is commented out"
        );
    }
}
