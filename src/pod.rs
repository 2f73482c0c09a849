//! The running pod: configuration, store, mailer and shared limits, handed to every
//! handler, worker and admin command. Building one does not start anything;
//! [`crate::server`] starts the HTTP server and the workers around it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::Config;
use crate::http_client::{user_agent, ClientPolicy, HttpClient};
use crate::mail::Mailer;
use crate::ratelimit::RateLimiter;
use crate::store::Store;
use crate::Result;

/// Everything a request or a worker needs. Shared as `Arc<Pod>`.
pub struct Pod {
    pub config: Config,
    pub store: Store,
    pub mailer: Mailer,
    /// The one outbound HTTP client (address checks, timeouts, size caps).
    pub http: HttpClient,
    /// Runs Argon2 key derivations off the runtime, a bounded number at a time.
    pub kdf: crate::sealed::KdfLimiter,
    /// Wake-up calls for the background workers (the services themselves are built
    /// in `server.rs`).
    pub signals: Signals,
    pub trusted_proxies: Vec<IpAddr>,
    pub limits: Limits,
}

/// A wake-up call for one background worker: whoever queued work for it rings it once
/// that work is durable; the worker waits on it. Cheap to clone.
#[derive(Clone, Default)]
pub struct Signal(Arc<Notify>);

impl Signal {
    /// Wakes the worker (once, however often it is rung before it looks).
    pub fn ring(&self) {
        self.0.notify_one();
    }

    /// Waits until the signal is rung.
    pub async fn rung(&self) {
        self.0.notified().await
    }
}

/// The wake-up calls of the pod's workers.
#[derive(Clone, Default)]
pub struct Signals {
    /// Deliveries were queued (the outbox worker).
    pub outbox: Signal,
    /// An account changed or asks for a backup look (the backup worker).
    pub backups: Signal,
    /// People were queued for discovery (the discovery worker).
    pub discovery: Signal,
    /// A pooled key pair was taken (the key pool's filler).
    pub keys: Signal,
}

/// The rate limits the pod enforces, each keyed by the caller's choice of key.
pub struct Limits {
    /// Sign-in attempts per client address.
    pub sign_in: RateLimiter,
    /// Backup pushes per client address.
    pub backup_push: RateLimiter,
    /// Page form submissions that send mail, per client address.
    pub mail_forms: RateLimiter,
    /// Private federation messages (`/receive/users/GUID`), per client address.
    pub receive_private_per_client: RateLimiter,
    /// Private federation messages, per addressed local account (by username).
    pub receive_private_per_account: RateLimiter,
    /// Pass-phrase attempts and move-ins (each an Argon2 derivation), per client address.
    pub restore: RateLimiter,
}

impl Pod {
    /// Assembles the pod around an open store.
    pub fn new(config: Config, store: Store) -> Result<Arc<Pod>> {
        let mailer = Mailer::new(&config, store.clone())?;
        let trusted_proxies = config
            .server
            .trusted_proxies
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        let limits = Limits {
            sign_in: RateLimiter::new(10, 10, Duration::from_secs(600)),
            backup_push: RateLimiter::new(
                config.backups.pushes_per_minute,
                config.backups.pushes_per_minute,
                Duration::from_secs(60),
            ),
            mail_forms: RateLimiter::new(5, 20, Duration::from_secs(3600)),
            receive_private_per_client: RateLimiter::new(
                config.federation.receive_private_per_client_per_minute,
                config.federation.receive_private_per_client_per_minute,
                Duration::from_secs(60),
            ),
            receive_private_per_account: RateLimiter::new(
                config.federation.receive_private_per_account_per_minute,
                config.federation.receive_private_per_account_per_minute,
                Duration::from_secs(60),
            ),
            restore: RateLimiter::new(10, 30, Duration::from_secs(3600)),
        };
        let kdf = crate::sealed::KdfLimiter::new(config.backups.kdf_concurrency);
        let extra_roots = crate::tls::ExtraRoots::from_option(config.federation.extra_ca_file.as_deref())
            .map_err(|e| crate::Error::Config(vec![format!("federation.extra_ca_file: {e}")]))?;
        if !extra_roots.is_empty() {
            tracing::info!(
                "federation: trusting the built-in Mozilla roots{} for https",
                extra_roots.describe()
            );
        }
        let http = HttpClient::new(ClientPolicy {
            allow_http: config.federation.allow_http,
            allow_private_addresses: config.federation.allow_private_addresses,
            user_agent: user_agent(&config.public_url()),
            request_timeout: config.federation.request_timeout.get(),
            max_response_bytes: config.federation.max_response_bytes,
            failure_cache_ttl: config.federation.unreachable_for.get(),
            extra_roots,
            ..ClientPolicy::default()
        });
        Ok(Arc::new(Pod {
            config,
            store,
            mailer,
            http,
            kdf,
            signals: Signals::default(),
            trusted_proxies,
            limits,
        }))
    }
}
