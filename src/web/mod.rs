//! The HTTP edge: one warp filter hands every request to [`dispatch`], which picks the
//! handler by method and path. Handlers are thin: parse the request, call one domain
//! function, map the result. This module also owns what every response shares:
//! request logging (method, path and status — never query strings, which may carry
//! secret tokens), security headers, body limits checked while reading, and the
//! mapping of [`Error`] to a status with a client-safe message.

/// The value of a step that either goes on or has already answered (a redirect to
/// sign-in, a page shown again with its error): `proceed!(step)` is the value, or the
/// handler returns that answer.
macro_rules! proceed {
    ($step:expr) => {
        match $step {
            Ok(value) => value,
            Err(answer) => return Ok(answer),
        }
    };
}

pub mod account_data;
pub mod accounts;
pub mod admin_pages;
pub mod backups;
pub mod client_addr;
pub mod discovery;
pub mod forms;
pub mod layout;
pub mod nodeinfo;
pub mod pages;
pub mod receive;
pub mod restore;
pub mod settings;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::Filter;

use crate::pod::Pod;
use crate::services::Services;
use crate::{Error, Result};
use client_addr::ClientAddr;

/// What handlers answer with.
pub type Response = warp::http::Response<Bytes>;

type BodyStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, warp::Error>> + Send>>;

/// One incoming request, as handlers see it.
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub client: ClientAddr,
    // A Mutex only to make `Request` Sync (handlers hold `&Request` across awaits);
    // the body is taken once, through `&mut self`, so it is never contended.
    body: std::sync::Mutex<Option<BodyStream>>,
    /// The CSRF token made for this request when the browser had none (one per request,
    /// so every form of a page and its cookie agree).
    fresh_csrf: std::sync::OnceLock<String>,
}

impl Request {
    /// Reads the whole body, refusing it with 413 as soon as it passes `limit` bytes.
    pub async fn body(&mut self, limit: u64) -> Result<Bytes> {
        if let Some(length) = self
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        {
            if length > limit {
                return Err(Error::TooLarge(format!("request body is larger than {limit} bytes")));
            }
        }
        let mut stream = self
            .body
            .get_mut()
            .map_err(|_| Error::internal("request body lock poisoned"))?
            .take()
            .ok_or_else(|| Error::internal("request body read twice"))?;
        let mut out = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::bad(format!("request body could not be read: {e}")))?;
            if out.len() as u64 + chunk.len() as u64 > limit {
                return Err(Error::TooLarge(format!("request body is larger than {limit} bytes")));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// One query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        form_pairs(query.as_bytes())
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The media type of the body, lower-cased, without parameters.
    pub fn content_type(&self) -> Option<String> {
        let value = self.headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
    }
}

/// The HTTP status each kind of [`Error`] answers with: the edge's mapping, kept here
/// so that the error type knows nothing of HTTP.
pub trait HttpStatus {
    fn status(&self) -> StatusCode;
}

impl HttpStatus for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Gone(_) => StatusCode::GONE,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Upstream(_) => StatusCode::BAD_GATEWAY,
            Error::Config(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The warp filter serving the whole pod.
pub fn filter(
    pod: Arc<Pod>,
    services: Arc<Services>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::any()
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::stream().map(box_body))
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: HeaderMap,
                  remote: Option<SocketAddr>,
                  body: BodyStream| {
                let (pod, services) = (pod.clone(), services.clone());
                let forwarded = headers
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let client = ClientAddr::resolve(remote.map(|a| a.ip()), forwarded.as_deref(), &pod.trusted_proxies);
                let request = Request {
                    method,
                    path: path.as_str().to_string(),
                    query: (!query.is_empty()).then_some(query),
                    headers,
                    client,
                    body: std::sync::Mutex::new(Some(body)),
                    fresh_csrf: std::sync::OnceLock::new(),
                };
                handle(pod, services, request)
            },
        )
}

fn box_body<S, B>(stream: S) -> BodyStream
where
    S: Stream<Item = std::result::Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    Box::pin(stream.map(|chunk| chunk.map(|mut buf| buf.copy_to_bytes(buf.remaining()))))
}

async fn handle(pod: Arc<Pod>, services: Arc<Services>, request: Request) -> Response {
    let started = Instant::now();
    let (method, path, client) = (request.method.clone(), request.path.clone(), request.client);
    let wants_html = request
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut response = match dispatch(&pod, &services, request).await {
        Ok(response) => response,
        Err(error) => {
            if let Error::Internal(detail) = &error {
                tracing::error!(%method, %path, "internal error: {detail}");
            }
            error_response(&error, wants_html)
        }
    };
    secure_headers(response.headers_mut());
    tracing::info!(target: "lifeboat::http", %client, %method, %path, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64);
    response
}

/// Picks the handler for a request.
async fn dispatch(pod: &Arc<Pod>, svc: &Services, mut req: Request) -> Result<Response> {
    let path = req.path.clone();
    let method = req.method.clone();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, [""]) => Ok(html(pages::home(pod))),
        (&Method::GET, ["assets", name]) => pages::asset(name),
        (&Method::GET, [".well-known", "nodeinfo"]) => Ok(json(StatusCode::OK, &nodeinfo::well_known(pod))),
        (&Method::GET, ["nodeinfo", version @ ("2.0" | "2.1")]) => {
            let usage = nodeinfo::Usage {
                backup_room: backups::backup_room(&svc.holder),
                ..Default::default()
            };
            let doc = nodeinfo::document(pod, version, usage);
            let profile =
                format!("application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/{version}#\"");
            let mut response = json(StatusCode::OK, &doc);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(&profile).map_err(Error::internal)?,
            );
            Ok(response)
        }
        (&Method::GET, ["healthz"]) => Ok(text(StatusCode::OK, "ok\n")),
        (&Method::POST, ["receive", "public"]) => receive::public(pod, req).await,
        (&Method::POST, ["receive", "users", guid]) => {
            let guid = guid.to_string();
            receive::private(pod, &mut req, &guid).await
        }
        (&Method::GET, [".well-known", "webfinger"]) => discovery::webfinger(pod, &req),
        (&Method::GET, ["hcard", "users", guid]) => discovery::hcard(pod, guid),
        (&Method::GET, ["people", guid]) => discovery::person_page(pod, guid),
        (&Method::GET, ["u", username]) => discovery::profile_by_username(pod, username),
        (&Method::GET, ["avatars", guid]) => discovery::avatar(pod, guid),
        (&Method::GET, ["users", "sign_up"]) => accounts::sign_up_form(pod, &req).await,
        (&Method::POST, ["users", "sign_up"]) => accounts::sign_up(pod, &mut req).await,
        (&Method::GET, ["users", "confirm_email"]) => accounts::confirm_email_page(pod, &req).await,
        (&Method::POST, ["users", "confirm_email"]) => accounts::confirm_email(pod, &mut req).await,
        (&Method::GET, ["users", "sign_in"]) => accounts::sign_in_form(pod, &req).await,
        (&Method::POST, ["users", "sign_in"]) => accounts::sign_in(pod, &mut req).await,
        (&Method::POST, ["users", "sign_out"]) => accounts::sign_out(pod, &mut req).await,
        (&Method::GET, ["users", "password", "forgot"]) => accounts::forgot_form(pod, &req).await,
        (&Method::POST, ["users", "password", "forgot"]) => accounts::forgot(pod, &mut req).await,
        (&Method::GET, ["users", "password", "reset"]) => accounts::reset_form(pod, &req).await,
        (&Method::POST, ["users", "password", "reset"]) => accounts::reset(pod, &mut req).await,
        (&Method::GET, ["settings"]) => settings::settings(pod, &req).await,
        (&Method::GET, ["admin"]) => admin_pages::admin(pod, &svc.holder, &req).await,
        (&Method::GET, ["profile" | "aspects" | "contacts" | "tags" | "blocks"]) => account_data::show(pod, &req).await,
        (&Method::POST, ["profile"]) => account_data::save_profile(pod, &mut req).await,
        (&Method::POST, ["aspects"]) => account_data::add_aspect(pod, &mut req).await,
        (&Method::POST, ["aspects", "delete"]) => account_data::delete_aspect(pod, &mut req).await,
        (&Method::POST, ["contacts"]) => account_data::add_contact(pod, &mut req).await,
        (&Method::POST, ["contacts", "aspects"]) => account_data::contact_aspects(pod, &mut req).await,
        (&Method::POST, ["contacts", "remove"]) => account_data::remove_contact(pod, &mut req).await,
        (&Method::POST, ["tags" | "blocks"]) => account_data::list_add(pod, &mut req).await,
        (&Method::POST, ["tags" | "blocks", "remove"]) => account_data::list_remove(pod, &mut req).await,
        (&Method::POST, ["settings", "email"]) => settings::change_email(pod, &mut req).await,
        (&Method::POST, ["settings", "password"]) => settings::change_password(pod, &mut req).await,
        (&Method::POST, ["settings", "delete"]) => settings::delete(pod, &mut req).await,
        (&Method::POST, ["settings", "passphrase"]) => settings::set_passphrase(pod, &mut req).await,
        (&Method::POST, ["settings", "backups", "opt_out"]) => settings::opt_out(pod, &mut req).await,
        (&Method::POST, ["settings", "backups", "pod"]) => settings::choose_pod(pod, &mut req).await,
        (&Method::POST, ["settings", "download", "archive"]) => settings::download_archive(pod, &mut req).await,
        (&Method::POST, ["settings", "download", "backup"]) => settings::download_backup(pod, &mut req).await,
        (&Method::POST, ["settings", "move"]) => settings::start_move(pod, &mut req).await,
        (&Method::POST, ["settings", "not_me"]) => settings::not_me(pod, &mut req).await,
        (&Method::POST, ["settings", "move", "retry"]) => settings::retry_delivery(pod, &svc.outbox, &mut req).await,
        (&Method::POST, ["api", "lifeboat", "v1", "backups"]) => backups::push(pod, &svc.holder, req).await,
        (&Method::POST, ["api", "lifeboat", "v1", "backups", "status"]) => backups::status(pod, &svc.holder, req).await,
        (&Method::GET, ["restore_backup"]) => restore::form(pod, &req).await,
        (&Method::POST, ["restore_backup"]) => restore::request(pod, &svc.restores, &mut req).await,
        (&Method::GET, ["restore_backup", "confirm"]) => restore::confirm_page(pod, &req).await,
        (&Method::POST, ["restore_backup", "confirm"]) => restore::unlock(pod, &svc.restores, &mut req).await,
        (&Method::POST, ["restore_backup", "create"]) => restore::create(pod, &svc.restores, &mut req).await,
        (&Method::POST, ["restore_backup", "download"]) => restore::download(pod, &svc.restores, &mut req).await,
        (&Method::GET, ["move_in"]) => restore::move_in_form(pod, &req).await,
        (&Method::POST, ["move_in"]) => restore::move_in(pod, &mut req).await,
        (&Method::GET, ["backups", "confirm"]) => backups::confirm_page(pod, &svc.holder, &req),
        (&Method::POST, ["backups", "confirm"]) => backups::confirm_post(pod, &svc.holder, req).await,
        _ => Err(Error::NotFound(format!("no page at {path}"))),
    }
}

/// An HTML page with status 200.
pub fn html(markup: maud::Markup) -> Response {
    html_status(StatusCode::OK, markup)
}

/// An HTML page with the given status.
pub fn html_status(status: StatusCode, markup: maud::Markup) -> Response {
    let mut response = Response::new(Bytes::from(markup.into_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A JSON document.
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Plain text.
pub fn text(status: StatusCode, body: &'static str) -> Response {
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A redirect after a form post (303 See Other).
pub fn see_other(location: &str) -> Result<Response> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::SEE_OTHER;
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(location).map_err(Error::internal)?,
    );
    Ok(response)
}

/// An error as the client sees it: JSON `{"error": ...}` for APIs, a page for browsers.
pub fn error_response(error: &Error, wants_html: bool) -> Response {
    let status = error.status();
    let message = error.client_message();
    if wants_html {
        html_status(status, pages::error_page(status, &message))
    } else {
        json(status, &serde_json::json!({"error": message}))
    }
}

fn secure_headers(headers: &mut HeaderMap) {
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
    {
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self' data: https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let pairs = form_pairs(b"a=1&b=hello+world&c=%41%zz&d&e=%E2%9C%93&f=%4");
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "hello world".into()),
                ("c".into(), "A%zz".into()),
                ("d".into(), "".into()),
                ("e".into(), "✓".into()),
                ("f".into(), "%4".into()),
            ]
        );
        // An escape at the very end is decoded (the hand-written decoder it replaced
        // left it as it was), and invalid UTF-8 becomes U+FFFD.
        assert_eq!(form_pairs(b"g=%41"), vec![("g".into(), "A".into())]);
        assert_eq!(form_pairs(b"h=%FF"), vec![("h".into(), "\u{FFFD}".into())]);
    }
}
