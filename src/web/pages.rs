//! The page layout shared by every HTML page, the front page, error pages and the
//! embedded static assets (CSS, default avatar). Pages work without JavaScript.

use maud::{html, Markup};
use rust_embed::RustEmbed;
use warp::http::{header, HeaderValue, StatusCode};

use super::layout::layout;
use super::Response;
use crate::pod::Pod;
use crate::{Error, Result};

/// Files under `assets/`, compiled into the binary.
#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Serves one embedded asset with a long cache lifetime.
pub fn asset(name: &str) -> Result<Response> {
    let file = Assets::get(name).ok_or_else(|| Error::NotFound(format!("no asset {name}")))?;
    let content_type = match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    let mut response = Response::new(bytes::Bytes::from(file.data.into_owned()));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    Ok(response)
}

/// The front page.
pub fn home(pod: &Pod) -> Markup {
    let backups = pod.config.backups.allow_backups_and_migration;
    layout(
        "Welcome",
        html! {
            h1 { "lifeboat on " (pod.config.public_host()) }
            p.lead { "This pod keeps diaspora* accounts safe: each account's encrypted backup lives on another pod, so it can be brought back if this one ever disappears, and accounts can move between pods." }
            @if backups {
                section.card {
                    h2 { "Lost your pod?" }
                    p { "This pod holds encrypted backups for other pods. If your pod is gone, you can bring your account back here." }
                    p { a.button href="/restore_backup" { "Restore my account" } }
                }
            }
            @if crate::arrivals::move_in::accepts_move_ins(&pod.config) {
                section.card {
                    h2 { "Moving from another pod?" }
                    p { "Bring your diaspora* account here from the pod you are leaving: your profile, aspects, contacts, followed tags and blocks come along, and the pods that knew you are told." }
                    p { a.button href="/move_in" { "Moving from another pod" } }
                }
            }
        },
    )
}

/// A page explaining an error in plain words.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    layout(
        status.canonical_reason().unwrap_or("Error"),
        html! {
            h1 { (status.canonical_reason().unwrap_or("Error")) }
            p { (message) }
            p { a href="/" { "Back to the front page" } }
        },
    )
}
