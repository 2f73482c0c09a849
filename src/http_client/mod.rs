//! lifeboat's one outbound HTTP client, and the rules every request to another pod
//! obeys (docs/formats.md, "Outbound requests" and "Pod origins").
//!
//! This module owns:
//! - [`HttpClient`], the only way lifeboat talks HTTP to the outside world. It is
//!   blocking (callers run it in `tokio::task::spawn_blocking`) and cheap to clone.
//! - [`ClientPolicy`], the rules it enforces: https only, no loopback, private,
//!   link-local or otherwise non-public destination, connect and overall timeouts,
//!   a response size cap, and a per-origin cache of recent network failures. The
//!   two relaxations (`allow_http`, `allow_private_addresses`) come from
//!   configuration and exist for tests and development on one machine.
//! - [`origin_of`], the normalised name of a pod, `scheme://host[:port]`, which
//!   `known_pods`, failure caches and rate limits key on.
//! - [`forbidden_range`], the classification of IP addresses into public and
//!   non-public.
//!
//! How the address rule is enforced: ureq is given a resolver of our own that asks
//! the system resolver, drops every address the policy forbids and hands ureq only
//! the remaining ones, so the address that was checked is the address connected to
//! (no DNS-rebinding gap between a check and a second lookup). Proxies from the
//! environment are ignored, since a proxy would do its own resolution. ureq's own
//! redirect following is off; [`HttpClient`] follows at most [`MAX_REDIRECTS`]
//! redirects itself, and every hop goes through the same scheme check, failure
//! cache and resolver as the first request.
//!
//! Certificates are verified against the Mozilla roots built into lifeboat (ureq's
//! default), plus the authorities of `federation.extra_ca_file` when it is set
//! ([`crate::tls`]); a refused certificate is a network failure like any other, named
//! in plain words.
//!
//! Every connection gets an input buffer a little larger than [`RESPONSE_HEAD_BYTES`]
//! and a [`REQUEST_BUFFER_BYTES`] output buffer instead of ureq's 128 KiB each way:
//! they are allocated (and zeroed) per request in flight, so with the outbox's 32
//! deliveries at once ureq's defaults cost 8 MiB. The input buffer must hold a whole
//! response head, and be larger than the head limit, or ureq reports a head that fills
//! it as a closed connection rather than as too large.
//!
//! Requests are logged at `debug` level with method and origin only: paths and
//! query strings may carry tokens. Error messages likewise name the origin, never
//! the full URL.

mod address;
mod origin;

pub use address::*;
pub use origin::*;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::{header, Uri};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::tls::ExtraRoots;
use crate::{Error, Result};

/// The most redirects one request follows before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// The largest response head (status line and headers) accepted; a longer one is
/// refused as unusable. Each connection's input buffer is 1 KiB larger (see the module
/// doc).
pub const RESPONSE_HEAD_BYTES: usize = 32 * 1024;

/// The output buffer of each connection: the request head, then the body in chunks of
/// this size.
pub const REQUEST_BUFFER_BYTES: usize = 16 * 1024;

/// The failure cache is pruned of expired entries once it holds this many origins.
const FAILURE_CACHE_PRUNE_AT: usize = 1024;

/// What the outbound client allows. Built from the `federation.*` options by the
/// caller; [`Default`] is the production policy.
#[derive(Clone, Debug)]
pub struct ClientPolicy {
    /// Permit `http://` URLs (tests, development). Off: https only.
    pub allow_http: bool,
    /// Permit loopback, private and other non-public destinations (tests). Off: only
    /// public addresses are connected to.
    pub allow_private_addresses: bool,
    /// The `User-Agent` sent with every request; see [`user_agent`].
    pub user_agent: String,
    /// Budget for name resolution, TCP connect and TLS handshake, per hop.
    pub connect_timeout: Duration,
    /// Budget for the whole request, redirects and the response body included.
    pub request_timeout: Duration,
    /// Largest response body accepted (after decompression); larger ones are refused
    /// while reading, without buffering them.
    pub max_response_bytes: u64,
    /// How long an origin that failed at the network level (refused, timed out, TLS)
    /// is answered "recently unreachable" without touching the network. Zero turns
    /// the cache off.
    pub failure_cache_ttl: Duration,
    /// Exact socket addresses (IP and port) let through even though the address rule
    /// would forbid them. Not a configuration option: empty in production, settable
    /// only in code. It exists so that tests on one machine can let one loopback
    /// server through while every other loopback address, another port on the same
    /// host included, stays forbidden — which is how the re-check of redirect
    /// destinations is tested against real sockets.
    pub exempt_addresses: Vec<SocketAddr>,
    /// Certificate authorities trusted besides the Mozilla roots built into lifeboat
    /// (`federation.extra_ca_file`); empty in the usual case.
    pub extra_roots: ExtraRoots,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        ClientPolicy {
            allow_http: false,
            allow_private_addresses: false,
            user_agent: format!("lifeboat/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 2 * 1024 * 1024,
            failure_cache_ttl: Duration::from_secs(60),
            exempt_addresses: Vec::new(),
            extra_roots: ExtraRoots::none(),
        }
    }
}

/// The `User-Agent` lifeboat sends: `lifeboat/VERSION (+PUBLIC_URL)`.
pub fn user_agent(public_url: &str) -> String {
    format!(
        "lifeboat/{} (+{})",
        env!("CARGO_PKG_VERSION"),
        public_url.trim().trim_end_matches('/')
    )
}

/// A response as the caller sees it. Non-2xx statuses are responses too; only
/// transport failures and policy refusals are errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, as sent.
    pub content_type: Option<String>,
    /// The body, at most [`ClientPolicy::max_response_bytes`] long.
    pub body: Vec<u8>,
    /// The URL that answered, after redirects (without any fragment).
    pub final_url: String,
}

/// lifeboat's hardened outbound HTTP client; see the module doc. Cheap to clone:
/// clones share the connection pool and the failure cache.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    policy: ClientPolicy,
    agent: ureq::Agent,
    /// Origin → the last network failure, while it is fresh.
    failures: Mutex<HashMap<String, Failure>>,
}

struct Failure {
    at: Instant,
    reason: String,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// The request method, with what it carries.
#[derive(Clone, Copy)]
enum Method<'a> {
    Get { accept: &'a str },
    Post { content_type: &'a str, body: &'a [u8] },
}

impl Method<'_> {
    fn name(&self) -> &'static str {
        match self {
            Method::Get { .. } => "GET",
            Method::Post { .. } => "POST",
        }
    }
}

impl HttpClient {
    /// A client enforcing `policy`.
    pub fn new(policy: ClientPolicy) -> HttpClient {
        let config = Config::builder()
            // Redirects are followed by `send`, hop by hop, with every check redone.
            .max_redirects(0)
            // Statuses are the caller's business.
            .http_status_as_error(false)
            // A proxy would resolve names itself, past our resolver.
            .proxy(None)
            .https_only(!policy.allow_http)
            .user_agent(policy.user_agent.as_str())
            .timeout_resolve(Some(policy.connect_timeout))
            .timeout_connect(Some(policy.connect_timeout))
            .timeout_global(Some(policy.request_timeout))
            .input_buffer_size(RESPONSE_HEAD_BYTES + 1024)
            .max_response_header_size(RESPONSE_HEAD_BYTES)
            .output_buffer_size(REQUEST_BUFFER_BYTES)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(policy.extra_roots.http_roots())
                    .build(),
            )
            .build();
        let resolver = GuardedResolver {
            allow_private: policy.allow_private_addresses,
            exempt: policy.exempt_addresses.clone(),
            system: DefaultResolver::default(),
        };
        let agent = ureq::Agent::with_parts(config, DefaultConnector::new(), resolver);
        HttpClient {
            inner: Arc::new(Inner {
                policy,
                agent,
                failures: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &ClientPolicy {
        &self.inner.policy
    }

    /// `GET url` with `Accept: accept`, following redirects. Blocking.
    pub fn get(&self, url: &str, accept: &str) -> Result<Response> {
        self.send(url, Method::Get { accept })
    }

    /// `POST url` with the given body and `Content-Type`. Blocking. Only `307` and
    /// `308` redirects are followed (they keep the method and body); any other
    /// redirect is returned as the response, since turning a POST into a GET would
    /// silently drop what was sent.
    pub fn post(&self, url: &str, content_type: &str, body: &[u8]) -> Result<Response> {
        self.send(url, Method::Post { content_type, body })
    }

    /// Forgets the cached network failure of the origin of `url` (an origin or any
    /// URL on it), so that the next request tries the network again.
    pub fn forget_failures(&self, url: &str) {
        if let Ok(target) = Target::parse(url) {
            self.failures().remove(&target.origin.to_string());
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failure>> {
        self.inner
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(&self, url: &str, method: Method<'_>) -> Result<Response> {
        let policy = &self.inner.policy;
        let deadline = Instant::now() + policy.request_timeout;
        // The URL itself is never echoed: it may carry tokens.
        let mut target = Target::parse(url).map_err(|reason| Error::Upstream(format!("cannot fetch: {reason}")))?;
        let first_origin = target.origin.to_string();
        let mut redirects = 0;
        // Errors on later hops say where the redirects started.
        let context = |redirects: usize, e: Error| match e {
            Error::Upstream(msg) if redirects > 0 => {
                Error::Upstream(format!("{msg} (reached by redirect from {first_origin})"))
            }
            e => e,
        };
        loop {
            let origin = target.origin.to_string();
            self.check_scheme(&target.origin).map_err(|e| context(redirects, e))?;
            self.check_failure_cache(&origin).map_err(|e| context(redirects, e))?;
            tracing::debug!(method = method.name(), origin = %origin, "outbound request");

            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let msg = format!(
                    "{origin} could not be reached: timed out (request budget of {} s used up)",
                    policy.request_timeout.as_secs_f32()
                );
                return Err(context(redirects, Error::Upstream(msg)));
            }
            let result = self.exchange(&target, method, remaining);
            let response = match result {
                Ok(response) => response,
                Err(failure) => return Err(context(redirects, self.fail(&origin, failure))),
            };

            let status = response.status();
            let follow = match method {
                Method::Get { .. } => matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308),
                Method::Post { .. } => matches!(status.as_u16(), 307 | 308),
            };
            let location = response
                .headers()
                .get(header::LOCATION)
                .map(|v| v.to_str().map(str::to_owned));
            if !follow || location.is_none() {
                let response = self.read_response(&origin, &target, response);
                return match response {
                    Ok(response) => {
                        self.failures().remove(&origin);
                        Ok(response)
                    }
                    Err(failure) => Err(context(redirects, self.fail(&origin, failure))),
                };
            }
            // The origin answered: it is reachable, whatever comes next.
            self.failures().remove(&origin);
            drop(response);

            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(Error::Upstream(format!(
                    "{origin} redirected more than {MAX_REDIRECTS} times"
                )));
            }
            let location = match location {
                Some(Ok(location)) => location,
                _ => {
                    return Err(Error::Upstream(format!(
                        "{origin} redirected to an unreadable Location header"
                    )))
                }
            };
            target = target
                .join(&location)
                .map_err(|reason| Error::Upstream(format!("{origin} redirected to an unusable location: {reason}")))?;
            tracing::debug!(
                from = %origin,
                to = %target.origin,
                status = status.as_u16(),
                "following redirect"
            );
        }
    }

    fn check_scheme(&self, origin: &Origin) -> Result<()> {
        if origin.https || self.inner.policy.allow_http {
            Ok(())
        } else {
            Err(Error::Upstream(format!(
                "refusing {origin}: plain http is not allowed, only https"
            )))
        }
    }

    fn check_failure_cache(&self, origin: &str) -> Result<()> {
        let ttl = self.inner.policy.failure_cache_ttl;
        let mut failures = self.failures();
        let Some(failure) = failures.get(origin) else {
            return Ok(());
        };
        let age = failure.at.elapsed();
        if age >= ttl {
            failures.remove(origin);
            return Ok(());
        }
        Err(Error::Upstream(format!(
            "{origin} is recently unreachable ({}, {} s ago); not retrying for another {} s",
            failure.reason,
            age.as_secs(),
            (ttl - age).as_secs().max(1)
        )))
    }

    /// Turns a failure into the error for the caller, remembering network failures.
    fn fail(&self, origin: &str, failure: Failed) -> Error {
        match failure {
            Failed::Refused(reason) => Error::Upstream(format!("refusing {origin}: {reason}")),
            Failed::Network(reason) => {
                tracing::debug!(origin = %origin, reason = %reason, "outbound request failed");
                if !self.inner.policy.failure_cache_ttl.is_zero() {
                    let mut failures = self.failures();
                    if failures.len() >= FAILURE_CACHE_PRUNE_AT {
                        let ttl = self.inner.policy.failure_cache_ttl;
                        failures.retain(|_, f| f.at.elapsed() < ttl);
                    }
                    failures.insert(
                        origin.to_owned(),
                        Failure {
                            at: Instant::now(),
                            reason: reason.clone(),
                        },
                    );
                }
                Error::Upstream(format!("{origin} could not be reached: {reason}"))
            }
            Failed::Unusable(reason) => Error::Upstream(format!("{origin} {reason}")),
        }
    }

    /// One HTTP exchange, up to the response head.
    fn exchange(
        &self,
        target: &Target,
        method: Method<'_>,
        budget: Duration,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, Failed> {
        let uri: Uri = target
            .url()
            .parse()
            .map_err(|_| Failed::Refused("the URL has invalid characters".into()))?;
        let agent = &self.inner.agent;
        let result = match method {
            Method::Get { accept } => agent
                .get(uri)
                .header(header::ACCEPT, accept)
                .config()
                .timeout_global(Some(budget))
                .build()
                .call(),
            Method::Post { content_type, body } => agent
                .post(uri)
                .header(header::CONTENT_TYPE, content_type)
                .config()
                .timeout_global(Some(budget))
                .build()
                .send(body),
        };
        result.map_err(classify)
    }

    fn read_response(
        &self,
        origin: &str,
        target: &Target,
        response: ureq::http::Response<ureq::Body>,
    ) -> std::result::Result<Response, Failed> {
        let max = self.inner.policy.max_response_bytes;
        let too_large = || Failed::Unusable(format!("sent a response larger than {max} bytes"));
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        // ureq's own limit counts the bytes on the wire (and refuses a body of exactly
        // the limit), so the cap is applied here, to the decoded bytes: reading stops
        // one byte past it.
        let mut reader = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader()
            .take(max.saturating_add(1));
        reader
            .read_to_end(&mut body)
            .map_err(|e| classify(ureq::Error::from(e)))?;
        if body.len() as u64 > max {
            return Err(too_large());
        }
        tracing::debug!(origin = %origin, status = status.as_u16(), bytes = body.len(), "outbound response");
        Ok(Response {
            status: status.as_u16(),
            content_type,
            body,
            final_url: target.url(),
        })
    }
}

/// Why a hop failed.
enum Failed {
    /// The policy forbids it: not a network failure, not cached.
    Refused(String),
    /// The network failed (refused, timed out, TLS, DNS): cached per origin.
    Network(String),
    /// The origin answered something unusable (protocol error, too large): not cached.
    Unusable(String),
}

fn classify(e: ureq::Error) -> Failed {
    use ureq::Error as U;
    match e {
        U::Other(inner) => match inner.downcast::<AddressRefused>() {
            Ok(refused) => Failed::Refused(refused.to_string()),
            Err(other) => Failed::Network(other.to_string()),
        },
        U::RequireHttpsOnly(_) => Failed::Refused("plain http is not allowed, only https".into()),
        U::BadUri(_) | U::Http(_) => Failed::Refused("the URL is not usable".into()),
        U::Timeout(ureq::Timeout::Resolve) => Failed::Network("name resolution timed out".into()),
        U::Timeout(ureq::Timeout::Connect) => Failed::Network("connecting timed out".into()),
        U::Timeout(_) => Failed::Network("timed out".into()),
        U::HostNotFound => Failed::Network("host name not found".into()),
        U::Io(io) => Failed::Network(io_reason(&io)),
        U::ConnectionFailed => Failed::Network("connection failed".into()),
        U::Tls(reason) => Failed::Network(format!("TLS failure: {reason}")),
        U::Rustls(err) => Failed::Network(format!("TLS failure: {}", crate::tls::describe_error(&err))),
        U::Pem(_) => Failed::Network("TLS failure: bad certificate data".into()),
        U::TlsRequired => Failed::Network("TLS failure: no TLS connection".into()),
        U::BodyExceedsLimit(n) => Failed::Unusable(format!("sent a response larger than {n} bytes")),
        U::LargeResponseHeader(_, limit) => {
            Failed::Unusable(format!("sent response headers larger than {limit} bytes"))
        }
        U::Protocol(err) => Failed::Unusable(format!("answered with broken HTTP: {err}")),
        U::Decompress(kind, err) => Failed::Unusable(format!("sent a body that does not decode as {kind}: {err}")),
        // Proxy variants cannot occur (proxies are off) and may echo URLs.
        U::ConnectProxyFailed(_) | U::InvalidProxyUrl => Failed::Network("proxy failure".into()),
        other => Failed::Unusable(format!("request failed: {other}")),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    // A refused certificate comes out of the handshake as an I/O error around rustls's.
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return format!("TLS failure: {}", crate::tls::describe_error(tls));
    }
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::TimedOut | K::WouldBlock => "timed out".into(),
        K::UnexpectedEof => "connection closed early".into(),
        K::HostUnreachable => "host unreachable".into(),
        K::NetworkUnreachable => "network unreachable".into(),
        _ => format!("i/o error: {e}"),
    }
}

#[cfg(test)]
mod tests;
